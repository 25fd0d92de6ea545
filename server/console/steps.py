"""The execution page's state list, read from the history: one row per state visit with its input, output, error
and cause, in the order the states were entered.

An event belongs to the visit its ``previousEventId`` chain leads back to (``…StateEntered`` opens a visit), so the
visits of one state in many Map iterations at once stay apart; a Parallel/Map's own events, which AWS chains into
a child thread, belong to its latest open visit. Pure: takes ``Client.history`` events.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass
class Step:
    name: str
    type: str  # Task, Pass, Choice, ... (from the …StateEntered event type)
    entered: str
    input: str | None = None
    output: str | None = None
    exited: str | None = None
    error: str | None = None
    cause: str | None = None
    events: list[int] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.error is not None and self.output is None:
            return "failed"
        return "done" if self.exited is not None else "open"


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, Mapping)), {})


def steps(events: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Every state visit of a history, in the order entered."""
    found: list[Step] = []
    visit_of: dict[int, Step] = {}
    for event in events:
        kind, details = event["type"], _details(event)
        if kind.endswith("StateEntered"):
            step = Step(str(details.get("name", "")), kind[:-len("StateEntered")], event["timestamp"],
                        input=details.get("input"))
            found.append(step)
        else:
            step = visit_of.get(event.get("previousEventId", 0))
            if kind.startswith(("Parallel", "Map")) or (step is not None and kind.endswith("StateExited")
                                                        and details.get("name") != step.name):
                # A Parallel/Map's own events may point into a child thread: they belong to its open visit.
                step = next((s for s in reversed(found) if s.exited is None and s.type in ("Parallel", "Map")
                             and (not kind.endswith("StateExited") or s.name == details.get("name"))), None)
            if step is None:
                continue
            if kind.endswith("StateExited"):
                step.output, step.exited = details.get("output"), event["timestamp"]
            elif "error" in details or "cause" in details:
                step.error, step.cause = details.get("error"), details.get("cause")
        step.events.append(event["id"])
        visit_of[event["id"]] = step
    return found


def pretty(text: str | None) -> str:
    """JSON text indented for reading; text that is not JSON as it is."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
