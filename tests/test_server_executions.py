"""Execution, history and task-token actions through boto3 against a real ``statemill serve``: AWS's shapes,
idempotency, pagination (boto3's own paginators), StartSyncExecution and every error type of these actions."""
from __future__ import annotations

import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from servertools import REGION, serving

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/statemill-test"
HANDLERS = '''
def hand_out(value):
    return {"handedOut": True}

HANDLERS = {"api.hand_out": hand_out}
'''
DATA = {"zero": 0, "no": False, "empty": "", "nothing": None, "list": [0, False, "", None]}
PASS = {"StartAt": "Keep", "States": {"Keep": {"Type": "Pass", "End": True}}}
THREE = {"StartAt": "One", "States": {
    "One": {"Type": "Pass", "Result": 0, "ResultPath": "$.one", "Next": "Two"},
    "Two": {"Type": "Pass", "Result": False, "ResultPath": "$.two", "Next": "Three"},
    "Three": {"Type": "Pass", "Result": "", "ResultPath": "$.three", "End": True}}}
FAIL = {"StartAt": "Stop", "States": {"Stop": {"Type": "Fail", "Error": "Custom.Zero", "Cause": ""}}}
HOLD = {"StartAt": "Branch", "States": {
    "Branch": {"Type": "Choice", "Choices": [{"Variable": "$.hold", "BooleanEquals": True, "Next": "Hold"}],
               "Default": "Done"},
    "Hold": {"Type": "Wait", "Seconds": 3600, "End": True},
    "Done": {"Type": "Pass", "End": True}}}
WAIT = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}
TOKEN = {"StartAt": "Ask", "States": {
    "Ask": {"Type": "Task", "Resource": "api.hand_out.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token", "zero": 0}, "HeartbeatSeconds": 3600,
            "ResultPath": "$.answer", "Catch": [{"ErrorEquals": ["Custom.No"], "ResultPath": "$.refusal",
                                                   "Next": "Refused"}],
            "End": True},
    "Refused": {"Type": "Pass", "End": True}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-executions")
    (folder / "api_handlers.py").write_text(HANDLERS)
    yield from serving(folder, "--handlers", "api_handlers", "-q")


_names = iter(range(10**6))


def machine(sfn, definition: dict, type_: str = "STANDARD") -> str:
    """A new state machine created through the API; returns its ARN."""
    name = f"m{next(_names)}-{type_.lower()}"
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE,
                                    type=type_)["stateMachineArn"]


def until_closed(sfn, arn: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = sfn.describe_execution(executionArn=arn)
        if found["status"] != "RUNNING":
            return found
        assert time.monotonic() < deadline, f"{arn} still RUNNING after {timeout} s"
        time.sleep(0.02)


def until_event(sfn, arn: str, kind: str, timeout: float = 30.0) -> dict:
    """The first event of type ``kind`` in the history of ``arn``, once it is there."""
    deadline = time.monotonic() + timeout
    while True:
        found = [event for event in history(sfn, arn) if event["type"] == kind]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"{arn} has no {kind} event after {timeout} s"
        time.sleep(0.02)


def history(sfn, arn: str, **options) -> list[dict]:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn, **options)
    return [event for page in pages for event in page["events"]]


def error_of(call, **arguments) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**arguments)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]["Code"], response["Error"]["Message"]


def token_of(sfn, arn: str) -> str:
    """The task token handed out by ``arn``, read from its TaskScheduled event's parameters."""
    scheduled = until_event(sfn, arn, "TaskScheduled")
    return json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["token"]


# ------------------------------------------------------------------------------------------------ StartExecution
def test_start_returns_the_execution_arn_and_start_date(sfn):
    arn = machine(sfn, PASS)
    started = sfn.start_execution(stateMachineArn=arn, name="first", input=json.dumps(DATA), traceHeader="Root=1-0")
    name = arn.rsplit(":", 1)[1]
    assert started["executionArn"] == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:first"
    assert abs(started["startDate"].timestamp() - time.time()) < 60


def test_a_start_without_a_name_gets_a_uuid_and_without_input_gets_an_empty_object(sfn):
    started = sfn.start_execution(stateMachineArn=machine(sfn, PASS))
    name = started["executionArn"].rsplit(":", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", name)
    found = until_closed(sfn, started["executionArn"])
    assert (found["input"], found["output"]) == ("{}", "{}")


def test_starting_again_with_the_same_name_and_input_while_running_returns_the_same_execution(sfn):
    arn = machine(sfn, WAIT)
    first = sfn.start_execution(stateMachineArn=arn, name="again", input='{"zero": 0}')
    again = sfn.start_execution(stateMachineArn=arn, name="again", input='{"zero":0}')
    assert (again["executionArn"], again["startDate"]) == (first["executionArn"], first["startDate"])
    assert error_of(sfn.start_execution, stateMachineArn=arn, name="again",
                    input='{"zero": false}')[0] == "ExecutionAlreadyExists"
    sfn.stop_execution(executionArn=first["executionArn"])
    assert error_of(sfn.start_execution, stateMachineArn=arn, name="again",
                    input='{"zero": 0}')[0] == "ExecutionAlreadyExists"


@pytest.mark.parametrize("arguments, code", [
    ({"stateMachineArn": "not-an-arn"}, "InvalidArn"),
    ({"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:activity:nope"}, "InvalidArn"),
    ({"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:nobody"}, "StateMachineDoesNotExist"),
    ({"stateMachineArn": "MACHINE", "input": "not json"}, "InvalidExecutionInput"),
    ({"stateMachineArn": "MACHINE", "input": "{\"a\": 0,}"}, "InvalidExecutionInput"),
    ({"stateMachineArn": "MACHINE", "input": json.dumps({"big": "x" * 262_144})}, "InvalidExecutionInput"),
    ({"stateMachineArn": "MACHINE", "name": "white space"}, "InvalidName"),
    ({"stateMachineArn": "MACHINE", "name": "x" * 81}, "InvalidName"),
    ({"stateMachineArn": "MACHINE", "traceHeader": "é"}, "ValidationException"),
    ({"input": "{}"}, "ValidationException"),
], ids=["not-an-arn", "not-a-machine-arn", "unknown-machine", "input-not-json", "input-trailing-comma",
        "input-over-256-KiB", "name-with-space", "name-too-long", "trace-header-not-ascii",
        "machine-arn-missing"])
def test_start_refuses_bad_requests_with_aws_error_types(sfn, unchecked, arguments, code):
    target = machine(sfn, PASS)
    arguments = {k: target if v == "MACHINE" else v for k, v in arguments.items()}
    assert error_of(unchecked.start_execution, **arguments)[0] == code
    assert sfn.list_executions(stateMachineArn=target)["executions"] == []  # nothing half-written


def test_a_machine_being_deleted_cannot_be_started(sfn):
    arn = machine(sfn, WAIT)
    running = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    sfn.delete_state_machine(stateMachineArn=arn)
    assert error_of(sfn.start_execution, stateMachineArn=arn)[0] == "StateMachineDeleting"
    sfn.stop_execution(executionArn=running)
    assert error_of(sfn.start_execution, stateMachineArn=arn)[0] == "StateMachineDoesNotExist"


# ------------------------------------------------------------------------------------------------ DescribeExecution
def test_describe_shows_a_succeeded_execution_in_aws_shape(sfn):
    arn = machine(sfn, THREE)
    started = sfn.start_execution(stateMachineArn=arn, name="three", input=json.dumps(DATA))
    found = until_closed(sfn, started["executionArn"])
    found.pop("ResponseMetadata")
    assert found.pop("startDate") == started["startDate"]
    assert found.pop("stopDate") >= started["startDate"]
    assert json.loads(found.pop("input")) == DATA
    assert json.loads(found.pop("output")) == {**DATA, "one": 0, "two": False, "three": ""}
    assert found == {"executionArn": started["executionArn"], "stateMachineArn": arn, "name": "three",
                     "status": "SUCCEEDED", "inputDetails": {"included": True}, "outputDetails": {"included": True},
                     "redriveCount": 0, "redriveStatus": "NOT_REDRIVABLE",
                     "redriveStatusReason": "Execution is SUCCEEDED and cannot be redriven"}


def test_describe_shows_a_failed_execution_with_error_and_cause_and_no_output(sfn):
    started = sfn.start_execution(stateMachineArn=machine(sfn, FAIL), input="null")
    found = until_closed(sfn, started["executionArn"])
    assert (found["status"], found["error"], found["cause"], found["input"]) == ("FAILED", "Custom.Zero", "", "null")
    assert "output" not in found and "outputDetails" not in found
    assert (found["redriveCount"], found["redriveStatus"]) == (0, "REDRIVABLE")


def test_describe_shows_a_running_execution_without_stop_date(sfn):
    started = sfn.start_execution(stateMachineArn=machine(sfn, WAIT), input="0")
    found = sfn.describe_execution(executionArn=started["executionArn"])
    assert (found["status"], found["input"], found["redriveStatus"]) == ("RUNNING", "0", "NOT_REDRIVABLE")
    assert found["redriveStatusReason"] == "Execution is RUNNING and cannot be redriven"
    assert "stopDate" not in found and "output" not in found
    metadata = sfn.describe_execution(executionArn=started["executionArn"], includedData="METADATA_ONLY")
    assert "input" not in metadata and metadata["status"] == "RUNNING"
    sfn.stop_execution(executionArn=started["executionArn"])


@pytest.mark.parametrize("arn, code", [
    ("nope", "InvalidArn"),
    (f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m", "InvalidArn"),
    (f"arn:aws:states:{REGION}:{ACCOUNT}:express:m:e:0b5a1ad0-0000-0000-0000-000000000000", "InvalidArn"),
    (f"arn:aws:states:{REGION}:{ACCOUNT}:execution:m:nobody", "ExecutionDoesNotExist"),
], ids=["not-an-arn", "machine-arn", "express-execution-arn", "unknown-execution"])
@pytest.mark.parametrize("action", ["describe_execution", "stop_execution", "get_execution_history"])
def test_execution_actions_refuse_arns_that_name_no_standard_execution(sfn, action, arn, code):
    assert error_of(getattr(sfn, action), executionArn=arn)[0] == code


# ------------------------------------------------------------------------------------------------ StopExecution
def test_stop_aborts_a_running_execution_and_records_it(sfn):
    started = sfn.start_execution(stateMachineArn=machine(sfn, WAIT))
    until_event(sfn, started["executionArn"], "WaitStateEntered")
    stopped = sfn.stop_execution(executionArn=started["executionArn"], error="Custom.Stop", cause="")
    found = sfn.describe_execution(executionArn=started["executionArn"])
    assert (found["status"], found["error"], found["cause"]) == ("ABORTED", "Custom.Stop", "")
    assert found["stopDate"] == stopped["stopDate"]
    events = history(sfn, started["executionArn"])
    assert [e["type"] for e in events] == ["ExecutionStarted", "WaitStateEntered", "WaitStateAborted",
                                           "ExecutionAborted"]
    assert events[-1]["executionAbortedEventDetails"] == {"error": "Custom.Stop", "cause": ""}


def test_stop_without_error_or_cause_leaves_them_out(sfn):
    started = sfn.start_execution(stateMachineArn=machine(sfn, WAIT))
    sfn.stop_execution(executionArn=started["executionArn"])
    found = sfn.describe_execution(executionArn=started["executionArn"])
    assert found["status"] == "ABORTED" and "error" not in found and "cause" not in found


def test_stopping_a_closed_execution_changes_nothing(sfn):
    started = sfn.start_execution(stateMachineArn=machine(sfn, PASS))
    closed = until_closed(sfn, started["executionArn"])
    assert sfn.stop_execution(executionArn=started["executionArn"])["stopDate"] == closed["stopDate"]
    assert sfn.describe_execution(executionArn=started["executionArn"])["status"] == "SUCCEEDED"


def test_stop_refuses_an_error_longer_than_aws_allows(unchecked, sfn):
    started = sfn.start_execution(stateMachineArn=machine(sfn, WAIT))
    assert error_of(unchecked.stop_execution, executionArn=started["executionArn"], error="e" * 257)[0] == \
        "ValidationException"
    assert sfn.describe_execution(executionArn=started["executionArn"])["status"] == "RUNNING"
    sfn.stop_execution(executionArn=started["executionArn"])


# ------------------------------------------------------------------------------------------------ ListExecutions
@pytest.fixture(scope="module")
def listed(sfn):
    """A machine with 7 executions: 5 SUCCEEDED, then 2 RUNNING (newest); another machine with one of its own."""
    arn = machine(sfn, HOLD)
    done = [sfn.start_execution(stateMachineArn=arn, name=f"done-{i}", input='{"hold": false}')["executionArn"]
            for i in range(5)]
    for execution in done:
        until_closed(sfn, execution)
    running = [sfn.start_execution(stateMachineArn=arn, name=f"run-{i}", input='{"hold": true}')["executionArn"]
               for i in range(2)]
    sfn.start_execution(stateMachineArn=machine(sfn, HOLD), input='{"hold": true}')
    return arn, done, running


def test_list_pages_with_boto3s_paginator_newest_first(sfn, listed):
    arn, done, running = listed
    pages = list(sfn.get_paginator("list_executions").paginate(stateMachineArn=arn,
                                                                PaginationConfig={"PageSize": 2}))
    assert [len(page["executions"]) for page in pages] == [2, 2, 2, 1]
    items = [item for page in pages for item in page["executions"]]
    assert [item["executionArn"] for item in items] == list(reversed(done + running))
    assert set(items[0]) == {"executionArn", "stateMachineArn", "name", "status", "startDate", "redriveCount"}
    assert set(items[-1]) == {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate",
                              "redriveCount"}
    assert items[-1]["redriveCount"] == 0 and items[-1]["stateMachineArn"] == arn


@pytest.mark.parametrize("status, count", [("SUCCEEDED", 5), ("RUNNING", 2), ("FAILED", 0)])
def test_list_filters_by_status(sfn, listed, status, count):
    found = sfn.list_executions(stateMachineArn=listed[0], statusFilter=status)["executions"]
    assert len(found) == count and {item["status"] for item in found} <= {status}


def test_list_pages_stay_in_place_while_executions_start(sfn, listed):
    arn, done, running = listed
    first = sfn.list_executions(stateMachineArn=arn, maxResults=3)
    newer = sfn.start_execution(stateMachineArn=arn, name="newer", input='{"hold": true}')["executionArn"]
    rest = list(sfn.get_paginator("list_executions").paginate(
        stateMachineArn=arn, PaginationConfig={"PageSize": 3, "StartingToken": first["nextToken"]}))
    seen = [i["executionArn"] for i in first["executions"]] + [i["executionArn"] for p in rest
                                                                 for i in p["executions"]]
    assert seen == list(reversed(done + running))
    sfn.stop_execution(executionArn=newer)


@pytest.mark.parametrize("arguments, code", [
    ({"nextToken": "not-a-token"}, "InvalidToken"),
    ({"nextToken": "OTHER"}, "InvalidToken"),
    ({"maxResults": 1001}, "ValidationException"),
    ({"statusFilter": "succeeded"}, "ValidationException"),
    ({"nextToken": "x" * 3097}, "ValidationException"),
    ({"stateMachineArn": None}, "ValidationException"),
    ({"stateMachineArn": "nope"}, "InvalidArn"),
    ({"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:nobody"}, "StateMachineDoesNotExist"),
], ids=["garbage-token", "token-of-another-request", "max-results-over-1000", "unknown-status", "token-too-long",
        "no-machine", "bad-machine-arn", "unknown-machine"])
def test_list_refuses_bad_requests(sfn, unchecked, listed, arguments, code):
    other = sfn.list_executions(stateMachineArn=listed[0], statusFilter="SUCCEEDED", maxResults=1)["nextToken"]
    request = {"stateMachineArn": listed[0], **arguments}
    request = {k: other if v == "OTHER" else v for k, v in request.items() if v is not None}
    assert error_of(unchecked.list_executions, **request)[0] == code


# ------------------------------------------------------------------------------------------------ GetExecutionHistory
@pytest.fixture(scope="module")
def three(sfn):
    started = sfn.start_execution(stateMachineArn=machine(sfn, THREE), input=json.dumps(DATA))
    until_closed(sfn, started["executionArn"])
    return started["executionArn"]


def test_history_pages_add_up_to_the_whole_history(sfn, three):
    whole = sfn.get_execution_history(executionArn=three, maxResults=1000)["events"]
    assert [e["type"] for e in whole] == ["ExecutionStarted"] + ["PassStateEntered", "PassStateExited"] * 3 + [
        "ExecutionSucceeded"]
    assert [e["id"] for e in whole] == list(range(1, 9))
    pages = list(sfn.get_paginator("get_execution_history").paginate(executionArn=three,
                                                                      PaginationConfig={"PageSize": 3}))
    assert [len(p["events"]) for p in pages] == [3, 3, 2]
    assert [e for p in pages for e in p["events"]] == whole


def test_history_in_reverse_order_pages_backwards(sfn, three):
    events = history(sfn, three, reverseOrder=True, PaginationConfig={"PageSize": 3})
    assert [e["id"] for e in events] == list(range(8, 0, -1))


def test_history_without_execution_data_drops_inputs_and_outputs(sfn, three):
    full = history(sfn, three)
    assert json.loads(full[0]["executionStartedEventDetails"]["input"]) == DATA
    bare = history(sfn, three, includeExecutionData=False)
    assert bare[0]["executionStartedEventDetails"] == {"inputDetails": {"truncated": False}, "roleArn": ROLE}
    assert bare[1]["stateEnteredEventDetails"] == {"name": "One", "inputDetails": {"truncated": False}}
    assert bare[-1]["executionSucceededEventDetails"] == {"outputDetails": {"truncated": False}}
    assert [e["type"] for e in bare] == [e["type"] for e in full]


def test_history_timestamps_are_dates(sfn, three):
    started = sfn.describe_execution(executionArn=three)["startDate"]
    assert history(sfn, three)[0]["timestamp"] == started


@pytest.mark.parametrize("arguments, code", [
    ({"nextToken": "not-a-token"}, "InvalidToken"),
    ({"nextToken": "REVERSED"}, "InvalidToken"),
    ({"maxResults": -1}, "ValidationException"),
    ({"nextToken": "x" * 1025}, "ValidationException"),
], ids=["garbage-token", "token-of-the-reverse-order", "negative-max-results", "token-too-long"])
def test_history_refuses_bad_requests(sfn, unchecked, three, arguments, code):
    reversed_token = sfn.get_execution_history(executionArn=three, reverseOrder=True, maxResults=1)["nextToken"]
    request = {"executionArn": three, **{k: reversed_token if v == "REVERSED" else v for k, v in arguments.items()}}
    assert error_of(unchecked.get_execution_history, **request)[0] == code


# ------------------------------------------------------------------------------------------------ StartSyncExecution
def test_start_sync_runs_an_express_machine_to_its_end(sfn):
    arn = machine(sfn, THREE, "EXPRESS")
    found = sfn.start_sync_execution(stateMachineArn=arn, name="sync", input=json.dumps(DATA))
    name = arn.rsplit(":", 1)[1]
    assert re.fullmatch(rf"arn:aws:states:{REGION}:{ACCOUNT}:express:{name}:sync:[0-9a-f-]{{36}}",
                        found["executionArn"])
    assert (found["status"], found["name"], found["stateMachineArn"]) == ("SUCCEEDED", "sync", arn)
    assert json.loads(found["output"]) == {**DATA, "one": 0, "two": False, "three": ""}
    assert json.loads(found["input"]) == DATA
    assert (found["inputDetails"], found["outputDetails"]) == ({"included": True}, {"included": True})
    assert found["stopDate"] >= found["startDate"]
    assert found["billingDetails"]["billedDurationInMilliseconds"] >= 100
    assert found["billingDetails"]["billedMemoryUsedInMB"] == 64


def test_start_sync_answers_a_failed_execution_with_http_200(sfn):
    found = sfn.start_sync_execution(stateMachineArn=machine(sfn, FAIL, "EXPRESS"))
    assert found["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (found["status"], found["error"], found["cause"]) == ("FAILED", "Custom.Zero", "")
    assert "output" not in found and found["outputDetails"] == {"included": True}


def test_express_executions_are_not_described_listed_or_stopped(sfn):
    arn = machine(sfn, PASS, "EXPRESS")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert ":express:" in execution
    assert error_of(sfn.describe_execution, executionArn=execution)[0] == "InvalidArn"
    assert error_of(sfn.list_executions, stateMachineArn=arn)[0] == "StateMachineTypeNotSupported"


def test_start_sync_refuses_a_standard_machine(sfn):
    arn = machine(sfn, PASS)
    code, message = error_of(sfn.start_sync_execution, stateMachineArn=arn)
    assert code == "StateMachineTypeNotSupported"
    assert message.startswith("This operation is not supported by this type of state machine")
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


@pytest.mark.parametrize("arguments, code", [
    ({"stateMachineArn": "nope"}, "InvalidArn"),
    ({"stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:nobody"}, "StateMachineDoesNotExist"),
    ({"stateMachineArn": "EXPRESS", "input": "{"}, "InvalidExecutionInput"),
    ({"stateMachineArn": "EXPRESS", "name": "a:b"}, "InvalidName"),
], ids=["bad-arn", "unknown-machine", "input-not-json", "name-with-colon"])
def test_start_sync_refuses_bad_requests(sfn, unchecked, arguments, code):
    express = machine(sfn, PASS, "EXPRESS")
    request = {k: express if v == "EXPRESS" else v for k, v in arguments.items()}
    assert error_of(unchecked.start_sync_execution, **request)[0] == code


# ------------------------------------------------------------------------------------------------ task tokens
@pytest.fixture
def waiting(sfn):
    """A running execution waiting on a task token: (execution ARN, token)."""
    arn = sfn.start_execution(stateMachineArn=machine(sfn, TOKEN), input=json.dumps(DATA))["executionArn"]
    return arn, token_of(sfn, arn)


def test_send_task_success_resumes_the_execution_with_the_output(sfn, waiting):
    arn, token = waiting
    assert sfn.send_task_heartbeat(taskToken=token)["ResponseMetadata"]["HTTPStatusCode"] == 200
    sfn.send_task_success(taskToken=token, output=json.dumps({"zero": 0, "no": False, "empty": "", "none": None}))
    found = until_closed(sfn, arn)
    assert found["status"] == "SUCCEEDED"
    assert json.loads(found["output"])["answer"] == {"zero": 0, "no": False, "empty": "", "none": None}
    assert error_of(sfn.send_task_success, taskToken=token, output="{}")[0] == "TaskTimedOut"


def test_send_task_failure_goes_through_catch(sfn, waiting):
    arn, token = waiting
    sfn.send_task_failure(taskToken=token, error="Custom.No", cause="")
    found = until_closed(sfn, arn)
    assert found["status"] == "SUCCEEDED"
    assert json.loads(found["output"])["refusal"] == {"Error": "Custom.No", "Cause": ""}
    assert error_of(sfn.send_task_heartbeat, taskToken=token)[0] == "TaskTimedOut"


def test_a_token_of_a_stopped_execution_is_timed_out(sfn, waiting):
    arn, token = waiting
    sfn.stop_execution(executionArn=arn)
    assert error_of(sfn.send_task_failure, taskToken=token)[0] == "TaskTimedOut"


def test_send_task_success_refuses_output_that_is_not_json_and_keeps_waiting(sfn, waiting):
    arn, token = waiting
    assert error_of(sfn.send_task_success, taskToken=token, output="{nope")[0] == "InvalidOutput"
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    sfn.stop_execution(executionArn=arn)


@pytest.mark.parametrize("action, arguments, code", [
    ("send_task_success", {"taskToken": "not-a-token", "output": "{}"}, "InvalidToken"),
    ("send_task_failure", {"taskToken": "not-a-token"}, "InvalidToken"),
    ("send_task_heartbeat", {"taskToken": "not-a-token"}, "InvalidToken"),
    ("send_task_success", {"taskToken": "not-a-token"}, "ValidationException"),
    ("send_task_heartbeat", {}, "ValidationException"),
], ids=["success-unknown-token", "failure-unknown-token", "heartbeat-unknown-token", "success-without-output",
        "heartbeat-without-token"])
def test_token_actions_refuse_bad_requests(unchecked, action, arguments, code):
    assert error_of(getattr(unchecked, action), **arguments)[0] == code


def test_redrive_execution_restarts_a_failed_one_and_refuses_a_running_one(sfn):
    arn = machine(sfn, FAIL)
    started = sfn.start_execution(stateMachineArn=arn, input="null")
    until_closed(sfn, started["executionArn"])
    answer = sfn.redrive_execution(executionArn=started["executionArn"])
    assert answer["redriveDate"] is not None
    found = until_closed(sfn, started["executionArn"])
    assert (found["status"], found["redriveCount"], found["redriveStatus"]) == ("FAILED", 1, "REDRIVABLE")
    assert found["redriveDate"] >= found["startDate"]
    events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    redriven = [e for e in events if e["type"] == "ExecutionRedriven"]
    assert [e["executionRedrivenEventDetails"] for e in redriven] == [{"redriveCount": 1}]
    listed = sfn.list_executions(stateMachineArn=arn, redriveFilter="REDRIVEN")["executions"]
    assert [(e["executionArn"], e["redriveCount"]) for e in listed] == [(started["executionArn"], 1)]
    assert sfn.list_executions(stateMachineArn=arn, redriveFilter="NOT_REDRIVEN")["executions"] == []
    running = sfn.start_execution(stateMachineArn=machine(sfn, WAIT), input="0")
    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable):
        sfn.redrive_execution(executionArn=running["executionArn"])
