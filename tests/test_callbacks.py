"""Task-token callbacks: a ``.waitForTaskToken`` task hands out a token and the execution waits, in the database
only, until someone answers it from any process, or a deadline passes.

The spec, as AWS behaves: history TaskStateEntered → TaskScheduled → TaskStarted → TaskSubmitted →
TaskSucceeded/TaskFailed/TaskTimedOut → TaskStateExited; SendTaskSuccess/Failure/Heartbeat with AWS's error names
(InvalidToken, TaskTimedOut, InvalidOutput) and nothing written when one is raised; HeartbeatSeconds expiry is
States.HeartbeatTimeout, matched by States.Timeout and States.ALL; heartbeats never extend TimeoutSeconds; every
attempt gets a fresh token; stopping cancels tokens; exactly one of many racing answers wins.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from enginetools import finish, wait_for
from statemill.cli.main import main as cli
from statemill.engine import (Engine, InvalidOutput, InvalidToken, StatemillError, TaskDoesNotExist, TaskTimedOut)
from statemill.engine.clock import iso
from statemill.engine.runtime import TERMINAL, claim, commit, new_token, trigger_for
from statemill.engine.store.schema import executions, frames, history_events, state_machines, task_tokens

ROOT = Path(__file__).resolve().parent.parent
CALLBACK = "notify.waitForTaskToken"
# Values small engines wrongly treat as missing: each must come back exactly as sent.
FALSY = {"zero": 0, "false": False, "empty_string": "", "null": None,
         "object_of_falsy": {"n": 0, "b": False, "s": "", "z": None, "a": []}}


# ----------------------------------------------------------------------------------------------- helpers
def task(resource: str = CALLBACK, **fields) -> dict:
    """A callback Task that passes its token (and its input) to the handler."""
    return {"Type": "Task", "Resource": resource,
            "Parameters": {"token.$": "$$.Task.Token", "input.$": "$"}, **fields}


def single(state: dict, extra: dict | None = None) -> dict:
    return {"StartAt": "Ask", "States": {"Ask": state, **(extra or {})}}


class Outbox:
    """The ``notify`` handler: records what each task handed out (its Parameters and context) and returns."""

    def __init__(self):
        self.calls: list[tuple[dict, object]] = []

    def __call__(self, value, context):
        self.calls.append((value, context))
        return {"sent": True, "count": 0}

    def tokens(self) -> list[str]:
        return [value["token"] for value, _ in self.calls]


@pytest.fixture
def outbox(engine) -> Outbox:
    box = Outbox()
    engine.handler("notify")(box)
    return box


@pytest.fixture
def live(db_url) -> Engine:
    """An engine on the real clock, for tests with worker threads and other processes."""
    made = Engine(db_url)
    yield made
    made.db.dispose()


def start(engine: Engine, definition: dict, value=None, name: str = "m") -> str:
    engine.register(definition, name)
    return engine.start(name, {"n": 0, "flag": False, "text": "", "nothing": None} if value is None
                        else value)["executionArn"]


def busy(engine: Engine) -> bool:
    """Whether some frame is runnable now or held by a worker."""
    now = engine.clock.now()
    with engine.db.connect() as conn:
        return conn.execute(sa.select(frames.c.id).where(
            frames.c.status == "ACTIVE",
            sa.or_(frames.c.run_at <= now, frames.c.lease_owner.is_not(None))).limit(1)).first() is not None


def drain(engine: Engine) -> None:
    """Run a worker until nothing is runnable *now*: executions waiting on tokens stay parked, the clock stays
    (an idle worker would otherwise move a fake clock on to the next deadline)."""
    worker = engine.worker(poll_seconds=0.01)
    engine.clock.sleep = lambda seconds, wake=None: time.sleep(0.002)
    try:
        worker.run(until=lambda: not busy(engine))
    finally:
        del engine.clock.sleep
        worker.close()


@contextlib.contextmanager
def running_worker(engine: Engine):
    """A worker serving the database in a background thread for the duration of the block."""
    worker = engine.worker(poll_seconds=0.02)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(10)
        worker.close()


def pending(engine: Engine, arn: str | None = None) -> list[str]:
    return [item["taskToken"] for item in engine.pending_tokens(arn)]


def types(engine: Engine, arn: str) -> list[str]:
    return [event["type"] for event in engine.history(arn)]


def events_of(engine: Engine, arn: str, kind: str) -> list[dict]:
    return [event for event in engine.history(arn) if event["type"] == kind]


def token_row(engine: Engine, token: str):
    with engine.db.connect() as conn:
        return conn.execute(sa.select(task_tokens).where(task_tokens.c.token == token)).one()


def root_frame(engine: Engine, arn: str):
    with engine.db.connect() as conn:
        return conn.execute(sa.select(frames).join(executions, frames.c.execution_id == executions.c.id)
                            .where(executions.c.arn == arn, frames.c.parent_id.is_(None))).one()


def snapshot(engine: Engine) -> dict:
    """Every row of every table, to prove a refused call wrote nothing."""
    with engine.db.connect() as conn:
        return {table.name: conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
                for table in (state_machines, executions, frames, history_events, task_tokens)}


def python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          **kwargs)


def statemill(*args: str) -> subprocess.CompletedProcess:
    """The ``statemill`` command in a process of its own."""
    return python("-m", "statemill.cli.main", *args)


# Checks made before any write: one database is enough (keeps the file's run short).
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
SUCCESS_PATH = ["ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSubmitted",
                "TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]


# ----------------------------------------------------------------------------------------------- success
@pytest.mark.parametrize("output", list(FALSY.values()), ids=list(FALSY))
def test_success_output_becomes_the_task_result(engine, outbox, output):
    arn = start(engine, single(task(ResultPath="$.answer", End=True)))
    drain(engine)
    [token] = outbox.tokens()
    assert pending(engine, arn) == [token] and engine.status(arn) == "RUNNING"
    assert engine.send_task_success(token, json.dumps(output)) == {"executionArn": arn, "stateName": "Ask"}
    result = finish(engine, arn)
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == {"n": 0, "flag": False, "text": "", "nothing": None, "answer": output}
    assert types(engine, arn) == SUCCESS_PATH
    assert events_of(engine, arn, "TaskSucceeded")[0]["taskSucceededEventDetails"]["output"] == json.dumps(
        output, separators=(",", ":"))


@SQLITE_ONLY
@pytest.mark.parametrize("output", list(FALSY.values()), ids=list(FALSY))
def test_success_accepts_python_values_as_well_as_json_text(engine, outbox, output):
    arn = start(engine, single(task(End=True)))
    drain(engine)
    engine.send_task_success(outbox.tokens()[0], output if not isinstance(output, str) else json.dumps(output))
    assert finish(engine, arn)["output"] == output


def test_token_is_in_parameters_and_context_and_listed(engine, outbox):
    arn = start(engine, single(task(End=True, HeartbeatSeconds=30)))
    drain(engine)
    [(value, context)] = outbox.calls
    assert value["token"] == context.task_token and value["input"]["flag"] is False
    [listed] = engine.pending_tokens(arn)
    assert listed["taskToken"] == value["token"] and listed["stateName"] == "Ask"
    assert listed["heartbeatDeadline"] == iso(engine.clock.now() + 30)
    submitted = events_of(engine, arn, "TaskSubmitted")[0]["taskSubmittedEventDetails"]
    assert json.loads(submitted["output"]) == {"sent": True, "count": 0}


def test_result_selector_and_result_path_apply_to_the_answer(engine, outbox):
    arn = start(engine, single(task(ResultSelector={"ok.$": "$.ok", "count.$": "$.count"}, ResultPath="$.r",
                                    OutputPath="$.r", End=True)))
    drain(engine)
    engine.send_task_success(outbox.tokens()[0], '{"ok": false, "count": 0, "dropped": ""}')
    assert finish(engine, arn)["output"] == {"ok": False, "count": 0}


def test_lambda_invoke_wait_for_task_token_resolves_the_function(engine):
    seen = []
    engine.handler("approver")(lambda payload: seen.append(payload) or {"queued": 0})
    definition = single({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                         "Parameters": {"FunctionName": "approver", "Payload": {"token.$": "$$.Task.Token"}},
                         "End": True})
    arn = start(engine, definition)
    drain(engine)
    submitted = json.loads(events_of(engine, arn, "TaskSubmitted")[0]["taskSubmittedEventDetails"]["output"])
    assert submitted["Payload"] == {"queued": 0} and submitted["StatusCode"] == 200
    engine.send_task_success(seen[0]["token"], "false")
    assert finish(engine, arn)["output"] is False  # the answer itself, not wrapped like an invoke result


def test_task_without_the_token_in_parameters_still_waits(engine):
    engine.handler("notify")(lambda value: {"sent": value})
    arn = start(engine, single({"Type": "Task", "Resource": CALLBACK, "End": True}))
    drain(engine)
    assert engine.status(arn) == "RUNNING"
    engine.send_task_success(pending(engine, arn)[0], '""')
    assert finish(engine, arn)["output"] == ""


# ----------------------------------------------------------------------------------------------- failure
FAILURES = {
    "named_error_caught_by_name": (("Rejected", "over budget"), ["Rejected"],
                                   {"Error": "Rejected", "Cause": "over budget"}),
    "null_error_and_cause_caught_by_all": ((None, None), ["States.ALL"], {"Error": None, "Cause": None}),
    "empty_strings_kept": (("", ""), ["States.ALL"], {"Error": "", "Cause": ""}),
    "task_failed_matches_a_custom_name": (("Rejected", None), ["States.TaskFailed"],
                                          {"Error": "Rejected", "Cause": None}),
}


@pytest.mark.parametrize("sent, equals, error_output", list(FAILURES.values()), ids=list(FAILURES))
def test_failure_goes_through_catch_under_the_given_name(engine, outbox, sent, equals, error_output):
    definition = single(task(Catch=[{"ErrorEquals": equals, "ResultPath": "$.error", "Next": "Handled"}], End=True),
                        {"Handled": {"Type": "Pass", "End": True}})
    arn = start(engine, definition, {"zero": 0})
    drain(engine)
    engine.send_task_failure(outbox.tokens()[0], *sent)
    result = finish(engine, arn)
    assert result["status"] == "SUCCEEDED" and result["output"] == {"zero": 0, "error": error_output}
    assert types(engine, arn)[4:7] == ["TaskSubmitted", "TaskFailed", "TaskStateExited"]
    details = events_of(engine, arn, "TaskFailed")[0]["taskFailedEventDetails"]
    assert (details.get("error"), details.get("cause")) == sent


def test_uncaught_failure_fails_the_execution_without_state_exited(engine, outbox):
    arn = start(engine, single(task(Catch=[{"ErrorEquals": ["Other"], "Next": "X"}], End=True),
                               {"X": {"Type": "Pass", "End": True}}))
    drain(engine)
    engine.send_task_failure(outbox.tokens()[0], "Rejected", "no")
    result = finish(engine, arn)
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "Rejected", "no")
    assert types(engine, arn)[-2:] == ["TaskFailed", "ExecutionFailed"]


def test_uncaught_null_failure_fails_without_error_or_cause(engine, outbox):
    arn = start(engine, single(task(End=True)))
    drain(engine)
    engine.send_task_failure(outbox.tokens()[0])
    result = finish(engine, arn)
    assert result["status"] == "FAILED" and "error" not in result and "cause" not in result


# ----------------------------------------------------------------------------------------------- retries
def test_each_retry_attempt_gets_a_fresh_token_and_the_old_one_is_refused(engine, outbox):
    definition = single(task(Retry=[{"ErrorEquals": ["Rejected"], "IntervalSeconds": 10, "MaxAttempts": 2}],
                             End=True))
    arn = start(engine, definition)
    drain(engine)
    [first] = outbox.tokens()
    engine.send_task_failure(first, "Rejected", "")
    drain(engine)  # now in its 10 s backoff
    assert pending(engine, arn) == []
    with pytest.raises(TaskTimedOut):
        engine.send_task_success(first, "0")
    engine.clock.advance(10)
    drain(engine)
    [_, second] = outbox.tokens()
    assert second != first and pending(engine, arn) == [second]
    assert outbox.calls[1][1].attempt == 1
    for call in (lambda: engine.send_task_success(first, "0"), lambda: engine.send_task_heartbeat(first),
                 lambda: engine.send_task_failure(first, "Rejected")):
        with pytest.raises(TaskTimedOut):
            call()
    engine.send_task_success(second, '{"attempt": 1}')
    assert finish(engine, arn)["output"] == {"attempt": 1}
    assert types(engine, arn).count("TaskScheduled") == 2


def test_a_timed_out_attempt_token_is_refused_during_the_retry_backoff(engine, outbox):
    definition = single(task(TimeoutSeconds=5, End=True,
                             Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 60, "MaxAttempts": 1}]))
    arn = start(engine, definition)
    drain(engine)
    [first] = outbox.tokens()
    engine.clock.advance(5)
    drain(engine)
    assert token_row(engine, first).status == "TIMED_OUT" and root_frame(engine, arn).phase == "retry"
    with pytest.raises(TaskTimedOut):
        engine.send_task_success(first, "0")
    engine.clock.advance(60)
    drain(engine)
    engine.send_task_success(outbox.tokens()[1], "null")
    assert finish(engine, arn)["output"] is None


# ----------------------------------------------------------------------------------------------- deadlines
HEARTBEATS = {
    # beats: seconds after the hand-out at which a heartbeat arrives; then the error and when it fires
    "no_heartbeat": ([], "States.HeartbeatTimeout", 60),
    "heartbeats_then_silence": ([50, 100], "States.HeartbeatTimeout", 160),
    "heartbeats_never_extend_timeout": ([50, 100, 150, 200, 250, 290], "States.Timeout", 300),
}


@pytest.mark.parametrize("beats, error, fires", list(HEARTBEATS.values()), ids=list(HEARTBEATS))
def test_heartbeat_window_and_timeout_with_fake_clock(engine, outbox, beats, error, fires):
    arn = start(engine, single(task(HeartbeatSeconds=60, TimeoutSeconds=300, End=True)))
    t0 = engine.clock.now()
    drain(engine)
    [token] = outbox.tokens()
    for beat in beats:
        engine.clock.advance(t0 + beat - engine.clock.now())
        before = len(engine.history(arn))
        engine.send_task_heartbeat(token)
        assert len(engine.history(arn)) == before, "a heartbeat writes no event"
        drain(engine)
        assert engine.status(arn) == "RUNNING"
        frame = root_frame(engine, arn)
        assert frame.run_at == min(t0 + beat + 60, t0 + 300) and frame.data["heartbeat_at"] == t0 + beat + 60
        assert token_row(engine, token).heartbeat_deadline == t0 + beat + 60
    result = finish(engine, arn)
    assert (result["status"], result["error"]) == ("FAILED", error)
    [timed_out] = events_of(engine, arn, "TaskTimedOut")
    assert timed_out["taskTimedOutEventDetails"]["error"] == error and timed_out["timestamp"] == iso(t0 + fires)
    with pytest.raises(TaskTimedOut):
        engine.send_task_heartbeat(token)


@SQLITE_ONLY
@pytest.mark.parametrize("equals, caught", [(["States.HeartbeatTimeout"], True), (["States.Timeout"], True),
                                            (["States.ALL"], True), (["States.TaskFailed"], False)],
                         ids=["by_its_name", "by_states_timeout", "by_states_all", "not_by_task_failed"])
def test_heartbeat_timeout_matching_in_catch(engine, outbox, equals, caught):
    definition = single(task(HeartbeatSeconds=5, End=True,
                             Catch=[{"ErrorEquals": equals, "ResultPath": "$.late", "Next": "Late"}]),
                        {"Late": {"Type": "Pass", "End": True}})
    arn = start(engine, definition, {"flag": False})
    result = finish(engine, arn)
    if caught:
        assert result["output"] == {"flag": False, "late": {"Error": "States.HeartbeatTimeout", "Cause": ""}}
    else:
        assert (result["status"], result["error"]) == ("FAILED", "States.HeartbeatTimeout")


def test_heartbeat_timeout_can_be_retried_with_a_fresh_token(engine, outbox):
    definition = single(task(HeartbeatSeconds=5, End=True,
                             Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1}]))
    arn = start(engine, definition)
    drain(engine)
    engine.clock.advance(5)
    drain(engine)
    engine.clock.advance(1)
    drain(engine)
    first, second = outbox.tokens()
    with pytest.raises(TaskTimedOut):
        engine.send_task_success(first, "0")
    engine.send_task_success(second, "0")
    assert finish(engine, arn)["output"] == 0


def test_answers_after_a_deadline_passed_are_refused_before_the_worker_notices(engine, outbox):
    arn = start(engine, single(task(TimeoutSeconds=30, End=True)))
    drain(engine)
    [token] = outbox.tokens()
    engine.clock.advance(30)
    before = snapshot(engine)
    with pytest.raises(TaskTimedOut, match="TimeoutSeconds"):
        engine.send_task_success(token, "0")
    assert snapshot(engine) == before
    assert (finish(engine, arn)["status"], types(engine, arn)[-2]) == ("FAILED", "TaskTimedOut")


def test_a_frame_woken_early_re_arms_instead_of_timing_out(engine, outbox):
    arn = start(engine, single(task(HeartbeatSeconds=60, TimeoutSeconds=300, End=True)))
    t0 = engine.clock.now()
    drain(engine)
    [token] = outbox.tokens()
    engine.clock.advance(30)
    frame_id = root_frame(engine, arn).id
    with engine.db.begin() as conn:  # a spurious wake-up, 30 s before the heartbeat deadline
        conn.execute(frames.update().where(frames.c.id == frame_id).values(run_at=engine.clock.now()))
    drain(engine)
    assert "TaskTimedOut" not in types(engine, arn) and pending(engine, arn) == [token]
    assert root_frame(engine, arn).run_at == t0 + 60 and root_frame(engine, arn).lease_owner is None
    engine.send_task_success(token, '{"late": false}')
    assert finish(engine, arn)["output"] == {"late": False}


def test_a_heartbeat_racing_a_claimed_deadline_re_arms_with_the_new_deadline(engine, outbox):
    """The worker claimed the frame at its heartbeat deadline, a heartbeat committed just before the worker
    decided: the fresh token row wins over the worker's stale snapshot."""
    arn = start(engine, single(task(HeartbeatSeconds=60, End=True)))
    t0 = engine.clock.now()
    drain(engine)
    [token] = outbox.tokens()
    engine.clock.advance(60)
    with engine.db.begin() as conn:
        [claimed] = claim(conn, "w1", 1, engine.clock.now(), 30)
    assert claimed.data["heartbeat_at"] == t0 + 60
    with engine.db.begin() as conn:  # the heartbeat lands a moment before the deadline, in the client's view
        conn.execute(task_tokens.update().where(task_tokens.c.token == token).values(heartbeat_deadline=t0 + 119))
    info = engine.execution_info(claimed.execution_id)
    with engine.db.begin() as conn:
        trigger = trigger_for(conn, claimed, engine.clock.now())
        assert (trigger.kind, trigger.value) == ("rearm", t0 + 119)
        t = commit(conn, engine.machine(info.machine_id), claimed, trigger, info, "w1", engine.clock.now(), 30,
                   True, engine.payload_limit, new_token())
    assert t.events == [] and t.run_at == t0 + 119
    frame = root_frame(engine, arn)
    assert (frame.run_at, frame.data["heartbeat_at"], frame.lease_owner) == (t0 + 119, t0 + 119, None)
    assert frame.last_event_id == claimed.last_event_id


@SQLITE_ONLY
def test_heartbeat_with_the_real_clock(live):
    live.handler("notify")(lambda value: {"sent": True})
    definition = single(task(HeartbeatSeconds=1, TimeoutSeconds=60, End=True,
                             Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "Late"}]),
                        {"Late": {"Type": "Pass", "End": True}})
    arn = start(live, definition)
    with running_worker(live):
        [token] = wait_for(lambda: pending(live, arn))
        for _ in range(5):  # 1.5 s of heartbeats every 0.3 s keep a 1 s window open
            time.sleep(0.3)
            live.send_task_heartbeat(token)
        assert live.status(arn) == "RUNNING"
        last = time.time()
        wait_for(lambda: live.status(arn) in TERMINAL, 10)
    result = live.describe(arn)
    assert result["output"] == {"Error": "States.HeartbeatTimeout", "Cause": ""}
    fired = events_of(live, arn, "TaskTimedOut")[0]["timestamp"]
    assert fired >= iso(last + 0.9)
    with pytest.raises(TaskTimedOut):
        live.send_task_heartbeat(token)


def test_heartbeat_without_heartbeat_seconds_is_accepted_and_changes_nothing(engine, outbox):
    start(engine, single(task(End=True)))
    drain(engine)
    token = outbox.tokens()[0]
    before = snapshot(engine)
    engine.send_task_heartbeat(token)
    assert snapshot(engine) == before


# ----------------------------------------------------------------------------------------------- refusals
BAD_TOKENS = {
    "empty": "",
    "too_long": "a" * 2049,
    "not_text": 12345,
    "none": None,
    "control_characters": "abc\n",
    "never_issued": "not-a-real-token",
    "one_character_off": "CHANGED",
}


@SQLITE_ONLY
@pytest.mark.parametrize("bad", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
def test_bad_tokens_are_invalid_token_and_change_nothing(engine, outbox, bad):
    start(engine, single(task(HeartbeatSeconds=60, End=True)))
    drain(engine)
    if bad == "CHANGED":
        real = outbox.tokens()[0]
        bad = real[:-1] + ("A" if real[-1] != "A" else "B")
    before = snapshot(engine)
    for call in (lambda: engine.send_task_success(bad, "0"), lambda: engine.send_task_failure(bad, "E", "c"),
                 lambda: engine.send_task_heartbeat(bad)):
        with pytest.raises(InvalidToken):
            call()
    assert snapshot(engine) == before


BAD_OUTPUTS = {
    "truncated_object": "{",
    "empty_text": "",
    "nan": "NaN",
    "infinity": "[Infinity]",
    "trailing_comma": "[1,]",
    "single_quotes": "{'a': 1}",
    "two_values": "1 2",
    "not_utf8": b"\xff",
    "python_set": {1, 2},
    "python_nan": float("nan"),
    "over_payload_limit": json.dumps("x" * 262_144),
    "failure_error_too_long": ("failure", "E" * 257),
}


@SQLITE_ONLY
@pytest.mark.parametrize("bad", list(BAD_OUTPUTS.values()), ids=list(BAD_OUTPUTS))
def test_bad_outputs_are_invalid_output_and_change_nothing(engine, outbox, bad):
    arn = start(engine, single(task(End=True)))
    drain(engine)
    [token] = outbox.tokens()
    before = snapshot(engine)
    with pytest.raises(InvalidOutput):
        if isinstance(bad, tuple):
            engine.send_task_failure(token, bad[1])
        else:
            engine.send_task_success(token, bad)
    assert snapshot(engine) == before
    engine.send_task_success(token, json.dumps("x" * 262_000))  # the token still works; the limit is inclusive
    assert finish(engine, arn)["output"] == "x" * 262_000


CLOSED = {
    "answered_twice": lambda engine, arn, token: engine.send_task_success(token, "0"),
    "answered_with_failure": lambda engine, arn, token: engine.send_task_failure(token, "E"),
    "execution_stopped": lambda engine, arn, token: engine.stop(arn),
    "execution_finished": lambda engine, arn, token: (engine.send_task_success(token, "0"), finish(engine, arn)),
    "timed_out": lambda engine, arn, token: (engine.clock.advance(100), finish(engine, arn)),
}


@pytest.mark.parametrize("close", list(CLOSED.values()), ids=list(CLOSED))
def test_closed_tokens_are_task_timed_out_and_change_nothing(engine, outbox, close):
    arn = start(engine, single(task(TimeoutSeconds=100, End=True)))
    drain(engine)
    [token] = outbox.tokens()
    close(engine, arn, token)
    before = snapshot(engine)
    for call in (lambda: engine.send_task_success(token, "1"), lambda: engine.send_task_failure(token, "Late"),
                 lambda: engine.send_task_heartbeat(token)):
        with pytest.raises(TaskTimedOut):
            call()
    assert snapshot(engine) == before


@SQLITE_ONLY
def test_a_token_whose_thread_was_removed_is_task_does_not_exist(engine, outbox):
    arn = start(engine, single(task(End=True)))
    drain(engine)
    frame_id = root_frame(engine, arn).id
    with engine.db.begin() as conn:  # removed by hand (SQLite does not enforce the foreign key)
        conn.execute(frames.delete().where(frames.c.id == frame_id))
    before = snapshot(engine)
    with pytest.raises(TaskDoesNotExist):
        engine.send_task_success(outbox.tokens()[0], "0")
    assert snapshot(engine) == before


def test_stop_cancels_outstanding_tokens(engine, outbox):
    arn = start(engine, single(task(End=True)))
    drain(engine)
    [token] = outbox.tokens()
    engine.stop(arn)
    assert token_row(engine, token).status == "CANCELLED" and pending(engine) == []
    assert types(engine, arn)[-2:] == ["TaskStateAborted", "ExecutionAborted"]


def test_errors_are_statemill_errors_named_as_aws():
    for cls, name in ((InvalidToken, "InvalidToken"), (TaskDoesNotExist, "TaskDoesNotExist"),
                      (TaskTimedOut, "TaskTimedOut"), (InvalidOutput, "InvalidOutput")):
        assert issubclass(cls, StatemillError) and cls.__name__ == name


# ----------------------------------------------------------------------------------------------- Parallel and Map
def test_tokens_in_parallel_branches(engine, outbox):
    branch = lambda n: {"StartAt": f"B{n}", "States": {f"B{n}": task(End=True)}}  # noqa: E731
    arn = start(engine, single({"Type": "Parallel", "Branches": [branch(0), branch(1)], "End": True}))
    drain(engine)
    first, second = outbox.tokens()
    assert sorted(pending(engine, arn)) == sorted([first, second])
    engine.send_task_success(second, "false")
    drain(engine)
    assert engine.status(arn) == "RUNNING"
    engine.send_task_success(first, "0")
    assert finish(engine, arn)["output"] == [0, False]
    with pytest.raises(TaskTimedOut):  # children are gone, their tokens are still known as answered
        engine.send_task_success(first, "0")


def test_a_failed_branch_cancels_the_tokens_of_its_siblings(engine, outbox):
    branch = lambda n: {"StartAt": f"B{n}", "States": {f"B{n}": task(End=True)}}  # noqa: E731
    definition = single({"Type": "Parallel", "Branches": [branch(0), branch(1)], "End": True,
                         "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
                        {"Caught": {"Type": "Pass", "End": True}})
    arn = start(engine, definition)
    drain(engine)
    first, second = outbox.tokens()
    engine.send_task_failure(first, "Rejected", "")
    result = finish(engine, arn)
    assert result["output"] == {"Error": "Rejected", "Cause": ""}
    with pytest.raises(TaskTimedOut):
        engine.send_task_success(second, "0")


def test_tokens_in_map_iterations_with_max_concurrency(engine, outbox):
    items = ["", None, 0, False]
    definition = single({"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "End": True,
                         "ItemSelector": {"value.$": "$$.Map.Item.Value"},
                         "ItemProcessor": {"StartAt": "Item", "States": {"Item": task(End=True)}}})
    arn = start(engine, definition, {"items": items})
    drain(engine)
    assert len(pending(engine, arn)) == 2
    for _ in range(2):
        for value, context in outbox.calls[-2:]:
            engine.send_task_success(context.task_token, json.dumps({"echo": value["input"]["value"]}))
        drain(engine)
    assert finish(engine, arn)["output"] == [{"echo": item} for item in items]
    assert len({token for token in outbox.tokens()}) == 4
    with pytest.raises(TaskTimedOut):
        engine.send_task_success(outbox.tokens()[0], "0")


# ----------------------------------------------------------------------------------------------- concurrency
def test_answer_arriving_before_the_handler_returned(live):
    handed_out, release = queue.Queue(), threading.Event()

    def slow_notify(value, context):
        handed_out.put(context.task_token)
        release.wait(10)  # the answer comes while we are still "sending the e-mail"
        return {"sent": True}

    live.handler("notify")(slow_notify)
    arn = start(live, single(task(ResultPath="$.answer", End=True)))
    with running_worker(live):
        token = handed_out.get(timeout=10)
        answering = threading.Thread(target=live.send_task_success, args=(token, '{"early": true, "n": 0}'))
        answering.start()
        answering.join(10)
        assert token_row(live, token).status == "SUCCEEDED" and root_frame(live, arn).phase == "task"
        release.set()
        wait_for(lambda: live.status(arn) in TERMINAL)
    assert live.describe(arn)["output"]["answer"] == {"early": True, "n": 0}
    assert types(live, arn) == SUCCESS_PATH


@pytest.mark.parametrize("worker_running", [False, True], ids=["no_worker_at_that_moment", "worker_running"])
def test_cli_in_another_process_completes_the_task(live, db_url, worker_running):
    live.handler("notify")(lambda value: {"sent": True})
    arn = start(live, single(task(ResultPath="$.answer", End=True)))
    answer = {"ok": False, "n": 0, "s": "", "z": None}
    with running_worker(live) if worker_running else contextlib.nullcontext():
        if not worker_running:
            drain(live)
        [token] = wait_for(lambda: pending(live, arn))
        done = statemill("send-task-success", "--db", db_url, "--task-token", token,
                         "--task-output", json.dumps(answer))
        assert done.returncode == 0, done.stderr
        if worker_running:
            wait_for(lambda: live.status(arn) in TERMINAL)
        else:
            assert live.status(arn) == "RUNNING" and token_row(live, token).status == "SUCCEEDED"
            assert root_frame(live, arn).run_at <= time.time()
    result = finish(live, arn)
    assert result["output"]["answer"] == answer
    again = statemill("send-task-success", "--db", db_url, "--task-token", token, "--task-output", "1")
    assert again.returncode == 1 and again.stderr.startswith("error: TaskTimedOut: ")
    assert len(again.stderr.strip().splitlines()) == 1


def test_python_api_in_another_process_fails_the_task(live, db_url):
    live.handler("notify")(lambda value: {"sent": True})
    arn = start(live, single(task(Catch=[{"ErrorEquals": ["Rejected"], "Next": "No"}], End=True),
                             {"No": {"Type": "Pass", "End": True}}))
    drain(live)
    [token] = pending(live, arn)
    script = ("import sys; from statemill.engine import Client; "
              "print(Client(sys.argv[1]).send_task_failure(sys.argv[2], 'Rejected', ''))")
    done = python("-c", script, db_url, token)
    assert done.returncode == 0, done.stderr
    assert finish(live, arn)["output"] == {"Error": "Rejected", "Cause": ""}


RACER = textwrap.dedent("""
    import os, sys, time
    from statemill.engine import Client, StatemillError
    client = Client(sys.argv[1])
    client.pending_tokens()  # connect and warm up before the start signal
    print("ready", flush=True)
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.001)
    try:
        client.send_task_success(sys.argv[2], sys.argv[4])
        print("won", flush=True)
    except StatemillError as exc:
        print(type(exc).__name__, flush=True)
""")


def test_racing_processes_exactly_one_wins(live, db_url, tmp_path):
    live.handler("notify")(lambda value: {"sent": True})
    arn = start(live, single(task(End=True)))
    drain(live)
    [token] = pending(live, arn)
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, db_url, token, str(go), json.dumps({"racer": n})],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for n in range(5)]
    for racer in racers:
        assert racer.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    assert sorted(outcomes) == ["TaskTimedOut"] * 4 + ["won"], outcomes
    winner = outcomes.index("won")
    assert finish(live, arn)["output"] == {"racer": winner}
    assert types(live, arn) == SUCCESS_PATH


# ----------------------------------------------------------------------------------------------- CLI
def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_lists_pending_tokens_and_answers_from_a_file(live, db_url, tmp_path):
    """(The CLI runs on the real clock, so does the engine here: deadlines must agree.)"""
    engine = live
    engine.handler("notify")(Outbox())
    arn = start(engine, single(task(HeartbeatSeconds=3600, End=True)))
    other = start(engine, single(task(End=True)), name="other")
    drain(engine)
    token = pending(engine, arn)[0]
    listed = invoke("tokens", "--db", db_url)
    assert listed.exit_code == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["EXECUTION", "STATE", "AGE"] and len(rows) == 2
    row = next(r for r in rows if token in r)
    assert row.startswith(arn.split(":execution:")[1]) and " Ask " in row
    assert iso(engine.clock.now() + 3600)[:16] in row  # the heartbeat deadline, to the minute
    filtered = json.loads(invoke("tokens", "--db", db_url, "--execution", other, "--json").stdout)["tokens"]
    assert [t["executionArn"] for t in filtered] == [other]
    (tmp_path / "answer.json").write_text('{"from_file": ""}')
    done = invoke("send-task-success", "--db", db_url, "--task-token", token, "--task-output",
                  f"@{tmp_path / 'answer.json'}", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout) == {"executionArn": arn, "stateName": "Ask"}
    assert finish(engine, arn)["output"] == {"from_file": ""}
    assert invoke("send-task-heartbeat", "--db", db_url, "--task-token", pending(engine, other)[0]).exit_code == 0


CLI_REFUSALS = {  # exit 1: refused by the engine; 2: what was typed is invalid (see cli/errors.py)
    "invalid_token": (["send-task-success", "--task-token", "nope", "--task-output", "{}"], "InvalidToken", 1),
    "invalid_output": (["send-task-success", "--task-token", "TOKEN", "--task-output", "{"], "InvalidOutput", 2),
    "heartbeat_invalid_token": (["send-task-heartbeat", "--task-token", "nope"], "InvalidToken", 1),
    "failure_after_stop": (["send-task-failure", "--task-token", "TOKEN", "--error", "E"], "TaskTimedOut", 1),
}


@SQLITE_ONLY
@pytest.mark.parametrize("args, name, code", list(CLI_REFUSALS.values()), ids=list(CLI_REFUSALS))
def test_cli_refusals_print_the_aws_name_and_exit_non_zero(engine, outbox, db_url, args, name, code):
    arn = start(engine, single(task(End=True)))
    drain(engine)
    if name == "TaskTimedOut":
        engine.stop(arn)
    before = snapshot(engine)
    result = invoke(*[outbox.tokens()[0] if a == "TOKEN" else a for a in args], "--db", db_url)
    assert result.exit_code == code
    assert result.stderr.startswith(f"error: {name}: ") and len(result.stderr.strip().splitlines()) == 1
    assert snapshot(engine) == before


def test_cli_send_task_failure_goes_through_catch(engine, outbox, db_url):
    arn = start(engine, single(task(Catch=[{"ErrorEquals": ["Rejected"], "Next": "No"}], End=True),
                               {"No": {"Type": "Pass", "End": True}}))
    drain(engine)
    assert invoke("send-task-failure", "--db", db_url, "--task-token", outbox.tokens()[0], "--error", "Rejected",
                  "--cause", "").exit_code == 0
    assert finish(engine, arn)["output"] == {"Error": "Rejected", "Cause": ""}


# ----------------------------------------------------------------------------------------------- the example
@pytest.mark.parametrize("choice, expected", [("approve", {"status": "approved", "comment": ""}),
                                              ("reject", {"status": "rejected", "reason": "not this time"})],
                         ids=["approved", "rejected"])
def test_approval_example_prints_the_commands_that_answer_it(live, db_url, monkeypatch, capsys, choice, expected):
    from statemill.statemachines import approval_handlers

    engine = live
    monkeypatch.setenv("STATEMILL_DATABASE_URL", db_url)
    engine.handlers.update(approval_handlers.HANDLERS)
    machine = engine.register(ROOT / "statemachines" / "approval.yaml")
    arn = engine.start(machine["name"], {"requester": "ada", "amount": 0, "reason": "", "urgent": False})[
        "executionArn"]
    drain(engine)
    printed = capsys.readouterr().err
    command = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.strip().startswith(choice))
    args = shlex.split(command)
    assert args[0] == "statemill" and args[args.index("--db") + 1] == db_url
    assert invoke(*args[1:]).exit_code == 0
    output = finish(engine, arn)["output"]
    assert {k: output[k] for k in expected} == expected and output["amount"] == 0
