"""Execution histories as AWS's GetExecutionHistory returns them: event types, ids and previousEventId chains.

The expected sequences are written by hand from the histories AWS recorded (LocalStack's snapshots of real
Step Functions runs) and its documentation, one per state type and situation: (id, previousEventId, type).
Each test runs on SQLite and PostgreSQL through the ``engine`` fixture.
"""
from __future__ import annotations

import time

import pytest

from statemill.engine import Engine
from statemill.engine.runtime import TERMINAL

QUICK = {"poll_seconds": 0.01}
DATA = {"zero": 0, "no": False, "empty": "", "none": None}


def run(engine: Engine, definition: dict, value=None, until=None, deadline: float = 20) -> str:
    """Register and start ``definition``, work until it ends (or ``until(arn)``); its ARN."""
    engine.register(definition, "m")
    arn = engine.start("m", value, name="e")["executionArn"]
    done = until or (lambda a: engine.status(a) in TERMINAL)
    give_up = time.monotonic() + deadline
    worker = engine.worker(**QUICK)
    try:
        worker.run(until=lambda: done(arn) or time.monotonic() > give_up)
    finally:
        worker.close()
    return arn


def chain(engine: Engine, arn: str) -> list[tuple[int, int, str]]:
    return [(e["id"], e["previousEventId"], e["type"]) for e in engine.history(arn)]


def fail(error: str = "Boom", cause: str = "") -> dict:
    return {"Type": "Fail", "Error": error, "Cause": cause}


def boom(value):
    raise RuntimeError("boom")


# ------------------------------------------------------------------------------------------ sequences of one thread
ONE_THREAD = {
    # The first state points to 0, not to ExecutionStarted; then each event to the one before it.
    "pass_then_pass": (
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}}},
        [(1, 0, "ExecutionStarted"), (2, 0, "PassStateEntered"), (3, 2, "PassStateExited"),
         (4, 3, "PassStateEntered"), (5, 4, "PassStateExited"), (6, 5, "ExecutionSucceeded")]),
    "task_choice_wait_succeed": (
        {"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "py:echo", "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.zero", "NumericEquals": 0, "Next": "W"}],
                  "Default": "S"},
            "W": {"Type": "Wait", "Seconds": 0, "Next": "S"},
            "S": {"Type": "Succeed"}}},
        [(1, 0, "ExecutionStarted"), (2, 0, "TaskStateEntered"), (3, 2, "TaskScheduled"), (4, 3, "TaskStarted"),
         (5, 4, "TaskSucceeded"), (6, 5, "TaskStateExited"), (7, 6, "ChoiceStateEntered"),
         (8, 7, "ChoiceStateExited"), (9, 8, "WaitStateEntered"), (10, 9, "WaitStateExited"),
         (11, 10, "SucceedStateEntered"), (12, 11, "SucceedStateExited"), (13, 12, "ExecutionSucceeded")]),
    "fail_state": (
        {"StartAt": "F", "States": {"F": fail()}},
        [(1, 0, "ExecutionStarted"), (2, 0, "FailStateEntered"), (3, 2, "ExecutionFailed")]),
    # A retried attempt's next TaskScheduled points to its TaskFailed; a catch's TaskStateExited to the last one.
    "task_retried_then_caught": (
        {"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "py:boom", "Next": "Done",
                  "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
            "Caught": {"Type": "Pass", "End": True},
            "Done": {"Type": "Succeed"}}},
        [(1, 0, "ExecutionStarted"), (2, 0, "TaskStateEntered"), (3, 2, "TaskScheduled"), (4, 3, "TaskStarted"),
         (5, 4, "TaskFailed"), (6, 5, "TaskScheduled"), (7, 6, "TaskStarted"), (8, 7, "TaskFailed"),
         (9, 8, "TaskStateExited"), (10, 9, "PassStateEntered"), (11, 10, "PassStateExited"),
         (12, 11, "ExecutionSucceeded")]),
    # An EvaluationFailed as its state is entered points where that state's …StateEntered points (AWS's recordings).
    "jsonata_output_fails_after_a_pass": (
        {"QueryLanguage": "JSONata", "StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Pass", "Output": {"result": "{% $doesNotExist %}"}, "End": True}}},
        [(1, 0, "ExecutionStarted"), (2, 0, "PassStateEntered"), (3, 2, "PassStateExited"),
         (4, 3, "PassStateEntered"), (5, 3, "EvaluationFailed"), (6, 5, "ExecutionFailed")]),
    "jsonata_map_items_fail_first": (
        {"QueryLanguage": "JSONata", "StartAt": "M", "States": {
            "M": {"Type": "Map", "Items": "{% $states.input.zero %}", "End": True,
                  "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}}},
        [(1, 0, "ExecutionStarted"), (2, 0, "MapStateEntered"), (3, 0, "EvaluationFailed"),
         (4, 3, "MapStateFailed"), (5, 4, "ExecutionFailed")]),
    "task_uncaught": (
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "py:boom", "End": True}}},
        [(1, 0, "ExecutionStarted"), (2, 0, "TaskStateEntered"), (3, 2, "TaskScheduled"), (4, 3, "TaskStarted"),
         (5, 4, "TaskFailed"), (6, 5, "ExecutionFailed")]),
}


@pytest.mark.parametrize("definition, expected", list(ONE_THREAD.values()), ids=list(ONE_THREAD))
def test_a_single_thread_is_one_chain_starting_at_zero(engine, definition, expected):
    engine.handler("py:echo")(lambda value: value)
    engine.handler("py:boom")(boom)
    assert chain(engine, run(engine, definition, DATA)) == expected


# ------------------------------------------------------------------------------------------ Map
def map_state(processor_states: dict, start: str, **fields) -> dict:
    return {"Type": "Map", "MaxConcurrency": 1, "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": start, "States": processor_states}, **fields}


MAP = {
    # Iteration i+1 points to iteration i's last state event, not its MapIterationSucceeded; MapStateSucceeded
    # and MapStateExited both point to the last MapIterationSucceeded.
    "iterations_one_at_a_time": (
        [0, False],
        {"StartAt": "M", "States": {"M": map_state({"P": {"Type": "Pass", "End": True}}, "P", End=True)}},
        [(1, 0, "ExecutionStarted"), (2, 0, "MapStateEntered"), (3, 2, "MapStateStarted"),
         (4, 3, "MapIterationStarted"), (5, 4, "PassStateEntered"), (6, 5, "PassStateExited"),
         (7, 6, "MapIterationSucceeded"), (8, 6, "MapIterationStarted"), (9, 8, "PassStateEntered"),
         (10, 9, "PassStateExited"), (11, 10, "MapIterationSucceeded"), (12, 11, "MapStateSucceeded"),
         (13, 11, "MapStateExited"), (14, 13, "ExecutionSucceeded")]),
    # A failed iteration: MapStateFailed points to its last state event, MapStateExited (caught) to MapStateFailed.
    "iteration_failure_caught": (
        [""],
        {"StartAt": "M", "States": {
            "M": map_state({"F": fail()}, "F", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                           End=True),
            "Caught": {"Type": "Pass", "End": True}}},
        [(1, 0, "ExecutionStarted"), (2, 0, "MapStateEntered"), (3, 2, "MapStateStarted"),
         (4, 3, "MapIterationStarted"), (5, 4, "FailStateEntered"), (6, 5, "MapIterationFailed"),
         (7, 5, "MapStateFailed"), (8, 7, "MapStateExited"), (9, 8, "PassStateEntered"),
         (10, 9, "PassStateExited"), (11, 10, "ExecutionSucceeded")]),
    # A retried Map writes no MapStateFailed: its next MapStateStarted points to the failed iteration's state.
    "retried_then_failed": (
        [None],
        {"StartAt": "M", "States": {
            "M": map_state({"F": fail()}, "F", Retry=[{"ErrorEquals": ["Boom"], "MaxAttempts": 1}], End=True)}},
        [(1, 0, "ExecutionStarted"), (2, 0, "MapStateEntered"), (3, 2, "MapStateStarted"),
         (4, 3, "MapIterationStarted"), (5, 4, "FailStateEntered"), (6, 5, "MapIterationFailed"),
         (7, 5, "MapStateStarted"), (8, 7, "MapIterationStarted"), (9, 8, "FailStateEntered"),
         (10, 9, "MapIterationFailed"), (11, 9, "MapStateFailed"), (12, 11, "ExecutionFailed")]),
}


@pytest.mark.parametrize("items, definition, expected", list(MAP.values()), ids=list(MAP))
def test_map_iterations_chain_as_aws_records_them(engine, items, definition, expected):
    assert chain(engine, run(engine, definition, {"items": items})) == expected


def test_an_empty_map_succeeds_from_its_started_event(engine):
    definition = {"StartAt": "M", "States": {"M": map_state({"P": {"Type": "Pass", "End": True}}, "P", End=True)}}
    assert chain(engine, run(engine, definition, {"items": []})) == [
        (1, 0, "ExecutionStarted"), (2, 0, "MapStateEntered"), (3, 2, "MapStateStarted"),
        (4, 3, "MapStateSucceeded"), (5, 3, "MapStateExited"), (6, 5, "ExecutionSucceeded")]


# ------------------------------------------------------------------------------------------ Parallel
def parallel(*branches: dict, **fields) -> dict:
    return {"Type": "Parallel", "Branches": list(branches), **fields}


PARALLEL = {
    # ParallelStateSucceeded and ParallelStateExited both point to the branch's last event.
    "one_branch": (
        {"StartAt": "P", "States": {"P": parallel(
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}, End=True)}},
        [(1, 0, "ExecutionStarted"), (2, 0, "ParallelStateEntered"), (3, 2, "ParallelStateStarted"),
         (4, 3, "PassStateEntered"), (5, 4, "PassStateExited"), (6, 5, "ParallelStateSucceeded"),
         (7, 5, "ParallelStateExited"), (8, 7, "ExecutionSucceeded")]),
    "nested": (
        {"StartAt": "L1", "States": {"L1": parallel({"StartAt": "L2", "States": {"L2": parallel(
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}, End=True)}}, End=True)}},
        [(1, 0, "ExecutionStarted"), (2, 0, "ParallelStateEntered"), (3, 2, "ParallelStateStarted"),
         (4, 3, "ParallelStateEntered"), (5, 4, "ParallelStateStarted"), (6, 5, "PassStateEntered"),
         (7, 6, "PassStateExited"), (8, 7, "ParallelStateSucceeded"), (9, 7, "ParallelStateExited"),
         (10, 9, "ParallelStateSucceeded"), (11, 9, "ParallelStateExited"), (12, 11, "ExecutionSucceeded")]),
    "branch_fails": (
        {"StartAt": "P", "States": {"P": parallel({"StartAt": "F", "States": {"F": fail()}}, End=True)}},
        [(1, 0, "ExecutionStarted"), (2, 0, "ParallelStateEntered"), (3, 2, "ParallelStateStarted"),
         (4, 3, "FailStateEntered"), (5, 4, "ParallelStateFailed"), (6, 5, "ExecutionFailed")]),
    "retried_twice_then_failed": (
        {"StartAt": "P", "States": {"P": parallel(
            {"StartAt": "F", "States": {"F": fail()}},
            Retry=[{"ErrorEquals": ["Boom"], "MaxAttempts": 2}], End=True)}},
        [(1, 0, "ExecutionStarted"), (2, 0, "ParallelStateEntered"), (3, 2, "ParallelStateStarted"),
         (4, 3, "FailStateEntered"), (5, 4, "ParallelStateStarted"), (6, 5, "FailStateEntered"),
         (7, 6, "ParallelStateStarted"), (8, 7, "FailStateEntered"), (9, 8, "ParallelStateFailed"),
         (10, 9, "ExecutionFailed")]),
}


@pytest.mark.parametrize("definition, expected", list(PARALLEL.values()), ids=list(PARALLEL))
def test_parallel_branches_chain_as_aws_records_them(engine, definition, expected):
    assert chain(engine, run(engine, definition, DATA)) == expected


def test_concurrent_branches_each_start_at_parallel_started_and_the_join_follows_the_last_event(engine):
    def branch(n: int) -> dict:
        return {"StartAt": f"A{n}", "States": {f"A{n}": {"Type": "Pass", "Next": f"B{n}"},
                                               f"B{n}": {"Type": "Pass", "End": True}}}
    events = chain(engine, run(engine, {"StartAt": "P", "States": {"P": parallel(branch(0), branch(1), End=True)}},
                               DATA))
    started = 3
    assert events[:3] == [(1, 0, "ExecutionStarted"), (2, 0, "ParallelStateEntered"),
                          (3, 2, "ParallelStateStarted")]
    inner = events[3:11]
    entered_a = [(i, p) for i, p, t in inner if t == "PassStateEntered" and p == started]
    assert len(entered_a) == 2  # each branch's first event points to ParallelStateStarted
    last = max(i for i, _, _ in inner)
    assert events[11:] == [(12, last, "ParallelStateSucceeded"), (13, last, "ParallelStateExited"),
                           (14, 13, "ExecutionSucceeded")]


# ------------------------------------------------------------------------------------------ callbacks, timeouts, stop
def test_a_callback_task_chains_through_submitted_to_its_answer(engine):
    engine.handler("py:hand-out")(lambda value, context: {"token": context.task_token})
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "py:hand-out.waitForTaskToken",
                                                   "End": True}}}
    arn = run(engine, definition, DATA, until=lambda a: "TaskSubmitted" in [t for *_, t in chain(engine, a)])
    token = engine.pending_tokens(arn)[0]["taskToken"]
    engine.send_task_success(token, {"zero": 0})
    worker = engine.worker(**QUICK)
    worker.run(until=lambda: engine.status(arn) in TERMINAL)
    worker.close()
    assert chain(engine, arn) == [
        (1, 0, "ExecutionStarted"), (2, 0, "TaskStateEntered"), (3, 2, "TaskScheduled"), (4, 3, "TaskStarted"),
        (5, 4, "TaskSubmitted"), (6, 5, "TaskSucceeded"), (7, 6, "TaskStateExited"), (8, 7, "ExecutionSucceeded")]


def test_a_timed_out_callback_chains_to_task_timed_out(engine, fake_clock):
    engine.handler("py:hand-out")(lambda value, context: None)
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "py:hand-out.waitForTaskToken",
                                                   "TimeoutSeconds": 60, "End": True}}}
    assert chain(engine, run(engine, definition, DATA)) == [
        (1, 0, "ExecutionStarted"), (2, 0, "TaskStateEntered"), (3, 2, "TaskScheduled"), (4, 3, "TaskStarted"),
        (5, 4, "TaskSubmitted"), (6, 5, "TaskTimedOut"), (7, 6, "ExecutionFailed")]


def test_stop_chains_the_aborted_state_to_its_thread_and_the_abort_after_it(engine):
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "W"},
                                             "W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    arn = run(engine, definition, DATA, until=lambda a: len(engine.history(a)) >= 4)
    engine.stop(arn)
    assert chain(engine, arn) == [
        (1, 0, "ExecutionStarted"), (2, 0, "PassStateEntered"), (3, 2, "PassStateExited"),
        (4, 3, "WaitStateEntered"), (5, 4, "WaitStateAborted"), (6, 5, "ExecutionAborted")]


def test_a_distributed_map_shows_its_map_run_not_its_iterations(engine):
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P",
                 "States": {"P": {"Type": "Pass", "End": True}}}
    definition = {"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 1, "ItemsPath": "$.items",
                                                   "ItemProcessor": processor, "End": True}}}
    arn = run(engine, definition, {"items": [0, False, None]})
    assert chain(engine, arn) == [
        (1, 0, "ExecutionStarted"), (2, 0, "MapStateEntered"), (3, 2, "MapStateStarted"), (4, 3, "MapRunStarted"),
        (5, 4, "MapRunSucceeded"), (6, 5, "MapStateSucceeded"), (7, 5, "MapStateExited"),
        (8, 7, "ExecutionSucceeded")]
    run_arn = engine.history(arn)[3]["mapRunStartedEventDetails"]["mapRunArn"]
    assert run_arn.startswith(engine.machine_arn("m").replace(":stateMachine:", ":mapRun:") + "/M:")


def test_a_failure_without_error_or_cause_keeps_its_empty_details(engine):
    arn = run(engine, {"StartAt": "F", "States": {"F": {"Type": "Fail"}}}, DATA)
    events = engine.history(arn)
    assert events[-1]["type"] == "ExecutionFailed" and events[-1]["executionFailedEventDetails"] == {}


def test_an_event_without_details_has_no_details_object(engine):
    arn = run(engine, {"StartAt": "P", "States": {"P": parallel(
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}, End=True)}}, DATA)
    started = next(e for e in engine.history(arn) if e["type"] == "ParallelStateStarted")
    assert set(started) == {"id", "previousEventId", "type", "timestamp"}
