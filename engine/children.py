"""Child workflows: the ``arn:aws:states:::states:startExecution`` Task resources (plain, ``.sync``, ``.sync:2`` and
``.waitForTaskToken``) as built-in handlers that start an ordinary execution linked to its parent.

A ``.sync`` task parks on a task token as a callback task does; the child answers that token in the transaction
that closes the child (``child_closed``), so the parent wakes as if SendTaskSuccess/SendTaskFailure had been
called. The child remembers the task attempt's idempotency key, so an attempt delivered again after a worker crash
gets the child the first delivery started instead of a second one.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa

from .errors import StatemillError
from .handlers import CALLBACK_SUFFIX, HandlerRegistry, TaskContext, TaskFailure
from .history import dumps
from .store.schema import executions, frames, task_tokens

START = "arn:aws:states:::states:startExecution"
SYNC, SYNC2 = START + ".sync", START + ".sync:2"
RESOURCES = (START, SYNC, SYNC2)  # START + .waitForTaskToken resolves to START
TASK_FAILED = "States.TaskFailed"


@dataclass(frozen=True, slots=True)
class Parent:
    """The task attempt starting a child: its execution, idempotency key, and for ``.sync`` its token and mode."""

    arn: str
    key: str
    token: str | None = None
    mode: str | None = None  # "sync", "sync:2", or None (the task does not wait for the child)

    def columns(self, conn: sa.Connection) -> dict:
        """The child's executions columns that link it to this parent."""
        row = conn.execute(sa.select(executions.c.id, executions.c.root_id)
                           .where(executions.c.arn == self.arn)).first()
        parent_id, root_id = (None, None) if row is None else (row.id, row.root_id or row.id)
        return {"parent_id": parent_id, "root_id": root_id, "parent_key": self.key, "parent_mode": self.mode,
                "parent_token": self.token if self.mode else None}


def with_children(registry: HandlerRegistry, client) -> HandlerRegistry:
    """``registry`` plus the startExecution handlers bound to ``client`` (a resource the operator registered
    themselves keeps their handler)."""
    missing = [resource for resource in RESOURCES if resource not in registry]
    if not missing:
        return registry
    merged = HandlerRegistry(registry.mapping())
    for resource in missing:
        merged.register(resource, partial(start_child, client))
    return merged


def start_child(client, value: Any, context: TaskContext) -> dict:
    """StartExecution from a Task: ``StateMachineArn``, ``Input`` (JSON value or JSON text) and ``Name``; returns
    AWS's response ``{ExecutionArn, StartDate}`` (epoch milliseconds, as service integrations give dates)."""
    if not isinstance(value, dict):
        raise TaskFailure("StepFunctions.ValidationException",
                          "The parameters of a startExecution task must be an object with StateMachineArn")
    machine, qualifier = machine_name(value.get("StateMachineArn"))
    child_input = value.get("Input", {})
    if isinstance(child_input, str):
        try:
            child_input = json.loads(child_input)
        except ValueError as exc:
            raise TaskFailure("StepFunctions.InvalidExecutionInputException",
                              f"Invalid State Machine Execution Input: '{exc}'") from None
    name = value.get("Name")
    if name is None:  # the same on every delivery of this attempt: a redelivery finds the child already started
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, context.idempotency_key))
    resource = context.resource.removesuffix(CALLBACK_SUFFIX)
    mode = {SYNC: "sync", SYNC2: "sync:2"}.get(resource)
    parent = Parent(context.execution_arn, context.idempotency_key, context.task_token, mode)
    try:
        started = client.start(machine, child_input, name=name if isinstance(name, str) else str(name),
                               qualifier=qualifier, parent=parent)
    except StatemillError as exc:  # AWS's names: StepFunctions.StateMachineDoesNotExistException, ...
        kind = type(exc).__name__
        raise TaskFailure(f"StepFunctions.{kind}{'' if kind.endswith('Exception') else 'Exception'}",
                          str(exc)) from None
    return {"ExecutionArn": started["executionArn"], "StartDate": _millis_of(started["startDate"])}


def machine_name(arn: Any) -> tuple[str, str | None]:
    """The state machine a ``StateMachineArn`` names and its version or alias qualifier (None without one);
    StepFunctions.InvalidArnException when it names none."""
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "stateMachine" or not parts[6]:
        raise TaskFailure("StepFunctions.InvalidArnException",
                          f"Invalid Arn: 'Resource type not valid in this context: {arn!r}'. Give StateMachineArn "
                          "as arn:aws:states:REGION:ACCOUNT:stateMachine:NAME")
    return parts[6], (":".join(parts[7:]) or None)


def child_closed(conn: sa.Connection, execution_id: int, now: float) -> None:
    """A child started by a ``.sync`` task has closed: answer the parent's token with DescribeExecution's shape
    (SUCCEEDED), or fail it with States.TaskFailed and that shape as JSON text in the cause, and wake the parent.
    Runs in the transaction that closed the child; a token no longer pending (parent stopped, task timed out)
    is left alone."""
    row = conn.execute(sa.select(executions).where(executions.c.id == execution_id)).one()
    if row.parent_token is None:
        return
    described = sync_output(row)
    if row.status == "SUCCEEDED":
        values = {"status": "SUCCEEDED", "output": described}
    else:
        values = {"status": "FAILED", "error": TASK_FAILED, "cause": dumps(described)}
    frame_id = conn.execute(task_tokens.update()
                            .where(task_tokens.c.token == row.parent_token, task_tokens.c.status == "PENDING")
                            .values(completed_at=now, **values).returning(task_tokens.c.frame_id)).scalar()
    if frame_id is None:
        return
    # Runnable now if it waits; if the parent's handler has not committed yet, the worker sees the answer then.
    woken = conn.execute(frames.update().where(frames.c.id == frame_id, frames.c.status == "ACTIVE",
                                               frames.c.phase == "callback").values(run_at=now)).rowcount
    if woken and conn.dialect.name == "postgresql":
        conn.execute(sa.text("NOTIFY statemill"))


def sync_output(row) -> dict:
    """What a ``.sync`` task gets for a closed child: DescribeExecution's response with capitalised keys, dates in
    epoch milliseconds, Input as JSON text and Output as JSON text (``.sync``) or as JSON (``.sync:2``)."""
    parts = row.arn.split(":")
    result = {"ExecutionArn": row.arn, "Input": dumps(row.input), "InputDetails": {"Included": True},
              "Name": row.name, "StartDate": _millis(row.started_at),
              "StateMachineArn": f"arn:aws:states:{parts[3]}:{parts[4]}:stateMachine:{row.machine_name}",
              "Status": row.status, "StopDate": _millis(row.stopped_at)}
    if row.status == "SUCCEEDED":
        result["Output"] = row.output if row.parent_mode == "sync:2" else dumps(row.output)
        result["OutputDetails"] = {"Included": True}
    for key in ("error", "cause"):
        if getattr(row, key) is not None:
            result[key.capitalize()] = getattr(row, key)
    return result


def stop_children(conn: sa.Connection, execution_id: int, now: float) -> None:
    """The parent closed from outside (stopped, timed out): stop the children its ``.sync`` tasks still wait for."""
    from .runtime import end_execution
    running = conn.execute(sa.select(executions.c.id)
                           .where(executions.c.parent_id == execution_id, executions.c.status == "RUNNING",
                                  executions.c.parent_mode.is_not(None))).scalars().all()
    for child in running:
        end_execution(conn, child, "ABORTED", "ExecutionAborted", None, None, now)


def stop_waiting(conn: sa.Connection, cancelled, now: float) -> None:
    """Task attempts were cancelled (a sibling branch or iteration failed, the task timed out): stop the child
    executions their ``.sync`` tokens still waited for, as AWS does. ``cancelled``: (token, execution_id) rows."""
    from .runtime import end_execution
    by_parent: dict[int, list[str]] = {}
    for token, execution_id in cancelled:
        by_parent.setdefault(execution_id, []).append(token)
    for execution_id, tokens in by_parent.items():
        running = conn.execute(sa.select(executions.c.id)
                               .where(executions.c.parent_id == execution_id, executions.c.status == "RUNNING",
                                      executions.c.parent_token.in_(tokens))).scalars().all()
        for child in running:
            end_execution(conn, child, "ABORTED", "ExecutionAborted", None, None, now)


def links(conn: sa.Connection, arn: str) -> dict:
    """statemill's extras for describe: the parent execution's ARN (or None) and the child executions' ARNs."""
    row = conn.execute(sa.select(executions.c.id, executions.c.parent_id).where(executions.c.arn == arn)).first()
    if row is None:
        return {"parentExecutionArn": None, "childExecutionArns": []}
    parent = None if row.parent_id is None else \
        conn.execute(sa.select(executions.c.arn).where(executions.c.id == row.parent_id)).scalar()
    children = conn.execute(sa.select(executions.c.arn).where(executions.c.parent_id == row.id)
                            .order_by(executions.c.id)).scalars().all()
    return {"parentExecutionArn": parent, "childExecutionArns": list(children)}


def _millis(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def _millis_of(text: str) -> int:
    return int(round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000))
