"""Colours and shapes, shared by the Graphviz and Mermaid drawings so both read the same way.

A state's type decides its shape (Choice a diamond, Wait a hexagon, Fail an octagon...) and, in a plain diagram,
its colours. With an execution overlay the colours say the status instead and the shape still says the type.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import overlay as o


@dataclass(frozen=True, slots=True)
class Look:
    fill: str
    line: str
    text: str = "#202124"


FONT = "Helvetica,Arial,sans-serif"
GREY = "#5f6368"
MUTED = "#80868b"  # the small facts under a state's name
FAINT = "#bdc1c6"

# Graphviz shape and style per node kind (state type or marker).
SHAPES = {
    "Task": ("box", "rounded,filled"),
    "Pass": ("box", "filled"),
    "Choice": ("diamond", "filled"),
    "Wait": ("hexagon", "filled"),
    "Succeed": ("oval", "filled"),
    "Fail": ("octagon", "filled"),
    "Parallel": ("box", "rounded,filled,bold"),
    "Map": ("box", "rounded,filled,bold"),
    "start": ("oval", "filled"),
    "end": ("oval", "filled"),
    "join": ("box", "filled"),
}

TYPES = {
    "Task": Look("#e8f0fe", "#1a73e8"),
    "Pass": Look("#f1f3f4", "#5f6368"),
    "Choice": Look("#fef7e0", "#e37400"),
    "Wait": Look("#f3e8fd", "#9334e6"),
    "Succeed": Look("#e6f4ea", "#188038"),
    "Fail": Look("#fce8e6", "#d93025"),
    "Parallel": Look("#e4f7fb", "#007b83"),
    "Map": Look("#e4f7fb", "#007b83"),
    "start": Look("#3c4043", "#3c4043", "#ffffff"),
    "end": Look("#3c4043", "#3c4043", "#ffffff"),
    "join": Look("#007b83", "#007b83", "#ffffff"),
}

STATUS = {
    o.SUCCEEDED: Look("#ceead6", "#188038"),
    o.CAUGHT: Look("#feefc3", "#e37400"),
    o.FAILED: Look("#fad2cf", "#c5221f"),
    o.RUNNING: Look("#d2e3fc", "#1967d2"),
    o.WAITING_TIMER: Look("#e9d2fd", "#8430ce"),
    o.WAITING_TOKEN: Look("#fde293", "#b06000"),
    o.CANCELLED: Look("#e8eaed", "#80868b"),
    o.NOT_REACHED: Look("#ffffff", FAINT, "#80868b"),
}
# A state that failed before a redrive ran it again: a second outline in this colour, whatever its status now.
REDRIVEN = Look("#f6aea9", "#a50e0e")

# Edge colours; in an overlay the path taken is drawn dark and thick, the rest faint.
EDGE = {"catch": "#d93025", "default": "#5f6368"}
TAKEN = "#202124"
TAKEN_WIDTH = "2.6"

# Cluster outlines: a Parallel/Map box, and each branch or item processor inside it.
CONTAINER_BG = ("#f4fbfc", "#eaf6f8")  # alternates with nesting depth so nested boxes stay apart
BRANCH_LINE = "#9aa0a6"


def node_look(kind: str, status: str | None) -> Look:
    """The colours of a node of ``kind``: by type, or by ``status`` when an overlay is drawn."""
    if status is None or kind in ("start", "end"):
        return TYPES.get(kind, TYPES["Pass"])
    return STATUS[status]


def status_lines(run: o.StateRun | None) -> list[str]:
    """The overlay's words on a state: its status (and error), retries, visits, Map item counts."""
    if run is None:
        return [o.LABELS[o.NOT_REACHED]]
    head = o.LABELS[run.status]
    if run.status in (o.FAILED, o.CAUGHT) and run.error:
        head += f": {_clip(run.error, 36)}"
    lines = [head]
    if run.redriven:
        lines.append(o.LABELS[o.REDRIVEN] + (f" {run.redriven}×" if run.redriven > 1 else ""))
    if run.retries:
        lines.append(f"retried {run.retries}×")
    if run.iterations is not None:
        parts = [f"{count} {o.LABELS.get(key, key.replace('-', ' '))}" for key, count in run.iterations.items()
                 if key != "items" and count]
        lines.append(f"{run.iterations['items']} items" + (": " + ", ".join(parts) if parts else ""))
    elif run.visits > 1 and len(run.counts) == 1:
        lines.append(f"{run.visits} runs")
    elif run.visits > 1:
        parts = [f"{count} {o.LABELS[key]}" for key, count in sorted(run.counts.items(),
                                                                   key=lambda kv: o.PRIORITY.index(kv[0]))]
        lines.append(f"{run.visits} runs: " + ", ".join(parts))
    return lines


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
