"""Child workflows: a Task with ``arn:aws:states:::states:startExecution`` (plain, ``.sync``, ``.sync:2``,
``.waitForTaskToken``) starts an ordinary execution of another state machine, linked to its parent.

The spec, as AWS behaves: the plain call returns StartExecution's response; ``.sync`` waits and returns
DescribeExecution's shape with Output as JSON text, ``.sync:2`` with Output as JSON; a child that does not succeed
fails the task with States.TaskFailed and that shape (Status, Error, Cause) as the cause; stopping the parent
stops its ``.sync`` children; a worker crashing after the child started never starts a second one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from statemill.cli.main import main as cli
from statemill.engine import Engine
from statemill.engine.store.schema import executions

WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = WORKER.parent.parent
START = "arn:aws:states:::states:startExecution"
CHILD_ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:child"
# Falsy values every layer must pass through unchanged.
FALSY = {"zero": 0, "false": False, "empty": "", "null": None}

CHILD = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
FAILING_CHILD = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Child.Broke", "Cause": ""}}}
PARKED_CHILD = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "notify.waitForTaskToken",
                                                     "Parameters": {"token.$": "$$.Task.Token"}, "End": True}}}


def parent(resource: str, **fields) -> dict:
    """A parent machine whose one Task starts the child with the falsy input and the started-by convention."""
    arguments = {"StateMachineArn": CHILD_ARN,
                 "Input": {**FALSY, "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}, **fields}
    return {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": resource, "Parameters": arguments,
                                                   "End": True}}}


def children_of(engine: Engine, arn: str) -> list[dict]:
    return engine.list(parent=arn)


@pytest.fixture
def with_child(engine):
    engine.register(CHILD, "child")
    return engine


@pytest.mark.parametrize("resource, output_is_text", [(f"{START}.sync", True), (f"{START}.sync:2", False)],
                         ids=["sync_gives_output_as_json_text", "sync2_gives_output_as_json"])
def test_sync_waits_for_the_child_and_returns_describe_execution(with_child, resource, output_is_text):
    done = with_child.run(parent(resource), {}, machine_name="parent")
    assert done["status"] == "SUCCEEDED"
    result = done["output"]
    (child,) = children_of(with_child, done["executionArn"])
    expected_output = {**FALSY, "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": done["executionArn"]}
    assert result["ExecutionArn"] == child["executionArn"]
    assert result["Status"] == "SUCCEEDED"
    assert result["StateMachineArn"] == CHILD_ARN
    assert result["Output"] == (json.dumps(expected_output, separators=(",", ":")) if output_is_text
                                else expected_output)
    assert json.loads(result["Input"]) == expected_output
    assert result["OutputDetails"] == {"Included": True} and result["InputDetails"] == {"Included": True}
    assert isinstance(result["StartDate"], int) and result["StopDate"] >= result["StartDate"]
    assert child["status"] == "SUCCEEDED"
    # The child's $$.Execution.Input carries the parent's execution id, as AWS's convention has it.
    assert with_child.describe(child["executionArn"])["input"]["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] \
        == done["executionArn"]
    types = [e["type"] for e in with_child.history(done["executionArn"])]
    assert types[types.index("TaskScheduled"):types.index("TaskSucceeded") + 1] == \
        ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"]


def test_plain_start_returns_start_execution_response_without_waiting(with_child):
    done = with_child.run(parent(START, Name="kid-0"), {}, machine_name="parent")
    assert done["status"] == "SUCCEEDED"
    assert set(done["output"]) == {"ExecutionArn", "StartDate"}
    assert done["output"]["ExecutionArn"] == "arn:aws:states:us-east-1:000000000000:execution:child:kid-0"
    assert isinstance(done["output"]["StartDate"], int)
    assert with_child.wait(done["output"]["ExecutionArn"])["status"] == "SUCCEEDED"
    assert with_child.links(done["output"]["ExecutionArn"])["parentExecutionArn"] == done["executionArn"]


def test_wait_for_task_token_passes_the_token_to_the_child(engine):
    engine.register(PARKED_CHILD, "child")
    seen = []
    engine.handler("notify")(lambda value, context: seen.append(value) or {})
    definition = parent(f"{START}.waitForTaskToken")
    definition["States"]["Call"]["Parameters"]["Input"] = {"parentToken.$": "$$.Task.Token"}
    arn = engine.start(engine.register(definition, "parent")["name"], {})["executionArn"]
    worker = engine.worker()
    worker.run(until=lambda: bool(engine.pending_tokens(arn)) and len(engine.list(parent=arn)) == 1 and
               engine.history(arn)[-1]["type"] == "TaskSubmitted")
    (child,) = engine.list(parent=arn)
    token = engine.describe(child["executionArn"])["input"]["parentToken"]
    engine.send_task_success(token, {"answer": 0})
    worker = engine.worker()
    worker.run(until=lambda: engine.status(arn) != "RUNNING")
    assert engine.describe(arn)["output"] == {"answer": 0}


@pytest.mark.parametrize("resource", [f"{START}.sync", f"{START}.sync:2"])
def test_a_failed_child_fails_the_task_with_states_task_failed(engine, resource):
    engine.register(FAILING_CHILD, "child")
    done = engine.run(parent(resource), {}, machine_name="parent")
    assert done["status"] == "FAILED"
    assert done["error"] == "States.TaskFailed"
    cause = json.loads(done["cause"])
    assert cause["Status"] == "FAILED" and cause["Error"] == "Child.Broke" and cause["Cause"] == ""
    assert "Output" not in cause
    (child,) = children_of(engine, done["executionArn"])
    assert cause["ExecutionArn"] == child["executionArn"]


def test_a_failed_child_is_caught_like_any_task_failure(engine):
    engine.register(FAILING_CHILD, "child")
    definition = parent(f"{START}.sync:2")
    definition["States"]["Call"]["Catch"] = [{"ErrorEquals": ["States.TaskFailed"], "Next": "Recovered",
                                              "ResultPath": "$.failure"}]
    definition["States"]["Recovered"] = {"Type": "Pass", "End": True}
    done = engine.run(definition, {"n": 0}, machine_name="parent")
    assert done["status"] == "SUCCEEDED"
    assert done["output"]["n"] == 0 and done["output"]["failure"]["Error"] == "States.TaskFailed"


@pytest.mark.parametrize("arguments, error", [
    ({"StateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:nobody"},
     "StepFunctions.StateMachineDoesNotExistException"),
    ({"StateMachineArn": "child"}, "StepFunctions.InvalidArnException"),
    ({"StateMachineArn": CHILD_ARN, "Input": "{not json"}, "StepFunctions.InvalidExecutionInputException"),
    ({"StateMachineArn": CHILD_ARN, "Name": "bad name with spaces"}, "StepFunctions.InvalidNameException"),
], ids=["unknown_machine", "not_an_arn", "input_not_json", "bad_name"])
def test_a_child_that_cannot_start_fails_the_task_with_the_step_functions_error(with_child, arguments, error):
    definition = {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": f"{START}.sync",
                                                         "Parameters": arguments, "End": True}}}
    done = with_child.run(definition, {}, machine_name="parent")
    assert done["status"] == "FAILED" and done["error"] == error
    assert children_of(with_child, done["executionArn"]) == []


def test_a_child_name_already_used_fails_with_execution_already_exists(with_child):
    with_child.run(CHILD, {}, machine_name="child", name="taken")
    done = with_child.run(parent(f"{START}.sync", Name="taken"), {}, machine_name="parent")
    assert done["error"] == "StepFunctions.ExecutionAlreadyExistsException"


def _parked(engine: Engine):
    """A parent whose .sync child waits on a task token nobody answers; both running."""
    engine.register(PARKED_CHILD, "child")
    engine.handler("notify")(lambda value, context: {})
    arn = engine.start(engine.register(parent(f"{START}.sync"), "parent")["name"], {})["executionArn"]
    engine.worker().run(until=lambda: len(engine.list(parent=arn)) == 1 and
                        bool(engine.pending_tokens(engine.list(parent=arn)[0]["executionArn"])) and
                        engine.history(arn)[-1]["type"] == "TaskSubmitted")
    return arn, engine.list(parent=arn)[0]["executionArn"]


def test_stopping_the_parent_stops_its_sync_children(engine):
    arn, child = _parked(engine)
    engine.stop(arn, error="Operator", cause="")
    assert engine.status(arn) == "ABORTED"
    assert engine.status(child) == "ABORTED"
    assert engine.history(child)[-1]["type"] == "ExecutionAborted"


NAPPING_CHILD = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}}
FAIL_LATER = {"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": 10, "Next": "Boom"},
                                             "Boom": {"Type": "Fail", "Error": "Sibling.Broke", "Cause": ""}}}


def _call(**fields) -> dict:
    return {"Type": "Task", "Resource": f"{START}.sync", "End": True, **fields,
            "Parameters": {"StateMachineArn": CHILD_ARN, "Input": FALSY}}


CANCELLED_TASKS = {
    "a_sibling_branch_fails": ({"StartAt": "Fork", "States": {"Fork": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Call", "States": {"Call": _call()}}, FAIL_LATER]}}}, "Sibling.Broke"),
    "the_task_times_out": ({"StartAt": "Call", "States": {"Call": _call(TimeoutSeconds=10)}}, "States.Timeout"),
    "the_heartbeat_times_out": ({"StartAt": "Call", "States": {"Call": _call(HeartbeatSeconds=10)}},
                                "States.HeartbeatTimeout"),
    "the_enclosing_map_fails": ({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True, "ItemProcessor": {"StartAt": "Which", "States": {
            "Which": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "Call"}],
                      "Default": "Pause"},
            "Call": _call(), **FAIL_LATER["States"]}}}}}, "Sibling.Broke"),
}


@pytest.mark.parametrize("case", list(CANCELLED_TASKS))
def test_a_cancelled_sync_task_stops_its_child(engine, case):
    """Only the parent's task is cancelled, not the parent execution: its .sync child is stopped all the same."""
    definition, error = CANCELLED_TASKS[case]
    engine.register(NAPPING_CHILD, "child")
    done = engine.run(definition, {"items": [0, 1]}, machine_name="parent")
    assert done["status"] == "FAILED" and done["error"] == error
    (child,) = children_of(engine, done["executionArn"])
    assert child["status"] == "ABORTED"
    assert engine.history(child["executionArn"])[-1]["type"] == "ExecutionAborted"


def test_stopping_the_child_fails_the_parent_task(engine):
    arn, child = _parked(engine)
    engine.stop(child)
    engine.worker().run(until=lambda: engine.status(arn) != "RUNNING")
    done = engine.describe(arn)
    assert done["error"] == "States.TaskFailed"
    assert json.loads(done["cause"])["Status"] == "ABORTED"


def test_describe_and_list_show_the_links(with_child):
    done = with_child.run(parent(f"{START}.sync:2", Name="kid"), {}, machine_name="parent")
    child = done["output"]["ExecutionArn"]
    db = with_child.db.url.render_as_string(hide_password=False)
    runner = CliRunner()
    shown = json.loads(runner.invoke(cli, ["describe", done["executionArn"], "--db", db, "--json"]).output)
    assert shown["childExecutionArns"] == [child] and "parentExecutionArn" not in shown
    shown = json.loads(runner.invoke(cli, ["describe", child, "--db", db, "--json"]).output)
    assert shown["parentExecutionArn"] == done["executionArn"]
    listed = json.loads(runner.invoke(cli, ["list", "--parent", done["executionArn"], "--db", db, "--json"]).output)
    assert [e["executionArn"] for e in listed["executions"]] == [child]
    listed = json.loads(runner.invoke(cli, ["list", "--parent", child, "--db", db, "--json"]).output)
    assert listed["executions"] == []


@pytest.mark.parametrize("name", [None, "kid-0"], ids=["generated_name", "given_name"])
def test_a_worker_killed_after_starting_the_child_never_starts_a_second(db_url, tmp_path, name):
    client = Engine(db_url)
    client.register(CHILD, "child")
    arguments = {} if name is None else {"Name": name}
    arn = client.start(client.register(parent(f"{START}.sync:2", **arguments), "parent")["name"],
                       {})["executionArn"]
    env = {**os.environ, "STATEMILL_FAULT": "after_handler", "STATEMILL_FAULT_ONCE": str(tmp_path / "crashed")}
    calls = tmp_path / "calls.jsonl"
    command = [sys.executable, str(WORKER), db_url, str(calls), "--lease", "1"]
    crashed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9, crashed.stderr
    assert client.status(arn) == "RUNNING" and len(client.list(parent=arn)) == 1  # started, not yet recorded
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    done = client.describe(arn)
    assert done["status"] == "SUCCEEDED"
    (child,) = client.list(parent=arn)
    assert done["output"]["ExecutionArn"] == child["executionArn"] and child["status"] == "SUCCEEDED"
    with client.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(executions)).scalar() == 2
    client.db.dispose()


def test_the_example_fans_out_to_child_workflows(engine):
    from statemill.statemachines.demo_handlers import HANDLERS
    engine.handlers.update(HANDLERS)
    examples = ROOT / "statemachines"
    engine.register(examples / "resize_one.yaml")
    done = engine.run(examples / "resize_all.yaml", json.loads((examples / "fan_out_input.json").read_text()))
    assert done["status"] == "SUCCEEDED"
    images = [item["image"] for item in done["output"]["resized"]]
    assert images == ["cat-640.png", "dog-640.png", "owl-640.png", "fox-640.png", "elk-640.png", "bee-640.png"]
    children = {e["executionArn"]: e["status"] for e in engine.list(parent=done["executionArn"])}
    assert sorted(children) == sorted(item["child"] for item in done["output"]["resized"])
    assert set(children.values()) == {"SUCCEEDED"}


def test_a_child_runs_the_version_its_arn_names(engine):
    from statemill.engine import versions
    engine.register(CHILD, "child")
    with engine.db.begin() as conn:
        number = versions.publish(conn, "child", None, engine.clock.now())[0]
    engine.register({"StartAt": "Other", "States": {"Other": {"Type": "Pass", "Result": "latest", "End": True}}},
                    "child")
    done = engine.run(parent(f"{START}.sync:2", StateMachineArn=f"{CHILD_ARN}:{number}"), {}, machine_name="parent")
    assert done["status"] == "SUCCEEDED"
    assert done["output"]["Output"]["zero"] == 0  # version 1 (Pass through), not $LATEST's "latest"
    latest = engine.run(parent(f"{START}.sync:2"), {}, machine_name="parent")
    assert latest["output"]["Output"] == "latest"
