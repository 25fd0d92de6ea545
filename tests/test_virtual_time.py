"""Virtual time: Waits, Retry backoff, TimeoutSeconds and HeartbeatSeconds pass as soon as nothing else can run,
and every time the execution sees ($$, Timestamp Waits, history timestamps) follows the virtual clock."""
from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from statemill.engine import Engine, FakeClock, TaskFailure
from statemill.engine.clock import iso

sys.path.insert(0, str(Path(__file__).parent))
from clitools import statemill  # noqa: E402

DAY = 86_400
START = 1_767_225_600.0  # FakeClock's start: 2026-01-01T00:00:00Z


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def span(history: list[dict]) -> float:
    return seconds(history[-1]["timestamp"]) - seconds(history[0]["timestamp"])


LONG = {"StartAt": "Sleep", "States": {
    "Sleep": {"Type": "Wait", "Seconds": 2 * DAY, "Next": "Call"},
    "Call": {"Type": "Task", "Resource": "call", "End": True,
             "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 3600, "MaxAttempts": 2, "BackoffRate": 1}]}}}


def test_a_two_day_wait_and_hour_long_backoff_pass_on_the_virtual_clock(engine):
    calls = []

    @engine.handler("call")
    def call(value):
        calls.append(engine.clock.now())
        if len(calls) < 3:
            raise TaskFailure("Flaky", "")
        return {"done": True}

    result = engine.run(LONG, {"n": 0}, machine_name="long")
    assert result["status"] == "SUCCEEDED" and result["output"] == {"done": True}
    assert [c - START for c in calls] == [2 * DAY, 2 * DAY + 3600, 2 * DAY + 7200]
    history = engine.history(result["executionArn"])
    assert span(history) == 2 * DAY + 7200
    exited = next(e for e in history if e["type"] == "WaitStateExited")
    assert exited["timestamp"] == iso(START + 2 * DAY)


def test_context_times_follow_the_virtual_clock(engine):
    machine = {"StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "Seconds": 3600, "Next": "Look"},
        "Look": {"Type": "Pass", "End": True,
                 "Parameters": {"entered.$": "$$.State.EnteredTime", "start.$": "$$.Execution.StartTime"}}}}
    result = engine.run(machine, {}, machine_name="m")
    assert result["output"] == {"entered": iso(START + 3600), "start": iso(START)}


def test_a_timestamp_wait_fires_at_its_virtual_moment(engine):
    machine = {"StartAt": "Until", "States": {"Until": {"Type": "Wait", "TimestampPath": "$.at", "End": True}}}
    result = engine.run(machine, {"at": "2026-01-04T12:00:00Z"}, machine_name="m")
    assert result["status"] == "SUCCEEDED"
    assert result["stopDate"] == "2026-01-04T12:00:00.000Z"


@pytest.mark.parametrize("fields, error", [
    ({"TimeoutSeconds": 7 * DAY}, "States.Timeout"),
    ({"TimeoutSeconds": 7 * DAY, "HeartbeatSeconds": DAY}, "States.HeartbeatTimeout"),
], ids=["TimeoutSeconds", "HeartbeatSeconds"])
def test_callback_deadlines_fire_when_nobody_can_answer(engine, fields, error):
    engine.handler("ask")(lambda value: None)
    machine = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "ask.waitForTaskToken",
                                                    "Parameters": {"t.$": "$$.Task.Token"}, "End": True, **fields}}}
    result = engine.run(machine, {}, machine_name="m")
    assert (result["status"], result["error"]) == ("FAILED", error)
    waited = fields.get("HeartbeatSeconds", fields["TimeoutSeconds"])
    assert span(engine.history(result["executionArn"])) == waited


def test_nothing_due_means_no_jump_a_token_answered_later_still_counts(engine):
    machine = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "ask.waitForTaskToken",
                                                    "Parameters": {"t.$": "$$.Task.Token"}, "End": True}}}
    tokens = []
    engine.handler("ask")(lambda value: tokens.append(value["t"]))

    def answer_soon():
        while not tokens:
            time.sleep(0.05)
        time.sleep(0.5)  # the worker idles meanwhile, with nothing due
        engine.send_task_success(tokens[0], {"ok": 0})

    helper = threading.Thread(target=answer_soon)
    helper.start()
    result = engine.run(machine, {}, machine_name="m")
    helper.join()
    assert result["output"] == {"ok": 0}
    assert span(engine.history(result["executionArn"])) == 0  # the clock stood still while waiting for the world


RETRY_AND_WAIT = {"StartAt": "Call", "States": {
    "Call": {"Type": "Task", "Resource": "call", "Next": "Pause",
             "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 1}]},
    "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
    "Done": {"Type": "Pass", "Parameters": {"calls.$": "$.calls"}, "End": True}}}


def history_without_times(engine, arn) -> list[tuple]:
    return [(e["id"], e["previousEventId"], e["type"],
             json.dumps({k: v for k, v in e.items() if k.endswith("EventDetails")}, sort_keys=True))
            for e in engine.history(arn)]


def test_virtual_time_writes_the_history_a_real_run_writes(tmp_path):
    histories = []
    for clock in (None, FakeClock.virtual()):
        engine = Engine(f"sqlite:///{tmp_path / f'{bool(clock)}.db'}", clock=clock)
        count = []

        @engine.handler("call")
        def call(value):
            count.append(1)
            if len(count) == 1:
                raise TaskFailure("Flaky", "first")
            return {"calls": len(count)}

        result = engine.run(RETRY_AND_WAIT, {"in": 0}, machine_name="m", name="same")
        assert result["status"] == "SUCCEEDED"
        histories.append(history_without_times(engine, result["executionArn"]))
        engine.db.dispose()
    real, virtual = histories
    assert virtual == real


def test_cli_run_with_virtual_time_finishes_a_two_day_wait(tmp_path):
    machine = tmp_path / "sleepy.json"
    machine.write_text(json.dumps({"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 2 * DAY,
                                                                           "End": True}}}))
    db = tmp_path / "x.db"
    done = statemill("run", str(machine), "--db", str(db), "--virtual-time", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert seconds(described["stopDate"]) - seconds(described["startDate"]) == 2 * DAY


def test_waits_in_parallel_branches_and_map_iterations_overlap_on_the_virtual_clock(engine):
    machine = {"StartAt": "Both", "States": {
        "Both": {"Type": "Parallel", "Next": "Each", "Branches": [
            {"StartAt": "Day", "States": {"Day": {"Type": "Wait", "Seconds": DAY, "End": True}}},
            {"StartAt": "TwoDays", "States": {"TwoDays": {"Type": "Wait", "Seconds": 2 * DAY, "End": True}}}]},
        "Each": {"Type": "Map", "ItemsPath": "$[0].waits", "End": True, "ItemProcessor": {
            "StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "SecondsPath": "$", "End": True}}}}}}
    result = engine.run(machine, {"waits": [3600, 0, 7200]}, machine_name="m")
    assert result["status"] == "SUCCEEDED" and result["output"] == [3600, 0, 7200]
    assert span(engine.history(result["executionArn"])) == 2 * DAY + 7200


@pytest.mark.parametrize("epoch, text", [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1.9994999, "1970-01-01T00:00:01.999Z"),
    (1.9999996, "1970-01-01T00:00:02.000Z"),  # the microseconds round up into the next second
    (86399.9999996, "1970-01-02T00:00:00.000Z"),
    (1764579000.123, "2025-12-01T08:50:00.123Z"),
    (-0.0000004, "1970-01-01T00:00:00.000Z"),
    (-1.5, "1969-12-31T23:59:58.500Z"),
])
def test_times_show_as_rfc3339_with_milliseconds(epoch, text):
    assert iso(epoch) == text
    assert iso(epoch + 7) != text and iso(epoch) == text, "the remembered second is not reused for another"
