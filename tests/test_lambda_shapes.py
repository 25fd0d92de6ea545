"""AWS's Lambda shapes: what ``arn:aws:states:::lambda:invoke`` returns (the Invoke response around the function's
result) and what a raising function's task fails with (its exception type, and Lambda's error JSON as the cause), as
real definitions read them (``$.Payload``, ``States.StringToJson($.Cause)``). A plain registered resource keeps the
simple shapes: the result itself, the exception's message as the cause.
"""
from __future__ import annotations

import json
import re

import pytest

from statemill.engine import Engine, TaskFailure

INVOKE = "arn:aws:states:::lambda:invoke"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:charge"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATA = {"n": 0, "ok": False, "s": "", "x": None}


def run(engine: Engine, definition: dict, value=None) -> dict:
    return engine.run(definition, value if value is not None else {}, machine_name="lambda")


def invoke(**fields) -> dict:
    """A machine of one lambda:invoke task calling "charge" with the execution input as its payload."""
    state = {"Type": "Task", "Resource": INVOKE, "Parameters": {"FunctionName": "charge", "Payload.$": "$"},
             "End": True, **fields}
    return {"StartAt": "Charge", "States": {"Charge": state}}


def one_task(resource: str) -> dict:
    return {"StartAt": "Charge", "States": {"Charge": {"Type": "Task", "Resource": resource, "End": True}}}


def check(value):
    if value.get("n") == 0:
        raise ValueError("bad amount: 0")
    return value


def charge(value):
    return check(value)  # the frame the stack trace starts at


async def charge_later(value):
    raise KeyError("amount")


def frame(fn, offset: int, line: str) -> str:
    """One stack trace entry, as Python's traceback module (and so Lambda's runtime) writes it."""
    return f'  File "{__file__}", line {fn.__code__.co_firstlineno + offset}, in {fn.__name__}\n    {line}\n'


# ------------------------------------------------------------------------------------------------ lambda:invoke
def test_lambda_invoke_returns_the_invoke_response(engine):
    engine.handler("charge")(lambda value: value)
    result = run(engine, invoke(), DATA)
    assert result["status"] == "SUCCEEDED"
    out = result["output"]
    assert list(out) == ["ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata", "StatusCode"]
    assert (out["ExecutedVersion"], out["Payload"], out["StatusCode"]) == ("$LATEST", DATA, 200)
    request_id = out["SdkResponseMetadata"]["RequestId"]
    assert UUID.match(request_id) and out["SdkResponseMetadata"] == {"RequestId": request_id}
    http = out["SdkHttpMetadata"]
    assert list(http) == ["AllHttpHeaders", "HttpHeaders", "HttpStatusCode"] and http["HttpStatusCode"] == 200
    headers = http["HttpHeaders"]
    assert list(headers) == ["Connection", "Content-Length", "Content-Type", "Date", "X-Amz-Executed-Version",
                             "x-amzn-Remapped-Content-Length", "x-amzn-RequestId", "X-Amzn-Trace-Id"]
    body = '{"n": 0, "ok": false, "s": "", "x": null}'  # the Python runtime's encoding of the result
    assert {k: v for k, v in headers.items() if k not in ("Date", "X-Amzn-Trace-Id")} == {
        "Connection": "keep-alive", "Content-Length": str(len(body)), "Content-Type": "application/json",
        "X-Amz-Executed-Version": "$LATEST", "x-amzn-Remapped-Content-Length": "0", "x-amzn-RequestId": request_id}
    assert re.match(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$", headers["Date"])
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert list(http["AllHttpHeaders"]) == ["X-Amz-Executed-Version", "x-amzn-Remapped-Content-Length", "Connection",
                                            "x-amzn-RequestId", "Content-Length", "Date", "X-Amzn-Trace-Id",
                                            "Content-Type"]
    assert http["AllHttpHeaders"] == {key: [value] for key, value in headers.items()}


def test_definitions_read_the_payload_and_a_fresh_request_id_per_call(engine):
    engine.handler("charge")(lambda value: {"paid": value["n"]})
    definition = invoke(ResultSelector={"paid.$": "$.Payload.paid", "id.$": "$.SdkResponseMetadata.RequestId"})
    first, second = run(engine, definition, DATA), run(engine, definition, DATA)
    assert first["output"]["paid"] == second["output"]["paid"] == 0
    assert first["output"]["id"] != second["output"]["id"]


@pytest.mark.parametrize("payload,received", [
    ("0", 0), ("0.0", 0.0), ("{}", {}), ("[]", []), ('"text"', "text"), ("false", False), ("null", None),
    ("not json", "not json"),
], ids=["zero", "zero-point-zero", "empty-object", "empty-array", "json-string", "false", "null", "not-json"])
def test_a_string_payload_is_sent_as_the_raw_request_body(engine, payload, received):
    seen = []
    engine.handler("charge")(lambda value: seen.append(value) or value)
    definition = invoke(Parameters={"FunctionName": "charge", "Payload": payload})
    result = run(engine, definition)
    assert seen == [received] and type(seen[0]) is type(received)
    assert result["output"]["Payload"] == received and type(result["output"]["Payload"]) is type(received)
    assert result["output"]["SdkHttpMetadata"]["HttpHeaders"]["Content-Length"] == str(len(json.dumps(received)))


def test_a_raising_function_fails_with_lambdas_error_json_compact(engine):
    engine.handler("charge")(charge)
    result = run(engine, invoke(), DATA)
    assert (result["status"], result["error"]) == ("FAILED", "ValueError")
    assert result["cause"].startswith('{"errorMessage":"bad amount: 0","errorType":"ValueError","requestId":"')
    cause = json.loads(result["cause"])
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"] and UUID.match(cause["requestId"])
    assert cause["stackTrace"] == [frame(charge, 1, "return check(value)  # the frame the stack trace starts at"),
                                   frame(check, 2, 'raise ValueError("bad amount: 0")')]


def test_an_async_functions_stack_trace_has_no_event_loop_frames(engine):
    engine.handler("charge")(charge_later)
    result = run(engine, invoke(), DATA)
    cause = json.loads(result["cause"])
    assert (result["error"], cause["errorMessage"], cause["errorType"]) == ("KeyError", "'amount'", "KeyError")
    assert cause["stackTrace"] == [frame(charge_later, 1, 'raise KeyError("amount")')]


def test_a_catch_reads_the_cause_with_string_to_json(engine):
    engine.handler("charge")(charge)
    definition = invoke(Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Read"}])
    del definition["States"]["Charge"]["End"]
    definition["States"]["Charge"]["Next"] = "Read"
    definition["States"]["Read"] = {"Type": "Pass", "Parameters": {
        "error.$": "$.failure.Error", "lambda.$": "States.StringToJson($.failure.Cause)"}, "End": True}
    result = run(engine, definition, DATA)
    assert result["status"] == "SUCCEEDED"
    assert result["output"]["error"] == "ValueError"
    assert result["output"]["lambda"]["errorMessage"] == "bad amount: 0"
    assert len(result["output"]["lambda"]["stackTrace"]) == 2


# ------------------------------------------------------------------------------------------------ function ARNs
@pytest.mark.parametrize("registered", [FUNCTION_ARN, "charge"], ids=["by-arn", "by-function-name"])
def test_a_function_arn_returns_the_result_and_fails_with_the_runtimes_error_json(engine, registered):
    engine.handler(registered)(charge)
    done = run(engine, one_task(FUNCTION_ARN), {"n": 1, "s": ""})
    assert done["output"] == {"n": 1, "s": ""}  # no envelope
    result = run(engine, one_task(FUNCTION_ARN), DATA)
    assert (result["status"], result["error"]) == ("FAILED", "ValueError")
    assert result["cause"].startswith('{"errorMessage": "bad amount: 0", "errorType": "ValueError", "requestId": "')
    assert json.loads(result["cause"])["stackTrace"] == [
        frame(charge, 1, "return check(value)  # the frame the stack trace starts at"),
        frame(check, 2, 'raise ValueError("bad amount: 0")')]


@pytest.mark.parametrize("resource", [INVOKE, FUNCTION_ARN], ids=["lambda-invoke", "function-arn"])
def test_a_task_failure_keeps_the_names_it_was_given(engine, resource):
    def decline(value):
        raise TaskFailure("Payment.Declined", "nothing to charge")

    engine.handler("charge")(decline)
    definition = invoke() if resource == INVOKE else one_task(resource)
    result = run(engine, definition, DATA)
    assert (result["error"], result["cause"]) == ("Payment.Declined", "nothing to charge")


# ------------------------------------------------------------------------------------------------ plain resources
def test_a_plain_resource_keeps_the_simple_shapes(engine):
    engine.handler("notify")(charge)
    assert run(engine, one_task("notify"), {"n": 1})["output"] == {"n": 1}
    result = run(engine, one_task("notify"), DATA)
    assert (result["error"], result["cause"]) == ("ValueError", "bad amount: 0")
