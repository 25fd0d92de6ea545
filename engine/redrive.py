"""RedriveExecution: restart a FAILED, TIMED_OUT or ABORTED Standard execution from the state that did not succeed,
with the input it had there, on the revision it started with; the history goes on with ``ExecutionRedriven``.

The state that did not succeed runs again from its start, with fresh retry counters. A Parallel or Map there is not
entered again: the branches and iterations that succeeded keep their output (the runtime keeps a failed
Parallel/Map's children, see runtime.keep_children), and each of the others restarts, recursively, at the state
where it failed, was aborted or had not started, within the Map's MaxConcurrency. A Distributed Map redrives its
map run (map_runs.redrive), whose unsuccessful child executions are redriven too. Everything happens in one
transaction: a refused redrive writes nothing. Once the redrive window has passed, workers drop what was kept
(``forget_expired``).
"""
from __future__ import annotations

import sqlalchemy as sa

from . import history as h
from .clock import iso
from .errors import StatemillError
from .runtime import append_events, delete_children, notify
from .store.schema import executions, frames, task_tokens

REDRIVE_WINDOW = 14 * 24 * 3600  # AWS: an execution can be redriven up to 14 days after it closed
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
_KEPT = ("variables", "iteration", "map_run")  # frame data that outlives one state's run (a re-run iteration starts again)
_FORGET = ("error", "cause", "retries", "attempt", "token", "timeout_at")  # a joining frame's data not kept
FORGET_EVERY = 3600.0  # how often a worker drops what executions past the redrive window kept (forget_expired)


class ExecutionNotRedrivable(StatemillError):
    """The execution cannot be redriven (running, succeeded, express, or closed too long ago)."""


def not_redrivable(row, now: float) -> str | None:
    """Why the execution ``row`` cannot be redriven now (AWS's redriveStatusReason), or None when it can."""
    if ":express:" in row.arn:
        return "Express executions cannot be redriven"
    if row.status not in REDRIVABLE:
        return f"Execution is {row.status} and cannot be redriven"
    if row.stopped_at is not None and now - row.stopped_at > REDRIVE_WINDOW:
        return "Execution closed more than 14 days ago and can no longer be redriven"
    return None


def redrive_fields(row, now: float) -> dict:
    """DescribeExecution's redrive fields: redriveCount, redriveDate (once redriven), redriveStatus and the reason."""
    fields = {"redriveCount": row.redrive_count or 0}
    if row.redrive_date is not None:
        fields["redriveDate"] = iso(row.redrive_date)
    reason = not_redrivable(row, now)
    fields["redriveStatus"] = "NOT_REDRIVABLE" if reason else "REDRIVABLE"
    if reason:
        fields["redriveStatusReason"] = reason
    return fields


def redrive(client, arn: str) -> dict:
    """Redrive the execution ``arn``; returns ``{"redriveDate"}``. ExecutionDoesNotExist, or ExecutionNotRedrivable
    with the reason."""
    now = client.clock.now()
    with client.db.begin() as conn:
        row = conn.execute(sa.select(executions).where(executions.c.arn == arn).with_for_update()).first()
        if row is None:
            from .client import ExecutionDoesNotExist
            raise ExecutionDoesNotExist(f"no execution has the ARN {arn!r}")
        reason = not_redrivable(row, now)
        if reason is not None:
            raise ExecutionNotRedrivable(f"{reason}: {arn}")
        machine = client.machine(row.machine_id)
        timeout = machine.timeout_seconds
        restart(conn, row, now, machine, now + timeout if timeout else None)
        notify(conn)
    client.forget(row.id)
    return {"redriveDate": iso(now)}


def restart(conn: sa.Connection, row, now: float, machine, deadline: float | None) -> None:
    """Redrive the closed execution ``row`` in this transaction: ExecutionRedriven, its frames revived, RUNNING
    again (also a Distributed Map's STANDARD child execution, see map_runs.redrive)."""
    root = conn.execute(sa.select(frames).where(frames.c.execution_id == row.id, frames.c.parent_id.is_(None))).one()
    count = (row.redrive_count or 0) + 1
    append_events(conn, row.id, None, row.event_count, [h.Event("ExecutionRedriven", {"redriveCount": count})],
                  [row.event_count], now)
    revive(conn, root, now, row.event_count + 1, machine=machine)
    conn.execute(executions.update().where(executions.c.id == row.id).values(
        status="RUNNING", output=sa.null(), error=None, cause=None, stopped_at=None, redrive_count=count,
        redrive_date=now, deadline_at=deadline))


def revive(conn: sa.Connection, frame, now: float, head: int | None, active: bool = True, machine=None) -> None:
    """Make ``frame`` (a row) runnable again where it stopped; its events follow ``head`` (the root: the
    ExecutionRedriven event) or, for a branch or iteration, its own last event. A Parallel/Map that
    was joining its children goes on joining: the succeeded children stay, the others are revived (the first
    MaxConcurrency of them active, the rest waiting for a slot). Any other frame restarts its state from the
    start; a waiting child restarts its state whole (its own children are dropped) when it gets a slot. A
    Distributed Map that was joining its map run redrives that run (map_runs.redrive; ``machine`` is needed)."""
    kids = conn.execute(sa.select(frames).where(frames.c.parent_id == frame.id).order_by(frames.c.idx)).all()
    data = frame.data or {}
    values = dict(status="ACTIVE" if active else "PENDING", version=frame.version + 1, lease_owner=None,
                  lease_until=None, handler_key=None, task_deadline=None, failure=sa.null(), output=sa.null(),
                  commit_failures=0)
    if head is not None:
        values["last_event_id"] = head
    if active and frame.phase == "join" and "map_run_arn" in data:
        from .map_runs import redrive as redrive_run
        kept = {k: v for k, v in data.items() if k not in _FORGET}
        values.update(phase="join", data={**kept, "retries": [], "attempt": 0}, pending=0, run_at=now,
                      last_event_id=redrive_run(conn, data["map_run_arn"], machine, frame.state, now,
                                                frame.last_event_id if head is None else head))
    elif active and frame.phase == "join" and kids:
        again = [kid for kid in kids if kid.status != "SUCCEEDED"]
        limit = data.get("concurrency") or len(again)
        for n, kid in enumerate(again):
            revive(conn, kid, now, None, active=n < limit, machine=machine)
        kept = {k: v for k, v in data.items() if k not in _FORGET}
        values.update(phase="join", data={**kept, "retries": [], "attempt": 0}, pending=len(again),
                      run_at=None if again else now)
    else:
        if kids:
            delete_children(conn, frame.id)
        values.update(phase="enter", data={k: v for k, v in data.items() if k in _KEPT}, pending=0,
                      run_at=now if active else None)
    conn.execute(frames.update().where(frames.c.id == frame.id).values(**values))


def forget_expired(conn: sa.Connection, now: float, since: float | None = None) -> int:
    """Drop the branch and iteration frames (and their tokens) of executions that closed more than the redrive window
    ago, closed after ``since`` when given: kept only for a redrive, which can no longer happen. The number dropped."""
    closed = sa.select(executions.c.id).where(executions.c.status.in_(REDRIVABLE),
                                              executions.c.stopped_at < now - REDRIVE_WINDOW)
    if since is not None:
        closed = closed.where(executions.c.stopped_at >= since - REDRIVE_WINDOW)
    doomed = (frames.c.execution_id.in_(closed), frames.c.parent_id.is_not(None))
    conn.execute(task_tokens.delete().where(task_tokens.c.frame_id.in_(sa.select(frames.c.id).where(*doomed))))
    return conn.execute(frames.delete().where(*doomed)).rowcount
