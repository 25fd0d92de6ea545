"""The durable engine on SQLite against the ceiling: a bare loop of one-row commits with the same settings.

``ceiling`` measures what the database allows: one-row commits (WAL, synchronous=NORMAL, BEGIN IMMEDIATE) through
SQLAlchemy Core on statemill's own engine setup, and through raw sqlite3; then the SQL of one Pass transition,
replayed three ways, to split a transition's cost between SQL, SQLAlchemy and the engine's own Python.

``durable`` runs real executions (``Engine.run``, and a worker over several executions) in a file database in a
temp folder, counts states entered (``*StateEntered`` events) per second and SQL statements per transition.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
import sqlalchemy as sa
from _common import Context, Result, SqlCounter, best_rate, describe_counts, median, profile, statements, timed
from workloads import ORDER_INPUT, TASK_RESULT, choice_loop, mixed_chain, pass_chain, task_chain, task_loop

from statemill.engine import Engine
from statemill.engine.store.db import open_engine
from statemill.engine.store.schema import executions, frames, history_events, state_machines

ENDED = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"})
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=60000")


# ================================================================================================ the ceiling
def _sa_commit_loop(path: Path):
    """One-row INSERT per transaction through SQLAlchemy Core, on an engine set up exactly like statemill's."""
    engine = open_engine(str(path))
    metadata = sa.MetaData()
    rows = sa.Table("bench_rows", metadata, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("payload", sa.Text, nullable=False))
    metadata.create_all(engine)
    insert = rows.insert()
    payload = json.dumps(ORDER_INPUT)

    def step() -> int:
        for _ in range(100):
            with engine.begin() as conn:
                conn.execute(insert, {"payload": payload})
        return 100
    return engine, step


def _raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=60)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def _raw_commit_loop(path: Path):
    conn = _raw_connection(path)
    conn.execute("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    payload = json.dumps(ORDER_INPUT)

    def step() -> int:
        for _ in range(100):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bench_rows (payload) VALUES (?)", (payload,))
            conn.execute("COMMIT")
        return 100
    return conn, step


class _Replay:
    """The SQL of one Pass transition as runtime.commit issues it: read the execution's counter, compare-and-set
    the frame, insert the two history events, move the counter. Rows are real statemill rows."""

    def __init__(self, path: Path):
        self.engine = open_engine(str(path))
        now = time.time()
        with self.engine.begin() as conn:
            machine_id = conn.execute(state_machines.insert().values(
                name="replay", revision=1, sha256="0" * 64, definition="{}", created_at=now)).inserted_primary_key[0]
            self.execution_id = conn.execute(executions.insert().values(
                machine_id=machine_id, machine_name="replay", name="r", arn="arn:replay", status="RUNNING",
                input=ORDER_INPUT, started_at=now, event_count=1)).inserted_primary_key[0]
            self.frame_id = conn.execute(frames.insert().values(
                execution_id=self.execution_id, idx=0, status="ACTIVE", version=0, state="S0", phase="enter",
                input=ORDER_INPUT, data={}, run_at=now, lease_owner="bench", last_event_id=1,
                pending=0)).inserted_primary_key[0]
        self.version = 0
        text = json.dumps(ORDER_INPUT, separators=(",", ":"))
        self.entered = {"name": "S", "input": text, "inputDetails": {"truncated": False}}
        self.exited = {"name": "S", "output": text, "outputDetails": {"truncated": False}}
        self.data = {"iteration": None}

    # -- like runtime.commit: statements built on every call; optionally the ExecutionInfo read in its own txn
    def engine_style(self, read_info: bool = True) -> None:
        if read_info:
            with self.engine.connect() as conn:
                conn.execute(sa.select(executions).where(executions.c.id == self.execution_id)).one()
        now = time.time()
        with self.engine.begin() as conn:
            base = conn.execute(sa.select(executions.c.status, executions.c.event_count)
                                .where(executions.c.id == self.execution_id)).one().event_count
            done = conn.execute(frames.update()
                                .where(frames.c.id == self.frame_id, frames.c.version == self.version,
                                       frames.c.lease_owner == "bench")
                                .values(version=self.version + 1, last_event_id=base + 2, state="S", phase="enter",
                                        input=ORDER_INPUT, data=self.data, run_at=now, lease_owner="bench",
                                        lease_until=now + 30)).rowcount
            assert done == 1
            conn.execute(history_events.insert(), [
                {"execution_id": self.execution_id, "id": base + 1, "previous_event_id": base, "frame_id":
                 self.frame_id, "type": "PassStateEntered", "timestamp": now, "details": self.entered},
                {"execution_id": self.execution_id, "id": base + 2, "previous_event_id": base + 1, "frame_id":
                 self.frame_id, "type": "PassStateExited", "timestamp": now, "details": self.exited}])
            conn.execute(executions.update().where(executions.c.id == self.execution_id)
                         .values(event_count=base + 2))
        self.version += 1

    # -- the same four statements built once (bind parameters), in one transaction
    def prepare(self) -> None:
        b = sa.bindparam
        self.q_counter = sa.select(executions.c.status, executions.c.event_count).where(executions.c.id == b("x"))
        self.q_frame = (frames.update()
                        .where(frames.c.id == b("f"), frames.c.version == b("v"), frames.c.lease_owner == b("o"))
                        .values(version=b("nv"), last_event_id=b("le"), state=b("st"), phase=b("ph"),
                                input=b("inp", type_=frames.c.input.type), data=b("dat", type_=frames.c.data.type),
                                run_at=b("ra"), lease_owner=b("lo"), lease_until=b("lu")))
        self.q_events = history_events.insert()
        self.q_count = executions.update().where(executions.c.id == b("x")).values(event_count=b("n"))

    def prebuilt(self) -> None:
        now = time.time()
        x, f = self.execution_id, self.frame_id
        with self.engine.begin() as conn:
            base = conn.execute(self.q_counter, {"x": x}).one().event_count
            conn.execute(self.q_frame, {"f": f, "v": self.version, "o": "bench", "nv": self.version + 1,
                                        "le": base + 2, "st": "S", "ph": "enter", "inp": ORDER_INPUT,
                                        "dat": self.data, "ra": now, "lo": "bench", "lu": now + 30})
            conn.execute(self.q_events, [
                {"execution_id": x, "id": base + 1, "previous_event_id": base, "frame_id": f,
                 "type": "PassStateEntered", "timestamp": now, "details": self.entered},
                {"execution_id": x, "id": base + 2, "previous_event_id": base + 1, "frame_id": f,
                 "type": "PassStateExited", "timestamp": now, "details": self.exited}])
            conn.execute(self.q_count, {"x": x, "n": base + 2})
        self.version += 1

    # -- the same four statements on a raw sqlite3 connection, one transaction
    def open_raw(self, path: Path) -> None:
        self.engine.dispose()
        self.raw = _raw_connection(path)

    def raw_sql(self) -> None:
        now = time.time()
        x, f, c = self.execution_id, self.frame_id, self.raw
        c.execute("BEGIN IMMEDIATE")
        base = c.execute("SELECT status, event_count FROM executions WHERE id = ?", (x,)).fetchone()[1]
        c.execute("UPDATE frames SET version = ?, last_event_id = ?, state = ?, phase = ?, input = ?, data = ?, "
                  "run_at = ?, lease_owner = ?, lease_until = ? WHERE id = ? AND version = ? AND lease_owner = ?",
                  (self.version + 1, base + 2, "S", "enter", json.dumps(ORDER_INPUT), json.dumps(self.data), now,
                   "bench", now + 30, f, self.version, "bench"))
        c.executemany("INSERT INTO history_events (execution_id, id, previous_event_id, frame_id, type, timestamp, "
                      "details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [(x, base + 1, base, f, "PassStateEntered", now, json.dumps(self.entered)),
                       (x, base + 2, base + 1, f, "PassStateExited", now, json.dumps(self.exited))])
        c.execute("UPDATE executions SET event_count = ? WHERE id = ?", (base + 2, x))
        c.execute("COMMIT")
        self.version += 1


def _batch(fn, n: int = 50):
    """A ``best_rate`` step running ``fn`` ``n`` times."""
    def step() -> int:
        for _ in range(n):
            fn()
        return n
    return step


def run_ceiling(ctx: Context) -> None:
    seconds, rounds = ctx.pick((0.6, 3), (0.2, 2))
    folder = ctx.tmp / "ceiling"
    folder.mkdir(exist_ok=True)
    settings = "WAL, synchronous=NORMAL, BEGIN IMMEDIATE"

    engine, step = _sa_commit_loop(folder / "sa.db")
    ctx.add(Result("ceiling.sa", "ceiling", "one-row commits, SQLAlchemy Core", best_rate(step, seconds, rounds),
                   "commits/s", short="SA commit loop", note=f"statemill's open_engine(); {settings}"))
    engine.dispose()
    conn, step = _raw_commit_loop(folder / "raw.db")
    ctx.add(Result("ceiling.raw", "ceiling", "one-row commits, raw sqlite3", best_rate(step, seconds, rounds),
                   "commits/s", against=("ceiling.sa",), short="raw commit loop", note=settings))
    conn.close()

    replay = _Replay(folder / "replay.db")
    ctx.add(Result("replay.engine", "ceiling", "1 Pass transition's SQL, built per call, 2 txns",
                   best_rate(_batch(replay.engine_style), seconds, rounds),
                   "transitions/s", against=("ceiling.sa",), short="SQL replay (2 txns)",
                   note="Core statements built per call as runtime.commit does; a read txn for ExecutionInfo (as the "
                        "worker did before caching it) + the write txn with 4 statements"))
    ctx.add(Result("replay.engine1", "ceiling", "same, built per call, 1 txn",
                   best_rate(_batch(lambda: replay.engine_style(False)), seconds, rounds),
                   "transitions/s", against=("ceiling.sa", "replay.engine"), short="SQL replay (built per call)",
                   note="what runtime.commit issues for a Pass state, ExecutionInfo cached"))
    replay.prepare()
    ctx.add(Result("replay.prebuilt", "ceiling", "same SQL, prebuilt statements, 1 txn",
                   best_rate(_batch(replay.prebuilt), seconds, rounds),
                   "transitions/s", against=("ceiling.sa", "replay.engine1"), short="SQL replay (prebuilt)",
                   note="bind parameters, statements constructed once"))
    replay.open_raw(folder / "replay.db")
    ctx.add(Result("replay.raw", "ceiling", "same SQL, raw sqlite3, 1 txn",
                   best_rate(_batch(replay.raw_sql), seconds, rounds),
                   "transitions/s", against=("ceiling.raw", "replay.engine1"), short="SQL replay (raw)"))
    replay.raw.close()


# ================================================================================================ the engine
class Tally:
    """``on_event`` hook of the worker: counts states entered and executions ended, from the frame threads.

    An event is its type, or a (type, ...) tuple, or a dict with "type". A hook that raises would only be logged
    by the worker, so a failure is kept and ends the wait instead.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.entered = 0
        self.ended = 0
        self.error: str | None = None
        self.expected = 0
        self.finished_at: float | None = None  # perf_counter() when the last expected execution ended

    @staticmethod
    def _type(event) -> str:
        if isinstance(event, str):
            return event
        if isinstance(event, dict):
            return str(event.get("type"))
        return str(event[0])

    def __call__(self, info: dict) -> None:
        try:
            types = [self._type(e) for e in info["events"]]
        except Exception as exc:  # noqa: BLE001
            self.error = f"unexpected on_event payload {info!r}: {exc}"
            return
        with self.lock:
            self.entered += sum(1 for t in types if t.endswith("StateEntered"))
            self.ended += sum(1 for t in types if t in ENDED)
            if self.finished_at is None and self.expected and self.ended >= self.expected:
                self.finished_at = time.perf_counter()


def work(engine: Engine, expected: int, concurrency: int, limit: float = 60.0) -> tuple[float, Tally]:
    """Run one worker until ``expected`` executions have ended; (seconds until the last one ended, tally).

    The clock stops at the commit that ended the last execution, not when ``Worker.run`` returns: the worker's
    loop may notice a little later (its poll interval), which is latency, not throughput.
    """
    tally = Tally()
    tally.expected = expected
    worker = engine.worker(concurrency=concurrency, on_event=tally)
    deadline = time.monotonic() + limit
    start = time.perf_counter()
    try:
        worker.run(until=lambda: tally.ended >= expected or tally.error or time.monotonic() > deadline)
        elapsed = (tally.finished_at or time.perf_counter()) - start
    finally:
        worker.close()
    if tally.error:
        raise RuntimeError(tally.error)
    if tally.ended < expected:
        raise RuntimeError(f"only {tally.ended} of {expected} executions ended within {limit:g} s")
    return elapsed, tally


def check_succeeded(engine: Engine, arns: list[str]) -> None:
    for arn in arns:
        described = engine.describe(arn)
        if described["status"] != "SUCCEEDED":
            raise RuntimeError(f"{arn} ended {described['status']}: {described.get('error')} "
                               f"{described.get('cause')}")


def run_durable(ctx: Context) -> None:
    folder = ctx.tmp / "durable"
    folder.mkdir(exist_ok=True)
    engine = Engine(str(folder / "statemill.db"))
    engine.handler("bench:noop")(lambda value: TASK_RESULT)
    aim = ("ceiling.sa", 3.0)
    against = ("ceiling.sa", "ceiling.raw", "interp.pass")

    # Engine.run end to end: register (validates again), start, a worker started and stopped, 200 states.
    chain = pass_chain(200)
    engine.run(chain, ORDER_INPUT, machine_name="pass200")  # warm-up: compile, create tables, fill caches
    repeat = ctx.pick(5, 2)
    times, described = timed(lambda: engine.run(chain, ORDER_INPUT, machine_name="pass200"), repeat)
    if described["status"] != "SUCCEEDED":
        raise RuntimeError(f"Engine.run ended {described['status']}")
    ctx.add(Result("durable.run", "durable", "Engine.run(), 200-state Pass chain", 200 / median(times),
                   "states/s", against=against, aim=aim,
                   note=f"end to end (register, start, worker up and down); median of {repeat}: "
                        f"{1000 * median(times):.0f} ms per run"))

    times, _ = timed(lambda: engine.register(chain, "pass200"), repeat)
    ctx.add(Result("durable.register", "durable", "  of which Engine.register() (validate + compile)",
                   1000 * min(times),
                   "ms", higher_is_better=False, note="runs on every Engine.run(), even for a known definition"))

    # One execution, one worker with one frame thread: the steady transition rate (best of a few), and its SQL.
    length, runs = ctx.pick((1000, 3), (200, 1))
    engine.register(pass_chain(length), f"pass{length}")
    best = 0.0
    for run in range(runs):
        arn = engine.start(f"pass{length}", ORDER_INPUT)["executionArn"]
        if run == 0:
            counter = SqlCounter(engine.db)
        try:
            elapsed, tally = work(engine, 1, 1)
        finally:
            if run == 0:
                counter.close()
                counted = tally.entered
        check_succeeded(engine, [arn])
        best = max(best, tally.entered / elapsed)
    ctx.add(Result("durable.single", "durable", f"1 execution x {length} Pass states, worker", best,
                   "states/s", against=against, aim=aim, short="durable single",
                   note=f"{1e3 / best:.2f} ms per state; worker(concurrency=1); best of {runs}"))
    frame_sql = statements(counter.frame)
    txns = counter.frame["COMMIT"] + counter.frame["ROLLBACK"]
    ctx.add(Result("durable.sql", "durable", "SQL statements per transition", frame_sql / counted, "stmts",
                   higher_is_better=False,
                   note=f"frame thread: {describe_counts(counter.frame, counted)}"))
    ctx.add(Result("durable.txns", "durable", "transactions per transition", txns / counted, "txns",
                   higher_is_better=False,
                   note=f"worker loop besides, per transition: {describe_counts(counter.other, counted) or 'none'}"))

    # Several executions at once through one worker.
    count, length, concurrency = ctx.pick((8, 150, 8), (4, 50, 4))
    engine.register(pass_chain(length), f"pass{length}")
    best = 0.0
    for _ in range(runs):
        arns = [engine.start(f"pass{length}", ORDER_INPUT)["executionArn"] for _ in range(count)]
        elapsed, tally = work(engine, count, concurrency)
        check_succeeded(engine, arns)
        best = max(best, tally.entered / elapsed)
    ctx.add(Result("durable.concurrent", "durable",
                   f"{count} executions x {length} Pass states, concurrency {concurrency}",
                   best, "states/s", against=("durable.single", "ceiling.sa"), aim=aim,
                   note=f"{count * length} states per run, one process; best of {runs}"))

    # A mixed Pass/Choice chain and a Task chain (no-op handler) in one execution.
    for kind, build, length, what, note in (
            ("mixed", mixed_chain, ctx.pick(400, 100), "Pass/Choice states", ""),
            ("task", task_chain, ctx.pick(300, 60), "Tasks (no-op handler)",
             "a Task is 2 transactions: schedule, then the handler's result")):
        engine.register(build(length), f"{kind}{length}")
        arn = engine.start(f"{kind}{length}", ORDER_INPUT)["executionArn"]
        elapsed, tally = work(engine, 1, 1)
        check_succeeded(engine, [arn])
        ctx.add(Result(f"durable.{kind}", "durable", f"1 execution x {length} {what}", tally.entered / elapsed,
                       "states/s", against=("durable.single", f"interp.{kind}"), note=note))

    if ctx.profile:
        ctx.report("profile: durable engine, 1 execution of a Pass chain, in the main thread",
                   _profile_durable(engine, ctx.pick(1500, 300)))
    engine.db.dispose()


def _profile_durable(engine: Engine, length: int) -> str:
    """Drive one execution's frame in this thread (claim, then the worker's own per-frame loop) under cProfile."""
    from statemill.engine.runtime import claim
    engine.register(pass_chain(length), f"profile{length}")
    engine.start(f"profile{length}", ORDER_INPUT)
    worker = engine.worker(concurrency=1)
    try:
        with engine.db.begin() as conn:
            claimed = claim(conn, worker.id, 1, engine.clock.now(), 30.0)
        if not claimed or not hasattr(worker, "_process"):
            return "could not claim the frame (or Worker._process is gone): nothing profiled"
        start = time.perf_counter()
        _, text = profile(lambda: worker._process(claimed[0]))
        elapsed = time.perf_counter() - start
    finally:
        worker.close()
    return f"{length} transitions in {elapsed:.2f} s under the profiler\n{text}"


# ================================================================================================ `statemill run`
LOOP_HANDLERS = "HANDLERS = {'bench:echo': lambda value: value}\n"


def _cli_run(folder: Path, definition: dict, name: str) -> tuple[float, float, int]:
    """``statemill run`` of ``definition`` (input ``{"i": 0}``) in a subprocess on a new SQLite file; (seconds from
    the execution's start to its stop, wall seconds of the whole command, states entered)."""
    (folder / f"{name}.json").write_text(json.dumps(definition))
    (folder / "bench_loop_handlers.py").write_text(LOOP_HANDLERS)
    db = folder / f"{name}.db"
    for stale in folder.glob(f"{name}.db*"):
        stale.unlink()
    env = {**os.environ, "PYTHONPATH": str(folder)}
    env.pop("STATEMILL_DATABASE_URL", None)
    command = [sys.executable, "-m", "statemill.cli.main", "run", f"{name}.json", "--input", '{"i": 0}',
               "--db", str(db), "--handlers", "bench_loop_handlers", "--quiet", "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"statemill run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    described = json.loads(done.stdout)
    if described["status"] != "SUCCEEDED":
        raise RuntimeError(f"statemill run ended {described['status']}")
    span = (_epoch(described["stopDate"]) - _epoch(described["startDate"]))
    with sqlite3.connect(db) as conn:
        entered = conn.execute("SELECT count(*) FROM history_events WHERE type LIKE '%StateEntered'").fetchone()[0]
    return span, wall, entered


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_loop(ctx: Context) -> None:
    """The issue's figures: `statemill run` on a Choice+Pass loop and on a Task-heavy loop, against bare one-row
    SQLite commits (raw sqlite3, WAL, synchronous=NORMAL) measured in this run."""
    folder = ctx.tmp / "loop"
    folder.mkdir(exist_ok=True)
    transitions = ctx.pick(10_000, 2_000)
    runs = ctx.pick(3, 1)  # best of several, as the ceiling's rounds are: noise only ever slows a run down
    if "ceiling.raw" not in ctx.results:
        raise RuntimeError("the raw sqlite3 ceiling did not run (it is the baseline)")
    for key, label, definition, target in (
            ("loop.pass", "Choice+Pass loop", choice_loop(transitions), 1 / 3),
            ("loop.task", "Task+Choice loop (no-op handler)", task_loop(transitions), 0.15)):
        span, wall, entered = min((_cli_run(folder, definition, key.replace(".", "_")) for _ in range(runs)),
                                  key=lambda run: run[0] / run[2])
        ctx.add(Result(key, "loop", f"statemill run, {label}, {entered} states", entered / span, "states/s",
                       against=("ceiling.raw",),
                       note=f"target >= {target:.2g} of raw commits; best of {runs} runs; the execution's "
                            f"startDate..stopDate ({span:.2f} s); the whole command took {wall:.2f} s "
                            f"({entered / wall:,.0f} states/s with start-up)"))


BENCHMARKS = {
    "ceiling": ("one-row commit loops (SQLAlchemy, raw sqlite3) and one transition's SQL replayed", run_ceiling),
    "durable": ("the engine on SQLite: Engine.run, a worker over 1 and N executions, SQL per transition",
                run_durable),
    "loop": ("statemill run on a 10,000-state Choice+Pass loop and a Task loop, against raw commits", run_loop),
}
DEPENDS = {"durable": ("ceiling", "interpreter"), "loop": ("ceiling",)}
