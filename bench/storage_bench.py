"""Distributed Map's item readers against the plainest Python loop over the same file, measured in the same run.

    python bench/storage_bench.py [--lines 1000000] [--rounds 2]

Generates a JSONL file, a CSV file and a JSON array of --lines items in a temp folder, then reads all items in a
fresh interpreter per reader (so each peak RSS is its own): statemill's reader, the same with batches of 100, and a
baseline (`for line in file: json.loads(line)`, `csv.DictReader`, and `json.load` of the whole array). Prints
items/s (the best of --rounds, each reader and its baseline measured in turn), the ratio to the baseline, and peak
RSS (resource.getrusage) at a tenth of the lines and at all of them: a streaming reader's peak stays flat as the file
grows.
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCHER = {"MaxItemsPerBatch": 100}


def generate(folder: Path, lines: int) -> None:
    bucket = folder / "bucket"
    bucket.mkdir(parents=True, exist_ok=True)
    with open(bucket / "items.jsonl", "w") as jsonl, open(bucket / "items.csv", "w", newline="") as table, \
            open(bucket / "items.json", "w") as array:
        rows = csv.writer(table)
        rows.writerow(["id", "name", "value", "ok", "note"])
        array.write("[")
        for i in range(lines):
            item = {"id": i, "name": f"item-{i}", "value": i * 0.5, "ok": i % 2 == 0, "note": "" if i % 3 else None}
            text = json.dumps(item)
            jsonl.write(text + "\n")
            array.write(("," if i else "") + text)
            rows.writerow([i, f"item-{i}", i * 0.5, "true" if i % 2 == 0 else "false", ""])
        array.write("]")


def run_phase(phase: str, folder: Path) -> dict:
    """Read every item one way; return the count, seconds and this process's peak RSS."""
    from statemill.engine.storage import Storage, batches
    storage = Storage(folder)
    bucket = folder / "bucket"

    def reader(key: str, kind: str) -> dict:
        return {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "bucket", "Key": key},
                "ReaderConfig": {"InputType": kind}}

    began = time.perf_counter()
    count = 0
    if phase == "baseline_jsonl":
        with open(bucket / "items.jsonl", "rb") as file:
            for line in file:
                json.loads(line)
                count += 1
    elif phase == "baseline_csv":
        with open(bucket / "items.csv", newline="") as file:
            for _ in csv.DictReader(file):
                count += 1
    elif phase == "baseline_json":
        with open(bucket / "items.json", "rb") as file:
            count = len(json.load(file))
    else:
        kind, _, batched = phase.partition("_")
        source = storage.items(reader(f"items.{kind}", kind.upper()))
        if batched:
            for batch, _ in batches(source, BATCHER):
                count += len(batch["Items"])
        else:
            for _ in source:
                count += 1
    seconds = time.perf_counter() - began
    return {"count": count, "seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(phase: str, folder: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--phase", phase, "--folder", str(folder)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def best(phases: list[str], folder: Path, rounds: int) -> dict[str, dict]:
    """Each phase's fastest round (and its highest peak RSS), the phases interleaved so load hits them alike."""
    found: dict[str, dict] = {}
    for _ in range(rounds):
        for phase in phases:
            got = measure(phase, folder)
            if phase in found:
                got = dict(min(found[phase], got, key=lambda r: r["seconds"]),
                           peak_mib=max(found[phase]["peak_mib"], got["peak_mib"]))
            found[phase] = got
    return found


GROUPS = [("JSONL", "baseline_jsonl", ["jsonl", "jsonl_batched"]),
          ("CSV", "baseline_csv", ["csv", "csv_batched"]),
          ("JSON array", "baseline_json", ["json", "json_batched"])]
LABELS = {"baseline_jsonl": "for line in file: json.loads(line)", "baseline_csv": "csv.DictReader",
          "baseline_json": "json.load(whole file)", "jsonl": "Storage.items JSONL",
          "jsonl_batched": "  + batches of 100", "csv": "Storage.items CSV", "csv_batched": "  + batches of 100",
          "json": "Storage.items JSON", "json_batched": "  + batches of 100"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--phase")
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, Path(args.folder))))
        return
    with tempfile.TemporaryDirectory(prefix="statemill-storage-bench-") as tmp:
        small, large = Path(tmp) / "small", Path(tmp) / "large"
        began = time.perf_counter()
        generate(small, args.lines // 10)
        generate(large, args.lines)
        size = (large / "bucket" / "items.jsonl").stat().st_size / 2 ** 20
        print(f"generated {args.lines:,} items ({size:.0f} MiB of JSONL) and a tenth of them in "
              f"{time.perf_counter() - began:.1f} s\n")
        print(f"{'reader':40} {'items/s':>12} {'vs baseline':>12} {'peak RSS':>10} {'at 1/10':>10}")
        for title, baseline, phases in GROUPS:
            fulls = best([baseline, *phases], large, args.rounds)
            tenths = best([baseline, *phases], small, 1)
            base = fulls[baseline]
            for phase in [baseline, *phases]:
                full, tenth = fulls[phase], tenths[phase]
                assert full["count"] == args.lines and tenth["count"] == args.lines // 10, (phase, full, tenth)
                rate = full["count"] / full["seconds"]
                ratio = "1.00x" if phase == baseline else f"{rate / (base['count'] / base['seconds']):.2f}x"
                print(f"{LABELS[phase]:40} {rate:>12,.0f} {ratio:>12} {full['peak_mib']:>8.0f} MiB "
                      f"{tenth['peak_mib']:>6.0f} MiB")
            print()


if __name__ == "__main__":
    main()
