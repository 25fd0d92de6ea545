"""A Distributed Map over a JSONL file generated in a temp folder (never committed), batches of 100 items, on SQLite:
wall time, items/s and the worker process's peak RSS for each size, then the same with 10% of the items failing
under a tolerated 20%. Baseline in the same run: an inline Map over the same items (in the state input) at the
smallest size, with the same work per item.

    python bench/distributed_map_bench.py                        # 10k, 100k and 1M items
    python bench/distributed_map_bench.py --items 10000 100000   # chosen sizes
    python bench/distributed_map_bench.py --concurrency 50 --keep

Each size runs in a fresh database with one worker subprocess (16 handler threads); its peak RSS is its VmHWM
(Linux), which should stay flat in the number of items: the reader streams the file through a saved cursor.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 100


def definition(concurrency: int, tolerated: float | None) -> dict:
    state = {"Type": "Map", "MaxConcurrency": concurrency, "End": True,
             "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
                            "Parameters": {"Bucket": "bench", "Key.$": "$.key"}},
             "ItemBatcher": {"MaxItemsPerBatch": BATCH},
             "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                               "StartAt": "Sum", "States": {"Sum": {"Type": "Task", "Resource": "bench.sum",
                                                                    "End": True}}}}
    if tolerated is not None:
        state["ToleratedFailurePercentage"] = tolerated
    return {"StartAt": "Map", "States": {"Map": state}}


def inline_definition() -> dict:
    return {"StartAt": "Map", "States": {"Map": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0, "End": True,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Sum",
                          "States": {"Sum": {"Type": "Task", "Resource": "bench.one", "End": True}}}}}}


def total(batch: dict) -> int:
    """The work per batch: sum the items; a batch holding an item marked ``fail`` fails."""
    if any(item.get("fail") for item in batch["Items"]):
        raise ValueError("a failing item")
    return sum(item["n"] for item in batch["Items"])


def one(item: dict) -> int:
    return item["n"]


HANDLERS = {"bench.sum": total, "bench.one": one}


def write_items(path: Path, count: int, failing: bool) -> None:
    """``count`` JSON lines; with ``failing``, every item of one batch in ten is marked to fail (10% of items)."""
    with path.open("w") as f:
        for n in range(count):
            fail = failing and (n // BATCH) % 10 == 3
            f.write(json.dumps({"n": n, "fail": fail, "zero": 0}) + "\n")


def peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def serve(db: str, storage: str, arn: str) -> None:
    """The worker subprocess: work until ``arn`` has ended; print its status and peak RSS as JSON."""
    from statemill.engine import Engine
    engine = Engine(db, storage=storage, handlers=HANDLERS)
    worker = engine.worker(concurrency=16, poll_seconds=0.05)
    try:
        worker.run(until=lambda: engine.status(arn) != "RUNNING")
    finally:
        worker.close()
    print(json.dumps({"status": engine.status(arn), "rss": peak_rss_mib()}))


def run_distributed(folder: Path, count: int, concurrency: int, failing: bool) -> dict:
    from statemill.engine import Engine
    work = folder / f"{count}-{'fail' if failing else 'ok'}"
    (work / "bench").mkdir(parents=True)
    write_items(work / "bench" / "items.jsonl", count, failing)
    db = f"sqlite:///{work / 'sm.db'}"
    engine = Engine(db, storage=str(work))
    machine = engine.register(definition(concurrency, 20 if failing else None), "dmap")["name"]
    began = time.perf_counter()
    arn = engine.start(machine, {"key": "items.jsonl"})["executionArn"]
    out = subprocess.run([sys.executable, __file__, "--serve", db, str(work), arn], capture_output=True, text=True,
                         check=True)
    elapsed = time.perf_counter() - began
    report = json.loads(out.stdout.strip().splitlines()[-1])
    (run,) = engine.list_map_runs(arn)
    counts = engine.describe_map_run(run["mapRunArn"])["itemCounts"]
    engine.db.dispose()
    assert report["status"] == "SUCCEEDED", (report, counts)
    assert counts["total"] == count and counts["succeeded"] + counts["failed"] == count, counts
    return {"seconds": elapsed, "rss": report["rss"], "failed": counts["failed"]}


def run_inline(folder: Path, count: int) -> float:
    """The baseline: an inline Map over the same items given in the state input, one Task per item, in-process."""
    from statemill.engine import Engine
    engine = Engine(f"sqlite:///{folder / 'inline.db'}", handlers=HANDLERS)
    items = [{"n": n, "fail": False, "zero": 0} for n in range(count)]
    began = time.perf_counter()
    done = engine.run(inline_definition(), {"items": items}, machine_name="inline")
    elapsed = time.perf_counter() - began
    engine.db.dispose()
    assert done["status"] == "SUCCEEDED", done
    return elapsed


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        serve(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--concurrency", type=int, default=50, help="the Map's MaxConcurrency (children at once)")
    parser.add_argument("--baseline-items", type=int, default=None, help="inline Map size (default: the smallest)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="statemill-dmap-"))
    try:
        base_n = args.baseline_items or min(args.items)
        base = run_inline(folder, base_n)
        base_rate = base_n / base
        print(f"baseline: inline Map, {base_n:,} items in the input, one Task each: {base:.2f} s, "
              f"{base_rate:,.0f} items/s")
        print(f"distributed: JSONL reader, batches of {BATCH}, MaxConcurrency {args.concurrency}, 1 worker "
              "subprocess (16 threads), SQLite")
        print(f"{'items':>10}  {'failing':>8}  {'seconds':>8}  {'items/s':>9}  {'vs inline':>9}  {'peak RSS':>9}")
        for failing in (False, True):
            for count in args.items:
                got = run_distributed(folder, count, args.concurrency, failing)
                rate = count / got["seconds"]
                print(f"{count:>10,}  {('10%' if failing else '0'):>8}  {got['seconds']:>8.2f}  {rate:>9,.0f}  "
                      f"{rate / base_rate:>8.1f}x  {got['rss']:>6.0f} MiB", flush=True)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
