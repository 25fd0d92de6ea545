"""Property: whatever text a user types into a CLI option or argument, the command ends with exit code 0, 1 or 2
and, when it fails, says why in a line starting ``error:`` (or located diagnostics), never with a traceback.

Run in-process with click's CliRunner for speed (a subprocess costs a second of imports); the commands and their
error handling are the same code the installed ``statemill`` runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from statemill.cli.main import main
from statemill.engine import Engine

pytestmark = pytest.mark.property

# Any text, control characters and lone surrogates included (a non-UTF-8 byte on a command line arrives as one).
TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=()), max_size=40)
JSONISH = st.one_of(TEXT, st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
                                       lambda inner: st.lists(inner, max_size=3)
                                       | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)
                    .map(lambda v: json.dumps(v, ensure_ascii=False)))
M_YAML = "StartAt: A\nStates:\n  A:\n    Type: Pass\n    Result: {zero: 0, no: false, empty: '', nothing: null}\n" \
         "    End: true\n"
ASK = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "ask.waitForTaskToken",
                                            "Parameters": {"token.$": "$$.Task.Token"}, "End": True}}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder with a definition and a database holding a finished execution m:done and a waiting task."""
    here = tmp_path_factory.mktemp("props")
    (here / "m.yaml").write_text(M_YAML, encoding="utf-8")
    engine = Engine(f"sqlite:///{here / 'statemill.db'}")
    engine.run(str(here / "m.yaml"), {}, name="done", machine_name="m")
    engine.register(ASK, "ask")
    engine.start("ask", {}, name="asked")
    engine.db.dispose()
    return here


@pytest.fixture
def invoke(folder, monkeypatch):
    monkeypatch.chdir(folder)
    monkeypatch.delenv("STATEMILL_DATABASE_URL", raising=False)

    def run(*args: str):
        result = CliRunner().invoke(main, list(args))
        assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
        assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
        assert "Traceback" not in result.output and "InternalError" not in result.output, result.output
        if result.exit_code:
            first = result.stderr.splitlines()[0] if result.stderr else ""
            assert first.startswith("error: ") or ": error[SM" in first, result.output
        return result
    return run


@given(text=JSONISH)
@example(text='{"n": NaN}')
@example(text='"\\ud800"')
@example(text="@-")
def test_input(invoke, text):
    invoke("start", "m.yaml", "--input", text, "--name", "fixed")


@given(name=TEXT)
@example(name="")
@example(name="done")
@example(name="\udcff")
def test_execution_name(invoke, name):
    invoke("start", "m.yaml", "--name", name)


@given(name=TEXT)
@example(name="m")
def test_machine_name(invoke, name):
    invoke("start", "m.yaml", "--machine-name", name, "--name", "fixed")


@given(command=st.sampled_from(["describe", "history", "stop"]),
       execution=st.one_of(TEXT, TEXT.map(lambda t: f"arn:aws:states:us-east-1:000000000000:execution:m:{t}"),
                           TEXT.map(lambda t: f"m:{t}")))
@example(command="describe", execution="m:done")
@example(command="history", execution="done")
def test_execution_argument(invoke, command, execution):
    invoke(command, execution)


@given(token=TEXT, output=JSONISH)
@example(token="", output="{}")
@example(token="", output="\ud800")
def test_task_token_and_output(invoke, token, output):
    invoke("send-task-success", "--task-token", token, "--task-output", output)


@given(token=TEXT, error=TEXT, cause=TEXT)
def test_task_failure_error_and_cause(invoke, token, error, cause):
    invoke("send-task-failure", "--task-token", token, "--error", error, "--cause", cause)


@given(db=st.one_of(TEXT, TEXT.map(lambda t: f"sqlite:///{t}"), TEXT.map(lambda t: f"postgresql://{t}"),
                    TEXT.map(lambda t: f"{t}.db")))
@example(db="notaurl")
@example(db="sqlite:///")
@example(db="postgresql://")
@example(db="POSTGRESQL://\x80")
@example(db="x\udcff.db")
def test_database_url(invoke, db):
    invoke("list", "--db", db)


@given(age=TEXT)
@example(age="1e400d")
@example(age="9" * 400 + "d")
@example(age="0s")
def test_prune_age(invoke, age):
    invoke("prune", "--older-than", age, "--json")
