"""A worker process for the crash tests: serves every execution in DBURL until none is RUNNING.

    python tests/crash_worker.py DBURL CALLS_FILE [--concurrency N] [--lease SECONDS] [--deadline SECONDS]

Its handlers append one JSON line per call to CALLS_FILE (execution, state, attempt, idempotency key) so a test
can count how often each attempt ran. ``STATEMILL_FAULT`` / ``STATEMILL_FAULT_ONCE`` make it SIGKILL itself at a
named point; ``in_handler`` is the handlers' own fault point, hit after the call was recorded.
``CRASH_SKIP_HITS=N`` lets the first N hits of the point pass, so a crash can land deeper into the work.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import sqlalchemy as sa

from statemill.engine import Engine, runtime
from statemill.engine import worker as worker_module
from statemill.engine.store.schema import executions

_hits = 0
_runtime_fault = runtime.fault


def fault(point: str) -> None:
    """``runtime.fault``, except that the first ``$CRASH_SKIP_HITS`` hits of the armed point are let through."""
    global _hits
    if point == os.environ.get("STATEMILL_FAULT"):
        _hits += 1
        if _hits <= int(os.environ.get("CRASH_SKIP_HITS", "0")):
            return
    _runtime_fault(point)


def record(calls_path: str, value, context) -> None:
    """Append one line per handler call; a single O_APPEND write keeps lines whole across processes."""
    line = json.dumps({"execution": context.execution_name, "state": context.state_name,
                       "attempt": context.attempt, "key": context.idempotency_key, "input": value}) + "\n"
    fd = os.open(calls_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def install_handlers(engine: Engine, calls_path: str) -> None:
    """The handlers the crash tests' definitions use (also used in-process for reference runs)."""

    @engine.handler("py:add")
    def add(value, context):
        record(calls_path, value, context)
        fault("in_handler")
        return value["value"] + value["by"]

    @engine.handler("py:flaky")
    def flaky(value, context):
        """Returns the item's ``n``; an item with ``fail`` raises until the file ``fixed`` exists."""
        record(calls_path, value, context)
        if value.get("fail") and not os.path.exists(value["fixed"]):
            raise RuntimeError(f"item {value['n']} is broken")
        fault("in_handler")
        return value["n"]

    @engine.handler("py:echo")
    def echo(value, context):
        record(calls_path, value, context)
        fault("in_handler")
        return value


def running(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(executions)
                            .where(executions.c.status == "RUNNING")).scalar()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("calls")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--deadline", type=float, default=30.0, help="give up (exit 3) after this many seconds")
    args = parser.parse_args(argv)
    worker_module.fault = runtime.fault = fault  # the worker's and runtime's fault points count hits too
    engine = Engine(args.db_url)
    install_handlers(engine, args.calls)
    worker = engine.worker(concurrency=args.concurrency, lease_seconds=args.lease, poll_seconds=0.05)
    give_up = time.monotonic() + args.deadline
    try:
        worker.run(until=lambda: running(engine) == 0 or time.monotonic() > give_up)
    finally:
        worker.close()
    return 0 if running(engine) == 0 else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
