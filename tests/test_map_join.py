"""A Map's or Parallel's join: children finishing at once in several workers wake the parent exactly once, start
each child waiting for a slot exactly once, and only a finish that made another frame runnable notifies workers."""
from __future__ import annotations

import threading

import psycopg
import pytest
import sqlalchemy as sa

from statemill.engine import Engine

from test_durability import assert_gapless

ITEMS = [{"i": i, "zero": 0, "no": False, "empty": "", "none": None} for i in range(12)]


def map_of(limit: int) -> dict:
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": limit, "End": True,
        "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}}}}}


def run_with_workers(db_url: str, definition: dict, workers: int) -> tuple[Engine, str]:
    """Start the Map and drive it with ``workers`` workers (4 threads each) in this process until it ends."""
    engine = Engine(db_url)
    engine.register(definition, "fan")
    arn = engine.start("fan", {"items": ITEMS})["executionArn"]
    running = [engine.worker(concurrency=4, poll_seconds=0.05) for _ in range(workers)]
    threads = [threading.Thread(target=w.run, kwargs={"until": lambda: engine.status(arn) != "RUNNING"})
               for w in running]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for worker in running:
        worker.close()
    return engine, arn


@pytest.mark.parametrize("limit", [0, 3], ids=["all at once", "three at a time"])
def test_racing_iterations_join_once_with_every_result_in_order(db_url, limit):
    engine, arn = run_with_workers(db_url, map_of(limit), workers=2)
    try:
        assert engine.describe(arn)["status"] == "SUCCEEDED"
        assert engine.describe(arn)["output"] == ITEMS
        history = engine.history(arn)
        assert_gapless(history)
        types = [e["type"] for e in history]
        assert types.count("MapIterationStarted") == types.count("MapIterationSucceeded") == len(ITEMS)
        assert types.count("MapStateSucceeded") == 1
    finally:
        engine.db.dispose()


def test_an_iteration_that_wakes_nobody_notifies_nobody(postgres_url, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("NOTIFY is PostgreSQL's")
    url = sa.engine.make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN statemill")
        engine, _arn = run_with_workers(db_url, map_of(0), workers=1)
        engine.db.dispose()
        heard = len(list(listener.notifies(timeout=0.5)))
    # The start, the fan-out, the last iteration waking the Map: not one per iteration.
    assert 0 < heard <= 3
