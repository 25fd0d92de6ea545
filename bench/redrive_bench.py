"""Redrive of a Map that failed: a Map of N items whose handler fails for F chosen items until a flag file says
"fixed" (each failing item is retried once after 1 s, so it fails after every other item has succeeded).

    python bench/redrive_bench.py [--items 1000] [--failing 10] [--db URL]   # default: a temp SQLite file

Runs the Map to FAILED in this process, fixes the handler and redrives it twice over (two executions): once run in
this process, once by a worker process SIGKILLed in the middle of the redrive and a second one that finishes it
(tests/crash_worker.py; its time includes starting two Python processes and waiting out the dead one's 1 s lease). Prints the handler calls each redrive made (per item, from the calls file),
checks that they are exactly the failing items and that the execution SUCCEEDED with the whole, ordered output,
and the redrive's wall time against the first run's (measured in the same run).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import crash_worker  # noqa: E402  (the tests' worker process and its py:flaky handler)

from statemill.engine import Engine, FakeClock  # noqa: E402
from statemill.engine.store.schema import metadata  # noqa: E402

WORKER = ROOT / "tests" / "crash_worker.py"
MAP = {"StartAt": "Each", "States": {"Each": {
    "Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.out", "End": True,
    "ItemProcessor": {"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": "py:flaky", "End": True,
        "Retry": [{"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 1, "MaxAttempts": 1}]}}}}}}


def calls(path: Path) -> Counter:
    return Counter(json.loads(line)["input"]["n"] for line in path.read_text().splitlines()) if path.exists() \
        else Counter()


def worker(url: str, path: Path, kill_after: int | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    if kill_after is not None:  # SIGKILL itself in the handler after that many successful calls
        env.update(STATEMILL_FAULT="in_handler", STATEMILL_FAULT_ONCE=str(path) + ".killed",
                   CRASH_SKIP_HITS=str(kill_after))
    return subprocess.Popen([sys.executable, str(WORKER), url, str(path), "--concurrency", "4", "--lease", "1",
                             "--deadline", "300"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


def one(engine: Engine, url: str, folder: Path, name: str, items: int, failing: list[int], kill: bool) -> None:
    path, fixed = folder / f"{name}.calls", folder / f"{name}.fixed"
    crash_worker.install_handlers(engine, str(path))
    value = {"items": [{"n": n, "fail": n in failing, "fixed": str(fixed), "zero": 0, "no": False, "empty": "",
                        "null": None} for n in range(items)]}
    began = time.perf_counter()
    done = engine.run(MAP, value, machine_name="redrive-bench", name=name)
    first = time.perf_counter() - began
    assert done["status"] == "FAILED", done
    before = calls(path)
    fixed.touch()
    began = time.perf_counter()
    engine.redrive(done["executionArn"])
    if kill:
        killed = worker(url, path, kill_after=len(failing) // 2)
        killed.communicate(timeout=300)
        assert killed.returncode == -signal.SIGKILL, f"the worker was not killed: {killed.returncode}"
        finisher = worker(url, path)
        _, err = finisher.communicate(timeout=300)
        assert finisher.returncode == 0, err
    else:
        engine.wait(done["executionArn"])
    again = time.perf_counter() - began
    result = engine.describe(done["executionArn"])
    assert result["status"] == "SUCCEEDED", result
    assert result["output"]["out"] == list(range(items)), "the output is not whole and in order"
    rerun = calls(path) - before
    assert sorted(rerun) == sorted(failing), f"the redrive ran {sorted(rerun)}, not {sorted(failing)}"
    label = "redrive, worker SIGKILLed midway" if kill else "redrive"
    print(f"{label:34} re-ran {len(rerun):4} items ({sum(rerun.values())} handler calls; "
          f"{sum(before.values())} in the first run)  first run {first:6.2f} s  redrive {again:6.2f} s  "
          f"redrive/first run {again / first:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--failing", type=int, default=10)
    parser.add_argument("--db", help="a database URL (PostgreSQL: its tables are emptied first)")
    args = parser.parse_args()
    step = args.items // args.failing
    failing = [step // 2 + i * step for i in range(args.failing)]
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = Engine(url, clock=FakeClock.virtual())  # the 1 s backoff passes at once in this process
        if engine.db.dialect.name == "postgresql":
            with engine.db.begin() as conn:
                names = ", ".join(t.name for t in metadata.sorted_tables if t.name != "statemill_schema")
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        print(f"Map of {args.items} items, {args.failing} failing ({engine.db.dialect.name})")
        for kill in (False, True):
            one(engine, url, Path(folder), "killed" if kill else "clean", args.items, failing, kill)
        engine.db.dispose()


if __name__ == "__main__":
    main()
