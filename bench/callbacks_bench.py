"""Task-token callbacks, measured with a real worker process: latency and what an idle worker costs.

    python bench/callbacks_bench.py             # SQLite and PostgreSQL: 100 latency samples, 20 s idle each
    python bench/callbacks_bench.py --quick     # 30 samples, 5 s idle
    python bench/callbacks_bench.py --db sqlite --db postgresql://postgres@127.0.0.1:5432/postgres

Each database gets a worker process of its own (default: a temp SQLite file, and a throwaway database on the
PostgreSQL server at $STATEMILL_BENCH_POSTGRES_URL or 127.0.0.1:5432 when one answers; it is dropped at the end).

1. Idle CPU: with nothing to do, the worker's user + system CPU time (/proc/PID/stat, all its threads) over
   ``--idle`` seconds of wall time, as a percentage of one core.
2. Latency: one execution at a time parks on a token; at a random moment of the worker's poll cycle this process
   calls ``send_task_success`` and we measure until the worker has entered the next state (the
   ``PassStateEntered`` event's timestamp; same machine, same clock): median, p99, min and max. A wake-up wakes
   the worker at once (a datagram to its socket on SQLite, NOTIFY on PostgreSQL); without one it would wait for
   its poll (``--poll``).

Parked work at scale (memory, resuming many) is ``bench/parked_bench.py``.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worker_process import arguments, each_database, serve, spawn, stop, wait_until  # noqa: E402

DEFINITION = {
    "StartAt": "Ask",
    "States": {
        "Ask": {"Type": "Task", "Resource": "bench.notify.waitForTaskToken",
                "Parameters": {"token.$": "$$.Task.Token", "n.$": "$.n"}, "ResultPath": "$.answer", "Next": "Done"},
        "Done": {"Type": "Pass", "End": True},
    },
}


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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, all its threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pid: int, seconds: float) -> float:
    """The share of one core process ``pid`` uses over ``seconds`` of wall time, in percent."""
    before, began = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - began)


def measure(url: str, args) -> dict:
    """Idle CPU and callback latency of one worker process on ``url``."""
    from statemill.engine import Client
    client = Client(url)
    machine = client.register(DEFINITION, "callbacks")["name"]
    worker = spawn(__file__, url, args.poll, args.concurrency)
    try:
        # Warm up the worker (imports, compiled SQL, caches) and this process.
        for i in range(3):
            arn = client.start(machine, {"n": i}, name=f"warm-{i}")["executionArn"]
            wait_until(lambda: client.pending_tokens(arn), 30)
            client.send_task_success(client.pending_tokens(arn)[0]["taskToken"], "{}")
            wait_until(lambda: client.status(arn) == "SUCCEEDED", 30)
        time.sleep(1)  # let the worker settle into idling
        cpu = idle_cpu(worker.pid, args.idle)
        found = latency(client, machine, args.samples, args.poll)
    finally:
        stop(worker)
        client.db.dispose()
    return {"db": client.db.dialect.name, "idle_cpu_percent": round(cpu, 2), "samples": len(found),
            "latency_ms": {"median": round(statistics.median(found) * 1000, 1),
                           "p99": round(percentile(found, 99) * 1000, 1),
                           "min": round(min(found) * 1000, 1), "max": round(max(found) * 1000, 1)}}


# ----------------------------------------------------------------------------------------------- the run
def main() -> None:
    parser = arguments(__doc__, "30 latency samples, 5 s idle")
    parser.add_argument("--samples", type=int, help="latency samples (default 100; --quick 30)")
    parser.add_argument("--idle", type=float, help="seconds of idle CPU measurement (default 20; --quick 5)")
    args = parser.parse_args()
    if args.worker:
        serve(args.worker, args.poll, args.concurrency)
        return
    args.samples = args.samples or (30 if args.quick else 100)
    args.idle = args.idle if args.idle is not None else (5.0 if args.quick else 20.0)

    def shown(url: str, args) -> dict:
        found = measure(url, args)
        ms = found["latency_ms"]
        print(f"{found['db']:>10}: send_task_success -> next state entered: median {ms['median']:.1f} ms, "
              f"p99 {ms['p99']:.1f} ms (min {ms['min']:.1f}, max {ms['max']:.1f}; {found['samples']} "
              f"samples); idle worker {found['idle_cpu_percent']:.2f}% of a core", flush=True)
        return found

    each_database(args, "callbacks", f"poll {args.poll}s, {args.samples} latency samples, {args.idle:g} s idle",
                  shown, poll_s=args.poll)


if __name__ == "__main__":
    main()
