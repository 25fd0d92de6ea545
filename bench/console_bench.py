"""The web console's speed: its pages over HTTP with 100,000 executions in the database, and the time from a
transition committed to an open page (in Chromium) showing it.

    python bench/console_bench.py [--executions 100000] [--db URL] [--rounds 15] [--no-browser]

Pages are fetched from a real ``statemill console`` process (uvicorn, one connection, warm). Each figure is the
median and the 95th percentile of ``--rounds`` requests; the baseline, measured in the same run, is a 1 KiB static
file from the same server (the HTTP floor). The executions are written in bulk (one transaction per 10,000 rows)
across 5 machines and every status; the pages read only the executions table.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from statemill.engine import Client  # noqa: E402
from statemill.engine.store.schema import executions, state_machines  # noqa: E402

MACHINES = ["orders", "payments", "shipping", "refunds", "reports"]
# RUNNING is rare (1 in 100), TIMED_OUT rarer (1 in 200): the filters that scan most without an index.
STATUS_CYCLE = ["SUCCEEDED"] * 180 + ["FAILED"] * 15 + ["ABORTED"] * 2 + ["RUNNING"] * 2 + ["TIMED_OUT"]
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
APPROVAL = {"StartAt": "Ask", "States": {
    "Ask": {"Type": "Task", "Resource": "bench.ask.waitForTaskToken", "Parameters": {"token.$": "$$.Task.Token"},
            "Next": "Done"},
    "Done": {"Type": "Succeed"}}}


def seed(client: Client, count: int) -> None:
    for name in MACHINES:
        client.register(PASS, name)
    with client.db.connect() as conn:
        ids = dict(conn.execute(sa.select(state_machines.c.name, state_machines.c.id)).all())
    now = client.clock.now()
    for start in range(0, count, 10_000):
        rows = []
        for i in range(start, min(count, start + 10_000)):
            machine, status = MACHINES[i % len(MACHINES)], STATUS_CYCLE[i % len(STATUS_CYCLE)]
            rows.append({"machine_id": ids[machine], "machine_name": machine, "name": f"run-{i:06d}",
                         "arn": client.execution_arn(machine, f"run-{i:06d}"), "status": status, "input": {"i": i},
                         "started_at": now - count + i, "event_count": 4,
                         "stopped_at": None if status == "RUNNING" else now - count + i + 0.25})
        with client.db.begin() as conn:
            conn.execute(executions.insert(), rows)
    if client.db.dialect.name == "postgresql":  # what autovacuum does after a bulk load: the planner needs stats
        with client.db.begin() as conn:
            conn.execute(sa.text("ANALYZE executions"))


def timed(http: httpx.Client, path: str, rounds: int) -> tuple[float, float, int]:
    """(median ms, p95 ms, bytes) of ``rounds`` GETs after one warm-up."""
    answer = http.get(path)
    answer.raise_for_status()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        answer = http.get(path)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], len(answer.content)


def pages(db: str, count: int, rounds: int, folder: Path) -> None:
    from consoletools import ConsoleProcess  # the tests' `statemill console` subprocess
    client = Client(db)
    began = time.perf_counter()
    seed(client, count)
    print(f"seeded {count} executions in {time.perf_counter() - began:.1f} s ({client.db.dialect.name})")
    with client.reader.connect() as conn:
        last = conn.execute(sa.select(sa.func.min(executions.c.id))).scalar() + 60
    console = ConsoleProcess(folder, db)
    try:
        with httpx.Client(base_url=console.url, timeout=60) as http:
            floor = timed(http, "/console/static/console.css", rounds)
            print(f"\n{'GET':<62} {'median':>9} {'p95':>9} {'x floor':>8} {'bytes':>8}")
            print(f"{'/console/static/console.css (baseline: the HTTP floor)':<62} {floor[0]:7.1f}ms {floor[1]:7.1f}ms"
                  f" {1:7.1f}x {floor[2]:>8}")
            for path in ["/console/executions", "/console/executions?machine=payments",
                         "/console/executions?status=TIMED_OUT", "/console/executions?machine=refunds&status=RUNNING",
                         "/console/executions?q=run-0999",
                         "/console/executions?q=no-such-name", f"/console/executions?before={last}",
                         "/console/executions?limit=500", "/console/executions/rows?status=RUNNING",
                         "/console/machines", "/console/machines/orders"]:
                median, p95, size = timed(http, path, rounds)
                print(f"{path:<62} {median:7.1f}ms {p95:7.1f}ms {median / floor[0]:7.1f}x {size:>8}")
    finally:
        console.stop()
        client.db.dispose()


def live(folder: Path, rounds: int) -> None:
    """Median and worst time from the commit that ends an execution to the open execution page showing it."""
    from playwright.sync_api import sync_playwright

    from consoletools import wait_for
    from servertools import ServerProcess
    (folder / "bench_handlers.py").write_text('HANDLERS = {"bench.ask": lambda payload: {}}\n')
    db = f"sqlite:///{folder}/live.db"
    server = ServerProcess(folder, db, "--handlers", "bench_handlers", "-q")
    client = Client(db)
    client.register(APPROVAL, "approval")
    delays = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=os.environ.get("STATEMILL_CHROMIUM",
                                                                               "/usr/bin/chromium"),
                                                 args=["--no-sandbox"])
            page = browser.new_page()
            for i in range(rounds):
                arn = client.start("approval", {}, name=f"live-{i}")["executionArn"]
                token = wait_for(lambda: client.pending_tokens(arn), what="the token")[0]["taskToken"]
                page.goto(f"{server.url}/console/executions/{client.execution_id(arn)}")
                page.locator("#status", has_text="RUNNING").wait_for()
                time.sleep(0.37 * (i % 3))  # land the commit at different points of the 1 s poll
                client.send_task_success(token, "{}")
                page.locator("#status", has_text="SUCCEEDED").wait_for(timeout=15_000)
                seen = time.time()
                with client.reader.connect() as conn:  # the clock time of the commit that ended it
                    committed = conn.execute(sa.select(executions.c.stopped_at)
                                             .where(executions.c.arn == arn)).scalar_one()
                delays.append((seen - committed) * 1000)
            browser.close()
    finally:
        server.stop()
        client.db.dispose()
    delays.sort()
    print(f"\ntransition committed -> open page shows it (Chromium, htmx polling every 1 s, {rounds} runs): "
          f"median {statistics.median(delays):.0f} ms, best {delays[0]:.0f} ms, worst {delays[-1]:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--db", help="a database URL to fill (default: a SQLite file in a temp folder); it must be "
                        "empty")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-browser", action="store_true", help="skip the live-update timing (needs Chromium)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="statemill-console-bench-"))
    try:
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        pages(args.db or f"sqlite:///{folder}/console.db", args.executions, args.rounds, folder)
        if not args.no_browser:
            live(folder, max(3, args.rounds // 2))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
