"""Coverage of a state machine's states and transitions across executions, read off their histories.

Each execution's history is replayed (``overlay``'s replay, the same one that colours ``render --execution``) into
the states entered, the transitions taken (next, catch, a thread's start and end), the Choice rules and Defaults
taken, and the Retriers and Catchers that fired. A coverage file (JSON) accumulates these per state machine name
across runs; ``report`` lists what was and was not exercised, as text, JSON or HTML (the diagram, untested parts
drawn faint and dashed). A Choice rule counts as taken when the Choice moved to its Next; rules sharing a Next are
credited together, as the history does not say which of them matched.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from statemill.engine import loader
from statemill.engine import model as m
from statemill.engine.interpreter import error_matches

from . import overlay as o
from .diagram import build

VERSION = 1


# ------------------------------------------------------------------------------------------------ one execution
def observe(machine: m.StateMachine, events: Iterable[Mapping[str, Any]]) -> dict:
    """What one execution (its GetExecutionHistory events) exercised of ``machine``, as a coverage record."""
    replay = o._Replay(machine)
    for event in events:
        replay.event(event)
    replay.overlay("")  # settles every visit's status (caught, failed...)
    record = _empty()
    record["executions"] = 1
    for thread in replay.threads:
        if thread.visits:
            _bump(record["startedThreads"], thread.visits[0].state.name)
            last = thread.visits[-1]
            if last.state.is_terminal and last.status in (o.SUCCEEDED, o.FAILED) and \
                    (last.status == o.SUCCEEDED or isinstance(last.state, m.FailState)):
                _bump(record["endedThreads"], last.state.name)
        for i, visit in enumerate(thread.visits):
            state = visit.state
            _bump(record["states"], state.name)
            for index, count in enumerate(visit.counts):
                if count:
                    _bump(record["retriers"], f"{state.name}#{index}", count)
            after = thread.visits[i + 1] if i + 1 < len(thread.visits) else None
            if after is None:
                continue
            target = after.state.name
            caught = visit.status == o.CAUGHT or (visit.status == o.SUCCEEDED and o._caught_by(state, target))
            _bump(record["transitions"], f"{state.name}\t{target}\t{'catch' if caught else 'next'}")
            if caught:
                catchers = getattr(state, "catch", ())
                index = next((k for k, c in enumerate(catchers) if c.next == target and
                              (visit.error is None or error_matches(c.error_equals, visit.error))), None)
                if index is not None:
                    _bump(record["catchers"], f"{state.name}#{index}")
            elif isinstance(state, m.ChoiceState):
                for key in _choice_keys(state, target):
                    _bump(record["choices"], key)
    return record


def _choice_keys(state: m.ChoiceState, target: str) -> list[str]:
    keys = [f"{state.name}#{k}" for k, branch in enumerate(state.choices) if branch.next == target]
    if state.default == target:
        keys.append(f"{state.name}#Default")
    return keys


def _empty() -> dict:
    return {"executions": 0, "states": {}, "transitions": {}, "startedThreads": {}, "endedThreads": {},
            "choices": {}, "retriers": {}, "catchers": {}}


def _bump(counts: dict, key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


def merge(into: dict, record: Mapping[str, Any]) -> dict:
    """Add ``record``'s counts to ``into`` (both coverage records of one state machine)."""
    into["executions"] = into.get("executions", 0) + record.get("executions", 0)
    for key, counts in record.items():
        if isinstance(counts, Mapping):
            target = into.setdefault(key, {})
            for name, count in counts.items():
                target[name] = target.get(name, 0) + count
    return into


# ------------------------------------------------------------------------------------------------ the file
@dataclass
class CoverageFile:
    """Coverage per state machine name: its latest definition and the counts accumulated for it."""

    machines: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | Path) -> "CoverageFile":
        """The coverage in ``path``; empty when the file does not exist. ValueError when it is not ours."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a statemill coverage file (not JSON: {exc})") from None
        if not isinstance(data, dict) or data.get("statemillCoverage") != VERSION or \
                not isinstance(data.get("machines"), dict):
            raise ValueError(f"{path} is not a statemill coverage file (version {VERSION})")
        return cls(data["machines"])

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"statemillCoverage": VERSION, "machines": self.machines}, indent=1,
                                          ensure_ascii=False), encoding="utf-8")

    def add(self, name: str, definition: Mapping[str, Any], record: Mapping[str, Any]) -> None:
        """Count one execution of state machine ``name``; a changed definition starts its counts afresh."""
        entry = self.machines.get(name)
        if entry is None or entry.get("definition") != definition:
            entry = self.machines[name] = {"definition": definition, **_empty()}
        merge(entry, record)


def record_execution(client: Any, arn: str, coverage: CoverageFile) -> None:
    """Add the execution ``arn`` (in ``client``'s database) to ``coverage``."""
    from statemill.engine.store.schema import executions
    import sqlalchemy as sa
    with client.reader.connect() as conn:
        row = conn.execute(sa.select(executions.c.machine_id, executions.c.machine_name)
                           .where(executions.c.arn == arn)).one()
    machine = client.machine(row.machine_id)
    coverage.add(row.machine_name, dict(machine.definition), observe(machine, client.history(arn)))


def accumulate(path: str | Path, client: Any, arns: Iterable[str]) -> CoverageFile:
    """Add executions to the coverage file at ``path`` (created when missing) and write it back."""
    coverage = CoverageFile.read(path)
    for arn in arns:
        record_execution(client, arn, coverage)
    coverage.write(path)
    return coverage


# ------------------------------------------------------------------------------------------------ the report
@dataclass(frozen=True)
class Item:
    kind: str  # state, transition, choice, retrier, catcher
    label: str
    hits: int


def items(entry: Mapping[str, Any]) -> tuple[m.StateMachine, list[Item], o.Overlay]:
    """Every coverable part of the entry's machine with its hit count, and an overlay drawing the covered parts."""
    machine = loader.load(entry["definition"])
    diagram = build(machine)
    covered = _overlay(entry)
    found: list[Item] = []
    states = entry.get("states", {})
    for name, state in machine.index.items():
        found.append(Item("state", name, states.get(name, 0)))
    transitions = entry.get("transitions", {})
    for edge in diagram.edges:
        found.append(Item("transition", _edge_label(edge), _edge_hits(edge, entry, transitions)))
    for name, state in machine.index.items():
        if isinstance(state, m.ChoiceState):
            for k, branch in enumerate(state.choices):
                found.append(Item("choice", f"{name}: rule {k + 1} → {branch.next}",
                                  entry.get("choices", {}).get(f"{name}#{k}", 0)))
            if state.default is not None:
                found.append(Item("choice", f"{name}: Default → {state.default}",
                                  entry.get("choices", {}).get(f"{name}#Default", 0)))
        for k, retrier in enumerate(getattr(state, "retry", ())):
            found.append(Item("retrier", f"{name}: Retry {k + 1} [{', '.join(retrier.error_equals)}]",
                              entry.get("retriers", {}).get(f"{name}#{k}", 0)))
        for k, catcher in enumerate(getattr(state, "catch", ())):
            found.append(Item("catcher", f"{name}: Catch {k + 1} [{', '.join(catcher.error_equals)}] → "
                                         f"{catcher.next}", entry.get("catchers", {}).get(f"{name}#{k}", 0)))
    return machine, found, covered


def _edge_label(edge) -> str:
    source = edge.source or ("start" if edge.kind in ("start", "fork") else "?")
    target = edge.target or "end"
    return f"{source} → {target} ({edge.kind})"


def _edge_hits(edge, entry: Mapping[str, Any], transitions: Mapping[str, int]) -> int:
    if edge.kind in ("start", "fork"):
        return entry.get("startedThreads", {}).get(edge.target, 0)
    if edge.kind in ("end", "join"):
        return entry.get("endedThreads", {}).get(edge.source, 0)
    kind = "catch" if edge.kind == "catch" else "next"
    return transitions.get(f"{edge.source}\t{edge.target}\t{kind}", 0)


def _overlay(entry: Mapping[str, Any]) -> o.Overlay:
    runs = {name: o.StateRun(o.SUCCEEDED, visits, {o.SUCCEEDED: visits})
            for name, visits in entry.get("states", {}).items() if visits}
    transitions = frozenset(tuple(key.split("\t")) for key in entry.get("transitions", {}))
    return o.Overlay("COVERAGE", runs, transitions, frozenset(entry.get("startedThreads", {})),
                     frozenset(entry.get("endedThreads", {})), "coverage")


def summary(entry: Mapping[str, Any]) -> dict:
    """JSON report of one machine: per kind, covered/total and the parts not covered."""
    _, found, _ = items(entry)
    kinds: dict[str, Any] = {}
    for kind in ("state", "transition", "choice", "retrier", "catcher"):
        mine = [i for i in found if i.kind == kind]
        kinds[kind + "s"] = {"covered": sum(i.hits > 0 for i in mine), "total": len(mine),
                             "missed": [i.label for i in mine if not i.hits],
                             "hits": {i.label: i.hits for i in mine}}
    total = len(found)
    hit = sum(i.hits > 0 for i in found)
    return {"executions": entry.get("executions", 0), "covered": hit, "total": total,
            "percent": round(100.0 * hit / total, 1) if total else 100.0, **kinds}


def report(coverage: CoverageFile, fmt: str = "text") -> str:
    """The coverage report as text, JSON or a self-contained HTML page."""
    if fmt == "json":
        return json.dumps({name: summary(entry) for name, entry in coverage.machines.items()}, indent=2,
                          ensure_ascii=False)
    if fmt == "html":
        return _html(coverage)
    lines = []
    for name, entry in coverage.machines.items():
        data = summary(entry)
        lines.append(f"{name}: {data['percent']}% ({data['covered']}/{data['total']}) over "
                     f"{data['executions']} execution(s)")
        for kind in ("states", "transitions", "choices", "retriers", "catchers"):
            part = data[kind]
            if part["total"]:
                lines.append(f"  {kind:12} {part['covered']}/{part['total']}")
                lines += [f"    not covered: {label}" for label in part["missed"]]
    return "\n".join(lines) if lines else "no executions recorded"


def _html(coverage: CoverageFile) -> str:
    from .graph import DotNotFound, image
    from .mermaid import mermaid_source
    sections = []
    for name, entry in coverage.machines.items():
        machine, found, covered = items(entry)
        data = summary(entry)
        try:
            drawing = image(machine, "svg", covered, title=f"{name}: coverage").decode("utf-8")
        except DotNotFound:
            drawing = ('<pre class="mermaid">' + html.escape(mermaid_source(machine, covered, title=name)) +
                       "</pre>")
        rows = "".join(f'<tr class="{"hit" if i.hits else "miss"}"><td>{html.escape(i.kind)}</td>'
                       f"<td>{html.escape(i.label)}</td><td>{i.hits}</td></tr>" for i in found)
        sections.append(f"<section><h2>{html.escape(name)}: {data['percent']}% ({data['covered']}/{data['total']})"
                        f", {data['executions']} execution(s)</h2><div class=\"diagram\">{drawing}</div>"
                        f"<table><tr><th>kind</th><th>part</th><th>hits</th></tr>{rows}</table></section>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:2px 8px;"
             "border-bottom:1px solid #ddd;text-align:left}tr.miss td{color:#b3261e;font-weight:bold}"
             "tr.hit td{color:#188038}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>statemill coverage</title>"
            f"<style>{style}</style></head><body><h1>statemill coverage</h1>"
            f"<p>Untested states are dashed and untested transitions faint in the diagrams; red rows below.</p>"
            f"{''.join(sections) or '<p>no executions recorded</p>'}</body></html>")

