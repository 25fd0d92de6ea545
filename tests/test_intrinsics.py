"""Spec for ASL intrinsic functions (JSONPath mode): parsing once, AWS's semantics, AWS-worded failures."""
from __future__ import annotations

import hashlib
import importlib.util
import re

import pytest

from statemill.engine import intrinsics
from statemill.engine.errors import CompileError, StatesError
from statemill.engine.intrinsics import FUNCTIONS, compile_intrinsic, is_intrinsic
from statemill.engine.scope import Scope

try:  # path arguments need engine/paths.py (written in parallel); those tests skip until it exists
    HAVE_PATHS = importlib.util.find_spec("statemill.engine.paths") is not None
except ImportError:  # pragma: no cover
    HAVE_PATHS = False
needs_paths = pytest.mark.skipif(not HAVE_PATHS, reason="statemill.engine.paths is not available yet")

EMPTY = Scope(None)


def run(text: str, scope: Scope = EMPTY):
    return compile_intrinsic(text).evaluate(scope)


def failure(text: str, scope: Scope = EMPTY) -> StatesError:
    call = compile_intrinsic(text)
    with pytest.raises(StatesError) as info:
        call.evaluate(scope)
    return info.value


def compile_error(text) -> str:
    with pytest.raises(CompileError) as info:
        compile_intrinsic(text)
    return str(info.value)


def obj(json_text: str) -> str:
    """An intrinsic argument that evaluates to the given JSON (objects and arrays have no literal syntax)."""
    return "States.StringToJson('" + json_text.replace("\\", "\\\\").replace("'", "\\'") + "')"


# ----------------------------------------------------------------------------------------------- registry

def test_registry_lists_all_eighteen_functions_with_their_arity():
    assert FUNCTIONS == {
        "States.Format": (1, None), "States.StringToJson": (1, 1), "States.JsonToString": (1, 1),
        "States.Array": (0, None), "States.ArrayPartition": (2, 2), "States.ArrayContains": (2, 2),
        "States.ArrayRange": (3, 3), "States.ArrayGetItem": (2, 2), "States.ArrayLength": (1, 1),
        "States.ArrayUnique": (1, 1), "States.Base64Encode": (1, 1), "States.Base64Decode": (1, 1),
        "States.Hash": (2, 2), "States.JsonMerge": (3, 3), "States.MathRandom": (2, 3),
        "States.MathAdd": (2, 2), "States.StringSplit": (2, 2), "States.UUID": (0, 0),
    }


@pytest.mark.parametrize("text, expected", [
    ("States.Format('x')", True),
    ("States.UUID()", True),
    ("  States.Array()", True),
    ("States.NotAFunction(1)", True),      # still routed here, so the user gets "did you mean"
    ("$.States.Format", False),
    ("$", False),
    ("states.Format('x')", False),
    ("", False),
    (None, False),
    (0, False),
], ids=["format", "uuid", "leading-whitespace", "unknown-name-still-intrinsic", "path-mentioning-States",
        "root-path", "lowercase-prefix", "empty", "none", "number"])
def test_is_intrinsic_recognises_the_States_prefix(text, expected):
    assert is_intrinsic(text) is expected


# ----------------------------------------------------------------------------------------------- literals

@pytest.mark.parametrize("text, expected", [
    ("States.Array(0)", [0]),
    ("States.Array(-7)", [-7]),
    ("States.Array(1.5)", [1.5]),
    ("States.Array(-0.25)", [-0.25]),
    ("States.Array(1e3)", [1000.0]),
    ("States.Array(2.5E-1)", [0.25]),
    ("States.Array(null)", [None]),
    ("States.Array(true)", [True]),
    ("States.Array(false)", [False]),
    ("States.Array('')", [""]),
    ("States.Array('a b')", ["a b"]),
    ("States.Array()", []),
    ("States.Array(0, false, '', null)", [0, False, "", None]),
    ("  States.Array( 1 ,'x' )  ", [1, "x"]),
], ids=["zero", "negative-int", "float", "negative-float", "exponent", "exponent-negative", "null", "true",
        "false", "empty-string", "string-with-space", "no-arguments", "falsy-values-kept", "whitespace-ignored"])
def test_literal_arguments(text, expected):
    result = run(text)
    assert result == expected
    assert [type(v) for v in result] == [type(v) for v in expected]


@pytest.mark.parametrize("text, expected", [
    (r"States.Array('it\'s')", ["it's"]),
    (r"States.Array('\{\}')", ["{}"]),
    (r"States.Array('back\\slash')", ["back\\slash"]),
    (r"States.Array('\\\\')", ["\\\\"]),
    ("States.Array('two\nlines')", ["two\nlines"]),
    ("States.Array('a,b)c')", ["a,b)c"]),
    ("States.Array('{\"k\": 1}')", ['{"k": 1}']),
    ("States.Array('$.not.a.path')", ["$.not.a.path"]),
    ("States.Array('States.Array()')", ["States.Array()"]),
], ids=["escaped-quote", "escaped-braces", "escaped-backslash", "two-escaped-backslashes",
        "raw-newline-character", "comma-and-paren-inside-string", "unescaped-braces-in-plain-string",
        "path-text-inside-string", "call-text-inside-string"])
def test_string_escapes(text, expected):
    assert run(text) == expected


def test_escape_sequences_in_a_definition_json_text_use_doubled_backslashes():
    import json
    definition_value = json.loads(r'''"States.Format('\\{\\} {} \\\\ \\'q\\'', 1)"''')
    assert definition_value == r"States.Format('\{\} {} \\ \'q\'', 1)"
    assert run(definition_value) == "{} 1 \\ 'q'"


# ------------------------------------------------------------------------------------------- States.Format

@pytest.mark.parametrize("text, expected", [
    ("States.Format('no placeholders')", "no placeholders"),
    ("States.Format('Hello {}!', 'World')", "Hello World!"),
    ("States.Format('{}{}', 'a', 'b')", "ab"),
    ("States.Format('[{}]', '')", "[]"),
    ("States.Format('{}', null)", "null"),
    ("States.Format('{}', true)", "true"),
    ("States.Format('{}', false)", "false"),
    ("States.Format('{}', 0)", "0"),
    ("States.Format('{}', -3)", "-3"),
    ("States.Format('{}', 1.1)", "1.1"),
    ("States.Format('{}', 2.0)", "2.0"),
    ("States.Format('{}', 1e20)", "1.0E20"),
    ("States.Format('{}', 0.0001)", "1.0E-4"),
    ("States.Format('{}', " + obj('{"Arg1": 1, "Arg2": []}') + ")", "{Arg1=1, Arg2=[]}"),
    ("States.Format('{}', " + obj('[1, "two", null, true, 1.5]') + ")", "[1, two, null, true, 1.5]"),
    ("States.Format('{}', " + obj('{"a": {"b": ["c", {}]}}') + ")", "{a={b=[c, {}]}}"),
    ("States.Format('{}', '{\"Arg1\": 1}')", '{"Arg1": 1}'),
    (r"States.Format('\{\} {}', 'x')", "{} x"),
    (r"States.Format('\{{}\}', 'x')", "{x}"),
    ("States.Format('{ } {}', 'x')", "{ } x"),
    ("States.Format('{}-{}', States.Format('{}', 1), 2)", "1-2"),
], ids=["no-placeholder", "one-placeholder", "adjacent-placeholders", "empty-string-argument", "null-as-text",
        "true", "false", "zero", "negative", "float", "integral-float-keeps-point", "large-float-java-notation",
        "small-float-java-notation", "object-java-style", "array-java-style", "nested-object-java-style",
        "json-text-string-verbatim", "escaped-braces-are-not-placeholders", "placeholder-inside-escaped-braces",
        "brace-space-brace-is-not-a-placeholder", "nested-format"])
def test_format(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize("text, placeholders, values", [
    ("States.Format('{} {}', 'a')", 2, 1),
    ("States.Format('{}', 'a', 'b')", 1, 2),
    ("States.Format('none', 'a')", 0, 1),
], ids=["too-few-values", "too-many-values", "values-without-placeholders"])
def test_format_fails_when_placeholders_and_values_differ(text, placeholders, values):
    error = failure(text)
    assert error.error == "States.Runtime"
    assert f"has {placeholders} '{{}}' placeholder(s) but {values} value argument(s)" in error.cause


@pytest.mark.parametrize("template", ["1", "null", "true", obj("[]"), obj("{}")],
                         ids=["number", "null", "boolean", "array", "object"])
def test_format_template_must_be_a_string(template):
    assert "the first argument must be a string" in failure(f"States.Format({template})").cause


# -------------------------------------------------------------------------------------- JSON manipulation

@pytest.mark.parametrize("json_text, expected", [
    ("", None),
    (" ", None),
    ("null", None),
    ("-0", 0),
    ("0", 0),
    ("1.1", 1.1),
    ("true", True),
    ("false", False),
    ('"HelloWorld"', "HelloWorld"),
    ('""', ""),
    ('[1, 2, "HelloWorld"]', [1, 2, "HelloWorld"]),
    ('{"Arg1": 1, "Arg2": []}', {"Arg1": 1, "Arg2": []}),
    ('{"é": "ü"}', {"é": "ü"}),
], ids=["empty-is-null", "blank-is-null", "null", "minus-zero", "zero", "float", "true", "false", "string",
        "empty-json-string", "array", "object", "unicode"])
def test_string_to_json(json_text, expected):
    assert run(obj(json_text)) == expected


@pytest.mark.parametrize("json_text", ["{bad", "[1,", "NaN", "Infinity", "1 2", "'single'"],
                         ids=["broken-object", "broken-array", "nan", "infinity", "two-values", "single-quotes"])
def test_string_to_json_rejects_invalid_json(json_text):
    error = failure(obj(json_text))
    assert error.error == "States.Runtime"
    assert "Invalid arguments in States.StringToJson: the string is not valid JSON" in error.cause


@pytest.mark.parametrize("argument", ["1", "null", "true", obj("[]")], ids=["number", "null", "bool", "array"])
def test_string_to_json_needs_a_string(argument):
    assert "must be a string" in failure(f"States.StringToJson({argument})").cause


@pytest.mark.parametrize("argument, expected", [
    ("null", "null"),
    ("0", "0"),
    ("1.1", "1.1"),
    ("1e20", "1.0E20"),
    ("true", "true"),
    ("false", "false"),
    ("''", '""'),
    ("'HelloWorld'", '"HelloWorld"'),
    (obj('{"Arg1": 1, "Arg2": []}'), '{"Arg1":1,"Arg2":[]}'),
    (obj('[1, 2, "HelloWorld"]'), '[1,2,"HelloWorld"]'),
    (obj('{"name": "Foo", "year": 2020}'), '{"name":"Foo","year":2020}'),
    (obj('{"s": "é \\" \\n"}'), '{"s":"é \\" \\n"}'),
], ids=["null", "zero", "float", "large-float-java-notation", "true", "false", "empty-string", "string-quoted",
        "object-compact", "array-compact", "doc-example", "escapes-and-unicode"])
def test_json_to_string_is_compact_json(argument, expected):
    assert run(f"States.JsonToString({argument})") == expected


@pytest.mark.parametrize("first, second, expected", [
    ('{"a": {"a1": 1, "a2": 2}, "b": 2, "d": 3}', '{"a": {"a3": 1, "a4": 2}, "c": 3, "d": 4}',
     {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3, "d": 4}),
    ("{}", '{"x": 0}', {"x": 0}),
    ('{"x": 0}', "{}", {"x": 0}),
    ('{"x": 1}', '{"x": null}', {"x": None}),
], ids=["second-wins-and-nested-objects-are-replaced", "empty-first", "empty-second", "null-overrides"])
def test_json_merge_is_shallow(first, second, expected):
    assert run(f"States.JsonMerge({obj(first)}, {obj(second)}, false)") == expected


@pytest.mark.parametrize("args, message", [
    (f"{obj('{}')}, {obj('{}')}, true", "only supports the shallow merging mode"),
    (f"{obj('[]')}, {obj('{}')}, false", "the first argument must be a JSON object, but was array"),
    (f"{obj('{}')}, 'x', false", "the second argument must be a JSON object, but was string"),
    (f"{obj('{}')}, {obj('{}')}, 0", "the third argument must be a boolean, but was number"),
    (f"{obj('{}')}, {obj('{}')}, null", "the third argument must be a boolean, but was null"),
], ids=["deep-merge-unsupported", "first-not-object", "second-not-object", "flag-number", "flag-null"])
def test_json_merge_rejects_bad_arguments(args, message):
    assert message in failure(f"States.JsonMerge({args})").cause


# -------------------------------------------------------------------------------------------------- arrays

@pytest.mark.parametrize("array, size, expected", [
    ("[]", "1", []),
    ("[0]", "1", [[0]]),
    ("[0]", "4", [[0]]),
    ("[0, 1]", "1", [[0], [1]]),
    ("[0, 1, 2, 3]", "3", [[0, 1, 2], [3]]),
    ("[0, 1, 2, 3]", "4", [[0, 1, 2, 3]]),
    ("[1, 2, 3, 4, 5, 6, 7, 8, 9]", "4", [[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
    ("[0, 1, 2]", "1.5", [[0, 1], [2]]),
    ("[0, 1, 2]", "1.49", [[0], [1], [2]]),
    ("[null, false, 0]", "2", [[None, False], [0]]),
], ids=["empty-array", "single", "chunk-larger-than-array", "chunk-of-one", "short-last-chunk", "exact-fit",
        "doc-example", "size-rounds-half-up", "size-rounds-down", "falsy-items"])
def test_array_partition(array, size, expected):
    assert run(f"States.ArrayPartition({obj(array)}, {size})") == expected


@pytest.mark.parametrize("size", ["0", "-1", "0.4"], ids=["zero", "negative", "rounds-to-zero"])
def test_array_partition_needs_a_positive_chunk_size(size):
    assert "the chunk size must be a positive integer" in failure(f"States.ArrayPartition({obj('[1]')}, {size})").cause


@pytest.mark.parametrize("array, value, expected", [
    ("[]", "null", False),
    ("[]", obj("[]"), False),
    ("[]", "1", False),
    ("[[1, 2, 3], 2]", obj("[1, 2, 3]"), True),
    ("[[1, 2, 3], 2]", "null", False),
    ('[{"1": 2, "2": []}]', obj("[]"), False),
    ('[{"1": 2, "2": []}]', obj('{"2": [], "1": 2}'), True),
    ("[true, false]", "false", True),
    ("[1]", "true", False),
    ("[0]", "false", False),
    ("[null]", "null", True),
    ('[""]', "''", True),
    ("[1]", "1.0", True),
    ('["1"]', "1", False),
], ids=["empty-null", "empty-array", "empty-number", "nested-array-deep-equal", "null-absent",
        "object-vs-array", "object-deep-equal-any-key-order", "false-found", "true-is-not-one",
        "false-is-not-zero", "null-found", "empty-string-found", "int-equals-float", "string-is-not-number"])
def test_array_contains_uses_deep_json_equality(array, value, expected):
    assert run(f"States.ArrayContains({obj(array)}, {value})") is expected


@pytest.mark.parametrize("args, expected", [
    ("0, 9, 3", [0, 3, 6, 9]),
    ("0, 10, 3", [0, 3, 6, 9]),
    ("1, 9, 9", [1]),
    ("1, 9, 2", [1, 3, 5, 7, 9]),
    ("0, 0, 1", [0]),
    ("5, 1, -2", [5, 3, 1]),
    ("1, 5, -1", []),
    ("5, 1, 1", []),
    ("-2, 2, 2", [-2, 0, 2]),
    ("0.5, 2.4, 1", [1, 2]),
    ("0, 999, 1", list(range(1000))),
], ids=["inclusive-end", "end-not-reached", "step-past-end", "odd-numbers", "single-zero", "negative-step",
        "negative-step-wrong-direction", "positive-step-wrong-direction", "negative-start",
        "non-integers-rounded", "exactly-1000-items"])
def test_array_range(args, expected):
    assert run(f"States.ArrayRange({args})") == expected


@pytest.mark.parametrize("args, message", [
    ("0, 1000, 1", "would hold 1001 items, more than the maximum of 1000"),
    ("1, 5, 0", "the step must not be 0"),
    ("1, 5, 0.4", "the step must not be 0"),
    ("'0', 5, 1", "the first argument must be a number, but was string"),
    ("0, null, 1", "the second argument must be a number, but was null"),
    ("0, 5, true", "the third argument must be a number, but was boolean"),
], ids=["more-than-1000-items", "zero-step", "step-rounding-to-zero", "start-string", "end-null", "step-bool"])
def test_array_range_rejects_bad_arguments(args, message):
    assert message in failure(f"States.ArrayRange({args})").cause


@pytest.mark.parametrize("array, index, expected", [
    ("[1, 2, 3, 4, 5, 6, 7, 8, 9]", "5", 6),
    ("[0, 1]", "0", 0),
    ("[null, false]", "1", False),
    ("[null]", "0", None),
    ('[{"k": []}]', "0", {"k": []}),
    ("[10, 20, 30]", "1.5", 30),
], ids=["doc-example", "first-item-zero", "false-item", "null-item", "object-item", "index-rounded"])
def test_array_get_item(array, index, expected):
    assert run(f"States.ArrayGetItem({obj(array)}, {index})") == expected


@pytest.mark.parametrize("array, index, message", [
    ("[1, 2, 3]", "3", "Index 3 out of bounds for length 3"),
    ("[1, 2, 3]", "-1", "Index -1 out of bounds for length 3"),
    ("[]", "0", "Index 0 out of bounds for length 0"),
], ids=["index-equals-length", "negative-index", "empty-array"])
def test_array_get_item_out_of_bounds(array, index, message):
    assert failure(f"States.ArrayGetItem({obj(array)}, {index})").cause.endswith(message)


@pytest.mark.parametrize("array, expected", [
    ("[]", 0), ("[0]", 1), ("[1, 2, 3, 4, 5, 6, 7, 8, 9]", 9), ("[null, null]", 2), ("[[], {}]", 2),
], ids=["empty", "one", "nine", "nulls-count", "containers-count"])
def test_array_length(array, expected):
    assert run(f"States.ArrayLength({obj(array)})") == expected


def test_array_unique_keeps_first_occurrences_in_order():
    values = ('[null, null, true, true, false, false, 1, 1, 1.1, 0, -0, "HelloWorld", "HelloWorld", [], [], '
              '[null], [null], {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 1}, "1", 0.0]')
    assert run(f"States.ArrayUnique({obj(values)})") == [
        None, True, False, 1, 1.1, 0, "HelloWorld", [], [None], {"a": 1, "b": 2}, {"a": 1, "b": 1}, "1"]


@pytest.mark.parametrize("function", ["ArrayLength", "ArrayUnique"])
@pytest.mark.parametrize("argument, kind", [
    ("'abc'", "string"), ("null", "null"), ("0", "number"), ("false", "boolean"), (obj("{}"), "object"),
], ids=["string", "null", "zero", "false", "object"])
def test_array_functions_need_an_array(function, argument, kind):
    error = failure(f"States.{function}({argument})")
    assert error.cause.endswith(f"Invalid arguments in States.{function}: the first argument must be an array, "
                                f"but was {kind}")


@pytest.mark.parametrize("text", [
    "States.ArrayPartition('x', 1)", "States.ArrayContains(null, 1)", "States.ArrayGetItem(0, 0)",
], ids=["partition", "contains", "get-item"])
def test_other_array_functions_need_an_array(text):
    assert "the first argument must be an array" in failure(text).cause


@pytest.mark.parametrize("text, expected", [
    ("States.Array(1, 'a', null)", [1, "a", None]),
    ("States.Array(States.Array(), States.Array(0))", [[], [0]]),
    (f"States.Array({obj('{}')})", [{}]),
], ids=["mixed-literals", "nested-arrays", "object"])
def test_array_builds_a_list_in_argument_order(text, expected):
    assert run(text) == expected


# -------------------------------------------------------------------------------------- encoding and hash

@pytest.mark.parametrize("plain, encoded", [
    ("", ""), ("Data to encode", "RGF0YSB0byBlbmNvZGU="), ("Hello World", "SGVsbG8gV29ybGQ="),
    (">>>", "Pj4+"), ("é", "w6k="),
], ids=["empty", "doc-example", "hello-world", "standard-alphabet-not-url-safe", "utf8"])
def test_base64_round_trip(plain, encoded):
    assert run(f"States.Base64Encode('{plain}')") == encoded
    assert run(f"States.Base64Decode('{encoded}')") == plain


def test_base64_decode_accepts_missing_padding():
    assert run("States.Base64Decode('RGF0YQ')") == "Data"


@pytest.mark.parametrize("encoded", ["!!!!", "RGF0YQ=x", "A"], ids=["bad-alphabet", "bad-padding", "bad-length"])
def test_base64_decode_rejects_invalid_input(encoded):
    assert "the string is not valid Base64" in failure(f"States.Base64Decode('{encoded}')").cause


@pytest.mark.parametrize("function, ok_text, too_long", [
    ("Base64Encode", "a" * 10_000, "a" * 10_001),
    ("Base64Decode", "A" * 10_000, "A" * 10_004),
    ("Hash", "a" * 10_000, "a" * 10_001),
], ids=["encode", "decode", "hash"])
def test_text_inputs_are_limited_to_10000_characters(function, ok_text, too_long):
    extra = ", 'MD5'" if function == "Hash" else ""
    assert run(f"States.{function}('{ok_text}'{extra})") is not None
    cause = failure(f"States.{function}('{too_long}'{extra})").cause
    assert f"the input string must be at most 10000 characters long, but was {len(too_long)}" in cause


@pytest.mark.parametrize("function", ["Base64Encode", "Base64Decode"])
@pytest.mark.parametrize("argument", ["0", "null", "false", obj("[]")], ids=["zero", "null", "false", "array"])
def test_base64_needs_a_string(function, argument):
    assert "the first argument must be a string" in failure(f"States.{function}({argument})").cause


@pytest.mark.parametrize("algorithm, expected", [
    ("MD5", hashlib.md5(b"input data").hexdigest()),
    ("SHA-1", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
    ("SHA-256", "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"),
    ("SHA-384", "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562"),
    ("SHA-512", hashlib.sha512(b"input data").hexdigest()),
], ids=["md5", "sha1", "sha256", "sha384", "sha512"])
def test_hash_returns_lowercase_hex(algorithm, expected):
    assert run(f"States.Hash('input data', '{algorithm}')") == expected


def test_hash_of_empty_string():
    assert run("States.Hash('', 'SHA-256')") == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("args, message", [
    ("'x', 'sha256'", 'must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512, but was "sha256"'),
    ("'x', 'sha-256'", 'but was "sha-256"'),
    ("'x', null", "but was null"),
    ("0, 'MD5'", "the first argument must be a string, but was number"),
    ("null, 'MD5'", "the first argument must be a string, but was null"),
], ids=["unknown-algorithm", "lowercase-algorithm", "null-algorithm", "number-data", "null-data"])
def test_hash_rejects_bad_arguments(args, message):
    assert message in failure(f"States.Hash({args})").cause


# ---------------------------------------------------------------------------------------------------- math

@pytest.mark.parametrize("a, b, expected", [
    ("-9", "3", -6), ("0", "0", 0), ("1.49", "1.5", 3), ("1.5", "1.51", 4), ("-1.49", "-1.5", -2),
    ("-1.5", "-1.51", -3), ("1.49", "-1.49", 0), ("0.5", "0", 1), ("2.5", "0", 3), ("-0.5", "0", 0),
    ("-0.5", "0.5", 1), ("-2.5", "0", -2), ("-3.5", "0", -3), ("3.5", "0", 4), ("111", "-1", 110),
], ids=["negative", "zeros", "each-operand-rounded", "half-rounds-up", "negative-half-rounds-up",
        "negative-beyond-half-rounds-down", "cancel-out", "half", "two-and-a-half", "minus-half-is-zero",
        "minus-half-plus-half", "minus-two-and-a-half", "minus-three-and-a-half", "three-and-a-half",
        "decrement"])
def test_math_add_rounds_each_operand_like_java(a, b, expected):
    result = run(f"States.MathAdd({a}, {b})")
    assert result == expected and isinstance(result, int)


@pytest.mark.parametrize("args, position, kind", [
    ("'1', 2", "first", "string"), ("1, null", "second", "null"), ("true, 1", "first", "boolean"),
], ids=["string", "null", "boolean"])
def test_math_add_needs_numbers(args, position, kind):
    assert f"the {position} argument must be a number, but was {kind}" in failure(f"States.MathAdd({args})").cause


@pytest.mark.parametrize("start, end", [(0, 1), (1, 999), (-99999, -9999), (12, 45)],
                         ids=["single-value", "wide", "negative", "from-rounded-floats"])
def test_math_random_stays_between_start_inclusive_and_end_exclusive(start, end):
    call = compile_intrinsic(f"States.MathRandom({start}, {end})")
    values = {call.evaluate(EMPTY) for _ in range(200)}
    assert all(isinstance(v, int) and start <= v < end for v in values)


def test_math_random_rounds_float_bounds():
    assert {run("States.MathRandom(0.4, 2.6)") for _ in range(200)} == {0, 1, 2}
    assert "the start (1) must be less than the end (1)" in failure("States.MathRandom(0.6, 1.4)").cause


@pytest.mark.parametrize("seed", ["0", "42", "-7", "3.2"], ids=["zero", "positive", "negative", "float"])
def test_math_random_with_a_seed_is_repeatable(seed):
    call = compile_intrinsic(f"States.MathRandom(1, 1000, {seed})")
    assert len({call.evaluate(EMPTY) for _ in range(5)}) == 1
    assert 1 <= call.evaluate(EMPTY) < 1000


def test_math_random_seed_matches_java_util_random():
    # new java.util.Random(42).nextInt(99) == 62, Random(0).nextInt(100) == 60 (checked against a JDK)
    assert run("States.MathRandom(0, 99, 42)") == 62
    assert run("States.MathRandom(10, 110, 0)") == 70
    assert run("States.MathRandom(0, 1000, 42)") == 130


@pytest.mark.parametrize("args, message", [
    ("5, 5", "the start (5) must be less than the end (5)"),
    ("6, 5", "the start (6) must be less than the end (5)"),
    ("'1', 5", "the first argument must be a number"),
    ("1, 5, 'seed'", "the third argument must be a number"),
], ids=["empty-range", "reversed-range", "string-start", "string-seed"])
def test_math_random_rejects_bad_arguments(args, message):
    assert message in failure(f"States.MathRandom({args})").cause


# ------------------------------------------------------------------------------------------------- strings

@pytest.mark.parametrize("text, delimiters, expected", [
    ("1,2,3,4,5", ",", ["1", "2", "3", "4", "5"]),
    (" ", ",", [" "]),
    (", , ,", ",", [" ", " "]),
    (",,,,", ",", []),
    ("", ",", []),
    ("This.is+a,test=string", ".+,=", ["This", "is", "a", "test", "string"]),
    ("split on T and \nnew line", "T\n", ["split on ", " and ", "new line"]),
    ("Hello\nWorld", "\n", ["Hello", "World"]),
    ("a-b", "-", ["a", "b"]),
    ("abc", "", ["abc"]),
    ("0", ",", ["0"]),
    ("a..b", "..", ["a", "b"]),
], ids=["commas", "no-delimiter-present", "empty-parts-dropped", "only-delimiters", "empty-string",
        "each-character-splits", "newline-delimiter", "newline-in-literal", "dash", "empty-delimiters",
        "zero-text", "repeated-delimiter-characters"])
def test_string_split(text, delimiters, expected):
    assert run(f"States.StringSplit('{text}', '{delimiters}')") == expected


@pytest.mark.parametrize("args, message", [
    ("0, ','", "the first argument must be a string, but was number"),
    ("'a', null", "the second argument must be a string, but was null"),
], ids=["number-text", "null-delimiters"])
def test_string_split_needs_strings(args, message):
    assert message in failure(f"States.StringSplit({args})").cause


def test_uuid_is_a_fresh_version_4_uuid():
    call = compile_intrinsic("States.UUID()")
    first, second = call.evaluate(EMPTY), call.evaluate(EMPTY)
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert pattern.match(first) and pattern.match(second) and first != second


# --------------------------------------------------------------------------------------------------- nesting

@pytest.mark.parametrize("text, expected", [
    ("States.ArrayGetItem(States.StringSplit('a-b-c', '-'), 0)", "a"),
    ("States.ArrayGetItem(States.StringSplit('a-b-c', '-'), "
     "States.MathAdd(States.ArrayLength(States.StringSplit('a-b-c', '-')), -1))", "c"),
    ("States.JsonMerge(States.StringToJson('{\"x\": \"false\"}'), States.StringToJson('{\"y\": 0}'), false)",
     {"x": "false", "y": 0}),
    ("States.Base64Decode(States.Base64Encode('round trip'))", "round trip"),
    ("States.Format('{}.{}', States.ArrayGetItem(States.StringSplit('a/b.c/d', '/'), 1), 'x')", "b.c.x"),
], ids=["first-part", "last-part-via-length", "merge-parsed-literals", "base64-round-trip", "format-of-nested"])
def test_nested_calls(text, expected):
    assert run(text) == expected


def nested(depth: int) -> str:
    return "States.Array(" * depth + ")" * depth


def test_ten_levels_of_nesting_are_allowed():
    expected: list = []
    for _ in range(9):
        expected = [expected]
    assert run(nested(10)) == expected


def test_eleven_levels_of_nesting_are_rejected():
    assert "nested more than 10 levels deep" in compile_error(nested(11))


# ------------------------------------------------------------------------------------------- compile errors

@pytest.mark.parametrize("text, message", [
    ("States.Format('x'", "expected ',' or ')' in the arguments of States.Format, found the end of the text"),
    ("States.Format('x'))", "unexpected ')' after the closing parenthesis"),
    ("States.Array() x", "unexpected 'x' after the closing parenthesis"),
    ("States.Format('x)", "unterminated string literal"),
    (r"States.Format('x\')", "unterminated string literal"),
    ("States.Format('x\\", "dangling backslash"),
    (r"States.Format('a\nb')", r"invalid escape '\n'"),
    ("States.Array(1 2)", "expected ',' or ')' in the arguments of States.Array, found '2'"),
    ("States.Array(1,)", "expected an argument of States.Array, found ')'"),
    ("States.Array(,1)", "expected an argument of States.Array, found ','"),
    ("States.Array(#)", "unexpected character '#'"),
    ("States.Array(--1)", "'-' does not start a number"),
    ("States.Array", "expected '(' after States.Array, found the end of the text"),
    ("States.Array($.a[0)", "unterminated path argument"),
    ("'just a string'", "must start with a function name"),
    ("", "must start with a function name"),
    ("States.Array(foo)", "foo is not a valid argument of States.Array"),
], ids=["unclosed-call", "extra-closing-paren", "trailing-garbage", "unterminated-string",
        "escaped-closing-quote", "dangling-backslash", "invalid-escape", "missing-comma", "trailing-comma",
        "leading-comma", "stray-character", "double-minus", "name-without-parens", "unbalanced-path-bracket",
        "bare-literal", "empty-text", "bare-word"])
def test_syntax_errors_are_compile_errors(text, message):
    assert message in compile_error(text)


def test_syntax_errors_name_the_text_and_position():
    assert compile_error("States.Array(1 2)") == (
        "Invalid intrinsic function call 'States.Array(1 2)': expected ',' or ')' in the arguments of "
        "States.Array, found '2' (at position 15)")


@pytest.mark.parametrize("text, expected", [
    ("States.Formatt('x')", "States.Formatt is not an intrinsic function (did you mean States.Format?)"),
    ("States.format('x')", "States.format is not an intrinsic function (did you mean States.Format?)"),
    ("States.ArrayLenght($.a)", "States.ArrayLenght is not an intrinsic function (did you mean States.ArrayLength?)"),
    ("States.Uuid()", "States.Uuid is not an intrinsic function (did you mean States.UUID?)"),
    ("States.MathSubtract(1, 2)", "States.MathSubtract is not an intrinsic function"),
    ("States.Array(States.Nope())", "States.Nope is not an intrinsic function"),
    ("States.Array(Format('x'))", "Format is not a valid argument of States.Array (did you mean States.Format?)"),
], ids=["typo", "wrong-case", "transposed-letters", "uuid-case", "no-close-match", "nested-unknown",
        "missing-States-prefix"])
def test_unknown_functions_are_named_with_a_suggestion(text, expected):
    assert expected in compile_error(text)


@pytest.mark.parametrize("text, expected", [
    ("States.UUID(1)", "States.UUID expects no arguments but got 1"),
    ("States.ArrayLength()", "States.ArrayLength expects 1 argument but got 0"),
    ("States.ArrayGetItem(States.Array())", "States.ArrayGetItem expects 2 arguments but got 1"),
    ("States.JsonMerge(1, 2)", "States.JsonMerge expects 3 arguments but got 2"),
    ("States.MathRandom(1)", "States.MathRandom expects 2 or 3 arguments but got 1"),
    ("States.MathRandom(1, 2, 3, 4)", "States.MathRandom expects 2 or 3 arguments but got 4"),
    ("States.Format()", "States.Format expects at least 1 argument but got 0"),
    ("States.Array(States.Hash('x'))", "States.Hash expects 2 arguments but got 1"),
], ids=["uuid-takes-none", "one-expected", "two-expected", "three-expected", "optional-seed-too-few",
        "optional-seed-too-many", "variadic-minimum", "nested-call-arity"])
def test_wrong_argument_counts_are_compile_errors(text, expected):
    assert expected in compile_error(text)


@pytest.mark.parametrize("value", [None, 5, ["States.UUID()"]], ids=["none", "number", "list"])
def test_non_string_definitions_are_compile_errors(value):
    assert "must be a string" in compile_error(value)


# --------------------------------------------------------------------------------------- runtime error shape

def test_runtime_failures_are_states_runtime_naming_the_whole_expression_verbatim():
    text = "States.Array( States.ArrayGetItem(States.Array(1,2),  7) )"
    error = failure(text)
    assert error.error == "States.Runtime"
    assert error.cause == f"The function '{text}' had the following error: Index 7 out of bounds for length 2"


# ---------------------------------------------------------------------------------------- compiled object

def test_compiled_call_is_immutable_and_keeps_its_text():
    call = compile_intrinsic("States.Array(1)")
    assert call.text == "States.Array(1)" and call.name == "States.Array"
    with pytest.raises(AttributeError):
        call.text = "States.UUID()"


def test_evaluation_does_not_parse_again(monkeypatch):
    call = compile_intrinsic("States.Format('{} {}', 'a', States.MathAdd(1, 2))")

    def no_parsing(*_args):
        raise AssertionError("parsed during evaluation")

    monkeypatch.setattr(intrinsics, "_tokenize", no_parsing)
    monkeypatch.setattr(intrinsics, "_Parser", no_parsing)
    assert call.evaluate(EMPTY) == "a 3"
    assert call.evaluate(EMPTY) == "a 3"


def test_evaluation_does_not_change_its_arguments():
    call = compile_intrinsic("States.JsonMerge(States.StringToJson('{\"a\": 1}'), States.StringToJson('{\"b\": 2}'), false)")
    first = call.evaluate(EMPTY)
    first["c"] = 3
    assert call.evaluate(EMPTY) == {"a": 1, "b": 2}


@pytest.mark.parametrize("value, expected", [
    (1.0, "1.0"), (-2.5, "-2.5"), (0.001, "0.001"), (0.0001, "1.0E-4"), (9999999.0, "9999999.0"),
    (1e7, "1.0E7"), (123456.789, "123456.789"), (-3e-5, "-3.0E-5"), (0.0, "0.0"), (1e20, "1.0E20"),
    (12345678.9, "1.23456789E7"),
], ids=["one", "negative", "thousandth", "ten-thousandth", "below-ten-million", "ten-million", "plain",
        "negative-small", "zero", "huge", "sci-with-fraction"])
def test_numbers_print_like_java_double_to_string(value, expected):
    assert intrinsics.java_double(value) == expected


# ------------------------------------------------------------------------------------------ path arguments

INPUT = {"fst": [1, 2, 3], "zero": 0, "no": False, "empty": "", "nothing": None, "tpl": "n={}",
         "obj": {"Arg1": 1, "Arg2": []}, "name": "Arnav", "items": [{"v": 1}, {"v": 2}]}
CONTEXT = {"StateMachine": {"Name": "machine-one"}, "Execution": {"Input": {"x": "y"}}}
VARIABLES = {"greeting": "Hi", "count": 0, "flag": False, "list": [3, 4]}
SCOPE = Scope(INPUT, CONTEXT, VARIABLES)


@needs_paths
@pytest.mark.parametrize("text, expected", [
    ("States.Array($.zero, $.no, $.empty, $.nothing)", [0, False, "", None]),
    ("States.Format('{}|{}|{}|{}', $.zero, $.no, $.empty, $.nothing)", "0|false||null"),
    ("States.Format($.tpl, 1)", "n=1"),
    ("States.Format('Hello, my name is {}.', $.name)", "Hello, my name is Arnav."),
    ("States.Format('{}', $.obj)", "{Arg1=1, Arg2=[]}"),
    ("States.ArrayLength($.fst)", 3),
    ("States.ArrayGetItem($.fst, $.zero)", 1),
    ("States.JsonToString($.obj)", '{"Arg1":1,"Arg2":[]}'),
    ("States.JsonToString($)", None),
    ("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)", "machine"),
    ("States.JsonToString($$.Execution.Input)", '{"x":"y"}'),
    ("States.Format('{} {}', $greeting, $count)", "Hi 0"),
    ("States.Array($flag)", [False]),
    ("States.ArrayLength($list)", 2),
    ("States.ArrayGetItem($list, 1)", 4),
    ("States.Array($.items[1].v)", [2]),
], ids=["falsy-values-are-values", "falsy-values-formatted", "template-from-path", "doc-example",
        "object-from-path", "array-from-path", "index-from-path-zero", "json-to-string-path", "whole-input",
        "context-path", "context-object", "variables", "false-variable", "variable-array", "variable-indexed",
        "indexed-path"])
def test_path_arguments(text, expected):
    result = run(text, SCOPE)
    if text == "States.JsonToString($)":
        import json
        assert json.loads(result) == INPUT
    else:
        assert result == expected


@needs_paths
def test_references_list_every_path_argument():
    call = compile_intrinsic("States.Format('{} {}', $.a.b, States.Array($$.Execution.Id, $var))")
    assert call.references == ("$.a.b", "$$.Execution.Id", "$var")


@needs_paths
@pytest.mark.parametrize("text, field", [
    ("States.Format('{}', $.nope)", "$.nope"),
    ("States.Format('{} {}', $.zero, $.a.b)", "$.a.b"),
    ("States.Format('{}', States.Format('{}', $.nope))", "$.nope"),
    ("States.ArrayLength($.nope)", "$.nope"),
    ("States.Format('{}', $$.Nope.Deep)", "$.Nope.Deep"),
], ids=["missing-field", "later-argument-named", "nested-call-names-whole-expression", "other-function",
        "context-path-shown-as-dollar"])
def test_unresolvable_path_argument_fails_with_the_aws_cause(text, field):
    error = failure(text, Scope({"zero": 0}, CONTEXT, {}))
    assert error.error == "States.Runtime"
    assert error.cause == (f"The function '{text}' had the following error: The JsonPath argument for the field "
                           f"'{field}' could not be found in the input '{{\"zero\":0}}'")


@needs_paths
def test_invalid_path_argument_is_a_compile_error():
    message = compile_error("States.Array($$$)")
    assert message.startswith("Invalid path argument '$$$' of States.Array in 'States.Array($$$)': ")
