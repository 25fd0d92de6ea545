"""The definitions and inputs the benchmarks run: chains of Pass, Pass/Choice and Task states, and Parallel/Map
fan-outs. Inputs carry 0, false, "" and null like real data does."""
from __future__ import annotations

from typing import Any, Callable

ORDER_INPUT: dict[str, Any] = {
    "order": {"id": "o-1001", "total": 120, "country": "DE", "status": "OPEN",
              "customer": {"id": 7, "name": "Ada", "vip": False, "note": ""},
              "lines": [{"sku": "A-1", "quantity": 2}, {"sku": "B-2", "quantity": 0}, {"sku": "C-3", "quantity": 1}]},
    "limits": {"small": 10, "pause": 0},
    "flags": [0, False, "", None],
}


def pass_chain(length: int) -> dict:
    """``length`` bare Pass states in a row: the cheapest possible transition."""
    states: dict[str, dict] = {f"S{i:05d}": {"Type": "Pass", "Next": f"S{i + 1:05d}"} for i in range(length - 1)}
    states[f"S{length - 1:05d}"] = {"Type": "Pass", "End": True}
    return {"StartAt": "S00000", "States": states}


def _alternating(length: int, passing: Callable[[int], dict], choosing: Callable[[str], dict]) -> dict:
    """``length`` states alternating ``passing(i)`` (a Pass) and ``choosing(target)`` (a Choice whose every branch
    goes to ``target``), then a Succeed when a Choice comes last."""
    states: dict[str, dict] = {}
    for i in range(length):
        name, nxt = f"S{i:05d}", f"S{i + 1:05d}"
        last = i == length - 1
        if i % 2 == 0:
            state = passing(i)
            if last:
                state["End"] = True
            else:
                state["Next"] = nxt
        else:
            state = choosing(nxt if not last else "Done")
        states[name] = state
    if length % 2 == 0:
        states["Done"] = {"Type": "Succeed"}
    return {"StartAt": "S00000", "States": states}


def mixed_chain(length: int) -> dict:
    """Alternating Pass (Parameters with ``.$`` paths and an intrinsic, ResultPath) and Choice (compound rule)."""
    return _alternating(length, lambda i: {
        "Type": "Pass",
        "Parameters": {"id.$": "$.order.id", "total.$": "$.order.total",
                       "label.$": "States.Format('{} for {}', $.order.id, $.order.customer.name)", "step": i},
        "ResultPath": "$.last",
    }, lambda target: {
        "Type": "Choice",
        "Choices": [{"And": [{"Variable": "$.order.total", "NumericGreaterThan": 100},
                             {"Variable": "$.order.customer.vip", "BooleanEquals": False}], "Next": target},
                    {"Variable": "$.order.country", "StringEquals": "FR", "Next": target}],
        "Default": target})


def mixed_chain_jsonata(length: int) -> dict:
    """The JSONata twin of ``mixed_chain``: the same outputs and branches, written with Output and Condition."""
    return {"QueryLanguage": "JSONata", **_alternating(length, lambda i: {
        "Type": "Pass",
        "Output": {"order": "{% $states.input.order %}", "limits": "{% $states.input.limits %}",
                   "flags": "{% $states.input.flags %}",
                   "last": {"id": "{% $states.input.order.id %}", "total": "{% $states.input.order.total %}",
                            "label": "{% $states.input.order.id & ' for ' & $states.input.order.customer.name %}",
                            "step": i}},
    }, lambda target: {
        "Type": "Choice",
        "Choices": [{"Condition": "{% $states.input.order.total > 100 and "
                                  "$states.input.order.customer.vip = false %}", "Next": target},
                    {"Condition": "{% $states.input.order.country = 'FR' %}", "Next": target}],
        "Default": target})}


TASK_RESULT = {"Payload": {"status": "ok", "code": 0, "detail": None}, "StatusCode": 200}


def task_chain(length: int, resource: str = "bench:noop") -> dict:
    """``length`` Tasks with Parameters, ResultSelector, ResultPath, Retry and Catch (each is entered once)."""
    states: dict[str, dict] = {}
    for i in range(length):
        name = f"T{i:05d}"
        state: dict[str, Any] = {
            "Type": "Task", "Resource": resource,
            "Parameters": {"id.$": "$.order.id", "customer.$": "$.order.customer", "step": i},
            "ResultSelector": {"status.$": "$.Payload.status"},
            "ResultPath": "$.result",
            "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
        }
        if i == length - 1:
            state["End"] = True
        else:
            state["Next"] = f"T{i + 1:05d}"
        states[name] = state
    states["Failed"] = {"Type": "Fail", "Error": "Bench.Failed", "Cause": "a task failed"}
    return {"StartAt": "T00000", "States": states}


def parallel_sleepers(branches: int, resource: str = "bench:sleep") -> dict:
    """A Parallel whose ``branches`` branches are one Task each (the handler sleeps)."""
    return {"StartAt": "Fan", "States": {"Fan": {
        "Type": "Parallel", "End": True,
        "Branches": [{"StartAt": f"Sleep{i}", "States": {f"Sleep{i}": {"Type": "Task", "Resource": resource,
                                                                        "End": True}}}
                     for i in range(branches)]}}}


def map_sleepers(resource: str = "bench:sleep") -> dict:
    """A Map over ``$.items`` whose processor is one Task (the handler sleeps)."""
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"StartAt": "Sleep", "States": {"Sleep": {"Type": "Task", "Resource": resource,
                                                                   "End": True}}}}}}


def choice_loop(transitions: int) -> dict:
    """A Pass that counts and a Choice that loops back to it until ``transitions`` states have been entered (the
    Pass/Choice pairs, then a Succeed): the issue's "Choice+Pass loop". Input: ``{"i": 0}``."""
    rounds = max(1, (transitions - 1) // 2)
    return {"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)", "zero": 0, "no": False,
                                                 "empty": "", "none": None}, "Next": "More?"},
        "More?": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThan": rounds, "Next": "Count"}],
                  "Default": "Done"},
        "Done": {"Type": "Succeed"}}}


def task_loop(transitions: int, resource: str = "bench:echo") -> dict:
    """The Task-heavy twin of ``choice_loop``: a Task (its handler returns its input) counts, a Choice loops back."""
    rounds = max(1, (transitions - 1) // 2)
    return {"StartAt": "Count", "States": {
        "Count": {"Type": "Task", "Resource": resource,
                  "Parameters": {"i.$": "States.MathAdd($.i, 1)", "zero": 0, "no": False, "empty": "", "none": None},
                  "Next": "More?"},
        "More?": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThan": rounds, "Next": "Count"}],
                  "Default": "Done"},
        "Done": {"Type": "Succeed"}}}
