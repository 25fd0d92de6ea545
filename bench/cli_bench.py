"""How fast the `statemill` command starts: wall time of whole processes, next to `python -c pass` in the same run.

    python bench/cli_bench.py                # 15 runs of each command
    python bench/cli_bench.py --quick        # 5 runs
    python bench/cli_bench.py --importtime   # also the slowest imports of each command (python -X importtime)
    python bench/cli_bench.py --db postgresql://postgres@127.0.0.1:5432/mydb   # answer tokens there instead

Commands: `statemill --help`, `statemill validate` of a small definition, `statemill send-task-success` of a task
waiting on its token (a fresh token each run, in a temporary SQLite file unless --db), and `statemill describe`
(which needs SQLAlchemy) for comparison. Byte-code caching is on (as in an installed package) even when
PYTHONDONTWRITEBYTECODE is set here. Each figure is the median of the runs, with the fastest; the aim is under
0.25 s for the first three on this machine, and the ratio to `python -c pass` says what is left to gain.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"Comment": "a small definition", "StartAt": "Check",
         "States": {"Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 0, "Next": "Done"}],
                              "Default": "Wait"},
                    "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
                    "Done": {"Type": "Pass", "Result": {"n": 0, "b": False, "s": "", "z": None}, "End": True}}}
ASK = {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "bench.notify.waitForTaskToken",
                                            "Parameters": {"token.$": "$$.Task.Token"}, "End": True}}}


def statemill_command() -> list[str]:
    """The installed `statemill` script next to this interpreter, else ``python -m statemill.cli.main``."""
    script = Path(sys.executable).with_name("statemill")
    return [str(script)] if script.exists() else [sys.executable, "-m", "statemill.cli.main"]


def timed(args: list[str], env: dict) -> float:
    began = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def parked_tokens(url: str, n: int) -> list[str]:
    """Start ``n`` executions that wait on a token and run a worker until all have handed theirs out."""
    from statemill.engine import Engine
    engine = Engine(url)
    try:
        engine.handler("bench.notify")(lambda value: {"handed_out": True})
        engine.register(ASK, "cli-bench")
        arns = [engine.start("cli-bench", {"n": i})["executionArn"] for i in range(n)]
        worker = engine.worker(poll_seconds=0.01)
        try:
            worker.run(until=lambda: len(engine.pending_tokens()) >= n and
                       all(engine.history(a)[-1]["type"] == "TaskSubmitted" for a in arns[-1:]))
        finally:
            worker.close()
        return [t["taskToken"] for t in engine.pending_tokens() if t["executionArn"] in set(arns)]
    finally:
        engine.db.dispose()


def slowest_imports(args: list[str], env: dict, top: int = 8) -> list[tuple[int, str]]:
    """The ``top`` imports with the largest cumulative time (µs) of one run under ``python -X importtime``."""
    command = args if args[0] == sys.executable else [sys.executable, "-m", "statemill.cli.main", *args[1:]]
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    found = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and len(match.group(2)) <= 2:  # top-level imports and their direct children
            found.append((int(match.group(1)), match.group(2) + match.group(3)))
    return sorted(found, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs of each command")
    parser.add_argument("--runs", type=int, help="runs of each command (default 15; --quick 5)")
    parser.add_argument("--db", help="the database to answer tokens in (default: a temporary SQLite file)")
    parser.add_argument("--importtime", action="store_true", help="also list each command's slowest imports")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 15)
    # Byte-code caching on, as in an installed package (pip compiles the .pyc files): with PYTHONDONTWRITEBYTECODE
    # set, every start would compile statemill's own modules from source again.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_") and k != "PYTHONDONTWRITEBYTECODE"}
    statemill = statemill_command()
    with tempfile.TemporaryDirectory(prefix="statemill-cli-") as tmp:
        small = Path(tmp) / "small.json"
        small.write_text(json.dumps(SMALL))
        url = args.db or f"sqlite:///{Path(tmp) / 'cli.db'}"
        tokens = iter(parked_tokens(url, runs + 2))  # the warm-up run, the runs, -X importtime
        from statemill.engine import Client
        client = Client(url)
        describe_arn = client.list(limit=1)[0]["executionArn"]
        client.db.dispose()
        commands = {
            "python -c pass": lambda: [sys.executable, "-c", "pass"],
            "statemill --help": lambda: [*statemill, "--help"],
            "statemill validate small.json": lambda: [*statemill, "validate", str(small)],
            "statemill send-task-success": lambda: [*statemill, "send-task-success", "--task-token", next(tokens),
                                                    "--task-output", '{"n": 0}', "--db", url],
            "statemill describe (SQLAlchemy)": lambda: [*statemill, "describe", describe_arn, "--db", url],
        }
        print(f"statemill CLI start-up: {runs} runs each ({'the median' if runs > 2 else 'each'}, fastest); load "
              f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        for make in commands.values():  # warm the file cache and the compiled .pyc files
            timed(make(), env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):  # interleaved, so a burst of load hits every command alike
            for name, make in commands.items():
                times[name].append(timed(make(), env))
        base = statistics.median(times["python -c pass"])
        results = {}
        for name, found in times.items():
            median = statistics.median(found)
            results[name] = {"median_s": round(median, 4), "min_s": round(min(found), 4),
                             "vs_python": round(median / base, 2)}
            aim = "" if name.startswith(("python", "statemill describe")) else \
                ("  (aim < 0.25 s: met)" if median < 0.25 else "  (aim < 0.25 s: NOT met)")
            print(f"  {name:34} median {median * 1000:6.0f} ms  fastest {min(found) * 1000:6.0f} ms  "
                  f"{median / base:5.1f}x python -c pass{aim}", flush=True)
        if args.importtime:
            for name, make in commands.items():
                if name.startswith("python"):
                    continue
                print(f"--- slowest imports of {name} (cumulative µs, python -X importtime)")
                for micros, module in slowest_imports(make(), env):
                    print(f"  {micros:>9,}  {module}")
        print(json.dumps({"runs": runs, "results": results}))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps({"runs": runs, "results": results}, indent=2))


if __name__ == "__main__":
    main()
