"""Which process claims what: a worker only frames it can serve, a `run` only its own execution.

A task whose handler no live worker has waits (as an AWS activity does) until one starts, or until its
TimeoutSeconds passes; `describe` says what it waits for and `workers` what each worker serves.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given

from enginetools import QUICK, finish, wait_for
from hypothesis import strategies as st

from statemill.cli.main import main as cli
from statemill.engine import Engine, HandlerRegistry, StatesError
from statemill.engine.handlers import LAMBDA_INVOKE, handler_key
from statemill.engine.runtime import expired_leases
from statemill.engine.store import migrations
from statemill.engine.store.db import normalise_url
from statemill.engine.store.schema import executions, frames, history_events, workers

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"
ANY_FUNCTION = "arn:aws:lambda:*:*:function:"
CHILD_STARTS = ["arn:aws:states:::states:startExecution", "arn:aws:states:::states:startExecution.sync",
                "arn:aws:states:::states:startExecution.sync:2"]  # every worker can start child workflows
DATA = {"zero": 0, "no": False, "empty": "", "none": None}


def task(resource: str, **fields) -> dict:
    return {"Type": "Task", "Resource": resource, **fields}


def single(state: dict) -> dict:
    return {"StartAt": "Only", "States": {"Only": {**state, "End": True}}}


def drain(engine: Engine, rounds: int = 40, **options) -> None:
    """Let a worker of ``engine`` go round its loop ``rounds`` times, claiming whatever it may, then stop it."""
    seen = iter(range(rounds))
    worker = engine.worker(**QUICK, **options)
    try:
        worker.run(until=lambda: next(seen, None) is None)
    finally:
        worker.close()


def rows(engine: Engine, arn: str) -> tuple[list, list]:
    """The execution's frames and history events exactly as stored."""
    execution_id = engine.execution_id(arn)
    with engine.db.connect() as conn:
        return (conn.execute(sa.select(frames).where(frames.c.execution_id == execution_id)
                             .order_by(frames.c.id)).all(),
                conn.execute(sa.select(history_events).where(history_events.c.execution_id == execution_id)
                             .order_by(history_events.c.id)).all())


def types(engine: Engine, arn: str) -> list[str]:
    return [event["type"] for event in engine.history(arn)]


@pytest.fixture
def other(engine) -> Engine:
    """A second process's engine on the same database and clock, with handlers of its own."""
    made = Engine(engine.db, clock=engine.clock)
    made.handlers = HandlerRegistry()
    return made


# ---------------------------------------------------------------------------------------- handler keys
@pytest.mark.parametrize("resource, value, key", [
    pytest.param("book", None, "book", id="a_plain_resource_is_its_own_key"),
    pytest.param("notify.waitForTaskToken", None, "notify", id="the_callback_suffix_is_dropped"),
    pytest.param(f"{ARN}greet", None, f"{ANY_FUNCTION}greet", id="a_lambda_arn_keys_its_function"),
    pytest.param(f"{ARN}greet:prod", None, f"{ANY_FUNCTION}greet", id="an_alias_keys_its_function"),
    pytest.param(f"{ARN}greet.waitForTaskToken", None, f"{ANY_FUNCTION}greet", id="a_callback_lambda_arn"),
    pytest.param(LAMBDA_INVOKE, {"FunctionName": "greet", "Payload": 0}, f"{ANY_FUNCTION}greet",
                 id="lambda_invoke_keys_the_function_name"),
    pytest.param(LAMBDA_INVOKE, {"FunctionName": f"{ARN}greet:$LATEST"}, f"{ANY_FUNCTION}greet",
                 id="lambda_invoke_keys_a_qualified_arn"),
    pytest.param(LAMBDA_INVOKE, {"FunctionName": "123456789012:function:greet"}, f"{ANY_FUNCTION}greet",
                 id="lambda_invoke_keys_a_partial_arn"),
    pytest.param(f"{LAMBDA_INVOKE}.waitForTaskToken", {"FunctionName": "greet"}, f"{ANY_FUNCTION}greet",
                 id="lambda_invoke_with_a_callback"),
    pytest.param(LAMBDA_INVOKE, {"FunctionName": 0}, "", id="a_function_name_that_is_no_string_keys_nothing"),
])
def test_the_handler_key_of_a_task(resource, value, key):
    assert handler_key(resource, value) == key


NAMES = st.sampled_from(["book", "greet", "0", "my.fn", ""])
FUNCTION_REFS = NAMES.flatmap(lambda n: st.sampled_from([
    n, f"{ARN}{n}", f"{ARN}{n}:prod", f"arn:aws:lambda:eu-west-1:000000000000:function:{n}",
    f"123456789012:function:{n}", f"function:{n}"]))
RESOURCES = st.one_of(FUNCTION_REFS, FUNCTION_REFS.map(lambda r: r + ".waitForTaskToken"))
TASKS = st.one_of(
    st.tuples(RESOURCES, st.just(DATA)),
    st.tuples(st.sampled_from([LAMBDA_INVOKE, LAMBDA_INVOKE + ".waitForTaskToken"]),
              st.one_of(FUNCTION_REFS, st.sampled_from([0, False, None])).map(lambda f: {"FunctionName": f})))


@pytest.mark.property
@given(registered=st.lists(RESOURCES, max_size=4), tasks=st.lists(TASKS, min_size=1, max_size=6))
def test_a_registry_serves_exactly_the_tasks_it_can_resolve(registered, tasks):
    registry = HandlerRegistry({resource: (lambda value: value) for resource in registered})
    served = set(registry.keys())
    for resource, value in tasks:
        try:
            registry.resolve(resource, value)
            resolved = True
        except StatesError:
            resolved = False
        assert (handler_key(resource, value) in served) == resolved, (resource, value, sorted(served))


# ---------------------------------------------------------------------------------------- workers
TRIP = {"StartAt": "Book", "States": {
    "Book": task("book", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Cancel"}], Next="Done"),
    "Cancel": task("cancel", Next="Cancelled"),
    "Cancelled": {"Type": "Fail", "Error": "Trip.Cancelled"},
    "Done": {"Type": "Succeed"}}}


def test_a_worker_never_claims_a_task_it_has_no_handler_for(engine, other):
    engine.register(TRIP, "trip")
    arn = engine.start("trip", DATA)["executionArn"]
    other.handler("echo")(lambda value: value)
    drain(other)  # advances the frame to the task (no handler needed), then leaves it alone
    before = rows(engine, arn)
    assert types(engine, arn) == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled"]
    drain(other)
    assert engine.status(arn) == "RUNNING"
    assert rows(engine, arn) == before  # never claimed (a claim would have set and cleared the lease)
    frame = before[0][0]
    assert (frame.phase, frame.handler_key, frame.lease_owner) == ("task", "book", None)

    engine.handler("book")(lambda value: {**value, "booked": True})
    result = finish(engine, arn)
    assert (result["status"], result["output"]) == ("SUCCEEDED", {**DATA, "booked": True})
    assert "TaskFailed" not in types(engine, arn)


def test_a_worker_with_no_handlers_advances_states_that_need_none(engine, other):
    definition = {"StartAt": "First", "States": {"First": {"Type": "Pass", "Result": 0, "Next": "Nap"},
                                                  "Nap": {"Type": "Wait", "Seconds": 60, "Next": "Last"},
                                                  "Last": {"Type": "Pass", "End": True}}}
    engine.register(definition, "m")
    arn = engine.start("m", DATA)["executionArn"]
    assert finish(other, arn)["output"] == 0


LAMBDA_TASKS = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": "ByArn", "States": {"ByArn": task(f"{ARN}alpha:prod", End=True)}},
    {"StartAt": "ByInvoke", "States": {"ByInvoke": task(
        LAMBDA_INVOKE, Parameters={"FunctionName": f"{ARN}beta", "Payload.$": "$"},
        ResultSelector={"body.$": "$.Payload"}, End=True)}}]}}}


def test_lambda_tasks_go_to_the_worker_serving_their_function(engine, other):
    calls = []
    engine.handler("arn:aws:lambda:eu-west-1:000000000000:function:alpha")(
        lambda value: calls.append("alpha") or "a")
    other.handler("beta")(lambda value: calls.append("beta") or {"b": value})
    engine.register(LAMBDA_TASKS, "m")
    arn = engine.start("m", DATA)["executionArn"]

    drain(engine)
    assert calls == ["alpha"] and engine.status(arn) == "RUNNING"
    waiting = engine.waiting_for_workers(arn)
    assert [(w["stateName"], w["resource"], w["handlerKey"]) for w in waiting] == \
        [("ByInvoke", LAMBDA_INVOKE, f"{ANY_FUNCTION}beta")]

    result = finish(other, arn)
    assert calls == ["alpha", "beta"]
    assert (result["status"], result["output"]) == ("SUCCEEDED", ["a", {"body": {"b": DATA}}])


@pytest.mark.parametrize("handlers", [{}, {"echo": lambda value: value}], ids=["no_handlers", "other_handlers"])
def test_a_task_no_worker_serves_still_times_out(engine, other, handlers):
    other.handlers.update(handlers)
    engine.register(single(task("nobody", TimeoutSeconds=30)), "m")
    arn = engine.start("m", DATA)["executionArn"]
    started = engine.clock.now()
    result = finish(other, arn)
    assert (result["status"], result["error"]) == ("FAILED", "States.Timeout")
    assert types(engine, arn)[-2:] == ["TaskTimedOut", "ExecutionFailed"]
    assert engine.clock.now() - started >= 30


# ---------------------------------------------------------------------------------------- run
def test_run_drives_only_its_own_execution(engine):
    engine.register({"StartAt": "Step", "States": {"Step": {"Type": "Pass", "Next": "Book"},
                                                    "Book": task("book", End=True)}}, "trip")
    trip = engine.start("trip", DATA)["executionArn"]
    before = rows(engine, trip)
    engine.handler("echo")(lambda value: value)
    engine.handler("book")(lambda value: value)  # even a handler for its task does not make run take it
    result = engine.run({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"StartAt": "Echo", "States": {"Echo": task("echo", End=True)}}}}},
        {"items": [0, False, "", None]}, machine_name="simple", **QUICK)
    assert (result["status"], result["output"]) == ("SUCCEEDED", [0, False, "", None])
    assert rows(engine, trip) == before


def test_run_fails_its_own_task_that_has_no_handler(engine):
    engine.handler("echo")(lambda value: value)
    result = engine.run(single(task("cancel")), DATA, machine_name="m", **QUICK)
    assert (result["status"], result["error"]) == ("FAILED", "States.TaskFailed")
    assert "No handler is registered for resource 'cancel'" in result["cause"]


# ---------------------------------------------------------------------------------------- describe, workers
def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_describe_and_workers_say_who_serves_what(db_url):
    engine = Engine(db_url)  # the system clock: a live worker in a thread, as `statemill worker` runs
    engine.handlers = HandlerRegistry({"echo": lambda value: value})
    engine.register(single(task("book", TimeoutSeconds=3600)), "trip")
    arn = engine.start("trip", DATA)["executionArn"]
    worker = engine.worker(**QUICK)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: engine.workers() and engine.waiting_for_workers(arn), 60)
        described = json.loads(invoke("describe", arn, "--db", db_url, "--json"))
        [waiting] = described["waitingForWorkers"]
        assert waiting == {"stateName": "Only", "resource": "book", "handlerKey": "book",
                           "since": waiting["since"], "timeoutDate": waiting["timeoutDate"],
                           "liveWorkersServing": 0}
        assert described["startDate"] <= waiting["since"] < waiting["timeoutDate"]
        assert f"Only since {waiting['since']}: for a worker serving book (live workers serving it: 0)" in \
            invoke("describe", arn, "--db", db_url)
        [listed] = json.loads(invoke("workers", "--db", db_url, "--json"))["workers"]
        assert (listed["workerId"], listed["handlerKeys"]) == (worker.id, [f"{ANY_FUNCTION}echo", *CHILD_STARTS, "echo"])
        header, row = invoke("workers", "--db", db_url).splitlines()
        assert header.split()[-1] == "SERVES" and row.endswith(f"  {ANY_FUNCTION}echo, {', '.join(CHILD_STARTS)}, echo")
    finally:
        worker.stop()
        thread.join()
        worker.close()
        engine.db.dispose()


# ---------------------------------------------------------------------------------------- migration 2
NEW_COLUMNS = [("frames", "handler_key"), ("frames", "task_deadline"), ("workers", "handler_keys"),
               ("workers", "execution_id")]


@pytest.fixture
def empty_url(db_url, tmp_path, request) -> str:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database (dropped afterwards)."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("empty_postgres_url")


def test_migration_2_upgrades_a_version_1_database_with_work_in_flight(empty_url):
    engine = Engine(empty_url)
    engine.register(single(task("book")), "trip")
    arn = engine.start("trip", DATA)["executionArn"]
    with engine.db.begin() as conn:  # back to version 1: the columns it had, the version it recorded
        conn.execute(sa.text("DROP INDEX ix_frames_task_deadline"))
        for table, column in NEW_COLUMNS:
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(sa.text("UPDATE statemill_schema SET version = 1"))
    engine.db.dispose()

    db = sa.create_engine(normalise_url(empty_url))
    assert migrations.upgrade(db) == (1, migrations.LATEST)
    assert migrations.upgrade(db) == (migrations.LATEST, migrations.LATEST)
    names = {table: {c["name"] for c in sa.inspect(db).get_columns(table)} for table in ("frames", "workers")}
    assert all(column in names[table] for table, column in NEW_COLUMNS)
    assert "ix_frames_task_deadline" in {i["name"] for i in sa.inspect(db).get_indexes("frames")}
    db.dispose()

    upgraded = Engine(empty_url)
    upgraded.handler("book")(lambda value: {**value, "booked": True})
    assert finish(upgraded, arn)["output"] == {**DATA, "booked": True}
    upgraded.db.dispose()


# ---------------------------------------------------------------------------------------- the probe, as processes
TRIP_YAML = """\
StartAt: Book
States:
  Book:
    Type: Task
    Resource: book
    Catch: [{ErrorEquals: [States.ALL], Next: Cancel}]
    Next: Done
  Cancel: {Type: Task, Resource: cancel, Next: Cancelled}
  Cancelled: {Type: Fail, Error: Trip.Cancelled}
  Done: {Type: Succeed}
"""
HANDLER_MODULES = {
    "h_ok.py": 'HANDLERS = {"echo": lambda value: value}\n',
    "h_trip.py": 'HANDLERS = {"book": lambda value: {**value, "booked": True}, "cancel": lambda value: value}\n',
}


def statemill(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    return subprocess.run([sys.executable, "-m", "statemill.cli.main", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def spawn_worker(folder: Path, db_url: str, handlers: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    return subprocess.Popen([sys.executable, "-m", "statemill.cli.main", "worker", "--handlers", handlers,
                             "--db", db_url, "--quiet"], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stop_worker(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr


def test_the_probe_through_the_cli_other_processes_leave_the_trip_alone(tmp_path, db_url):
    for name, text in {**HANDLER_MODULES, "trip_saga.yaml": TRIP_YAML,
                       "simple.yaml": "StartAt: Echo\nStates: {Echo: {Type: Task, Resource: echo, End: true}}\n"
                       }.items():
        (tmp_path / name).write_text(text)
    trip = statemill(tmp_path, "start", "trip_saga.yaml", "--db", db_url, "--input", json.dumps(DATA))
    assert trip.returncode == 0, trip.stderr
    arn = trip.stdout.strip()
    client = Engine(db_url)
    try:
        before = rows(client, arn)
        ran = statemill(tmp_path, "run", "simple.yaml", "--handlers", "h_ok", "--db", db_url, "--json",
                        "--input", "0")
        assert (ran.returncode, json.loads(ran.stdout)["output"]) == (0, 0), ran.stderr
        assert rows(client, arn) == before

        worker = spawn_worker(tmp_path, db_url, "h_ok")
        try:
            wait_for(lambda: len(client.history(arn)) == 3, 60)  # it may enter Book and schedule its task
            time.sleep(1.0)  # and then must leave it alone
            described = json.loads(statemill(tmp_path, "describe", arn, "--db", db_url, "--json").stdout)
            listed = json.loads(statemill(tmp_path, "workers", "--db", db_url, "--json").stdout)["workers"]
        finally:
            stop_worker(worker)
        assert described["status"] == "RUNNING"
        assert [(w["stateName"], w["handlerKey"], w["liveWorkersServing"])
                for w in described["waitingForWorkers"]] == [("Book", "book", 0)]
        assert [w["handlerKeys"] for w in listed] == [[f"{ANY_FUNCTION}echo", *CHILD_STARTS, "echo"]]
        assert types(client, arn) == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled"]
        with client.db.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(workers)).scalar() == 0

        worker = spawn_worker(tmp_path, db_url, "h_trip")
        try:
            wait_for(lambda: client.status(arn) != "RUNNING", 60)
        finally:
            stop_worker(worker)
        result = client.describe(arn)
        assert (result["status"], result["output"]) == ("SUCCEEDED", {**DATA, "booked": True})
        assert "TaskFailed" not in types(client, arn)
    finally:
        client.db.dispose()


def test_migration_13_indexes_what_an_idle_worker_reads_each_poll_and_sweep(db_url):
    # With 100,000 executions parked, the earliest running deadline, the timed-out executions (each poll) and the
    # expired leases (each sweep) read every execution or every frame, and filled a pooled connection's page cache;
    # on PostgreSQL each claim sorted every due frame of a Map.
    engine = Engine(db_url)
    with engine.db.begin() as conn:  # back to version 12
        conn.execute(sa.text("DROP INDEX ix_executions_deadline"))
        conn.execute(sa.text("DROP INDEX ix_frames_runnable"))
        conn.execute(sa.text("CREATE INDEX ix_frames_runnable ON frames (run_at) WHERE status = 'ACTIVE'"))
        conn.execute(sa.text("UPDATE statemill_schema SET version = 12"))
    assert migrations.upgrade(engine.db) == (12, migrations.LATEST)
    with engine.db.connect() as conn:
        assert "ix_executions_deadline" in {i["name"] for i in sa.inspect(conn).get_indexes("executions")}
        runnable = {i["name"]: i for i in sa.inspect(conn).get_indexes("frames")}["ix_frames_runnable"]
        assert runnable["column_names"] == ["run_at", "id"]
        if conn.dialect.name != "sqlite":
            return  # EXPLAIN QUERY PLAN is SQLite's
        for query, index in [
                (sa.select(executions.c.id).where(executions.c.status == "RUNNING", executions.c.deadline_at <= 5.0),
                 "ix_executions_deadline"),
                (sa.select(sa.func.min(executions.c.deadline_at)).where(executions.c.status == "RUNNING"),
                 "ix_executions_deadline"),
                (expired_leases(5.0), "ix_frames_runnable")]:
            plan = " ".join(str(r[-1]) for r in conn.execute(sa.text("EXPLAIN QUERY PLAN " + str(
                query.compile(conn, compile_kwargs={"literal_binds": True})))))
            assert f"INDEX {index}" in plan, plan
