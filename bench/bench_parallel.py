"""Concurrency of I/O-bound handlers: a Parallel of 10 branches whose handlers each sleep, and a Map of 10 items
doing the same, should finish in about one sleep, not ten. The baseline is a 1-branch Parallel in the same run."""
from __future__ import annotations

import time

from _common import Context, Result, timed
from workloads import map_sleepers, parallel_sleepers

from statemill.engine import Engine

BRANCHES = 10
SLEEP = 1.0


def run(ctx: Context) -> None:
    folder = ctx.tmp / "parallel"
    folder.mkdir(exist_ok=True)
    engine = Engine(str(folder / "statemill.db"))
    engine.handler("bench:sleep")(lambda value: time.sleep(SLEEP) or {"slept": SLEEP})

    def run_once(definition: dict, name: str, value: dict) -> float:
        times, described = timed(lambda: engine.run(definition, value, machine_name=name), 1)
        if described["status"] != "SUCCEEDED":
            raise RuntimeError(f"{name} ended {described['status']}: {described.get('cause')}")
        return times[0]

    one = run_once(parallel_sleepers(1), "parallel1", {})
    ctx.add(Result("parallel.one", "parallel", f"Parallel, 1 branch sleeping {SLEEP:g} s", one, "s",
                   higher_is_better=False, short="1 branch"))
    ten = run_once(parallel_sleepers(BRANCHES), f"parallel{BRANCHES}", {})
    ctx.add(Result("parallel.ten", "parallel", f"Parallel, {BRANCHES} branches sleeping {SLEEP:g} s each", ten, "s",
                   higher_is_better=False, against=("parallel.one",),
                   note=f"{BRANCHES * SLEEP:g} s if run one after another; Engine default concurrency "
                        f"{engine.concurrency}"))
    items = {"items": [{"i": i, "v": [0, False, "", None]} for i in range(BRANCHES)]}
    mapped = run_once(map_sleepers(), "map10", items)
    ctx.add(Result("parallel.map", "parallel", f"Map, {BRANCHES} items sleeping {SLEEP:g} s each", mapped, "s",
                   higher_is_better=False, against=("parallel.one",)))
    engine.db.dispose()


BENCHMARKS = {"parallel": (f"a Parallel of {BRANCHES} branches (and a Map of {BRANCHES} items) whose handlers "
                           f"sleep {SLEEP:g} s", run)}
