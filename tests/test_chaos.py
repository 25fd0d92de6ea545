"""Chaos: several worker processes share one database while random workers are SIGKILLed and replaced.

Executions mix Task, Parallel, Map, Wait and a callback Task; the test process answers the task tokens from
outside. At the end every execution has finished with the right output, every history is gapless, no state was
entered twice for one visit, and no handler ran more than once per kill.

The default size takes a few seconds; ``STATEMILL_CHAOS_EXECUTIONS`` (default 40) and ``STATEMILL_CHAOS_KILLS``
(default 5, at least 3 always happen) run it long, e.g. ``STATEMILL_CHAOS_EXECUTIONS=1000 STATEMILL_CHAOS_KILLS=40``.
"""
from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from statemill.engine import Client, TaskTimedOut
from statemill.engine.store.schema import executions

WORKER = Path(__file__).with_name("crash_worker.py")

DEFINITION = {
    "StartAt": "Add",
    "States": {
        "Add": {"Type": "Task", "Resource": "py:add", "Parameters": {"value.$": "$.n", "by": 1},
                "ResultPath": "$.sum", "Next": "Both"},
        "Both": {"Type": "Parallel", "ResultPath": "$.both", "Next": "Each", "Branches": [
            {"StartAt": "Left", "States": {"Left": {"Type": "Task", "Resource": "py:echo",
                                                    "Parameters": {"side": "left", "zero": 0}, "End": True}}},
            {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": True}}}]},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ResultPath": "$.each", "Next": "Ask",
                 "ItemProcessor": {"StartAt": "Item", "States": {
                     "Item": {"Type": "Task", "Resource": "py:add", "End": True,
                              "Parameters": {"value.$": "$", "by": 10}}}}},
        "Ask": {"Type": "Task", "Resource": "py:echo.waitForTaskToken", "ResultPath": "$.answer", "End": True,
                "Parameters": {"token.$": "$$.Task.Token", "empty": ""}},
    },
}
MIN_KILLS = 3
ENTERED_PER_EXECUTION = {"Add": 1, "Both": 1, "Left": 1, "Nap": 1, "Each": 1, "Item": 3, "Ask": 1}


def spawn(db_url: str, calls: Path, lease: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), db_url, str(calls), "--concurrency", "4",
                             "--lease", str(lease), "--deadline", "600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def answer_tokens(client: Client) -> int:
    answered = 0
    for task in client.pending_tokens():
        try:
            client.send_task_success(task["taskToken"], {"ok": True, "no": False, "none": None})
            answered += 1
        except TaskTimedOut:  # the attempt ended meanwhile (a retry, or answered by a previous pass)
            pass
    return answered


def running(client: Client) -> int:
    with client.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(executions)
                            .where(executions.c.status == "RUNNING")).scalar()


@pytest.mark.timeout(600)
def test_executions_survive_workers_killed_at_random(db_url, tmp_path):
    size = int(os.environ.get("STATEMILL_CHAOS_EXECUTIONS", "40"))
    most_kills = max(MIN_KILLS, int(os.environ.get("STATEMILL_CHAOS_KILLS", "5")))
    lease = 1.5
    rng = random.Random(7)
    client = Client(db_url)
    client.register(DEFINITION, "chaos")
    arns = [client.start("chaos", {"n": i, "items": [0, i, -i]}, name=f"c{i}")["executionArn"]
            for i in range(size)]
    calls = tmp_path / "calls.jsonl"
    workers = [spawn(db_url, calls, lease) for _ in range(3)]
    kills, deadline = 0, time.monotonic() + 540
    next_kill = time.monotonic() + rng.uniform(0.2, 0.6)
    try:
        while running(client) and time.monotonic() < deadline:
            if kills >= MIN_KILLS:  # until then every execution waits at Ask: the kills land on a running system
                answer_tokens(client)
            if time.monotonic() >= next_kill and kills < most_kills:
                victim = rng.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                assert workers[victim].wait() == -signal.SIGKILL
                kills += 1
                workers[victim] = spawn(db_url, calls, lease)
                next_kill = time.monotonic() + rng.uniform(0.3, 1.0)
            time.sleep(0.1)
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(30)

    assert running(client) == 0, "some executions never finished"
    assert kills >= MIN_KILLS
    for i, arn in enumerate(arns):
        description = client.describe(arn)
        assert description["status"] == "SUCCEEDED", (arn, description)
        output = description["output"]
        assert output["sum"] == i + 1
        assert output["both"] == [{"side": "left", "zero": 0}, {"items": [0, i, -i], "n": i, "sum": i + 1}]
        assert output["each"] == [10, i + 10, -i + 10]
        assert output["answer"] == {"ok": True, "no": False, "none": None}

        events = client.history(arn)
        assert [e["id"] for e in events] == list(range(1, len(events) + 1)), f"history of {arn} has a gap"
        entered = collections.Counter(e["stateEnteredEventDetails"]["name"] for e in events
                                      if e["type"].endswith("StateEntered"))
        assert entered == ENTERED_PER_EXECUTION, f"{arn}: a transition was recorded twice or lost: {entered}"

    per_key = collections.Counter(json.loads(line)["key"] for line in calls.read_text().splitlines())
    handler_calls_needed = size * 5  # Add, Left, 3 Items (the callback handler is counted too: +1)
    assert len(per_key) == handler_calls_needed + size
    assert max(per_key.values()) <= 1 + kills, "a handler ran more than once per kill"
    extra = sum(per_key.values()) - len(per_key)
    assert extra <= kills * 4, f"{extra} repeated handler calls for {kills} kills of 4-slot workers"
