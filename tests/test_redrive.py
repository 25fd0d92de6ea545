"""RedriveExecution: a FAILED, TIMED_OUT or ABORTED execution restarts from the state that did not succeed, with the
input it had there; states that succeeded before are not run again; retry counters start over; the history goes on
with ExecutionRedriven; what cannot be redriven gets ExecutionNotRedrivable and nothing is written.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from statemill.cli.main import main as cli
from statemill.engine import Engine
from statemill.engine.redrive import ExecutionNotRedrivable

DAY = 24 * 3600
DEFINITION = {"StartAt": "First", "States": {
    "First": {"Type": "Task", "Resource": "first", "ResultPath": "$.first", "Next": "Second"},
    "Second": {"Type": "Task", "Resource": "second", "ResultPath": "$.second",
               "Retry": [{"ErrorEquals": ["Broken"], "MaxAttempts": 1, "IntervalSeconds": 1}], "End": True}}}
INPUT = {"zero": 0, "false": False, "empty": "", "null": None}


class Broken(Exception):
    pass


@pytest.fixture
def calls(engine):
    """Handler calls by state; ``second`` fails while ``broken`` holds True."""
    seen = {"first": [], "second": [], "broken": True}

    @engine.handler("first")
    def first(value):
        seen["first"].append(value)
        return 0

    @engine.handler("second")
    def second(value):
        seen["second"].append(value)
        if seen["broken"]:
            raise Broken("not yet")
        return ""
    return seen


def failed(engine):
    done = engine.run(DEFINITION, INPUT, machine_name="m")
    assert done["status"] == "FAILED" and done["error"] == "Broken"
    return done["executionArn"]


def test_redrive_restarts_from_the_failed_state_with_its_input(engine, calls):
    arn = failed(engine)
    assert len(calls["first"]) == 1 and len(calls["second"]) == 2  # one retry
    before = engine.history(arn)
    calls["broken"] = False
    engine.redrive(arn)
    done = engine.wait(arn)
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {**INPUT, "first": 0, "second": ""}
    assert len(calls["first"]) == 1  # First succeeded before: not run again
    assert calls["second"][-1] == {**INPUT, "first": 0}  # the input Second had
    assert done["redriveCount"] == 1 and done["redriveDate"] >= done["startDate"]
    after = engine.history(arn)
    assert after[:len(before)] == before
    redriven = after[len(before)]
    assert redriven["type"] == "ExecutionRedriven"
    assert redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert redriven["previousEventId"] == before[-1]["id"]
    assert [e["id"] for e in after] == list(range(1, len(after) + 1))
    assert after[len(before) + 1]["type"] == "TaskStateEntered"
    assert after[len(before) + 1]["stateEnteredEventDetails"]["name"] == "Second"


def test_retry_counters_start_over(engine, calls):
    arn = failed(engine)
    engine.redrive(arn)
    assert engine.wait(arn)["status"] == "FAILED"
    assert len(calls["second"]) == 4  # two attempts before, two again
    engine.redrive(arn)
    calls["broken"] = False
    done = engine.wait(arn)
    assert done["status"] == "SUCCEEDED" and done["redriveCount"] == 2


def test_an_aborted_execution_is_redriven_from_where_it_stopped(engine, calls):
    definition = {"StartAt": "First", "States": {
        "First": {"Type": "Task", "Resource": "first", "ResultPath": "$.first", "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 60, "End": True}}}
    arn = engine.start(engine.register(definition, "napper")["name"], INPUT)["executionArn"]
    engine.worker().run(until=lambda: engine.history(arn)[-1]["type"] == "WaitStateEntered")
    engine.stop(arn)
    engine.redrive(arn)
    done = engine.wait(arn)
    assert done["status"] == "SUCCEEDED" and done["output"] == {**INPUT, "first": 0}
    assert len(calls["first"]) == 1


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_running_or_succeeded_cannot_be_redriven_and_nothing_is_written(engine, calls, status):
    calls["broken"] = False
    if status == "SUCCEEDED":
        arn = engine.run(DEFINITION, INPUT, machine_name="m")["executionArn"]
    else:
        arn = engine.start(engine.register(DEFINITION, "m")["name"], INPUT)["executionArn"]
    before = engine.history(arn), engine.describe(arn)
    with pytest.raises(ExecutionNotRedrivable, match=f"Execution is {status} and cannot be redriven"):
        engine.redrive(arn)
    assert (engine.history(arn), engine.describe(arn)) == before


def test_the_redrive_window_is_14_days(engine, calls, fake_clock):
    arn = failed(engine)
    fake_clock.advance(14 * DAY - 60)
    engine.redrive(arn)
    assert engine.wait(arn)["status"] == "FAILED"
    fake_clock.advance(14 * DAY + 60)
    with pytest.raises(ExecutionNotRedrivable, match="14 days"):
        engine.redrive(arn)


def test_statemill_redrive_command(db_url):
    engine = Engine(db_url)  # the system clock, as the command has
    engine.handlers.update({"first": lambda value: 0, "second": lambda value: 1 / 0})
    arn = engine.run(DEFINITION, INPUT, machine_name="m")["executionArn"]
    db = db_url
    result = CliRunner().invoke(cli, ["redrive", arn, "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    assert "redriveDate" in json.loads(result.output)
    assert engine.status(arn) == "RUNNING"
    result = CliRunner().invoke(cli, ["redrive", arn, "--db", db])
    assert result.exit_code != 0 and "RUNNING" in result.output
    engine.db.dispose()


def test_the_context_object_counts_redrives_and_says_when(engine):
    """$$.Execution.RedriveCount is 0 until a redrive, then counts them, with RedriveTime from the last one."""
    seen = []

    @engine.handler("look")
    def look(value):
        seen.append(value)
        if len(seen) == 1:
            raise Broken("first run")
        return value

    definition = {"StartAt": "Look", "States": {"Look": {
        "Type": "Task", "Resource": "look", "Parameters": {"execution.$": "$$.Execution"}, "End": True}}}
    arn = engine.run(definition, INPUT, machine_name="ctx")["executionArn"]
    engine.redrive(arn)
    done = engine.wait(arn)
    assert done["status"] == "SUCCEEDED"
    first, second = (call["execution"] for call in seen)
    assert first["RedriveCount"] == 0 and "RedriveTime" not in first
    assert second["RedriveCount"] == 1
    assert second["RedriveTime"] == done["redriveDate"]
