"""The diagram of a redriven execution: what ran after the latest ExecutionRedriven is the current run; a state that
failed before the redrive keeps a second outline in the redriven colour and the note "failed, redriven", which the
legend explains. Drawn with the real ``dot``.
"""
from __future__ import annotations

import shutil

import pytest

from statemill.engine import TaskFailure
from statemill.visualizer import dot_source, image, load_execution
from statemill.visualizer import style
from test_visualizer import dot_nodes, plain

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
RETRY_ONCE = [{"ErrorEquals": ["Broken"], "IntervalSeconds": 1, "MaxAttempts": 1}]

CASES = {
    "a_task": ({"StartAt": "Check", "States": {
        "Check": {"Type": "Pass", "Result": {"zero": 0, "no": False, "empty": "", "null": None}, "Next": "Charge"},
        "Charge": {"Type": "Task", "Resource": "app:work", "Parameters": {"n": 1}, "End": True}}},
        {}, "Charge", {"Check": "succeeded", "Charge": "succeeded"}),
    "a_map_iteration": ({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True, "ItemProcessor": {"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": "app:work", "Retry": RETRY_ONCE, "End": True}}}}}},
        {"items": [{"n": 0}, {"n": 1}, {"n": 2}]}, "Work", {"Each": "succeeded", "Work": "succeeded"}),
    "a_parallel_branch": ({"StartAt": "Fork", "States": {"Fork": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
        {"StartAt": "Right", "States": {"Right": {"Type": "Task", "Resource": "app:work", "Retry": RETRY_ONCE,
                                                  "Parameters": {"n": 1}, "End": True}}}]}}},
        {}, "Right", {"Fork": "succeeded", "Left": "succeeded", "Right": "succeeded"}),
}


@needs_dot
@pytest.mark.parametrize("case", list(CASES))
def test_the_redriven_path_is_the_current_run_and_the_earlier_failure_is_marked(engine, case):
    definition, value, failing, after = CASES[case]
    fixed = []

    @engine.handler("app:work")
    def work(item):
        if item["n"] == 1 and not fixed:
            raise TaskFailure("Broken", "")
        return item["n"]

    arn = engine.run(definition, value, machine_name="redriven")["executionArn"]
    machine, before = load_execution(engine, arn)
    assert before.status == "FAILED" and before.status_of(failing) == "failed" and before.redrives == 0
    fixed.append(True)
    engine.redrive(arn)
    assert engine.wait(arn)["status"] == "SUCCEEDED"
    machine, overlay = load_execution(engine, arn)
    assert overlay.status == "SUCCEEDED" and overlay.redrives == 1
    assert {name: run.status for name, run in overlay.states.items()} == after
    assert {name for name, run in overlay.states.items() if run.redriven} >= {failing}
    if case == "a_map_iteration":  # the re-run iteration takes the place of the failed one
        assert overlay.states["Each"].iterations == {"items": 3, "succeeded": 3, "failed": 0, "running": 0,
                                                     "cancelled": 0, "not-started": 0}
    source = dot_source(machine, overlay)
    node = dot_nodes(source, machine)[failing]
    assert node["fillcolor"] == style.STATUS["succeeded"].fill
    assert node["peripheries"] == "2" and node["color"] == style.REDRIVEN.line
    assert "failed, redriven" in plain(node["label"])
    assert "SUCCEEDED, redriven 1×" in source and f'bgcolor="{style.REDRIVEN.fill}"' in source  # the legend
    svg = image(machine, "svg", overlay).decode()
    assert "failed, redriven" in svg and style.REDRIVEN.line in svg


def test_states_that_never_failed_carry_no_redrive_mark(engine):
    definition, value, _, _ = CASES["a_task"]
    engine.handler("app:work")(lambda item: (_ for _ in ()).throw(TaskFailure("Broken", "")))
    arn = engine.run(definition, value, machine_name="plain")["executionArn"]
    machine, overlay = load_execution(engine, arn)
    assert not any(run.redriven for run in overlay.states.values())
    assert "redriven" not in dot_source(machine, overlay)
