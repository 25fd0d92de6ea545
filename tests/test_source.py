"""Spec for engine/source.py: YAML and JSON parsed into plain values, with the line and column of every node.

Positions are looked up by JSON pointer, for a node's value or (``key=True``) for the key that names it; pointer
tokens are escaped as RFC 6901 says (``/`` as ``~1``, ``~`` as ``~0``). JSON positions are found lazily, by a
scanner that only runs when a position is asked for.
"""
from __future__ import annotations

import json
import time

import pytest

from statemill.engine import loader
from statemill.engine.source import (
    Position, SourceError, SourceMap, escape_pointer_token, guess_kind, join_pointer, parse_text,
)

# The same document in both syntaxes, laid out so that every node's position is easy to read off.
JSON_TEXT = """{
  "StartAt": "a/b",
  "States": {
    "a/b": {"Type": "Pass", "Result": [0, false, "", null], "Next": "x~y"},
    "x~y": {
      "Type": "Succeed",
      "Comment": "caf\\u00e9 \u00fcber"
    }
  }
}
"""
YAML_TEXT = """StartAt: a/b
States:
  a/b:
    Type: Pass
    Result: [0, false, "", null]
    Next: x~y
  x~y:
    Type: Succeed
    Comment: "café über"
"""


@pytest.mark.parametrize("kind, text, pointer, key, line, column", [
    pytest.param("json", JSON_TEXT, "/StartAt", False, 2, 14, id="json_top_level_value"),
    pytest.param("json", JSON_TEXT, "/StartAt", True, 2, 3, id="json_top_level_key"),
    pytest.param("json", JSON_TEXT, "/States/a~1b", True, 4, 5, id="json_key_with_slash_escaped_as_tilde_one"),
    pytest.param("json", JSON_TEXT, "/States/a~1b", False, 4, 12, id="json_object_value_starts_at_brace"),
    pytest.param("json", JSON_TEXT, "/States/a~1b/Result/0", False, 4, 40, id="json_array_item_zero"),
    pytest.param("json", JSON_TEXT, "/States/a~1b/Result/1", False, 4, 43, id="json_array_item_false"),
    pytest.param("json", JSON_TEXT, "/States/a~1b/Result/2", False, 4, 50, id="json_array_item_empty_string"),
    pytest.param("json", JSON_TEXT, "/States/a~1b/Result/3", False, 4, 54, id="json_array_item_null"),
    pytest.param("json", JSON_TEXT, "/States/a~1b/Next", False, 4, 69, id="json_value_after_array"),
    pytest.param("json", JSON_TEXT, "/States/x~0y", True, 5, 5, id="json_key_with_tilde_escaped_as_tilde_zero"),
    pytest.param("json", JSON_TEXT, "/States/x~0y/Comment", False, 7, 18, id="json_value_on_a_later_line"),
    pytest.param("yaml", YAML_TEXT, "/StartAt", False, 1, 10, id="yaml_top_level_value"),
    pytest.param("yaml", YAML_TEXT, "/StartAt", True, 1, 1, id="yaml_top_level_key"),
    pytest.param("yaml", YAML_TEXT, "/States/a~1b", True, 3, 3, id="yaml_key_with_slash_escaped_as_tilde_one"),
    pytest.param("yaml", YAML_TEXT, "/States/a~1b", False, 4, 5, id="yaml_block_mapping_starts_at_first_key"),
    pytest.param("yaml", YAML_TEXT, "/States/a~1b/Result/0", False, 5, 14, id="yaml_flow_item_zero"),
    pytest.param("yaml", YAML_TEXT, "/States/a~1b/Result/2", False, 5, 24, id="yaml_flow_item_empty_string"),
    pytest.param("yaml", YAML_TEXT, "/States/a~1b/Result/3", False, 5, 28, id="yaml_flow_item_null"),
    pytest.param("yaml", YAML_TEXT, "/States/x~0y", True, 7, 3, id="yaml_key_with_tilde_escaped_as_tilde_zero"),
    pytest.param("yaml", YAML_TEXT, "/States/x~0y/Comment", False, 9, 14, id="yaml_value_on_a_later_line"),
])
def test_positions_of_values_and_keys(kind, text, pointer, key, line, column):
    _, where = parse_text(text, kind)
    assert where.locate(pointer, key=key) == Position(line, column)


@pytest.mark.parametrize("kind, text", [("json", JSON_TEXT), ("yaml", YAML_TEXT)])
def test_both_syntaxes_give_the_same_values(kind, text):
    value, _ = parse_text(text, kind)
    assert value == {"StartAt": "a/b", "States": {
        "a/b": {"Type": "Pass", "Result": [0, False, "", None], "Next": "x~y"},
        "x~y": {"Type": "Succeed", "Comment": "café über"}}}


@pytest.mark.parametrize("kind, text", [("json", JSON_TEXT), ("yaml", YAML_TEXT)])
@pytest.mark.parametrize("pointer, fallback", [
    pytest.param("/States/a~1b/Nope", "/States/a~1b", id="unknown_member_falls_back_to_its_object"),
    pytest.param("/States/a~1b/Result/9", "/States/a~1b/Result", id="unknown_index_falls_back_to_its_array"),
    pytest.param("/Missing/deeper/still", "", id="unknown_branch_falls_back_to_the_root"),
])
def test_unknown_pointer_falls_back_to_nearest_ancestor(kind, text, pointer, fallback):
    _, where = parse_text(text, kind)
    assert where.locate(pointer) == where.locate(fallback)


@pytest.mark.parametrize("kind, text", [("json", JSON_TEXT), ("yaml", YAML_TEXT)])
def test_key_of_an_array_item_falls_back_to_the_item(kind, text):
    _, where = parse_text(text, kind)
    assert where.locate("/States/a~1b/Result/1", key=True) == where.locate("/States/a~1b/Result/1")


@pytest.mark.parametrize("token, escaped", [
    ("plain", "plain"), ("a/b", "a~1b"), ("x~y", "x~0y"), ("~/", "~0~1"), ("~1", "~01"), (0, "0"), ("", ""),
])
def test_pointer_tokens_are_escaped(token, escaped):
    assert escape_pointer_token(token) == escaped
    assert join_pointer("/States", token) == f"/States/{escaped}"


@pytest.mark.parametrize("name", ["Charge/Refund", "Retry~2", "~1 is not a slash", "a/~b"])
def test_diagnostic_for_a_state_with_slash_or_tilde_in_its_name(name):
    text = f'StartAt: "{name}"\nStates:\n  "{name}":\n    Type: Pass\n    Next: Nowhere\n'
    (diagnostic,) = loader.validates(text, name="escaped.yaml")
    assert diagnostic.pointer == f"/States/{escape_pointer_token(name)}/Next"
    assert (diagnostic.line, diagnostic.column) == (5, 11)
    assert diagnostic.message.startswith(f'state "{name}": ')


def test_json_state_name_with_slash_is_located_at_its_key():
    text = ('{"StartAt": "a/b",\n "States": {"a/b": {"Type": "Pass", "End": true, "Bad": 0},\n'
            ' "x~y": {"Type": "Succeed"}}}')
    found = {d.pointer: d for d in loader.validates(text, name="escaped.json")}
    assert (found["/States/a~1b/Bad"].line, found["/States/a~1b/Bad"].column) == (2, 50)
    assert (found["/States/x~0y"].line, found["/States/x~0y"].column) == (3, 2)  # unreachable, at its key


# ---------------------------------------------------------------------------------------------- JSON specifics
def test_json_positions_count_characters_not_bytes():
    _, where = parse_text('{"é€😀": "ü", "next": 0}', "json")
    assert where.locate("/next", key=True) == Position(1, 14)
    assert where.locate("/next") == Position(1, 22)


def test_json_key_written_with_unicode_escape_is_found_by_its_decoded_name():
    _, where = parse_text('{"caf\\u00e9": {"x": 0}}', "json")
    assert where.locate("/café/x") == Position(1, 21)


def test_json_with_crlf_line_endings():
    value, where = parse_text('{\r\n  "a": 1,\r\n  "b": [\r\n    true\r\n  ]\r\n}\r\n', "json")
    assert value == {"a": 1, "b": [True]}
    assert where.locate("/b/0") == Position(4, 5)
    assert where.locate("/b", key=True) == Position(3, 3)


def test_json_empty_containers_and_numbers():
    text = '{"o": {}, "l": [], "n": -1.5e+3, "z": 0, "t": true}'
    value, where = parse_text(text, "json")
    assert value == {"o": {}, "l": [], "n": -1500.0, "z": 0, "t": True}
    assert [where.locate(p).column for p in ("/o", "/l", "/n", "/z", "/t")] == [7, 16, 25, 39, 47]


def test_json_positions_are_computed_only_when_asked_for():
    _, where = parse_text(JSON_TEXT, "json")
    assert where._values is None  # parsing valid JSON costs no position scan
    assert where.locate("/StartAt") == Position(2, 14)
    assert where._values is not None


def test_json_position_scanner_on_a_large_document():
    states = {f"State{i:04d}": {"Type": "Pass", "Result": {"padding": "x" * 350, "i": i, "none": None},
                                "Next": f"State{i + 1:04d}"} for i in range(2000)}
    states["State2000"] = {"Type": "Succeed"}
    text = json.dumps({"StartAt": "State0000", "States": states}, indent=2)
    assert len(text) > 900_000

    started = time.perf_counter()
    value, where = parse_text(text, "json")
    assert where._values is None
    position = where.locate("/States/State1999/Result/none")
    elapsed = time.perf_counter() - started

    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"State1999": {' in row)
    # "State1999": { / "Type": ... / "Result": { / "padding": ... / "i": ... / "none": null
    assert position == Position(line + 5, len('        "none": ') + 1)
    last_line = text.count("\n", 0, text.index('"State2000": {')) + 1
    assert where.locate("/States/State2000", key=True) == Position(last_line, 5)
    assert len(value["States"]) == 2001
    assert elapsed < 2.0, f"parsing and locating took {elapsed:.2f}s"


# ---------------------------------------------------------------------------------------------- YAML specifics
def test_yaml_positions_are_known_up_front():
    _, where = parse_text(YAML_TEXT, "yaml")
    assert where._values  # YAML positions come from the parser's marks, for free
    assert where.locate("/States/x~0y/Type") == Position(8, 11)


@pytest.mark.parametrize("text, expected", [
    pytest.param("t: 2026-03-14T01:59:00Z", {"t": "2026-03-14T01:59:00Z"}, id="timestamp_stays_text"),
    pytest.param("d: 2026-03-14", {"d": "2026-03-14"}, id="date_stays_text"),
    pytest.param("On: 1\nyes: 2\nnull: 3\n4: 5", {"On": 1, "yes": 2, "null": 3, "4": 5}, id="keys_stay_text"),
    pytest.param("a: 1e3\nb: -2.5E-1\nc: 0", {"a": 1000.0, "b": -0.25, "c": 0}, id="json_style_exponents_are_numbers"),
    pytest.param("a: ''\nb: false\nc: null\nd: 0", {"a": "", "b": False, "c": None, "d": 0}, id="falsy_scalars"),
])
def test_yaml_scalars(text, expected):
    assert parse_text(text, "yaml")[0] == expected


def test_yaml_reads_json_text_like_json():
    text = '{"a": 1e3, "b": [0, false, "", null], "c": "2026-03-14T01:59:00Z"}'
    assert parse_text(text, "yaml")[0] == parse_text(text, "json")[0]


def test_yaml_refuses_python_tags():
    with pytest.raises(SourceError) as raised:
        parse_text("a: !!python/name:os.system ''", "yaml")
    assert raised.value.code == "SM005"
    assert raised.value.position == Position(1, 4)


# --------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kind, text, code, pointer, position", [
    pytest.param("json", '{"a": 1,\n "a": 2}', "SM002", "/a", Position(2, 2), id="json_duplicate_key"),
    pytest.param("json", '{"a": {"b": [{"c": 0, "c": 1}]}}', "SM002", "/a/b/0/c", Position(1, 23),
                 id="json_duplicate_key_inside_an_array"),
    pytest.param("yaml", "a:\n  b:\n    - c: 0\n      c: 1\n", "SM002", "/a/b/0/c", Position(4, 7),
                 id="yaml_duplicate_key_inside_a_sequence"),
    pytest.param("json", '{"a": 1 "b": 2}', "SM001", "", Position(1, 9), id="json_missing_comma"),
    pytest.param("json", "", "SM001", "", Position(1, 1), id="json_empty_text"),
    pytest.param("yaml", "a: [1, 2\nb: 3\n", "SM001", "", Position(2, 2), id="yaml_unclosed_bracket"),
    pytest.param("yaml", "a: 'open\n", "SM001", "", Position(2, 1), id="yaml_unclosed_quote"),
])
def test_source_errors_carry_code_pointer_and_position(kind, text, code, pointer, position):
    with pytest.raises(SourceError) as raised:
        parse_text(text, kind)
    assert (raised.value.code, raised.value.pointer, raised.value.position) == (code, pointer, position)


@pytest.mark.parametrize("name, text, kind", [
    ("machine.json", "StartAt: A", "json"),
    ("machine.asl.json", "", "json"),
    ("machine.YAML", "{}", "yaml"),
    ("machine.yml", "{}", "yaml"),
    ("<string>", '  {"StartAt": "A"}', "json"),
    ("<string>", "StartAt: A", "yaml"),
])
def test_guess_kind(name, text, kind):
    assert guess_kind(name, text) == kind


def test_source_map_of_a_dict_is_not_needed():
    """Definitions given as dicts have no text: the loader reports pointers without lines."""
    (diagnostic,) = loader.validate({"StartAt": "A", "States": {"A": {"Type": "Pass"}}})
    assert (diagnostic.pointer, diagnostic.line, diagnostic.column) == ("/States/A", None, None)


def test_empty_source_map_locates_nothing():
    assert SourceMap("{}", "json").locate("/anything") == Position(1, 1)
