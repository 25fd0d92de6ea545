"""Diagrams of machines whose names, comments and Choice values are hostile: nothing in them can add a node, an edge,
a link or markup to the drawing, or stop it from rendering.

Every case is drawn by the real Graphviz ``dot`` to SVG and read back with ``xml.etree`` (so the SVG is also
well-formed XML), and drawn to Mermaid text checked statement by statement. Control characters cannot appear in SVG
at all: they are drawn as visible symbols (ESC as ␛, a newline as ␊) and the expectations below say so by hand.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from statemill.cli.render import render as render_command
from statemill.engine import TaskFailure
from statemill.visualizer import build, image, load_execution, mermaid_source
from statemill.visualizer.text import visible

pytestmark = pytest.mark.skipif(shutil.which("dot") is None,
                                reason="Graphviz `dot` is not installed (apt-get install graphviz)")

INJECTION = '<x> [URL="javascript:alert(1)" label=PWNED shape=star]; <y>'

# (name, what the drawing shows): the same text, except control characters, which are drawn as symbols.
HOSTILE = [
    (INJECTION, INJECTION),
    ("<b>html</b>", "<b>html</b>"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ('say "quotes"', 'say "quotes"'),
    ("\\N \\G \\L \\E \\T \\H \\l", "\\N \\G \\L \\E \\T \\H \\l"),
    ("ends in a backslash \\", "ends in a backslash \\"),
    ("Step 1: charge", "Step 1: charge"),
    ("a:b:c", "a:b:c"),
    ("a -> b", "a -> b"),
    ("x}; y [shape=star]; {z", "x}; y [shape=star]; {z"),
    ("]", "]"),
    ("&amp; &lt; &#60;", "&amp; &lt; &#60;"),
    ("#quot; #35; #lt;", "#quot; #35; #lt;"),
    ('%%{init: {"securityLevel": "loose"}}%%', '%%{init: {"securityLevel": "loose"}}%%'),
    ('end\nclick n1 href "javascript:alert(1)"', 'end␊click n1 href "javascript:alert(1)"'),
    ("two\nlines", "two␊lines"),
    ("tab\there", "tab␉here"),
    ("\x1b[31mred", "␛[31mred"),
    ("nul\x00 bell\x07 del\x7f", "nul␀ bell␇ del␡"),
    ("next line\x85", "next line\\u0085"),
    ("Zahlung ✓ 支払い 💳 Ω", "Zahlung ✓ 支払い 💳 Ω"),
    ("  spaced  out  ", "  spaced  out  "),
    ("node", "node"), ("graph", "graph"), ("edge", "edge"), ("subgraph", "subgraph"), ("strict", "strict"),
    ("digraph", "digraph"),
    ("__start__", "__start__"), ("__end__", "__end__"),
    ("a long name with: colons, -> arrows and <tags> past the wrap", "a long name with: colons, -> arrows and "
                                                                     "<tags> past the wrap"),
]
IDS = ["injection", "html", "script", "quotes", "dot-escapes", "trailing-backslash", "colon-port", "colons",
       "arrow", "braces-semicolons", "closing-bracket-alone", "html-entities", "mermaid-entities", "mermaid-directive", "mermaid-click-line",
       "newline", "tab", "escape", "nul-bell-del", "c1-control", "unicode", "spaces", "keyword-node",
       "keyword-graph", "keyword-edge", "keyword-subgraph", "keyword-strict", "keyword-digraph", "reserved-start",
       "reserved-end", "long-wrapped"]


def machine(name: str) -> dict:
    """Five states named after ``name``: a Pass commented with it, a Choice comparing with it, a Task caught into a
    Fail whose error and cause are it; the machine's Comment is it too."""
    decide, charge, failed = f"? {name}", f"! {name}", f"x {name}"
    return {"Comment": name, "StartAt": name, "States": {
        name: {"Type": "Pass", "Comment": name, "Next": decide},
        decide: {"Type": "Choice", "Choices": [{"Variable": "$.v", "StringEquals": name, "Next": charge}],
                 "Default": "done"},
        charge: {"Type": "Task", "Resource": "app:charge", "End": True,
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": failed}]},
        failed: {"Type": "Fail", "Error": name, "Cause": name},
        "done": {"Type": "Succeed"}}}


def test_the_hostile_machine_has_the_structure_the_drawings_are_checked_against():
    diagram = build(machine(INJECTION))
    assert Counter(node.kind for node in diagram.nodes.values()) == {
        "start": 1, "Pass": 1, "Choice": 1, "Task": 1, "Fail": 1, "Succeed": 1, "end": 1}
    assert sorted(edge.kind for edge in diagram.edges) == [
        "catch", "choice", "default", "end", "end", "end", "next", "start"]


# ------------------------------------------------------------------------------------------------ SVG, read back
SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"


def _text(element: ET.Element, bold_only: bool = False) -> str:
    """The text an element shows (Graphviz writes spaces in labels as no-break spaces)."""
    parts = [t.text or "" for t in element.iter(f"{SVG}text") if not bold_only or t.get("font-weight") == "bold"]
    return "".join(parts).replace("\xa0", " ")


class Drawing:
    """An SVG drawn by ``dot``: its nodes by their visible title, its edges as (tail title, head title)."""

    def __init__(self, svg: bytes):
        self.root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
        groups = list(self.root.iter(f"{SVG}g"))
        self.nodes = [g for g in groups if g.get("class") == "node"]
        titles = {g.find(f"{SVG}title").text: g for g in self.nodes}
        self.shown = {key: _text(g, bold_only=True) or _text(g) for key, g in titles.items()}
        self.titles = Counter(self.shown.values())
        self.edges = Counter(self._ends(g.find(f"{SVG}title").text) for g in groups if g.get("class") == "edge")

    def _ends(self, title: str) -> tuple[str, str]:
        """An edge's title is ``tail->head`` in node ids: split it where both sides are nodes of the drawing."""
        ends = [(title[:i], title[i + 2:]) for i in range(len(title)) if title.startswith("->", i)]
        found = [(self.shown[a], self.shown[b]) for a, b in ends if a in self.shown and b in self.shown]
        assert len(found) == 1, f"edge {title!r} does not join two nodes of the drawing"
        return found[0]

    def node(self, shown: str) -> ET.Element:
        [found] = [g for g in self.nodes if (_text(g, bold_only=True) or _text(g)) == shown]
        return found

    def links(self) -> list[str]:
        """Every link target in the SVG (a DOT ``URL``/``href`` attribute would put one there)."""
        return [value for element in self.root.iter() for key, value in element.attrib.items()
                if key.endswith("href")]

    def tooltip(self, element: ET.Element) -> str | None:
        title = next((a.get(XLINK_TITLE) for a in element.iter(f"{SVG}a")), None)
        return title.replace("\xa0", " ") if title is not None else None


def expected_edges(definition: dict, shown: dict[str, str]) -> Counter:
    """The diagram's edges as (tail, head) in visible titles: markers are "Start" and "End"."""
    diagram = build(definition)
    titles = {node_id: "Start" if node.kind == "start" else "End" if node.kind == "end" else shown[node.title]
              for node_id, node in diagram.nodes.items()}
    return Counter((titles[e.tail], titles[e.head]) for e in diagram.edges)


def shown_names(name: str, shown: str) -> dict[str, str]:
    return {name: shown, f"? {name}": f"? {shown}", f"! {name}": f"! {shown}", f"x {name}": f"x {shown}",
            "done": "done"}


@pytest.mark.parametrize("name,shown", HOSTILE, ids=IDS)
def test_a_hostile_name_is_drawn_as_text_and_adds_nothing(name, shown):
    definition = machine(name)
    drawing = Drawing(image(definition, "svg"))
    names = shown_names(name, shown)
    assert drawing.titles == Counter(["Start", "End", *names.values()])  # one node per state, no phantom node
    assert drawing.edges == expected_edges(definition, names)  # no extra edge, none to a phantom node
    assert drawing.links() == []  # no javascript: (nor any) link
    comment = shown.replace("␊", "\n")  # a tooltip keeps a comment's line breaks
    assert drawing.tooltip(drawing.node(shown)) == comment  # the Pass state's Comment
    assert drawing.tooltip(drawing.root) == comment  # the machine's Comment
    fail_facts = _text(drawing.node(f"x {shown}")).replace(f"x {shown}", "", 1)
    assert fail_facts.startswith("Fail · ")


@pytest.mark.parametrize("name,shown", HOSTILE, ids=IDS)
def test_a_hostile_choice_value_is_text_on_its_edge_and_in_its_tooltip(name, shown):
    definition = machine(name)
    [rule] = [e.tooltip for e in build(definition).edges if e.kind == "choice"]
    assert rule.startswith(f"$.v == {json.dumps(name, ensure_ascii=False)[:20]}")  # the engine's words for it
    drawing = Drawing(image(definition, "svg"))
    [choice] = [g for g in drawing.root.iter(f"{SVG}g") if g.get("class") == "edge"
                and drawing.tooltip(g) == visible(rule)]
    label = _text(choice)
    assert label.startswith("$.v == ") and len(label) > len("$.v == ")
    assert not re.search("[\x00-\x1f\x7f-\x9f]", label)


@pytest.mark.parametrize("name", [INJECTION, "<b>html</b>", "two\nlines"], ids=["injection", "html", "newline"])
def test_a_hostile_branch_comment_and_parallel_name_stay_text(name):
    definition = {"StartAt": name, "States": {name: {"Type": "Parallel", "End": True, "Comment": name, "Branches": [
        {"Comment": name, "StartAt": f"in {name}", "States": {f"in {name}": {"Type": "Pass", "End": True}}},
        {"StartAt": f"{name}__join", "States": {f"{name}__join": {"Type": "Succeed"}}}]}}}
    drawing = Drawing(image(definition, "svg"))
    shown = visible(name)
    assert drawing.titles == Counter(["Start", "End", shown, f"in {shown}", f"{shown}__join", ""])  # "": the join
    clusters = [_text(g) for g in drawing.root.iter(f"{SVG}g") if g.get("class") == "cluster"]
    branches = [c.label for c in build(definition).clusters() if c.kind == "branch"]
    assert branches[0].startswith(f"Branch 1: {name[:20]}")
    assert clusters == ["", visible(branches[0].replace("\n", "")), "Branch 2"]  # a newline breaks the line
    assert drawing.links() == []


# ------------------------------------------------------------------------------------------------ Mermaid
_STATEMENTS = [
    r'flowchart TD', r'---', r'title: "([^"\\\n]|\\[^\n])*"',
    r'n\d+(\(\(\(|\(\(|\(\[|\[\[|\{\{|\(|\[|\{|>)"[^"]*"(\)\)\)|\)\)|\]\)|\]\]|\}\}|\)|\]|\})',
    r'n\d+ (-->|-\.->)(\|"[^"]*"\|)? n\d+',
    r'subgraph c\d+ \["[^"]*"\]', r'end', r'style c\d+ [\w:#,\- ]+',
    r'classDef st_\w+ [\w:#,\- ]+', r'class [n\d,]+ st_\w+', r'linkStyle [\d,]+ [\w:#,\-]+',
]
_ALLOWED_TAGS = re.compile(r"</?b>|<br/>|</?i>")


def _decoded(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), _ALLOWED_TAGS.sub("", label))


@pytest.mark.parametrize("name,shown", HOSTILE, ids=IDS)
def test_a_hostile_name_cannot_add_a_mermaid_statement(name, shown):
    definition = machine(name)
    text = mermaid_source(definition, title=name)
    lines = text.splitlines()
    assert (lines[0], lines[2], lines[3]) == ("---", "---", "flowchart TD")
    assert yaml.safe_load(lines[1]) == {"title": visible(name)}  # the title: one YAML line, no "%"
    for line in lines:
        assert any(re.fullmatch(pattern, line.strip()) for pattern in _STATEMENTS), line
    diagram = build(definition)
    assert sum(bool(re.match(r"\s*n\d+[(\[{>]", line)) for line in lines) == len(diagram.nodes)
    assert sum(bool(re.match(r"\s*n\d+ (-->|-\.->)", line)) for line in lines) == len(diagram.edges)
    assert "%%" not in text and "`" not in text
    labels = re.findall(r'"([^"]*)"', "\n".join(lines[4:]))  # the title above is YAML, shown as text
    for label in labels:
        assert not re.search(r'[<>{}\[\]|%`\x00-\x1f\x7f-\x9f]', _ALLOWED_TAGS.sub("", label)), label
    titles = [_decoded(m) for m in re.findall(r'"<b>(.*?)</b>', "\n".join(lines[4:]))]
    assert sorted(titles) == sorted(shown_names(name, shown).values())


# ------------------------------------------------------------------------------------------------ any name
_NAME = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
_EXAMPLES = settings.default.max_examples if os.environ.get("STATEMILL_HYPOTHESIS_PROFILE") == "long" else 25


@pytest.mark.property
@settings(max_examples=_EXAMPLES)
@given(st.lists(_NAME, min_size=3, max_size=3, unique=True))
def test_any_state_names_render_one_node_each_titled_with_the_name(names):
    first, second, third = names
    definition = {"StartAt": first, "States": {
        first: {"Type": "Choice", "Choices": [{"Variable": "$.v", "StringEquals": third, "Next": second}],
                "Default": third},
        second: {"Type": "Pass", "Comment": first, "Next": third},
        third: {"Type": "Succeed"}}}
    drawing = Drawing(image(definition, "svg"))
    shown = {name: visible(name).replace("\xa0", " ") for name in names}
    assert drawing.titles == Counter(["Start", "End", *shown.values()])
    assert drawing.edges == expected_edges(definition, shown)
    assert drawing.links() == []


# ------------------------------------------------------------------------------------------------ executions
def test_the_overlay_of_a_real_execution_with_hostile_names(engine):
    name = INJECTION
    definition = machine(name)
    error, cause = "<img src=x onerror=alert(1)>", "line one\nline \x1b[2Jtwo: \\N \"quoted\""

    @engine.handler("app:charge")
    def charge(value):
        raise TaskFailure(error, cause)

    done = engine.run(definition, {"v": name, "n": 0, "ok": False, "s": "", "x": None}, machine_name="hostile",
                      name="run-1")
    assert done["status"] == "FAILED" and done["error"] == name
    drawn, overlay = load_execution(engine, done["executionArn"])
    assert overlay.states[f"! {name}"].status == "caught" and overlay.states[f"x {name}"].status == "failed"

    drawing = Drawing(image(drawn, "svg", overlay))
    names = shown_names(name, name)
    assert drawing.titles == Counter(["Start", "End", *names.values()])
    assert drawing.edges == expected_edges(drawn, names)
    assert drawing.links() == []
    task = drawing.node(f"! {name}")
    assert f"caught: {error}" in _text(task)
    assert drawing.tooltip(task) == f"! {name} (Task)\n{error}: line one\nline ␛[2Jtwo: \\N \"quoted\""
    heading = [g for g in drawing.root.iter(f"{SVG}g") if g.get("class") == "graph"][0]
    assert _text(heading).startswith(f"hostile / run-1  FAILED{name}: <x>")  # its error and cause, clipped

    text = mermaid_source(drawn, overlay)
    for line in text.splitlines():
        assert any(re.fullmatch(pattern, line.strip()) for pattern in _STATEMENTS), line
    assert f"caught: {error}" in [_decoded(label) for label in re.findall(r"<i>(.*?)</i>", text)]


def test_the_command_renders_a_definition_with_control_characters(tmp_path):
    source = tmp_path / "machine.json"
    source.write_text(json.dumps(machine("bell\x07 escape\x1b[0m")), encoding="utf-8")
    out = tmp_path / "machine.svg"
    result = CliRunner().invoke(render_command, [str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "bell␇ escape␛[0m" in Drawing(out.read_bytes()).titles
