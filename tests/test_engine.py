"""Engine semantics end to end: definitions run by a real worker on a real SQLite file.

The fake clock makes retry backoff, long Waits and execution timeouts instant (their length is checked through the
history's timestamps); task timeouts and I/O concurrency use the real clock.
"""
from __future__ import annotations

import asyncio
import random
import threading
import time
from datetime import datetime

import pytest
import sqlalchemy as sa

import enginetools
from enginetools import QUICK

from statemill.engine import Client, Engine, ExecutionAlreadyExists, InvalidExecutionInput, TaskFailure
from statemill.engine.store.schema import executions, frames, history_events

DATA = {"zero": 0, "no": False, "empty": "", "none": None}


def run(engine: Engine, definition: dict, value=None, name: str | None = None) -> dict:
    """``enginetools.run`` with a worker serving only this execution."""
    return enginetools.run(engine, definition, value, name, only=True)


def task(resource: str, **fields) -> dict:
    return {"Type": "Task", "Resource": resource, **fields}


def single(state: dict, **top) -> dict:
    """A machine of one state."""
    return {"StartAt": "Only", "States": {"Only": {**state, "End": True}}, **top}


def history(engine: Engine, result: dict) -> list[dict]:
    return engine.history(result["executionArn"])


def drain(engine: Engine, rounds: int = 5) -> None:
    """Let a worker go round its loop a few times (claiming whatever is runnable), then stop it."""
    seen = iter(range(rounds))
    worker = engine.worker(**QUICK)
    try:
        worker.run(until=lambda: next(seen, None) is None)
    finally:
        worker.close()


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def stamp(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


class Boom(Exception):
    """A handler's own exception: its class name becomes the error, its message the cause."""


def failing(times: int, calls: list | None = None, error: type[Exception] = Boom):
    """A handler that fails ``times`` times, then echoes its input; it appends (input, context) to ``calls``."""
    calls = [] if calls is None else calls

    def handler(value, context):
        calls.append((value, context))
        if len(calls) <= times:
            raise error(f"failure {len(calls)}")
        return value
    return handler


# ----------------------------------------------------------------------------------------------- Retry
BACKOFF = {
    "interval_times_backoff_rate": ({"IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}, [2, 6, 18]),
    "defaults_1s_doubling": ({}, [1, 2, 4]),
    "max_delay_caps_the_wait": ({"IntervalSeconds": 2, "BackoffRate": 3, "MaxDelaySeconds": 5, "MaxAttempts": 3},
                                [2, 5, 5]),
    "two_day_interval": ({"IntervalSeconds": 172800, "BackoffRate": 1, "MaxAttempts": 1}, [172800]),
}


@pytest.mark.parametrize("retrier, waits", list(BACKOFF.values()), ids=list(BACKOFF))
def test_retry_backs_off_between_attempts(engine, retrier, waits):
    calls = []
    engine.handler("py:flaky")(failing(len(waits), calls))
    started = time.monotonic()
    result = run(engine, single(task("py:flaky", Retry=[{"ErrorEquals": ["Boom"], **retrier}])), DATA)
    assert time.monotonic() - started < 5, "the fake clock skips backoff"
    assert result["status"] == "SUCCEEDED" and result["output"] == DATA
    assert len(calls) == len(waits) + 1
    events = history(engine, result)
    failed = [stamp(e) for e in events if e["type"] == "TaskFailed"]
    scheduled = [stamp(e) for e in events if e["type"] == "TaskScheduled"]
    assert [round(s - f, 3) for f, s in zip(failed, scheduled[1:])] == waits


def test_retry_gives_up_after_max_attempts_with_the_last_error(engine):
    calls = []
    engine.handler("py:flaky")(failing(10, calls))
    result = run(engine, single(task("py:flaky", Retry=[{"ErrorEquals": ["Boom"], "MaxAttempts": 2}])), DATA)
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "Boom", "failure 3")
    assert len(calls) == 3


JITTER = {
    "doubling": ({"IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 4}, [2, 4, 8, 16]),
    "capped_by_max_delay": ({"IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 4, "MaxDelaySeconds": 5},
                            [2, 4, 5, 5]),
}


@pytest.mark.parametrize("retrier, bounds", list(JITTER.values()), ids=list(JITTER))
def test_full_jitter_draws_each_retry_delay_below_its_backoff_bound(engine, retrier, bounds):
    random.seed(20260101)  # the interpreter draws from the random module: seeded, the delays are reproducible
    engine.handler("py:flaky")(failing(len(bounds)))
    retry = [{"ErrorEquals": ["Boom"], "JitterStrategy": "FULL", **retrier}]
    result = run(engine, single(task("py:flaky", Retry=retry)), DATA)
    assert result["status"] == "SUCCEEDED"
    events = history(engine, result)
    failed = [stamp(e) for e in events if e["type"] == "TaskFailed"]
    scheduled = [stamp(e) for e in events if e["type"] == "TaskScheduled"]
    delays = [round(s - f, 3) for f, s in zip(failed, scheduled[1:])]
    assert len(delays) == len(bounds)
    assert all(0 <= delay < bound for delay, bound in zip(delays, bounds)), (delays, bounds)
    assert len(set(delays)) == len(delays), f"FULL jitter draws every delay afresh: {delays}"


MAX_ATTEMPTS_ZERO = {
    "fails_at_once": ({}, ("FAILED", "Boom")),
    "goes_straight_to_catch": ({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
                               ("SUCCEEDED", None)),
}


@pytest.mark.parametrize("extra, outcome", list(MAX_ATTEMPTS_ZERO.values()), ids=list(MAX_ATTEMPTS_ZERO))
def test_max_attempts_zero_never_retries(engine, extra, outcome):
    calls = []
    engine.handler("py:flaky")(failing(10, calls))
    definition = {"StartAt": "Work", "States": {
        "Work": task("py:flaky", Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0, "IntervalSeconds": 3}],
                     End=True, **extra)}}
    if extra:
        definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    result = run(engine, definition, DATA)
    assert (result["status"], result.get("error")) == outcome
    assert len(calls) == 1


# ----------------------------------------------------------------------------------------------- Catch and matching
CATCH_RESULT_PATH = {
    "result_path_adds_the_error_to_the_input": ({"ResultPath": "$.error"},
                                                {**DATA, "error": {"Error": "Boom", "Cause": "failure 1"}}),
    "default_result_path_replaces_the_input": ({}, {"Error": "Boom", "Cause": "failure 1"}),
}


@pytest.mark.parametrize("catcher, output", list(CATCH_RESULT_PATH.values()), ids=list(CATCH_RESULT_PATH))
def test_catch_sends_the_error_output_to_its_next_state(engine, catcher, output):
    engine.handler("py:boom")(failing(10))
    definition = {"StartAt": "Work", "States": {
        "Work": task("py:boom", Catch=[{"ErrorEquals": ["Boom"], "Next": "Recover", **catcher}], Next="Unreached"),
        "Unreached": {"Type": "Fail", "Error": "Unreached"},
        "Recover": {"Type": "Pass", "End": True}}}
    result = run(engine, definition, DATA)
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == output
    assert "Recover" in [e["stateEnteredEventDetails"]["name"] for e in history(engine, result)
                         if e["type"] == "PassStateEntered"]


ERROR_MATCHING = {
    "states_all_catches_a_custom_error": ([["States.ALL"]], 0),
    "task_failed_catches_a_custom_error": ([["States.TaskFailed"]], 0),
    "exact_name_among_others_catches": ([["Other", "Boom"]], 0),
    "first_matching_catcher_wins": ([["Boom"], ["States.ALL"]], 0),
    "a_non_matching_catcher_is_skipped": ([["Other"], ["States.TaskFailed"]], 1),
}


@pytest.mark.parametrize("catchers, chosen", list(ERROR_MATCHING.values()), ids=list(ERROR_MATCHING))
def test_catchers_match_error_names(engine, catchers, chosen):
    engine.handler("py:boom")(failing(10))
    states = {f"Catcher{i}": {"Type": "Pass", "Result": i, "End": True} for i in range(len(catchers))}
    definition = {"StartAt": "Work", "States": {
        "Work": task("py:boom", End=True, Catch=[{"ErrorEquals": names, "Next": f"Catcher{i}"}
                                                 for i, names in enumerate(catchers)]), **states}}
    result = run(engine, definition, DATA)
    assert (result["status"], result["output"]) == ("SUCCEEDED", chosen)


def test_uncaught_error_fails_the_execution_without_state_exited(engine):
    engine.handler("py:boom")(failing(10))
    result = run(engine, single(task("py:boom", Catch=[{"ErrorEquals": ["Other"], "Next": "Only"}])), DATA)
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "Boom", "failure 1")
    assert "output" not in result
    assert types(history(engine, result))[-3:] == ["TaskStarted", "TaskFailed", "ExecutionFailed"]


@pytest.mark.parametrize("name", ["States.ALL", "States.Runtime"])
def test_a_states_runtime_error_is_neither_retried_nor_caught(engine, name):
    """AWS: a States.Runtime error isn't retriable and always fails the execution, even when a Retry or Catch
    names it."""
    calls = []
    engine.handler("py:echo")(lambda value: calls.append(value) or value)
    definition = {"StartAt": "Work", "States": {
        "Work": task("py:echo", OutputPath="$.missing", Next="Done",
                     Retry=[{"ErrorEquals": [name], "MaxAttempts": 2, "IntervalSeconds": 1}],
                     Catch=[{"ErrorEquals": [name], "Next": "Caught"}]),
        "Done": {"Type": "Pass", "End": True},
        "Caught": {"Type": "Pass", "End": True}}}
    result = run(engine, definition, DATA)
    assert (result["status"], result["error"]) == ("FAILED", "States.Runtime")
    assert "$.missing" in result["cause"]
    assert len(calls) == 1
    assert types(history(engine, result))[-3:] == ["TaskStarted", "TaskSucceeded", "ExecutionFailed"]


# ----------------------------------------------------------------------------------------------- task timeouts
@pytest.fixture
def real_engine(db_url):
    made = Engine(db_url)
    yield made
    made.db.dispose()


def test_timeout_fails_the_task_at_its_deadline_and_discards_the_late_result(real_engine):
    finished = threading.Event()

    @real_engine.handler("py:slow")
    def slow(value):
        time.sleep(1.6)
        finished.set()
        return {"late": True}

    definition = {"StartAt": "Slow", "States": {
        "Slow": task("py:slow", TimeoutSeconds=1, Next="Unreached", Catch=[
            {"ErrorEquals": ["States.TaskFailed"], "Next": "ByTaskFailed"},
            {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "ByTimeout"}]),
        "Unreached": {"Type": "Fail", "Error": "Unreached"},
        "ByTaskFailed": {"Type": "Fail", "Error": "TaskFailedMatchedATimeout"},
        "ByTimeout": {"Type": "Pass", "End": True}}}
    result = run(real_engine, definition, DATA)
    assert not finished.is_set(), "the execution moved on while the handler still ran"
    assert result["status"] == "SUCCEEDED"
    assert result["output"]["error"]["Error"] == "States.Timeout"
    assert {k: v for k, v in result["output"].items() if k != "error"} == DATA
    events = history(real_engine, result)
    by_type = {e["type"]: e for e in events}
    assert 1.0 <= stamp(by_type["TaskTimedOut"]) - stamp(by_type["TaskScheduled"]) < 1.5
    assert by_type["TaskTimedOut"]["taskTimedOutEventDetails"]["error"] == "States.Timeout"

    assert finished.wait(3)
    time.sleep(0.1)
    assert real_engine.history(result["executionArn"]) == events
    assert "TaskSucceeded" not in types(events)


def test_a_caught_timeout_has_an_empty_cause(real_engine):
    @real_engine.handler("py:slow")
    def slow(value):
        time.sleep(1.3)

    definition = {"StartAt": "Slow", "States": {
        "Slow": task("py:slow", TimeoutSeconds=1, End=True,
                     Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}]),
        "Caught": {"Type": "Pass", "End": True}}}
    result = run(real_engine, definition, DATA)
    assert result["output"] == {"Error": "States.Timeout", "Cause": ""}


def test_an_async_handler_is_cancelled_at_the_timeout(real_engine):
    seen = []

    @real_engine.handler("py:async")
    async def slow(value, context):
        seen.append("started")
        try:
            await asyncio.sleep(5)
            seen.append("finished")
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    started = time.monotonic()
    result = run(real_engine, single(task("py:async", TimeoutSeconds=1)), DATA)
    assert time.monotonic() - started < 3
    assert (result["status"], result["error"]) == ("FAILED", "States.Timeout")
    assert "cause" not in result
    deadline = time.monotonic() + 2
    while "cancelled" not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == ["started", "cancelled"]


def test_execution_timeout_seconds_times_the_execution_out(engine, fake_clock):
    definition = {"TimeoutSeconds": 5, "StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "Seconds": 60, "Next": "After"},
        "After": {"Type": "Pass", "End": True}}}
    started = fake_clock.now()
    result = run(engine, definition, DATA)
    assert result["status"] == "TIMED_OUT"
    assert "output" not in result
    events = history(engine, result)
    assert types(events) == ["ExecutionStarted", "WaitStateEntered", "ExecutionTimedOut"]
    assert stamp(events[-1]) - started == pytest.approx(5, abs=0.01)


def test_a_two_day_wait_passes_instantly_on_the_fake_clock(engine):
    started = time.monotonic()
    result = engine.run(single({"Type": "Wait", "Seconds": 172800}), DATA, machine_name="m", **QUICK)
    assert time.monotonic() - started < 5
    assert result["output"] == DATA
    by_type = {e["type"]: e for e in history(engine, result)}
    assert stamp(by_type["WaitStateExited"]) - stamp(by_type["WaitStateEntered"]) == 172800


# ----------------------------------------------------------------------------------------------- Parallel and Map
PARALLEL_FAILURE = {
    "uncaught_fails_the_execution": ({}, None),
    "caught_gives_the_branch_error_to_the_catcher": (
        {"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Caught"}]},
        {**DATA, "err": {"Error": "BranchBroke", "Cause": "left side"}}),
}


@pytest.mark.parametrize("extra, output", list(PARALLEL_FAILURE.values()), ids=list(PARALLEL_FAILURE))
def test_a_failing_branch_fails_the_parallel_with_its_own_error_and_stops_siblings(engine, extra, output):
    after = []

    @engine.handler("py:broken")
    def broken(value):
        raise TaskFailure("BranchBroke", "left side")

    @engine.handler("py:slow")
    def slow(value):
        time.sleep(0.3)
        return value

    engine.handler("py:after")(lambda value: after.append(value))
    definition = {"StartAt": "Fork", "States": {
        "Fork": {"Type": "Parallel", "End": True, **extra, "Branches": [
            {"StartAt": "Break", "States": {"Break": task("py:broken", End=True)}},
            {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1000, "Next": "AfterNap"},
                                          "AfterNap": task("py:after", End=True)}},
            {"StartAt": "Slow", "States": {"Slow": task("py:slow", Next="AfterSlow"),
                                           "AfterSlow": task("py:after", End=True)}}]}}}
    if extra:
        definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    result = run(engine, definition, DATA)
    if output is None:
        assert (result["status"], result["error"], result["cause"]) == ("FAILED", "BranchBroke", "left side")
    else:
        assert (result["status"], result["output"]) == ("SUCCEEDED", output)
    time.sleep(0.5)  # the slow branch's handler returns after the failure: its result must go nowhere
    drain(engine)
    assert after == []
    events = history(engine, result)
    assert "ParallelStateFailed" in types(events) and "ParallelStateSucceeded" not in types(events)
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert "AfterNap" not in entered and "AfterSlow" not in entered
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(frames)
                            .where(frames.c.status == "ACTIVE")).scalar() == 0


def test_map_results_follow_item_order_whatever_order_iterations_finish_in(engine):
    items = [0, False, "", None, {"zero": 0}, [], "last"]
    delays = [0.3, 0.05, 0.2, 0.1, 0.25, 0.0, 0.15]  # the first item finishes last, the sixth first
    finished = []

    @engine.handler("py:sleepy")
    def sleepy(value):
        time.sleep(delays[value["index"]])
        finished.append(value["index"])
        return value

    definition = single({"Type": "Map", "ItemsPath": "$.items",
                         "ItemSelector": {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value"},
                         "ItemProcessor": {"StartAt": "Sleep", "States": {"Sleep": task("py:sleepy", End=True)}}})
    result = run(engine, definition, {"items": items})
    assert sorted(finished) == list(range(len(items))) and finished[0] != 0 and finished[-1] != len(items) - 1
    assert result["output"] == [{"index": i, "value": item} for i, item in enumerate(items)]


@pytest.mark.parametrize("limit, expected_overlap", [(1, 1), (2, 2), (0, 6)],
                         ids=["max_concurrency_1_is_sequential_in_order", "max_concurrency_2_runs_two_at_once",
                              "max_concurrency_0_runs_all_at_once"])
def test_map_max_concurrency_bounds_iterations_in_flight(engine, limit, expected_overlap):
    log, lock = [], threading.Lock()
    together = threading.Barrier(expected_overlap, timeout=15)  # each waits for the others it must overlap with

    @engine.handler("py:step")
    def step(value):
        with lock:
            log.append(("start", value))
        together.wait()
        with lock:
            log.append(("end", value))
        return value * 10

    definition = single({"Type": "Map", "MaxConcurrency": limit,
                         "ItemProcessor": {"StartAt": "Step", "States": {"Step": task("py:step", End=True)}}})
    result = run(engine, definition, list(range(6)))
    assert result["output"] == [0, 10, 20, 30, 40, 50]
    running, overlap = 0, 0
    for kind, _ in log:
        running += 1 if kind == "start" else -1
        overlap = max(overlap, running)
    assert overlap == expected_overlap
    if limit == 1:
        assert log == [(kind, i) for i in range(6) for kind in ("start", "end")]


def test_parallel_branches_do_their_io_concurrently(engine):
    together = threading.Barrier(10, timeout=15)  # every branch's handler waits until all ten are running at once

    @engine.handler("py:io")
    def io(value):
        together.wait()
        return value

    branches = [{"StartAt": f"IO{i}", "States": {f"IO{i}": task("py:io", Parameters={"branch": i}, End=True)}}
                for i in range(10)]
    result = run(engine, single({"Type": "Parallel", "Branches": branches}), DATA)
    assert result["output"] == [{"branch": i} for i in range(10)]


# ----------------------------------------------------------------------------------------------- stop and start
@pytest.mark.parametrize("reason", [{}, {"error": "Operator", "cause": ""}],
                         ids=["without_error_or_cause", "with_error_and_empty_cause"])
def test_stop_aborts_a_waiting_execution(engine, fake_clock, reason):
    after = []
    engine.handler("py:after")(lambda value: after.append(value))
    engine.register({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "Next": "After"},
                                                  "After": task("py:after", End=True)}}, "m")
    arn = engine.start("m", DATA)["executionArn"]
    worker = engine.worker(**QUICK)
    worker.run(until=lambda: "WaitStateEntered" in types(engine.history(arn)))
    worker.close()
    engine.stop(arn, **reason)
    fake_clock.advance(7200)  # past the Wait's end: nothing may resume it
    drain(engine)

    described = engine.describe(arn)
    assert described["status"] == "ABORTED"
    assert {k: described[k] for k in ("error", "cause") if k in described} == reason
    assert "output" not in described and "stopDate" in described
    events = engine.history(arn)
    assert types(events)[-1] == "ExecutionAborted"
    assert events[-1].get("executionAbortedEventDetails", {}) == reason
    assert "WaitStateExited" not in types(events) and after == []


def test_stop_records_the_running_state_as_aborted(engine):
    engine.register(single({"Type": "Wait", "Seconds": 3600}), "m")
    arn = engine.start("m", DATA)["executionArn"]
    worker = engine.worker(**QUICK)
    worker.run(until=lambda: "WaitStateEntered" in types(engine.history(arn)))
    worker.close()
    engine.stop(arn)
    assert types(engine.history(arn))[-2:] == ["WaitStateAborted", "ExecutionAborted"]


def test_start_with_the_same_name_and_input_is_idempotent(engine):
    engine.register(single({"Type": "Wait", "Seconds": 10}), "m")
    first = engine.start("m", DATA, name="once")
    assert engine.start("m", dict(DATA), name="once") == first
    with pytest.raises(ExecutionAlreadyExists):
        engine.start("m", {**DATA, "zero": 1}, name="once")
    assert len(engine.list("m")) == 1


@pytest.mark.parametrize("other", [{**DATA, "no": 0}, {**DATA, "zero": False}],
                         ids=["false_is_not_0", "0_is_not_false"])
def test_start_with_an_input_differing_only_in_type_is_refused(engine, other):
    engine.register(single({"Type": "Wait", "Seconds": 10}), "m")
    engine.start("m", DATA, name="once")
    with pytest.raises(ExecutionAlreadyExists):
        engine.start("m", other, name="once")


def test_start_after_the_execution_closed_raises_even_with_the_same_input(engine):
    result = run(engine, single({"Type": "Pass"}), DATA, name="once")
    assert result["status"] == "SUCCEEDED"
    with pytest.raises(ExecutionAlreadyExists):
        engine.start("m", DATA, name="once")


def count_rows(client: Client) -> tuple:
    with client.db.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                     for table in (executions, frames, history_events))


BAD_INPUT = {"unclosed_object": "{bad", "truncated_array": "[1, 2", "empty_text": "", "two_values": "{} {}",
             "over_the_payload_limit": '"' + "x" * (256 * 1024) + '"'}


@pytest.mark.parametrize("text", list(BAD_INPUT.values()), ids=list(BAD_INPUT))
def test_bad_input_is_refused_before_anything_is_written(engine, text):
    engine.register(single({"Type": "Pass"}), "m")
    before = count_rows(engine)
    with pytest.raises(InvalidExecutionInput):
        Client(engine.db).start("m", input_text=text, name="bad")
    assert count_rows(engine) == before


@pytest.mark.parametrize("text", ["NaN", '{"x": Infinity}'], ids=["nan", "infinity"])
def test_non_json_numbers_are_refused(engine, text):
    engine.register(single({"Type": "Pass"}), "m")
    with pytest.raises(InvalidExecutionInput):
        engine.start("m", input_text=text)


def test_good_input_text_round_trips_falsy_values(engine):
    engine.register(single({"Type": "Pass"}), "m")
    arn = engine.start("m", input_text='{"zero": 0, "no": false, "empty": "", "none": null}')["executionArn"]
    assert engine.wait(arn, **QUICK)["output"] == DATA


# ------------------------------------------------------------------------------------- task results and errors
BIG = "a" * (257 * 1024)
DATA_LIMIT = [  # AWS names the resource, not the state (conformance: TestStatesErrors::*data_limit_exceeded*)
    pytest.param("arn:aws:states:::lambda:invoke", {"FunctionName": "big", "Payload": None}, "lambda",
                 id="lambda_invoke_names_the_service"),
    pytest.param("arn:aws:lambda:us-east-1:000000000000:function:big", None,
                 "arn:aws:lambda:us-east-1:000000000000:function:big", id="lambda_arn_names_the_function"),
]


@pytest.mark.parametrize("resource, parameters, named", DATA_LIMIT)
def test_a_result_over_the_payload_limit_is_caught_as_data_limit_exceeded(engine, resource, parameters, named):
    engine.handler("big")(lambda value: BIG)
    state = task(resource, **({"Parameters": parameters} if parameters else {}),
                 Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], End=True)
    result = run(engine, {"StartAt": "Big", "States": {"Big": state, "Caught": {"Type": "Pass", "End": True}}}, DATA)
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == {"Error": "States.DataLimitExceeded",
                                "Cause": f"The state/task '{named}' returned a result with a size exceeding the "
                                         "maximum number of bytes service limit."}


@pytest.mark.parametrize("caught", [False, True], ids=["uncaught_fails_the_execution", "caught_by_states_all"])
def test_a_result_over_the_payload_limit_fails_the_task(engine, caught):
    engine.handler("py:big")(lambda value: BIG)
    definition = single(task("py:big"))
    if caught:
        definition["States"]["Only"]["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
        definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    result = run(engine, definition, DATA)
    error = result["output"]["Error"] if caught else result["error"]
    assert (result["status"], error) == ("SUCCEEDED" if caught else "FAILED", "States.DataLimitExceeded")
    assert "returned a result with a size exceeding the maximum number of bytes service limit." in \
        (result["output"]["Cause"] if caught else result["cause"])
    assert "TaskSucceeded" not in types(history(engine, result))


def test_an_unknown_resource_fails_the_task_naming_the_resource(engine):
    engine.handler("py:known")(lambda value: value)
    result = run(engine, single(task("py:missing")), DATA)
    assert result["status"] == "FAILED"
    assert result["error"] == "States.TaskFailed"
    assert "py:missing" in result["cause"]


class QuotaExceeded(Exception):
    pass


HANDLER_ERRORS = {
    "custom_exception_class_name_and_message": (QuotaExceeded("over by 0"), "QuotaExceeded", "over by 0"),
    "builtin_exception": (KeyError("amount"), "KeyError", "'amount'"),
    "task_failure_names_both": (TaskFailure("Payment.Declined", "card 0000"), "Payment.Declined", "card 0000"),
    "task_failure_empty_cause": (TaskFailure("Payment.Declined", ""), "Payment.Declined", ""),
}


@pytest.mark.parametrize("exc, error, cause", list(HANDLER_ERRORS.values()), ids=list(HANDLER_ERRORS))
def test_a_handler_exception_becomes_the_task_error(engine, exc, error, cause):
    @engine.handler("py:raise")
    def raiser(value):
        raise exc

    result = run(engine, single(task("py:raise")), DATA)
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", error, cause)
    failed = [e for e in history(engine, result) if e["type"] == "TaskFailed"]
    assert [(e["taskFailedEventDetails"]["error"], e["taskFailedEventDetails"].get("cause")) for e in failed] == \
        [(error, cause)]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync_handler", "async_handler"])
def test_a_handler_raising_its_own_timeout_error_before_the_deadline_is_not_a_states_timeout(engine, is_async):
    def raiser(value):
        raise TimeoutError("upstream timed out")

    async def async_raiser(value):
        raiser(value)

    engine.handler("py:raise")(async_raiser if is_async else raiser)
    result = run(engine, single(task("py:raise", TimeoutSeconds=30)), DATA)
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "TimeoutError", "upstream timed out")
    assert "TaskTimedOut" not in types(history(engine, result))


def test_task_failure_without_error_or_cause_is_caught_by_states_all(engine):
    @engine.handler("py:raise")
    def raiser(value):
        raise TaskFailure()

    definition = {"StartAt": "Work", "States": {
        "Work": task("py:raise", End=True, Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]),
        "Caught": {"Type": "Pass", "End": True}}}
    result = run(engine, definition, DATA)
    assert (result["status"], result["output"]) == ("SUCCEEDED", {"Error": None, "Cause": None})


def test_a_handler_gets_its_context_with_attempts_counting_retries(engine):
    calls = []
    engine.handler("py:flaky")(failing(2, calls, error=lambda msg: TaskFailure("Flaky", msg)))
    engine.handler("py:other")(failing(0, calls))
    definition = {"StartAt": "Flaky", "States": {
        "Flaky": task("py:flaky", Parameters={"retry.$": "$$.State.RetryCount", "zero": 0},
                      Retry=[{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1}], Next="Other"),
        "Other": task("py:other", End=True)}}
    result = run(engine, definition, DATA, name="ctx-run")
    assert result["status"] == "SUCCEEDED"
    contexts = [c for _, c in calls]
    assert [(c.state_name, c.attempt) for c in contexts] == [("Flaky", 0), ("Flaky", 1), ("Flaky", 2), ("Other", 0)]
    assert [v["retry"] for v, _ in calls[:3]] == [0, 1, 2]
    assert {c.execution_name for c in contexts} == {"ctx-run"}
    assert {c.execution_arn for c in contexts} == {result["executionArn"]}
    assert {c.resource for c in contexts} == {"py:flaky", "py:other"}
    assert len({c.idempotency_key for c in contexts}) == 4, "every attempt of every task has its own key"


def test_idempotency_keys_differ_across_parallel_branches_and_map_iterations(engine):
    keys = []
    engine.handler("py:key")(lambda value, context: keys.append(context.idempotency_key))
    definition = {"StartAt": "Fork", "States": {
        "Fork": {"Type": "Parallel", "Next": "Each", "Branches": [
            {"StartAt": "A", "States": {"A": task("py:key", End=True)}},
            {"StartAt": "B", "States": {"B": task("py:key", End=True)}}]},
        "Each": {"Type": "Map", "ItemsPath": "$", "Next": "Again",
                 "ItemProcessor": {"StartAt": "C", "States": {"C": task("py:key", End=True)}}},
        "Again": {"Type": "Map", "ItemsPath": "$", "End": True,
                  "ItemProcessor": {"StartAt": "D", "States": {"D": task("py:key", End=True)}}}}}
    result = run(engine, definition, DATA)
    assert result["status"] == "SUCCEEDED"
    assert len(keys) == 6 and len(set(keys)) == 6


LAMBDA_NAMES = ["greet", "arn:aws:lambda:us-east-1:000000000000:function:greet",
                "arn:aws:lambda:us-east-1:000000000000:function:greet:$LATEST"]


@pytest.mark.parametrize("function_name", LAMBDA_NAMES, ids=["by_name", "by_arn", "by_qualified_arn"])
def test_lambda_invoke_calls_the_function_and_wraps_its_result_in_payload(engine, function_name):
    @engine.handler("greet")
    def greet(payload):
        return {"hello": payload["who"], **DATA}

    state = task("arn:aws:states:::lambda:invoke", ResultSelector={"body.$": "$.Payload", "status.$": "$.StatusCode"},
                 Parameters={"FunctionName": function_name, "Payload": {"who.$": "$.who"}})
    result = run(engine, single(state), {"who": ""})
    assert result["output"] == {"body": {"hello": "", **DATA}, "status": 200}
    scheduled = next(e for e in history(engine, result) if e["type"] == "TaskScheduled")
    assert (scheduled["taskScheduledEventDetails"]["resourceType"],
            scheduled["taskScheduledEventDetails"]["resource"]) == ("lambda", "invoke")


def test_lambda_invoke_of_an_unknown_function_fails_with_resource_not_found(engine):
    state = task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": "nobody", "Payload": None})
    result = run(engine, single(state), DATA)
    assert (result["status"], result["error"]) == ("FAILED", "Lambda.ResourceNotFoundException")
    assert "function:nobody" in result["cause"]


# ----------------------------------------------------------------------------------------------- history
def test_history_ids_are_gapless_and_linked_to_earlier_events(engine):
    engine.handler("py:echo")(lambda value: value)
    definition = {"StartAt": "First", "States": {
        "First": task("py:echo", Next="Fork"),
        "Fork": {"Type": "Parallel", "Next": "Each", "ResultPath": None, "Branches": [
            {"StartAt": "Left", "States": {"Left": task("py:echo", End=True)}},
            {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "End": True}}}]},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "ResultPath": None,
                 "ItemProcessor": {"StartAt": "Item", "States": {"Item": task("py:echo", End=True)}},
                 "Next": "Done"},
        "Done": {"Type": "Succeed"}}}
    result = run(engine, definition, {"items": [0, False, "", None]})
    events = history(engine, result)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["previousEventId"] == events[1]["previousEventId"] == 0  # AWS: the first state points to 0
    assert all(0 < e["previousEventId"] < e["id"] for e in events[2:])
    by_id = {e["id"]: e for e in events}
    # The root thread is a chain: each of its state events points at the one just before it in the same thread.
    first = [e for e in events if e["type"].startswith("Task") and 2 < e["id"] < 7]
    assert [e["previousEventId"] for e in first] == [e["id"] - 1 for e in first]
    exited = next(e for e in events if e["type"] == "SucceedStateExited")
    assert by_id[exited["previousEventId"]]["type"] == "SucceedStateEntered"
    assert types(events)[-1] == "ExecutionSucceeded"
    assert types(events).count("MapIterationStarted") == types(events).count("MapIterationSucceeded") == 4
    assert engine.history(result["executionArn"], reverse=True) == events[::-1]


# ----------------------------------------------------------------------------------------------- revisions
def test_a_running_execution_keeps_the_revision_it_started_with(db_url, fake_clock):
    v1 = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "Next": "Version"},
                                       "Version": {"Type": "Pass", "Result": "v1", "End": True}}}
    v2 = {"StartAt": "Renamed", "States": {"Renamed": {"Type": "Pass", "Result": "v2", "End": True}}}
    first = Engine(db_url, clock=fake_clock)
    assert first.register(v1, "m")["revision"] == 1
    old = first.start("m", DATA, name="old")["executionArn"]
    assert first.register(v2, "m")["revision"] == 2
    new = first.start("m", DATA, name="new")["executionArn"]
    first.db.dispose()

    later = Engine(db_url, clock=fake_clock)  # another process: nothing compiled in memory yet
    assert later.wait(old, **QUICK)["output"] == "v1"
    assert later.wait(new, **QUICK)["output"] == "v2"
    assert later.register(v1, "m")["revision"] == 1, "registering an existing definition again changes nothing"
    later.db.dispose()


def test_a_failing_map_iteration_fails_the_map_with_its_own_error(engine):
    @engine.handler("py:pick")
    def pick(value):
        if value == "":
            raise TaskFailure("EmptyItem", "item 2 is empty")
        return value

    definition = single({"Type": "Map", "MaxConcurrency": 1,
                         "ItemProcessor": {"StartAt": "Pick", "States": {"Pick": task("py:pick", End=True)}}})
    result = run(engine, definition, [0, False, "", None])
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "EmptyItem", "item 2 is empty")
    events = types(history(engine, result))
    assert events.count("MapIterationSucceeded") == 2 and events.count("MapIterationFailed") == 1
    assert events.count("MapIterationStarted") == 3, "with MaxConcurrency 1 the last item never starts"
    assert events[-2:] == ["MapStateFailed", "ExecutionFailed"]
