"""TestState: one state run in memory, answered in the shape of AWS's TestState API."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from statemill.engine import HandlerRegistry, TaskFailure
from statemill.engine.teststate import InvalidDefinition, ValidationException, test_state as run_test_state

sys.path.insert(0, str(Path(__file__).parent))
from clitools import statemill  # noqa: E402


def ask(definition: dict, input: object = None, **request) -> dict:
    body = {"definition": json.dumps(definition), **request}
    if input is not None:
        body["input"] = json.dumps(input)
    return run_test_state(body)


def data(response: dict) -> dict:
    """inspectionData with its JSON text fields parsed."""
    return {k: json.loads(v) if isinstance(v, str) else v for k, v in response["inspectionData"].items()}


# AWS's "InputPath, ResultPath and OutputPath Example" (Step Functions developer guide), its Lambda mocked.
HELLO = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction",
         "InputPath": "$.lambda", "ResultPath": "$.data.lambdaresult", "OutputPath": "$.data", "End": True}
HELLO_INPUT = {"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
               "lambda": {"who": "AWS Step Functions"}}


def test_the_data_flow_of_aws_input_output_example():
    response = ask(HELLO, HELLO_INPUT, inspectionLevel="DEBUG",
                   mock={"result": json.dumps("Hello, AWS Step Functions!")})
    assert response["status"] == "SUCCEEDED" and "nextState" not in response
    assert json.loads(response["output"]) == {"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}
    seen = data(response)
    assert seen["input"] == HELLO_INPUT
    assert seen["afterInputPath"] == {"who": "AWS Step Functions"}
    assert seen["result"] == "Hello, AWS Step Functions!"
    assert seen["afterResultPath"] == {**HELLO_INPUT, "data": {"val1": 23, "val2": 17,
                                                               "lambdaresult": "Hello, AWS Step Functions!"}}


def test_info_level_has_no_inspection_data():
    response = ask(HELLO, HELLO_INPUT, mock={"result": '"hi"'})
    assert set(response) == {"output", "status"}


FLAKY = {"Type": "Task", "Resource": "call", "Next": "Done",
         "Retry": [{"ErrorEquals": ["Other"], "MaxAttempts": 5},
                   {"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 3}],
         "Catch": [{"ErrorEquals": ["Nope"], "Next": "Never"},
                   {"ErrorEquals": ["States.ALL"], "Next": "Handle", "ResultPath": "$.problem"}]}


@pytest.mark.parametrize("retried, status, details", [
    (None, "RETRIABLE", {"retryIndex": 1, "retryBackoffIntervalSeconds": 2}),
    (1, "RETRIABLE", {"retryIndex": 1, "retryBackoffIntervalSeconds": 6}),
    (2, "CAUGHT_ERROR", {"catchIndex": 1}),
], ids=["first failure retries", "backoff grows with the retry count", "retries used up: caught"])
def test_a_mocked_error_is_retried_then_caught(retried, status, details):
    request = {"inspectionLevel": "DEBUG", "mock": {"errorOutput": {"error": "Flaky", "cause": "try later"}}}
    if retried is not None:
        request["stateConfiguration"] = {"retrierRetryCount": retried}
    response = ask(FLAKY, {"id": 0}, **request)
    assert (response["status"], response["error"], response["cause"]) == (status, "Flaky", "try later")
    assert data(response)["errorDetails"] == details
    if status == "CAUGHT_ERROR":
        assert response["nextState"] == "Handle"
        assert json.loads(response["output"]) == {"id": 0, "problem": {"Error": "Flaky", "Cause": "try later"}}
    else:
        assert "output" not in response and "nextState" not in response


@pytest.mark.parametrize("definition, input, expected", [
    ({"Type": "Pass", "Result": {"x": False}, "ResultPath": "$.r", "Next": "B"}, {"a": 0},
     {"status": "SUCCEEDED", "nextState": "B", "output": {"a": 0, "r": {"x": False}}}),
    ({"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 0, "Next": "Zero"}], "Default": "Other"},
     {"n": 0}, {"status": "SUCCEEDED", "nextState": "Zero", "output": {"n": 0}}),
    ({"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 0, "Next": "Zero"}], "Default": "Other"},
     {"n": 1}, {"status": "SUCCEEDED", "nextState": "Other", "output": {"n": 1}}),
    ({"Type": "Fail", "Error": "Bad", "Cause": ""}, {}, {"status": "FAILED", "error": "Bad", "cause": ""}),
    ({"Type": "Succeed", "OutputPath": "$.keep"}, {"keep": None, "drop": 1}, {"status": "SUCCEEDED", "output": None}),
    ({"Type": "Wait", "Seconds": 99999999, "Next": "Later"}, [0], {"status": "SUCCEEDED", "nextState": "Later",
                                                                   "output": [0]}),
], ids=["Pass", "Choice rule", "Choice Default", "Fail", "Succeed", "Wait does not wait"])
def test_each_state_type_answers_status_next_state_and_output(definition, input, expected):
    response = ask(definition, input)
    if "output" in response:
        response["output"] = json.loads(response["output"])
    assert response == expected


def test_a_task_without_mock_calls_its_registered_handler():
    registry = HandlerRegistry({"double": lambda value: value * 2})
    response = run_test_state({"definition": json.dumps({"Type": "Task", "Resource": "double", "End": True}),
                               "input": "21"}, registry)
    assert (response["status"], response["output"]) == ("SUCCEEDED", "42")
    failing = HandlerRegistry({"double": lambda value: (_ for _ in ()).throw(TaskFailure("Odd", "no"))})
    response = run_test_state({"definition": json.dumps({"Type": "Task", "Resource": "double", "End": True}),
                               "input": "21"}, failing)
    assert (response["status"], response["error"], response["cause"]) == ("FAILED", "Odd", "no")


def test_a_state_of_a_whole_machine_with_variables():
    machine = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($total, $.n)"}, "Assign": {"total.$": "$.sum"},
              "Next": "Done"},
        "Done": {"Type": "Succeed"}}}
    response = run_test_state({"definition": json.dumps(machine), "stateName": "B", "input": '{"n": 2}',
                               "variables": '{"total": 40}', "inspectionLevel": "DEBUG"})
    assert (response["status"], response["nextState"], json.loads(response["output"])) == \
        ("SUCCEEDED", "Done", {"sum": 42})
    assert json.loads(response["inspectionData"]["variables"]) == {"total": 42}
    assert json.loads(response["inspectionData"]["afterParameters"]) == {"sum": 42}


def test_jsonata_state_reports_its_arguments():
    state = {"Type": "Task", "QueryLanguage": "JSONata", "Resource": "r",
             "Arguments": {"twice": "{% $states.input.n * 2 %}"}, "Output": "{% $states.result.value %}", "End": True}
    response = ask(state, {"n": 4}, inspectionLevel="TRACE", mock={"result": '{"value": 0}'})
    assert response["output"] == "0"
    assert json.loads(response["inspectionData"]["afterArguments"]) == {"twice": 8}
    assert json.loads(response["inspectionData"]["result"]) == {"value": 0}


def test_map_and_parallel_take_a_mocked_result_or_error():
    mapped = {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"v.$": "$$.Map.Item.Value"},
              "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
              "ResultPath": "$.out", "End": True}
    response = ask(mapped, {"items": [1, 2]}, inspectionLevel="DEBUG", mock={"result": "[10, 20]"})
    assert json.loads(response["output"]) == {"items": [1, 2], "out": [10, 20]}
    assert json.loads(response["inspectionData"]["afterItemSelector"]) == [{"v": 1}, {"v": 2}]
    parallel = {"Type": "Parallel", "Branches": [{"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": True}}}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}], "End": True}
    response = ask(parallel, {}, mock={"errorOutput": {"error": "Branch.Boom", "cause": "q"}},
                   stateConfiguration={"errorCausedByState": "Q"})
    assert (response["status"], response["nextState"]) == ("CAUGHT_ERROR", "Recover")


def test_context_fields_override_the_context_object():
    state = {"Type": "Task", "Resource": "r", "End": True,
             "Parameters": {"exec.$": "$$.Execution.Name", "rc.$": "$$.State.RetryCount"}}
    response = ask(state, {}, inspectionLevel="DEBUG", mock={"result": "0"},
                   context=json.dumps({"Execution": {"Name": "nightly"}}))
    assert json.loads(response["inspectionData"]["afterParameters"]) == {"exec": "nightly", "rc": 0}


@pytest.mark.parametrize("request_, error, message", [
    ({"definition": json.dumps({"Type": "Parallel", "Branches": [
        {"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": True}}}], "End": True})},
     ValidationException, "needs a mock"),
    ({"definition": json.dumps({"Type": "Task", "Resource": "x.waitForTaskToken", "End": True})},
     ValidationException, "needs a mock"),
    ({"definition": json.dumps({"Type": "Pass", "End": True}), "context": "{}"}, ValidationException,
     "only be given together with a mock"),
    ({"definition": json.dumps({"Type": "Pass", "End": True}), "inspectionLevel": "LOUD"}, ValidationException,
     "inspectionLevel"),
    ({"definition": json.dumps({"Type": "Task", "Resource": "r", "End": True}),
      "mock": {"result": "1", "errorOutput": {"error": "E"}}}, ValidationException, "exactly one of"),
    ({"definition": json.dumps({"Type": "Task", "Resource": "r", "End": True}), "mock": {"result": {"a": 1}}},
     ValidationException, "JSON text"),
    ({"definition": json.dumps({"Type": "Pass", "Nxt": "B"})}, InvalidDefinition, "Nxt"),
    ({"definition": json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
      "stateName": "B"}, ValidationException, "no state named 'B'"),
    ({"definition": json.dumps({"Type": "Pass", "End": True}), "roleArn": "r", "extra": 1}, ValidationException,
     "unknown TestState field"),
], ids=["Parallel without mock", "callback without mock", "context without mock", "unknown inspection level",
        "mock with result and error", "mock result that is not text", "invalid state", "unknown state name",
        "unknown field"])
def test_requests_aws_refuses_are_refused_with_its_error_names(request_, error, message):
    with pytest.raises(error, match=message):
        run_test_state(request_)


def test_cli_test_state_prints_the_response(tmp_path):
    machine = tmp_path / "m.json"
    machine.write_text(json.dumps({"StartAt": "Call", "States": {"Call": FLAKY, "Done": {"Type": "Succeed"},
                                                                 "Never": {"Type": "Succeed"},
                                                                 "Handle": {"Type": "Succeed"}}}))
    done = statemill("test-state", str(machine), "--state", "Call", "--input", '{"id": 0}', "--mock",
                     '{"errorOutput": {"error": "Flaky", "cause": ""}}', "--inspection-level", "DEBUG", "--json",
                     cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # RETRIABLE
    response = json.loads(done.stdout)
    assert response["status"] == "RETRIABLE"
    assert response["inspectionData"]["errorDetails"] == {"retryIndex": 1, "retryBackoffIntervalSeconds": 2}
