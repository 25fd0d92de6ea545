"""Mermaid flowchart text of a diagram (renders in a GitHub README), with the same shapes, colours and overlay.

Mermaid ids are generated (``n0``, ``c1``...) so no state name can break the syntax; every user string in a label is
quoted and written through ``text.mermaid_text`` (visible control characters, Mermaid's entity codes for markup).
"""
from __future__ import annotations

from typing import Any

from . import overlay as o
from . import style as s
from .diagram import Cluster, Diagram, Edge, Node, build
from .text import mermaid_text, visible

# Mermaid node shape brackets per kind.
_SHAPES = {
    "Task": ("(", ")"), "Pass": ("[", "]"), "Choice": ("{", "}"), "Wait": ("{{", "}}"), "Succeed": ("([", "])"),
    "Fail": (">", "]"), "Parallel": ("[[", "]]"), "Map": ("[[", "]]"), "start": ("((", "))"),
    "end": ("(((", ")))"), "join": ("((", "))"),
}
_ARROWS = {"catch": "-.->"}


def mermaid_source(source: Any, overlay: o.Overlay | None = None, *, title: str | None = None) -> str:
    """Mermaid ``flowchart`` text of a machine (a Diagram, a compiled machine, a file path or a dict)."""
    return _Writer(source if isinstance(source, Diagram) else build(source), overlay).text(title)


class _Writer:
    def __init__(self, diagram: Diagram, overlay: o.Overlay | None):
        self.diagram = diagram
        self.overlay = overlay
        self.ids = diagram.short_ids()
        self.lines: list[str] = []
        self.classes: dict[str, list[str]] = {}

    def text(self, title: str | None) -> str:
        title = title or (self.overlay.title if self.overlay else None)
        head = ["---", f"title: {_yaml(title + (f' ({self.overlay.status})' if self.overlay else ''))}", "---"] \
            if title else []
        self.lines = head + ["flowchart TD"]
        self.cluster(self.diagram.top, 1)
        taken, faint = [], []
        for index, edge in enumerate(self.diagram.edges):
            self.lines.append("  " + self.edge(edge))
            if self.overlay is not None:
                (taken if self.overlay.took(edge) else faint).append(str(index))
        for name, members in self.classes.items():
            look = self.look(name)
            dash = ",stroke-dasharray:4 3" if name == o.NOT_REACHED else ""
            self.lines.append(f"  classDef {_class(name)} fill:{look.fill},stroke:{look.line},color:{look.text}{dash}")
            self.lines.append(f"  class {','.join(members)} {_class(name)}")
        catch = [str(i) for i, e in enumerate(self.diagram.edges) if e.kind == "catch"]
        if catch and self.overlay is None:
            self.lines.append(f"  linkStyle {','.join(catch)} stroke:{s.EDGE['catch']},color:{s.EDGE['catch']}")
        if taken:
            self.lines.append(f"  linkStyle {','.join(taken)} stroke:{s.TAKEN},stroke-width:3px")
        if faint:
            self.lines.append(f"  linkStyle {','.join(faint)} stroke:{s.FAINT}")
        return "\n".join(self.lines) + "\n"

    def look(self, name: str) -> s.Look:
        return s.STATUS[name] if name in s.STATUS else s.TYPES[name]

    def cluster(self, cluster: Cluster, depth: int) -> None:
        pad = "  " * depth
        for node_id in cluster.nodes:
            node = self.diagram.nodes[node_id]
            self.lines.append(pad + self.node(node))
        for inner in cluster.clusters:
            label = inner.label or " "
            self.lines.append(f'{pad}subgraph {inner.id.replace("cluster_", "c")} ["{mermaid_text(label)}"]')
            self.cluster(inner, depth + 1)
            self.lines.append(pad + "end")
            if inner.kind in ("parallel", "map"):
                line = s.TYPES["Map"].line
                if self.overlay is not None:
                    line = s.STATUS[self.overlay.status_of(inner.state or "")].line
                self.lines.append(f"{pad}style {inner.id.replace('cluster_', 'c')} fill:"
                                  f"{s.CONTAINER_BG[depth % 2]},stroke:{line}")
            else:
                self.lines.append(f"{pad}style {inner.id.replace('cluster_', 'c')} fill:#ffffff,stroke:"
                                  f"{s.BRANCH_LINE},stroke-dasharray:4 3")

    def node(self, node: Node) -> str:
        left, right = _SHAPES.get(node.kind, _SHAPES["Pass"])
        if node.kind in ("start", "end"):
            text = node.title
        elif node.kind == "join":
            text = "join"
        else:
            text = f"<b>{mermaid_text(node.title)}</b>" + "".join(f"<br/>{mermaid_text(line)}" for line in node.lines)
        status = None
        if self.overlay is not None and node.kind not in ("start", "end"):
            status = self.overlay.status_of(node.state or "")
            if node.kind != "join":
                text += "".join(f"<br/><i>{mermaid_text(line)}</i>" for line in s.status_lines(
                    self.overlay.states.get(node.state or "")))
        self.classes.setdefault(status or node.kind, []).append(self.ids[node.id])
        return f'{self.ids[node.id]}{left}"{text}"{right}'

    def edge(self, edge: Edge) -> str:
        arrow = _ARROWS.get(edge.kind, "-->")
        label = "<br/>".join(mermaid_text(line) for line in edge.label.split("\n")) if edge.label else ""
        if edge.kind == "default":
            label = f"<i>{label}</i>"
        middle = f'{arrow}|"{label}"|' if label else arrow
        return f"{self.ids[edge.tail]} {middle} {self.ids[edge.head]}"


def _class(name: str) -> str:
    return "st_" + name.replace("-", "_").lower()


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar on one line (a newline could close Mermaid's front matter early) with no ``%``
    (``%%`` starts a Mermaid directive wherever it is)."""
    return '"' + visible(text).replace("\\", "\\\\").replace('"', '\\"').replace("%", "\\x25") + '"'
