"""Scaling with worker processes on SQLite and PostgreSQL, and where PostgreSQL itself becomes the limit.

For each database and each workload, the executions are started first (start cost is not timed). Then K worker
processes (kept across cells, so Python's start-up is paid once) each open a new Engine on the cell's database and
compile its definitions. All are told to go at the same moment. The clock runs from "go" to the ``stopped_at`` of the last execution. Transitions are the
``*StateEntered`` events in the history, counted with one SQL query. A sampler watches CPU from /proc (the worker
processes, this database's PostgreSQL backends and the whole machine) and, on PostgreSQL, what the sessions are
doing (pg_stat_activity).

    python bench/run.py scaling            # (with bench_scaling in run.py's MODULES)
    python bench/bench_scaling.py [--quick] # the same, standalone
    python bench/bench_scaling.py --worker DBURL [--concurrency N] [--deadline S]   # one worker, one cell
    python bench/bench_scaling.py --worker --serve   # one worker serving the cells named on stdin (the suite's)

PostgreSQL: ``$STATEMILL_BENCH_POSTGRES_URL`` (a server URL), else postgresql://postgres@127.0.0.1:5432/postgres.
A throwaway database is created for the run and dropped at the end. When no server answers, that half is
skipped and the reason is printed.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import Context, Result  # noqa: E402
from workloads import ORDER_INPUT, TASK_RESULT, mixed_chain, pass_chain, task_chain  # noqa: E402

SERVER = os.environ.get("STATEMILL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# A part of the matrix only: e.g. STATEMILL_BENCH_WORKLOADS=mappass STATEMILL_BENCH_DATABASES=postgresql (the
# PostgreSQL ceiling and pgbench then run only when workload (a) does).
ONLY_WORKLOADS = {w for w in os.environ.get("STATEMILL_BENCH_WORKLOADS", "").split(",") if w}
ONLY_DATABASES = {d for d in os.environ.get("STATEMILL_BENCH_DATABASES", "").split(",") if d}
SLEEP = 0.02  # the I/O-bound handlers' sleep, seconds
SLEEP_RESOURCE = "bench:sleep20"
CELL_LIMIT = 120.0  # a cell whose workers have not finished by then is stopped and reported
SAMPLE_SECONDS = 0.2
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
GROUP_SQLITE = "scaling on SQLite (a file in the temp folder): transitions/s (*StateEntered events) by worker processes"
GROUP_PG = "scaling on a PostgreSQL server (same machine): transitions/s by worker processes"
GROUP_CEILING = "scaling: PostgreSQL's own ceiling (workload a with more processes; CPU from /proc)"


# ================================================================================================ the worker process
def _sleep_handler(value):
    time.sleep(SLEEP)
    return TASK_RESULT


def worker_main(argv: list[str]) -> int:
    """A worker process. With DBURL: warm up, print ``ready``, wait for a line on stdin, serve every execution in
    the database until none is RUNNING, print a JSON report (states entered here, CPU seconds, SQLite lock times).
    With ``--serve``: the same for each cell named on stdin (a JSON line: url, concurrency, deadline) until EOF,
    so the suite pays the interpreter's start-up and imports once per process, not once per cell."""
    parser = argparse.ArgumentParser(prog="bench_scaling.py --worker")
    parser.add_argument("db_url", nargs="?")
    parser.add_argument("--serve", action="store_true", help="serve the cells named on stdin, one JSON line each")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=CELL_LIMIT, help="give up after this many seconds")
    args = parser.parse_args(argv)
    if not args.serve:
        if not args.db_url:
            parser.error("DBURL is required without --serve")
        return 0 if serve_cell(args.db_url, args.concurrency, args.deadline) == 0 else 3
    for line in sys.stdin:
        if line.strip():
            cell = json.loads(line)
            serve_cell(cell["url"], cell["concurrency"], cell["deadline"])
    return 0


def serve_cell(db_url: str, concurrency: int, deadline: float) -> int:
    """One cell in this process (see ``worker_main``); returns how many executions were still RUNNING."""
    from statemill.engine import Engine
    from statemill.engine.store.schema import executions, state_machines

    engine = Engine(db_url)
    engine.handler(SLEEP_RESOURCE)(_sleep_handler)
    with engine.reader.connect() as conn:  # compile what is registered: the steady state, not the first call
        for machine_id in conn.execute(sa.select(state_machines.c.id)).scalars():
            engine.machine(machine_id)
    running_query = sa.select(sa.func.count()).select_from(executions).where(executions.c.status == "RUNNING")
    entered = [0]

    def on_event(info: dict) -> None:
        entered[0] += sum(1 for event in info["events"] if str(event[0]).endswith("StateEntered"))

    checked = {"at": 0.0, "running": 1}
    give_up = float("inf")

    def finished() -> bool:
        """No execution RUNNING, asked at most every 0.1 s (the loop asks before every claim)."""
        now = time.monotonic()
        if now - checked["at"] >= 0.1:
            with engine.reader.connect() as conn:
                checked["running"] = conn.execute(running_query).scalar()
            checked["at"] = now
        return checked["running"] == 0 or now > give_up

    lock = SqliteLockTimer(engine.db) if engine.db.dialect.name == "sqlite" else None
    worker = engine.worker(concurrency=concurrency, on_event=on_event)
    print("ready", flush=True)
    sys.stdin.readline()
    give_up = time.monotonic() + deadline
    cpu = time.process_time()

    def watch() -> None:  # the worker runs as `statemill worker` does (no ``until``: its threads claim as they commit)
        while not finished():
            time.sleep(0.02)
        worker.stop()

    threading.Thread(target=watch, daemon=True).start()
    try:
        worker.run()
    finally:
        worker.close()
    with engine.reader.connect() as conn:
        left = conn.execute(running_query).scalar()
    report = {"entered": entered[0], "cpu": time.process_time() - cpu, "pid": os.getpid(), "running": left}
    if lock is not None:
        report.update(lock.totals())
    print(json.dumps(report), flush=True)
    engine.db.dispose()
    return left


class SqliteLockTimer:
    """Times SQLite's write lock in a worker: waiting in ``BEGIN IMMEDIATE``, and holding it until COMMIT or
    ROLLBACK. statemill's own ``begin`` listener (which sends BEGIN IMMEDIATE) is swapped for a timed call of the
    same function, so the cost is a few calls per transaction, not per statement. Reads take no lock: skipped."""

    def __init__(self, engine):
        from statemill.engine.store import db
        self.lock = threading.Lock()
        self.waited = self.held = 0.0
        self.writes = 0
        self.begin = db._sqlite_begin
        sa.event.remove(engine, "begin", self.begin)
        sa.event.listen(engine, "begin", self._begin)
        sa.event.listen(engine, "commit", self._released)
        sa.event.listen(engine, "rollback", self._released)

    def _begin(self, conn) -> None:
        if not self._writer(conn):
            self.begin(conn)
            return
        asked = time.perf_counter()
        self.begin(conn)
        now = time.perf_counter()
        conn.info["bench_got"] = now
        with self.lock:
            self.waited += now - asked
            self.writes += 1

    @staticmethod
    def _writer(conn) -> bool:
        return not conn.get_execution_options().get("statemill_read_only")

    def _released(self, conn) -> None:
        got = conn.info.pop("bench_got", None)
        if got is not None:
            with self.lock:
                self.held += time.perf_counter() - got

    def totals(self) -> dict[str, float]:
        with self.lock:
            return {"lock_waited": self.waited, "lock_held": self.held, "writes": self.writes}


# ================================================================================================ workloads
@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    definition: dict
    executions: int
    input: Any
    concurrency: int  # per worker process
    note: str


def map_of(processor: dict) -> dict:
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"StartAt": "Item", "States": {"Item": processor}}}}}


def workloads(ctx: Context) -> list[Workload]:
    """The workloads, or those named in ``$STATEMILL_BENCH_WORKLOADS`` (comma-separated keys, e.g. ``mappass``)."""
    chosen = [w for w in _workloads(ctx) if not ONLY_WORKLOADS or w.key in ONLY_WORKLOADS]
    return chosen


def _workloads(ctx: Context) -> list[Workload]:
    chain_runs, sleepers, items = ctx.pick((40, 200, 1000), (8, 40, 200))
    states = 50
    tasks = 5
    item_input = {"items": [{"i": i, "v": [0, False, "", None]} for i in range(items)]}
    return [
        Workload("chain", f"(a) {chain_runs} x {states}-state Pass/Choice chain", mixed_chain(states), chain_runs,
                 ORDER_INPUT, 4, "CPU-bound: Pass with Parameters/intrinsic, Choice with a compound rule"),
        Workload("sleep", f"(b) {sleepers} x {tasks} Tasks sleeping {SLEEP * 1e3:.0f} ms",
                 task_chain(tasks, SLEEP_RESOURCE), sleepers, ORDER_INPUT, 16,
                 "I/O-bound handlers; a Task is 2 transactions (schedule, result)"),
        Workload("mappass", f"(c) Map of {items} items, iteration = 1 Pass", map_of({"Type": "Pass", "End": True}),
                 1, item_input, 4, "one execution: every iteration commits against the same execution row"),
        Workload("mapsleep", f"(c') Map of {items} items, iteration = 1 Task sleeping {SLEEP * 1e3:.0f} ms",
                 map_of({"Type": "Task", "Resource": SLEEP_RESOURCE, "End": True}), 1, item_input, 16,
                 "one execution, I/O-bound iterations"),
    ]


# ================================================================================================ databases
class SqliteTarget:
    name = "SQLite"
    dialect = "sqlite"

    def __init__(self, folder: Path):
        self.folder = folder
        self.url = ""
        self.cells = 0

    def fresh(self) -> str:
        """A new database file for the next cell."""
        self.cells += 1
        self.url = f"sqlite:///{self.folder / f'cell{self.cells}.db'}"
        return self.url

    def close(self) -> None:
        pass


class PostgresTarget:
    name = "PostgreSQL"
    dialect = "postgresql"

    def __init__(self, server: str):
        self.server = server
        self.admin = sa.create_engine(_psycopg(server), isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:  # raises when no server answers
            conn.execute(sa.text("SELECT 1"))
            self.version = conn.execute(sa.text("SHOW server_version")).scalar()
            self.settings = {k: conn.execute(sa.text(f"SHOW {k}")).scalar()
                             for k in ("max_connections", "synchronous_commit", "shared_buffers")}
        self.dbname = f"statemill_bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.dbname}"'))
        self.url = server.rsplit("/", 1)[0] + "/" + self.dbname

    def fresh(self) -> str:
        """Empty every table (the schema stays) so each cell starts from the same, unbloated state."""
        from statemill.engine.store.db import open_engine
        from statemill.engine.store.schema import metadata
        engine = open_engine(self.url)
        names = ", ".join(t.name for t in metadata.sorted_tables if t.name != "statemill_schema")
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return self.url

    def recreate(self) -> str:
        """A new, empty database (no schema): for cells whose versions differ in schema."""
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{self.dbname}"'))
        return self.url

    def commits(self) -> int:
        with self.admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            return conn.execute(sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = :d"),
                                {"d": self.dbname}).scalar() or 0

    def close(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)'))
        self.admin.dispose()


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


# ================================================================================================ sampling
def _proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over its cores."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values) - idle) / TICK, sum(values) / TICK


class Sampler(threading.Thread):
    """Every SAMPLE_SECONDS: cumulative CPU seconds of the workers, of this database's PostgreSQL processes and of
    the machine; on PostgreSQL also what this database's sessions are doing (active session sampling)."""

    SHARED = ("walwriter", "checkpointer", "background writer")

    def __init__(self, worker_pids: list[int], target):
        super().__init__(daemon=True, name="bench-sampler")
        self.worker_pids = worker_pids
        self.target = target if isinstance(target, PostgresTarget) else None
        self.samples: list[tuple[float, float, float, float, float]] = []  # t, busy, total, workers, postgres
        self.states: Counter[str] = Counter()
        self.sessions = 0  # samples of pg_stat_activity taken
        self.stop_event = threading.Event()
        self._last: dict[int, float] = {}
        self._pg_total = 0.0
        self._first_pg = True

    def run(self) -> None:
        conn = self.target.admin.connect() if self.target is not None else None
        try:
            while True:
                self.sample(conn)
                if self.stop_event.wait(SAMPLE_SECONDS):
                    self.sample(conn)
                    break
        finally:
            if conn is not None:
                conn.close()

    def sample(self, conn) -> None:
        pg = 0.0
        if conn is not None:
            rows = conn.execute(sa.text(
                "SELECT pid, datname, backend_type, state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid()")).all()
            mine = [r for r in rows if r.datname == self.target.dbname]
            for r in mine:
                if r.backend_type != "client backend" or r.state == "idle":
                    continue
                if r.state == "active":
                    self.states[f"{r.wait_event_type}:{r.wait_event}" if r.wait_event else "active, on CPU"] += 1
                else:
                    self.states[str(r.state)] += 1
            self.sessions += 1
            for r in mine + [r for r in rows if r.backend_type in self.SHARED]:
                now = _proc_cpu(r.pid)
                if now is None:
                    continue
                # Processes seen in the first sample count from there; ones born later from zero.
                before = self._last.get(r.pid, now if self._first_pg else 0.0)
                self._pg_total += max(0.0, now - before)
                self._last[r.pid] = now
            self._first_pg = False
            pg = self._pg_total
        workers = sum(c for c in (_proc_cpu(p) for p in self.worker_pids) if c is not None)
        busy, total = _machine_cpu()
        self.samples.append((time.time(), busy, total, workers, pg))

    def window(self, start: float, end: float) -> dict[str, float]:
        """Average cores used between ``start`` and ``end`` (the samples nearest inside them)."""
        inside = [s for s in self.samples if start - SAMPLE_SECONDS / 2 <= s[0] <= end + SAMPLE_SECONDS / 2]
        if len(inside) < 2:
            return {}
        a, b = inside[0], inside[-1]
        span = b[0] - a[0]
        cores = os.cpu_count() or 1
        return {"workers": (b[3] - a[3]) / span, "postgres": (b[4] - a[4]) / span,
                "machine": cores * (b[1] - a[1]) / max(1e-9, b[2] - a[2]), "seconds": span}


# ================================================================================================ one cell
@dataclass
class Cell:
    db: str
    workload: Workload
    processes: int
    seconds: float = 0.0
    transitions: int = 0
    statuses: Counter = field(default_factory=Counter)
    per_worker: list[int] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    waits: Counter = field(default_factory=Counter)
    wait_samples: int = 0
    commits: int = 0
    lock_waited: float = 0.0
    lock_held: float = 0.0
    writes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.transitions / self.seconds if self.seconds > 0 else 0.0


class WorkerPool:
    """Worker processes (``bench_scaling.py --worker --serve``) kept across cells: each cell still gets a new
    Engine, connections and Worker in them, but Python's start-up and imports are paid once per process."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: list[subprocess.Popen] = []
        self.lines: dict[int, queue.Queue] = {}

    def take(self, count: int) -> list[subprocess.Popen]:
        for proc in [p for p in self.procs if p.poll() is not None]:
            self.procs.remove(proc)  # died since its last cell (its log says why)
        while len(self.procs) < count:
            log = open(self.logs / f"worker-{len(self.procs)}.log", "w")
            proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", "--serve"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                    cwd=str(HERE.parent))
            log.close()  # the child has its own descriptor
            proc.log_path = log.name  # type: ignore[attr-defined]
            self.lines[proc.pid] = queue.Queue()
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()
            self.procs.append(proc)
        return self.procs[:count]

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines[proc.pid].put(line.rstrip("\n"))
        self.lines[proc.pid].put(None)

    @staticmethod
    def send(proc: subprocess.Popen, text: str) -> None:
        proc.stdin.write(text + "\n")
        proc.stdin.flush()

    def receive(self, proc: subprocess.Popen, timeout: float) -> str | None:
        """The process's next stdout line; None when it exited or said nothing in time."""
        try:
            return self.lines[proc.pid].get(timeout=timeout)
        except queue.Empty:
            return None

    def drop(self, proc: subprocess.Popen) -> None:
        """Kill a process that misbehaved; the next cell starts a fresh one."""
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self.procs.remove(proc)

    def close(self) -> None:
        for proc in self.procs:
            try:
                proc.stdin.close()
                proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        self.procs.clear()


def _starting_client(target, url: str):
    """The client that starts the executions. On PostgreSQL its own commits skip the WAL flush
    (synchronous_commit=off for its session only): start cost is not measured, so why wait for the disk."""
    from statemill.engine import Client
    if not isinstance(target, PostgresTarget):
        return Client(url)
    return Client(sa.create_engine(_psycopg(url), connect_args={"options": "-c synchronous_commit=off"}))


def run_cell(target, workload: Workload, processes: int, pool: WorkerPool) -> Cell:
    """Start the executions, warm K workers up, say go, wait; figures from the database and the sampler."""
    from statemill.engine.store.schema import executions, history_events

    cell = Cell(target.name, workload, processes)
    url = target.fresh()
    client = _starting_client(target, url)
    client.register(workload.definition, workload.key)
    procs = pool.take(processes)
    log_sizes = {p.pid: os.path.getsize(p.log_path) for p in procs}
    try:
        # The workers warm up (connect, compile what is registered) while the executions are started.
        for proc in procs:
            pool.send(proc, json.dumps({"url": url, "concurrency": workload.concurrency, "deadline": CELL_LIMIT}))
        for i in range(workload.executions):
            client.start(workload.key, workload.input, name=f"run-{i:04d}")
        for proc in procs:
            line = pool.receive(proc, 120)
            if line != "ready":
                raise RuntimeError(f"worker {proc.pid} did not get ready: {line!r}; see {proc.log_path}")
        commits_before = target.commits() if isinstance(target, PostgresTarget) else 0
        sampler = Sampler([p.pid for p in procs], target)
        sampler.start()
        time.sleep(SAMPLE_SECONDS / 2)  # a first sample before go
        go = time.time()
        for proc in procs:
            pool.send(proc, "go")
        deadline = time.monotonic() + CELL_LIMIT + 15
        for proc in list(procs):
            line = pool.receive(proc, max(1.0, deadline - time.monotonic()))
            try:
                report = json.loads(line or "")
            except ValueError:
                cell.problems.append(f"worker {proc.pid} sent no report ({line!r}): killed")
                pool.drop(proc)
                continue
            cell.per_worker.append(report["entered"])
            cell.lock_waited += report.get("lock_waited", 0.0)
            cell.lock_held += report.get("lock_held", 0.0)
            cell.writes += report.get("writes", 0)
        sampler.stop_event.set()
        sampler.join()
        if isinstance(target, PostgresTarget):
            cell.commits = target.commits() - commits_before
        with client.reader.connect() as conn:
            cell.statuses = Counter(dict(conn.execute(sa.select(executions.c.status, sa.func.count())
                                                      .group_by(executions.c.status)).all()))
            end = conn.execute(sa.select(sa.func.max(executions.c.stopped_at))).scalar()
            cell.transitions = conn.execute(sa.select(sa.func.count()).select_from(history_events)
                                            .where(history_events.c.type.like("%StateEntered"))).scalar()
        if cell.statuses.get("SUCCEEDED", 0) != workload.executions:
            cell.problems.append(f"executions: {dict(cell.statuses)}")
        cell.seconds = (end - go) if end else 0.0
        cell.cpu = sampler.window(go, end or time.time())
        cell.waits, cell.wait_samples = sampler.states, sampler.sessions
        for proc in procs:
            with open(proc.log_path) as log:
                log.seek(log_sizes[proc.pid])
                bad = [line.strip() for line in log if any(w in line for w in ("ERROR", "Error", "Traceback",
                                                                                "WARNING", "failed"))]
            if bad:
                cell.problems.append(f"{len(bad)} error/warning log lines from worker {proc.pid}, first: "
                                     f"{bad[0][:160]}")
    except Exception:
        for proc in procs:  # in an unknown state (waiting for go, or still working): start afresh
            pool.drop(proc)
        raise
    finally:
        client.db.dispose()
    return cell


# ================================================================================================ the benchmark
def _cpu_text(cell: Cell) -> str:
    c = cell.cpu
    if not c:
        return "CPU: too short to sample"
    parts = [f"workers {c['workers']:.2f}"]
    if cell.db == "PostgreSQL":
        parts.append(f"postgres {c['postgres']:.2f}")
    others = c["machine"] - c["workers"] - c["postgres"]
    parts.append(f"whole machine {c['machine']:.2f} of {os.cpu_count()} (other processes ~{max(0.0, others):.2f})")
    return "cores used: " + ", ".join(parts)


def _wait_text(cell: Cell, top: int = 4) -> str:
    if not cell.wait_samples:
        return ""
    total = sum(cell.waits.values())
    parts = [f"{name} {n / cell.wait_samples:.1f}" for name, n in cell.waits.most_common(top)]
    return (f"sessions not idle, on average {total / cell.wait_samples:.1f}: " + ", ".join(parts)) if parts else \
        "sessions: all idle when sampled"


def _note(cell: Cell) -> str:
    w = cell.workload
    text = (f"{cell.transitions} transitions in {cell.seconds:.2f} s; {cell.processes} x concurrency "
            f"{w.concurrency}; {_cpu_text(cell)}")
    if cell.processes > 1 and cell.per_worker:
        text += f"; per process {'/'.join(str(n) for n in cell.per_worker)}"
    if cell.commits:
        text += f"; {cell.commits / max(1, cell.transitions):.1f} transactions per transition (reads included)"
    if cell.writes and cell.seconds:
        text += (f"; write lock held {100 * cell.lock_held / cell.seconds:.0f}% of the time, "
                 f"{cell.lock_waited / cell.seconds:.1f} threads waiting for it on average, "
                 f"{cell.writes / max(1, cell.transitions):.1f} write txns per transition")
    if cell.problems:
        text += "; PROBLEMS: " + " | ".join(cell.problems)
    return text


def _key(cell: Cell) -> str:
    return f"scaling.{cell.db.lower()}.{cell.workload.key}.{cell.processes}"


def _add(ctx: Context, group: str, cell: Cell, base: Cell | None) -> None:
    label = cell.workload.label if cell.processes == 1 else ""
    label = f"{label}, {cell.processes} proc" if label else f"  {cell.processes} processes"
    ctx.add(Result(_key(cell), group, label, cell.rate, "transitions/s",
                   against=(_key(base),) if base is not None and base is not cell else (),
                   short=f"{cell.processes} proc", note=_note(cell)))


def run(ctx: Context) -> None:
    folder = ctx.tmp / "scaling"
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    counts = ctx.pick((1, 2, 4), (1, 2))
    pgbench_waits: list[str] = []
    ceiling_counts = ctx.pick((8,), ())
    chosen = workloads(ctx)
    matrix: dict[tuple[str, str, int], Cell] = {}

    targets: list = [SqliteTarget(folder)] if not ONLY_DATABASES or "sqlite" in ONLY_DATABASES else []
    skipped = None
    try:
        if not ONLY_DATABASES or "postgresql" in ONLY_DATABASES:
            targets.append(PostgresTarget(SERVER))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means: skip that half
        skipped = (f"PostgreSQL half skipped: no server answers at {SERVER} ({type(exc).__name__}: "
                   f"{str(exc).splitlines()[0] if str(exc) else ''}); set STATEMILL_BENCH_POSTGRES_URL")
        print(f"\n  {skipped}", flush=True)

    pool = WorkerPool(logs)
    broken: list[str] = []
    try:
        for target in targets:
            group = GROUP_SQLITE if target.dialect == "sqlite" else GROUP_PG
            try:
                for workload in chosen:
                    base = None
                    for k in counts:
                        print(f" {target.dialect[:2]}:{workload.key}x{k}", end="", flush=True)
                        cell = run_cell(target, workload, k, pool)
                        matrix[(target.name, workload.key, k)] = cell
                        base = base or cell
                        _add(ctx, group, cell, base)
                if isinstance(target, PostgresTarget) and chosen[0].key == "chain":
                    _ceiling(ctx, target, chosen[0], counts, ceiling_counts, matrix, pool)
                    print(" po:pgbench", end="", flush=True)
                    pgbench_waits = _pgbench(ctx, target, logs)
            except Exception as exc:  # noqa: BLE001 - keep the other database's figures, fail at the end
                broken.append(f"{target.name} half stopped: {type(exc).__name__}: {exc}")
                print(f" [{target.name} FAILED]", end="", flush=True)
            finally:
                target.close()
    finally:
        pool.close()
    ctx.report("scaling: transitions/s by worker processes (ratio vs 1 process)",
               "\n".join([_matrix(matrix, chosen, skipped), *broken]))
    waits = [f"{db} {w}x{k}: {_wait_text(c)}" for (db, w, k), c in matrix.items() if c.wait_samples]
    waits += pgbench_waits
    if waits:
        ctx.report("scaling: what PostgreSQL sessions of the bench database were doing (pg_stat_activity, sampled "
                   f"every {SAMPLE_SECONDS:g} s; average sessions per state)", "\n".join(waits))
    if broken:
        raise RuntimeError("; ".join(broken))


def _ceiling(ctx: Context, target: PostgresTarget, workload: Workload, counts, more, matrix,
             pool: WorkerPool) -> None:
    """Workload (a) with more processes than cores; then PostgreSQL's CPU per transition, and what it implies."""
    for k in more:
        print(f" po:{workload.key}x{k}", end="", flush=True)
        cell = run_cell(target, workload, k, pool)
        matrix[(target.name, workload.key, k)] = cell
    cells = [matrix[(target.name, workload.key, k)] for k in (*counts, *more)]
    base = cells[0]
    for cell in cells:
        ctx.add(Result(f"scaling.ceiling.{cell.processes}", GROUP_CEILING,
                       f"(a) on PostgreSQL, {cell.processes} proc", cell.rate, "transitions/s",
                       against=(_key(base),) if cell is not base else (), short=f"(a) {cell.processes} proc",
                       note=f"{_cpu_text(cell)}; {_wait_text(cell, 3)}"))
    best = max(cells, key=lambda c: c.rate)
    measured = [c for c in cells if c.cpu and c.cpu.get("postgres")]
    if not measured:
        return
    # PostgreSQL's own CPU per transition, from the cell where it did the most work per second.
    busiest = max(measured, key=lambda c: c.cpu["postgres"])
    pg_per = busiest.cpu["postgres"] * busiest.seconds / busiest.transitions
    wk_per = busiest.cpu["workers"] * busiest.seconds / busiest.transitions
    cores = os.cpu_count() or 1
    ctx.add(Result("scaling.ceiling.pgcpu", GROUP_CEILING, "PostgreSQL CPU per transition", pg_per * 1e6, "µs",
                   higher_is_better=False,
                   note=f"this database's backends + walwriter/checkpointer/bgwriter, in the {busiest.processes}-"
                        f"process run; the workers spent {wk_per * 1e6:.0f} µs per transition "
                        f"({wk_per / pg_per:.1f}x the server)"))
    ctx.add(Result("scaling.ceiling.peak", GROUP_CEILING, "highest rate measured on PostgreSQL", best.rate,
                   "transitions/s", short="PG peak",
                   note=f"workload (a) at {best.processes} process{'es' if best.processes > 1 else ''}; the "
                        f"workers and the server share {cores} cores"))
    ctx.add(Result("scaling.ceiling.cpu", GROUP_CEILING,
                   f"PostgreSQL CPU limit if it had all {cores} cores", cores / pg_per, "transitions/s",
                   against=("scaling.ceiling.peak",),
                   note="extrapolated (cores / server CPU per transition): the workers on other machines, and no "
                        "lock or WAL-flush limit reached first"))


# ================================================================================================ pgbench
def _find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def _sql_text(value: Any) -> str:
    """A JSON value as an SQL string literal. json.dumps puts a space after every colon, so pgbench never reads
    ``:name`` inside it as one of its variables."""
    return "'" + json.dumps(value).replace("'", "''") + "'"


def _pgbench_script(one_execution: bool) -> str:
    """One Pass transition's SQL as runtime.commit sends it: lock the execution's counter, move the frame, two
    history events, move the counter. Each client has its own execution, or all share execution 1 (as a Map's
    iterations do)."""
    text = json.dumps(ORDER_INPUT)
    entered = {"name": "S00001", "input": text, "inputDetails": {"truncated": False}}
    exited = {"name": "S00001", "output": text, "outputDetails": {"truncated": False}}
    return "\n".join([
        "\\set xe 1" if one_execution else "\\set xe :client_id + 1",
        "\\set xf :client_id + 1",
        "BEGIN;",
        "SELECT status, event_count AS xbase FROM executions WHERE id = :xe FOR UPDATE \\gset",
        "UPDATE frames SET version = version + 1, last_event_id = :xbase + 2, state = 'S00001', phase = 'enter', "
        f"input = {_sql_text(ORDER_INPUT)}, data = {_sql_text({'iteration': None})}, run_at = 0, "
        "lease_owner = 'bench', lease_until = 30 WHERE id = :xf AND status = 'ACTIVE';",
        "INSERT INTO history_events (execution_id, id, previous_event_id, frame_id, type, timestamp, details) "
        f"VALUES (:xe, :xbase + 1, :xbase, :xf, 'PassStateEntered', 0, {_sql_text(entered)}), "
        f"(:xe, :xbase + 2, :xbase + 1, :xf, 'PassStateExited', 0, {_sql_text(exited)});",
        "UPDATE executions SET event_count = :xbase + 2 WHERE id = :xe;",
        "END;", ""])


def _pgbench(ctx: Context, target: PostgresTarget, logs: Path) -> list[str]:
    """PostgreSQL without statemill's workers: pgbench (a C client) replays one transition's SQL on real rows."""
    from statemill.engine import Client
    binary = _find_pgbench()
    if binary is None:
        ctx.add(Result("scaling.pgbench.none", GROUP_CEILING, "pgbench replay of a transition's SQL", 0.0,
                       "transitions/s", note="skipped: no pgbench on PATH or in /usr/lib/postgresql/*/bin"))
        return []
    clients_list = ctx.pick((1, 4, 16, 32), (16,))
    seconds = ctx.pick(3, 1)
    url = sa.engine.make_url(_psycopg(target.fresh()))
    client = Client(target.url)
    client.register(pass_chain(2), "pgbench")
    for i in range(max(clients_list)):
        client.start("pgbench", ORDER_INPUT, name=f"pgbench-{i:03d}")  # execution i+1 with root frame i+1
    client.db.dispose()
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    waits, base_key, best = [], None, 0.0
    for one, clients in [(False, c) for c in clients_list] + [(True, 16)]:
        script = logs / f"pgbench-{'one' if one else 'own'}.sql"
        script.write_text(_pgbench_script(one))
        command = [binary, "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
                   "-T", str(seconds), "-f", str(script), "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                   "-U", url.username or "postgres", url.database]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        sampler = Sampler([proc.pid], target)
        sampler.start()
        started = time.time()
        out, err = proc.communicate(timeout=seconds + 60)
        ended = time.time()
        sampler.stop_event.set()
        sampler.join()
        found = re.search(r"tps = ([\d.]+)", out)
        failed = re.search(r"number of failed transactions: (\d+)", out)
        if proc.returncode != 0 or not found:
            lines = (err or out).strip().splitlines()
            ctx.add(Result(f"scaling.pgbench.failed.{clients}", GROUP_CEILING, f"pgbench, {clients} clients", 0.0,
                           "transitions/s", note=f"pgbench failed ({proc.returncode}): {lines[-1] if lines else ''}"))
            continue
        rate = float(found.group(1))
        cpu = sampler.window(started + 0.3, ended - 0.1)  # connection set-up left out
        cell = Cell("PostgreSQL", Workload("pgbench", "", {}, 0, None, clients, ""), 1, cpu=cpu,
                    waits=sampler.states, wait_samples=sampler.sessions)
        cpu_text = (f"cores used: postgres {cpu['postgres']:.2f}, pgbench {cpu['workers']:.2f}, whole machine "
                    f"{cpu['machine']:.2f} of {os.cpu_count()}") if cpu else ""
        what = "all on one execution (a Map's iterations)" if one else "each its own execution"
        key = f"scaling.pgbench.{'one' if one else 'own'}.{clients}"
        note = f"{cpu_text}; {_wait_text(cell, 3)}"
        if cpu and cpu["postgres"]:
            note += f"; {1e6 * cpu['postgres'] / rate:.0f} µs of server CPU per transition"
        if failed and int(failed.group(1)):
            note += f"; {failed.group(1)} failed transactions"
        ctx.add(Result(key, GROUP_CEILING, f"pgbench, 1 transition's SQL, {clients} clients, {what}", rate,
                       "transitions/s", against=(base_key,) if base_key and not one else
                       (("scaling.pgbench.own.16",) if one else ()),
                       short=f"pgbench {clients} clients", note=note))
        base_key = base_key or key
        if not one:
            best = max(best, rate)
        waits.append(f"pgbench {clients} clients, {what}: {_wait_text(cell)}")
    ctx.add(Result("scaling.pgbench.best", GROUP_CEILING, "PostgreSQL alone, best pgbench rate", best,
                   "transitions/s", short="PostgreSQL alone", against=("scaling.ceiling.peak",),
                   note="the server's ceiling for statemill's per-transition SQL on this machine (pgbench's C client "
                        "shares the cores); the ratio says how far the workers are below it"))
    return waits


def _matrix(matrix: dict, chosen: list[Workload], skipped: str | None) -> str:
    all_counts = sorted({k for (_db, _w, k) in matrix})
    width = max(len(w.label) for w in chosen) + 2
    head = f"{'':<11}{'workload':<{width}}" + "".join(f"{f'{k} proc':>16}" for k in all_counts)
    lines = [head]
    for db in ("SQLite", "PostgreSQL"):
        for workload in chosen:
            cells = {k: matrix.get((db, workload.key, k)) for k in all_counts}
            if not any(cells.values()):
                continue
            base = cells.get(1)
            row = f"{db:<11}{workload.label:<{width}}"
            for k in all_counts:
                cell = cells[k]
                if cell is None:
                    row += f"{'':>16}"
                    continue
                ratio = f" ({cell.rate / base.rate:.2f}x)" if base and base.rate and k != 1 else ""
                flag = "!" if cell.problems else ""
                row += f"{f'{cell.rate:,.0f}{ratio}{flag}':>16}"
            lines.append(row)
    lines.append("figures: transitions/s (= *StateEntered events / seconds from go to the last execution's end); "
                 "(ratio vs 1 process); ! = problems, see the note in the table")
    if skipped:
        lines.append(skipped)
    return "\n".join(lines)


BENCHMARKS = {"scaling": ("worker processes 1/2/4 on SQLite and PostgreSQL: Pass/Choice chains, 20 ms handlers, "
                          "a Map of 1,000 items; PostgreSQL's own ceiling", run)}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1:])
    import run as suite
    if "bench_scaling" not in suite.MODULES:
        suite.MODULES.append("bench_scaling")
    return suite.main(["scaling", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
