"""A worker: claims runnable frames by free slots, runs handlers in a bounded pool, commits transitions.

Nothing waits in a thread: Wait states, retry backoff and timeouts are ``run_at`` times in the database, so a worker
started later (or after a crash) carries on at the right moment. Leases of frames in flight are renewed while their
handlers run; a crashed worker's leases simply expire and any worker claims those frames again.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import queue
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable

import sqlalchemy as sa

from . import errors as E
from . import map_runs
from .children import stop_waiting, with_children
from .client import Client
from .clock import FakeClock
from .handlers import HandlerRegistry, TaskContext
from .history import is_activity
from .interpreter import Trigger
from .jsonvalue import MARSHAL_ERROR, stored_form
from .mocks import mocked_trigger
from .model import TaskState
from .runtime import (ANY, Claimed, CommitAgain, Serving, StaleTransition, claim, commit, commit_failed,
                      end_execution, expired_leases, family, fault, new_token, trigger_for)
from .redrive import FORGET_EVERY, forget_expired
from .storage import Storage, storage_root
from .store.db import keeps_connections, lasting
from .store.schema import executions, frames, task_tokens, workers
from .wake import WakeSocket, committed

log = logging.getLogger("statemill.worker")


class Worker:
    """Runs executions stored in ``client``'s database with the handlers of ``registry``.

    It claims only what it can do: frames needing no handler, and tasks whose handler it has (a task nobody serves
    waits, as an AWS activity does). With ``execution`` (an ARN) it drives that execution only, every task of it
    included: one it has no handler for fails as on AWS (``statemill run``).
    """

    DATABASE_TRIES = 5  # consecutive failures of the loop's database work before the worker gives up
    WOKEN_IDLE_SECONDS = 2.0  # with wake-ups on, how long an idle worker waits for one before looking anyway

    def __init__(self, client: Client, registry: HandlerRegistry, *, concurrency: int = 16,
                 lease_seconds: float = 30.0, poll_seconds: float = 0.25, worker_id: str | None = None,
                 max_events: int | None = None, on_event: Callable[[dict], None] | None = None,
                 execution: str | None = None, storage: Storage | str | os.PathLike | None = None):
        self.client = client
        storage = storage if storage is not None else getattr(client, "storage", None)
        self.storage = storage if isinstance(storage, Storage) else Storage(storage_root(storage))  # Distributed Map
        self.registry = with_children(registry, client)  # states:startExecution: child workflows
        self.execution = execution
        self.serving = ANY  # set by run()
        self.concurrency = concurrency
        self.lease = lease_seconds
        self.poll = poll_seconds
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.max_events = max_events
        self.on_transition = on_event
        self._inflight: dict[int, Future] = {}  # by the id of the frame each was submitted with
        self._claims_next = False
        self._held: set[int] = set()  # the frames the threads go on with now (a thread leases its next one itself)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_expiry_check = float("-inf")
        self._forgot_at: float | None = None  # when this worker last ran redrive.forget_expired
        self._fatal: sa.exc.DBAPIError | None = None  # the database error that stopped this worker
        self._waker: WakeSocket | None = None  # SQLite: where other processes poke this worker (engine/wake.py)
        self._listening = False  # other processes' commits wake this worker (its socket, or LISTEN on PostgreSQL)
        self._frames_pool = ThreadPoolExecutor(concurrency, thread_name_prefix="statemill-frame")
        self._mocked: dict[int, frozenset[str]] = {}  # execution id -> its mocked states (engine/mocks.py)
        self._tokens: dict[int, bool] = {}  # machine revision id -> whether it hands out task tokens
        self._keep = keeps_connections(client.db)  # frame threads keep a connection between their transactions
        self._local = threading.local()
        self._serialise = client.db.dialect.name == "postgresql"
        self._turns: dict[int, list] = {}  # execution id -> [its lock, threads holding or waiting] (see _turn)
        self._turns_lock = threading.Lock()
        self._kept: list[sa.Connection] = []

    @property
    def clock(self):
        return self.client.clock

    # -- the loop
    def stop(self) -> None:
        """Ask the loop to end after the transitions in flight (graceful shutdown)."""
        self._stop.set()
        self._wake.set()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Work until ``until()`` is true (checked between claims) or ``stop()`` is called."""
        # A thread whose frame waits or ends leases the next runnable frame in the same transaction, unless the
        # loop must check ``until`` between claims.
        self._claims_next = until is None
        self.serving = Serving(execution_id=self.client.execution_id(self.execution)) if self.execution else \
            Serving(keys=frozenset(self.registry.keys()))
        helpers = [threading.Thread(target=self._housekeep, daemon=True, name="statemill-housekeeping")]
        if self.client.db.dialect.name == "postgresql":
            helpers.append(threading.Thread(target=self._listen, daemon=True, name="statemill-listen"))
        else:
            try:
                self._waker = WakeSocket()
                helpers.append(threading.Thread(target=self._listen_socket, daemon=True, name="statemill-wake"))
            except OSError:
                log.warning("no wake socket; polling every %.2fs", self.poll, exc_info=True)
        self._register()
        for thread in helpers:
            thread.start()
        failures = 0
        worked = False  # frames were claimed since the worker last had nothing in flight
        try:
            while not self._stop.is_set():
                self._wake.clear()  # before looking for work, so a frame finishing meanwhile still wakes us
                try:
                    if until is not None and until():
                        break
                    self._reap()
                    now = self.clock.now()
                    if now - self._last_expiry_check >= self.poll:
                        self._expire_executions(now)
                        self._last_expiry_check = now
                    claimed = []
                    free = self.concurrency - len(self._inflight)
                    if free > 0:
                        with self.client.db.begin() as conn:
                            claimed = claim(conn, self.id, free, now, self.lease, self.serving)
                    for item in claimed:
                        self._inflight[item.id] = self._frames_pool.submit(self._process, item)
                    worked = worked or bool(claimed)
                    if worked and not claimed and not self._inflight:  # a burst of work is over
                        release_memory()
                        worked = False
                    if len(claimed) < max(free, 1):  # nothing more to take now: wait for a wake-up
                        self._idle(now)
                    failures = 0
                except sa.exc.DBAPIError as exc:
                    # A database that keeps failing (disk full, gone, read-only) stops the worker with that error
                    # after a few spaced tries, instead of spinning; every committed transition is kept.
                    failures += 1
                    if failures >= self.DATABASE_TRIES:
                        self._fatal = self._fatal or exc
                        break
                    log.warning("the database failed (%s); trying again", exc.orig or exc)
                    self._stop.wait(min(self.poll * 2 ** failures, 5.0))
        finally:
            self._stop.set()
            wait_futures(list(self._inflight.values()))
            self._reap()
            self._inflight.clear()
            self._close_kept()
            try:
                self._deregister()
            except sa.exc.DBAPIError:
                if self._fatal is None:
                    raise
            finally:
                if self._waker is not None:
                    self._waker.close()
        if self._fatal is not None:
            raise self._fatal

    # -- liveness: the workers table, lease renewal, the sweeper, wake-ups
    def _register(self) -> None:
        now = self.clock.now()
        with self.client.db.begin() as conn:
            conn.execute(workers.insert().values(
                id=self.id, host=socket.gethostname(), pid=os.getpid(), started_at=now, last_heartbeat=now,
                handler_keys=None if self.serving.keys is None else sorted(self.serving.keys),
                execution_id=self.serving.execution_id, wake_address=self._waker and self._waker.address))

    def _deregister(self) -> None:
        """Graceful stop: release what this worker still holds and leave the workers table."""
        with self.client.db.begin() as conn:
            conn.execute(frames.update().where(frames.c.lease_owner == self.id)
                         .values(lease_owner=None, lease_until=None))
            conn.execute(workers.delete().where(workers.c.id == self.id))

    def _housekeep(self) -> None:
        """Every third of a lease: heartbeat, renew the leases of frames in flight, and sweep: return expired
        leases (a crashed worker's) to the queue and forget workers silent for three leases."""
        while not self._stop.wait(min(self.lease / 3, 10.0)):
            try:
                self._housekeep_once()
            except sa.exc.DBAPIError as exc:  # the loop decides whether the database is gone for good
                log.warning("housekeeping failed (%s); trying again", exc.orig or exc)

    def _housekeep_once(self) -> None:
        """One round of heartbeat, lease renewal and sweeping, in one transaction."""
        now = self.clock.now()
        ids = sorted({*self._inflight, *self._held})
        with self.client.db.begin() as conn:
            conn.execute(workers.update().where(workers.c.id == self.id).values(last_heartbeat=now))
            if ids:
                conn.execute(frames.update().where(frames.c.id.in_(ids), frames.c.lease_owner == self.id)
                             .values(lease_until=now + self.lease))
            conn.execute(expired_leases(now))
            conn.execute(workers.delete().where(workers.c.last_heartbeat < now - 3 * self.lease))
        if self.serving.execution_id is None and (self._forgot_at is None or now - self._forgot_at >= FORGET_EVERY):
            with self.client.db.begin() as conn:  # hourly: what failed executions kept for a redrive, once too late
                forget_expired(conn, now, since=None if self._forgot_at is None else self._forgot_at - FORGET_EVERY)
            self._forgot_at = now

    def _listen(self) -> None:
        """PostgreSQL: wake the loop when another process commits new work (NOTIFY statemill)."""
        import psycopg
        url = self.client.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("LISTEN statemill")
                self._listening = True
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        self._wake.set()
        except psycopg.Error:
            log.warning("LISTEN failed; falling back to polling every %.2fs", self.poll, exc_info=True)
        finally:
            self._listening = False

    def _listen_socket(self) -> None:
        """SQLite: wake the loop when another process pokes this worker's socket after committing new work."""
        self._listening = True
        while not self._stop.is_set():
            if self._waker.wait(1.0):
                self._wake.set()

    def close(self) -> None:
        self._frames_pool.shutdown(wait=True)
        self._close_kept()

    @contextmanager
    def _transaction(self):
        """A frame thread's write transaction. On a SQLite file it runs on the thread's own connection, kept between
        transactions: a pool checkout and its reset cost more than the commit of a small transition."""
        if not self._keep:
            with self.client.db.begin() as conn:
                yield conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._local.conn = self.client.db.connect()
            self._kept.append(conn)
        with conn.begin():
            yield conn
        committed(conn)  # wake-ups owed by the commit (a pooled connection sends them on its checkin)

    @contextmanager
    def _turn(self, execution_id: int, wanted: bool = True):
        """PostgreSQL: this worker's threads commit one execution's transitions one at a time, unless they may
        commit at once (not ``wanted``: they hold its row only while the server runs their last statements). A
        transition that takes the ids first holds the row (the event counter) across round trips, and the others
        would queue on its lock anyway; waiting here instead keeps one of this worker's sessions, not every one, in
        the database's lock queue, which wakes all its waiters at each commit."""
        if not self._serialise or not wanted:
            yield
            return
        with self._turns_lock:
            turn = self._turns.get(execution_id)
            if turn is None:
                turn = self._turns[execution_id] = [threading.Lock(), 0]
            turn[1] += 1
        try:
            with turn[0]:
                yield
        finally:
            with self._turns_lock:
                turn[1] -= 1
                if not turn[1]:
                    del self._turns[execution_id]

    def _close_kept(self) -> None:
        """Give the frame threads' connections back (no frame is in flight)."""
        kept, self._kept = self._kept, []
        for conn in kept:
            conn.close()

    def _reap(self) -> None:
        for frame_id, future in list(self._inflight.items()):
            if future.done():
                del self._inflight[frame_id]
                failure = future.exception()
                if isinstance(failure, sa.exc.DBAPIError) and lasting(failure):
                    # The database cannot take the frame's commit (disk full, read-only, corrupted): stop, rather
                    # than claim and fail again. Its lease expires and any worker takes the frame over.
                    self._fatal = self._fatal or failure
                    self.stop()
                elif failure is not None:
                    log.error("frame %s failed in the worker", frame_id, exc_info=failure)

    def _idle(self, now: float) -> None:
        if self._inflight:
            self._wake.wait(self.poll)
            return
        with self.client.reader.connect() as conn:
            due = self.serving.next_due(conn)
            deadline = conn.execute(sa.select(sa.func.min(executions.c.deadline_at))
                                    .where(*self._executions(), executions.c.status == "RUNNING")).scalar()
        nxt = min((t for t in (due, deadline) if t is not None), default=None)
        if isinstance(self.clock, FakeClock) and nxt is None:
            self._wake.wait(self.poll)  # virtual time: nothing comes due by itself (a token to answer); no jump
            return
        delay = self.poll if nxt is None else max(0.0, nxt - now)
        if not isinstance(self.clock, FakeClock):
            if nxt is not None and nxt <= now:  # due, yet not claimed: another worker holds it (until its lease ends)
                delay = self.poll
            else:  # until it is due or a wake-up comes; with wake-ups on, a poll now and then covers a lost one
                cap = max(self.poll, self.WOKEN_IDLE_SECONDS) if self._listening else self.poll
                delay = min(cap if nxt is None else delay, cap)
        self.clock.sleep(delay, self._wake)  # virtual time: nothing can run, so jump to the next due moment

    def _expire_executions(self, now: float) -> None:
        with self.client.reader.connect() as conn:
            ids = conn.execute(sa.select(executions.c.id).where(*self._executions(), executions.c.status == "RUNNING",
                                                                executions.c.deadline_at <= now)).scalars().all()
        for execution_id in ids:
            with self.client.db.begin() as conn:
                end_execution(conn, execution_id, "TIMED_OUT", "ExecutionTimedOut", E.TIMEOUT, None, now)

    def _executions(self) -> list:
        """SQL: the executions this worker looks after (a ``run``: its own only)."""
        return [] if self.serving.execution_id is None else [executions.c.id.in_(family(self.serving.execution_id))]

    # -- one frame, as far as it goes without waiting
    def _process(self, item: Claimed) -> None:
        """Go on with ``item`` as far as it goes, then with the frames its thread leased next."""
        try:
            while item is not None:
                current, item = item, None
                self._held.add(current.id)  # its lease is renewed while this thread holds it
                try:
                    item = self._transition(current)
                finally:
                    if item is None or item.id != current.id:
                        self._held.discard(current.id)
        finally:
            self._wake.set()

    def _transition(self, item: Claimed) -> Claimed | None:
        info = self.client.execution_info(item.execution_id)
        machine = self.client.machine(info.machine_id)
        started_at = self.clock.now()
        trigger = self._run_task(item, info) if item.phase == "task" else None
        if item.phase == "join" and "map_run_arn" in item.data:  # a Distributed Map: start children, or end
            trigger = map_runs.pump(self.client, item, info, machine, self.storage, self.id)
            if trigger is None:  # parked until a child closes
                return None
        if trigger is not None:
            trigger = replace(trigger, started_at=started_at)
        now = self.clock.now()
        token = new_token() if self._hands_out_tokens(info.machine_id, machine) else None
        # With no token to keep in step (_track_tokens), commit() may end the transaction itself (PostgreSQL).
        at_once = token is None and "token" not in item.data
        try:
            while True:
                try:
                    with self._turn(item.execution_id, not at_once), self._transaction() as conn:
                        t = commit(conn, machine, item, trigger or trigger_for(conn, item, now), info, self.id, now,
                                   self.lease, item.parent_id is None, self.client.payload_limit, token,
                                   self.max_events, self.serving, self.clock.now,
                                   claim_next=self._claims_next and not self._stop.is_set(), at_once=at_once)
                        self._track_tokens(conn, item, t, token, now)
                    break
                except CommitAgain:
                    at_once = False
        except StaleTransition:
            return None
        except Exception as exc:  # noqa: BLE001 - rolled back; counted, so a poison transition ends (commit_failed)
            if lasting(exc):
                raise  # the database itself is unusable (disk full, read-only...): _reap stops the worker
            t = self._commit_failed(item, exc, now)
            if t is None:
                return None
        fault("after_commit")
        # (A frame this worker goes on with is not parked, though a batch's last step ran a little after ``now``.)
        parked = t.frame is None or (not t.leased and (t.run_at is None or t.run_at > now))
        if (parked and item.parent_id is None) or (t.frame is not None and t.frame.phase == "callback"):
            # Finished, or parked (a timer, a token, its children) perhaps for weeks: keep nothing of it in this
            # worker's memory. 100,000 parked executions must not grow it.
            self.client.forget(item.execution_id)
            self._mocked.pop(item.execution_id, None)
        if self.on_transition is not None:
            self.on_transition({"execution": info.arn, "events": [(e.type, (e.details or {}).get("name"))
                                                                  for e in t.events],
                                "state": t.frame.state if t.frame else None, "status": t.status})
        if not t.leased or self._stop.is_set():  # waiting, or not ours to run; a stopping worker lets it go
            return t.claimed  # the next frame this thread leased in the same transaction, if any
        return Claimed(item.id, item.execution_id, item.parent_id, item.version + 1, t.frame.state, t.frame.phase,
                       t.frame.input, t.frame.data, t.run_at, t.last_event_id)

    def _hands_out_tokens(self, machine_id: int, machine) -> bool:
        """Whether any Task of ``machine`` (in any branch) waits for a task token or is an activity: only then does
        a transition need a fresh token to hand out."""
        found = self._tokens.get(machine_id)
        if found is None:
            found = self._tokens[machine_id] = any(
                isinstance(state, TaskState) and (state.awaits_token or is_activity(state.resource))
                for state in machine.index.values())
        return found

    def _commit_failed(self, item: Claimed, exc: Exception, now: float):
        """Record that ``item``'s transition could not be stored; the frame's failing transition once that has
        happened MAX_COMMIT_FAILURES times (None while it is only handed back to the queue, or moved on)."""
        log.error("frame %s: the transition of state %r could not be stored", item.id, item.state, exc_info=exc)
        cause = problem(exc)
        try:
            with self._transaction() as conn:
                t = commit_failed(conn, item, self.id, now, item.parent_id is None, cause)
                if t is not None:
                    self._track_tokens(conn, item, t, None, now)
        except StaleTransition:
            return None
        return t

    @staticmethod
    def _track_tokens(conn, item: Claimed, t, token: str, now: float) -> None:
        """Keep task-token rows in step with the transition just committed (same transaction)."""
        old = item.data.get("token")
        if old and (t.frame is None or t.frame.data.get("token") != old or t.frame.phase not in ("task", "callback")):
            # The attempt that owned the old token is over (answered, timed out or failed, perhaps waiting to be
            # retried with a fresh token): refuse it from now on.
            over = conn.execute(task_tokens.update()
                                .where(task_tokens.c.token == old, task_tokens.c.status == "PENDING")
                                .values(status="TIMED_OUT", completed_at=now)
                                .returning(task_tokens.c.token, task_tokens.c.execution_id)).all()
            if over:  # a .sync task that timed out stops the child it waited for
                stop_waiting(conn, over, now)
        activity = t.frame.data.get("activity") if t.frame is not None else None  # a poller takes its token
        if token is not None and (t.task is not None or activity) and t.frame.data.get("token") == token:
            heartbeat = t.task.heartbeat_seconds if t.task is not None else t.frame.data.get("heartbeat")
            conn.execute(task_tokens.insert().values(
                token=token, execution_id=item.execution_id, frame_id=item.id, frame_version=item.version + 1,
                state=t.frame.state, status="PENDING", created_at=now, heartbeat_seconds=heartbeat,
                activity_arn=activity))
        if t.frame is not None and t.frame.phase == "callback":
            # A callback may have arrived while the handler was still running: wake the frame at once.
            status = conn.execute(sa.select(task_tokens.c.status).where(task_tokens.c.token == old)
                                  .with_for_update()).scalar()
            if status in ("SUCCEEDED", "FAILED"):
                conn.execute(frames.update().where(frames.c.id == item.id).values(run_at=now))
            elif t.frame.data.get("heartbeat_at"):
                conn.execute(task_tokens.update().where(task_tokens.c.token == old)
                             .values(heartbeat_deadline=t.frame.data["heartbeat_at"]))

    def _run_task(self, item: Claimed, info) -> Trigger:
        data = item.data
        timeout_at = data.get("timeout_at")
        if timeout_at is not None and self.clock.now() >= timeout_at:
            return Trigger("timeout", error=E.TIMEOUT)
        resource = self.client.machine(info.machine_id).state(item.state).raw["Resource"]
        context = TaskContext(execution_arn=info.arn, execution_name=info.name, state_name=item.state,
                              attempt=data.get("attempt", 0), task_token=data.get("token"), resource=resource,
                              # The attempt's TaskScheduled event id: unique in the execution and the same on every
                              # redelivery (frame ids are not: SQLite reuses the ids of deleted child frames).
                              idempotency_key=f"{info.arn}#{item.last_event_id}")
        mocked = mocked_trigger(self.client, self._mocked, item.execution_id, item.state, context.idempotency_key,
                                data.get("token"))
        if mocked is not None:
            return mocked
        try:
            call = self.registry.resolve(resource, data.get("task_input"), self.client.region, self.client.account)
        except E.StatesError as exc:
            return Trigger("error", error=exc.error, cause=exc.cause)
        fault("before_handler")
        remaining = None if timeout_at is None else max(0.0, timeout_at - self.clock.now())
        started = time.monotonic()
        future = None
        try:
            if remaining is None:  # no deadline: the frame waits for the handler however long it runs, here
                result = call.handler(call.value, context, remaining)
            else:
                future = in_daemon_thread(call.handler, call.value, context, remaining)
                result = future.result(timeout=remaining)
        except BaseException as exc:  # noqa: BLE001 - any handler failure becomes an ASL error
            # Only a deadline that has passed is States.Timeout, not a handler's own TimeoutError raised early (an
            # async handler's wait_for raises one at the deadline; on 3.11+ all three classes are TimeoutError).
            if isinstance(exc, (FutureTimeout, TimeoutError, asyncio.TimeoutError)) and future is not None and \
                    (not future.done() or time.monotonic() - started >= remaining):
                future.cancel()
                return Trigger("timeout", error=E.TIMEOUT)
            failure = call.error(exc)
            return Trigger("error", error=failure.error, cause=failure.cause)
        fault("after_handler")
        try:  # here, before the transaction: a result the store cannot hold must fail the task, not the commit
            result = stored_form(call.shape(result))
        except ValueError as exc:
            return Trigger("error", error=MARSHAL_ERROR, cause=f"Unable to marshal response: {exc}")
        return Trigger("submitted" if data.get("token") else "result", result)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError, TypeError):  # another C library (musl, macOS, Windows): nothing to do
        return None


_MALLOC_TRIM = _malloc_trim()


def release_memory() -> None:
    """Give the C heap's free pages back to the system, once a burst of work is over (glibc only).

    glibc's malloc gives each thread that allocates at the same time its own arena (up to 8 per core), and keeps
    the pages freed in an arena for that arena's next allocations: after parking 10,000 executions the worker's
    16 frame threads held some 4 MiB of freed heap, resident, that no thread was going to use while everything
    waits. ``malloc_trim`` returns those pages (a fraction of a millisecond when there is little to return); it is
    called with no frame in flight, so no frame thread waits on an arena's lock meanwhile."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def problem(exc: BaseException) -> str:
    """One line naming what failed: the driver's own error rather than SQLAlchemy's wrapper (which quotes the SQL
    and every parameter), shortened, with anything UTF-8 cannot store escaped."""
    inner = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig is not None else exc
    text = f"{type(inner).__name__}: {inner}".splitlines()[0] if str(inner) else type(inner).__name__
    return text[:1000].encode("utf-8", "backslashreplace").decode("utf-8")


def in_daemon_thread(fn: Callable, *args) -> Future:
    """Call ``fn(*args)`` in a daemon thread. A handler still running when its task timed out keeps running
    until it returns (its result is then discarded), but it never holds the process open at exit, as a thread of a
    ThreadPoolExecutor would: the interpreter joins those. Threads are reused once their call returned (starting
    one per task cost as much as a commit); one idle for a minute ends."""
    future: Future = Future()
    try:
        inbox = _IDLE_RUNNERS.pop()
    except IndexError:
        inbox = queue.SimpleQueue()
        threading.Thread(target=_runner, args=(inbox,), daemon=True, name="statemill-handler").start()
    inbox.put((future, fn, args))
    return future


_IDLE_RUNNERS: list[queue.SimpleQueue] = []  # inboxes of handler threads waiting for a call (list ops are atomic)


def _runner(inbox: queue.SimpleQueue) -> None:
    while True:
        try:
            future, fn, args = inbox.get(timeout=60.0)
        except queue.Empty:
            try:
                _IDLE_RUNNERS.remove(inbox)
            except ValueError:  # just handed a call: take it
                continue
            return
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting frame thread
                future.set_exception(exc)
        del future, fn, args
        _IDLE_RUNNERS.append(inbox)
