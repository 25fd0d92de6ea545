"""Redriving a Parallel or Map re-runs only what did not succeed: the succeeded branches and iterations keep their
output, each other one restarts at the state where it failed (or was aborted, or had not started), within the
Map's MaxConcurrency; the output is whole and in order. Also after a worker is SIGKILLed in the middle of it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

import crash_worker
from statemill.engine import Engine, FakeClock
from statemill.engine.store.schema import executions, frames

WORKER = Path(__file__).with_name("crash_worker.py")
FAILING = (0, 7, 29)  # item 0 and the last one too
ITEMS = 30


def each(concurrency: int = 0, prepare: bool = True, retry: bool = False) -> dict:
    """A Map over ``$.items``: each iteration runs Prep (succeeds) then Work (py:flaky). With ``retry``, Work is
    retried once after 1 s, so the failing items fail for good after every other one has succeeded (the first
    failure aborts the iterations still running)."""
    states = {"Work": {"Type": "Task", "Resource": "py:flaky", "End": True}}
    if retry:
        states["Work"]["Retry"] = [{"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    if prepare:
        states = {"Prep": {"Type": "Task", "Resource": "py:echo", "Next": "Work"}, **states}
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": concurrency, "ResultPath": "$.out",
        "ItemProcessor": {"StartAt": "Prep" if prepare else "Work", "States": states}, "End": True}}}


def items(fixed: Path, count: int = ITEMS, failing=FAILING) -> list[dict]:
    return [{"n": n, "fail": n in failing, "fixed": str(fixed), "zero": 0, "no": False, "empty": "", "null": None}
            for n in range(count)]


def calls(path: Path, state: str = "Work") -> Counter:
    if not path.exists():
        return Counter()
    return Counter(c["input"]["n"] for c in map(json.loads, path.read_text().splitlines()) if c["state"] == state)


@pytest.fixture
def flaky(engine, tmp_path):
    """The engine with crash_worker's handlers; ``tmp_path/calls`` records each call, ``tmp_path/fixed`` fixes."""
    crash_worker.install_handlers(engine, str(tmp_path / "calls"))
    return engine


def failed_run(engine, definition, value, name="each") -> str:
    done = engine.run(definition, value, machine_name=name)
    assert done["status"] == "FAILED" and done["error"] == "RuntimeError"
    return done["executionArn"]


@pytest.mark.parametrize("concurrency", [0, 10])
def test_only_the_failed_iterations_run_again_from_their_failed_state(flaky, tmp_path, concurrency):
    value = {"items": items(tmp_path / "fixed")}
    arn = failed_run(flaky, each(concurrency, retry=True), value)
    before_work, before_prep = calls(tmp_path / "calls"), calls(tmp_path / "calls", "Prep")
    (tmp_path / "fixed").touch()
    flaky.redrive(arn)
    done = flaky.wait(arn)
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {**value, "out": list(range(ITEMS))}
    again = calls(tmp_path / "calls") - before_work
    assert sorted(again) == list(FAILING) and set(again.values()) == {1}
    assert calls(tmp_path / "calls", "Prep") == before_prep  # an iteration restarts at Work, not at Prep


def test_the_history_goes_on_inside_the_map(flaky, tmp_path):
    """No second MapStateEntered: the Map goes on; only the re-run iterations start again (MapIterationStarted),
    each at its failed state; then the Map succeeds and exits."""
    arn = failed_run(flaky, each(prepare=False, retry=True), {"items": items(tmp_path / "fixed", 5, (1, 3))})
    before = flaky.history(arn)
    (tmp_path / "fixed").touch()
    flaky.redrive(arn)
    flaky.wait(arn)
    after = flaky.history(arn)
    assert after[:len(before)] == before
    assert [e["id"] for e in after] == list(range(1, len(after) + 1))
    new = after[len(before):]
    kinds = [e["type"] for e in new]
    assert kinds[0] == "ExecutionRedriven" and "MapStateEntered" not in kinds
    started = [e["mapIterationStartedEventDetails"]["index"] for e in new if e["type"] == "MapIterationStarted"]
    assert sorted(started) == [1, 3]
    assert kinds.count("TaskStateEntered") == 2
    assert kinds[-3:] == ["MapStateSucceeded", "MapStateExited", "ExecutionSucceeded"]


def test_never_started_iterations_wait_for_a_slot(flaky, tmp_path, db_url):
    """Item 0 fails first with one slot: the other 29 never started; the redrive starts only one at a time."""
    arn = failed_run(flaky, each(concurrency=1, prepare=False), {"items": items(tmp_path / "fixed")})
    assert sorted(calls(tmp_path / "calls")) == [0]
    (tmp_path / "fixed").touch()
    flaky.redrive(arn)
    with flaky.db.connect() as conn:
        statuses = Counter(conn.execute(sa.select(frames.c.status).where(frames.c.parent_id.is_not(None)))
                           .scalars())
    assert statuses == {"ACTIVE": 1, "PENDING": ITEMS - 1}
    assert flaky.wait(arn)["output"]["out"] == list(range(ITEMS))


def test_only_the_failed_branch_of_a_parallel_runs_again(flaky, tmp_path):
    fixed = str(tmp_path / "fixed")
    definition = {"StartAt": "Fork", "States": {"Fork": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Left", "States": {"Left": {"Type": "Task", "Resource": "py:flaky", "End": True,
                                                "Parameters": {"n": 0, "fail": False, "fixed": fixed}}}},
        {"StartAt": "Right", "States": {"Right": {"Type": "Task", "Resource": "py:flaky", "End": True,
                                                  "Parameters": {"n": 1, "fail": True, "fixed": fixed},
                                                  "Retry": [{"ErrorEquals": ["RuntimeError"], "MaxAttempts": 1}]}}}]}}}
    arn = failed_run(flaky, definition, {"zero": 0})
    (tmp_path / "fixed").touch()
    flaky.redrive(arn)
    assert flaky.wait(arn)["output"] == [0, 1]
    assert calls(tmp_path / "calls", "Left") == {0: 1}
    assert calls(tmp_path / "calls", "Right") == {1: 3}  # tried twice, then once on the redrive


def test_a_map_inside_an_iteration_keeps_its_own_successes(flaky, tmp_path):
    inner = each(prepare=False, retry=True)["States"]["Each"] | {"ItemsPath": "$.inner", "ResultPath": None,
                                                     "OutputPath": "$.inner[0].n"}
    definition = {"StartAt": "Outer", "States": {"Outer": {
        "Type": "Map", "ItemsPath": "$.outer", "End": True,
        "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": inner}}}}}
    rows = items(tmp_path / "fixed", 6, (4,))
    arn = failed_run(flaky, definition, {"outer": [{"inner": rows[:3]}, {"inner": rows[3:]}]})
    before = calls(tmp_path / "calls")
    (tmp_path / "fixed").touch()
    flaky.redrive(arn)
    assert flaky.wait(arn)["output"] == [0, 3]
    assert calls(tmp_path / "calls") - before == {4: 1}


def test_a_failed_map_keeps_only_the_outputs_of_its_succeeded_iterations(flaky, tmp_path):
    arn = failed_run(flaky, each(retry=True), {"items": items(tmp_path / "fixed", 4, (2,))})
    with flaky.db.connect() as conn:
        kept = conn.execute(sa.select(frames.c.status, frames.c.input, frames.c.data, frames.c.output)
                            .where(frames.c.parent_id.is_not(None)).order_by(frames.c.idx)).all()
    assert [(k.status, k.input, k.data, k.output) for k in kept if k.status == "SUCCEEDED"] == \
        [("SUCCEEDED", None, None, n) for n in (0, 1, 3)]
    (tmp_path / "fixed").touch()
    flaky.redrive(arn)
    flaky.wait(arn)
    with flaky.db.connect() as conn:  # once it succeeded, nothing is kept below the root
        assert conn.execute(sa.select(sa.func.count()).select_from(frames)
                            .where(frames.c.parent_id.is_not(None))).scalar() == 0


def test_a_stopped_map_runs_the_unfinished_iterations(flaky, tmp_path):
    arn = flaky.start(flaky.register(each(concurrency=2, prepare=False), "each")["name"],
                      {"items": items(tmp_path / "fixed", 6, ())})["executionArn"]
    flaky.worker().run(until=lambda: sum(calls(tmp_path / "calls").values()) >= 3)
    flaky.stop(arn)
    before = calls(tmp_path / "calls")
    flaky.redrive(arn)
    assert flaky.wait(arn)["output"]["out"] == list(range(6))
    assert sorted(before + (calls(tmp_path / "calls") - before)) == list(range(6))  # each item once in all


def spawn(db_url: str, path: Path, fault: str | None = None, marker: Path | None = None, skip: int = 0):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    if fault:
        env.update(STATEMILL_FAULT=fault, STATEMILL_FAULT_ONCE=str(marker), CRASH_SKIP_HITS=str(skip))
    return subprocess.Popen([sys.executable, str(WORKER), db_url, str(path), "--concurrency", "2", "--lease", "1"],
                            cwd=WORKER.parent.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_a_worker_killed_in_the_middle_of_a_redrive_loses_nothing(db_url, tmp_path):
    engine = Engine(db_url, clock=FakeClock.virtual())  # the 1 s backoff passes once nothing else can run
    crash_worker.install_handlers(engine, str(tmp_path / "calls"))
    value = {"items": items(tmp_path / "fixed")}
    arn = failed_run(engine, each(prepare=False, retry=True), value)
    before = calls(tmp_path / "calls")
    (tmp_path / "fixed").touch()
    engine.redrive(arn)
    killed = spawn(db_url, tmp_path / "calls", "in_handler", tmp_path / "marker", skip=1)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    clean = spawn(db_url, tmp_path / "calls")
    _, err = clean.communicate(timeout=60)
    assert clean.returncode == 0, err
    done = engine.describe(arn)
    assert done["status"] == "SUCCEEDED" and done["output"] == {**value, "out": list(range(ITEMS))}
    again = calls(tmp_path / "calls") - before
    assert sorted(again) == list(FAILING) and max(again.values()) <= 2  # the killed call may run once more
    assert sum(again.values()) <= len(FAILING) + 2  # at most the killed worker's two calls in flight
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(executions.c.redrive_count).where(executions.c.arn == arn)).scalar() == 1
    engine.db.dispose()


def test_the_example_redrives_only_the_broken_image(engine, monkeypatch):
    """statemachines/: resize_all.yaml fans out to child workflows; broken.png fails until DEMO_FIXED=1; the
    redrive starts children only for the images that did not succeed, and none twice for one that did."""
    from statemill.statemachines.demo_handlers import HANDLERS
    monkeypatch.delenv("DEMO_FIXED", raising=False)
    engine.handlers.update(HANDLERS)
    examples = WORKER.parent.parent / "statemachines"
    engine.register(examples / "resize_one.yaml")
    value = json.loads((examples / "fan_out_broken_input.json").read_text())
    done = engine.run(examples / "resize_all.yaml", value)
    assert done["status"] == "FAILED" and "broken.png cannot be read" in done["cause"]
    kept = {value["images"][e["mapIterationSucceededEventDetails"]["index"]]
            for e in engine.history(done["executionArn"]) if e["type"] == "MapIterationSucceeded"}
    before = {child["executionArn"] for child in engine.list(parent=done["executionArn"])}
    monkeypatch.setenv("DEMO_FIXED", "1")
    engine.redrive(done["executionArn"])
    done = engine.wait(done["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert [item["image"] for item in done["output"]["resized"]] == [
        name.replace(".png", "-0.png") for name in value["images"]]
    again = {engine.describe(child["executionArn"])["input"]["image"]
             for child in engine.list(parent=done["executionArn"]) if child["executionArn"] not in before}
    assert "broken.png" in again and not again & kept  # an image whose iteration had succeeded is not redone


def test_what_a_failed_map_kept_is_dropped_once_the_redrive_window_has_passed(flaky, tmp_path, fake_clock):
    from statemill.engine.redrive import forget_expired

    def kept() -> Counter:
        with flaky.db.connect() as conn:
            rows = conn.execute(sa.select(executions.c.machine_name, sa.func.count()).join(
                frames, frames.c.execution_id == executions.c.id).where(frames.c.parent_id.is_not(None))
                .group_by(executions.c.machine_name)).all()
        return Counter(dict(rows))

    failed_run(flaky, each(retry=True), {"items": items(tmp_path / "fixed", 4, (2,))}, name="old")
    fake_clock.advance(7 * 24 * 3600)
    failed_run(flaky, each(retry=True), {"items": items(tmp_path / "fixed", 4, (2,))}, name="recent")
    assert kept() == {"old": 4, "recent": 4}
    fake_clock.advance(7 * 24 * 3600 + 60)
    with flaky.db.begin() as conn:
        assert forget_expired(conn, fake_clock.now()) == 4
    assert kept() == {"recent": 4}
    with flaky.db.begin() as conn:
        assert forget_expired(conn, fake_clock.now(), since=fake_clock.now() - 3600) == 0
