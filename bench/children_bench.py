"""Child workflows against the same work done inline: a Map of N items whose iterations each start a
``.sync:2`` child (a Task then a Pass), and the same Map with those two states inline.

    python bench/children_bench.py [--items 100] [--workers 2] [--db URL]   # default: a temp SQLite file

Prints, for both, the wall time, the states entered (parent and children) and states entered per second, and the
ratio child/inline measured in the same run; checks that every child SUCCEEDED and is linked to the parent.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from statemill.engine import Engine
from statemill.engine.store.schema import executions, history_events, metadata

WORK = {"Work": {"Type": "Task", "Resource": "echo", "Next": "Shape"},
        "Shape": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "End": True}}
CHILD = {"StartAt": "Work", "States": WORK}


def parent(inline: bool) -> dict:
    processor = {"StartAt": "Work", "States": WORK} if inline else {"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:child",
                       "Input": {"n.$": "$.n"}},
        "ResultSelector": {"n.$": "$.Output.n"}, "End": True}}}
    return {"StartAt": "Fan", "States": {"Fan": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0,
                                                 "ItemSelector": {"n.$": "$$.Map.Item.Value"},
                                                 "ItemProcessor": processor, "End": True}}}


def measure(engine: Engine, inline: bool, items: int, workers: int) -> tuple[float, int]:
    machine = engine.register(parent(inline), "inline" if inline else "parent")["name"]
    began = time.perf_counter()
    arn = engine.start(machine, {"items": list(range(items))})["executionArn"]
    pool = [engine.worker(concurrency=16, poll_seconds=0.01) for _ in range(workers)]
    threads = [threading.Thread(target=w.run, kwargs={"until": lambda: engine.status(arn) != "RUNNING"})
               for w in pool]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for w in pool:
        w.close()
    assert engine.status(arn) == "SUCCEEDED", engine.describe(arn)
    with engine.db.connect() as conn:
        ids = [conn.execute(sa.select(executions.c.id).where(executions.c.arn == arn)).scalar()]
        if not inline:
            kids = engine.list(parent=arn, limit=items + 1)
            assert len(kids) == items and {k["status"] for k in kids} == {"SUCCEEDED"}
            ids += [conn.execute(sa.select(executions.c.id).where(executions.c.arn == k["executionArn"])).scalar()
                    for k in kids]
        entered = conn.execute(sa.select(sa.func.count()).select_from(history_events)
                               .where(history_events.c.execution_id.in_(ids),
                                      history_events.c.type.like("%StateEntered"))).scalar()
    return elapsed, entered


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", help="a database URL (PostgreSQL: its tables are emptied first)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = Engine(url, handlers={"echo": lambda value: value})
        if engine.db.dialect.name == "postgresql":
            with engine.db.begin() as conn:
                names = ", ".join(t.name for t in metadata.sorted_tables if t.name != "statemill_schema")
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.register(CHILD, "child")
        figures = {}
        for inline in (True, False):
            elapsed, entered = measure(engine, inline, args.items, args.workers)
            figures[inline] = entered / elapsed
            label = "inline" if inline else f"{args.items} .sync:2 children"
            print(f"{label:24} {elapsed:7.2f} s  {entered:6} states entered  {entered / elapsed:8.0f} states/s")
        print(f"children/inline states/s ratio: {figures[False] / figures[True]:.2f} "
              f"({engine.db.dialect.name}, {args.workers} workers)")
        engine.db.dispose()


if __name__ == "__main__":
    main()
