"""Task-token callbacks, measured with a real worker process (issue 4, "Measured").

    python bench/callbacks_bench.py             # 10,000 parked executions, 100 latency samples (under 3 min on 2 CPUs)
    python bench/callbacks_bench.py --quick     # 1,000 parked, 30 samples (under a minute)
    python bench/callbacks_bench.py --db postgresql://...   # another database (default: a temp SQLite file)

1. Latency: one execution at a time parks on a token; at a random moment of the worker's poll cycle this process
   calls ``send_task_success`` and we measure until the worker has entered the next state (the
   ``PassStateEntered`` event's timestamp; same machine, same clock). The worker polls every ``--poll`` seconds on
   SQLite; on PostgreSQL a NOTIFY wakes it at once.
2. Parking: N executions are started and the worker hands out their tokens. The worker's memory before and after
   (resident size, Python objects, SQLite's own allocations, the execution-info cache) shows a parked execution
   costs it nothing: it lives in the database only.
3. Resuming: every token is answered from this process; we time the answers and the worker finishing them all.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

DEFINITION = {
    "StartAt": "Ask",
    "States": {
        "Ask": {"Type": "Task", "Resource": "bench.notify.waitForTaskToken",
                "Parameters": {"token.$": "$$.Task.Token", "n.$": "$.n"}, "ResultPath": "$.answer", "Next": "Done"},
        "Done": {"Type": "Pass", "End": True},
    },
}


# ----------------------------------------------------------------------------------------------- the worker
def serve(url: str, poll: float, concurrency: int) -> None:
    """The worker process: a handler that hands the token out (returns at once), and the worker loop."""
    from statemill.engine import Engine

    engine = Engine(url)
    engine.handler("bench.notify")(lambda value: {"handed_out": True})
    worker = engine.worker(poll_seconds=poll, concurrency=concurrency)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGUSR1, lambda *_: print(json.dumps(memory(engine)), flush=True))
    print("ready", flush=True)
    try:
        worker.run()
    finally:
        worker.close()


def memory(engine) -> dict:
    """The worker's memory, split so a growth can be told apart: resident (Linux /proc), Python objects (allocated
    blocks after a collection), SQLite's own allocations (page caches of the pooled connections, when the library
    exposes sqlite3_memory_used) and the client's execution-info cache."""
    gc.collect()
    found = {"rss_mib": None, "python_blocks": sys.getallocatedblocks(), "sqlite_mib": None,
             "info_cache": len(getattr(engine, "_infos", ()))}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            found["rss_mib"] = int(line.split()[1]) / 1024
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


def probe(worker: subprocess.Popen) -> dict:
    """Ask the worker process for ``memory()`` (SIGUSR1; it answers with one JSON line)."""
    worker.send_signal(signal.SIGUSR1)
    return json.loads(worker.stdout.readline())


# ----------------------------------------------------------------------------------------------- helpers
def count(client, query) -> int:
    with client.db.connect() as conn:
        return conn.execute(query).scalar()


def wait_until(check, timeout: float, every: float = 0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError("the worker did not get there in time")


def parked(client) -> int:
    from statemill.engine.store.schema import frames
    return count(client, sa.select(sa.func.count()).select_from(frames)
                 .where(frames.c.status == "ACTIVE", frames.c.phase == "callback"))


def succeeded(client) -> int:
    from statemill.engine.store.schema import executions
    return count(client, sa.select(sa.func.count()).select_from(executions)
                 .where(executions.c.status == "SUCCEEDED"))


def pending_tokens(client) -> list[str]:
    from statemill.engine.store.schema import task_tokens
    with client.db.connect() as conn:
        return conn.execute(sa.select(task_tokens.c.token).where(task_tokens.c.status == "PENDING")
                            .order_by(task_tokens.c.created_at)).scalars().all()


def park(client, machine: str, first: int, n: int, timeout: float) -> tuple[float, float]:
    """Start ``n`` executions and wait until all of them wait on a token: (seconds to start, seconds to park)."""
    base = parked(client)
    began = time.perf_counter()
    for i in range(first, first + n):
        client.start(machine, {"n": i, "flag": False, "text": "", "nothing": None}, name=f"e{i}")
    started = time.perf_counter()
    wait_until(lambda: parked(client) >= base + n, timeout, every=0.05)
    return started - began, time.perf_counter() - began


def resume(client, tokens: list[str], timeout: float) -> tuple[float, float]:
    """Answer ``tokens`` and wait until their executions succeeded: (seconds to answer, seconds to finish)."""
    base = succeeded(client)
    began = time.perf_counter()
    for token in tokens:
        client.send_task_success(token, '{"approved": true, "count": 0}')
    answered = time.perf_counter()
    wait_until(lambda: succeeded(client) >= base + len(tokens), timeout, every=0.05)
    return answered - began, time.perf_counter() - began


def latency(client, machine: str, samples: int, poll: float) -> list[float]:
    """Seconds from send_task_success to the next state's entered event, one execution at a time. Each answer
    comes at a random moment of the worker's poll cycle, as a person's or another system's would."""
    rng = random.Random(4)
    found = []
    for i in range(samples):
        arn = client.start(machine, {"n": i}, name=f"latency-{i}")["executionArn"]
        # Parked: the handler has returned and TaskSubmitted is recorded (the token exists earlier, at scheduling).
        wait_until(lambda: any(e["type"] == "TaskSubmitted" for e in client.history(arn)), 30)
        [token] = [t["taskToken"] for t in client.pending_tokens(arn)]
        time.sleep(rng.uniform(0, poll))
        sent = time.time()
        client.send_task_success(token, '{"approved": true}')
        entered = wait_until(lambda: [e for e in client.history(arn) if e["type"] == "PassStateEntered"], 30)
        stamp = entered[0]["timestamp"]
        found.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - sent)
        wait_until(lambda: client.status(arn) == "SUCCEEDED", 30)
    return found


def describe(before: dict, after: dict, n: int) -> str:
    rss = after["rss_mib"] - before["rss_mib"]
    blocks = after["python_blocks"] - before["python_blocks"]
    text = (f"RSS {before['rss_mib']:.1f} -> {after['rss_mib']:.1f} MiB ({rss:+.1f}); Python objects "
            f"{blocks:+,} blocks ({blocks / n:+.2f} per execution)")
    if before["sqlite_mib"] is not None:
        sqlite = after["sqlite_mib"] - before["sqlite_mib"]
        text += f"; SQLite page caches {before['sqlite_mib']:.1f} -> {after['sqlite_mib']:.1f} MiB ({sqlite:+.1f})"
    return text + f"; execution-info cache {before['info_cache']} -> {after['info_cache']} entries"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# ----------------------------------------------------------------------------------------------- the run
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 parked executions and 30 latency samples")
    parser.add_argument("--db", help="database URL (default: a SQLite file in a temporary folder)")
    parser.add_argument("--executions", type=int, help="executions to park (default 10,000; --quick 1,000)")
    parser.add_argument("--samples", type=int, help="latency samples (default 100; --quick 30)")
    parser.add_argument("--poll", type=float, default=0.25, help="the worker's poll interval (its default: 0.25 s)")
    parser.add_argument("--concurrency", type=int, default=16, help="the worker's concurrency (its default: 16)")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve(args.worker, args.poll, args.concurrency)
        return

    n = args.executions or (1_000 if args.quick else 10_000)
    samples = args.samples or (30 if args.quick else 100)
    with tempfile.TemporaryDirectory(prefix="statemill-callbacks-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        from statemill.engine import Client
        client = Client(url)
        machine = client.register(DEFINITION, "callbacks")["name"]
        root = Path(__file__).resolve().parent.parent
        env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
        worker = subprocess.Popen([sys.executable, __file__, "--worker", url, "--poll", str(args.poll),
                                   "--concurrency", str(args.concurrency)], cwd=root, env=env,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert worker.stdout.readline().strip() == "ready"
            print(f"statemill callbacks bench: {client.db.dialect.name}, worker pid {worker.pid}, poll {args.poll}s, "
                  f"concurrency {args.concurrency}, {n:,} executions, {samples} latency samples; load average "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)

            # Warm up the worker (imports, compiled SQL, caches) so the memory baseline is its steady state.
            warm = min(200, n)
            park(client, machine, 10_000_000, warm, 120)
            resume(client, pending_tokens(client), 120)

            found = latency(client, machine, samples, args.poll)
            print(f"latency send_task_success -> next state entered: median {statistics.median(found) * 1000:.1f} ms, "
                  f"p99 {percentile(found, 99) * 1000:.1f} ms, min {min(found) * 1000:.1f} ms, "
                  f"max {max(found) * 1000:.1f} ms ({samples} samples)", flush=True)

            before = probe(worker)
            start_s, park_s = park(client, machine, 0, n, 600)
            parked_mem = probe(worker)
            print(f"parking {n:,} executions: started in {start_s:.1f} s ({n / start_s:,.0f}/s), all waiting on "
                  f"their tokens after {park_s:.1f} s ({n / park_s:,.0f}/s)", flush=True)
            print(f"worker memory before -> with {n:,} parked: {describe(before, parked_mem, n)}", flush=True)

            tokens = pending_tokens(client)
            assert len(tokens) == n, (len(tokens), n)
            answer_s, resume_s = resume(client, tokens, 600)
            resumed_mem = probe(worker)
            print(f"resuming {n:,}: answered in {answer_s:.1f} s ({n / answer_s:,.0f} send_task_success/s), all "
                  f"succeeded after {resume_s:.1f} s ({n / resume_s:,.0f}/s)", flush=True)
            print(f"worker memory before -> after resuming: {describe(before, resumed_mem, n)}", flush=True)
            print(json.dumps({"db": client.db.dialect.name, "poll_s": args.poll, "executions": n,
                              "latency_ms": {"median": round(statistics.median(found) * 1000, 1),
                                             "p99": round(percentile(found, 99) * 1000, 1)},
                              "memory": {"before": before, "parked": parked_mem, "resumed": resumed_mem},
                              "start_s": round(start_s, 2), "park_s": round(park_s, 2),
                              "answer_s": round(answer_s, 2), "resume_s": round(resume_s, 2)}))
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
            client.db.dispose()


if __name__ == "__main__":
    main()
