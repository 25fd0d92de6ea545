"""A CLI that starts at once: each command imports only the stacks it uses (the database, the JSON Schema explainer,
rich, the visualizer), so `statemill --help` and `statemill validate` do not pay for the others.

Checked in fresh interpreters by which modules got imported, never by wall-clock time (that is bench/cli_bench.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "psycopg", "jsonschema", "rich", "graphviz", "statemill.engine.client",
         "statemill.visualizer")
VALID = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"n": 0, "b": False, "s": "", "z": None},
                                                "End": True}}}
INVALID = {"StartAt": "Missing", "States": {"Done": {"Type": "Pass", "End": 0}}}


def imported_by(code: str, *args: str) -> tuple[set[str], str]:
    """Run ``code`` in a fresh interpreter; the heavy modules it left imported, and what it printed."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys as _sys
        print("\\nIMPORTED " + " ".join(m for m in _sys.modules), file=_sys.stderr)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert "IMPORTED " in done.stderr, done.stderr
    text, _, modules = done.stderr.rpartition("IMPORTED ")
    names = set(modules.split())
    return {h for h in HEAVY if h in names}, done.stdout + text


CLI = """
    import sys
    from statemill.cli.main import main
    try:
        main(sys.argv[1:])
    except SystemExit as exit:
        print("EXIT", exit.code)
"""


def test_importing_the_engine_package_imports_nothing_heavy():
    heavy, _ = imported_by("import statemill.engine")
    assert heavy == set()


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["send-task-success", "--help"], ["--version"]],
                         ids=["help", "run_help", "send_task_success_help", "version"])
def test_help_imports_no_database_schema_or_rendering_stack(args):
    heavy, printed = imported_by(CLI, *args)
    assert "EXIT 0" in printed
    assert heavy == set()


def test_validate_of_a_valid_file_imports_no_database_nor_jsonschema(tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps(VALID))
    heavy, printed = imported_by(CLI, "validate", str(tmp_path / "ok.json"))
    assert "ok" in printed and "EXIT 0" in printed
    assert heavy == set()


@pytest.mark.parametrize("name, text, yaml_loaded", [("ok.json", json.dumps(VALID), False),
                                                     ("ok.yaml", json.dumps(VALID), True)], ids=["json", "yaml"])
def test_validate_loads_pyyaml_and_openssl_only_when_the_file_needs_them(tmp_path, name, text, yaml_loaded):
    (tmp_path / name).write_text(text)
    code = CLI + "    print('LOADED', 'yaml' in sys.modules, '_hashlib' in sys.modules)"
    _, printed = imported_by(code, "validate", str(tmp_path / name))
    assert "EXIT 0" in printed and f"LOADED {yaml_loaded} False" in printed


def test_validate_of_an_invalid_file_still_explains_every_problem(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps(INVALID))
    heavy, printed = imported_by(CLI, "validate", str(tmp_path / "bad.json"))
    assert "EXIT 1" in printed and "bad.json:1:" in printed and "Missing" in printed
    assert heavy <= {"jsonschema"}


def test_every_public_name_of_the_engine_resolves_when_first_used():
    import statemill.engine as engine
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
        assert name in dir(engine)
    assert engine.Engine.__mro__[1] is engine.Client
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        engine.Nope  # noqa: B018


def test_constants_the_cli_keeps_to_itself_match_the_engine():
    from statemill.cli import config
    from statemill.cli.executions import STATUSES
    from statemill.cli.render import FORMATS
    from statemill.engine.runtime import TERMINAL
    from statemill.engine.store import db
    from statemill.visualizer.graph import FORMATS as GRAPH_FORMATS
    assert STATUSES == ("RUNNING", *TERMINAL)
    assert FORMATS == GRAPH_FORMATS
    assert (config.ENV_VAR, config.DEFAULT_URL) == (db.ENV_VAR, db.DEFAULT_URL)
    from statemill.cli import testing
    from statemill.engine import teststate
    assert testing.LEVELS == teststate.LEVELS


# ----------------------------------------------------------------------------------------------- answering tokens
@pytest.fixture
def parked(tmp_path):
    """A SQLite database with one execution waiting on a task token: (path, token)."""
    from statemill.engine import Engine
    engine = Engine(f"sqlite:///{tmp_path / 'tokens.db'}")
    engine.handler("notify")(lambda value: {"sent": True})
    engine.register({"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": "notify.waitForTaskToken", "Parameters": {"token.$": "$$.Task.Token"},
        "HeartbeatSeconds": 600, "End": True}}}, "ask")
    arn = engine.start("ask", {"n": 0})["executionArn"]
    worker = engine.worker(poll_seconds=0.01)
    try:
        worker.run(until=lambda: engine.pending_tokens(arn) and engine.history(arn)[-1]["type"] == "TaskSubmitted")
    finally:
        worker.close()
    [token] = [t["taskToken"] for t in engine.pending_tokens(arn)]
    yield tmp_path / "tokens.db", token, engine, arn
    engine.db.dispose()


@pytest.mark.parametrize("command", [["send-task-heartbeat"], ["send-task-success", "--task-output", "{\"n\": 0}"],
                                     ["send-task-failure", "--error", "", "--cause", ""]],
                         ids=["heartbeat", "success", "failure"])
def test_answering_a_token_imports_no_sqlalchemy(parked, command):
    path, token, engine, arn = parked
    heavy, printed = imported_by(CLI, *command, "--task-token", token, "--db", str(path))
    assert "EXIT 0" in printed
    assert heavy == set()
    if command[0] != "send-task-heartbeat":
        assert engine.pending_tokens(arn) == [] and engine.status(arn) == "RUNNING"


def test_a_refused_answer_still_names_the_aws_error_without_sqlalchemy(parked):
    path, token, engine, arn = parked
    heavy, printed = imported_by(CLI, "send-task-success", "--task-token", token + "x", "--task-output", "0",
                                 "--db", str(path))
    assert "EXIT 1" in printed and "error: InvalidToken: " in printed
    assert heavy == set()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///{missing}", "{missing}", "mysql://nobody/x",
                                 "sqlite:///{path}?mode=ro", "not a url"],
                         ids=["in_memory", "missing_file", "missing_bare_path", "other_scheme", "url_options",
                              "garbage"])
def test_what_the_direct_path_does_not_handle_goes_to_the_client(parked, tmp_path, url):
    from statemill.engine.tokens import Direct
    path, *_ = parked
    assert Direct.open(url.format(missing=tmp_path / "nothing.db", path=path)) is None


def test_a_database_of_another_schema_version_goes_to_the_client(parked):
    import sqlite3

    from statemill.engine.tokens import Direct
    path, token, engine, arn = parked
    assert Direct.open(str(path)) is not None
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE statemill_schema SET version = version - 1")
    assert Direct.open(str(path)) is None
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    done = subprocess.run([sys.executable, "-m", "statemill.cli.main", "send-task-success", "--task-token", token,
                           "--task-output", "0", "--db", str(path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "statemill db upgrade" in done.stderr
