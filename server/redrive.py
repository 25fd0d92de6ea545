"""RedriveExecution: restart a FAILED, TIMED_OUT or ABORTED execution from the state that did not succeed."""
from __future__ import annotations

from .arns import execution_arn
from .protocol import Call, action, epoch


@action("RedriveExecution")
def redrive_execution(call: Call) -> dict:
    arn = execution_arn(call, call.require("executionArn"))
    return {"redriveDate": epoch(call.client.redrive(arn)["redriveDate"])}
