"""Side-effect-free states run back to back in memory and commit together (runtime.commit's batches).

A batch must be invisible in the history: the same events, ids and previousEventIds as one commit per state, each
state with its own timestamps. It is capped (states, bytes) so long loops commit progress and a stop interrupts
them, and a worker killed in the middle of a batch loses only what nobody saw: the next worker re-runs it once.
"""
from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from statemill.engine import Engine
from statemill.engine.handlers import handler_key
from statemill.engine.interpreter import STEP, FanOut, TaskRequest
from statemill.engine.runtime import SINGLE, Batch, Claimed, Serving, claim, commit, lazy_commit
from statemill.engine.store.schema import frames

from test_durability import assert_gapless, finish, links_within_iterations, read_calls, spawn

DATA = {"zero": 0, "no": False, "empty": "", "none": None}


def loop(rounds: int, head: dict | None = None) -> dict:
    """A Pass that counts and a Choice that loops back ``rounds`` times; ``head``: a state to run first (Seed)."""
    states = {
        "Count": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)", "data.$": "$.data"},
                  "Next": "More?"},
        "More?": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThan": rounds, "Next": "Count"}],
                  "Default": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 0, "Next": "Done"},
        "Done": {"Type": "Succeed"}}
    if head is not None:
        states = {"Seed": {**head, "Next": "Count"}, **states}
    return {"StartAt": "Seed" if head is not None else "Count", "States": states}


def drive(engine: Engine, arn: str, batch: Batch, clock=None) -> list[int]:
    """Run the root frame of ``arn`` to its end with ``runtime.commit`` and ``batch``, one transaction per commit;
    the StateEntered count of each commit."""
    execution_id = engine.execution_id(arn)
    info = engine.execution_info(execution_id)
    machine = engine.machine(info.machine_id)
    per_commit = []
    with engine.db.begin() as conn:
        (item,) = claim(conn, "driver", 1, engine.clock.now(), 30.0)
    while True:
        with engine.db.begin() as conn:
            t = commit(conn, machine, item, STEP, info, "driver", engine.clock.now(), 30.0, True,
                       engine.payload_limit, clock=clock, batch=batch)
        per_commit.append(sum(e.type.endswith("StateEntered") for e in t.events))
        if t.frame is None:
            return per_commit
        assert t.leased, "the frame runs on at once, still leased to its committer"
        item = Claimed(item.id, item.execution_id, item.parent_id, item.version + 1, t.frame.state, t.frame.phase,
                       t.frame.input, t.frame.data, t.run_at, t.last_event_id)


def aws_shape(history: list[dict]) -> list[tuple]:
    """What a history says apart from timestamps: ids, previousEventIds, types and details, in order."""
    return [tuple(sorted((k, repr(v)) for k, v in event.items() if k != "timestamp")) for event in history]


def test_a_batch_records_every_state_gapless_and_as_one_commit_per_state_would(engine):
    machine = engine.register(loop(30), "loop")["name"]
    batched = engine.start(machine, {"i": 0, "data": DATA}, name="batched")["executionArn"]
    single = engine.start(machine, {"i": 0, "data": DATA}, name="single")["executionArn"]

    per_commit = drive(engine, batched, Batch(states=100))
    assert per_commit == [62], "30 Count, 30 More?, Nap and Done entered in one commit"
    single_commits = drive(engine, single, SINGLE)
    assert len(single_commits) == 63 and sum(single_commits) == 62, "one commit per step (and Nap's end)"

    history = engine.history(batched)
    assert_gapless(history)
    assert aws_shape(history) == aws_shape(engine.history(single)) != []
    assert engine.describe(batched)["output"] == engine.describe(single)["output"] == {"i": 30, "data": DATA}


def test_each_state_of_a_batch_keeps_its_own_timestamps(engine):
    arn = engine.start(engine.register(loop(3), "loop")["name"], {"i": 0, "data": DATA})["executionArn"]
    start = engine.clock.now()
    ticks = itertools.count(1)
    drive(engine, arn, Batch(states=100), clock=lambda: start + next(ticks))
    history = engine.history(arn)
    entered = [e for e in history if e["type"].endswith("StateEntered")]
    stamps = [e["timestamp"] for e in entered]
    assert len(entered) == 8 and len(set(stamps)) == 8, "a new time for each state"
    assert stamps == sorted(stamps)
    for event in history[1:]:  # a Pass's or Choice's Exited event carries the time its state ran at
        if event["type"] in ("PassStateExited", "ChoiceStateExited"):
            assert event["timestamp"] == history[event["previousEventId"] - 1]["timestamp"]


@pytest.mark.parametrize("batch, expected", [
    (Batch(states=25), [25, 25, 12]),  # 25 steps, 25 steps, then 10 + Nap + Nap's end + Done
    (Batch(states=1), [1] * 61 + [0, 1]),
    (Batch(states=1000, size=1), [1] * 61 + [0, 1]),  # any state's events fill the byte cap
], ids=["25_states", "1_state", "1_byte"])
def test_a_batch_stops_at_its_cap(engine, batch, expected):
    """StateEntered events per commit: the cap counts steps (a Wait's end is one without a state entered)."""
    arn = engine.start(engine.register(loop(30), "loop")["name"], {"i": 0, "data": DATA})["executionArn"]
    assert drive(engine, arn, batch) == expected
    assert_gapless(engine.history(arn))
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(frames.c.version)).scalar() == len(expected), "one version per commit"


def test_the_byte_cap_counts_the_events_details(engine):
    """States whose events carry ~10 kB each: a 25 kB cap commits every third state (the one crossing it)."""
    big = {"blob": "x" * 10_000, **DATA}
    arn = engine.start(engine.register(loop(30), "loop")["name"], {"i": 0, "data": big})["executionArn"]
    per_commit = drive(engine, arn, Batch(states=1000, size=25_000))
    assert max(per_commit) == 2 and sum(per_commit) == 62 and len(per_commit) >= 31


def test_the_batch_ends_where_a_side_effect_starts(engine):
    """A Task's scheduling is the last transition of its batch: the handler runs only once that is committed."""
    seen = []

    @engine.handler("py:look")
    def look(value):
        with engine.db.connect() as conn:
            seen.append(conn.execute(sa.text("SELECT count(*) FROM history_events")).scalar())
        return value

    result = engine.run({
        "StartAt": "First", "States": {
            "First": {"Type": "Pass", "Next": "Work"},
            "Work": {"Type": "Task", "Resource": "py:look", "Next": "Last"},
            "Last": {"Type": "Pass", "End": True}}}, DATA, machine_name="look")
    assert result["status"] == "SUCCEEDED" and result["output"] == DATA
    types = [e["type"] for e in engine.history(result["executionArn"])]
    assert seen == [types.index("TaskScheduled") + 1], "every event up to TaskScheduled was committed first"


def test_stop_interrupts_a_long_pass_choice_loop(db_url, fake_clock):
    engine = Engine(db_url, clock=fake_clock)
    arn = engine.start(engine.register(loop(10**9), "forever")["name"], {"i": 0, "data": DATA})["executionArn"]
    worker = engine.worker(execution=arn, concurrency=1, poll_seconds=0.05)
    runner = threading.Thread(target=worker.run, kwargs={"until": lambda: engine.status(arn) != "RUNNING"})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while len(engine.history(arn)) < 500:  # the loop commits its progress as it goes
            assert time.monotonic() < deadline, "no progress was committed"
            time.sleep(0.02)
        engine.stop(arn, error="Enough", cause="")
        runner.join(timeout=30)
        assert not runner.is_alive(), "the worker did not stop"
    finally:
        worker.stop()
        runner.join(timeout=30)
        worker.close()
    history = engine.history(arn)
    assert engine.status(arn) == "ABORTED"
    assert [e["type"] for e in history].count("ExecutionAborted") == 1 and history[-1]["type"] == "ExecutionAborted"
    ids = [e["id"] for e in history]
    assert ids == list(range(1, len(history) + 1))
    time.sleep(0.2)
    assert len(engine.history(arn)) == len(history), "nothing was committed after the stop"
    engine.db.dispose()


@pytest.mark.parametrize("point, skip", [("in_batch", 150), ("after_commit", 2)],
                         ids=["killed_with_a_batch_advanced_not_committed", "killed_between_two_batches"])
def test_a_worker_killed_in_a_batched_loop_loses_and_repeats_no_transition(point, skip, tmp_path, db_url):
    rounds = 400
    engine = Engine(db_url)
    name = engine.register(loop(rounds, {"Type": "Task", "Resource": "py:echo"}), "crashloop")["name"]
    arn = engine.start(name, {"i": 0, "data": DATA}, name="crash")["executionArn"]
    calls = tmp_path / "calls.jsonl"

    killed = spawn(db_url, calls, fault=point, marker=tmp_path / "crashed", skip=skip)
    assert finish(killed) == -signal.SIGKILL
    assert engine.status(arn) == "RUNNING"
    progress = len(engine.history(arn))
    assert 3 < progress < 4 * rounds, "the kill landed inside the loop"

    assert finish(spawn(db_url, calls)) == 0
    described = engine.describe(arn)
    assert described["status"] == "SUCCEEDED" and described["output"] == {"i": rounds, "data": DATA}
    history = engine.history(arn)
    assert_gapless(history)
    entered = Counter(e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered"))
    assert entered == {"Seed": 1, "Count": rounds, "More?": rounds, "Nap": 1, "Done": 1}
    exited = Counter(e["stateExitedEventDetails"]["name"] for e in history if e["type"].endswith("StateExited"))
    assert exited == {"Seed": 1, "Count": rounds, "More?": rounds, "Nap": 1, "Done": 1}
    assert [c["state"] for c in read_calls(calls)] == ["Seed"], "the Seed task ran once: it was committed"
    engine.db.dispose()


def test_map_iterations_committing_at_once_keep_gapless_ids_and_their_own_chains(engine):
    """Iterations of one Map commit concurrently (on PostgreSQL each takes its event ids last, advancing its batch
    again when a sibling took ids first): ids stay gapless and every iteration's events point to its own."""
    chain = {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "C"}, "C": {"Type": "Pass", "End": True}}
    definition = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemSelector": {"index.$": "$$.Map.Item.Index", "data.$": "$.data"},
        "ItemProcessor": {"StartAt": "A", "States": chain}}}}
    items = list(range(40))
    result = engine.run(definition, {"items": items, "data": DATA}, machine_name="fan", concurrency=8)
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == [{"index": i, "data": DATA} for i in items]
    history = engine.history(result["executionArn"])
    assert_gapless(history)
    linked = links_within_iterations(history, chain)
    assert linked == 5 * len(items), "A exited, B entered/exited, C entered/exited follow their own iteration"


def _transition(**fields) -> "Transition":
    from statemill.engine.interpreter import Frame, Transition
    frame = fields.pop("frame", Frame("Next", "enter", {"zero": 0}, {}))
    return Transition(frame=frame, **fields)


@pytest.mark.parametrize("dialect, transition, is_root, lazy", [
    pytest.param("postgresql", _transition(run_at=10.0), False, True, id="goes-on-at-once"),
    pytest.param("postgresql", _transition(run_at=None, fan_out=FanOut(())), True, True, id="starts-its-children"),
    pytest.param("postgresql", _transition(frame=None, status="SUCCEEDED"), False, True, id="a-child-ended"),
    pytest.param("postgresql", _transition(frame=None, status="FAILED"), False, True, id="a-child-failed"),
    pytest.param("postgresql", _transition(frame=None, status="SUCCEEDED"), True, False, id="the-execution-ended"),
    pytest.param("postgresql", _transition(run_at=10.0, task=TaskRequest("r", 0, None, None, 0)), True, False,
                 id="a-task-to-run"),
    pytest.param("postgresql", _transition(run_at=None), True, False, id="waits-for-a-token"),
    pytest.param("postgresql", _transition(run_at=70.0), True, False, id="a-timer"),
    pytest.param("sqlite", _transition(run_at=10.0), False, False, id="sqlite-has-no-such-commit"),
])
def test_only_transitions_nobody_outside_can_act_on_commit_lazily(dialect, transition, is_root, lazy):
    """On PostgreSQL a transition commits without waiting for the disk only when no side effect can follow it
    before a later commit that waits: a task, a token, a timer or the execution's end always wait."""
    assert lazy_commit(dialect, transition, 10.0, is_root) is lazy


@pytest.mark.parametrize("serving, takes_the_task", [
    pytest.param(Serving(keys=frozenset({handler_key("arn:aws:lambda:us-east-1:000000000000:function:work")})), True,
                 id="a-task-it-serves"),
    pytest.param(Serving(keys=frozenset()), False, id="not-a-task-it-does-not-serve")])
def test_a_frame_that_waits_hands_its_thread_the_next_runnable_frame(engine, serving, takes_the_task):
    """A committer whose frame parks (a timer) leases the next runnable frame its claimer serves in the same
    transaction, so the worker's thread goes on without a claim of its own."""
    nap = engine.register({"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": True}}},
                          "nap")["name"]
    work = engine.register({"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:work", "End": True}}},
        "work")["name"]
    napping = engine.execution_id(engine.start(nap, DATA)["executionArn"])
    working = engine.execution_id(engine.start(work, DATA)["executionArn"])
    with engine.db.begin() as conn:  # the task frame reaches its task phase, handed back to the queue
        (item,) = claim(conn, "other", 1, engine.clock.now(), 30.0, Serving(execution_id=working))
        info = engine.execution_info(working)
        commit(conn, engine.machine(info.machine_id), item, STEP, info, "other", engine.clock.now(), 30.0, True,
               engine.payload_limit, serving=Serving(keys=frozenset()))
    with engine.db.begin() as conn:
        (item,) = claim(conn, "driver", 1, engine.clock.now(), 30.0, Serving(execution_id=napping))
        info = engine.execution_info(napping)
        t = commit(conn, engine.machine(info.machine_id), item, STEP, info, "driver", engine.clock.now(), 30.0,
                   True, engine.payload_limit, serving=serving, claim_next=True)
    assert not t.leased and t.frame.state == "Nap", "parked on its timer"
    with engine.db.connect() as conn:
        owner = conn.execute(sa.select(frames.c.lease_owner).where(frames.c.execution_id == working)).scalar()
    if takes_the_task:
        assert (t.claimed.execution_id, t.claimed.phase, t.claimed.input) == (working, "task", DATA)
        assert owner == "driver"
    else:
        assert t.claimed is None and owner is None
