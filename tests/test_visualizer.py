"""The visualizer: what a diagram shows for a definition, and how a real execution's history colours it.

Structure is checked on the diagram model, on the DOT text (parsed back here) and on the Mermaid text; images are
rendered by Graphviz's ``dot`` when it is installed (those tests skip, saying so, when it is not). Overlays come
from executions the engine really ran: succeeded, failed, caught, a Map with a failing item, and runs stopped while
running a task, waiting on a timer, on retry backoff or on a task token.
"""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from statemill.cli.render import render as render_command
from statemill.engine import Engine, TaskFailure, loader
from statemill.engine.client import Client
from statemill.visualizer import (DotNotFound, build, digraph, dot_source, format_for, from_history, image,
                                  load_execution, mermaid_source, render)
from statemill.visualizer import overlay as ov
from statemill.visualizer import style

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` is not installed (apt-get install graphviz): images not rendered")


# ------------------------------------------------------------------------------------------------ definitions
def task(resource: str, nxt: str | None = None, **fields) -> dict:
    state = {"Type": "Task", "Resource": resource, **fields}
    state.update({"Next": nxt} if nxt else {"End": True})
    return state


ORDER = {
    "Comment": "Takes an order from validation to shipping",
    "StartAt": "Validate",
    "States": {
        "Validate": task("app:validate", "Route", Comment="Checks amount and address",
                         Retry=[{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 3, "IntervalSeconds": 1,
                                 "BackoffRate": 2}],
                         Catch=[{"ErrorEquals": ["ValidationError", "States.Timeout"], "Next": "Reject"}]),
        "Route": {"Type": "Choice", "Choices": [
            {"Variable": "$.amount", "NumericGreaterThan": 100, "Next": "Approve"},
            {"And": [{"Variable": "$.status", "StringEquals": "paid"}, {"Variable": "$.retry", "IsPresent": True}],
             "Next": "Ship"}],
            "Default": "Hold"},
        "Hold": {"Type": "Wait", "Seconds": 0, "Next": "Ship"},
        "Approve": task("app:approve.waitForTaskToken", "Ship", HeartbeatSeconds=600),
        "Ship": {"Type": "Parallel", "Next": "Done", "ResultPath": None,
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Reject"}],
                 "Branches": [
                     {"StartAt": "Label", "States": {"Label": task("app:label")}},
                     {"StartAt": "Items", "States": {"Items": {
                         "Type": "Map", "ItemsPath": "$.items", "End": True, "ResultPath": None,
                         "ItemProcessor": {"StartAt": "Pick", "States": {
                             "Pick": task("app:pick", "Pack"),
                             "Pack": {"Type": "Pass", "End": True}}}}}}]},
        "Done": {"Type": "Succeed"},
        "Reject": {"Type": "Fail", "Error": "OrderRejected", "Cause": "validation or shipping failed"},
    },
}

NESTED = {  # a Parallel inside a Map inside a Parallel
    "StartAt": "Outer",
    "States": {
        "Outer": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "Regions", "States": {"Regions": {
                "Type": "Map", "ItemsPath": "$.regions", "End": True,
                "ItemProcessor": {"StartAt": "Checks", "States": {"Checks": {
                    "Type": "Parallel", "End": True, "Branches": [
                        {"StartAt": "Ping", "States": {"Ping": task("app:ping")}},
                        {"StartAt": "Measure", "States": {"Measure": task("app:measure")}}]}}}}}},
            {"StartAt": "Audit", "States": {"Audit": task("app:audit")}}]},
    },
}


def all_types() -> dict:
    return {"StartAt": "T", "States": {
        "T": task("app:t", "P"), "P": {"Type": "Pass", "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 0, "Next": "W"}], "Default": "F"},
        "W": {"Type": "Wait", "Seconds": 0, "Next": "S"}, "S": {"Type": "Succeed"},
        "F": {"Type": "Fail", "Error": "Nope"}}}


# ------------------------------------------------------------------------------------------------ DOT, read back
_ID = r'"(?:[^"\\]|\\.)*"|[^\s\[\]{}"]+'
_NODE = re.compile(rf"^\s*({_ID})\s+\[(.*)\]\s*$")
_EDGE = re.compile(rf"^\s*({_ID})\s+->\s+({_ID})(?:\s+\[(.*)\])?\s*$")


def _unquote(text: str) -> str:
    return text[1:-1].replace('\\"', '"') if text.startswith('"') else text


def _attrs(text: str) -> dict[str, str]:
    """key=value pairs of a DOT attribute list: quoted strings, HTML-like <...> labels or bare words."""
    out, i = {}, 0
    while i < len(text):
        found = re.compile(r"\s*([A-Za-z_]+)=").match(text, i)
        if not found:
            break
        key, i = found.group(1), found.end()
        if text[i] == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out[key], i = text[i + 1:j], j + 1
        elif text[i] == "<":
            depth, j = 0, i
            while True:
                depth += {"<": 1, ">": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            out[key], i = text[i:j], j
        else:
            word = re.compile(r"[^\s\]]+").match(text, i)
            out[key], i = word.group(), word.end()
    return out


def _names(of) -> dict[str, str]:
    """Diagram node ids (state names, __start__, X__join...) by the short ids the drawing gives them."""
    return {short: name for name, short in build(of).short_ids().items()}


def dot_nodes(source: str, of) -> dict[str, dict[str, str]]:
    """The node attributes of DOT text drawn for the machine ``of``, by diagram node id."""
    names, nodes = _names(of), {}
    for line in source.splitlines():
        if "->" in line or line.strip().startswith(("graph ", "node ", "edge ")):
            continue
        found = _NODE.match(line)
        if found:
            nodes[names[_unquote(found.group(1))]] = _attrs(found.group(2))
    return nodes


def dot_edges(source: str, of) -> list[tuple[str, str, dict[str, str]]]:
    """The edges of DOT text drawn for the machine ``of``: (tail, head, attributes) by diagram node id."""
    names, edges = _names(of), []
    for line in source.splitlines():
        found = _EDGE.match(line)
        if found:
            edges.append((names[_unquote(found.group(1))], names[_unquote(found.group(2))],
                          _attrs(found.group(3) or "")))
    return edges


def plain(label: str) -> str:
    """The text of an HTML-like label, tags dropped and entities decoded."""
    import html
    return html.unescape(re.sub(r"<br/>", "\n", re.sub(r"<(?!br/)[^>]*>", "", label[1:-1])))


# ------------------------------------------------------------------------------------------------ the drawing
def test_start_and_end_markers_frame_the_machine():
    diagram = build(all_types())
    edges = {(e.tail, e.head, e.kind) for e in diagram.edges}
    assert diagram.nodes["__start__"].kind == "start" and diagram.nodes["__end__"].kind == "end"
    assert ("__start__", "T", "start") in edges
    assert {("S", "__end__", "end"), ("F", "__end__", "end")} <= edges
    nodes = dot_nodes(dot_source(all_types()), all_types())
    assert nodes["__start__"]["label"] == "Start" and nodes["__end__"]["label"] == "End"


@pytest.mark.parametrize("state,shape,style_word", [
    ("T", "box", "rounded"), ("P", "box", "filled"), ("C", "diamond", "filled"), ("W", "hexagon", "filled"),
    ("S", "oval", "filled"), ("F", "octagon", "filled"),
], ids=["task-rounded-box", "pass-box", "choice-decision-diamond", "wait-hexagon", "succeed-oval", "fail-octagon"])
def test_each_state_type_has_its_own_shape(state, shape, style_word):
    node = dot_nodes(dot_source(all_types()), all_types())[state]
    assert node["shape"] == shape and style_word in node["style"]
    kind = loader.load(all_types()).index[state].type
    assert node["color"] == style.TYPES[kind].line


def test_state_types_are_told_apart_by_shape_and_colour():
    nodes = dot_nodes(dot_source(all_types()), all_types())
    looks = {(nodes[n]["shape"], nodes[n]["style"], nodes[n]["fillcolor"]) for n in "TPCWSF"}
    assert len(looks) == 6


@pytest.mark.parametrize("rule,text", [
    ({"Variable": "$.amount", "NumericGreaterThan": 100}, "$.amount > 100"),
    ({"And": [{"Variable": "$.status", "StringEquals": "paid"}, {"Variable": "$.retry", "IsPresent": True}]},
     '$.status == "paid" and $.retry is present'),
    ({"Variable": "$.n", "NumericEquals": 0}, "$.n == 0"),
    ({"Variable": "$.flag", "BooleanEquals": False}, "$.flag == false"),
    ({"Variable": "$.s", "StringEquals": ""}, '$.s == ""'),
    ({"Variable": "$.x", "IsNull": True}, "$.x is null"),
], ids=["numeric", "and-with-is-present", "zero", "false", "empty-string", "null"])
def test_choice_edges_carry_the_rule_in_plain_words(rule, text):
    definition = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Succeed"}, "No": {"Type": "Succeed"}}}
    assert loader.load(definition).index["C"].choices[0].rule.describe() == text
    [edge] = [e for e in build(definition).edges if e.kind == "choice"]
    assert edge.label.replace("\n", " ") == text and edge.tooltip == text
    [(_, _, attrs)] = [e for e in dot_edges(dot_source(definition), definition) if e[1] == "Yes"]
    assert plain(attrs["label"]).replace("\n", " ") == text


def test_default_edge_is_marked():
    edges = dot_edges(dot_source(ORDER), ORDER)
    [(tail, head, attrs)] = [e for e in edges if e[1] == "Hold"]
    assert (tail, plain(attrs["label"])) == ("Route", "Default")
    assert "<i>" in attrs["label"]
    assert [e.kind for e in build(ORDER).edges_from("Route")] == ["choice", "choice", "default"]


def test_catch_edges_are_dashed_and_name_their_errors():
    edges = dot_edges(dot_source(ORDER), ORDER)
    catch = [(t, h, a) for t, h, a in edges if a.get("style") == "dashed"]
    assert {(t, h) for t, h, _ in catch} == {("Validate", "Reject"), ("Ship__join", "Reject")}
    labels = {t: plain(a["label"]) for t, _, a in catch}
    assert labels == {"Validate": "catch ValidationError, States.Timeout", "Ship__join": "catch States.ALL"}
    assert all(a["color"] == style.EDGE["catch"] for _, _, a in catch)


def test_retry_is_noted_on_the_state():
    label = plain(dot_nodes(dot_source(ORDER), ORDER)["Validate"]["label"])
    assert "retry States.TaskFailed ×3 · 1 s, backoff ×2" in label.split("\n")


@pytest.mark.parametrize("retrier,text", [
    ({"ErrorEquals": ["States.ALL"]}, "retry States.ALL ×3 · 1 s, backoff ×2"),
    ({"ErrorEquals": ["A", "B"], "MaxAttempts": 0}, "no retry on A, B"),
    ({"ErrorEquals": ["X"], "MaxAttempts": 1, "IntervalSeconds": 5}, "retry X ×1 · 5 s"),
    ({"ErrorEquals": ["X"], "MaxAttempts": 4, "BackoffRate": 1.5, "MaxDelaySeconds": 30, "JitterStrategy": "FULL"},
     "retry X ×4 · 1 s, backoff ×1.5, max 30 s, jitter"),
], ids=["defaults", "zero-attempts", "single-attempt-no-backoff", "max-delay-and-jitter"])
def test_retry_policy_in_a_line(retrier, text):
    definition = {"StartAt": "T", "States": {"T": task("app:t", Retry=[retrier])}}
    assert text in build(definition).nodes["T"].lines


def test_comments_become_tooltips():
    nodes = dot_nodes(dot_source(ORDER), ORDER)
    assert nodes["Validate"]["tooltip"] == "Checks amount and address"
    assert nodes["Route"]["tooltip"] == "Route (Choice)"
    assert 'tooltip="Takes an order from validation to shipping"' in dot_source(ORDER)


def test_parallel_branches_and_map_processor_are_labelled_clusters_nested_all_the_way():
    diagram = build(NESTED)

    def shape(cluster):
        return [(c.kind, c.label, c.state, shape(c)) for c in cluster.clusters]

    assert shape(diagram.top) == [
        ("parallel", "", "Outer", [
            ("branch", "Branch 1", "Outer", [
                ("map", "", "Regions", [
                    ("processor", "for each item", "Regions", [
                        ("parallel", "", "Checks", [
                            ("branch", "Branch 1", "Checks", []),
                            ("branch", "Branch 2", "Checks", [])])])])]),
            ("branch", "Branch 2", "Outer", [])])]
    where = {node: c.kind for c in diagram.clusters() for node in c.nodes}
    assert where == {"Outer": "parallel", "Outer__join": "parallel", "Regions": "map", "Regions__join": "map",
                     "Checks": "parallel", "Checks__join": "parallel", "Ping": "branch", "Measure": "branch",
                     "Audit": "branch"}
    source = dot_source(NESTED)
    assert source.count("subgraph cluster_") == 8
    assert source.count('label="Branch 1"') == 2 and source.count('label="for each item"') == 1
    edges = {(e.tail, e.head, e.kind) for e in diagram.edges}
    assert {("Outer", "Regions", "fork"), ("Regions", "Checks", "fork"), ("Checks", "Ping", "fork"),
            ("Ping", "Checks__join", "join"), ("Checks__join", "Regions__join", "join"),
            ("Outer__join", "__end__", "end")} <= edges


def test_state_names_cannot_break_the_dot_or_mermaid_syntax():
    name = 'Say "hi" <b>&amp; \\n | #1 end'
    definition = {"StartAt": name, "States": {name: {"Type": "Pass", "Comment": 'a "quoted" \\ comment',
                                                     "End": True}}}
    nodes = dot_nodes(dot_source(definition), definition)
    lines = plain(nodes[name]["label"]).split("\n")
    assert " ".join(lines[:-1]) == name.replace("\\", "\\\\") and lines[-1] == "Pass"  # dot halves them
    text = mermaid_source(definition)
    assert '"' not in text.split('n1["', 1)[1].split('"]', 1)[0]
    assert "Say #34;hi#34; #60;b#62;#38;amp#59; \\n #124; #35;1 end" in text


@needs_dot
def test_awkward_names_render_with_dot():
    name = 'Say "hi" <b>&amp; \\n'
    definition = {"StartAt": name, "States": {name: {"Type": "Pass", "End": True}}}
    svg = image(definition, "svg").decode()
    assert "Say &quot;hi&quot; &lt;b&gt;&amp;amp; \\n" in svg


# ------------------------------------------------------------------------------------------------ Mermaid
def test_mermaid_draws_the_same_structure():
    text = mermaid_source(ORDER)
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "flowchart TD"
    ids = {m.group(2): m.group(1) for m in re.finditer(r'(n\d+)\W+"<b>([^<]+)</b>', text)}
    assert set(ids) == set(loader.load(ORDER).index)
    assert f'{ids["Route"]}{{"<b>Route</b><br/>Choice"}}' in lines
    assert any(line.startswith(f'{ids["Hold"]}{{{{"<b>Hold</b>') for line in lines)
    assert f'{ids["Route"]} -->|"$.amount #62; 100"| {ids["Approve"]}' in lines
    assert f'{ids["Route"]} -->|"<i>Default</i>"| {ids["Hold"]}' in lines
    assert f'{ids["Validate"]} -.->|"catch ValidationError, States.Timeout"| {ids["Reject"]}' in lines
    assert sum(line.startswith("subgraph ") for line in lines) == 5
    assert lines.count("end") == 5


# ------------------------------------------------------------------------------------------------ formats
@pytest.mark.parametrize("path,forced,expected", [
    ("a.svg", None, "svg"), ("a.PNG", None, "png"), ("a.pdf", None, "pdf"), ("a.dot", None, "dot"),
    ("a.gv", None, "dot"), ("a.mmd", None, "mermaid"), ("a.txt", "mermaid", "mermaid"), ("a.svg", "dot", "dot"),
], ids=["svg", "png-any-case", "pdf", "dot", "gv-is-dot", "mmd-is-mermaid", "forced-on-unknown-suffix",
        "forced-over-suffix"])
def test_format_from_suffix_or_forced(path, forced, expected):
    assert format_for(Path(path), forced) == expected


@pytest.mark.parametrize("path,forced", [("a.txt", None), ("a", None), ("a.svg", "jpeg")],
                         ids=["unknown-suffix", "no-suffix", "unknown-format"])
def test_unknown_formats_are_refused(path, forced):
    with pytest.raises(ValueError, match="svg, png, pdf, dot, mermaid"):
        format_for(Path(path), forced)


def test_without_dot_text_formats_work_and_images_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere on it
    assert render(ORDER, tmp_path / "a.dot").read_text().startswith("digraph")
    assert render(ORDER, tmp_path / "a.mmd").read_text().startswith("flowchart TD")
    with pytest.raises(DotNotFound) as failure:
        render(ORDER, tmp_path / "a.svg")
    assert "apt-get install graphviz" in str(failure.value) and "brew install graphviz" in str(failure.value)
    result = CliRunner().invoke(render_command, [_write(tmp_path, ORDER), "-o", str(tmp_path / "b.png")])
    assert result.exit_code == 1
    assert "needs the Graphviz `dot` program" in result.output and "apt-get install graphviz" in result.output
    result = CliRunner().invoke(render_command, [_write(tmp_path, ORDER), "--format", "mermaid"])
    assert result.exit_code == 0 and result.output.startswith("flowchart TD")


@needs_dot
@pytest.mark.parametrize("suffix,magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")],
                         ids=["svg", "png", "pdf"])
def test_images_are_rendered_by_dot(tmp_path, suffix, magic):
    path = render(NESTED, tmp_path / f"nested{suffix}")
    assert path.read_bytes().startswith(magic) and path.stat().st_size > 1000


@needs_dot
def test_svg_has_every_state_and_comment_tooltips():
    svg = image(ORDER, "svg").decode()
    for name in loader.load(ORDER).index:
        assert f">{name}</text>" in svg
    assert 'xlink:title="Checks amount and address"' in svg
    assert "$.status == &quot;paid&quot; and $.retry is" in svg


# ------------------------------------------------------------------------------------------------ real executions
def handlers(engine: Engine) -> None:
    @engine.handler("app:validate")
    def validate(order):
        if order.get("bad"):
            raise TaskFailure("ValidationError", "amount must be positive")
        return order

    @engine.handler("app:label")
    def label(order):
        return {"label": ""}

    @engine.handler("app:pick")
    def pick(item):
        if item == "broken":
            raise TaskFailure("OutOfStock", f"no {item}")
        return item

    @engine.handler("app:approve")
    def approve(order, context):
        return {"sent": context.task_token is not None}


def run(engine: Engine, definition: dict, value: dict, name: str = "run"):
    handlers(engine)
    done = engine.run(definition, value, machine_name="orders", name=name)
    machine, overlay = load_execution(engine, done["executionArn"])
    return done, machine, overlay


def statuses(overlay) -> dict[str, str]:
    return {name: run.status for name, run in overlay.states.items()}


def test_a_succeeded_run_is_green_along_the_path_it_took(engine):
    done, machine, overlay = run(engine, ORDER, {"amount": 0, "status": "paid", "retry": 0, "items": ["a", "b"]})
    assert done["status"] == overlay.status == "SUCCEEDED"
    assert statuses(overlay) == {n: "succeeded" for n in ("Validate", "Route", "Ship", "Label", "Items", "Pick",
                                                          "Pack", "Done")}
    assert overlay.status_of("Hold") == overlay.status_of("Approve") == overlay.status_of("Reject") == "not-reached"
    assert overlay.states["Pick"].visits == 2
    assert overlay.states["Items"].iterations == {"items": 2, "succeeded": 2, "failed": 0, "running": 0,
                                                  "cancelled": 0, "not-started": 0}
    source = dot_source(machine, overlay)
    nodes, edges = dot_nodes(source, machine), dot_edges(source, machine)
    assert nodes["Validate"]["fillcolor"] == style.STATUS["succeeded"].fill
    assert nodes["Hold"]["fillcolor"] == style.STATUS["not-reached"].fill and "dashed" in nodes["Hold"]["style"]
    thick = {(t, h) for t, h, a in edges if a.get("penwidth") == style.TAKEN_WIDTH}
    assert thick == {("__start__", "Validate"), ("Validate", "Route"), ("Route", "Ship"), ("Ship", "Label"),
                     ("Ship", "Items"), ("Items", "Pick"), ("Pick", "Pack"), ("Pack", "Items__join"),
                     ("Label", "Ship__join"), ("Items__join", "Ship__join"), ("Ship__join", "Done"),
                     ("Done", "__end__")}
    assert all(a["color"] == style.FAINT for t, h, a in edges if (t, h) not in thick)
    assert "2 items: 2 succeeded" in plain(nodes["Items"]["label"])


def test_a_caught_error_shows_the_catch_taken(engine):
    _, machine, overlay = run(engine, ORDER, {"bad": True, "amount": 0, "items": []})
    assert overlay.status == "FAILED"
    assert statuses(overlay) == {"Validate": "caught", "Reject": "failed"}
    assert overlay.states["Validate"].error == "ValidationError"
    assert ("Validate", "Reject", "catch") in overlay.transitions
    edges = dot_edges(dot_source(machine, overlay), machine)
    [(_, _, attrs)] = [e for e in edges if e[:2] == ("Validate", "Reject")]
    assert attrs["penwidth"] == style.TAKEN_WIDTH and attrs["style"] == "dashed"
    nodes = dot_nodes(dot_source(machine, overlay), machine)
    assert nodes["Validate"]["fillcolor"] == style.STATUS["caught"].fill
    assert "caught: ValidationError" in plain(nodes["Validate"]["label"])


def test_a_failed_run_marks_the_failing_state(engine):
    definition = {"StartAt": "Check", "States": {
        "Check": {"Type": "Pass", "Result": {"n": 0, "ok": False, "s": "", "x": None}, "Next": "Charge"},
        "Charge": task("app:charge", "After"), "After": {"Type": "Pass", "End": True}}}

    @engine.handler("app:charge")
    def charge(value):
        raise TaskFailure("CardDeclined", "insufficient funds")

    done, machine, overlay = run(engine, definition, {})
    assert done["status"] == overlay.status == "FAILED"
    assert statuses(overlay) == {"Check": "succeeded", "Charge": "failed"}
    assert (overlay.states["Charge"].error, overlay.states["Charge"].cause) == ("CardDeclined", "insufficient funds")
    assert (overlay.error, overlay.cause) == ("CardDeclined", "insufficient funds")
    nodes = dot_nodes(dot_source(machine, overlay), machine)
    assert nodes["Charge"]["fillcolor"] == style.STATUS["failed"].fill
    assert "CardDeclined: insufficient funds" in nodes["Charge"]["tooltip"]
    source = dot_source(machine, overlay)
    assert "<b>orders / run</b>  FAILED" in source and "CardDeclined: insufficient funds</td>" in source


def test_a_retried_task_counts_its_retries(engine):
    attempts = []
    definition = {"StartAt": "Flaky", "States": {"Flaky": task("app:flaky", Retry=[
        {"ErrorEquals": ["Glitch"], "IntervalSeconds": 1, "MaxAttempts": 3}])}}

    @engine.handler("app:flaky")
    def flaky(value):
        attempts.append(1)
        if len(attempts) < 3:
            raise TaskFailure("Glitch", "")
        return value

    _, _, overlay = run(engine, definition, {})
    assert overlay.states["Flaky"] == ov.StateRun("succeeded", 1, {"succeeded": 1}, 2, "Glitch", "")


def test_a_map_with_a_failing_item_caught_by_the_map(engine):
    definition = {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "Next": "Done",
                 "Catch": [{"ErrorEquals": ["OutOfStock"], "Next": "Compensate"}],
                 "ItemProcessor": {"StartAt": "Pick", "States": {"Pick": task("app:pick")}}},
        "Compensate": {"Type": "Pass", "Next": "Done"},
        "Done": {"Type": "Succeed"}}}
    _, machine, overlay = run(engine, definition, {"items": ["a", "broken", "c", "d"]})
    assert overlay.status == "SUCCEEDED"
    assert statuses(overlay) == {"Each": "caught", "Pick": "failed", "Compensate": "succeeded", "Done": "succeeded"}
    assert overlay.states["Each"].iterations == {"items": 4, "succeeded": 1, "failed": 1, "running": 0,
                                                 "cancelled": 0, "not-started": 2}
    assert overlay.states["Pick"].counts == {"succeeded": 1, "failed": 1}
    assert ("Each", "Compensate", "catch") in overlay.transitions
    label = plain(dot_nodes(dot_source(machine, overlay), machine)["Each"]["label"])
    assert "caught: OutOfStock" in label and "4 items: 1 succeeded, 1 failed, 2 not started" in label
    assert "4 items: 1 succeeded, 1 failed, 2 not started" in mermaid_source(machine, overlay)


def test_a_failing_branch_cancels_its_sibling(engine):
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Soon", "States": {"Soon": {"Type": "Wait", "Seconds": 10, "Next": "Stop"},
                                       "Stop": {"Type": "Fail", "Error": "Stopped", "Cause": ""}}},
        {"StartAt": "Later", "States": {"Later": {"Type": "Wait", "Seconds": 3600, "Next": "Never"},
                                        "Never": {"Type": "Pass", "End": True}}}]}}}
    _, _, overlay = run(engine, definition, {})
    assert overlay.status == "FAILED"
    assert statuses(overlay) == {"Both": "failed", "Soon": "succeeded", "Stop": "failed", "Later": "cancelled"}
    assert overlay.states["Both"].error == "Stopped"
    assert overlay.finished == {"Stop"}


def test_mermaid_overlay_colours_states_and_the_path(engine):
    _, machine, overlay = run(engine, ORDER, {"bad": True, "amount": 0, "items": []})
    text = mermaid_source(machine, overlay)
    assert text.startswith('---\ntitle: "orders / run (FAILED)"\n---\nflowchart TD\n')
    assert f"classDef st_caught fill:{style.STATUS['caught'].fill}" in text
    assert re.search(r"^  class n\d+ st_caught$", text, re.M)
    assert re.search(r"^  linkStyle [\d,]+ stroke:#202124,stroke-width:3px$", text, re.M)


# -- executions still running: the overlay is read while a worker holds them at a given point
@pytest.fixture
def live(db_url):
    """An engine on the real clock, so timers stay pending while the test looks."""
    made = Engine(db_url)
    handlers(made)
    yield made
    made.db.dispose()


def run_until(engine: Engine, definition: dict, value: dict, event: str, name: str = "live"):
    """Start an execution and work on it until its history has ``event``; then look at it."""
    engine.register(definition, "orders")
    arn = engine.start("orders", value, name=name)["executionArn"]
    worker = engine.worker()
    try:
        worker.run(until=lambda: engine.status(arn) != "RUNNING" or
                   any(e["type"] == event for e in engine.history(arn)))
    finally:
        worker.close()
    return arn, *load_execution(engine, arn)


def test_waiting_on_a_timer(live):
    definition = {**ORDER, "States": {**ORDER["States"], "Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Ship"}}}
    arn, machine, overlay = run_until(live, definition, {"amount": 0, "status": "new", "items": []},
                                        "WaitStateEntered")
    assert live.status(arn) == overlay.status == "RUNNING"
    assert statuses(overlay) == {"Validate": "succeeded", "Route": "succeeded", "Hold": "waiting-timer"}
    assert ("Route", "Hold", "next") in overlay.transitions
    nodes = dot_nodes(dot_source(machine, overlay), machine)
    assert nodes["Hold"]["fillcolor"] == style.STATUS["waiting-timer"].fill and nodes["Hold"]["penwidth"] == "2.8"
    assert "waiting: timer" in plain(nodes["Hold"]["label"])


def test_waiting_on_a_task_token(live):
    arn, machine, overlay = run_until(live, ORDER, {"amount": 500, "items": []}, "TaskSubmitted")
    assert statuses(overlay) == {"Validate": "succeeded", "Route": "succeeded", "Approve": "waiting-token"}
    assert live.pending_tokens(arn)[0]["stateName"] == "Approve"
    assert "waiting: task token" in plain(dot_nodes(dot_source(machine, overlay), machine)["Approve"]["label"])


def test_waiting_on_retry_backoff(live):
    definition = {"StartAt": "Flaky", "States": {"Flaky": task("app:flaky", Retry=[
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3600, "MaxAttempts": 2}])}}

    @live.handler("app:flaky")
    def flaky(value):
        raise TaskFailure("Glitch", "try later")

    _, _, overlay = run_until(live, definition, {}, "TaskFailed")
    assert overlay.states["Flaky"].status == "waiting-timer"
    assert overlay.states["Flaky"].error == "Glitch"


def test_running_a_task_and_cli_overlay_while_it_runs(live, db_url, tmp_path):
    entered, release = threading.Event(), threading.Event()
    definition = {"StartAt": "Slow", "States": {"Slow": task("app:slow", "After"),
                                                "After": {"Type": "Pass", "End": True}}}

    @live.handler("app:slow")
    def slow(value):
        entered.set()
        release.wait(30)
        return value

    live.register(definition, "slowpoke")
    arn = live.start("slowpoke", {"n": 0}, name="now")["executionArn"]
    worker = live.worker()
    thread = threading.Thread(target=worker.run, kwargs={"until": lambda: live.status(arn) != "RUNNING"})
    thread.start()
    try:
        assert entered.wait(30)
        _, overlay = load_execution(live, "now")  # by name as well as by ARN
        assert statuses(overlay) == {"Slow": "running"}
        result = CliRunner().invoke(render_command, ["--execution", arn, "--db", db_url, "--format", "dot"])
        assert result.exit_code == 0, result.output
        reader = Client(db_url)
        drawn, _ = load_execution(reader, arn)  # the machine as the command read it (its own node order)
        reader.db.dispose()
        nodes = dot_nodes(result.output.split("wrote")[0], drawn)
        assert nodes["Slow"]["fillcolor"] == style.STATUS["running"].fill
        assert nodes["After"]["fillcolor"] == style.STATUS["not-reached"].fill
    finally:
        release.set()
        thread.join(30)
        worker.close()
    _, overlay = load_execution(live, arn)
    assert statuses(overlay) == {"Slow": "succeeded", "After": "succeeded"}


# ------------------------------------------------------------------------------------------------ history alone
def test_overlay_from_a_history_with_nothing_run_yet():
    machine = loader.load(all_types())
    overlay = from_history(machine, [{"id": 1, "previousEventId": 0, "type": "ExecutionStarted",
                                      "executionStartedEventDetails": {"input": "{}"}}])
    assert overlay.status == "RUNNING" and overlay.states == {}
    assert overlay.status_of("T") == "not-reached"


def test_an_aborted_execution_leaves_its_current_state_cancelled(live):
    definition = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    arn, _, _ = run_until(live, definition, {}, "WaitStateEntered", name="nap")
    live.stop(arn, "Operator", "changed their mind")
    _, overlay = load_execution(live, arn)
    assert overlay.status == "ABORTED" and statuses(overlay) == {"Nap": "cancelled"}


# ------------------------------------------------------------------------------------------------ the command
def _write(folder: Path, definition: dict) -> str:
    import json
    path = folder / "machine.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("args,message", [
    ([], "give a definition FILE or --execution ARN"),
    (["--format", "png"], "png output is binary: give -o FILE.png"),
    (["-o", "x.txt"], "cannot tell the output format from suffix '.txt'"),
], ids=["nothing-to-draw", "binary-to-stdout", "unknown-suffix"])
def test_command_usage_errors(tmp_path, args, message):
    full = args if not args else [_write(tmp_path, ORDER), *args]
    result = CliRunner().invoke(render_command, full)
    assert result.exit_code == 2 and message in result.output


def test_command_prints_dot_by_default_and_reports_bad_definitions(tmp_path):
    result = CliRunner().invoke(render_command, [_write(tmp_path, ORDER)])
    assert result.exit_code == 0 and result.output.startswith("digraph")
    bad = _write(tmp_path, {"StartAt": "Missing", "States": {"A": {"Type": "Pass", "End": True}}})
    result = CliRunner().invoke(render_command, [bad, "--format", "mermaid"])
    assert result.exit_code == 2 and "Missing" in result.output  # an invalid definition is a usage error


def test_command_unknown_execution(tmp_path, engine, db_url):
    result = CliRunner().invoke(render_command, ["--execution", "nobody", "--db", db_url, "-o",
                                                 str(tmp_path / "x.dot")])
    assert result.exit_code == 1 and "no execution has the ARN or name 'nobody'" in result.output


@needs_dot
def test_command_renders_an_execution_to_svg(engine, db_url, tmp_path):
    done, _, _ = run(engine, ORDER, {"amount": 0, "status": "new", "items": ["a", "broken"]}, name="stuck")
    out = tmp_path / "run.svg"
    result = CliRunner().invoke(render_command, ["--execution", done["executionArn"], "--db", db_url, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (FAILED)" in result.output
    svg = out.read_text()
    assert "orders / stuck" in svg and style.STATUS["caught"].fill in svg and style.STATUS["failed"].fill in svg
    assert "caught: OutOfStock" in svg


def test_a_jsonata_condition_is_shown_as_its_expression():
    definition = {"QueryLanguage": "JSONata", "StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n = 0 %}", "Next": "Zero"}],
              "Default": "Other"},
        "Zero": {"Type": "Succeed"}, "Other": {"Type": "Succeed"}}}
    labels = [(e.kind, e.label, e.target) for e in build(definition).edges_from("C")]
    assert labels == [("choice", "$states.input.n = 0", "Zero"), ("default", "Default", "Other")]


def test_the_api_returns_a_graphviz_digraph():
    import graphviz
    graph = digraph(ORDER, title="Orders")
    assert isinstance(graph, graphviz.Digraph)
    assert graph.source == dot_source(ORDER, title="Orders")
    assert "label=<<b>Orders</b>>" in graph.source


def test_an_error_caught_after_the_task_returned_is_still_shown_caught(db_url):
    """Output over the payload limit fails the state after TaskSucceeded: no failure event, but a Catch taken."""
    small = Engine(db_url, payload_limit=60)
    definition = {"StartAt": "Grow", "States": {
        "Grow": task("app:grow", "Fine", ResultPath="$.grown",
                     Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Trim"}]),
        "Fine": {"Type": "Succeed"}, "Trim": {"Type": "Pass", "End": True}}}
    small.handlers.register("app:grow", lambda value: "x" * 40)
    try:
        done = small.run(definition, {"n": 0, "s": ""}, machine_name="grow")
        _, overlay = load_execution(small, done["executionArn"])
        events = small.history(done["executionArn"])
    finally:
        small.db.dispose()
    assert done["status"] == "SUCCEEDED"
    assert [e["type"] for e in events if e["type"].startswith("Task")] == [
        "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited"]
    assert statuses(overlay) == {"Grow": "caught", "Trim": "succeeded"}
    assert ("Grow", "Trim", "catch") in overlay.transitions


@pytest.mark.parametrize("seconds,shown", [(0, "Wait 0 s"), (45, "Wait 45 s"), (90, "Wait 90 s"),
                                           (5400, "Wait 90 min"), (3600, "Wait 1 h"), (604800, "Wait 7 d")],
                         ids=["zero", "seconds", "not-whole-minutes", "minutes", "hours", "days"])
def test_durations_read_in_their_largest_whole_unit(seconds, shown):
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": seconds, "End": True}}}
    assert build(definition).nodes["W"].lines == (shown,)
