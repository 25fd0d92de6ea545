"""statemill's benchmark suite: ``python bench/run.py [--quick] [NAME ...]``.

Prints one table; every ratio in it compares figures measured in this same run (see bench/README.md).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import Context, table  # noqa: E402

MODULES = ["bench_interpreter", "bench_durable", "bench_validate", "bench_parallel", "render_bench",
           "bench_scaling", "callbacks_bench", "bench_testing", "bench_api"]
OPTIONAL: list[str] = []
GROUPS = [
    ("interpreter", "interpreter: advance() in memory, no database"),
    ("ceiling", "ceiling: what SQLite allows (WAL, synchronous=NORMAL, BEGIN IMMEDIATE)"),
    ("durable", "durable engine on SQLite (file database in a temp folder)"),
    ("loop", "statemill run (a subprocess) on SQLite: transitions per second of the execution"),
    ("validate", "validation of a large definition"),
    ("parallel", "I/O-bound handlers in a Parallel / Map"),
    ("render", "drawing a large definition"),
    ("scaling", "worker processes on SQLite and PostgreSQL"),
    ("callbacks", "task-token callbacks"),
    ("testing", "testing workflows: virtual time, mocks"),
    ("api", "statemill serve: the Step Functions API over HTTP (boto3) vs the in-process Client"),
]


def discover() -> tuple[dict, dict, list[str]]:
    """Benchmarks by name ((description, fn)), their dependencies, and notes on modules left out."""
    benchmarks, depends, notes = {}, {}, []
    for name in MODULES + OPTIONAL:
        if name in OPTIONAL and not (HERE / f"{name}.py").exists():
            continue
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - one broken module must not hide the others
            notes.append(f"{name}.py could not be imported: {type(exc).__name__}: {exc}")
            continue
        found = getattr(module, "BENCHMARKS", None)
        if not isinstance(found, dict):
            notes.append(f"{name}.py defines no BENCHMARKS: run it on its own")
            continue
        benchmarks.update(found)
        depends.update(getattr(module, "DEPENDS", {}))
    return benchmarks, depends, notes


def header(quick: bool) -> str:
    import sqlalchemy
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cores = os.cpu_count() or 1
    line = (f"statemill benchmarks ({'quick' if quick else 'full'} mode): Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}, {cores} cores")
    if load is not None:
        line += f", load average {load:.1f}"
        if load > cores:
            line += "  (busy machine: absolute figures are low, ratios hold better)"
    return line


def main(argv: list[str] | None = None) -> int:
    benchmarks, depends, notes = discover()
    parser = argparse.ArgumentParser(description="Run statemill's benchmarks and print one table.")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all): "
                        f"{', '.join(benchmarks)}")
    parser.add_argument("--quick", action="store_true", help="small sizes and short rounds (under ~20 s)")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME", help="leave a benchmark out")
    parser.add_argument("--no-baselines", action="store_true",
                        help="do not add the benchmarks a chosen one compares against (its ratios then go missing)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile (cProfile) the durable engine, the interpreter and validation, and print "
                             "self time by package and the top functions")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON too")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder with the databases")
    args = parser.parse_args(argv)

    if args.list:
        for name, (description, _fn) in benchmarks.items():
            print(f"{name:<12} {description}")
        for note in notes:
            print(f"note: {note}")
        return 0
    unknown = [n for n in args.names + args.skip if n not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(benchmarks)}")
    chosen = [n for n in benchmarks if (not args.names or n in args.names) and n not in args.skip]
    if not args.no_baselines:
        for name in list(chosen):
            for needed in depends.get(name, ()):
                if needed not in chosen and needed in benchmarks:
                    chosen.append(needed)
    chosen = [n for n in benchmarks if n in chosen]  # keep the suite's order: baselines run first

    print(header(args.quick), flush=True)
    for note in notes:
        print(f"note: {note}")
    failed = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="statemill-bench-") as tmp:
        ctx = Context(quick=args.quick, tmp=Path(tmp), profile=args.profile)
        for name in chosen:
            t0 = time.perf_counter()
            print(f"  running {name} ...", end="", flush=True)
            try:
                benchmarks[name][1](ctx)
                print(f" {time.perf_counter() - t0:.1f} s", flush=True)
            except Exception:  # noqa: BLE001 - report and go on with the other benchmarks
                print(" FAILED", flush=True)
                failed.append((name, traceback.format_exc()))
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix="statemill-bench-kept-"))
            os.rename(tmp, kept / "run")
            os.makedirs(tmp)
            print(f"  databases kept in {kept / 'run'}")

    extra = [(g, g) for g in sorted({r.group for r in ctx.results.values()} - {g for g, _ in GROUPS})]
    print(table(ctx.results, GROUPS + extra))
    for report in ctx.reports:
        print("\n" + report)
    for name, trace in failed:
        print(f"\n{name} FAILED:\n{trace}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "quick": args.quick, "failed": [n for n, _ in failed],
            "results": {k: vars(r) for k, r in ctx.results.items()}}, indent=2, default=list) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
