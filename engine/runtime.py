"""The durable loop around the pure interpreter: claim a frame, run its task if it has one, commit the transition.

Every transition is one transaction: a compare-and-set on the frame's ``version`` (and the lease this worker holds),
the history events with ids taken from the execution's counter, the next position of the frame, any children, and
the execution's final status. A stale or duplicate commit (a zombie worker whose lease expired) changes nothing.
"""
from __future__ import annotations

import os
import secrets
import signal
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from . import errors as E
from . import history as h
from .handlers import handler_key
from .interpreter import STEP, Env, ExecutionInfo, Frame, Transition, Trigger, advance
from .store.schema import executions, frames, history_events, mocked_states, task_tokens

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
MAX_COMMIT_FAILURES = 3  # failed commits of one frame version before the frame fails with States.Runtime


class StaleTransition(Exception):
    """The frame moved on (another worker committed, or the execution stopped): this transition is dropped."""


def fault(point: str) -> None:
    """Crash on purpose at a named point when ``STATEMILL_FAULT`` names it (crash tests kill workers here)."""
    wanted = os.environ.get("STATEMILL_FAULT")
    if wanted and wanted == point:
        marker = os.environ.get("STATEMILL_FAULT_ONCE")
        if marker:
            if os.path.exists(marker):
                return
            open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Claimed:
    """A frame this worker holds a lease on, as loaded from its row."""

    id: int
    execution_id: int
    parent_id: int | None
    version: int
    state: str
    phase: str
    input: Any
    data: dict
    run_at: float | None
    last_event_id: int = 0

    @classmethod
    def from_row(cls, row) -> "Claimed":
        return cls(row.id, row.execution_id, row.parent_id, row.version, row.state, row.phase, row.input,
                   row.data or {}, row.run_at, row.last_event_id)

    @property
    def frame(self) -> Frame:
        return Frame(self.state, self.phase, self.input, self.data)


@dataclass(frozen=True, slots=True)
class Serving:
    """Which runnable frames a claimer takes. A worker (``keys``): frames of any execution, but a frame about to
    run a task only when it holds a handler for the task's key, or once the task's TimeoutSeconds has passed (to
    time it out). A ``run`` (``execution_id``): every frame of its own execution and nothing else."""

    execution_id: int | None = None
    keys: frozenset[str] | None = None  # None: every handler key

    def serves(self, key: str | None) -> bool:
        """Whether this claimer may go on with a frame whose handler key is ``key`` (None: no task to run)."""
        return key is None or self.keys is None or key in self.keys

    def served(self) -> sa.ColumnElement[bool]:
        """SQL: the frame needs no handler, or one this claimer has, or its state is answered by a mock."""
        if self.keys is None:
            return sa.true()
        mocked = sa.exists().where(mocked_states.c.execution_id == frames.c.execution_id,
                                   mocked_states.c.state == frames.c.state)
        return sa.or_(frames.c.handler_key.is_(None), frames.c.handler_key.in_(sorted(self.keys)), mocked)

    def within(self) -> list[sa.ColumnElement[bool]]:
        """SQL: the frames of the executions this claimer looks after."""
        return [] if self.execution_id is None else [frames.c.execution_id == self.execution_id]

    def where(self, now: float) -> list[sa.ColumnElement[bool]]:
        """SQL conditions limiting a runnable frame to this claimer's."""
        if self.keys is None:
            return self.within()
        return [*self.within(), sa.or_(self.served(), frames.c.task_deadline <= now)]

    def next_due(self, conn: sa.Connection) -> float | None:
        """When the first frame this claimer may take becomes runnable: the earliest ``run_at`` of a frame it
        serves, or the earliest task deadline (a served task's ``run_at`` comes before its deadline anyway).
        Both are ordered index scans that stop at the first row."""
        first = conn.execute(sa.select(frames.c.run_at)
                             .where(frames.c.status == "ACTIVE", frames.c.run_at.is_not(None), *self.within(),
                                    self.served())
                             .order_by(frames.c.run_at).limit(1)).scalar()
        if self.keys is None:
            return first
        deadline = conn.execute(sa.select(frames.c.task_deadline)
                                .where(frames.c.status == "ACTIVE", frames.c.task_deadline.is_not(None),
                                       *self.within())
                                .order_by(frames.c.task_deadline).limit(1)).scalar()
        return min((t for t in (first, deadline) if t is not None), default=None)


ANY = Serving()


def claim(conn: sa.Connection, worker_id: str, limit: int, now: float, lease: float,
          serving: Serving = ANY) -> list[Claimed]:
    """Lease up to ``limit`` runnable frames that ``serving`` allows. Runs inside the caller's transaction."""
    pick = (sa.select(frames.c.id)
            .where(frames.c.status == "ACTIVE", frames.c.run_at <= now,
                   sa.or_(frames.c.lease_until.is_(None), frames.c.lease_until < now), *serving.where(now))
            .order_by(frames.c.run_at, frames.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = [row.id for row in conn.execute(pick)]
    if not ids:
        return []
    # Guarded: only rows still unleased (or expired) are taken, so two claimers never share a frame.
    rows = conn.execute(
        frames.update()
        .where(frames.c.id.in_(ids), frames.c.status == "ACTIVE",
               sa.or_(frames.c.lease_until.is_(None), frames.c.lease_until < now))
        .values(lease_owner=worker_id, lease_until=now + lease)
        .returning(*frames.c)).all()
    return [Claimed.from_row(row) for row in rows]


def trigger_for(conn: sa.Connection, claimed: Claimed, now: float | None = None) -> Trigger:
    """The trigger of a runnable frame that has no task to run: children joined, token answered, timer fired."""
    if claimed.phase == "join":
        parent = conn.execute(sa.select(frames.c.failure).where(frames.c.id == claimed.id)).one()
        if parent.failure is not None:
            return Trigger("join_failed", error=parent.failure.get("error"), cause=parent.failure.get("cause"))
        outputs = conn.execute(sa.select(frames.c.output).where(frames.c.parent_id == claimed.id)
                               .order_by(frames.c.idx)).scalars().all()
        return Trigger("joined", list(outputs))
    if claimed.phase == "callback":
        return callback_trigger(conn, claimed, now)
    return STEP


def callback_trigger(conn: sa.Connection, claimed: Claimed, now: float | None = None) -> Trigger:
    """A waiting callback task woke up: its answer, the deadline that passed, or ``rearm`` when none did (woken
    early, or a heartbeat moved the deadline after the frame was claimed)."""
    token = claimed.data.get("token")
    # FOR UPDATE (PostgreSQL): a SendTask* call in flight on this token finishes before we decide.
    row = conn.execute(sa.select(task_tokens).where(task_tokens.c.token == token).with_for_update()).one_or_none()
    if row is None or row.status == "CANCELLED":
        raise StaleTransition
    if row.status == "SUCCEEDED":
        return Trigger("result", row.output)
    if row.status == "FAILED":
        return Trigger("error", error=row.error, cause=row.cause)
    now = (claimed.run_at or 0) if now is None else now
    timeout_at, heartbeat_at = claimed.data.get("timeout_at"), row.heartbeat_deadline
    if heartbeat_at is not None and heartbeat_at <= now and (timeout_at is None or heartbeat_at < timeout_at):
        return Trigger("timeout", error=E.HEARTBEAT_TIMEOUT)
    if timeout_at is not None and timeout_at <= now:
        return Trigger("timeout", error=E.TIMEOUT)
    return Trigger("rearm", heartbeat_at)


def commit(conn: sa.Connection, machine, claimed: Claimed, trigger: Trigger, info: ExecutionInfo, worker_id: str,
           now: float, lease: float, is_root: bool, payload_limit: int, new_token: str | None = None,
           max_events: int | None = None, serving: Serving = ANY) -> Transition:
    """Advance ``claimed`` by ``trigger`` and persist the transition, all in the caller's transaction. The
    committer keeps the frame's lease when the frame is runnable at once and ``serving`` allows it to go on.

    Raises StaleTransition (the caller rolls back) when the execution is no longer running or another worker
    committed this frame's version first.
    """
    base = _lock_running(conn, claimed)
    env = Env(now=now, next_event_id=base + 1, execution=info, is_root=is_root, payload_limit=payload_limit,
              task_token=new_token)
    t = advance(machine, claimed.frame, trigger, env)
    if trigger.started_at is not None:  # the handler ran before this commit: TaskStarted happened when it began
        t.events = [replace(e, timestamp=trigger.started_at) if e.type in _STARTED else e for e in t.events]
    if max_events is not None and base + len(t.events) > max_events and t.status == "RUNNING":
        t = _failed(claimed, is_root, E.RUNTIME, f"The execution reached the history limit of {max_events} events.")
    return _persist(conn, claimed, t, base, worker_id, now, lease, is_root, serving)


def commit_failed(conn: sa.Connection, claimed: Claimed, worker_id: str, now: float, is_root: bool,
                  problem: str) -> Transition | None:
    """The transaction of ``claimed``'s transition failed with ``problem`` (and rolled back). Count it on the frame
    and hand the frame back to the queue; at the MAX_COMMIT_FAILURES-th failure of the same version, fail the frame
    with States.Runtime instead (returned), so a transition that can never be stored is not redelivered forever.
    Raises StaleTransition when the frame moved on meanwhile."""
    base = _lock_running(conn, claimed)
    cas = {"f": claimed.id, "v": claimed.version, "owner": worker_id}
    failures = conn.execute(sa.select(frames.c.commit_failures).where(*_CAS), cas).scalar()
    if failures is None:
        raise StaleTransition
    failures += 1
    if failures < MAX_COMMIT_FAILURES:  # any worker tries again, after 1 s, then 2 s
        conn.execute(frames.update().where(*_CAS).values(commit_failures=failures, run_at=now + failures,
                                                          lease_owner=None, lease_until=None), cas)
        return None
    cause = (f"An error occurred while executing the state '{claimed.state}' (entered at the event id "
             f"#{claimed.data.get('entered_id', 0)}). Its transition could not be stored "
             f"({failures} attempts): {problem}")
    return _persist(conn, claimed, _failed(claimed, is_root, E.RUNTIME, cause), base, worker_id, now, 0.0, is_root)


def _lock_running(conn: sa.Connection, claimed: Claimed) -> int:
    """Lock ``claimed``'s execution row; its last event id. StaleTransition when it is no longer running."""
    execution = conn.execute(_LOCK_EXECUTION, {"e": claimed.execution_id}).one()
    if execution.status != "RUNNING":
        raise StaleTransition
    return execution.event_count


def _failed(claimed: Claimed, is_root: bool, error: str, cause: str) -> Transition:
    """The frame ends FAILED with ``error``, whatever its state's Retry and Catch say (as States.Runtime does)."""
    t = Transition(frame=None, status="FAILED", error=error, cause=cause)
    if claimed.data.get("iteration") is not None:
        t.events.append(h.Event("MapIterationFailed", dict(claimed.data["iteration"])))
    if is_root:
        t.events.append(h.Event("ExecutionFailed", {"error": error, "cause": cause}))
    return t


def _persist(conn: sa.Connection, claimed: Claimed, t: Transition, base: int, worker_id: str, now: float,
             lease: float, is_root: bool, serving: Serving = ANY) -> Transition:
    """Write transition ``t`` of ``claimed`` (whose execution's last event id is ``base``), fenced by the
    compare-and-set on the frame's version and lease."""
    last = base + len(t.events)
    previous, head = h.chain([e.type for e in t.events], base + 1, claimed.last_event_id)
    values: dict[str, Any] = {"version": claimed.version + 1, "last_event_id": head}
    if t.frame is not None:
        t.handler_key = handler_key(t.task.resource, t.task.input) if t.task is not None else None
        keep = t.run_at is not None and t.run_at <= now and serving.serves(t.handler_key)
        values.update(state=t.frame.state, phase=t.frame.phase, input=t.frame.input, data=t.frame.data,
                      run_at=t.run_at, lease_owner=worker_id if keep else None,
                      lease_until=now + lease if keep else None, handler_key=t.handler_key,
                      task_deadline=t.task.timeout_at if t.task is not None else None)
    else:
        values.update(status=t.status, run_at=None, lease_owner=None, lease_until=None, handler_key=None,
                      task_deadline=None, output=t.output,
                      data={**claimed.data, "error": t.error, "cause": t.cause} if t.status == "FAILED"
                      else claimed.data)
    if claimed.phase == "join" and (t.frame is None or t.frame.phase != "join"):
        delete_children(conn, claimed.id)  # joined: the children's results now live in this frame's output
    # Compare-and-set: exactly one commit per frame version, and only by the lease holder.
    statement = _MOVE_FRAME if t.frame is not None else _FINISH_FRAME
    done = conn.execute(statement, {"f": claimed.id, "v": claimed.version, "owner": worker_id,
                                    **{"n_" + k: v for k, v in values.items()}}).rowcount
    if done != 1:
        raise StaleTransition

    append_events(conn, claimed.execution_id, claimed.id, base, t.events, previous, now)
    if t.fan_out is not None:
        start_children(conn, claimed, t, now, head)
    if t.frame is None:
        finish_frame(conn, claimed, t, now, is_root, head, last)
    if t.fan_out is not None or (t.frame is None and not is_root):
        notify(conn)  # children to run, or a parent/sibling woken: tell idle workers elsewhere
    t.last_event_id = values["last_event_id"]
    return t


_STARTED = frozenset({"TaskStarted", "LambdaFunctionStarted"})
# The statements of every transition, built once: building them per call cost more than SQLite's own work.
_LOCK_EXECUTION = (sa.select(executions.c.status, executions.c.event_count)
                   .where(executions.c.id == sa.bindparam("e")).with_for_update())
_CAS = (frames.c.id == sa.bindparam("f"), frames.c.version == sa.bindparam("v"),
        frames.c.lease_owner == sa.bindparam("owner"))
_MOVE_FRAME = frames.update().where(*_CAS).values(
    {"commit_failures": 0, **{c: sa.bindparam("n_" + c, type_=frames.c[c].type) for c in
     ("version", "last_event_id", "state", "phase", "input", "data", "run_at", "lease_owner", "lease_until",
      "handler_key", "task_deadline")}})
_FINISH_FRAME = frames.update().where(*_CAS).values(
    {"commit_failures": 0, **{c: sa.bindparam("n_" + c, type_=frames.c[c].type) for c in
     ("version", "last_event_id", "status", "run_at", "lease_owner", "lease_until", "handler_key", "task_deadline",
      "output", "data")}})
_INSERT_EVENTS = history_events.insert()
_COUNT_EVENTS = executions.update().where(executions.c.id == sa.bindparam("e")).values(
    event_count=sa.bindparam("n"))


def notify(conn: sa.Connection) -> None:
    """On PostgreSQL, wake listening workers when this transaction commits (polling covers SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("NOTIFY statemill"))


def append_events(conn, execution_id: int, frame_id: int | None, base: int, events: list[h.Event],
                  previous: list[int], now: float) -> None:
    """Insert ``events`` with ids base+1.. and their ``previous`` event ids (history.chain), and move the
    execution's counter."""
    if not events:
        return
    rows = [{"execution_id": execution_id, "id": base + offset, "previous_event_id": before, "frame_id": frame_id,
             "type": event.type, "details": event.details,
             "timestamp": now if event.timestamp is None else event.timestamp}
            for offset, (event, before) in enumerate(zip(events, previous), start=1)]
    conn.execute(_INSERT_EVENTS, rows)
    conn.execute(_COUNT_EVENTS, {"e": execution_id, "n": base + len(events)})


def start_children(conn, claimed: Claimed, t: Transition, now: float, head: int) -> None:
    """Create the children of a fan-out; each starts its thread of events at the parent's ``head`` (its
    ``…StateStarted``)."""
    fan = t.fan_out
    limit = fan.max_concurrency or len(fan.children)
    rows = []
    for index, child in enumerate(fan.children):
        active = index < limit
        rows.append({"execution_id": claimed.execution_id, "parent_id": claimed.id, "idx": index,
                     "status": "ACTIVE" if active else "PENDING", "version": 0, "state": child.branch.start_at,
                     "phase": "enter", "input": child.input,
                     "data": child.data,
                     "run_at": now if active else None, "last_event_id": head, "pending": 0})
    conn.execute(frames.insert(), rows)
    # sa.null(): a plain None would be stored as JSON 'null', which the first-failure guard (IS NULL) never matches.
    conn.execute(frames.update().where(frames.c.id == claimed.id)
                 .values(pending=len(rows), failure=sa.null()))


def finish_frame(conn, claimed: Claimed, t: Transition, now: float, is_root: bool, head: int, last: int) -> None:
    """A frame ended: close the execution (root), or tell the parent (``head`` and ``last``, the frame's head and
    last event, become the parent's or a waiting sibling's head as history.chain describes)."""
    if is_root:
        conn.execute(executions.update()
                     .where(executions.c.id == claimed.execution_id, executions.c.status == "RUNNING")
                     .values(status=t.status, output=t.output if t.status == "SUCCEEDED" else None,
                             error=t.error, cause=t.cause, stopped_at=now))
        return
    parent = claimed.parent_id
    if t.status == "SUCCEEDED":
        remaining = conn.execute(frames.update().where(frames.c.id == parent)
                                 .values(pending=frames.c.pending - 1)
                                 .returning(frames.c.pending, frames.c.failure)).one()
        if remaining.failure is None:
            activate_next_pending(conn, parent, now, head)
            if remaining.pending == 0:
                conn.execute(frames.update().where(frames.c.id == parent).values(run_at=now, last_event_id=last))
        return
    # First failure wins (guarded), wakes the parent and cancels the siblings still running or waiting.
    won = conn.execute(frames.update().where(frames.c.id == parent, frames.c.failure.is_(None))
                       .values(failure={"error": t.error, "cause": t.cause}, run_at=now,
                               last_event_id=head)).rowcount
    if won:
        cancel_descendants(conn, parent, exclude=claimed.id)


def activate_next_pending(conn, parent: int, now: float, head: int) -> None:
    """Start the first child still waiting for a free slot; its events follow ``head`` (the finished sibling's)."""
    nxt = conn.execute(sa.select(frames.c.id).where(frames.c.parent_id == parent, frames.c.status == "PENDING")
                       .order_by(frames.c.idx).limit(1)).scalar()
    if nxt is not None:
        conn.execute(frames.update().where(frames.c.id == nxt).values(status="ACTIVE", run_at=now,
                                                                      last_event_id=head))


def cancel_descendants(conn, parent: int, exclude: int | None = None) -> None:
    """Cancel every unfinished frame below ``parent`` (bumping versions fences any in-flight commit) and their
    outstanding task tokens."""
    level = [parent]
    while level:
        rows = conn.execute(sa.select(frames.c.id).where(frames.c.parent_id.in_(level))).scalars().all()
        ids = [i for i in rows if i != exclude]
        if ids:
            conn.execute(frames.update().where(frames.c.id.in_(ids), frames.c.status.in_(("ACTIVE", "PENDING")))
                         .values(status="CANCELLED", version=frames.c.version + 1, run_at=None,
                                 lease_owner=None, lease_until=None))
            conn.execute(task_tokens.update().where(task_tokens.c.frame_id.in_(ids),
                                                    task_tokens.c.status == "PENDING")
                         .values(status="CANCELLED"))
        level = ids


def delete_children(conn, parent: int) -> None:
    """Remove a joined frame's finished children (and theirs): their results now live in the parent's output."""
    level, doomed = [parent], []
    while level:
        level = conn.execute(sa.select(frames.c.id).where(frames.c.parent_id.in_(level))).scalars().all()
        doomed += level
    if doomed:
        # Their tokens stay, re-attached to the parent, so answering one again is TaskTimedOut, not InvalidToken.
        conn.execute(task_tokens.update().where(task_tokens.c.frame_id.in_(doomed))
                     .values(frame_id=parent, status=sa.case((task_tokens.c.status == "PENDING", "TIMED_OUT"),
                                                             else_=task_tokens.c.status)))
        conn.execute(frames.delete().where(frames.c.id.in_(doomed)))


def end_execution(conn, execution_id: int, status: str, event_type: str, error: str | None, cause: str | None,
                  now: float, machine=None) -> bool:
    """Close a running execution from outside (stop, execution timeout): each state still running gets its
    ``<Type>StateAborted`` event (when ``machine`` is given), then the execution's event; every frame is cancelled."""
    done = conn.execute(executions.update()
                        .where(executions.c.id == execution_id, executions.c.status == "RUNNING")
                        .values(status=status, error=error, cause=cause, stopped_at=now)).rowcount
    if not done:
        return False
    base = conn.execute(sa.select(executions.c.event_count).where(executions.c.id == execution_id)).scalar()
    details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
    events, previous = [], []
    if machine is not None:
        running = conn.execute(sa.select(frames.c.state, frames.c.phase, frames.c.last_event_id)
                               .where(frames.c.execution_id == execution_id, frames.c.status == "ACTIVE")
                               .order_by(frames.c.id)).all()
        for state, phase, head in running:
            kind = machine.state(state).type
            if phase != "enter" and kind in h.STATE_ABORTED:
                events.append(h.Event(h.STATE_ABORTED[kind], {"name": state}))
                previous.append(head)
    events.append(h.Event(event_type, details))
    previous.append(base + len(events) - 1)
    append_events(conn, execution_id, None, base, events, previous, now)
    conn.execute(frames.update().where(frames.c.execution_id == execution_id,
                                       frames.c.status.in_(("ACTIVE", "PENDING")))
                 .values(status="CANCELLED", version=frames.c.version + 1, run_at=None, lease_owner=None,
                         lease_until=None))
    conn.execute(task_tokens.update().where(task_tokens.c.execution_id == execution_id,
                                            task_tokens.c.status == "PENDING").values(status="CANCELLED"))
    return True


def new_token() -> str:
    return secrets.token_urlsafe(32)

