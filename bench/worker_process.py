"""What the benches that drive a real worker process share: its databases, spawning and stopping it, the worker
side itself (a handler that hands task tokens out), the common command-line options and the per-database loop."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

SERVER = os.environ.get("STATEMILL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def serve(url: str, poll: float, concurrency: int, prepare: Callable = lambda engine: None) -> None:
    """The worker process: ``bench.notify`` hands the token out (returns at once), ``prepare(engine)`` adds what a
    bench needs, then the worker loop runs until SIGTERM."""
    from statemill.engine import Engine

    engine = Engine(url)
    engine.handler("bench.notify")(lambda value: {"handed_out": True})
    worker = engine.worker(poll_seconds=poll, concurrency=concurrency)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    prepare(engine)
    print("ready", flush=True)
    try:
        worker.run()
    finally:
        worker.close()


def wait_until(check, timeout: float, every: float = 0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError("the worker did not get there in time")


class Databases:
    """The databases to measure: each ``--db`` as given (``sqlite``: a temp file), by default a temp SQLite file
    and, when a PostgreSQL server answers, a throwaway database on it (dropped by ``close``)."""

    def __init__(self, given: list[str] | None, tmp: Path):
        self.urls: list[str] = []
        self._drop: list[tuple[sa.Engine, str]] = []
        for url in given or ["sqlite", "postgresql"]:
            if url == "sqlite":
                url = f"sqlite:///{tmp / f'bench-{len(self.urls)}.db'}"
            elif url == "postgresql":
                url = self._throwaway(SERVER)
                if url is None:
                    print(f"(no PostgreSQL server answers at {SERVER}: measuring SQLite only)", flush=True)
                    continue
            self.urls.append(url)

    def _throwaway(self, server: str) -> str | None:
        admin = sa.create_engine("postgresql+psycopg://" + server.split("://", 1)[1], isolation_level="AUTOCOMMIT",
                                 connect_args={"connect_timeout": 3})
        name = f"statemill_bench_{uuid.uuid4().hex[:10]}"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except Exception:  # noqa: BLE001 - no server, or no right to create a database: skip PostgreSQL
            admin.dispose()
            return None
        self._drop.append((admin, name))
        return server.rsplit("/", 1)[0] + "/" + name

    def close(self) -> None:
        for admin, name in self._drop:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def spawn(script: str, url: str, poll: float, concurrency: int) -> subprocess.Popen:
    """A worker process on ``url`` (``script`` with --worker), once it is ready."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    worker = subprocess.Popen([sys.executable, script, "--worker", url, "--poll", str(poll),
                               "--concurrency", str(concurrency)], cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    assert worker.stdout.readline().strip() == "ready"
    return worker


def stop(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def arguments(doc: str, quick: str) -> argparse.ArgumentParser:
    """A parser with the options every worker bench takes (--quick, --db, --poll, --concurrency, --json)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--db", action="append", help="a database URL, or `sqlite` (a temp file) or `postgresql` "
                        "(a throwaway database); repeat for several (default: both)")
    parser.add_argument("--poll", type=float, default=0.25, help="the worker's poll interval (its default: 0.25 s)")
    parser.add_argument("--concurrency", type=int, default=16, help="the worker's concurrency (its default: 16)")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    return parser


def each_database(args, name: str, headline: str, measure: Callable[[str, argparse.Namespace], dict],
                  **figures) -> None:
    """Run ``measure(url, args)`` on every database, then print (and with --json write) the results."""
    with tempfile.TemporaryDirectory(prefix=f"statemill-{name}-") as tmp:
        databases = Databases(args.db, Path(tmp))
        print(f"statemill {name} bench: {headline}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
              flush=True)
        results = []
        try:
            for url in databases.urls:
                results.append(measure(url, args))
        finally:
            databases.close()
        print(json.dumps({**figures, "results": results}))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps({**figures, "results": results}, indent=2))
