"""Spec for the execution and operations commands, run as a user runs them: the installed ``statemill`` in a
subprocess, a SQLite file in a folder of the test's own, the demo handlers in ``statemachines/``. Each test checks
exit codes and output shapes (``--json``: AWS's field names) and what a user would notice on a terminal."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from statemill.engine.store.migrations import LATEST

sys.path.insert(0, str(Path(__file__).parent))
from clitools import command, statemill  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MACHINES = ROOT / "statemachines"
DEMO = "statemill.statemachines.demo_handlers"
ARN = "arn:aws:states:us-east-1:000000000000:execution:{}:{}"
GOOD_ORDER = {"orderId": "A-1", "amount": 10, "items": [], "address": {"country": "NL", "line2": ""},
              "giftWrap": False, "coupon": None}
FAILED_ORDER = {**GOOD_ORDER, "amount": 0}
ESC = "\x1b"
TITLE = f"Go{ESC}]0;pwned\x07{ESC}[2J"  # sets the window title, then clears the screen


def sm(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    """The installed command in a subprocess: what a user runs."""
    return statemill(*args, cwd=cwd, **kwargs)


@pytest.fixture
def cli(monkeypatch):
    """The same command in this process (click's CliRunner), for the variations of a case a subprocess already
    covers: a subprocess costs a second of imports."""
    from click.testing import CliRunner

    from statemill.cli.main import main
    monkeypatch.delenv("STATEMILL_DATABASE_URL", raising=False)

    def invoke(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(main, list(args))
        assert isinstance(result.exception, (SystemExit, type(None))), result.exception
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
    return invoke


def as_json(done: subprocess.CompletedProcess) -> dict:
    assert done.stdout.count("\n") == 1, done.stdout  # exactly one JSON object on one line
    return json.loads(done.stdout)


def write(folder: Path, name: str, definition: dict) -> str:
    (folder / name).write_text(json.dumps(definition), encoding="utf-8")
    return name


# ------------------------------------------------------------------------------------------------ run and start
def test_run_prints_the_output_and_exits_0_when_the_execution_succeeds(tmp_path):
    done = sm("run", str(MACHINES / "order_saga.yaml"), "--handlers", DEMO, "--input", json.dumps(GOOD_ORDER),
              "--name", "good", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["shipment"] == {"trackingNumber": "TRK-A-1", "carrier": "PostNL"}
    assert "→ ReserveInventory (Task)" in done.stderr and f"SUCCEEDED {ARN.format('order_saga', 'good')}" in done.stderr
    assert (tmp_path / "statemill.db").is_file()


def test_run_json_is_describe_execution_and_exits_1_when_the_execution_fails(tmp_path):
    done = sm("run", str(MACHINES / "order_saga.yaml"), "--handlers", DEMO, "--input", json.dumps(FAILED_ORDER),
              "--name", "declined", "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    result = as_json(done)
    assert set(result) == {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "input",
                           "error", "cause"}
    assert (result["status"], result["name"], result["input"]) == ("FAILED", "declined", FAILED_ORDER)
    assert done.stderr == ""  # --json: no progress


def test_run_prints_only_the_error_and_cause_that_exist(tmp_path):
    name = write(tmp_path, "slow.json", {"TimeoutSeconds": 1, "StartAt": "W",
                                         "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}})
    done = sm("run", name, "-q", cwd=tmp_path)
    assert done.returncode == 1
    assert "TIMED_OUT" in done.stderr and "error: States.Timeout" in done.stderr
    assert "cause" not in done.stderr and "None" not in done.stderr


def test_start_returns_the_arn_at_once_and_list_describe_stop_follow_it(tmp_path, cli):
    reminder = str(MACHINES / "reminder.yaml")
    started = sm("start", reminder, "--name", "tea", "--input",
                 '{"delaySeconds": 3600, "email": "", "subject": "tea"}', cwd=tmp_path)
    arn = ARN.format("reminder", "tea")
    assert (started.returncode, started.stdout) == (0, arn + "\n")
    again = as_json(cli("start", reminder, "--name", "tea", "--json", "--input",
                        '{"delaySeconds": 3600, "email": "", "subject": "tea"}', cwd=tmp_path))
    assert set(again) == {"executionArn", "startDate"} and again["executionArn"] == arn  # idempotent, as on AWS

    listed = as_json(sm("list", "--json", cwd=tmp_path))["executions"]
    assert [(e["executionArn"], e["status"]) for e in listed] == [(arn, "RUNNING")]
    assert set(listed[0]) == {"executionArn", "stateMachineArn", "name", "status", "startDate"}

    described = as_json(sm("describe", arn, "--json", cwd=tmp_path))
    assert (described["executionArn"], described["status"], described["input"]["email"]) == (arn, "RUNNING", "")
    for given in ("reminder:tea", "tea"):  # MACHINE:NAME, or a name only one machine uses
        assert as_json(cli("describe", given, "--json", cwd=tmp_path)) == described

    stopped = sm("stop", "reminder:tea", cwd=tmp_path)
    assert (stopped.returncode, stopped.stdout) == (0, f"stopped {arn}\n")
    first = as_json(cli("describe", arn, "--json", cwd=tmp_path))
    assert first["status"] == "ABORTED"
    again = cli("stop", arn, "--json", cwd=tmp_path)
    assert again.returncode == 0 and as_json(again) == {"stopDate": first["stopDate"]}
    human = cli("stop", arn, cwd=tmp_path)
    assert human.stdout == f"{arn} had already finished (ABORTED at {first['stopDate']}): nothing to stop\n"
    assert as_json(cli("describe", arn, "--json", cwd=tmp_path)) == first  # a stop after the end changes nothing


def test_list_prints_whole_values_when_piped(tmp_path, cli):
    long_name = "n" * 80
    assert cli("start", str(MACHINES / "reminder.yaml"), "--name", long_name, "--input",
               '{"delaySeconds": 60, "email": "", "subject": ""}', cwd=tmp_path).returncode == 0
    listed = sm("list", cwd=tmp_path)
    header, row = listed.stdout.splitlines()
    assert header.split() == ["STATUS", "STARTED", "MACHINE", "NAME", "EXECUTION", "ARN"]
    assert row.split()[0] == "RUNNING" and row.split()[-1] == ARN.format("reminder", long_name)


def test_history_json_and_human(tmp_path, cli):
    cli("run", str(MACHINES / "order_saga.yaml"), "--handlers", DEMO, "--input", json.dumps(GOOD_ORDER), "--name",
        "h", "-q", cwd=tmp_path)
    events = as_json(sm("history", "order_saga:h", "--json", cwd=tmp_path))["events"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"
    assert {"timestamp", "type", "id", "previousEventId"} <= set(events[1])
    human = cli("history", "h", "--reverse", cwd=tmp_path).stdout.splitlines()
    assert len(human) == len(events) and "ExecutionSucceeded" in human[0]


# ------------------------------------------------------------------------------------------------ worker and ops
def test_worker_runs_started_executions_and_leaves_on_sigterm(tmp_path, cli):
    for name, order in (("w-ok", GOOD_ORDER), ("w-declined", FAILED_ORDER)):
        assert cli("start", str(MACHINES / "order_saga.yaml"), "--name", name, "--input", json.dumps(order),
                  cwd=tmp_path).returncode == 0
    worker = subprocess.Popen([*command(), "worker", "--handlers", DEMO, "--lease", "3"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from statemill.engine import Client
        client = Client(f"sqlite:///{tmp_path / 'statemill.db'}")
        deadline = time.monotonic() + 30
        while any(e["status"] == "RUNNING" for e in client.list()) and time.monotonic() < deadline:
            time.sleep(0.1)
        listed = client.list()
        client.db.dispose()
        alive = as_json(sm("workers", "--json", cwd=tmp_path))["workers"]
        assert [w["pid"] for w in alive] == [worker.pid]
        assert set(alive[0]) == {"workerId", "host", "pid", "startDate", "lastHeartbeat", "secondsSinceHeartbeat",
                                 "framesHeld", "handlerKeys"}
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "Traceback" not in err and "inventory.release" in err.splitlines()[0]
    statuses = {e["name"]: e["status"] for e in listed}
    assert statuses == {"w-ok": "SUCCEEDED", "w-declined": "FAILED"}
    assert as_json(cli("workers", "--json", cwd=tmp_path)) == {"workers": []}  # it deregistered


def test_workers_hides_workers_that_died_without_leaving(tmp_path, cli):
    assert cli("db", "upgrade", cwd=tmp_path).stdout == f"schema version {LATEST} (was 0)\n"
    now = time.time()
    with sqlite3.connect(tmp_path / "statemill.db") as conn:
        conn.executemany("INSERT INTO workers (id, host, pid, started_at, last_heartbeat) VALUES (?, ?, ?, ?, ?)",
                         [("dead", "h", 0, now - 600, now - 300), ("alive", "h", 1, now - 600, now)])
    assert [w["workerId"] for w in as_json(sm("workers", "--json", cwd=tmp_path))["workers"]] == ["alive"]
    human = cli("workers", cwd=tmp_path).stdout
    assert "alive" in human and "dead" not in human


def test_db_status_and_prune(tmp_path, cli):
    assert sm("db", "status", cwd=tmp_path).returncode == 1  # nothing there yet, and nothing created
    assert not (tmp_path / "statemill.db").exists()
    cli("run", str(MACHINES / "order_saga.yaml"), "--handlers", DEMO, "--input", json.dumps(GOOD_ORDER), "-q",
        cwd=tmp_path)
    assert cli("db", "status", cwd=tmp_path).stdout == f"database schema version {LATEST}; this statemill expects {LATEST}\n"
    assert cli("db", "upgrade", cwd=tmp_path).stdout == f"schema version {LATEST} (up to date)\n"
    assert as_json(cli("prune", "--older-than", "1h", "--json", cwd=tmp_path)) == {"deleted": 0}
    assert sm("prune", "--older-than", "0s", cwd=tmp_path).stdout == "deleted 1 execution(s)\n"
    assert as_json(cli("list", "--json", cwd=tmp_path)) == {"executions": []}


# ------------------------------------------------------------------------------------------------ safety
INSPECTION = [("list",), ("describe", "m:x"), ("history", "m:x"), ("stop", "m:x"), ("workers",),
              ("prune", "--older-than", "30d"), ("tokens",), ("db", "status")]


def test_inspection_commands_never_import_the_projects_handlers(tmp_path, cli):
    (tmp_path / "pyproject.toml").write_text('[tool.statemill]\nhandlers = ["evil"]\n', encoding="utf-8")
    (tmp_path / "evil.py").write_text("open('IMPORTED', 'w').close()\nHANDLERS = {}\n", encoding="utf-8")
    assert sm("db", "upgrade", cwd=tmp_path).returncode == 0
    assert sm("list", cwd=tmp_path).returncode == 0
    for args in INSPECTION:
        done = cli(*args, cwd=tmp_path)
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr
    assert not (tmp_path / "IMPORTED").exists() and "evil" not in sys.modules


def test_run_imports_the_projects_handlers(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.statemill]\nhandlers = ["mine"]\n', encoding="utf-8")
    (tmp_path / "mine.py").write_text("open('IMPORTED', 'w').close()\nHANDLERS = {'echo': lambda v: v}\n",
                                      encoding="utf-8")
    name = write(tmp_path, "echo.json", {"StartAt": "E", "States": {"E": {"Type": "Task", "Resource": "echo",
                                                                          "End": True}}})
    done = sm("run", name, "--input", '{"n": 0, "b": false, "s": "", "z": null}', "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"n": 0, "b": False, "s": "", "z": None}
    assert (tmp_path / "IMPORTED").exists()


def test_control_characters_in_user_text_are_shown_not_obeyed(tmp_path, cli):
    name = write(tmp_path, "esc.json", {"StartAt": TITLE, "States": {TITLE: {
        "Type": "Fail", "Error": f"E{ESC}[31m", "Cause": f"red{ESC}[0m"}}})
    done = sm("run", name, "--name", "esc", cwd=tmp_path)
    assert done.returncode == 1
    shown = TITLE.replace(ESC, "\\x1b").replace("\x07", "\\x07")
    assert f"→ {shown} (Fail)" in done.stderr and "error: E\\x1b[31m" in done.stderr
    outputs = [done.stdout, done.stderr]
    history = sm("history", "esc:esc", cwd=tmp_path)
    outputs += [history.stdout, history.stderr]
    for args in (("describe", "esc:esc"), ("list",), ("stop", "esc:esc")):
        shown_by = cli(*args, cwd=tmp_path)
        outputs += [shown_by.stdout, shown_by.stderr]
    assert all(ESC not in text and "\x07" not in text for text in outputs)
    assert shown in history.stdout
    events = as_json(cli("history", "esc:esc", "--json", cwd=tmp_path))["events"]
    assert events[1]["stateEnteredEventDetails"]["name"] == TITLE  # --json stays exact


# ------------------------------------------------------------------------------------------------ databases
def test_read_commands_do_not_create_a_database_at_a_mistyped_path(tmp_path, cli):
    assert sm("list", "--db", "typo.db", cwd=tmp_path).returncode == 1
    for args in (("list",), ("describe", "m:x"), ("history", "m:x"), ("stop", "m:x"), ("tokens",), ("workers",),
                 ("prune", "--older-than", "1d"), ("send-task-heartbeat", "--task-token", "t"), ("db", "status")):
        done = cli(*args, "--db", "typo.db", cwd=tmp_path)
        assert done.returncode == 1 and "no database at typo.db (nothing was created)" in done.stderr
    assert list(tmp_path.iterdir()) == []


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    _mount_tmpfs(folder, "1m")  # room for a few batches of SAGA_LOOP's states, not for all of them
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def read_only_disk(tmp_path):
    """A folder on a file system mounted read-only: neither the file nor its folder can be written, as with
    ``chmod 444`` on the file and ``chmod 555`` on the folder for a user other than root."""
    folder = tmp_path / "ro"
    _mount_tmpfs(folder, "16m")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_read_only_database_can_be_inspected_but_not_run_on(tmp_path, read_only_disk, cli):
    cli("run", str(MACHINES / "order_saga.yaml"), "--handlers", DEMO, "--input", json.dumps(GOOD_ORDER), "--name",
        "ro", "-q", cwd=tmp_path)
    with sqlite3.connect(tmp_path / "statemill.db") as conn:  # as when the last process using it has closed it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (read_only_disk / "statemill.db").write_bytes((tmp_path / "statemill.db").read_bytes())
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_disk)], check=True)
    for args in (("list",), ("describe", "order_saga:ro"), ("history", "ro"), ("tokens",), ("workers",),
                 ("db", "status")):
        done = cli(*args, cwd=read_only_disk)
        assert done.returncode == 0, (args, done.stderr)
    assert as_json(sm("describe", "order_saga:ro", "--json", cwd=read_only_disk))["status"] == "SUCCEEDED"
    refused = sm("stop", "order_saga:ro", cwd=read_only_disk)
    assert refused.returncode == 1 and refused.stderr.startswith("error: DatabaseUnavailable: ")
    assert len(refused.stderr.splitlines()) == 1
    assert sorted(p.name for p in read_only_disk.iterdir()) == ["statemill.db"]


SAGA_LOOP = {"StartAt": "Grow", "States": {
    "Grow": {"Type": "Pass", "Parameters": {"blob.$": "States.ArrayRange(1, 1000, 1)", "n.$": "$.n"},
             "Next": "Count"},
    "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Enough?"},
    "Enough?": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 300, "Next": "Done"}],
                "Default": "Grow"},
    "Done": {"Type": "Succeed"}}}


def test_a_full_disk_stops_run_with_one_line_and_loses_nothing_committed(tmp_path, small_disk):
    name = write(tmp_path, "grow.json", SAGA_LOOP)
    db = f"sqlite:///{small_disk / 'statemill.db'}"
    began = time.monotonic()
    done = sm("run", str(tmp_path / name), "--name", "big", "--input", '{"n": 0}', "--db", db, "-q",
              cwd=tmp_path, timeout=120)
    assert time.monotonic() - began < 30
    assert done.returncode == 1
    assert done.stderr.startswith("error: DatabaseError: the database failed: database or disk is full.")
    assert len(done.stderr.splitlines()) == 1
    # What was committed is intact: the execution is still RUNNING with a gapless history, and on a disk with
    # room a worker carries it on to its end.
    for suffix in ("", "-wal"):
        if (small_disk / f"statemill.db{suffix}").exists():
            (tmp_path / f"statemill.db{suffix}").write_bytes((small_disk / f"statemill.db{suffix}").read_bytes())
    with sqlite3.connect(tmp_path / "statemill.db") as conn:  # the stopped worker's lease has run out by now
        conn.execute("UPDATE frames SET lease_until = 0 WHERE lease_until IS NOT NULL")
    from statemill.engine import Engine
    engine = Engine(f"sqlite:///{tmp_path / 'statemill.db'}")
    arn = ARN.format("grow", "big")
    events = engine.history(arn)
    assert engine.status(arn) == "RUNNING"
    assert len(events) > 10 and [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert engine.wait(arn, poll_seconds=0.01)["output"]["n"] == 300
    engine.db.dispose()


# ------------------------------------------------------------------------------------------------ README, CI
def test_readme_python_snippet_runs_as_written(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = text.split("### From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "statemachines").symlink_to(MACHINES)
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "FAILED Payment.Declined\n"), done.stderr


def test_a_missing_postgresql_fails_the_run_when_a_server_is_named(tmp_path):
    (tmp_path / "test_needs_pg.py").write_text("def test_pg(postgres_url):\n    pass\n", encoding="utf-8")
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["STATEMILL_TEST_POSTGRES_URL"] = "postgresql://postgres@127.0.0.1:1/postgres"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_needs_pg.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1 and "1 error" in done.stdout, done.stdout  # a failure, not a skip
    assert "PostgreSQL is required here" in done.stdout


@pytest.mark.parametrize("env, required", [
    ({}, False), ({"CI": "true"}, True), ({"CI": "false"}, False), ({"CI": ""}, False),
    ({"STATEMILL_TEST_POSTGRES_URL": "postgresql://x@h/postgres"}, True),
], ids=["laptop", "ci", "ci-false", "ci-empty", "server-named"])
def test_postgresql_is_required_on_ci_or_when_named(monkeypatch, env, required):
    from conftest import postgres_required
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("STATEMILL_TEST_POSTGRES_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert postgres_required() is required


def test_ci_script_exports_ci():
    assert "export CI=true" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_task_started_is_when_the_handler_started_not_when_it_finished(tmp_path, cli):
    (tmp_path / "slow.py").write_text("import time\n\ndef nap(value):\n    time.sleep(0.5)\n    return value\n\n"
                                      "HANDLERS = {'nap': nap}\n", encoding="utf-8")
    name = write(tmp_path, "nap.json", {"StartAt": "Nap", "States": {"Nap": {"Type": "Task", "Resource": "nap",
                                                                          "End": True}}})
    assert cli("run", name, "--handlers", "slow", "--name", "n", "-q", cwd=tmp_path).returncode == 0
    events = {e["type"]: e["timestamp"] for e in as_json(cli("history", "nap:n", "--json", cwd=tmp_path))["events"]}
    when = {kind: datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() for kind, stamp in events.items()}
    assert when["TaskScheduled"] <= when["TaskStarted"] <= when["TaskSucceeded"] - 0.45


def test_ctrl_c_after_the_execution_finished_prints_its_result_not_interrupted(tmp_path):
    (tmp_path / "impatient.py").write_text(
        "import os, signal, time\n\ndef last(value):\n    os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C\n"
        "    time.sleep(0.2)\n    return {'done': True, 'n': 0}\n\nHANDLERS = {'last': last}\n", encoding="utf-8")
    name = write(tmp_path, "last.json", {"StartAt": "Last", "States": {"Last": {"Type": "Task", "Resource": "last",
                                                                             "End": True}}})
    done = sm("run", name, "--handlers", "impatient", "-q", cwd=tmp_path)
    assert (done.returncode, json.loads(done.stdout)) == (0, {"done": True, "n": 0}), done.stderr
    assert "interrupted" not in done.stderr and "SUCCEEDED" in done.stderr


def test_ctrl_c_while_the_execution_runs_stops_after_the_transition_in_flight_and_says_how_to_resume(tmp_path):
    (tmp_path / "impatient.py").write_text(
        "import os, signal\n\ndef first(value):\n    os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C\n"
        "    return {'n': 0}\n\nHANDLERS = {'first': first}\n", encoding="utf-8")
    name = write(tmp_path, "nap.json", {"StartAt": "First", "States": {
        "First": {"Type": "Task", "Resource": "first", "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    done = sm("run", name, "--handlers", "impatient", "--name", "n", "-q", cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr and "statemill worker" in done.stderr
    events = [e["type"] for e in json.loads(sm("history", "nap:n", "--json", cwd=tmp_path).stdout)["events"]]
    assert "TaskSucceeded" in events and events[-1] == "WaitStateEntered"  # the task's result was committed
