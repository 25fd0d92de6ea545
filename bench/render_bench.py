"""Drawing speed on a large definition: a generated 500-state machine with Parallel inside Map inside Parallel,
drawn to DOT text (statemill alone), to Mermaid text, and to SVG (statemill plus Graphviz's ``dot`` layout).

    python bench/render_bench.py [--states 500] [--out FOLDER]    # or as part of: python bench/run.py render
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from statemill.engine import loader  # noqa: E402
from statemill.visualizer import build, digraph, image, mermaid_source  # noqa: E402

STATES = 500


def _task(name: str, nxt: str | None, catch_to: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": f"app:{name.lower()}", "TimeoutSeconds": 30,
                             "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2}]}
    state.update({"Next": nxt} if nxt else {"End": True})
    if catch_to:
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": catch_to}]
    return state


def segment(i: int, nxt: str) -> dict[str, dict]:
    """15 states: a Task, a Choice, and a Parallel whose first branch maps each item through a Parallel of checks."""
    s = f"_{i:03d}"
    inner = {
        "Type": "Parallel", "Next": f"Decide{s}",
        "Branches": [
            {"StartAt": f"Ping{s}", "States": {f"Ping{s}": _task(f"Ping{s}", None)}},
            {"StartAt": f"Measure{s}", "States": {
                f"Measure{s}": _task(f"Measure{s}", f"Fast{s}"),
                f"Fast{s}": {"Type": "Choice", "Choices": [
                    {"Variable": "$.p99", "NumericLessThanEquals": 250, "Next": f"Ok{s}"}], "Default": f"Slow{s}"},
                f"Ok{s}": {"Type": "Pass", "End": True},
                f"Slow{s}": {"Type": "Fail", "Error": "Slow"}}},
        ]}
    mapped = {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 4, "End": True,
        "ItemProcessor": {"StartAt": f"Checks{s}", "States": {
            f"Checks{s}": inner,
            f"Decide{s}": {"Type": "Choice", "Choices": [
                {"And": [{"Variable": "$[0].ok", "BooleanEquals": True},
                         {"Variable": "$[1].status", "StringEquals": "up"}], "Next": f"Record{s}"}],
                "Default": f"Backoff{s}"},
            f"Backoff{s}": {"Type": "Wait", "Seconds": 5, "Next": f"Record{s}"},
            f"Record{s}": {"Type": "Pass", "End": True}}}}
    return {
        f"Load{s}": _task(f"Load{s}", f"Route{s}", catch_to=f"Recover{s}"),
        f"Route{s}": {"Type": "Choice", "Choices": [
            {"Variable": "$.amount", "NumericGreaterThan": 100, "Next": f"Fan{s}"}], "Default": nxt},
        f"Fan{s}": {"Type": "Parallel", "Next": nxt, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": f"Recover{s}"}],
                    "Branches": [
                        {"StartAt": f"Each{s}", "States": {f"Each{s}": mapped}},
                        {"StartAt": f"Audit{s}", "States": {f"Audit{s}": _task(f"Audit{s}", None)}}]},
        f"Recover{s}": {"Type": "Pass", "Next": nxt},
    }


def generate(total: int = STATES) -> dict:
    """A valid definition of exactly ``total`` states: chained segments, padded with Pass states."""
    per = 15
    count = max(1, (total - 1) // per)
    states: dict[str, dict] = {}
    for i in range(count):
        states.update(segment(i, f"Load_{i + 1:03d}" if i + 1 < count else "Pad_000"))
    pad = total - count * per
    for j in range(pad):
        states[f"Pad_{j:03d}"] = {"Type": "Pass", **({"Next": f"Pad_{j + 1:03d}"} if j + 1 < pad else {"End": True})}
    return {"Comment": f"{total} states, Parallel in Map in Parallel", "StartAt": "Load_000", "States": states}


def measure(states: int = STATES, repeat: int = 3, out: Path | None = None) -> dict[str, float]:
    """Seconds (best of ``repeat``) of each step; SVG only when ``dot`` is installed."""
    definition = generate(states)
    machine = loader.load(definition)
    assert len(machine.index) == states, len(machine.index)
    figures: dict[str, float] = {}

    def best(name: str, fn) -> Any:
        result, times = None, []
        for _ in range(repeat):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        figures[name] = min(times)
        return result

    diagram = best("build", lambda: build(machine))
    dot = best("dot", lambda: digraph(machine).source)
    best("mermaid", lambda: mermaid_source(diagram))
    figures["dot_bytes"] = len(dot.encode())
    if shutil.which("dot"):
        svg = best("svg", lambda: image(machine, "svg"))
        figures["svg_bytes"] = len(svg)
        if out is not None:
            (out / "render-bench.svg").write_bytes(svg)
    if out is not None:
        (out / "render-bench.dot").write_text(dot, encoding="utf-8")
    return figures


def run(ctx) -> None:
    """The suite's entry point (bench/run.py)."""
    from _common import Result
    figures = measure(STATES, ctx.pick(3, 1))
    ctx.add(Result("render.build", "render", "diagram model of 500 states", 1000 * figures["build"], "ms",
                   higher_is_better=False, short="model"))
    ctx.add(Result("render.dot", "render", "to DOT text (model + Digraph)", 1000 * figures["dot"], "ms",
                   higher_is_better=False, against=("render.build",), short="DOT",
                   note=f"{figures['dot_bytes'] / 1e3:.0f} kB of DOT; no Graphviz program needed"))
    ctx.add(Result("render.mermaid", "render", "to Mermaid text (from the model)", 1000 * figures["mermaid"], "ms",
                   higher_is_better=False))
    if "svg" in figures:
        ctx.add(Result("render.svg", "render", "to SVG (DOT + Graphviz dot layout)", 1000 * figures["svg"], "ms",
                       higher_is_better=False, against=("render.dot",),
                       note=f"{figures['svg_bytes'] / 1e3:.0f} kB of SVG"))
    else:
        ctx.add(Result("render.svg", "render", "to SVG: skipped, Graphviz `dot` is not installed", 0, "ms"))


BENCHMARKS = {"render": ("draw a generated 500-state definition (nested Parallel/Map) to DOT, Mermaid and SVG",
                         run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=STATES)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the DOT and SVG there")
    args = parser.parse_args()
    figures = measure(args.states, args.repeat, args.out)
    print(f"{args.states} states, nested Parallel/Map, best of {args.repeat}:")
    print(f"  diagram model     {1000 * figures['build']:9.1f} ms")
    print(f"  DOT text          {1000 * figures['dot']:9.1f} ms  ({figures['dot_bytes'] / 1e3:.0f} kB)")
    print(f"  Mermaid text      {1000 * figures['mermaid']:9.1f} ms")
    if "svg" in figures:
        print(f"  SVG (with dot)    {1000 * figures['svg']:9.1f} ms  ({figures['svg_bytes'] / 1e3:.0f} kB)")
    else:
        print("  SVG               skipped: Graphviz `dot` is not installed (apt-get install graphviz)")


if __name__ == "__main__":
    main()
