"""The durable loop around the pure interpreter: claim a frame, run its task if it has one, commit the transition.

Every commit is one transaction: a compare-and-set on the frame's ``version`` (and the lease this worker holds),
the history events with ids taken from the execution's counter, the next position of the frame, any children, and
the execution's final status. A stale or duplicate commit (a zombie worker whose lease expired) changes nothing.
A commit carries a batch: the transitions of side-effect-free states run in memory up to the one that starts the
next side effect (a task, a timer, a token, children) or ends the frame, each with its own events.
"""
from __future__ import annotations

import json

import os
import secrets
import signal
from dataclasses import dataclass, replace
from typing import Any, Callable

import sqlalchemy as sa

from . import activities, children, map_runs
from . import errors as E
from . import history as h
from . import wake
from .handlers import handler_key
from .interpreter import STEP, Env, ExecutionInfo, Frame, Transition, Trigger, advance
from .store import hot
from .store.schema import executions, frames, mocked_states, task_tokens

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
MAX_COMMIT_FAILURES = 3  # failed commits of one frame version before the frame fails with States.Runtime


class StaleTransition(Exception):
    """The frame moved on (another worker committed, or the execution stopped): this transition is dropped."""


def fault(point: str) -> None:
    """Crash on purpose at a named point when ``STATEMILL_FAULT`` names it (crash tests kill workers here; it is
    read when the process starts)."""
    if not _FAULTS_ARMED:
        return
    wanted = os.environ.get("STATEMILL_FAULT")
    if wanted and wanted == point:
        marker = os.environ.get("STATEMILL_FAULT_ONCE")
        if marker:
            if os.path.exists(marker):
                return
            open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


_FAULTS_ARMED = "STATEMILL_FAULT" in os.environ  # per-step fault points cost nothing unless a crash test armed one


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
        """SQL: the frames of the executions this claimer looks after (a ``run``: its own and its child workflows)."""
        return [] if self.execution_id is None else [frames.c.execution_id.in_(family(self.execution_id))]

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
                             .where(ACTIVE, frames.c.run_at.is_not(None), *self.within(),
                                    self.served())
                             .order_by(frames.c.run_at).limit(1)).scalar()
        if self.keys is None:
            return first
        deadline = conn.execute(sa.select(frames.c.task_deadline)
                                .where(ACTIVE, frames.c.task_deadline.is_not(None),
                                       *self.within())
                                .order_by(frames.c.task_deadline).limit(1)).scalar()
        return min((t for t in (first, deadline) if t is not None), default=None)


ANY = Serving()
# The status as a literal, so both databases use the partial indexes of active frames (ix_frames_runnable,
# ix_frames_task_deadline); with a bound value SQLite scanned and sorted every frame on each claim.
ACTIVE = sa.text("frames.status = 'ACTIVE'")


def expired_leases(now: float) -> sa.Update:
    """SQL: hand back the frames whose lease expired (a crashed worker's). A leased frame is active and was due when
    it was leased, so only the frames due are read (ix_frames_runnable), not the parked ones; and no index of its own
    is rewritten each time a transition renews a lease."""
    return (frames.update().where(ACTIVE, frames.c.run_at <= now, frames.c.lease_until < now)
            .values(lease_owner=None, lease_until=None))


def family(execution_id: int) -> sa.Select:
    """SQL: the ids of an execution and of every child workflow below it."""
    return sa.select(executions.c.id).where(sa.or_(executions.c.id == execution_id,
                                                   executions.c.root_id == execution_id))


def claim(conn: sa.Connection, worker_id: str, limit: int, now: float, lease: float,
          serving: Serving = ANY) -> list[Claimed]:
    """Lease up to ``limit`` runnable frames that ``serving`` allows, oldest due first. Runs inside the caller's
    transaction: one prebuilt statement on the DBAPI cursor (hot.claim_sql), no SQLAlchemy per call."""
    return _claimed(conn, _claim_cursor(conn, worker_id, now, lease, serving, limit).fetchall())


def _claim_cursor(conn: sa.Connection, worker_id: str, now: float, lease: float, serving: Serving, limit: int = 1):
    """The claim statement sent (its rows not read yet: it may be part of a pipeline)."""
    return hot.cursor(conn).execute(*_claim_statement(conn, worker_id, now, lease, serving, limit))


def _claim_statement(conn: sa.Connection, worker_id: str, now: float, lease: float, serving: Serving,
                     limit: int = 1) -> tuple[str, tuple]:
    """The claim's SQL text and parameters."""
    text, names, fixed = _claim_sql(conn.dialect, serving)
    values = {**fixed, "now": now, "limit": limit}
    return text, (*(values[name] for name in names), worker_id, now + lease, now)


def _claimed(conn: sa.Connection, rows: list) -> list[Claimed]:
    """The claim's rows as Claimed, oldest due first (RETURNING's order is the database's)."""
    if conn.dialect.name != "postgresql":  # SQLite's JSON columns are text; psycopg decodes PostgreSQL's json
        rows = [(*row[:6], _loads(row[6]), _loads(row[7]), *row[8:]) for row in rows]
    claimed = [Claimed(*row[:7], row[7] or {}, *row[8:]) for row in rows]
    claimed.sort(key=lambda c: (c.run_at, c.id))
    return claimed


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


_CLAIM_SQL: dict[tuple[str, Serving], tuple[str, tuple[str, ...], dict]] = {}


def _claim_sql(dialect, serving: Serving) -> tuple[str, tuple[str, ...], dict]:
    """The claim statement of ``serving`` in ``dialect``, built once: its text, the names of its pick's parameters
    in order (``now`` and ``limit`` vary; the rest are ``serving``'s handler keys and execution, in the dict)."""
    found = _CLAIM_SQL.get((dialect.name, serving))
    if found is None:
        now = sa.bindparam("now", type_=sa.Float)
        pick = (sa.select(frames.c.id)
                .where(ACTIVE, frames.c.run_at <= now,
                       sa.or_(frames.c.lease_until.is_(None), frames.c.lease_until < now), *serving.where(now))
                .order_by(frames.c.run_at, frames.c.id).limit(sa.bindparam("limit", type_=sa.Integer)))
        positional = type(dialect)(paramstyle="format" if dialect.name == "postgresql" else "qmark")
        state = pick.compile(dialect=positional).construct_expanded_state({"now": 0.0, "limit": 1})
        found = _CLAIM_SQL[(dialect.name, serving)] = (hot.claim_sql(dialect.name, state.statement),
                                                       tuple(state.positiontup), dict(state.parameters))
    return found


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


@dataclass(frozen=True, slots=True)
class Batch:
    """How far a frame runs in memory before its commit: at most ``states`` transitions and about ``size`` bytes of
    history details. Only transitions that start nothing outside the execution run on in one batch (see
    ``_goes_on``): the batch commits with the transition that starts the next side effect or ends the frame."""

    states: int = 100
    size: int = 1 << 20


BATCH = Batch()
SINGLE = Batch(states=1)  # one transition per commit, as before batching


def _goes_on(t: Transition, now: float) -> bool:
    """Whether the frame's next step may join this batch: the frame runs on at once into a state it enters (or a
    Wait that is already over), with no task to run, no children to start and no token to wait for."""
    return (t.frame is not None and t.task is None and t.fan_out is None and t.run_at is not None
            and t.run_at <= now and t.frame.phase in _PURE_PHASES)


_PURE_PHASES = frozenset({"enter", "wait"})


class _History:
    """The events of a batch with what their rows need: previousEventIds (history.chain, one transition at a
    time), timestamps (each transition's own) and the details as JSON text."""

    __slots__ = ("events", "previous", "stamps", "texts", "head", "size")

    def __init__(self, head: int):
        self.events: list[h.Event] = []
        self.previous: list[int] = []
        self.stamps: list[float] = []
        self.texts: list[str | None] = []
        self.head = head
        self.size = 0

    def add(self, events: list[h.Event], first_id: int, now: float, started_at: float | None = None) -> None:
        previous, self.head = h.chain([e.type for e in events], first_id, self.head)
        self.previous += previous
        for event in events:
            text = hot.json_text(event.details)
            self.size += len(text) if text else 0
            self.texts.append(text)
            if started_at is not None and event.type in _STARTED:  # the handler ran before: when it began
                self.stamps.append(started_at)
            else:
                self.stamps.append(now if event.timestamp is None else event.timestamp)
        self.events += events


def commit(conn: sa.Connection, machine, claimed: Claimed, trigger: Trigger, info: ExecutionInfo, worker_id: str,
           now: float, lease: float, is_root: bool, payload_limit: int, new_token: str | None = None,
           max_events: int | None = None, serving: Serving = ANY, clock: Callable[[], float] | None = None,
           batch: Batch = BATCH, claim_next: bool = False, at_once: bool = False) -> Transition:
    """Advance ``claimed`` by ``trigger`` and persist the transition, all in the caller's transaction. While the
    frame runs on into side-effect-free states, they are advanced too (up to ``batch``; each at ``clock()``, else
    at ``now``) and committed together, each with its own events. The committer keeps the frame's lease when the
    frame is runnable at once and ``serving`` allows it to go on (``leased`` on the returned transition); else,
    with ``claim_next``, it leases the next runnable frame ``serving`` allows in the same transaction (``claimed``
    on the returned transition), so a worker's thread goes on without a claim of its own.

    On PostgreSQL the execution row (its event counter) is locked last: the batch is advanced with the counter as
    last read, then the ids are taken with one UPDATE, and the (pure) batch advanced again when another thread of
    the execution took ids meanwhile. SQLite's BEGIN IMMEDIATE serialises writers anyway: the row is read first.

    ``at_once`` (PostgreSQL): the caller has nothing more to write in this transaction, so the transition may be
    committed here, in one round trip whose server-side statements take the ids last (``commit_at_once``); it is,
    unless an id of this batch went into a text or the transition starts or joins children. Raises CommitAgain
    when that commit took no ids: the caller commits the transition again without ``at_once``.

    Raises StaleTransition (the caller rolls back) when the execution is no longer running or another worker
    committed this frame's version first.
    """
    lock_last = conn.dialect.name == "postgresql"
    at_once = at_once and lock_last
    # At once, the ids are numbered after the frame's own head (no id the frame holds is above it) and moved after
    # the counter by the server; else after the counter as read.
    base = claimed.last_event_id if at_once else _lock_running(conn, claimed, lock=not lock_last)
    step = _Stepper(machine, info, is_root, payload_limit, new_token, max_events,
                    lambda arn: activities.exists(conn, arn))
    nows = step.run(claimed, trigger, base, now, clock, batch)
    t = step.t
    left_join = claimed.phase == "join" and (len(nows) > 1 or t.frame is None or t.frame.phase != "join")
    if (at_once and not step.cites_event_ids and t.fan_out is None and t.map_run is None and not left_join
            and (t.frame is not None or (not is_root and t.status == "SUCCEEDED"))):
        t.events = step.history.events
        return commit_at_once(conn, claimed, t, base, step.history, worker_id, nows[-1], lease, is_root, serving,
                              step.last, max_events, claim_next)
    if lock_last:
        taken = _take_event_ids(conn, claimed, len(step.history.events))
        if taken != base:  # another thread of this execution committed events since we read the counter
            planned = len(step.history.events)
            step.replay(claimed, trigger, taken, nows)
            base = taken
            if len(step.history.events) != planned:
                hot.cursor(conn).execute(hot.statements(conn).count_events,
                                         (base + len(step.history.events), claimed.execution_id))
    t = step.t
    t.events = step.history.events
    return _persist(conn, claimed, t, base, step.history, worker_id, nows[-1], lease, is_root, serving, step.last,
                    left_join, counted=lock_last, claim_next=claim_next)


class _Stepper:
    """Advances a frame through one batch in memory (see ``commit``), recording its events' rows."""

    def __init__(self, machine, info: ExecutionInfo, is_root: bool, payload_limit: int, new_token: str | None,
                 max_events: int | None, activity_exists: Callable[[str], bool] | None = None):
        self.machine, self.info, self.is_root = machine, info, is_root
        self.payload_limit, self.new_token, self.max_events = payload_limit, new_token, max_events
        self.activity_exists = activity_exists

    def run(self, claimed: Claimed, trigger: Trigger, base: int, now: float, clock: Callable[[], float] | None,
            batch: Batch) -> list[float]:
        """Advance from ``claimed`` with event ids after ``base`` while the batch goes on; the time of each step."""
        nows = []
        frame = claimed.frame
        self.history = _History(claimed.last_event_id)
        self.cites_event_ids = False
        while True:
            nows.append(now)
            self.step(frame, trigger, base, now)
            if len(nows) >= batch.states or self.history.size >= batch.size or not _goes_on(self.t, now):
                return nows
            if _FAULTS_ARMED:
                fault("in_batch")  # crash tests: a worker dying with a batch advanced but not committed
            frame, trigger = self.t.frame, STEP
            if clock is not None:
                now = clock()

    def replay(self, claimed: Claimed, trigger: Trigger, base: int, nows: list[float]) -> None:
        """The same steps at the same times, with event ids after ``base``."""
        frame = claimed.frame
        self.history = _History(claimed.last_event_id)
        for now in nows:
            if frame is None:
                break
            self.step(frame, trigger, base, now)
            frame, trigger = self.t.frame, STEP

    def step(self, frame: Frame, trigger: Trigger, base: int, now: float) -> None:
        first = base + 1 + len(self.history.events)
        env = Env(now=now, next_event_id=first, execution=self.info, is_root=self.is_root,
                  payload_limit=self.payload_limit, task_token=self.new_token, activity_exists=self.activity_exists)
        t = advance(self.machine, frame, trigger, env)
        if self.max_events is not None and first - 1 + len(t.events) > self.max_events and t.status == "RUNNING":
            t = _failed(frame.data, self.is_root, E.RUNTIME,
                        f"The execution reached the history limit of {self.max_events} events.")
        self.history.add(t.events, first, now, trigger.started_at)
        self.t, self.last = t, frame
        self.cites_event_ids = self.cites_event_ids or t.cites_event_ids


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
    t = _failed(claimed.data, is_root, E.RUNTIME, cause)
    history = _History(claimed.last_event_id)
    history.add(t.events, base + 1, now)
    return _persist(conn, claimed, t, base, history, worker_id, now, 0.0, is_root, ANY, claimed.frame,
                    claimed.phase == "join")


def _lock_running(conn: sa.Connection, claimed: Claimed, lock: bool = True) -> int:
    """Lock (or only read) ``claimed``'s execution row; its last event id. StaleTransition when it is no longer
    running."""
    sql = hot.statements(conn)
    status, count = hot.cursor(conn).execute(sql.lock_execution if lock else sql.read_count,
                                             (claimed.execution_id,)).fetchone()
    if status != "RUNNING":
        raise StaleTransition
    return count


def _take_event_ids(conn: sa.Connection, claimed: Claimed, count: int) -> int:
    """Move the execution's event counter on by ``count`` (locking its row until the commit); the last id before
    them. StaleTransition when the execution is no longer running."""
    row = hot.cursor(conn).execute(hot.statements(conn).take_event_ids, (count, claimed.execution_id)).fetchone()
    if row is None:
        raise StaleTransition
    return row[0] - count


def _failed(data: dict, is_root: bool, error: str, cause: str) -> Transition:
    """The frame ends FAILED with ``error``, whatever its state's Retry and Catch say (as States.Runtime does)."""
    t = Transition(frame=None, status="FAILED", error=error, cause=cause)
    if data.get("iteration") is not None:
        t.events.append(h.Event("MapIterationFailed", dict(data["iteration"])))
    if is_root:
        t.events.append(h.Event("ExecutionFailed", {"error": error, "cause": cause}))
    return t


def _persist(conn: sa.Connection, claimed: Claimed, t: Transition, base: int, history: _History, worker_id: str,
             now: float, lease: float, is_root: bool, serving: Serving, last: Frame,
             left_join: bool, counted: bool = False, claim_next: bool = False) -> Transition:
    """Write transition ``t`` of ``claimed`` (whose execution's last event id is ``base``; ``history`` holds its
    events' rows; ``last`` is where the frame stood before its final step), fenced by the compare-and-set on the
    frame's version and lease. ``left_join``: the frame's children joined, so they are removed; ``counted``: the
    execution's event counter was moved on already; ``claim_next``: see ``commit``."""
    head = history.head
    sql = hot.statements(conn)
    cursor = hot.cursor(conn)
    values = _frame_values(claimed, t, head, worker_id, now, lease, serving, last)
    statement, columns = ((sql.move_frame, hot.MOVE_COLUMNS) if t.frame is not None
                          else (sql.finish_frame, hot.FINISH_COLUMNS))
    if left_join and t.frame is None and t.status == "FAILED" and last.phase == "join":
        keep_children(conn, claimed.id)  # the Parallel/Map failed for good: a redrive re-runs only what failed
    elif left_join:
        delete_children(conn, claimed.id)  # joined: the children's results now live in this frame's output
    # The common writes in one round trip (PostgreSQL holds the execution row's lock from here to the commit).
    child_done = t.frame is None and not is_root and t.status == "SUCCEEDED"
    with hot.pipeline(conn):
        moved = cursor.execute(statement, hot.frame_params(columns, values, claimed.id, claimed.version, worker_id,
                                                           t.frame.text if t.frame is not None else None))
        append_events(conn, claimed.execution_id, claimed.id, base, t.events, history.previous, now,
                      history.stamps, history.texts, counted)
        woken = child_succeeded(conn, claimed.parent_id, now, head, base + len(t.events)) if child_done else None
        if lazy_commit(conn.dialect.name, t, now, is_root):
            hot.cursor(conn).execute(hot.ASYNC_COMMIT)
        # The next frame to go on with, after the writes that may make one runnable (a sibling, the parent); in this
        # round trip unless more writes follow (children to start, a frame's end to report).
        claim_next = claim_next and not t.leased
        last_writes = t.fan_out is None and t.map_run is None and (woken is not None or t.frame is not None)
        picked = _claim_cursor(conn, worker_id, now, lease, serving) if claim_next and last_writes else None
    # Compare-and-set: exactly one commit per frame version, and only by the lease holder (else all rolls back).
    if moved.rowcount != 1:
        raise StaleTransition
    if t.fan_out is not None:
        start_children(conn, claimed, t, now, head)
    if t.map_run is not None:
        map_runs.create(conn, claimed.execution_id, claimed.id, t.map_run, now)
    if woken is not None:
        woke = woken()
    else:
        woke = t.frame is None and finish_frame(conn, claimed, t, now, is_root, head, base + len(t.events))
    if t.fan_out is not None or (woke and not is_root):
        # Children to run, or a parent/sibling woken: tell idle workers elsewhere. Only then: on PostgreSQL a
        # NOTIFY serialises the commits of every notifying transaction, so an iteration that wakes nobody is silent.
        notify(conn)
    if claim_next and picked is None:
        picked = _claim_cursor(conn, worker_id, now, lease, serving)
    if picked is not None:
        t.claimed = next(iter(_claimed(conn, picked.fetchall())), None)
    t.last_event_id = head
    return t


def _frame_values(claimed: Claimed, t: Transition, head: int, worker_id: str, now: float, lease: float,
                  serving: Serving, last: Frame) -> dict[str, Any]:
    """The frame row's new columns after transition ``t`` (hot.MOVE_COLUMNS while it goes on, else
    hot.FINISH_COLUMNS); sets ``t.handler_key`` and ``t.leased``."""
    values: dict[str, Any] = {"version": claimed.version + 1, "last_event_id": head}
    if t.frame is not None:
        t.handler_key = handler_key(t.task.resource, t.task.input) if t.task is not None else None
        keep = t.leased = t.run_at is not None and t.run_at <= now and serving.serves(t.handler_key)
        values.update(state=t.frame.state, phase=t.frame.phase, input=t.frame.input, data=t.frame.data,
                      run_at=t.run_at, lease_owner=worker_id if keep else None,
                      lease_until=now + lease if keep else None, handler_key=t.handler_key,
                      task_deadline=t.task.timeout_at if t.task is not None else None)
    else:
        values.update(state=last.state, status=t.status, run_at=None, lease_owner=None, lease_until=None,
                      handler_key=None, task_deadline=None, output=t.output,
                      data={**last.data, "error": t.error, "cause": t.cause} if t.status == "FAILED"
                      else last.data)
    return values


class CommitAgain(Exception):
    """A transition was not committed at once (``commit_at_once``): it took no event ids (the execution ended, or
    its events would pass the history limit), or the connection lost its prepared statements. Commit it again
    without ``at_once``, which tells those cases apart."""


_NO_LIMIT = 2 ** 31 - 1


def commit_at_once(conn: sa.Connection, claimed: Claimed, t: Transition, guess: int, history: _History,
                   worker_id: str, now: float, lease: float, is_root: bool, serving: Serving, last: Frame,
                   max_events: int | None, claim_next: bool) -> Transition:
    """PostgreSQL: write transition ``t`` of ``claimed`` (a frame that goes on, or a child that succeeded) and
    COMMIT, in one round trip. Its events were numbered after ``guess``: the ids above it are the batch's own, and
    the statements after the one that takes the ids from the execution's counter move them after it, server-side.
    So the execution row (and a Map's or Parallel's join counter) stays locked only while the server runs the rest
    of the trip, never across a round trip: iterations of one Map commit side by side. The frame's compare-and-set
    comes after the ids; its miss rolls everything back (hot.STALE)."""
    sql = hot.statements(conn)
    count, execution = len(history.events), claimed.execution_id
    head = history.head
    values = _frame_values(claimed, t, head, worker_id, now, lease, serving, last)
    columns = hot.MOVE_COLUMNS if t.frame is not None else hot.FINISH_COLUMNS
    params = list(hot.frame_params(columns, {**values, "data": None}, claimed.id, claimed.version, worker_id,
                                   t.frame.text if t.frame is not None else None))
    at = columns.index("data")  # after last_event_id: splice it first
    params[at:at + 1] = _spliced(values["data"], guess)
    at = columns.index("last_event_id")
    params[at:at + 1] = _an_id(head, guess)
    claim_next = claim_next and not t.leased
    script: list[tuple[str, tuple]] = []

    def add(statement: str, *values) -> None:
        script.append((statement, values))

    add(sql.take_ids_at_once, count, execution, count, max_events or _NO_LIMIT)
    add(sql.move_frame_at_once if t.frame is not None else sql.finish_frame_at_once, count, execution, *params)
    if count:
        add(sql.insert_events_at_once, execution, claimed.id, count, execution,
            [p if p <= guess else guess - p for p in history.previous],  # relative ones negated
            [e.type for e in history.events], history.stamps, history.texts)
    if t.frame is None:  # a child succeeded (see child_succeeded)
        parent = claimed.parent_id
        add(sql.child_done, parent)
        add(sql.activate_next_at_once, count, execution, now, *_an_id(head, guess), parent, parent)
        add(sql.wake_parent_at_once, count, execution, now, count, parent)
    if claim_next:
        # Last, as in _persist: a claim may keep the lock of a frame it found leased meanwhile (its pick rechecks
        # the newest version, still locking it); before the ids, it could hold a frame whose transition holds the
        # execution's row, waiting for the ids: a deadlock.
        text, values = _claim_statement(conn, worker_id, now, lease, serving)
        claim_at = len(script)
        add(text, *values)
    if lazy_commit("postgresql", t, now, is_root):
        add(hot.ASYNC_COMMIT)
    add("COMMIT")
    # One query message: the server runs it through without waiting for this process, whose thread may wait for
    # the GIL between two statements of a pipeline (which the server would run as they come, holding the locks).
    try:
        cursor = hot.run_script(conn, script)
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == "22P02":  # invalid_text_representation: our guards' casts
            if hot.STALE in str(exc):
                raise StaleTransition from None
            if hot.NOT_TAKEN in str(exc):
                raise CommitAgain from None
        if getattr(exc, "sqlstate", None) in ("26000", "42P05"):  # the session's prepared statements were not
            raise CommitAgain from None  # as hot.run_script knew them (DEALLOCATE ALL, a pooler): it knows now
        raise
    shift = cursor.fetchone()[0] - count - guess
    picked = None
    if claim_next:  # one result per statement
        for _ in range(claim_at):
            cursor.nextset()
        picked = cursor.fetchall()
    if t.frame is not None and t.frame.data.get("entered_id", 0) > guess:
        t.frame = replace(t.frame, data={**t.frame.data, "entered_id": t.frame.data["entered_id"] + shift})
    t.last_event_id = head + shift if head > guess else head
    if picked is not None:
        t.claimed = next(iter(_claimed(conn, picked)), None)
    return t


def _an_id(event_id: int, guess: int) -> tuple[int | None, int | None]:
    """An id for hot.HotStatements' ``COALESCE(b.base + rel, abs)``: relative to ``guess`` when it is the batch's
    own, else as it is."""
    return (event_id - guess, None) if event_id > guess else (None, event_id)


def _spliced(data: dict | None, guess: int) -> tuple[str | None, int | None, str | None]:
    """Frame data for hot.HotStatements' splice: its text; or when its ``entered_id`` is one of the batch's, the
    text around that id (which leads it) and the id relative to ``guess``."""
    entered = data.get("entered_id", 0) if data else 0
    if entered <= guess:
        return None, None, hot.json_text(data)
    rest = {k: v for k, v in data.items() if k != "entered_id"}
    return '{"entered_id":', entered - guess, "," + hot.json_text(rest)[1:] if rest else "}"


def lazy_commit(dialect: str, t: Transition, now: float, is_root: bool) -> bool:
    """Whether transition ``t`` may commit without waiting for the disk (PostgreSQL): nothing outside the execution
    can act on it, neither a task, a token, a child execution, a timer nor the execution's end. Its frame goes on
    at once (in this or another worker), waits for its children, or is a child that ended. PostgreSQL's log is one
    sequence, so the next commit that waits for the disk (the one before any side effect) makes this one durable
    too; a server crash before then loses only such transitions, which run again."""
    if dialect != "postgresql" or t.task is not None or t.map_run is not None:
        return False
    if t.frame is None:
        return not is_root
    return t.fan_out is not None or (t.run_at is not None and t.run_at <= now)


_STARTED = frozenset({"TaskStarted", "LambdaFunctionStarted"})
_CAS = (frames.c.id == sa.bindparam("f"), frames.c.version == sa.bindparam("v"),
        frames.c.lease_owner == sa.bindparam("owner"))


def notify(conn: sa.Connection) -> None:
    """Wake idle workers elsewhere when this transaction commits: NOTIFY on PostgreSQL, a datagram to each live
    worker's wake socket on SQLite (engine/wake.py). Their poll still covers a wake-up that gets lost."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("NOTIFY statemill"))
    else:
        wake.on_commit(conn)


def append_events(conn, execution_id: int, frame_id: int | None, base: int, events: list[h.Event],
                  previous: list[int], now: float, stamps: list[float] | None = None,
                  texts: list[str | None] | None = None, counted: bool = False) -> None:
    """Insert ``events`` with ids base+1.. and their ``previous`` event ids (history.chain), and move the
    execution's counter (unless ``counted``). ``stamps`` and ``texts`` (the details as JSON text) when the caller
    has them already."""
    if not events:
        return
    if stamps is None:
        stamps = [now if e.timestamp is None else e.timestamp for e in events]
    if texts is None:
        texts = [hot.json_text(e.details) for e in events]
    sql = hot.statements(conn)
    cursor = hot.cursor(conn)
    ids = range(base + 1, base + 1 + len(events))
    if sql.insert_event_arrays is not None:  # PostgreSQL: one statement, however many events
        cursor.execute(sql.insert_event_arrays, (execution_id, frame_id, list(ids), previous,
                                                 [e.type for e in events], stamps, texts))
    else:
        cursor.executemany(sql.insert_events, [(execution_id, event_id, before, frame_id, event.type, stamp, text)
                                               for event_id, event, before, stamp, text
                                               in zip(ids, events, previous, stamps, texts)])
    if not counted:
        cursor.execute(sql.count_events, (base + len(events), execution_id))


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


def finish_frame(conn, claimed: Claimed, t: Transition, now: float, is_root: bool, head: int, last: int) -> bool:
    """A frame ended: close the execution (root), or tell the parent (``head`` and ``last``, the frame's head and
    last event, become the parent's or a waiting sibling's head as history.chain describes). Whether another frame
    became runnable (the parent, or a sibling waiting for a free slot)."""
    if is_root:
        waiting = conn.execute(executions.update()
                               .where(executions.c.id == claimed.execution_id, executions.c.status == "RUNNING")
                               .values(status=t.status, output=t.output if t.status == "SUCCEEDED" else None,
                                       error=t.error, cause=t.cause, stopped_at=now)
                               .returning(executions.c.parent_token, executions.c.map_run_id)).first()
        if waiting is None:
            return
        if waiting.parent_token is not None:  # a child workflow a .sync task waits for
            children.child_closed(conn, claimed.execution_id, now)
        if waiting.map_run_id is not None:  # a Distributed Map's child execution
            map_runs.child_closed(conn, claimed.execution_id, t.status, now)
        if t.status != "SUCCEEDED":  # a Distributed Map still running elsewhere in it ends with it
            map_runs.abort_runs(conn, claimed.execution_id, now)
        return False
    parent = claimed.parent_id
    if t.status == "SUCCEEDED":
        return child_succeeded(conn, parent, now, head, last)()
    # First failure wins (guarded), wakes the parent and cancels the siblings still running or waiting.
    won = conn.execute(frames.update().where(frames.c.id == parent, frames.c.failure.is_(None))
                       .values(failure={"error": t.error, "cause": t.cause}, run_at=now,
                               last_event_id=head)).rowcount
    if won:
        cancel_descendants(conn, parent, now, exclude=claimed.id)
    return bool(won)


def child_succeeded(conn, parent: int, now: float, head: int, last: int) -> Callable[[], bool]:
    """A child of ``parent`` succeeded: one fewer to wait for; start the next child waiting for a slot (its events
    follow ``head``), or wake the parent when none is left (its head becomes ``last``), unless a sibling failed.
    Three guarded statements that need no reply to go on, so they can share a pipeline; returns the call that says,
    once their replies are in, whether another frame became runnable."""
    sql = hot.statements(conn)
    hot.cursor(conn).execute(sql.child_done, (parent,))
    activated = hot.cursor(conn).execute(sql.activate_next, (now, head, parent, parent))
    woken = hot.cursor(conn).execute(sql.wake_parent, (now, last, parent))
    return lambda: activated.rowcount + woken.rowcount > 0


def cancel_descendants(conn, parent: int, now: float, exclude: int | None = None) -> None:
    """Cancel every unfinished frame below ``parent`` (bumping versions fences any in-flight commit), their
    outstanding task tokens and the child executions ``.sync`` tasks among them wait for."""
    level = [parent]
    while level:
        rows = conn.execute(sa.select(frames.c.id).where(frames.c.parent_id.in_(level))).scalars().all()
        ids = [i for i in rows if i != exclude]
        if ids:
            conn.execute(frames.update().where(frames.c.id.in_(ids), frames.c.status.in_(("ACTIVE", "PENDING")))
                         .values(status="CANCELLED", version=frames.c.version + 1, run_at=None,
                                 lease_owner=None, lease_until=None))
            cancelled = conn.execute(task_tokens.update().where(task_tokens.c.frame_id.in_(ids),
                                                                task_tokens.c.status == "PENDING")
                                     .values(status="CANCELLED")
                                     .returning(task_tokens.c.token, task_tokens.c.execution_id)).all()
            if cancelled:
                children.stop_waiting(conn, cancelled, now)
        level = ids


def keep_children(conn, parent: int) -> None:
    """A Parallel/Map failed for good: its children stay for a redrive (engine/redrive.py), the succeeded ones
    reduced to their output, the others where they stopped (cancelled ones fenced already)."""
    conn.execute(frames.update().where(frames.c.parent_id == parent, frames.c.status == "SUCCEEDED")
                 .values(input=sa.null(), data=sa.null()))


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
                  now: float, machine=None, counted: bool = True) -> bool:
    """Close a running execution from outside (stop, execution timeout): each state still running gets its
    ``<Type>StateAborted`` event (when ``machine`` is given), then the execution's event; every frame is cancelled,
    and its map runs are aborted. ``counted=False``: a Distributed Map's child whose run recounts it itself."""
    done = conn.execute(executions.update()
                        .where(executions.c.id == execution_id, executions.c.status == "RUNNING")
                        .values(status=status, error=error, cause=cause, stopped_at=now)
                        .returning(executions.c.parent_token, executions.c.map_run_id)).first()
    if done is None:
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
            if phase == "join" and getattr(machine.state(state), "mode", "") == "DISTRIBUTED":
                events.append(h.Event("MapRunAborted"))
                previous.append(head)
                head = base + len(events)
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
    children.stop_children(conn, execution_id, now)
    map_runs.abort_runs(conn, execution_id, now)
    if done.parent_token is not None:
        children.child_closed(conn, execution_id, now)
    if done.map_run_id is not None and counted:
        map_runs.child_closed(conn, execution_id, status, now)
    return True


def new_token() -> str:
    return secrets.token_urlsafe(32)

