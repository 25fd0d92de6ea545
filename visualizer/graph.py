"""Graphviz drawing of a diagram, with or without an execution overlay, and rendering it to a file.

Nodes get synthetic ids (``n0``, ``n1``...), so no state name is ever a DOT identifier (a keyword, a ``node:port``,
an HTML string). Labels are Graphviz HTML-like labels (a bold name over small grey facts); every user string in
them, in tooltips and in cluster labels goes through ``text``. Comments become tooltips, shown on hover in SVG.
"""
from __future__ import annotations

import textwrap
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import graphviz

from statemill.engine import model as m

from . import mermaid as mm
from . import overlay as o
from . import style as s
from .diagram import Cluster, Diagram, Edge, Node, build
from .text import dot_label, dot_tooltip, html_text, visible

IMAGE_FORMATS = ("svg", "png", "pdf")
FORMATS = IMAGE_FORMATS + ("dot", "mermaid")
SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
            ".mermaid": "mermaid"}
INSTALL_HINT = ("Install Graphviz: `apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` (macOS), "
                "`dnf install graphviz` (Fedora) or see https://graphviz.org/download/. DOT output (-o FILE.dot) "
                "and Mermaid output (--format mermaid) work without it.")

Source = Diagram | m.StateMachine | str | PathLike | Mapping[str, Any]


class DotNotFound(RuntimeError):
    """Drawing an image needs Graphviz's ``dot`` program and it is not installed (or not on PATH)."""

    def __init__(self, fmt: str):
        super().__init__(f"drawing {fmt.upper()} needs the Graphviz `dot` program, which is not installed or not "
                         f"on PATH. {INSTALL_HINT}")


def as_diagram(source: Source) -> Diagram:
    return source if isinstance(source, Diagram) else build(source)


def digraph(source: Source, overlay: o.Overlay | None = None, *, title: str | None = None) -> graphviz.Digraph:
    """The ``graphviz.Digraph`` of a machine (a Diagram, a compiled machine, a file path or a dict)."""
    diagram = as_diagram(source)
    graph = graphviz.Digraph(
        "statemachine",
        graph_attr={"rankdir": "TB", "newrank": "true", "nodesep": "0.35", "ranksep": "0.42", "fontname": s.FONT,
                    "fontsize": "11", "pad": "0.25", "bgcolor": "white",
                    "tooltip": dot_tooltip(diagram.machine.comment or " ")},
        node_attr={"fontname": s.FONT, "fontsize": "11", "margin": "0.14,0.06", "penwidth": "1.3"},
        edge_attr={"fontname": s.FONT, "fontsize": "9", "arrowsize": "0.7", "color": s.GREY, "fontcolor": s.GREY},
    )
    heading = _heading(overlay, title)
    if heading:
        graph.attr(label=heading, labelloc="t", labeljust="l")
    ids = diagram.short_ids()
    _fill(graph, diagram, ids, diagram.top, overlay, 0)
    for edge in diagram.edges:
        attrs = _edge_attrs(edge, overlay)
        if diagram.nodes[edge.tail].kind == "Fail":  # a Fail state ends its scope, in failure
            attrs.setdefault("style", "dotted")
            if overlay is None:
                attrs["color"] = s.EDGE["catch"]
        graph.edge(ids[edge.tail], ids[edge.head], **attrs)
    return graph


def dot_source(source: Source, overlay: o.Overlay | None = None, *, title: str | None = None) -> str:
    """The DOT text of the drawing (no Graphviz program needed)."""
    return digraph(source, overlay, title=title).source


def render(source: Source, output: str | PathLike, *, format: str | None = None, overlay: o.Overlay | None = None,
           title: str | None = None) -> Path:
    """Write the drawing to ``output``; the format comes from its suffix unless ``format`` is given.

    svg, png and pdf need Graphviz's ``dot`` (DotNotFound otherwise); dot and mermaid are plain text.
    """
    path = Path(output)
    fmt = format_for(path, format)
    if fmt == "mermaid":
        path.write_text(mm.mermaid_source(as_diagram(source), overlay, title=title), encoding="utf-8")
    elif fmt == "dot":
        path.write_text(dot_source(source, overlay, title=title), encoding="utf-8")
    else:
        path.write_bytes(image(source, fmt, overlay, title=title))
    return path


def image(source: Source, fmt: str = "svg", overlay: o.Overlay | None = None, *, title: str | None = None) -> bytes:
    """The drawing rendered by ``dot`` as svg, png or pdf bytes."""
    try:
        return digraph(source, overlay, title=title).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DotNotFound(fmt) from None


def format_for(path: Path | None, format: str | None) -> str:
    """The output format: ``format`` if given, else from the file's suffix; ValueError when it is neither."""
    fmt = (format or "").lower() or SUFFIXES.get(path.suffix.lower() if path else "", "")
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        shown = f"format {format!r}" if format else f"suffix {path.suffix!r}" if path and path.suffix else "no suffix"
        raise ValueError(f"cannot tell the output format from {shown}: use one of {', '.join(FORMATS)} "
                         "(--format, or a file ending .svg .png .pdf .dot .mmd)")
    return fmt


# ------------------------------------------------------------------------------------------------ nodes
def _fill(graph: graphviz.Digraph, diagram: Diagram, ids: dict[str, str], cluster: Cluster,
          overlay: o.Overlay | None, depth: int) -> None:
    """Declare a cluster's nodes, then its inner clusters, inside ``graph`` (a subgraph for clusters)."""
    for node_id in cluster.nodes:
        node = diagram.nodes[node_id]
        graph.node(ids[node_id], **_node_attrs(node, overlay))
    for inner in cluster.clusters:
        with graph.subgraph(name=inner.id) as sub:
            sub.attr(**_cluster_attrs(inner, overlay, depth))
            _fill(sub, diagram, ids, inner, overlay, depth + (inner.kind in ("parallel", "map")))


def _node_attrs(node: Node, overlay: o.Overlay | None) -> dict[str, str]:
    shape, style = s.SHAPES.get(node.kind, s.SHAPES["Pass"])
    status = overlay.status_of(node.state) if overlay is not None and node.state else None
    look = s.node_look(node.kind, status)
    attrs = {"shape": shape, "style": style, "fillcolor": look.fill, "color": look.line, "fontcolor": look.text,
             "tooltip": dot_tooltip(node.tooltip)}
    if node.kind in ("start", "end"):
        attrs.update(label=node.title, fontsize="10", width="0.6", height="0.3", margin="0.06,0.02")
        return attrs
    if node.kind == "join":
        attrs.update(label="", height="0.07", width="1.1", fixedsize="true", penwidth="0", fillcolor=look.line)
        return attrs
    notes: list[str] = []
    if overlay is not None:
        run = overlay.states.get(node.state or "")
        notes = s.status_lines(run)
        if run is not None and (run.error or run.cause):
            attrs["tooltip"] = dot_tooltip(f"{node.tooltip}\n{run.error or ''}: {run.cause or ''}")
        if status in (o.RUNNING, o.WAITING_TIMER, o.WAITING_TOKEN):
            attrs["penwidth"] = "2.8"
        elif status == o.NOT_REACHED:
            attrs["style"] += ",dashed"
        if run is not None and run.redriven:  # failed before a redrive: a second outline in the redriven colour
            attrs.update(peripheries="2", color=s.REDRIVEN.line, penwidth="1.8")
    attrs["label"] = _label(node, notes)
    return attrs


def _label(node: Node, notes: list[str]) -> str:
    title = "<br/>".join(html_text(line) for line in _wrap(visible(node.title), 30))
    parts = [f"<b>{title}</b>"]
    parts += [f'<font point-size="9" color="{s.MUTED}">{html_text(line)}</font>' for line in node.lines]
    parts += [f'<font point-size="9"><i>{html_text(line)}</i></font>' for line in notes]
    return "<" + "<br/>".join(parts) + ">"


def _cluster_attrs(cluster: Cluster, overlay: o.Overlay | None, depth: int) -> dict[str, str]:
    attrs = {"tooltip": dot_tooltip(cluster.tooltip or cluster.label or (cluster.state or "")),
             "fontname": s.FONT, "fontsize": "9", "fontcolor": s.GREY, "labeljust": "l", "margin": "10"}
    if cluster.kind in ("parallel", "map"):
        line = s.TYPES[cluster.kind.capitalize()].line
        if overlay is not None:
            line = s.STATUS[overlay.status_of(cluster.state or "")].line
        attrs.update(label="", style="rounded,filled", fillcolor=s.CONTAINER_BG[depth % 2], color=line,
                     penwidth="1.4")
    else:
        attrs.update(label=dot_label(cluster.label), style="rounded,dashed,filled", fillcolor="white",
                     color=s.BRANCH_LINE, penwidth="1")
    return attrs


# ------------------------------------------------------------------------------------------------ edges
def _edge_attrs(edge: Edge, overlay: o.Overlay | None) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if edge.label:
        text = "<br/>".join(html_text(line) for line in edge.label.split("\n"))
        attrs["label"] = f"<<i>{text}</i>>" if edge.kind == "default" else f"<{text}>"
    if edge.tooltip:
        attrs["tooltip"] = attrs["labeltooltip"] = dot_tooltip(edge.tooltip)
    if edge.kind == "catch":
        attrs.update(style="dashed", color=s.EDGE["catch"], fontcolor=s.EDGE["catch"])
    elif edge.kind == "fork":  # heavy, so each branch starts right under its Parallel/Map
        attrs.update(color=s.BRANCH_LINE, arrowsize="0.55", weight="4")
    elif edge.kind == "join":
        attrs.update(color=s.BRANCH_LINE, arrowsize="0.55")
    elif edge.kind in ("start", "end"):
        attrs.update(color="#3c4043")
    if overlay is not None:
        if overlay.took(edge):
            colour = s.EDGE["catch"] if edge.kind == "catch" else s.TAKEN
            attrs.update(penwidth=s.TAKEN_WIDTH, color=colour, fontcolor=colour)
        else:
            attrs.update(color=s.FAINT, fontcolor="#9aa0a6")
    return attrs


# ------------------------------------------------------------------------------------------------ heading
def _heading(overlay: o.Overlay | None, title: str | None) -> str | None:
    """The title line and, with an overlay, the execution's status and a colour legend."""
    title = title or (overlay.title if overlay is not None else None)
    if overlay is None:
        return f"<<b>{html_text(title)}</b>>" if title else None
    redrives = f", redriven {overlay.redrives}×" if overlay.redrives else ""
    rows = [f"<b>{html_text(title or 'execution')}</b>  {html_text(overlay.status + redrives)}"]
    if overlay.error or overlay.cause:
        problem = " ".join(f"{overlay.error or ''}: {overlay.cause or ''}".split())  # a traceback in a line
        rows.append(html_text(s._clip(problem, 100)))
    present = {run.status for run in overlay.states.values()} | {o.NOT_REACHED}
    cells = "".join(f'<td bgcolor="{s.STATUS[k].fill}" color="{s.STATUS[k].line}" border="1" cellpadding="3">'
                    f'<font point-size="9">{html_text(o.LABELS[k])}</font></td>' for k in (*o.PRIORITY, o.NOT_REACHED)
                    if k in present)
    if any(run.redriven for run in overlay.states.values()):
        cells += (f'<td bgcolor="{s.REDRIVEN.fill}" color="{s.REDRIVEN.line}" border="2" cellpadding="3">'
                  f'<font point-size="9">{html_text(o.LABELS[o.REDRIVEN])}</font></td>')
    legend = f'<table border="0" cellspacing="3" cellpadding="0"><tr>{cells}</tr></table>'
    text = "".join(f'<tr><td align="left">{row}</td></tr>' for row in rows)
    return f'<<table border="0" cellspacing="2">{text}<tr><td align="left">{legend}</td></tr></table>>'


def _wrap(title: str, width: int) -> list[str]:
    """A state name in lines of about ``width``, broken at spaces and nothing lost: the lines joined give it back."""
    return textwrap.wrap(title, width, break_on_hyphens=False, drop_whitespace=False) or [""]
