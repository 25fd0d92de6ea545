"""Execution actions: StartExecution, DescribeExecution, StopExecution, ListExecutions, ..."""
from __future__ import annotations

from .protocol import Call, action, epoch


@action("DescribeExecution")
def describe_execution(call: Call) -> dict:
    found = call.client.describe(call.require("executionArn"))
    # TODO(api): the full AWS shape (input/output as JSON text, inputDetails, ...)
    for key in ("startDate", "stopDate"):
        if key in found:
            found[key] = epoch(found[key])
    return found
