"""Generate a large, realistic ASL definition for the validation benchmark (about 1 MB, 2,000 states).

Each segment is a slice of an order workflow: a Task with Parameters (``.$`` paths and intrinsics), ResultSelector,
Retry and Catch; a Choice with compound rules; a Parallel of two branches; a Map with an inline processor that has
its own Choice; a Pass building data with intrinsics; a Wait; a Catch target and a Fail. Segments are chained, and
the chain is padded with Pass states to the exact state count. Every state is reachable and the result is valid.

    python bench/gen_definition.py out.json [--states 2000]
"""
from __future__ import annotations

import argparse
import json
from typing import Any

LAMBDA = "arn:aws:states:::lambda:invoke"


def _retry() -> list[dict]:
    return [
        {"ErrorEquals": ["States.Timeout", "Lambda.ServiceException"],
         "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2.0, "MaxDelaySeconds": 30,
         "JitterStrategy": "FULL"},
        {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 2},
    ]


def _task(name: str, function: str, nxt: str, *, catch_to: str | None = None, fail_to: str | None = None,
          result_path: str = "$.result") -> dict:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": LAMBDA,
        "Parameters": {
            "FunctionName": f"arn:aws:lambda:eu-west-1:123456789012:function:{function}",
            "Payload": {
                "orderId.$": "$.order.id",
                "customer.$": "$.order.customer",
                "label.$": "States.Format('order {} for {}', $.order.id, $.order.customer.name)",
                "total.$": "States.MathAdd($.order.total, 0)",
                "attempt.$": "$$.State.RetryCount",
                "meta": {"step": name, "flags": [True, False, None, 0, ""]},
            },
        },
        "ResultSelector": {"status.$": "$.Payload.status", "code.$": "$.StatusCode", "ok": True},
        "ResultPath": result_path,
        "TimeoutSeconds": 30,
        "HeartbeatSeconds": 10,
        "Retry": _retry(),
        "Next": nxt,
    }
    catch = []
    if catch_to:
        catch.append({"ErrorEquals": ["Orders.InvalidOrder", "Orders.OutOfStock"], "ResultPath": "$.error",
                      "Next": catch_to})
    if fail_to:
        catch.append({"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": fail_to})
    if catch:
        state["Catch"] = catch
    return state


def segment(i: int, nxt: str) -> dict[str, dict]:
    """The states of segment ``i`` (top level; nested states live inside Parallel/Map); the last goes to ``nxt``."""
    s = f"_{i:04d}"
    route, par, mapped, build, wait = f"Route{s}", f"Fulfil{s}", f"ShipLines{s}", f"Build{s}", f"Pause{s}"
    reject, fail = f"Reject{s}", f"Failed{s}"
    states: dict[str, dict] = {}
    states[f"Validate{s}"] = _task(f"Validate{s}", "validate-order", route, catch_to=reject, fail_to=fail,
                                   result_path="$.validation")
    states[route] = {
        "Type": "Choice",
        "Comment": "Send big validated orders to fulfilment, foreign ones line by line, the rest straight on.",
        "Choices": [
            {"And": [{"Variable": "$.validation.ok", "BooleanEquals": True},
                     {"Variable": "$.order.total", "NumericGreaterThanEquals": 100},
                     {"Not": {"Variable": "$.order.status", "StringEquals": "CANCELLED"}}],
             "Next": par},
            {"Or": [{"Variable": "$.order.country", "StringMatches": "D*"},
                    {"Variable": "$.order.express", "IsPresent": True}],
             "Next": mapped},
            {"Variable": "$.order.total", "NumericLessThanPath": "$.limits.small", "Next": build},
        ],
        "Default": build,
    }
    states[par] = {
        "Type": "Parallel",
        "Comment": "Reserve stock and charge the card at the same time.",
        "Parameters": {"order.$": "$.order", "when.$": "$$.Execution.StartTime"},
        "ResultSelector": {"reserved.$": "$[0].result", "charged.$": "$[1].result"},
        "ResultPath": "$.fulfilment",
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 1.5}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": reject}],
        "Branches": [
            {"StartAt": f"Reserve{s}", "States": {
                f"Reserve{s}": _task(f"Reserve{s}", "reserve-stock", f"Reserved{s}"),
                f"Reserved{s}": {"Type": "Pass", "Parameters": {"ok": True, "at.$": "$$.State.EnteredTime"},
                                 "ResultPath": "$.reservation", "Next": f"ReserveDone{s}"},
                f"ReserveDone{s}": {"Type": "Succeed", "OutputPath": "$.reservation"},
            }},
            {"StartAt": f"Charge{s}", "States": {
                f"Charge{s}": _task(f"Charge{s}", "charge-card", f"Charged{s}"),
                f"Charged{s}": {"Type": "Pass", "Result": {"charged": True, "currency": "EUR"},
                                "ResultPath": "$.charge", "Next": f"ChargeDone{s}"},
                f"ChargeDone{s}": {"Type": "Succeed"},
            }},
        ],
        "Next": build,
    }
    states[mapped] = {
        "Type": "Map",
        "Comment": "Ship each line on its own, four at a time.",
        "ItemsPath": "$.order.lines",
        "MaxConcurrency": 4,
        "ItemSelector": {"line.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index",
                         "customer.$": "$.order.customer.id"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": f"Inspect{s}",
            "States": {
                f"Inspect{s}": {"Type": "Choice", "Choices": [
                    {"Variable": "$.line.quantity", "NumericGreaterThan": 0, "Next": f"Ship{s}"}],
                    "Default": f"Skip{s}"},
                f"Ship{s}": _task(f"Ship{s}", "ship-line", f"Shipped{s}"),
                f"Shipped{s}": {"Type": "Pass", "Parameters": {
                    "id.$": "States.Format('{}-{}', $.customer, $.index)",
                    "parts.$": "States.StringSplit($.line.sku, '-')"}, "End": True},
                f"Skip{s}": {"Type": "Succeed"},
            },
        },
        "ResultPath": "$.shipments",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": reject}],
        "Next": build,
    }
    states[build] = {
        "Type": "Pass",
        "Comment": "Assemble the summary with intrinsics.",
        "Parameters": {
            "summary.$": "States.JsonMerge($.order.customer, $.limits, false)",
            "lineCount.$": "States.ArrayLength($.order.lines)",
            "firstLine.$": "States.ArrayGetItem($.order.lines, 0)",
            "tags.$": "States.Array('bench', $.order.country, 'segment')",
            "encoded.$": "States.Base64Encode($.order.id)",
            "hash.$": "States.Hash($.order.id, 'SHA-256')",
            "asText.$": "States.JsonToString($.limits)",
            "parsed.$": "States.StringToJson('{\"k\":1}')",
            "unique.$": "States.ArrayUnique($.order.tags)",
            "range.$": "States.ArrayRange(1, 9, 2)",
        },
        "ResultPath": "$.summary",
        "Next": wait,
    }
    states[wait] = {"Type": "Wait", "SecondsPath": "$.limits.pause", "Next": nxt}
    states[reject] = {"Type": "Pass", "Result": {"rejected": True}, "ResultPath": "$.rejection", "Next": build}
    states[fail] = {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    return states


def generate(total_states: int = 2000) -> dict:
    """A valid definition with exactly ``total_states`` states (nested ones included)."""
    per_segment = count_states({"States": segment(0, "Done")})
    segments = max(0, (total_states - 1) // per_segment)
    padding = total_states - 1 - segments * per_segment
    names = [f"Validate_{i:04d}" for i in range(segments)] + [f"Note_{i:04d}" for i in range(padding)] + ["Done"]
    states: dict[str, dict] = {}
    for i in range(segments):
        states.update(segment(i, names[i + 1]))
    for j in range(padding):
        states[f"Note_{j:04d}"] = {"Type": "Pass", "Parameters": {"note.$": "States.Format('pad {}', $.order.id)"},
                                   "ResultPath": f"$.notes.n{j}", "Next": names[segments + j + 1]}
    states["Done"] = {"Type": "Succeed", "OutputPath": "$.summary"}
    return {"Comment": f"Generated benchmark workflow with {total_states} states.", "StartAt": names[0],
            "TimeoutSeconds": 86400, "States": states}


def dump(definition: dict) -> str:
    """Pretty-printed JSON, one space per level (about 1.1 MB for 2,000 states)."""
    return json.dumps(definition, indent=1)


def count_states(scope: dict) -> int:
    total = 0
    for state in scope.get("States", {}).values():
        total += 1
        for branch in state.get("Branches", ()):
            total += count_states(branch)
        if "ItemProcessor" in state:
            total += count_states(state["ItemProcessor"])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--states", type=int, default=2000)
    args = parser.parse_args()
    definition = generate(args.states)
    text = dump(definition)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{args.out}: {count_states(definition)} states, {len(text.encode()):,} bytes")


if __name__ == "__main__":
    main()
