"""One PostgreSQL Map of many iterations run by 1, 2 and 4 worker processes: transitions/s and the PostgreSQL
server's CPU per transition, for this checkout and (``--baseline DIR``) an older one, interleaved in the same run.

    python bench/map_pg_bench.py                                   # this checkout only
    python bench/map_pg_bench.py --baseline /tmp/base --rounds 2   # before/after ratios in one run

``DIR`` holds an older checkout as ``DIR/statemill`` (e.g. ``mkdir -p /tmp/base/statemill && git -C REPO archive
main | tar -x -C /tmp/base/statemill``); its workers import statemill from there (PYTHONPATH), the bench's own code
is this checkout's. Each cell creates the bench database anew, starts one execution of a Map of ``--items`` items
(iteration = one Pass, MaxConcurrency 0), starts K workers (``bench_scaling.py --worker``, concurrency 4 each),
tells them to go together and times until the execution has ended. Transitions are the ``*StateEntered`` events
the workers report. Server CPU is what this database's backends (and the WAL writer, checkpointer, background
writer) used in the timed window, from /proc (bench_scaling.Sampler); the busiest pg_stat_activity wait states are
listed. With ``--rounds N`` each cell runs N times and the best rate (and its CPU) is kept: the machine is shared.

PostgreSQL: ``$STATEMILL_BENCH_POSTGRES_URL`` (a server URL), else postgresql://postgres@127.0.0.1:5432/postgres.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_scaling import SERVER, PostgresTarget, Sampler  # noqa: E402


def cell(target: PostgresTarget, items: int, workers: int, pythonpath: str | None) -> dict:
    """One Map of ``items`` run by ``workers`` processes importing statemill from ``pythonpath`` (None: this one)."""
    url = target.recreate()  # each version creates its own schema
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    setup = ("import sys, json; sys.path.insert(0, %r); from bench_scaling import map_of; "
             "from statemill.engine import Client; c = Client(%r); c.register(map_of({'Type': 'Pass', 'End': True}), 'm'); "
             "c.start('m', {'items': [{'i': i, 'v': [0, False, '', None]} for i in range(%d)]}, name='x'); "
             "c.db.dispose()") % (str(HERE), url, items)
    subprocess.run([sys.executable, "-c", setup], env=env, check=True)  # the schema of that version, too
    command = [sys.executable, str(HERE / "bench_scaling.py"), "--worker", url, "--concurrency", "4"]
    procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(workers)]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a worker did not start")
    sampler = Sampler([p.pid for p in procs], target)
    sampler.start()
    time.sleep(0.3)
    started = time.time()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = [json.loads(proc.stdout.readline()) for proc in procs]
    ended = time.time()
    sampler.stop_event.set()
    sampler.join()
    for proc in procs:
        proc.wait()
    entered = sum(r["entered"] for r in reports)
    cpu = sampler.window(started, ended)
    seconds = ended - started
    waits = sampler.states.most_common(3)
    return {"rate": entered / seconds, "entered": entered, "seconds": seconds, "left": sum(r["running"] for r in reports),
            "server_us": 1e6 * cpu.get("postgres", 0.0) * cpu.get("seconds", 0.0) / max(1, entered),
            "worker_us": 1e6 * sum(r["cpu"] for r in reports) / max(1, entered),
            "waits": ", ".join(f"{k} {v / max(1, sampler.sessions):.1f}" for k, v in waits)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="a folder holding an older checkout as ./statemill")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    versions = ([("before", args.baseline)] if args.baseline else []) + [("after", None)]
    counts = [int(k) for k in args.workers.split(",")]
    target = PostgresTarget(SERVER)
    best: dict[tuple[str, int], dict] = {}
    try:
        for _ in range(args.rounds):
            for k in counts:
                for name, path in versions:
                    result = cell(target, args.items, k, path)
                    if result["left"]:
                        print(f"  {name} {k} workers: {result['left']} execution(s) still running", flush=True)
                    kept = best.get((name, k))
                    if kept is None or result["rate"] > kept["rate"]:
                        best[(name, k)] = result
                    print(f"  {name:<6} {k} workers: {result['rate']:7.0f} transitions/s", flush=True)
    finally:
        target.close()
    print(f"\nPostgreSQL {target.version}, Map of {args.items} items (iteration = 1 Pass), 4 threads per worker, "
          f"best of {args.rounds}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'version':<8}{'workers':>8}{'transitions/s':>15}{'vs 1 worker':>13}{'vs before':>11}"
          f"{'server µs/tr':>14}{'worker µs/tr':>14}  busiest wait states (sessions)")
    for name, _path in versions:
        for k in counts:
            r = best[(name, k)]
            one = best[(name, counts[0])]["rate"]
            before = best.get(("before", k))
            vs = f"{r['rate'] / before['rate']:.2f}x" if before and name != "before" else ""
            print(f"{name:<8}{k:>8}{r['rate']:>15,.0f}{r['rate'] / one:>12.2f}x{vs:>11}{r['server_us']:>14,.0f}"
                  f"{r['worker_us']:>14,.0f}  {r['waits']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
