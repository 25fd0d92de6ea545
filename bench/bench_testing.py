"""Testing workflows (issue 14): virtual time and mocked tasks.

A workflow that Waits two days, then calls a task that fails twice and is retried with an hour-long backoff, run to
its end on the virtual clock; against the same workflow with the Wait and the backoff at their shortest (0 s and
1 s), also on the virtual clock, so the ratio shows what two days and two hours of waiting cost in wall time. And
AWS's documented mock example (Step Functions Local's RetryPath) run from its mock file.
"""
from __future__ import annotations

import json
import time

from _common import Context, Result

DAY = 86_400


def workflow(wait: int, interval: int) -> dict:
    return {"StartAt": "Sleep", "States": {
        "Sleep": {"Type": "Wait", "Seconds": wait, "Next": "Call"},
        "Call": {"Type": "Task", "Resource": "call", "End": True,
                 "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": interval, "MaxAttempts": 2,
                            "BackoffRate": 1}]}}}


def run_once(ctx: Context, name: str, definition: dict, mocks: dict | None = None) -> tuple[float, float]:
    """(wall seconds, virtual seconds) of one run on a fresh SQLite file with the virtual clock."""
    from statemill.engine import Engine, FakeClock, TaskFailure
    engine = Engine(f"sqlite:///{ctx.tmp / (name + '.db')}", clock=FakeClock.virtual())
    calls = []

    @engine.handler("call")
    def call(value):
        calls.append(1)
        if len(calls) < 3:
            raise TaskFailure("Flaky", "")
        return {"ok": True}

    engine.register(definition, "bench")  # compile and store first: the timing is the execution's
    started = time.perf_counter()
    result = engine.run(definition, {}, machine_name="bench", mocks=mocks)
    wall = time.perf_counter() - started
    history = engine.history(result["executionArn"])
    engine.db.dispose()
    if result["status"] != "SUCCEEDED":
        raise RuntimeError(f"{name}: {result.get('error')}: {result.get('cause')}")
    from datetime import datetime
    stamp = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() for e in (history[0],
                                                                                              history[-1])]
    return wall, stamp[1] - stamp[0]


def run(ctx: Context) -> None:
    rounds = ctx.pick(5, 2)
    short = [run_once(ctx, f"short{i}", workflow(0, 1)) for i in range(rounds)]
    long = [run_once(ctx, f"long{i}", workflow(2 * DAY, 3600)) for i in range(rounds)]
    ctx.add(Result("testing.short", "testing", "Wait 0 s, 2 retries after 1 s, virtual clock",
                   1000 * min(w for w, _ in short), "ms", higher_is_better=False, short="0 s waits",
                   note=f"best of {rounds}; handler fails twice"))
    virtual = long[0][1]
    ctx.add(Result("testing.long", "testing", "Wait 2 days, 2 retries after 1 h, virtual clock",
                   1000 * min(w for w, _ in long), "ms", higher_is_better=False, against=("testing.short",),
                   note=f"best of {rounds}; {virtual / 3600:.0f} h of virtual time "
                        f"(history span); worst run {1000 * max(w for w, _ in long):.0f} ms"))
    mocked = [run_once(ctx, f"mocked{i}", workflow(2 * DAY, 3600),
                       {"Call": [{"error": 1}, {"error": 2}, {"ok": 0}]}) for i in range(rounds)]
    ctx.add(Result("testing.mocked", "testing", "the same, Call answered by a mock (no handler)",
                   1000 * min(w for w, _ in mocked), "ms", higher_is_better=False, against=("testing.long",),
                   note=f"best of {rounds}; mocks are stored with the execution and counted per invocation"))


BENCHMARKS = {"testing": ("virtual time and mocked tasks: a 2-day Wait and hour-long backoff", run)}
