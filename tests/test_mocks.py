"""Mocked tasks: AWS's Step Functions Local mock configuration file, as documented, and mocks from Python.

The mock file and state machine below are the example of AWS's guide ("Using mocked service integrations for
testing in Step Functions Local"), unchanged.
"""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from statemill.engine import TaskFailure
from statemill.engine.mocks import (InvalidMocks, MockConfig, MockConfigError, TestCase, answer,
                                    stored_test_case)
from statemill.engine.store.schema import executions

sys.path.insert(0, str(Path(__file__).parent))
from clitools import statemill  # noqa: E402

AWS_MACHINE = {
    "Comment": "This state machine is called: LambdaSQSIntegration",
    "StartAt": "LambdaState",
    "States": {
        "LambdaState": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"Payload.$": "$", "FunctionName": "HelloWorldFunction"},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}],
            "Next": "SQSState"},
        "SQSState": {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/myQueue",
                           "MessageBody.$": "$"},
            "End": True},
    },
}
LAMBDA_OK = {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}
SQS_OK = {"MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
          "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"}
AWS_MOCKS = {
    "StateMachines": {"LambdaSQSIntegration": {"TestCases": {
        "HappyPath": {"LambdaState": "MockedLambdaSuccess", "SQSState": "MockedSQSSuccess"},
        "RetryPath": {"LambdaState": "MockedLambdaRetry", "SQSState": "MockedSQSSuccess"},
        "HybridPath": {"LambdaState": "MockedLambdaSuccess"}}}},
    "MockedResponses": {
        "MockedLambdaSuccess": {"0": {"Return": LAMBDA_OK}},
        "LambdaMockedResourceNotReady": {"0": {"Throw": {"Error": "Lambda.ResourceNotReadyException",
                                                         "Cause": "Lambda resource is not ready."}}},
        "MockedSQSSuccess": {"0": {"Return": SQS_OK}},
        "MockedLambdaRetry": {
            "0": {"Throw": {"Error": "Lambda.ResourceNotReadyException", "Cause": "Lambda resource is not ready."}},
            "1-2": {"Throw": {"Error": "Lambda.TimeoutException", "Cause": "Lambda timed out."}},
            "3": {"Return": LAMBDA_OK}}},
}


@pytest.fixture
def aws_files(tmp_path):
    machine = tmp_path / "LambdaSQSIntegration.json"
    machine.write_text(json.dumps(AWS_MACHINE, indent=2))
    mocks = tmp_path / "MockConfigFile.json"
    mocks.write_text(json.dumps(AWS_MOCKS, indent=2))
    return machine, mocks


def task_outcomes(engine, arn) -> list[tuple[str, str | None]]:
    """(event type, error) of each TaskSucceeded/TaskFailed, in order."""
    return [(e["type"], e.get("taskFailedEventDetails", {}).get("error")) for e in engine.history(arn)
            if e["type"] in ("TaskSucceeded", "TaskFailed")]


# ------------------------------------------------------------------------------------------------ AWS's example
def test_happy_path_answers_both_states_with_their_mocks(engine, aws_files):
    machine, mocks = aws_files
    result = engine.run(machine, {"n": 0}, mock_config=mocks, test_case="HappyPath")
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == SQS_OK
    assert task_outcomes(engine, result["executionArn"]) == [("TaskSucceeded", None), ("TaskSucceeded", None)]
    first = next(e for e in engine.history(result["executionArn"]) if e["type"] == "TaskSucceeded")
    assert json.loads(first["taskSucceededEventDetails"]["output"]) == LAMBDA_OK  # the mock as given, not reshaped


def test_retry_path_counts_each_retry_as_an_invocation(engine, aws_files):
    machine, mocks = aws_files
    result = engine.run(machine, {"n": 0}, mock_config=mocks, test_case="RetryPath")
    assert result["status"] == "SUCCEEDED"
    assert task_outcomes(engine, result["executionArn"]) == [
        ("TaskFailed", "Lambda.ResourceNotReadyException"), ("TaskFailed", "Lambda.TimeoutException"),
        ("TaskFailed", "Lambda.TimeoutException"), ("TaskSucceeded", None), ("TaskSucceeded", None)]


def test_hybrid_path_runs_the_unmocked_state_for_real(engine, aws_files):
    machine, mocks = aws_files
    sent = []
    engine.handler("arn:aws:states:::sqs:sendMessage")(lambda request: sent.append(request) or {"MessageId": "real"})
    result = engine.run(machine, {"n": 0}, mock_config=mocks, test_case="HybridPath")
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == {"MessageId": "real"}
    assert sent == [{"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/myQueue",
                     "MessageBody": LAMBDA_OK}]


def test_the_same_file_in_yaml_runs_the_same(engine, aws_files, tmp_path):
    import yaml
    machine, _ = aws_files
    mocks = tmp_path / "mocks.yaml"
    mocks.write_text(yaml.safe_dump(AWS_MOCKS))
    result = engine.run(machine, {"n": 0}, mock_config=mocks, test_case="RetryPath")
    assert result["status"] == "SUCCEEDED" and result["output"] == SQS_OK


def test_an_invocation_without_a_response_fails_the_execution_even_under_catch(engine):
    machine = {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "call", "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 2}],
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}], "End": True},
        "Handled": {"Type": "Pass", "End": True}}}
    result = engine.run(machine, {}, machine_name="m", mocks={"Call": [TaskFailure("Boom", "")]})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Runtime"
    assert "invocation 1" in result["cause"] and "'Call'" in result["cause"]


# ------------------------------------------------------------------------------------------------ nested states
def test_mocks_answer_a_state_inside_map_iterations_in_invocation_order(engine):
    machine = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 1, "End": True,
        "ItemProcessor": {"StartAt": "Price", "States": {
            "Price": {"Type": "Task", "Resource": "price", "End": True,
                      "Catch": [{"ErrorEquals": ["NoPrice"], "Next": "Free"}]},
            "Free": {"Type": "Pass", "Result": 0, "End": True}}}}}}
    result = engine.run(machine, ["a", "b", "c"], machine_name="m",
                        mocks={"Price": [10, TaskFailure("NoPrice", "none"), False]})
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == [10, 0, False]


def test_mocks_answer_states_inside_parallel_branches(engine):
    machine = {"StartAt": "Both", "States": {"Both": {
        "Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "Left", "States": {"Left": {"Type": "Task", "Resource": "left", "End": True}}},
            {"StartAt": "Right", "States": {"Right": {"Type": "Task", "Resource": "right", "End": True}}}]}}}
    result = engine.run(machine, {}, machine_name="m", mocks={"Left": {"l": None}, "Right": ""})
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == [{"l": None}, ""]


def test_a_mocked_callback_task_gets_a_token_and_the_mock_answers_it(engine):
    machine = {"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"token.$": "$$.Task.Token"}, "TimeoutSeconds": 60,
                "Catch": [{"ErrorEquals": ["Rejected"], "Next": "No"}], "End": True},
        "No": {"Type": "Pass", "Result": "rejected", "End": True}}}
    approved = engine.run(machine, {}, machine_name="m", mocks={"Ask": {"approved": True}})
    assert approved["status"] == "SUCCEEDED" and approved["output"] == {"approved": True}
    types = [e["type"] for e in engine.history(approved["executionArn"])]
    assert types[types.index("TaskScheduled"):types.index("TaskStateExited")] == \
        ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"]
    scheduled = next(e for e in engine.history(approved["executionArn"]) if e["type"] == "TaskScheduled")
    assert json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["token"]  # a token was generated
    rejected = engine.run(machine, {}, machine_name="m", mocks={"Ask": TaskFailure("Rejected", "no")})
    assert rejected["status"] == "SUCCEEDED" and rejected["output"] == "rejected"


def test_a_mocked_sync_task_ends_with_the_mocked_job_result(engine):
    machine = {"StartAt": "Job", "States": {"Job": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
                                                    "End": True}}}
    result = engine.run(machine, {}, machine_name="m", mocks={"Job": {"StopCode": "EssentialContainerExited"}})
    assert result["output"] == {"StopCode": "EssentialContainerExited"}


def test_a_redelivered_attempt_keeps_its_invocation_number(engine):
    engine.register({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "t", "End": True}}}, "m")
    started = engine.start("m", {}, mocks=TestCase.of({"T": [1, 2]}))
    execution_id = engine.execution_id(started["executionArn"])
    assert answer(engine.db, execution_id, "T", "attempt-a") == (0, {"Return": 1})
    assert answer(engine.db, execution_id, "T", "attempt-a") == (0, {"Return": 1})  # the same attempt again
    assert answer(engine.db, execution_id, "T", "attempt-b") == (1, {"Return": 2})
    assert answer(engine.db, execution_id, "T", "attempt-c") == (2, None)


# ------------------------------------------------------------------------------------------------ bad mocks
BAD_FILES = {
    "unknown response": ("""
        StateMachines:
          m:
            TestCases:
              Happy:
                Call: Missing
        MockedResponses:
          Ok:
            "0": {Return: 1}
        """, "MK201", 5, 15, "no mocked response named 'Missing'"),
    "range that is not a range": ("""
        StateMachines: {}
        MockedResponses:
          Ok:
            "2-1": {Return: 1}
        """, "MK102", 4, 5, "is not a number"),
    "overlapping ranges": ("""
        StateMachines: {}
        MockedResponses:
          Ok:
            "0-2": {Return: 1}
            "2": {Return: 0}
        """, "MK102", 5, 5, "overlaps '0-2'"),
    "Throw without Cause": ("""
        StateMachines: {}
        MockedResponses:
          Ok:
            "0": {Throw: {Error: E}}
        """, "MK101", 4, 18, "Throw is an object with the string fields Error and Cause"),
    "misspelt top-level field": ("""
        StateMachines: {}
        MockedResponse: {}
        """, "MK101", 2, 1, "did you mean \"MockedResponses\"?"),
    "not YAML": ("StateMachines: [\n", "MK001", None, None, ""),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_malformed_mock_file_is_a_located_error(tmp_path, case):
    text, code, line, column, message = BAD_FILES[case]
    path = tmp_path / "mocks.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(MockConfigError) as raised:
        MockConfig.load(path)
    first = raised.value.diagnostics[0]
    assert (first.code, first.file) == (code, str(path))
    if line is not None:
        assert (first.line, first.column) == (line, column)
    assert message in first.message


def _machine():
    from statemill.engine import loads
    return loads(json.dumps(AWS_MACHINE))


@pytest.mark.parametrize("machine_name, test_case, message, where", [
    ("Other", "HappyPath", "no test cases for the state machine 'Other'", (2, 3)),
    ("LambdaSQSIntegration", "HapyPath", "no test case 'HapyPath' (did you mean \"HappyPath\"?)", (4, 7)),
], ids=["unknown state machine", "unknown test case"])
def test_choosing_what_the_file_does_not_have_is_a_located_error(aws_files, machine_name, test_case, message, where):
    _, mocks = aws_files
    with pytest.raises(MockConfigError) as raised:
        MockConfig.load(mocks).test_case(machine_name, test_case, _machine())
    first = raised.value.diagnostics[0]
    assert first.code == "MK202" and message in first.message and (first.line, first.column) == where


def test_a_test_case_naming_a_state_the_machine_lacks_is_a_located_error(tmp_path):
    path = tmp_path / "mocks.json"
    path.write_text(json.dumps({"StateMachines": {"LambdaSQSIntegration": {"TestCases": {"T": {
        "LambdaStat": "Ok", "SQSState": "Ok"}}}}, "MockedResponses": {"Ok": {"0": {"Return": 0}}}}, indent=1))
    with pytest.raises(MockConfigError) as raised:
        MockConfig.load(path).test_case("LambdaSQSIntegration", "T", _machine())
    first = raised.value.diagnostics[0]
    assert first.code == "MK203" and "did you mean \"LambdaState\"?" in first.message
    assert (first.line, first.column) == (6, 6)


def test_mocks_naming_an_unknown_state_start_nothing(engine):
    engine.register(AWS_MACHINE, "LambdaSQSIntegration")
    with pytest.raises(InvalidMocks, match="no state named 'Lambda'"):
        engine.start("LambdaSQSIntegration", {}, mocks=TestCase.of({"Lambda": 0}))
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(executions)).scalar() == 0


def test_store_keeps_the_test_case_name(engine):
    engine.register(AWS_MACHINE, "LambdaSQSIntegration")
    started = engine.start("LambdaSQSIntegration", {}, mocks=MockConfig.from_dict(AWS_MOCKS).test_case(
        "LambdaSQSIntegration", "HappyPath", _machine()))
    with engine.db.connect() as conn:
        name, responses = stored_test_case(conn, engine.execution_id(started["executionArn"]))
    assert name == "HappyPath" and set(responses) == {"LambdaState", "SQSState"}


# ------------------------------------------------------------------------------------------------ the CLI


def test_cli_runs_a_test_case_of_aws_example(aws_files, tmp_path):
    machine, mocks = aws_files
    done = statemill("run", str(machine), "--db", str(tmp_path / "x.db"), "--mock-config", str(mocks),
                     "--test-case", "RetryPath", "--virtual-time", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == SQS_OK


def test_cli_refuses_an_unknown_test_case_before_starting_anything(aws_files, tmp_path):
    machine, mocks = aws_files
    done = statemill("run", str(machine), "--db", str(tmp_path / "x.db"), "--mock-config", str(mocks),
                     "--test-case", "Nope", cwd=tmp_path)
    assert done.returncode == 2
    assert f"{mocks}:4:7: error[MK202] state machine 'LambdaSQSIntegration' has no test case 'Nope'" in done.stderr
    listed = statemill("list", "--db", str(tmp_path / "x.db"), "--json", cwd=tmp_path)
    assert json.loads(listed.stdout) == {"executions": []}


def test_start_on_an_arn_with_a_test_case_suffix_runs_that_test_case(engine):
    """What the API server's StartExecution does with `stateMachineArn#TestCaseName` (Step Functions Local)."""
    from statemill.engine import mocks
    engine.register(AWS_MACHINE, "LambdaSQSIntegration")
    arn = engine.machine_arn("LambdaSQSIntegration")
    config = MockConfig.from_dict(AWS_MOCKS)
    started = mocks.start(engine, f"{arn}#RetryPath", config, input_text='{"n": 0}', name="mocked")
    assert engine.wait(started["executionArn"])["output"] == SQS_OK
    with pytest.raises(InvalidMocks, match="no mock configuration"):
        mocks.start(engine, f"{arn}#RetryPath", None, {})
    plain = mocks.start(engine, arn, config, {}, name="plain")
    with engine.db.connect() as conn:
        assert stored_test_case(conn, engine.execution_id(plain["executionArn"])) is None


def test_a_worker_without_the_handler_still_runs_mocked_tasks(engine):
    """Any worker answers a mocked task, whether or not it has the task's handler; unmocked tasks still wait for
    a worker that has theirs."""
    engine.register(AWS_MACHINE, "LambdaSQSIntegration")
    started = engine.start("LambdaSQSIntegration", {}, mocks=TestCase.of({"LambdaState": {"Payload": 0}}))
    arn = started["executionArn"]
    worker = engine.worker()  # serves only the handlers it has: none for sqs:sendMessage
    try:
        worker.run(until=lambda: any(e["type"] == "TaskStateEntered" and
                                     e["stateEnteredEventDetails"]["name"] == "SQSState" for e in engine.history(arn)))
    finally:
        worker.close()
    assert engine.status(arn) == "RUNNING"
    assert [w["stateName"] for w in engine.waiting_for_workers(arn)] == ["SQSState"]
