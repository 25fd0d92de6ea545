"""AWS history event types and their detail objects, shaped as GetExecutionHistory returns them."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .jsonvalue import compact_encoder

STATE_ENTERED = {t: f"{t}StateEntered" for t in ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")}
STATE_EXITED = {t: f"{t}StateExited" for t in ("Pass", "Task", "Choice", "Wait", "Succeed", "Parallel", "Map")}
STATE_ABORTED = {t: f"{t}StateAborted" for t in ("Task", "Wait", "Parallel", "Map")}


@dataclass(frozen=True, slots=True)
class Event:
    """One history event before it gets its id: its AWS type and the content of its ``…EventDetails``."""

    type: str
    details: dict | None = None
    timestamp: float | None = None  # when it happened, when that is not the commit's time (TaskStarted)

    def details_key(self) -> str:
        if self.type.endswith("StateEntered"):
            return "stateEnteredEventDetails"
        if self.type.endswith("StateExited"):
            return "stateExitedEventDetails"
        return self.type[0].lower() + self.type[1:] + "EventDetails"


# --------------------------------------------------------------------------------------------- previousEventId
# How AWS chains ``previousEventId`` (read off the histories it recorded; see tests/test_history.py):
# - Each thread (the execution, a Parallel branch, a Map iteration) has a *head*: the event its next event points
#   to. An event points to its thread's head and usually becomes the new head.
# - The events in NOT_HEADS point to the head but leave it where it was: ExecutionStarted (so the first state's
#   ``…StateEntered`` has previousEventId 0), MapIterationSucceeded/Failed/Aborted (the next iteration started
#   when a slot frees points to the finished iteration's last state event), MapStateSucceeded and
#   ParallelStateSucceeded (so ``…StateExited`` points where they point).
# - A branch or iteration starts with the head ``…StateStarted`` of its Map/Parallel state; an iteration that waited
#   for a free slot starts with the head of the iteration whose end freed it.
# - When children join, the parent's head is the last event any of them wrote (a Map: its last
#   MapIterationSucceeded); when one fails, the failing child's head (its MapIterationFailed is not one). No
#   ``…StateFailed`` is written for an attempt that is retried: the next ``…StateStarted`` points to that head.
# - An ``EvaluationFailed`` right after its state's ``…StateEntered`` (a JSONata field of a Pass, Map, ... failing as
#   the state is entered) points where that ``…StateEntered`` points; a Wait's points to its WaitStateEntered.
# - Stop and execution timeout: each ``…StateAborted`` points to its thread's head, the execution's closing event
#   to the event before it.
NOT_HEADS = frozenset({"ExecutionStarted", "MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted",
                       "MapStateSucceeded", "ParallelStateSucceeded"})


def chain(types: list[str], first_id: int, head: int) -> tuple[list[int], int]:
    """previousEventIds for events of ``types`` numbered from ``first_id`` in a thread whose head is ``head``,
    and the thread's head after them."""
    previous, before_entered = [], None
    for event_id, kind in enumerate(types, start=first_id):
        previous.append(before_entered if kind == "EvaluationFailed" and before_entered is not None else head)
        before_entered = head if kind.endswith("StateEntered") and kind != "WaitStateEntered" else None
        if kind not in NOT_HEADS:
            head = event_id
    return previous, head


def dumps(value: Any) -> str:
    """JSON text as AWS puts it in history details and error causes: compact, non-ASCII kept."""
    return _ENCODE(value)


_ENCODE = compact_encoder(allow_nan=True)


def payload(value: Any) -> dict:
    """``inputDetails``/``outputDetails``: statemill never truncates payloads in its history."""
    return {"truncated": False}


def entered(state_type: str, name: str, value: Any, text: str | None = None) -> Event:
    """``…StateEntered``; ``text``: the input's JSON text when the caller has it already."""
    return Event(STATE_ENTERED[state_type], {"name": name, "input": dumps(value) if text is None else text,
                                             "inputDetails": payload(value)})


def exited(state_type: str, name: str, value: Any, assigned: dict | None = None, text: str | None = None) -> Event:
    """``…StateExited``; a state with ``Assign`` also reports each assigned value as JSON text. ``text``: the
    output's JSON text when the caller has it already."""
    details = {"name": name, "output": dumps(value) if text is None else text, "outputDetails": payload(value)}
    if assigned is not None:
        details["assignedVariables"] = {key: dumps(item) for key, item in assigned.items()}
        details["assignedVariablesDetails"] = {"truncated": False}
    return Event(STATE_EXITED[state_type], details)


@functools.lru_cache(maxsize=1024)  # a handful of resources, asked about on every task event
def resource_family(resource: str) -> tuple[str, str, str]:
    """(event family, resourceType, resource) as AWS logs a Task: legacy Lambda ARNs use LambdaFunction* events,
    service integrations Task* events with ``arn:aws:states:::sqs:sendMessage`` split into ``sqs``/``sendMessage``."""
    if resource.startswith("arn:") and ":lambda:" in resource and ":function:" in resource:
        return "LambdaFunction", "lambda", resource
    if is_activity(resource):
        return "Activity", "activity", resource
    if resource.startswith("arn:aws:states:::"):
        service, _, api = resource[len("arn:aws:states:::"):].partition(":")
        return "Task", service, api
    return "Task", "statemill", resource


@functools.lru_cache(maxsize=1024)
def is_activity(resource: str) -> bool:
    """Whether a Task's resource is an activity ARN, ``arn:PARTITION:states:REGION:ACCOUNT:activity:NAME``: its
    task waits for a poller (GetActivityTask) instead of running a handler."""
    parts = resource.split(":")
    return len(parts) == 7 and parts[0] == "arn" and parts[2] == "states" and parts[5] == "activity" and \
        all(parts[3:5]) and bool(parts[6])


def result_owner(resource: str) -> str:
    """How AWS names a task in a result-size error: the function ARN, the integrated service, or the resource."""
    family, resource_type, _ = resource_family(resource)
    return resource if family == "LambdaFunction" or resource_type == "statemill" else resource_type


def task_event(kind: str, resource: str, **fields: Any) -> Event:
    """A task event of the right family: ``kind`` is Scheduled, Started, Submitted, Succeeded, Failed or TimedOut."""
    family, resource_type, name = resource_family(resource)
    if family == "LambdaFunction":
        if kind == "Scheduled":
            fields = {"resource": resource, "input": fields.get("parameters"),
                      "inputDetails": {"truncated": False}, **({"timeoutInSeconds": fields["timeoutInSeconds"]}
                                                               if fields.get("timeoutInSeconds") else {})}
        elif kind == "Started":
            return Event("LambdaFunctionStarted")
        elif kind == "Succeeded":
            fields = {"output": fields.get("output"), "outputDetails": {"truncated": False}}
        return Event(f"LambdaFunction{kind}", {k: v for k, v in fields.items() if v is not None} or None)
    if family == "Activity":  # ActivityScheduled/Started/Succeeded/Failed/TimedOut as botocore's shapes have them
        if kind == "Scheduled":
            fields = {"resource": resource, "input": fields.get("parameters"), "inputDetails": {"truncated": False},
                      "timeoutInSeconds": fields.get("timeoutInSeconds"),
                      "heartbeatInSeconds": fields.get("heartbeatInSeconds")}
        elif kind == "Succeeded":
            fields = {"output": fields.get("output"), "outputDetails": {"truncated": False}}
        return Event(f"Activity{kind}", {k: v for k, v in fields.items() if v is not None} or None)
    details = {"resourceType": resource_type, "resource": name}
    if kind == "Scheduled":
        details["region"] = fields.pop("region", "us-east-1")
    for key, value in fields.items():
        if value is not None:
            details[key] = value
    if kind in ("Succeeded", "Submitted") and "output" in details:
        details["outputDetails"] = {"truncated": False}
    return Event(f"Task{kind}", details)
