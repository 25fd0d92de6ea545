"""Task-token actions: SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat. The engine's errors (InvalidToken,
TaskDoesNotExist, TaskTimedOut, InvalidOutput) keep their AWS names; each answer is AWS's empty object."""
from __future__ import annotations

from .protocol import Call, action


@action("SendTaskSuccess")
def send_task_success(call: Call) -> dict:
    call.client.send_task_success(call.require("taskToken"), call.require("output"))
    return {}


@action("SendTaskFailure")
def send_task_failure(call: Call) -> dict:
    call.client.send_task_failure(call.require("taskToken"), call.get("error"), call.get("cause"))
    return {}


@action("SendTaskHeartbeat")
def send_task_heartbeat(call: Call) -> dict:
    call.client.send_task_heartbeat(call.require("taskToken"))
    return {}
