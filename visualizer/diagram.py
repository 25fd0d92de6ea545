"""The drawing as plain data: nodes, edges and nested clusters built once from a compiled state machine.

Both back ends (Graphviz in ``graph.py``, Mermaid in ``mermaid.py``) draw this same structure, so what a diagram
contains is decided in one place and tests can check it without parsing DOT. Node ids are the state names; the
start and end markers and the join bar closing each Parallel/Map get reserved ids.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Iterator, Mapping

from statemill.engine import loader
from statemill.engine import model as m

START = "__start__"
END = "__end__"
CONTAINERS = ("Parallel", "Map")


@dataclass(frozen=True, slots=True)
class Node:
    """One box. ``kind`` is the state type, or ``start``, ``end`` or ``join`` for the markers.

    ``lines`` are the short facts under the title (type, resource, retry policy...); ``state`` is the state the node
    stands for (for a join bar, its Parallel or Map).
    """

    id: str
    kind: str
    title: str
    lines: tuple[str, ...] = ()
    tooltip: str = ""
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """An arrow. ``kind``: start, next, choice, default, catch, end, fork (into a branch) or join (out of one).

    ``source`` and ``target`` are the state names of the transition it draws (None for a marker or join bar).
    """

    tail: str
    head: str
    kind: str
    label: str = ""
    tooltip: str = ""
    source: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Cluster:
    """A box around a group: a Parallel or Map state (``kind`` parallel/map) and, inside it, each ``branch`` or the
    Map's item ``processor``. The top-level scope is a cluster of kind ``machine`` that draws no box."""

    id: str
    kind: str
    label: str
    state: str | None
    nodes: tuple[str, ...]
    clusters: tuple["Cluster", ...]
    tooltip: str = ""

    def walk(self) -> Iterator["Cluster"]:
        """This cluster and every cluster inside it, depth first."""
        yield self
        for inner in self.clusters:
            yield from inner.walk()


@dataclass(frozen=True, slots=True)
class Diagram:
    machine: m.StateMachine
    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...]
    top: Cluster
    join: Mapping[str, str] = field(default_factory=dict)  # Parallel/Map name -> id of its join bar

    def clusters(self) -> list[Cluster]:
        """Every drawn cluster (the top-level scope excluded), outermost first."""
        return list(self.top.walk())[1:]

    def edges_from(self, state: str) -> list[Edge]:
        return [e for e in self.edges if e.source == state]


def load_machine(source: m.StateMachine | str | PathLike | Mapping[str, Any]) -> m.StateMachine:
    """A compiled machine from a machine, a definition file path or a definition dict."""
    return source if isinstance(source, m.StateMachine) else loader.load(source)


def build(source: m.StateMachine | str | PathLike | Mapping[str, Any]) -> Diagram:
    """The diagram of a state machine (compiled, or a path or dict to compile)."""
    return _Builder(load_machine(source)).diagram()


# ------------------------------------------------------------------------------------------------ builder
class _Builder:
    def __init__(self, machine: m.StateMachine):
        self.machine = machine
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.join: dict[str, str] = {}
        self.taken = set(machine.index) | {START, END}
        self.counter = 0

    def diagram(self) -> Diagram:
        machine = self.machine
        self.nodes[START] = Node(START, "start", "Start", tooltip=machine.comment or "Start")
        nodes, clusters = self.scope(machine, START, END, root=True)
        self.nodes[END] = Node(END, "end", "End", tooltip="End")
        top = Cluster("", "machine", "", None, (START, *nodes, END), clusters, machine.comment or "")
        return Diagram(machine, self.nodes, tuple(self.edges), top, self.join)

    def fresh(self, base: str) -> str:
        name = base
        while name in self.taken:
            name = "_" + name
        self.taken.add(name)
        return name

    def cluster_id(self) -> str:
        self.counter += 1
        return f"cluster_{self.counter}"

    def scope(self, sm: m.StateMachine, entry: str, exit: str, root: bool = False) \
            -> tuple[list[str], list[Cluster]]:
        """Draw the states of one scope; ``entry`` points at its StartAt, its terminal states point at ``exit``."""
        entry_state = None if entry == START else entry
        self.edges.append(Edge(entry, sm.start_at, "start" if root else "fork", source=entry_state,
                               target=sm.start_at))
        nodes, clusters = [], []
        for state in sm.states.values():
            if isinstance(state, (m.ParallelState, m.MapState)):
                clusters.append(self.container(state))
            else:
                nodes.append(state.name)
                self.nodes[state.name] = Node(state.name, state.type, state.name, tuple(describe(state)),
                                              tooltip=_tooltip(state), state=state.name)
            self.transitions(state, exit, root)
        return nodes, clusters

    def container(self, state: m.ParallelState | m.MapState) -> Cluster:
        """A Parallel or Map: its head node, a cluster per branch (or the item processor), and a join bar."""
        join = self.fresh(f"{state.name}__join")
        self.join[state.name] = join
        self.nodes[state.name] = Node(state.name, state.type, state.name, tuple(describe(state)),
                                      tooltip=_tooltip(state), state=state.name)
        self.nodes[join] = Node(join, "join", "", tooltip=f"{state.name}: all {_inner_word(state)} done",
                                state=state.name)
        if isinstance(state, m.ParallelState):
            inner = []
            for i, branch in enumerate(state.branches, 1):
                nodes, clusters = self.scope(branch, state.name, join)
                label = f"Branch {i}" + (f": {branch.comment}" if branch.comment else "")
                inner.append(Cluster(self.cluster_id(), "branch", _clip(label, 60), state.name, tuple(nodes),
                                     tuple(clusters), branch.comment or ""))
        else:
            nodes, clusters = self.scope(state.processor, state.name, join)
            label = "for each item" if not state.processor.comment else f"for each item: {state.processor.comment}"
            inner = [Cluster(self.cluster_id(), "processor", _clip(label, 60), state.name, tuple(nodes),
                             tuple(clusters), state.processor.comment or "")]
        return Cluster(self.cluster_id(), state.type.lower(), "", state.name, (state.name, join), tuple(inner),
                       state.comment or "")

    def transitions(self, state: m.State, exit: str, root: bool) -> None:
        tail = self.join.get(state.name, state.name)
        if isinstance(state, m.ChoiceState):
            for rule, target in choice_rules(state):
                self.edges.append(Edge(tail, target, "choice", _wrap_rule(rule), rule, state.name, target))
            if state.default is not None:
                self.edges.append(Edge(tail, state.default, "default", "Default", "Default: no rule matched",
                                       state.name, state.default))
        elif state.next is not None and not state.end:
            self.edges.append(Edge(tail, state.next, "next", source=state.name, target=state.next))
        for catcher in getattr(state, "catch", ()):
            errors = ", ".join(catcher.error_equals)
            self.edges.append(Edge(tail, catcher.next, "catch", "catch " + _clip(errors, 48), f"Catch: {errors}",
                                   state.name, catcher.next))
        if state.is_terminal:
            self.edges.append(Edge(tail, exit, "end" if root else "join", source=state.name))


# ------------------------------------------------------------------------------------------------ labels
def choice_rules(state: m.ChoiceState) -> list[tuple[str, str]]:
    """(rule in plain words, target) per Choice rule; a JSONata ``Condition`` is shown as its expression."""
    raw = [c for c in state.raw.get("Choices", ()) if isinstance(c, Mapping)]
    if len(state.choices) == len(raw) and all(branch.rule is not None for branch in state.choices):
        return [(branch.rule.describe(), branch.next) for branch in state.choices]
    return [(_condition(c.get("Condition")), c.get("Next")) for c in raw if c.get("Next")]


def _condition(text: Any) -> str:
    text = str(text).strip()
    return text[2:-2].strip() if text.startswith("{%") and text.endswith("%}") else text


def describe(state: m.State) -> Iterator[str]:
    """The short facts shown under a state's name: its type and what it does, timeouts, retry policy."""
    raw = state.raw
    if isinstance(state, m.TaskState):
        yield f"Task · {_resource(state)}"
        if state.wait_for_task_token:
            yield "waits for a task token"
        limits = []
        if state.timeout_seconds or raw.get("TimeoutSecondsPath"):
            limits.append(f"timeout {_seconds(state.timeout_seconds or raw.get('TimeoutSecondsPath'))}")
        if state.heartbeat_seconds or raw.get("HeartbeatSecondsPath"):
            limits.append(f"heartbeat {_seconds(state.heartbeat_seconds or raw.get('HeartbeatSecondsPath'))}")
        if limits:
            yield " · ".join(limits)
    elif isinstance(state, m.WaitState):
        if state.seconds is not None:
            yield f"Wait {_seconds(state.seconds)}"
        elif state.timestamp is not None:
            yield f"Wait until {state.timestamp}"
        elif raw.get("SecondsPath"):
            yield f"Wait {raw['SecondsPath']} s"
        else:
            yield f"Wait until {raw.get('TimestampPath')}"
    elif isinstance(state, m.FailState):
        error = state.error if state.error is not None else raw.get("ErrorPath")
        yield "Fail" + (f" · {_clip(str(error), 40)}" if error else "")
        cause = state.cause if state.cause is not None else raw.get("CausePath")
        if cause:
            yield _clip(str(cause), 40)
    elif isinstance(state, m.ParallelState):
        count = len(state.branches)
        yield f"Parallel · {count} branch{'es' if count != 1 else ''}"
    elif isinstance(state, m.MapState):
        reader = raw.get("ItemReader")
        if isinstance(reader, Mapping) and reader.get("Resource"):
            yield f"Map · each item read by {_clip(str(reader['Resource']).removeprefix('arn:aws:states:::'), 30)}"
        else:
            yield f"Map · each item of {_clip(str(raw.get('ItemsPath', raw.get('Items', '$'))), 36)}"
        if state.mode == "DISTRIBUTED":
            yield "distributed"
        if state.max_concurrency or raw.get("MaxConcurrencyPath"):
            yield f"at most {state.max_concurrency or raw.get('MaxConcurrencyPath')} at a time"
        if state.tolerated_failure_count or state.tolerated_failure_percentage:
            yield "tolerates " + (f"{state.tolerated_failure_count} failures" if state.tolerated_failure_count
                                  else f"{_number(state.tolerated_failure_percentage)}% failures")
    elif isinstance(state, m.PassState) and state.result is not m.MISSING:
        yield "Pass · result " + _clip(json.dumps(state.result, separators=(",", ":")), 32)
    else:
        yield state.type
    for retrier in getattr(state, "retry", ()):
        yield retry_text(retrier)


def retry_text(retrier: m.Retrier) -> str:
    """One Retrier in a line: ``retry States.ALL ×3 · 1 s, backoff ×2``."""
    errors = _clip(", ".join(retrier.error_equals), 32)
    if retrier.max_attempts == 0:
        return f"no retry on {errors}"
    text = f"retry {errors} ×{retrier.max_attempts} · {_seconds(retrier.interval_seconds)}"
    if retrier.backoff_rate != 1 and retrier.max_attempts > 1:
        text += f", backoff ×{_number(retrier.backoff_rate)}"
    if retrier.max_delay_seconds is not None:
        text += f", max {_seconds(retrier.max_delay_seconds)}"
    if retrier.jitter_strategy == "FULL":
        text += ", jitter"
    return text


def _resource(state: m.TaskState) -> str:
    """A Task's resource in a few words: ``lambda:invoke charge``, ``lambda charge``, ``sqs:sendMessage``."""
    resource = state.resource.removesuffix(".waitForTaskToken").removesuffix(".sync:2").removesuffix(".sync")
    if resource.startswith("arn:aws:states:::"):
        resource = resource[len("arn:aws:states:::"):]
        params = state.raw.get("Parameters") or state.raw.get("Arguments") or {}
        function = params.get("FunctionName") if isinstance(params, Mapping) else None
        if resource == "lambda:invoke" and isinstance(function, str):
            resource += " " + function.rsplit(":function:", 1)[-1]
    elif resource.startswith("arn:") and ":function:" in resource:
        resource = "lambda " + resource.rsplit(":function:", 1)[-1]
    return _clip(resource, 40)


def _tooltip(state: m.State) -> str:
    return state.comment or f"{state.name} ({state.type})"


def _inner_word(state: m.State) -> str:
    return "branches" if isinstance(state, m.ParallelState) else "items"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _seconds(value: Any) -> str:
    """A duration in the largest whole unit: ``45 s``, ``90 min``, ``1 h``, ``7 d``; a path is shown as is."""
    if not isinstance(value, (int, float)):
        return str(value)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if value >= size and value % size == 0:
            return f"{_number(value / size)} {unit}"
    return f"{_number(value)} s"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap_rule(rule: str, width: int = 34, lines: int = 3) -> str:
    """A Choice rule as an edge label: wrapped to a few short lines (the full rule is the edge's tooltip)."""
    wrapped = textwrap.wrap(rule, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = _clip(wrapped[-1] + " …", width)
    return "\n".join(wrapped)
