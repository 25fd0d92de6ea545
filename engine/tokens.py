"""Answering task tokens from any process that can reach the database: SendTaskSuccess, SendTaskFailure and
SendTaskHeartbeat, with AWS's error names.

Every call is one transaction. It first checks everything (token, execution, attempt, deadlines, output) and
raises before writing anything, so a refused call leaves the database untouched. Completion is a guarded
``UPDATE task_tokens ... WHERE status = 'PENDING'``: of many processes answering one token at once exactly one
wins, the others get ``TaskTimedOut``. The winner then makes the waiting frame runnable and wakes the workers (a
datagram to each one's socket on SQLite, NOTIFY on PostgreSQL); if the handler that handed the token out has not
returned yet, the worker notices the answer when it records the hand-out.

The few statements are plain SQL on the driver's connection, so that they run the same under a ``Client``'s
SQLAlchemy transaction and on a ``Direct`` connection: ``statemill send-task-success`` answers without importing
SQLAlchemy, which alone takes longer to import than the whole command may take.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import wake
from .clock import SystemClock
from .errors import InvalidOutput, InvalidToken, TaskDoesNotExist, TaskTimedOut
from .jsonvalue import DEFAULT_PAYLOAD_LIMIT, MAX_DEPTH, dumps, load_strict, too_deep

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
    TaskTimedOut; returns ``{"executionArn", "stateName"}`` of the task it completed. ``client`` is a Client or a
    Direct.
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
    with _transaction(client) as tx:
        row, execution, frame = _open_task(tx, token, now)
        if row["heartbeat_seconds"]:
            deadline = now + row["heartbeat_seconds"]
            tx.run("UPDATE task_tokens SET heartbeat_deadline = :d WHERE token = :t AND status = 'PENDING'",
                   d=deadline, t=token)
            if frame["phase"] == "callback":
                # While the handler still runs (phase "task") the frame is left alone: the worker arms the
                # heartbeat clock itself when the handler returns, later than this deadline.
                data = {**frame["data"], "heartbeat_at": deadline}
                timeout_at = data.get("timeout_at")
                tx.run("UPDATE frames SET data = :data, run_at = :run_at WHERE id = :f AND version = :v "
                       "AND phase = 'callback'", data=tx.json(data), f=frame["id"], v=frame["version"],
                       run_at=deadline if timeout_at is None else min(deadline, timeout_at))
    return {"executionArn": execution["arn"], "stateName": row["state"]}


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
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 (nor JSON text) can carry it
        raise InvalidOutput("the output is not UTF-8 text: it holds a lone surrogate") from None
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
    with _transaction(client) as tx:
        row, execution, frame = _open_task(tx, token, now)
        won = tx.run("UPDATE task_tokens SET status = :s, output = :o, error = :e, cause = :c, completed_at = :now "
                     "WHERE token = :t AND status = 'PENDING'",
                     s=status, o=tx.json(output), e=error, c=cause, now=now, t=token)
        if won != 1:  # another process answered first (PostgreSQL; SQLite serialises before the read)
            raise TaskTimedOut("another caller completed the task at the same moment")
        # Runnable now if the frame waits for the answer; if its handler is still running, the worker sees the
        # answer when it commits the hand-out (worker._track_tokens) and wakes the frame itself.
        if tx.run("UPDATE frames SET run_at = :now WHERE id = :f AND status = 'ACTIVE' AND phase = 'callback'",
                  now=now, f=frame["id"]):
            tx.notify()  # idle workers elsewhere wake at once instead of at their next poll
    return {"executionArn": execution["arn"], "stateName": row["state"]}


def _open_task(tx: "_Tx", token: str, now: float):
    """The token's row, execution and frame, if the token may still be answered; the AWS error otherwise."""
    # FOR UPDATE (PostgreSQL): serialise with a worker deciding this callback (runtime.callback_trigger).
    row = tx.row("SELECT execution_id, frame_id, state, status, heartbeat_seconds, heartbeat_deadline "
                 "FROM task_tokens WHERE token = :t" + tx.for_update, t=token)
    if row is None:
        raise InvalidToken("no task was ever given this token")
    if row["status"] != "PENDING":
        raise TaskTimedOut(_CLOSED.get(row["status"], "the task is closed"))
    execution = tx.row("SELECT arn, status FROM executions WHERE id = :e", e=row["execution_id"])
    frame = tx.row("SELECT id, status, phase, data, version FROM frames WHERE id = :f", f=row["frame_id"])
    if execution is None or frame is None:
        raise TaskDoesNotExist("the execution that issued this token no longer exists")
    if execution["status"] != "RUNNING":
        raise TaskTimedOut(f"the execution that issued this token has ended ({execution['status']})")
    frame["data"] = data = tx.unjson(frame["data"]) or {}
    if frame["status"] != "ACTIVE" or frame["phase"] not in ("task", "callback") or data.get("token") != token:
        raise TaskTimedOut(_CLOSED["TIMED_OUT"])
    timeout_at = data.get("timeout_at")
    if timeout_at is not None and now >= timeout_at:
        raise TaskTimedOut("the task's TimeoutSeconds have passed")
    if row["heartbeat_deadline"] is not None and now >= row["heartbeat_deadline"]:
        raise TaskTimedOut("no heartbeat came within the task's HeartbeatSeconds")
    return row, execution, frame


# ----------------------------------------------------------------------------------------------- transactions
_NAMED = re.compile(r":(\w+)")


class _Tx:
    """This module's statements in one transaction on a driver connection (sqlite3 or psycopg): ``:name``
    parameters, JSON columns as the schema stores them (text on SQLite, ``json`` on PostgreSQL)."""

    def __init__(self, raw, dialect: str):
        self.cursor = raw.cursor()
        self.postgres = dialect == "postgresql"
        self.for_update = " FOR UPDATE" if self.postgres else ""
        self.wake: list[str] = []  # SQLite: the workers to poke once this transaction has committed

    def _sql(self, sql: str) -> str:
        return _NAMED.sub(r"%(\1)s", sql) if self.postgres else sql

    def row(self, sql: str, **params) -> dict | None:
        self.cursor.execute(self._sql(sql), params)
        found = self.cursor.fetchone()
        return None if found is None else dict(zip((d[0] for d in self.cursor.description), found))

    def run(self, sql: str, **params) -> int:
        self.cursor.execute(self._sql(sql), params)
        return self.cursor.rowcount

    def json(self, value: Any) -> Any:
        """A value for a JSON column; JSON null is SQL NULL (as schema.Json stores it)."""
        if value is None:
            return None
        if self.postgres:
            from psycopg.types.json import Json
            return Json(value, dumps=dumps)
        return dumps(value)

    def unjson(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) and not self.postgres else value

    def notify(self) -> None:
        if self.postgres:
            self.cursor.execute("NOTIFY statemill")
        else:
            self.cursor.execute(wake.ADDRESSES, (wake.HOST,))
            self.wake = [address for (address,) in self.cursor.fetchall()]


@contextmanager
def _transaction(client) -> Iterator[_Tx]:
    """One transaction: a Direct's own, or a Client's SQLAlchemy transaction (its statements on the driver
    connection underneath). The workers are poked once it has committed."""
    if isinstance(client, Direct):
        with client.transaction() as tx:
            yield tx
    else:
        with client.db.begin() as conn:
            tx = _Tx(conn.connection.driver_connection, conn.dialect.name)
            yield tx
    wake.poke(tx.wake)


class Direct:
    """A database opened for answering tokens without SQLAlchemy: a sqlite3 file, or PostgreSQL through psycopg.

    ``Direct.open(url)`` returns None for anything it does not handle plainly (a URL it would have to interpret, a
    missing file, a schema of another version...): the caller then uses a ``Client``, which explains the problem.
    """

    payload_limit = DEFAULT_PAYLOAD_LIMIT

    def __init__(self, raw, dialect: str, errors: tuple[type[Exception], ...]):
        self.raw, self.dialect, self.errors = raw, dialect, errors
        self.clock = SystemClock()

    @classmethod
    def open(cls, url: str) -> "Direct | None":
        from .store.migrations import LATEST
        scheme, _, rest = url.partition("://")
        if not rest and url.lower().endswith((".db", ".sqlite", ".sqlite3")) and url.isprintable():
            scheme, rest = "sqlite", "/" + str(Path(url).expanduser())
        errors: tuple[type[Exception], ...] = ()
        try:
            if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1 and "?" not in rest:
                import sqlite3
                errors = (sqlite3.Error,)
                if not Path(rest[1:]).is_file():
                    return None
                raw = sqlite3.connect(rest[1:], timeout=60, isolation_level=None, check_same_thread=False)
                raw.execute("PRAGMA synchronous=NORMAL")  # as store.db configures the engine's connections
                found = cls(raw, "sqlite", errors)
            elif scheme.lower() in ("postgresql", "postgres", "postgresql+psycopg"):
                import psycopg
                errors = (psycopg.Error,)
                found = cls(psycopg.connect("postgresql://" + rest, connect_timeout=10), "postgresql", errors)
            else:
                return None
        except (ImportError, OSError, *errors):
            return None
        try:
            cursor = found.raw.cursor()
            cursor.execute("SELECT max(version) FROM statemill_schema")
            version = cursor.fetchone()[0]
            found.raw.rollback()
        except found.errors:
            version = None
        if version != LATEST:
            found.close()
            return None
        return found

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        if self.dialect == "sqlite":
            self.raw.execute("BEGIN IMMEDIATE")  # take the write lock first, as store.db does
        try:
            yield _Tx(self.raw, self.dialect)
        except BaseException:
            self.raw.rollback()
            raise
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()

    def send_task_success(self, token: str, output: Any) -> dict:
        return send_task_success(self, token, output)

    def send_task_failure(self, token: str, error: str | None = None, cause: str | None = None) -> dict:
        return send_task_failure(self, token, error, cause)

    def send_task_heartbeat(self, token: str) -> dict:
        return send_task_heartbeat(self, token)
