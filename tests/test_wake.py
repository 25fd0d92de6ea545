"""Wake-ups on SQLite: a process that commits new work (an answered token, a started or stopped execution) pokes
every live worker's wake socket, so an idle worker carries on at once instead of at its next poll.

The workers here poll every 30 s: an execution that finishes within the test's timeout was woken by the socket.
A stale address (a dead worker's, or garbage) never fails the committing process nor stops the live worker waking.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from enginetools import wait_for
from statemill.engine import Engine
from statemill.engine.runtime import TERMINAL
from statemill.engine.store.schema import workers
from statemill.engine.wake import WakeSocket, poke

ROOT = Path(__file__).resolve().parent.parent
POLL = 30.0  # longer than any wait below: only a wake-up can make these executions move in time
ASK = {"StartAt": "Ask", "States": {
    "Ask": {"Type": "Task", "Resource": "notify.waitForTaskToken", "Parameters": {"token.$": "$$.Task.Token"},
            "ResultPath": "$.answer", "Next": "Done"},
    "Done": {"Type": "Pass", "End": True}}}
INPUT = {"n": 0, "flag": False, "text": "", "nothing": None}


@pytest.fixture
def live(tmp_path) -> Engine:
    made = Engine(f"sqlite:///{tmp_path / 'wake.db'}")
    made.handler("notify")(lambda value: {"sent": True})
    made.register(ASK, "ask")
    yield made
    made.db.dispose()


@contextlib.contextmanager
def idle_worker(engine: Engine, **options):
    worker = engine.worker(poll_seconds=POLL, **options)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: engine.workers())
        yield worker
    finally:
        worker.stop()
        thread.join(10)
        worker.close()


def statemill(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    return subprocess.run([sys.executable, "-m", "statemill.cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def parked_token(engine: Engine, arn: str) -> str:
    return wait_for(lambda: [t["taskToken"] for t in engine.pending_tokens(arn)
                             if engine.history(arn)[-1]["type"] == "TaskSubmitted"])[0]


def dead_address() -> str:
    """The address of a wake socket whose worker is gone."""
    gone = WakeSocket()
    gone.close()
    return gone.address


# ----------------------------------------------------------------------------------------------- the socket
def test_a_poke_wakes_the_socket_and_a_quiet_socket_times_out():
    waker = WakeSocket()
    try:
        assert waker.wait(0.05) is False
        poke([waker.address, waker.address])
        assert waker.wait(5) is True
        assert waker.wait(0.05) is False  # both pokes were taken by the first wake-up
    finally:
        waker.close()


@pytest.mark.parametrize("address", [dead_address(), "unix:@statemill-nobody-listens", "udp:127.0.0.1:not-a-port",
                                     "udp:nowhere", "nonsense", "", "unix:", None, 0])
def test_poking_a_stale_or_malformed_address_does_nothing(address):
    poke([address])


def test_a_worker_records_its_wake_address_and_removes_it_when_it_stops(live):
    with idle_worker(live) as worker:
        with live.db.connect() as conn:
            recorded = conn.execute(sa.select(workers.c.wake_address).where(workers.c.id == worker.id)).scalar()
        assert recorded and recorded.startswith(("unix:@", "udp:"))
    with live.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(workers)).scalar() == 0


# ----------------------------------------------------------------------------------------------- other processes
def test_an_answer_from_another_process_wakes_an_idle_worker(live):
    answer = {"ok": False, "n": 0, "s": "", "z": None}
    with idle_worker(live):
        arn = live.start("ask", INPUT)["executionArn"]
        token = parked_token(live, arn)
        done = statemill("send-task-success", "--db", str(live.db.url.database), "--task-token", token,
                         "--task-output", json.dumps(answer))
        assert done.returncode == 0, done.stderr
        wait_for(lambda: live.status(arn) in TERMINAL)
    described = live.describe(arn)
    assert described["status"] == "SUCCEEDED" and described["output"] == {**INPUT, "answer": answer}


def test_a_start_from_another_process_wakes_an_idle_worker(live, tmp_path):
    (tmp_path / "ask.json").write_text(json.dumps(ASK))
    with idle_worker(live):
        done = statemill("start", str(tmp_path / "ask.json"), "--db", str(live.db.url.database), "--name",
                         "from-outside", "--input", json.dumps(INPUT), "--json")
        assert done.returncode == 0, done.stderr
        arn = json.loads(done.stdout)["executionArn"]
        parked_token(live, arn)  # the worker ran the task and parked it, long before its poll


def test_a_stale_address_of_a_dead_worker_does_not_keep_the_live_one_asleep(live):
    now = time.time()
    with live.db.begin() as conn:  # a worker killed without deregistering, and rows no socket ever had
        for n, address in enumerate([dead_address(), "unix:@statemill-nobody-listens", "udp:127.0.0.1:0",
                                     "nonsense"]):
            conn.execute(workers.insert().values(id=f"dead-{n}", host=os.uname().nodename, pid=0, started_at=now,
                                                 last_heartbeat=now, handler_keys=[], wake_address=address))
    with idle_worker(live):
        arn = live.start("ask", INPUT)["executionArn"]
        token = parked_token(live, arn)
        done = statemill("send-task-failure", "--db", str(live.db.url.database), "--task-token", token,
                         "--error", "Rejected", "--cause", "")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: live.status(arn) in TERMINAL)
    described = live.describe(arn)
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", "Rejected", "")


def test_a_stop_from_another_process_ends_a_run_at_once(live):
    arn = live.start("ask", INPUT)["executionArn"]
    result = {}
    running = threading.Thread(target=lambda: result.update(live.wait(arn, poll_seconds=POLL)), daemon=True)
    running.start()
    parked_token(live, arn)
    done = statemill("stop", arn, "--db", str(live.db.url.database))
    assert done.returncode == 0, done.stderr
    running.join(10)
    assert not running.is_alive(), "the run did not notice the stop before its poll"
    assert result["status"] == "ABORTED"


# ----------------------------------------------------------------------------------------------- upgrades
def test_a_database_from_before_the_wake_address_gains_the_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    made = Engine(url)
    with made.db.begin() as conn:  # as version 8 left it
        conn.execute(sa.text("ALTER TABLE workers DROP COLUMN wake_address"))
        conn.execute(sa.text("UPDATE statemill_schema set version = 8"))
    made.db.dispose()
    upgraded = Engine(url)
    try:
        assert "wake_address" in {c["name"] for c in sa.inspect(upgraded.db).get_columns("workers")}
        upgraded.handler("notify")(lambda value: {"sent": True})
        upgraded.register(ASK, "ask")
        with idle_worker(upgraded):
            arn = upgraded.start("ask", INPUT)["executionArn"]
            upgraded.send_task_success(parked_token(upgraded, arn), "0")
            wait_for(lambda: upgraded.status(arn) == "SUCCEEDED")
    finally:
        upgraded.db.dispose()
