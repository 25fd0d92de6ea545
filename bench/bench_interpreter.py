"""Throughput of the pure interpreter: ``advance(machine, frame, trigger, env)`` in memory, no database.

The loop is what the runtime does minus persistence: advance, take the next frame, move the event counter on.
A Task takes two advances (enter schedules it, the result trigger finishes it); a state counts as one transition.
"""
from __future__ import annotations

import time

from _common import Context, Result, best_rate, profile
from workloads import ORDER_INPUT, TASK_RESULT, choice_loop, mixed_chain, mixed_chain_jsonata, pass_chain, task_chain

from statemill.engine import loader
from statemill.engine.interpreter import STEP, Env, ExecutionInfo, Frame, Trigger, advance

CHAIN = 500
LOOP = 10_000  # states of the Choice+Pass loop
INFO = ExecutionInfo("arn:aws:states:us-east-1:000000000000:execution:bench:run-1", "run-1", ORDER_INPUT,
                     time.time(), "arn:aws:states:us-east-1:000000000000:stateMachine:bench", "bench",
                     "arn:aws:iam::000000000000:role/statemill")


def drive(machine, result_trigger: Trigger | None = None, value=ORDER_INPUT) -> tuple[int, int]:
    """Run ``machine`` from StartAt to its end; (states entered, advance calls). Fails loudly on a failed run."""
    frame: Frame | None = Frame(machine.start_at, "enter", value, {})
    next_event_id, entered, calls = 2, 0, 0
    status = "RUNNING"
    while frame is not None:
        trigger = result_trigger if (frame.phase == "task" and result_trigger is not None) else STEP
        t = advance(machine, frame, trigger, Env(now=time.time(), next_event_id=next_event_id, execution=INFO))
        calls += 1
        entered += sum(1 for e in t.events if e.type.endswith("StateEntered"))
        next_event_id += len(t.events)
        frame, status = t.frame, t.status
    if status != "SUCCEEDED":
        raise RuntimeError(f"the benchmark machine ended {status}")
    return entered, calls


def run(ctx: Context) -> None:
    seconds, rounds = ctx.pick((1.0, 3), (0.25, 2))
    cases = [
        ("interp.pass", f"Pass chain ({CHAIN} states)", pass_chain(CHAIN), None, "Pass chain (in memory)"),
        ("interp.mixed", f"Pass/Choice chain ({CHAIN} states)", mixed_chain(CHAIN), None, "Pass/Choice (in memory)"),
        ("interp.mixed_jsonata", f"the same chain in JSONata ({CHAIN} states)", mixed_chain_jsonata(CHAIN), None,
         "Pass/Choice JSONata (in memory)"),
        ("interp.task", f"Task chain ({CHAIN} states, 2 advances each)", task_chain(CHAIN),
         Trigger("result", TASK_RESULT), "Task chain (in memory)"),
    ]
    for key, label, definition, trigger, short in cases:
        machine = loader.load(definition)
        entered, calls = drive(machine, trigger)
        assert entered >= CHAIN, (entered, CHAIN)
        rate = best_rate(lambda: drive(machine, trigger)[0], seconds, rounds)
        against = {"interp.pass": (), "interp.mixed_jsonata": ("interp.mixed",)}.get(key, ("interp.pass",))
        ctx.add(Result(key, "interpreter", label, rate, "states/s", against=against,
                       note=f"{1e6 / rate:.1f} µs per state; best of {rounds} rounds of {seconds:g} s",
                       short=short or label))
        if ctx.profile and key == "interp.pass":
            _, text = profile(lambda: [drive(machine, trigger) for _ in range(ctx.pick(20, 5))])
            ctx.report("profile: interpreter, Pass chain", text)
    loop = loader.load(choice_loop(LOOP))
    rate = best_rate(lambda: drive(loop, None, {"i": 0})[0], seconds, rounds)
    ctx.add(Result("interp.loop", "interpreter", f"Choice+Pass loop ({LOOP} states)", rate, "states/s",
                   against=("interp.pass",), short="Choice+Pass loop (in memory)",
                   note=f"{1e6 / rate:.1f} µs per state; target >= 60,000 states/s"))


BENCHMARKS = {"interpreter": ("pure advance() in memory: Pass, Pass/Choice and Task chains", run)}
