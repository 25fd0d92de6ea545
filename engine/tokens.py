"""Answering task tokens from any process that can reach the database: SendTaskSuccess, SendTaskFailure and
SendTaskHeartbeat, with AWS's error names.

Every call is one transaction. It first checks everything (token, execution, attempt, deadlines, output) and
raises before writing anything, so a refused call leaves the database untouched. Completion is a guarded
``UPDATE task_tokens ... WHERE status = 'PENDING'``: of many processes answering one token at once exactly one
wins, the others get ``TaskTimedOut``. The winner then makes the waiting frame runnable; if the handler that
handed the token out has not returned yet, the worker notices the answer when it records the hand-out.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from .client import InvalidOutput, InvalidToken, TaskDoesNotExist, TaskTimedOut
from .jsonvalue import MAX_DEPTH, load_strict, too_deep
from .runtime import notify
from .store.schema import executions, frames, task_tokens

TOKEN_MAX = 2048  # AWS: a task token is 1 to 2,048 characters
ERROR_MAX = 256  # AWS: SendTaskFailure error
CAUSE_MAX = 32_768  # AWS: SendTaskFailure cause
_CLOSED = {
    "SUCCEEDED": "the task was already completed with SendTaskSuccess",
    "FAILED": "the task was already completed with SendTaskFailure",
    "TIMED_OUT": "the task attempt that issued this token is over (timed out, failed or retried)",
    "CANCELLED": "the task was cancelled (its execution was stopped, or its Parallel/Map failed)",
}


def send_task_success(client, token: str, output: Any) -> dict:
    """SendTaskSuccess: ``output`` becomes the task's result (then ResultSelector, ResultPath, OutputPath).

    ``output`` is JSON text when it is a ``str`` or ``bytes`` (as in the AWS API and CLI: pass ``'"text"'`` for a
    JSON string), otherwise any JSON-able Python value. Raises InvalidOutput, InvalidToken, TaskDoesNotExist or
    TaskTimedOut; returns ``{"executionArn", "stateName"}`` of the task it completed.
    """
    value = parse_output(output, client.payload_limit)
    return _complete(client, token, "SUCCEEDED", output=value)


def send_task_failure(client, token: str, error: str | None = None, cause: str | None = None) -> dict:
    """SendTaskFailure: the task fails with ``error`` and ``cause`` (either may be None) and goes through its
    Retry and Catch under that error name; ``{"Error": null, "Cause": null}`` is still caught by States.ALL."""
    for name, text, limit in (("error", error, ERROR_MAX), ("cause", cause, CAUSE_MAX)):
        if text is not None and not isinstance(text, str):
            raise TypeError(f"{name} must be a string or None, not {type(text).__name__}")
        if text is not None and len(text) > limit:
            raise InvalidOutput(f"the {name} is {len(text)} characters long; AWS allows at most {limit}")
    return _complete(client, token, "FAILED", error=error, cause=cause)


def send_task_heartbeat(client, token: str) -> dict:
    """SendTaskHeartbeat: the task's HeartbeatSeconds window starts again from now. TimeoutSeconds is never
    extended, and no history event is written. Raises InvalidToken, TaskDoesNotExist or TaskTimedOut."""
    _check_shape(token)
    now = client.clock.now()
    with client.db.begin() as conn:
        row, execution, frame = _open_task(conn, token, now)
        if row.heartbeat_seconds:
            deadline = now + row.heartbeat_seconds
            conn.execute(task_tokens.update().where(task_tokens.c.token == token, task_tokens.c.status == "PENDING")
                         .values(heartbeat_deadline=deadline))
            if frame.phase == "callback":
                # While the handler still runs (phase "task") the frame is left alone: the worker arms the
                # heartbeat clock itself when the handler returns, later than this deadline.
                data = {**frame.data, "heartbeat_at": deadline}
                timeout_at = data.get("timeout_at")
                conn.execute(frames.update().where(frames.c.id == frame.id, frames.c.version == frame.version,
                                                   frames.c.phase == "callback")
                             .values(data=data, run_at=deadline if timeout_at is None else min(deadline, timeout_at)))
    return {"executionArn": execution.arn, "stateName": row.state}


def parse_output(output: Any, limit: int) -> Any:
    """The JSON value of a SendTaskSuccess output; InvalidOutput when it is not JSON or over ``limit`` bytes."""
    if isinstance(output, (bytes, bytearray)):
        try:
            output = bytes(output).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidOutput("the output is not UTF-8 text") from None
    if isinstance(output, str):
        text = output
    else:
        if too_deep(output) is not None:  # before json.dumps, whose answer would depend on the recursion limit
            raise InvalidOutput(f"the output is not a JSON value: objects and arrays nest more than {MAX_DEPTH} "
                                "levels deep")
        try:
            text = json.dumps(output, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidOutput(f"the output is not a JSON value: {exc}") from None
    size = len(text.encode("utf-8"))
    if size > limit:
        raise InvalidOutput(f"the output is {size} bytes, over the payload limit of {limit} bytes")
    try:
        return load_strict(text)
    except ValueError as exc:
        raise InvalidOutput(f"the output is not valid JSON: {exc}") from None


def _check_shape(token: Any) -> None:
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX or not token.isprintable():
        raise InvalidToken("the task token is empty, too long or not text")


def _complete(client, token: str, status: str, output: Any = None, error: str | None = None,
              cause: str | None = None) -> dict:
    """Close ``token`` with ``status`` and wake its frame, in one transaction; exactly one caller wins."""
    _check_shape(token)
    now = client.clock.now()
    with client.db.begin() as conn:
        row, execution, frame = _open_task(conn, token, now)
        won = conn.execute(task_tokens.update()
                           .where(task_tokens.c.token == token, task_tokens.c.status == "PENDING")
                           .values(status=status, output=output, error=error, cause=cause, completed_at=now)).rowcount
        if won != 1:  # another process answered first (PostgreSQL; SQLite serialises before the read)
            raise TaskTimedOut("another caller completed the task at the same moment")
        # Runnable now if the frame waits for the answer; if its handler is still running, the worker sees the
        # answer when it commits the hand-out (worker._track_tokens) and wakes the frame itself.
        woken = conn.execute(frames.update().where(frames.c.id == frame.id, frames.c.status == "ACTIVE",
                                                   frames.c.phase == "callback").values(run_at=now)).rowcount
        if woken:
            notify(conn)  # PostgreSQL: idle workers elsewhere wake at once instead of at their next poll
    return {"executionArn": execution.arn, "stateName": row.state}


def _open_task(conn, token: str, now: float):
    """The token's row, execution and frame, if the token may still be answered; the AWS error otherwise."""
    # FOR UPDATE (PostgreSQL): serialise with a worker deciding this callback (runtime.callback_trigger).
    row = conn.execute(sa.select(task_tokens).where(task_tokens.c.token == token).with_for_update()).one_or_none()
    if row is None:
        raise InvalidToken("no task was ever given this token")
    if row.status != "PENDING":
        raise TaskTimedOut(_CLOSED.get(row.status, "the task is closed"))
    execution = conn.execute(sa.select(executions.c.arn, executions.c.status)
                             .where(executions.c.id == row.execution_id)).one_or_none()
    frame = conn.execute(sa.select(frames.c.id, frames.c.status, frames.c.phase, frames.c.data, frames.c.version)
                         .where(frames.c.id == row.frame_id)).one_or_none()
    if execution is None or frame is None:
        raise TaskDoesNotExist("the execution that issued this token no longer exists")
    if execution.status != "RUNNING":
        raise TaskTimedOut(f"the execution that issued this token has ended ({execution.status})")
    data = frame.data or {}
    if frame.status != "ACTIVE" or frame.phase not in ("task", "callback") or data.get("token") != token:
        raise TaskTimedOut(_CLOSED["TIMED_OUT"])
    timeout_at = data.get("timeout_at")
    if timeout_at is not None and now >= timeout_at:
        raise TaskTimedOut("the task's TimeoutSeconds have passed")
    if row.heartbeat_deadline is not None and now >= row.heartbeat_deadline:
        raise TaskTimedOut("no heartbeat came within the task's HeartbeatSeconds")
    return row, execution, frame
