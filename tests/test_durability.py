"""A worker crash at any point loses nothing.

Real worker processes (tests/crash_worker.py) are killed with SIGKILL at named fault points: before a handler runs,
inside it, after it returns but before the commit, and right after the commit. A clean worker then finishes the
work. Every execution must still succeed with the right output and a gapless history in which each transition is
recorded once, and each handler attempt (one idempotency key) may run at most once more per crash.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import crash_worker
from statemill.engine import Engine, FakeClock
from statemill.engine.interpreter import STEP, Trigger
from statemill.engine.runtime import StaleTransition, claim, commit
from statemill.engine.store.schema import executions, frames, history_events, task_tokens

WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = WORKER.parent.parent
LEASE = 1.0

# Tasks, a Parallel, a Map (two at a time) and a short real-time Wait; 7 handler calls per execution.
DEFINITION = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Task", "Resource": "py:add", "Parameters": {"value.$": "$.n", "by": 1},
                  "ResultPath": "$.first", "Next": "Fork"},
        "Fork": {"Type": "Parallel", "ResultPath": "$.fork", "Next": "Each", "Branches": [
            {"StartAt": "Left", "States": {"Left": {
                "Type": "Task", "Resource": "py:add", "Parameters": {"value.$": "$.first", "by": 10}, "End": True}}},
            {"StartAt": "Right", "States": {"Right": {
                "Type": "Task", "Resource": "py:echo", "End": True,
                "Parameters": {"flag.$": "$.flag", "label.$": "$.label", "nothing.$": "$.nothing"}}}},
        ]},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "ResultPath": "$.each",
                 "ItemSelector": {"value.$": "$$.Map.Item.Value", "by.$": "$$.Map.Item.Index"},
                 "ItemProcessor": {"StartAt": "Item", "States": {
                     "Item": {"Type": "Task", "Resource": "py:add", "End": True}}},
                 "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Last"},
        "Last": {"Type": "Task", "Resource": "py:echo", "End": True,
                 "Parameters": {"first.$": "$.first", "fork.$": "$.fork", "each.$": "$.each", "zero": 0}},
    },
}
VISITS = {"First": 1, "Fork": 1, "Left": 1, "Right": 1, "Each": 1, "Item": 3, "Pause": 1, "Last": 1}
INPUTS = {f"run-{n}": {"n": n, "items": [0, 10, 20], "flag": False, "label": "", "nothing": None}
          for n in (0, 1, 2)}


def expected_output(value: dict) -> dict:
    first = value["n"] + 1
    return {"first": first,
            "fork": [first + 10, {"flag": value["flag"], "label": value["label"], "nothing": value["nothing"]}],
            "each": [item + index for index, item in enumerate(value["items"])],
            "zero": 0}


# ----------------------------------------------------------------------------------------------- helpers
def spawn(db_url: str, calls: Path, *, fault: str | None = None, marker: Path | None = None, skip: int = 0,
          concurrency: int = 1) -> subprocess.Popen:
    """Start a crash_worker process; with ``fault`` it SIGKILLs itself the ``skip``+1-th time it reaches it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    if fault:
        env.update(STATEMILL_FAULT=fault, STATEMILL_FAULT_ONCE=str(marker), CRASH_SKIP_HITS=str(skip))
    return subprocess.Popen([sys.executable, str(WORKER), db_url, str(calls), "--concurrency", str(concurrency),
                             "--lease", str(LEASE)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 30) -> int:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"worker {proc.pid} did not finish in {timeout}s:\n{err}")
    if proc.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"worker exited with {proc.returncode}:\n{err}")
    return proc.returncode


def read_calls(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def stamp(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def assert_gapless(history: list[dict]) -> None:
    """Ids 1..n without gap or repeat; each previousEventId points back at an earlier event."""
    ids = [e["id"] for e in history]
    assert ids == list(range(1, len(history) + 1))
    assert all(0 <= e["previousEventId"] < e["id"] for e in history)
    assert history[0]["type"] == "ExecutionStarted" and history[-1]["type"] == "ExecutionSucceeded"


def links_within_iterations(history: list[dict], states) -> int:
    """Assert that each event of ``states`` whose previous event is also one of theirs follows an event of the same
    Map iteration (its input or output's ``index``); how many such links there are."""
    by_id = {e["id"]: e for e in history}

    def index(event: dict) -> int | None:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
        if details is None or details["name"] not in states:
            return None
        return json.loads(details.get("input") or details["output"])["index"]

    linked = 0
    for event in history:
        before = by_id.get(event["previousEventId"])
        if index(event) is not None and before is not None and index(before) is not None:
            assert index(before) == index(event), (event, before)
            linked += 1
    return linked


def entered_counts(history: list[dict]) -> Counter:
    return Counter(e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered"))


def event_shape(history: list[dict]) -> Counter:
    """The multiset of (event type, state name): what was recorded, regardless of interleaving."""
    return Counter((e["type"], (e.get("stateEnteredEventDetails") or e.get("stateExitedEventDetails") or {})
                    .get("name")) for e in history)


def start_all(db_url: str) -> Engine:
    client = Engine(db_url)
    client.register(DEFINITION, "crashy")
    for name, value in INPUTS.items():
        client.start("crashy", value, name=name)
    return client


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """Each execution run once in-process without crashes: its event multiset and its handler calls."""
    tmp = tmp_path_factory.mktemp("reference")
    calls = tmp / "calls.jsonl"
    engine = Engine(f"sqlite:///{tmp / 'ref.db'}", clock=FakeClock())
    crash_worker.install_handlers(engine, str(calls))
    shapes = {}
    for name, value in INPUTS.items():
        result = engine.run(DEFINITION, value, name=name, machine_name="crashy")
        assert result["status"] == "SUCCEEDED"
        shapes[name] = event_shape(engine.history(result["executionArn"]))
    distinct = Counter((c["execution"], c["state"], c["attempt"], json.dumps(c["input"], sort_keys=True))
                       for c in read_calls(calls))
    engine.db.dispose()
    return {"shapes": shapes, "calls": distinct}


def check_outcome(client: Engine, calls: list[dict], reference: dict, crashes: int, duplicates: int) -> None:
    for name, value in INPUTS.items():
        arn = client.execution_arn("crashy", name)
        described = client.describe(arn)
        assert described["status"] == "SUCCEEDED", described
        assert described["output"] == expected_output(value)
        history = client.history(arn)
        assert_gapless(history)
        assert entered_counts(history) == Counter(VISITS)
        assert event_shape(history) == reference["shapes"][name]
    # Nothing lost: every call the crash-free run made was made here too, and nothing else.
    distinct = {(c["execution"], c["state"], c["attempt"], json.dumps(c["input"], sort_keys=True)) for c in calls}
    assert distinct == set(reference["calls"])
    per_key = Counter(c["key"] for c in calls)
    assert len(per_key) == sum(reference["calls"].values()), "one idempotency key per handler attempt"
    assert max(per_key.values()) <= 1 + crashes
    assert sum(per_key.values()) - len(per_key) == duplicates


# ----------------------------------------------------------------------------------------------- crash tests
# Where a SIGKILL lands and how many extra handler calls each crash costs (the worker runs one frame at a time).
POINTS = {
    "before_handler": 0,  # the handler never ran: the next worker runs it for the first time
    "in_handler": 1,      # it ran (and recorded the call) but never returned: it runs again, same key
    "after_handler": 1,   # it returned but nothing was committed: it runs again, same key
    "after_commit": 0,    # the result is committed: nobody runs it again
}


@pytest.mark.parametrize("point", list(POINTS), ids=[f"killed_{p}" for p in POINTS])
def test_sigkilled_workers_lose_nothing(point, tmp_path, db_url, reference):
    client = start_all(db_url)
    calls = tmp_path / "calls.jsonl"
    skips = (0, 3, 6)  # the 1st, 4th and 7th time the worker reaches the point: early, mid-Parallel, mid-Map
    for crash, skip in enumerate(skips):
        proc = spawn(db_url, calls, fault=point, marker=tmp_path / f"crashed-{crash}", skip=skip)
        assert finish(proc) == -signal.SIGKILL, f"crash worker {crash} was not killed at {point}"
    assert all((tmp_path / f"crashed-{crash}").exists() for crash in range(len(skips)))
    assert client.list(status="RUNNING"), "the crashes left work to finish"

    assert finish(spawn(db_url, calls, concurrency=8)) == 0
    check_outcome(client, read_calls(calls), reference, crashes=len(skips),
                  duplicates=POINTS[point] * len(skips))


def test_crashes_at_every_point_in_turn_lose_nothing(tmp_path, db_url, reference):
    client = start_all(db_url)
    calls = tmp_path / "calls.jsonl"
    order = ["after_commit", "in_handler", "before_handler", "after_handler", "after_commit", "in_handler"]
    for crash, point in enumerate(order):
        proc = spawn(db_url, calls, fault=point, marker=tmp_path / f"crashed-{crash}", skip=crash % 3,
                     concurrency=1)
        assert finish(proc) == -signal.SIGKILL, f"crash worker {crash} was not killed at {point}"
    assert finish(spawn(db_url, calls, concurrency=4)) == 0
    check_outcome(client, read_calls(calls), reference, crashes=len(order),
                  duplicates=sum(POINTS[p] for p in order))


def test_a_wait_survives_a_killed_worker_and_ends_on_time(tmp_path, db_url):
    definition = {"StartAt": "Before", "States": {
        "Before": {"Type": "Task", "Resource": "py:echo", "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 2, "Next": "After"},
        "After": {"Type": "Task", "Resource": "py:echo", "End": True}}}
    client = Engine(db_url)
    client.register(definition, "napper")
    arn = client.start("napper", {"zero": 0, "no": False, "empty": "", "none": None}, name="nap")["executionArn"]
    calls = tmp_path / "calls.jsonl"

    first = spawn(db_url, calls)
    deadline = time.monotonic() + 15
    while not any(e["type"] == "WaitStateEntered" for e in client.history(arn)):
        assert time.monotonic() < deadline, "the worker never reached the Wait"
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    assert finish(first) == -signal.SIGKILL
    assert client.status(arn) == "RUNNING"
    time.sleep(0.5)  # nobody is serving the execution for a while

    assert finish(spawn(db_url, calls)) == 0
    described = client.describe(arn)
    assert described["status"] == "SUCCEEDED"
    assert described["output"] == {"zero": 0, "no": False, "empty": "", "none": None}
    history = client.history(arn)
    assert_gapless(history)
    by_type = {e["type"]: e for e in history}
    waited = stamp(by_type["WaitStateExited"]) - stamp(by_type["WaitStateEntered"])
    assert 2.0 <= waited < 3.0
    assert [c["state"] for c in read_calls(calls)] == ["Before", "After"]


# ----------------------------------------------------------------------------------------------- zombies
def snapshot(engine: Engine) -> dict:
    with engine.db.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))]
                for table in (executions, frames, history_events, task_tokens)}


ZOMBIES = ["commits_after_the_reclaimer_committed", "commits_while_the_reclaimer_holds_the_lease",
           "commits_the_same_version_twice"]


@pytest.mark.parametrize("case", ZOMBIES, ids=[f"zombie_{c}" for c in ZOMBIES])
def test_a_late_commit_changes_nothing(case, engine, fake_clock):
    """A worker whose lease expired (another one reclaimed the frame) commits late: StaleTransition, no change."""
    machine = engine.register({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "py:work", "End": True}}}, "zombie")
    arn = engine.start("zombie", {"n": 0}, name="z")["executionArn"]
    with engine.db.connect() as conn:
        execution_id = conn.execute(sa.select(executions.c.id).where(executions.c.arn == arn)).scalar_one()
    compiled, info = engine.machine(machine["id"]), engine.execution_info(execution_id)
    lease = 10.0

    def claim_as(worker: str):
        with engine.db.begin() as conn:
            (claimed,) = claim(conn, worker, 1, fake_clock.now(), lease)
        return claimed

    def commit_as(worker: str, claimed, trigger):
        with engine.db.begin() as conn:
            return commit(conn, compiled, claimed, trigger, info, worker, fake_clock.now(), lease, True,
                          engine.payload_limit)

    # Enter the Task state so the frame waits for its handler's result, then let that lease lapse.
    commit_as("first", claim_as("first"), STEP)
    fake_clock.advance(lease + 1)
    zombie = claim_as("zombie")
    assert zombie.phase == "task"
    fake_clock.advance(lease + 1)  # the zombie stalls past its lease...
    live = claim_as("live")        # ...and another worker reclaims the same frame version
    assert (live.id, live.version) == (zombie.id, zombie.version)

    if case == "commits_after_the_reclaimer_committed":
        commit_as("live", live, Trigger("result", {"by": "live", "zero": 0}))
        before = snapshot(engine)
        with pytest.raises(StaleTransition):
            commit_as("zombie", zombie, Trigger("result", {"by": "zombie"}))
        assert snapshot(engine) == before
    elif case == "commits_while_the_reclaimer_holds_the_lease":
        before = snapshot(engine)
        with pytest.raises(StaleTransition):
            commit_as("zombie", zombie, Trigger("result", {"by": "zombie"}))
        assert snapshot(engine) == before
        commit_as("live", live, Trigger("result", {"by": "live", "zero": 0}))
    else:
        commit_as("live", live, Trigger("result", {"by": "live", "zero": 0}))
        before = snapshot(engine)
        with pytest.raises(StaleTransition):
            commit_as("live", live, Trigger("result", {"by": "live", "zero": 0}))
        assert snapshot(engine) == before

    described = engine.describe(arn)
    assert described["status"] == "SUCCEEDED"
    assert described["output"] == {"by": "live", "zero": 0}
    history = engine.history(arn)
    assert_gapless(history)
    assert [e["type"] for e in history].count("TaskSucceeded") == 1


def test_the_version_fence_refuses_the_lease_holder_committing_one_version_twice(engine, fake_clock):
    """The compare-and-set on ``version`` itself: the lease holder still holds the lease after its first commit
    (the frame stays runnable on it), so only the version refuses the second commit of the same version."""
    machine = engine.register({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "py:work", "End": True}}}, "fence")
    arn = engine.start("fence", {"zero": 0}, name="f")["executionArn"]
    with engine.db.begin() as conn:
        (claimed,) = claim(conn, "holder", 1, fake_clock.now(), 10.0)
        execution_id = claimed.execution_id
    compiled, info = engine.machine(machine["id"]), engine.execution_info(execution_id)

    def commit_again():
        with engine.db.begin() as conn:
            return commit(conn, compiled, claimed, STEP, info, "holder", fake_clock.now(), 10.0, True,
                          engine.payload_limit)

    commit_again()  # enters the Task state: TaskStateEntered, TaskScheduled
    with engine.db.connect() as conn:
        row = conn.execute(sa.select(frames.c.version, frames.c.lease_owner)).one()
    assert (row.version, row.lease_owner) == (claimed.version + 1, "holder")
    before = snapshot(engine)
    with pytest.raises(StaleTransition):
        commit_again()
    assert snapshot(engine) == before
    assert [e["type"] for e in engine.history(arn)] == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled"]
