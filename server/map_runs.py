"""Distributed Map run actions: DescribeMapRun, ListMapRuns and UpdateMapRun, in AWS's shapes (epoch-second
dates; an unknown map run is ResourceNotFound). ListExecutions with ``mapRunArn`` is in executions.py."""
from __future__ import annotations

from statemill.engine.map_runs import MapRunDoesNotExist

from .arns import execution_arn
from .protocol import ApiError, Call, action, epoch


def _map_run(call: Call) -> str:
    arn = call.require("mapRunArn")
    if ":mapRun:" not in arn:
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {arn}'")
    return arn


@action("DescribeMapRun")
def describe_map_run(call: Call) -> dict:
    try:
        found = call.client.describe_map_run(_map_run(call))
    except MapRunDoesNotExist as exc:
        raise ApiError("ResourceNotFound", str(exc)) from None
    for key in ("startDate", "stopDate", "redriveDate"):
        if key in found:
            found[key] = epoch(found[key])
    return found


@action("ListMapRuns")
def list_map_runs(call: Call) -> dict:
    runs = call.client.list_map_runs(execution_arn(call, call.require("executionArn")))
    for run in runs:
        run["startDate"] = epoch(run["startDate"])
        if "stopDate" in run:
            run["stopDate"] = epoch(run["stopDate"])
    return {"mapRuns": runs}


@action("UpdateMapRun")
def update_map_run(call: Call) -> dict:
    concurrency = call.get("maxConcurrency", int)
    count = call.get("toleratedFailureCount", int)
    percentage = call.get("toleratedFailurePercentage", (int, float))
    if (concurrency is not None and concurrency < 0) or (count is not None and count < 0) or \
            (percentage is not None and not 0 <= percentage <= 100):
        raise ApiError("ValidationException", "maxConcurrency and toleratedFailureCount must be at least 0, "
                       "toleratedFailurePercentage between 0 and 100")
    try:
        call.client.update_map_run(_map_run(call), concurrency, count, percentage)
    except MapRunDoesNotExist as exc:
        raise ApiError("ResourceNotFound", str(exc)) from None
    return {}
