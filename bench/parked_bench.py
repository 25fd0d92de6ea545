"""Parked work at scale: N executions waiting on timers and task tokens cost the worker no memory, and all resume.

    python bench/parked_bench.py                      # 2,000 executions (half timers, half tokens), Wait 60 s
    python bench/parked_bench.py --quick              # 400, Wait 20 s
    python bench/parked_bench.py --executions 100000 --wait 1800   # the issue's scale (allow an hour or more)
    python bench/parked_bench.py --db sqlite          # one database (default: SQLite, and PostgreSQL if it answers)

For each database, one worker process serves everything, and this process:
1. warms the worker up (10 x concurrency executions, so every thread of its pool has run) and records its memory
   idle (resident size, Python objects, SQLite's own allocations, the execution-info cache; the worker answers
   SIGUSR1 with them);
2. starts N executions, alternately a Wait of ``--wait`` seconds and a ``.waitForTaskToken`` task (the first
   ``--single`` one by one with ``Client.start``, the rest with ``Client.start_many``, a batch per transaction: both
   rates are printed), and waits until the worker has parked all of them (timers waiting, tokens handed out),
   sampling the worker's RSS meanwhile;
3. records its memory with everything parked (the aim: within 10% of idle);
4. answers every token (send_task_success) and lets the timers fire, and times until all N have succeeded.

``--wait`` must outlast the parking, or timers fire before all are parked (the bench says so).
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worker_process import arguments, each_database, serve as serve_notify, spawn, stop, wait_until  # noqa: E402

DEFINITION = {
    "StartAt": "Kind",
    "States": {
        "Kind": {"Type": "Choice", "Choices": [{"Variable": "$.timer", "BooleanEquals": True, "Next": "Sleep"}],
                 "Default": "Ask"},
        "Sleep": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Done"},
        "Ask": {"Type": "Task", "Resource": "bench.notify.waitForTaskToken",
                "Parameters": {"token.$": "$$.Task.Token", "n.$": "$.n"}, "ResultPath": "$.answer", "Next": "Done"},
        "Done": {"Type": "Pass", "End": True},
    },
}


# ----------------------------------------------------------------------------------------------- the worker
def serve(url: str, poll: float, concurrency: int) -> None:
    """The worker process, which also answers SIGUSR1 with its ``memory()``."""
    serve_notify(url, poll, concurrency, lambda engine: signal.signal(
        signal.SIGUSR1, lambda *_: print(json.dumps(memory(engine)), flush=True)))


def memory(engine) -> dict:
    """The worker's memory, split so a growth can be told apart: resident (Linux /proc), Python objects (allocated
    blocks after a collection), SQLite's own allocations (page caches of the pooled connections, when the library
    exposes sqlite3_memory_used) and the client's execution-info cache."""
    gc.collect()
    found = {"rss_mib": rss_mib(os.getpid()), "python_blocks": sys.getallocatedblocks(), "sqlite_mib": None,
             "info_cache": len(getattr(engine, "_infos", ()))}
    try:
        if engine.db.dialect.name != "sqlite":
            raise ImportError
        import _sqlite3
        used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
        used.restype = ctypes.c_int64
        found["sqlite_mib"] = used() / 2**20
    except (ImportError, OSError, AttributeError):
        pass
    return found


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def probe(worker) -> dict:
    """Ask the worker process for ``memory()`` (SIGUSR1; it answers with one JSON line)."""
    worker.send_signal(signal.SIGUSR1)
    return json.loads(worker.stdout.readline())


class PeakRss(threading.Thread):
    """The highest RSS of process ``pid`` seen, sampled every half second until ``halt()``."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._halt = pid, 0.0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self._halt.wait(0.5):
            self.peak = max(self.peak, rss_mib(self.pid) or 0.0)

    def halt(self) -> float:
        self._halt.set()
        self.join()
        return self.peak


# ----------------------------------------------------------------------------------------------- counting
def counts(client) -> dict:
    """Executions by where they stand: parked on a timer or a token, succeeded."""
    from statemill.engine.store.schema import executions, frames
    with client.db.connect() as conn:
        phases = dict(conn.execute(sa.select(frames.c.phase, sa.func.count())
                                   .where(frames.c.status == "ACTIVE", frames.c.parent_id.is_(None))
                                   .group_by(frames.c.phase)).all())
        done = conn.execute(sa.select(sa.func.count()).select_from(executions)
                            .where(executions.c.status == "SUCCEEDED")).scalar()
    return {"timers": phases.get("wait", 0), "tokens": phases.get("callback", 0), "succeeded": done}


def pending_tokens(client) -> list[str]:
    from statemill.engine.store.schema import task_tokens
    with client.db.connect() as conn:
        return conn.execute(sa.select(task_tokens.c.token).where(task_tokens.c.status == "PENDING")
                            .order_by(task_tokens.c.created_at)).scalars().all()


def describe(before: dict, after: dict, n: int) -> str:
    rss = after["rss_mib"] - before["rss_mib"]
    blocks = after["python_blocks"] - before["python_blocks"]
    text = (f"RSS {before['rss_mib']:.1f} -> {after['rss_mib']:.1f} MiB ({rss:+.1f}, {100 * rss / before['rss_mib']:+.1f}%)"
            f"; Python objects {blocks:+,} blocks ({blocks / n:+.2f} per execution)")
    if before["sqlite_mib"] is not None:
        text += f"; SQLite's own {before['sqlite_mib']:.1f} -> {after['sqlite_mib']:.1f} MiB"
    return text + f"; execution-info cache {before['info_cache']} -> {after['info_cache']} entries"


# ----------------------------------------------------------------------------------------------- one database
def measure(url: str, args) -> dict:
    from statemill.engine import Client
    client = Client(url)
    machine = client.register(DEFINITION, "parked")["name"]
    worker = spawn(__file__, url, args.poll, args.concurrency)
    n, result = args.executions, {}
    try:
        # Warm up: imports, compiled SQL, caches, and every thread of the worker's pool (each has a stack and its
        # own malloc arena), so that "idle" is the worker's steady state, not its state before any work.
        warm = 10 * args.concurrency
        for i in range(warm):
            client.start(machine, {"n": i, "timer": i % 2 == 0, "wait": 0}, name=f"warm-{i}")
        wait_until(lambda: counts(client)["tokens"] == warm // 2, 300, every=0.05)
        for token in pending_tokens(client):
            client.send_task_success(token, "{}")
        wait_until(lambda: counts(client)["succeeded"] == warm, 300, every=0.05)
        time.sleep(2 * args.poll + 1)
        idle = probe(worker)
        base = counts(client)["succeeded"]

        peak = PeakRss(worker.pid)
        began = time.monotonic()
        first_due = began + args.wait

        def item(i: int) -> dict:
            return {"n": i, "timer": i % 2 == 0, "wait": args.wait, "flag": False, "text": "", "nothing": None}

        single = min(args.single, n)  # one start() each: the rate before Client.start_many, in the same run
        for i in range(single):
            client.start(machine, item(i), name=f"e{i}")
        single_s = time.monotonic() - began
        client.start_many(machine, (item(i) for i in range(single, n)), names=(f"e{i}" for i in range(single, n)),
                          batch=args.batch)
        started = time.monotonic() - began
        last_due = time.monotonic() + args.wait
        bulk_s = started - single_s
        print(f"{client.db.dialect.name:>10}: started {n:,} in {started:.1f} s: {single:,} with start() "
              f"{single / single_s:,.0f}/s, {n - single:,} with start_many(batch={args.batch}) "
              f"{(n - single) / bulk_s:,.0f}/s", flush=True)
        timers, tokens = (n + 1) // 2, n // 2
        every = max(0.2, n / 50_000)  # counting reads every frame: not 5 times a second at 100,000
        wait_until(lambda: (lambda c: c["tokens"] >= tokens and c["timers"] + c["succeeded"] - base >= timers)
                   (counts(client)), 3600, every=every)
        parked_s = time.monotonic() - began
        fired_early = time.monotonic() > first_due
        parked = probe(worker)
        peak_parking = peak.halt()

        began = time.monotonic()
        answered = pending_tokens(client)
        for token in answered:
            client.send_task_success(token, '{"approved": true, "count": 0}')
        answer_s = time.monotonic() - began
        wait_until(lambda: counts(client)["succeeded"] - base >= n, 3600 + args.wait, every=every)
        resumed_at = time.monotonic()
        resumed = probe(worker)
        result = {"db": client.db.dialect.name, "executions": n, "wait_s": args.wait,
                  "start_s": round(started, 1),
                  "start_rate_single": round(single / single_s, 1) if single else None,
                  "start_rate_bulk": round((n - single) / bulk_s, 1) if n > single else None, "park_s": round(parked_s, 1), "timers_fired_before_parked": fired_early,
                  "answer_s": round(answer_s, 1), "resume_s": round(resumed_at - began, 1),
                  "all_done_after_last_timer_due_s": round(resumed_at - last_due, 1),
                  "memory": {"idle": idle, "parked": parked, "resumed": resumed,
                             "peak_rss_while_parking_mib": round(peak_parking, 1)},
                  "parked_rss_vs_idle": round(parked["rss_mib"] / idle["rss_mib"], 3)}
    finally:
        stop(worker)
        client.db.dispose()
    print(f"{result['db']:>10}: {n:,} executions started in {result['start_s']} s and parked after "
          f"{result['park_s']} s ({n / parked_s:,.0f}/s)"
          + (" -- timers fired before all were parked: raise --wait" if fired_early else ""), flush=True)
    if result["start_rate_single"] and result["start_rate_bulk"]:
        print(f"{'':>10}  start rate (while the worker parks them): start() {result['start_rate_single']:,.0f}/s, "
              f"start_many {result['start_rate_bulk']:,.0f}/s ({result['start_rate_bulk'] / result['start_rate_single']:.1f}x)",
              flush=True)
    print(f"{'':>10}  memory idle -> parked: {describe(idle, parked, n)}; peak RSS while parking "
          f"{peak_parking:.1f} MiB", flush=True)
    print(f"{'':>10}  resumed all {n:,}: tokens answered in {answer_s:.1f} s, all succeeded {result['resume_s']} s "
          f"after the first answer ({result['all_done_after_last_timer_due_s']} s after the last timer was due)", flush=True)
    print(f"{'':>10}  memory idle -> resumed: {describe(idle, resumed, n)}", flush=True)
    return result


def main() -> None:
    parser = arguments(__doc__, "400 executions, Wait 20 s")
    parser.add_argument("--executions", type=int, help="executions to park (default 2,000; --quick 400)")
    parser.add_argument("--wait", type=float, help="seconds the timers wait (default 60; --quick 20)")
    parser.add_argument("--single", type=int, default=1000, help="executions started one by one with start() "
                        "before the rest go through start_many, to compare the rates (default 1,000)")
    parser.add_argument("--batch", type=int, default=500, help="start_many's executions per transaction")
    args = parser.parse_args()
    if args.worker:
        serve(args.worker, args.poll, args.concurrency)
        return
    args.executions = args.executions or (400 if args.quick else 2_000)
    args.wait = args.wait if args.wait is not None else (20.0 if args.quick else 60.0)
    each_database(args, "parked-work", f"{args.executions:,} executions (half timers of {args.wait:g} s, half "
                  f"tokens), poll {args.poll}s, concurrency {args.concurrency}", measure)


if __name__ == "__main__":
    main()
