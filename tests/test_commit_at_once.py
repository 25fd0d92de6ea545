"""On PostgreSQL a transition that moves its frame on, or ends a Map iteration or Parallel branch, commits in one
query message whose statements take the execution's event ids last (runtime.commit_at_once): its events were
numbered after the frame's own head, and the server moves them after the execution's counter. Whatever the
interleaving, ids stay gapless, each event points at its own thread's, a cause that cites an id cites the real one,
and a commit that lost its frame or its execution writes nothing."""
from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa

from statemill.engine import Engine
from statemill.engine.interpreter import STEP
from statemill.engine.runtime import Serving, StaleTransition, CommitAgain, claim, commit
from statemill.engine.store.schema import executions, history_events

from test_durability import assert_gapless, links_within_iterations

CHAIN = {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "C"}, "C": {"Type": "Pass", "End": True}}
# Values bound into the statements' text (hot.run_script): placeholders, quotes and backslashes in them stay data.
DATA = {"zero": 0, "no": False, "empty": "", "none": None, "text": "50%s %% it's \\ \"quoted\" $1 ;COMMIT"}


def map_of(limit: int) -> dict:
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": limit, "End": True,
        "ItemSelector": {"index.$": "$$.Map.Item.Index", "data.$": "$.data"},
        "ItemProcessor": {"StartAt": "A", "States": CHAIN}}}}


PARALLEL = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": f"A{k}", "States": {f"A{k}": {"Type": "Pass", "Next": f"B{k}"},
                                    f"B{k}": {"Type": "Pass", "Next": f"C{k}"},
                                    f"C{k}": {"Type": "Pass", "End": True}}} for k in range(3)]}}}


def serve(engine: Engine, arn: str, workers: int) -> None:
    """Drive ``arn`` with ``workers`` workers of 8 threads as ``statemill worker`` runs them (no ``until``: a
    thread whose frame ends leases the next one as it commits), stopping them once the execution has ended."""
    running = [engine.worker(concurrency=8, poll_seconds=0.05) for _ in range(workers)]
    threads = [threading.Thread(target=w.run) for w in running]
    for thread in threads:
        thread.start()
    done = threading.Event()
    while not done.wait(0.02):
        if engine.status(arn) != "RUNNING":
            done.set()
    for worker in running:
        worker.stop()
    for thread in threads:
        thread.join(60)
    for worker in running:
        worker.close()


@pytest.mark.parametrize("limit", [0, 3], ids=["all-at-once", "three-at-a-time"])
def test_iterations_run_by_free_running_workers_keep_gapless_ids_and_their_own_chains(db_url, limit, caplog):
    """...and no commit fails on the way (a deadlock, say: a claim holding a frame another transition of the
    execution must write while it waits for the execution's row)."""
    engine = Engine(db_url)
    try:
        engine.register(map_of(limit), "fan")
        items = list(range(300))
        arn = engine.start("fan", {"items": items, "data": DATA})["executionArn"]
        serve(engine, arn, workers=2)
        described = engine.describe(arn)
        assert described["status"] == "SUCCEEDED"
        assert described["output"] == [{"index": i, "data": DATA} for i in items]
        history = engine.history(arn)
        assert_gapless(history)
        linked = links_within_iterations(history, CHAIN)
        assert linked == 5 * len(items), "A exited, B entered/exited, C entered/exited follow their own iteration"
        assert not [r.getMessage() for r in caplog.records if "could not be stored" in r.getMessage()]
    finally:
        engine.db.dispose()


def test_branches_run_by_free_running_workers_join_once(db_url):
    engine = Engine(db_url)
    try:
        engine.register(PARALLEL, "both")
        arn = engine.start("both", {"index": 0, **DATA})["executionArn"]
        serve(engine, arn, workers=2)
        assert engine.describe(arn)["output"] == [{"index": 0, **DATA}] * 3
        history = engine.history(arn)
        assert_gapless(history)
        types = [e["type"] for e in history]
        assert types.count("ParallelStateSucceeded") == 1 and types.count("PassStateEntered") == 9
        entered = {e["id"] for e in history if e["type"] == "PassStateEntered"}
        exits = [e for e in history if e["type"] == "PassStateExited"]
        # Every branch's A, B and C: each exit points at an entered event of the same state.
        assert all(by in entered and history[by - 1]["stateEnteredEventDetails"]["name"]
                   == e["stateExitedEventDetails"]["name"] for e in exits for by in [e["previousEventId"]])
    finally:
        engine.db.dispose()


# -- one iteration committing after a sibling took ids: its guess (its own head) is behind the counter
FAILING = {"StartAt": "Each", "States": {"Each": {
    "Type": "Map", "ItemsPath": "$.items", "End": True,
    "ItemProcessor": {"StartAt": "Probe", "States": {"Probe": {
        "Type": "Pass", "Parameters": {"value.$": "$.missing"}, "End": True}}}}}}
OK = {"StartAt": "Each", "States": {"Each": {
    "Type": "Map", "ItemsPath": "$.items", "End": True,
    "ItemProcessor": {"StartAt": "A", "States": CHAIN}}}}


def two_iterations(engine: Engine, definition: dict, items: list = (DATA, DATA)) -> tuple[str, int, list]:
    """Start a Map of two items, fan it out, and lease both iterations; (arn, execution id, [first, second])."""
    engine.register(definition, "two")
    arn = engine.start("two", {"items": list(items)})["executionArn"]
    execution = engine.execution_id(arn)
    info = engine.execution_info(execution)
    serving = Serving(execution_id=execution)
    with engine.db.begin() as conn:
        (root,) = claim(conn, "w", 1, engine.clock.now(), 30.0, serving)
        commit(conn, engine.machine(info.machine_id), root, STEP, info, "w", engine.clock.now(), 30.0, True,
               engine.payload_limit, serving=serving)
    with engine.db.begin() as conn:
        children = claim(conn, "w", 2, engine.clock.now(), 30.0, serving)
    return arn, execution, sorted(children, key=lambda c: c.id)


def step(engine: Engine, execution: int, item, **options):
    info = engine.execution_info(execution)
    with engine.db.begin() as conn:
        return commit(conn, engine.machine(info.machine_id), item, STEP, info, "w", engine.clock.now(), 30.0,
                      False, engine.payload_limit, serving=Serving(execution_id=execution), at_once=True, **options)


def test_a_late_iteration_gets_the_ids_after_its_sibling(db_url):
    engine = Engine(db_url)
    try:
        _arn, execution, (first, second) = two_iterations(engine, OK)
        step(engine, execution, second)
        step(engine, execution, first)
        with engine.db.connect() as conn:
            rows = conn.execute(sa.select(history_events.c.id, history_events.c.previous_event_id,
                                          history_events.c.frame_id, history_events.c.type)
                                .where(history_events.c.execution_id == execution)
                                .order_by(history_events.c.id)).all()
            count = conn.execute(sa.select(executions.c.event_count).where(executions.c.id == execution)).scalar()
        assert [r.id for r in rows] == list(range(1, count + 1)), "gapless, the counter at the last id"
        mine = [r for r in rows if r.frame_id == first.id]
        assert [r.type for r in mine] == ["MapIterationStarted"] + ["PassStateEntered", "PassStateExited"] * 3 + [
            "MapIterationSucceeded"]
        assert mine[0].previous_event_id == first.last_event_id, "its thread starts at the frame's head"
        assert all(r.previous_event_id == before.id for before, r in zip(mine, mine[1:])), "then its own events"
    finally:
        engine.db.dispose()


def test_a_cause_citing_an_event_id_cites_the_state_entered_event(db_url):
    """``entered at the event id #N`` is the real id even when a sibling took ids since the frame's head."""
    engine = Engine(db_url)
    try:
        # The second finds $.missing (0) and succeeds first; the first does not, and fails citing its entry.
        arn, execution, (first, second) = two_iterations(engine, FAILING, [DATA, {"missing": 0}])
        step(engine, execution, second)
        step(engine, execution, first)
        described = engine.wait(arn)  # the Map fails with its iteration's error
        history = engine.history(arn)
        entered = [e["id"] for e in history if e["type"] == "PassStateEntered"]
        failed = next(e for e in history if e["type"] == "MapIterationFailed")
        assert described["error"] == "States.Runtime"
        cited = re.search(r"entered at the event id #(\d+)", described["cause"])
        assert cited is not None and int(cited.group(1)) in entered
        assert int(cited.group(1)) == failed["previousEventId"], "the entry its iteration's failure follows"
    finally:
        engine.db.dispose()


@pytest.mark.parametrize("lost", ["its frame moved on", "its execution stopped"])
def test_a_commit_that_lost_its_frame_or_execution_writes_nothing(db_url, lost):
    engine = Engine(db_url)
    try:
        arn, execution, (first, _second) = two_iterations(engine, OK)
        if lost == "its frame moved on":
            step(engine, execution, first)  # and the same version again below: a zombie's commit
        else:
            engine.stop(arn)
        before = snapshot(engine, execution)
        with pytest.raises((StaleTransition, CommitAgain)):  # CommitAgain: the other way says StaleTransition
            step(engine, execution, first)
        assert snapshot(engine, execution) == before
    finally:
        engine.db.dispose()


def snapshot(engine: Engine, execution: int) -> tuple:
    with engine.db.connect() as conn:
        count = conn.execute(sa.select(executions.c.event_count).where(executions.c.id == execution)).scalar()
        events = conn.execute(sa.select(sa.func.count()).select_from(history_events)
                              .where(history_events.c.execution_id == execution)).scalar()
    return count, events


@pytest.mark.parametrize("limit", [9, 14, 20])
def test_an_iteration_crossing_the_history_limit_fails_the_execution_there(db_url, limit):
    """A step that leaves its frame running may not end past the history limit; it fails with States.Runtime. The
    limit is checked against the counter the server moves, not the frame's head: a step committed at once whose
    events would pass it is committed again taking the ids first. (A step that ends its frame is not checked.)"""
    engine = Engine(db_url)
    try:
        engine.register(OK, "fan")
        arn = engine.start("fan", {"items": [DATA] * 4})["executionArn"]
        engine.wait(arn, max_events=limit)
        described = engine.describe(arn)
        assert described["status"] == "FAILED"
        assert described["error"] == "States.Runtime" and f"history limit of {limit} events" in described["cause"]
        history = engine.history(arn)
        assert [e["id"] for e in history] == list(range(1, len(history) + 1))
        assert all(0 <= e["previousEventId"] < e["id"] for e in history)
        by_id = {e["id"]: e for e in history}
        # The steps of A and B leave the iteration running (in C's step it ends): they end with the state's exit.
        running_ends = [e["id"] for e in history if e["type"] == "PassStateExited"
                        and by_id[e["previousEventId"]]["stateEnteredEventDetails"]["name"] in ("A", "B")]
        assert running_ends and max(running_ends) <= limit
    finally:
        engine.db.dispose()


def test_a_session_that_lost_its_prepared_statements_commits_the_other_way_then_prepares_again(postgres_url,
                                                                                                db_url):
    """DEALLOCATE ALL (or a pooler handing over another session) makes the commit at once fail before it writes:
    CommitAgain, so the worker commits that transition taking the ids first; the next commit prepares again."""
    if not db_url.startswith("postgresql"):
        pytest.skip("prepared statements are PostgreSQL's")
    engine = Engine(db_url)
    try:
        _arn, execution, (first, second) = two_iterations(engine, OK)
        info = engine.execution_info(execution)
        machine = engine.machine(info.machine_id)

        def at_once(conn, item):
            with conn.begin():
                return commit(conn, machine, item, STEP, info, "w", engine.clock.now(), 30.0, False,
                              engine.payload_limit, serving=Serving(execution_id=execution), at_once=True)

        with engine.db.connect() as conn:
            at_once(conn, first)  # prepares them on this session
            conn.exec_driver_sql("DEALLOCATE ALL")
            conn.commit()
            before = snapshot(engine, execution)
            with pytest.raises(CommitAgain):
                at_once(conn, second)
            assert snapshot(engine, execution) == before, "nothing written"
            t = at_once(conn, second)  # prepared again
        assert t.frame is None and snapshot(engine, execution)[0] > before[0]
    finally:
        engine.db.dispose()
