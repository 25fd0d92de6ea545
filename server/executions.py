"""Execution actions: StartExecution, StartSyncExecution, DescribeExecution, StopExecution, ListExecutions (of a
machine, or of a Distributed Map run) and
GetExecutionHistory, in AWS's shapes (payloads as JSON text, epoch-second dates, AWS's error types)."""
from __future__ import annotations

import json
import math
import time

from statemill.engine.client import EXPRESS_TIMEOUT
from statemill.engine.runtime import TERMINAL

from .arns import execution_arn, qualified
from .pages import decode_token, encode_token, page, page_size
from .protocol import ApiError, Call, action, epoch

STATUSES = ("SUCCEEDED", "TIMED_OUT", "PENDING_REDRIVE", "ABORTED", "FAILED", "RUNNING")
INCLUDED_DATA = ("ALL_DATA", "METADATA_ONLY")
TRACE_HEADER_MAX = 256
# DescribeExecution's redrive fields for an execution that was never redriven, as AWS shows them.
_NOT_REDRIVABLE = {"RUNNING", "SUCCEEDED"}
_STARTED_ON = ("stateMachineVersionArn", "stateMachineAliasArn")  # set for executions started on one


def _text(value) -> str:
    """A JSON value as the JSON text AWS returns for input and output."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _enum(call: Call, key: str, allowed: tuple[str, ...]) -> str | None:
    value = call.get(key)
    if value is not None and value not in allowed:
        raise ApiError("ValidationException", f"1 validation error detected: Value '{value}' at '{key}' failed to "
                       f"satisfy constraint: Member must satisfy enum value set: [{', '.join(allowed)}]")
    return value


def _start_arguments(call: Call) -> tuple[str, str | None, str | None, str | None]:
    """The machine name, execution name, input text and version or alias (None: the current revision) of a
    Start*Execution request (traceHeader checked)."""
    name, qualifier = qualified(call, call.require("stateMachineArn"))
    trace = call.get("traceHeader")
    if trace is not None and (len(trace) > TRACE_HEADER_MAX or not trace.isascii()):
        raise ApiError("ValidationException", "1 validation error detected: Value at 'traceHeader' failed to "
                       f"satisfy constraint: Member must be at most {TRACE_HEADER_MAX} ASCII characters")
    return name, call.get("name"), call.get("input"), qualifier


@action("StartExecution")
def start_execution(call: Call) -> dict:
    machine, name, text, qualifier = _start_arguments(call)
    started = call.client.start(machine, name=name, input_text=text, qualifier=qualifier)
    return {"executionArn": started["executionArn"], "startDate": epoch(started["startDate"])}


@action("StartSyncExecution")
def start_sync_execution(call: Call) -> dict:
    """Start an EXPRESS execution and answer when it has ended (HTTP 200 whatever its status, as AWS does)."""
    machine, name, text, qualifier = _start_arguments(call)
    _enum(call, "includedData", INCLUDED_DATA)
    if call.client.machine_type(machine) != "EXPRESS":
        raise ApiError("StateMachineTypeNotSupported", "This operation is not supported by this type of state "
                       f"machine: {machine!r} is STANDARD; use StartExecution, or create an EXPRESS machine")
    arn = call.client.start(machine, name=name, input_text=text, qualifier=qualifier)["executionArn"]
    found = _wait(call, arn)
    answer = {"executionArn": arn, "stateMachineArn": found["stateMachineArn"], "name": found["name"],
              "startDate": epoch(found["startDate"]), "stopDate": epoch(found["stopDate"]),
              "status": found["status"], "input": _text(found["input"]), "inputDetails": {"included": True}}
    if found["status"] == "SUCCEEDED":
        answer["output"] = _text(found["output"])
    answer["outputDetails"] = {"included": True}
    for key in ("error", "cause"):
        if key in found:
            answer[key] = found[key]
    billed = max(100, math.ceil((answer["stopDate"] - answer["startDate"]) * 10) * 100)  # AWS bills per 100 ms
    answer["billingDetails"] = {"billedDurationInMilliseconds": billed, "billedMemoryUsedInMB": 64}
    return answer


def _wait(call: Call, arn: str) -> dict:
    """The description of ``arn`` once it has ended, run by this server's workers or by `statemill worker`s
    elsewhere on the database (with --no-worker). An EXPRESS execution times out after EXPRESS_TIMEOUT seconds;
    without any worker to time it out, the request gives up a minute later."""
    deadline = time.monotonic() + EXPRESS_TIMEOUT + 60
    pause = 0.002
    while True:
        found = call.client.describe(arn)
        if found["status"] in TERMINAL:
            return found
        if time.monotonic() > deadline:
            raise ApiError("ServiceUnavailable", f"execution {arn} is still RUNNING after {EXPRESS_TIMEOUT + 60} "
                           "seconds: no worker is running it; start `statemill worker` on this database", 503)
        time.sleep(pause)
        pause = min(pause * 1.5, 0.05)


@action("DescribeExecution")
def describe_execution(call: Call) -> dict:
    found = call.client.describe(execution_arn(call, call.require("executionArn")))
    metadata_only = _enum(call, "includedData", INCLUDED_DATA) == "METADATA_ONLY"
    answer = {"executionArn": found["executionArn"], "stateMachineArn": found["stateMachineArn"],
              "name": found["name"], "status": found["status"], "startDate": epoch(found["startDate"])}
    if "stopDate" in found:
        answer["stopDate"] = epoch(found["stopDate"])
    if not metadata_only:
        answer["input"] = _text(found["input"])
        answer["inputDetails"] = {"included": True}
        if found["status"] == "SUCCEEDED":
            answer["output"] = _text(found["output"])
            answer["outputDetails"] = {"included": True}
    for key in ("error", "cause", *_STARTED_ON, "mapRunArn"):
        if key in found:
            answer[key] = found[key]
    answer["redriveCount"] = found.get("redriveCount", 0)
    if "redriveDate" in found:
        answer["redriveDate"] = epoch(found["redriveDate"])
    if found["status"] in _NOT_REDRIVABLE:
        answer["redriveStatus"] = "NOT_REDRIVABLE"
        answer["redriveStatusReason"] = f"Execution is {found['status']} and cannot be redriven"
    else:
        answer["redriveStatus"] = "REDRIVABLE"
    return answer


@action("StopExecution")
def stop_execution(call: Call) -> dict:
    arn = execution_arn(call, call.require("executionArn"))
    error, cause = _bounded(call, "error", 256), _bounded(call, "cause", 32_768)
    return {"stopDate": epoch(call.client.stop(arn, error, cause)["stopDate"])}


def _bounded(call: Call, key: str, limit: int) -> str | None:
    value = call.get(key)
    if value is not None and len(value) > limit:
        raise ApiError("ValidationException", f"1 validation error detected: Value at '{key}' failed to satisfy "
                       f"constraint: Member must have length less than or equal to {limit}")
    return value


@action("ListExecutions")
def list_executions(call: Call) -> dict:
    arn = call.get("stateMachineArn")
    map_run = call.get("mapRunArn")
    if map_run is not None:
        if arn is not None:
            raise ApiError("ValidationException", "Specify either stateMachineArn or mapRunArn, not both")
        return _map_run_children(call, map_run)
    if arn is None:
        raise ApiError("ValidationException", "Must provide a StateMachine ARN or MapRun ARN")
    machine, qualifier = qualified(call, arn)
    status = _enum(call, "statusFilter", STATUSES)
    _enum(call, "redriveFilter", ("REDRIVEN", "NOT_REDRIVEN"))
    if call.client.machine_type(machine) == "EXPRESS":
        raise ApiError("StateMachineTypeNotSupported", "This operation is not supported by this type of state "
                       "machine: EXPRESS executions are not listed (as on AWS)")
    limit = page_size(call)
    query = {"a": "ListExecutions", "m": arn, "s": status, "r": call.get("redriveFilter")}
    after = decode_token(call, query, 3096)
    redriven = {"REDRIVEN": True, "NOT_REDRIVEN": False}.get(call.get("redriveFilter"))
    items, last = call.client.list_page(machine, status, limit, tuple(after) if after else None, express=False,
                                        qualifier=qualifier, redriven=redriven)
    answer = {"executions": [_list_item(item) for item in items]}
    if last is not None:
        answer["nextToken"] = encode_token(query, list(last))
    return answer


def _map_run_children(call: Call, map_run: str) -> dict:
    """ListExecutions of a Distributed Map run's child executions, each with its mapRunArn and itemCount."""
    from statemill.engine.map_runs import MapRunDoesNotExist
    try:
        call.client.describe_map_run(map_run)
    except MapRunDoesNotExist as exc:
        raise ApiError("ResourceNotFound", str(exc)) from None
    status = _enum(call, "statusFilter", STATUSES)
    query = {"a": "ListExecutions", "mr": map_run, "s": status}
    after = decode_token(call, query, 3096)
    items, last = call.client.list_page(None, status, page_size(call), tuple(after) if after else None,
                                        map_run=map_run)
    answer = {"executions": [{**_list_item(item), "mapRunArn": map_run, "itemCount": item["itemCount"]}
                             for item in items]}
    if last is not None:
        answer["nextToken"] = encode_token(query, list(last))
    return answer


def _list_item(item: dict) -> dict:
    found = {"executionArn": item["executionArn"], "stateMachineArn": item["stateMachineArn"], "name": item["name"],
             "status": item["status"], "startDate": epoch(item["startDate"])}
    if "stopDate" in item:
        found["stopDate"] = epoch(item["stopDate"])
    for key in _STARTED_ON:
        if key in item:
            found[key] = item[key]
    found["redriveCount"] = item.get("redriveCount", 0)
    if "redriveDate" in item:
        found["redriveDate"] = epoch(item["redriveDate"])
    return found


# Event detail fields holding execution data, left out with includeExecutionData=false (their *Details stay).
_DATA_FIELDS = ("input", "output")


@action("GetExecutionHistory")
def get_execution_history(call: Call) -> dict:
    arn = execution_arn(call, call.require("executionArn"))
    reverse = bool(call.get("reverseOrder", bool, False))
    include = call.get("includeExecutionData", bool, True)

    def shown(event: dict) -> dict:
        event["timestamp"] = epoch(event["timestamp"])
        if not include:
            for key, details in event.items():
                if key.endswith("EventDetails") and isinstance(details, dict):
                    event[key] = {k: v for k, v in details.items() if k not in _DATA_FIELDS}
        return event

    return page(call, {"a": "GetExecutionHistory", "e": arn, "r": reverse}, "events",
                lambda after, n: call.client.history_page(arn, reverse, n, after), shown, lambda e: e["id"], kind=int)

