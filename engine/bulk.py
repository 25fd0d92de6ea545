"""Starting many executions of one state machine at once: a batch of executions per transaction, each table's rows
in one multi-row statement, instead of one transaction and a dozen statements per execution.

Each execution is exactly what ``Client.start`` makes (the execution row, its ExecutionStarted event, its root
frame). A batch in which a name is already taken is rolled back and its items are started one by one with
``Client.start``, so an existing name answers as StartExecution does (the running execution with the same input,
else ExecutionAlreadyExists).
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable

import sqlalchemy as sa

from . import machines, versions
from .client import execution_row, root_frame, started_event
from .store.schema import executions, frames, history_events


def start_many(client, machine: str, inputs: Iterable[Any], names: Iterable[str] | None = None,
               batch: int = 500) -> list[str]:
    """Start one execution of the latest revision of STANDARD ``machine`` per item of ``inputs`` (named by
    ``names``, else a UUID each), ``batch`` executions per transaction; their ARNs, in order."""
    from .client import _json_input, check_name, check_payload
    from .runtime import notify

    if batch < 1:
        raise ValueError("batch must be at least 1")
    names = iter(names) if names is not None else None
    arns: list[str] = []
    chunk: list[tuple[str, Any]] = []

    def flush() -> None:
        if chunk:
            arns.extend(_start_chunk(client, machine, chunk, notify))
            chunk.clear()

    for value in inputs:
        check_payload(value, client.payload_limit, "the input")
        name = check_name("execution", next(names) if names is not None else str(uuid.uuid4()))
        chunk.append((name, {} if value is None else _json_input(value)))
        if len(chunk) >= batch:
            flush()
    flush()
    return arns


def _start_chunk(client, machine: str, chunk: list[tuple[str, Any]], notify) -> list[str]:
    """One transaction: the executions of ``chunk`` (name, input), or each through ``Client.start`` when a name is
    taken (or the machine is EXPRESS, whose names ``start`` checks apart)."""
    try:
        with client.db.begin() as conn:
            head = machines.live(conn, machine)
            if head.type == machines.EXPRESS:
                raise _OneByOne
            target = versions.target(conn, machine, None)
            compiled = client.machine(target.revision_id)
            now = client.clock.now()
            timeout = compiled.timeout_seconds
            role = client._role_of(conn, target.revision_id)
            arns = [client.execution_arn(machine, name) for name, _ in chunk]
            deadline = now + timeout if timeout else None
            ids = conn.execute(
                executions.insert().returning(executions.c.id, sort_by_parameter_order=True),
                [execution_row(target, machine, name, arn, value, now, deadline)
                 for (name, value), arn in zip(chunk, arns)]).scalars().all()
            started_on = client._started_on(machine, target.version, target.alias)
            conn.execute(history_events.insert(),
                         [started_event(i, value, now, role, started_on) for i, (_, value) in zip(ids, chunk)])
            conn.execute(frames.insert(), [root_frame(i, compiled, value, now) for i, (_, value) in zip(ids, chunk)])
            notify(conn)
        return arns
    except (sa.exc.IntegrityError, _OneByOne):
        return [client.start(machine, value, name=name)["executionArn"] for name, value in chunk]


class _OneByOne(Exception):
    """This batch is started one execution at a time (rolled back first)."""
