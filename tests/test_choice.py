"""Choice rules (QueryLanguage JSONPath): operators, AWS type rules, missing paths, And/Or/Not, errors, describe()."""
from __future__ import annotations

import dataclasses
import time

import pytest

pytest.importorskip("statemill.engine.paths")  # choice compiles its paths with it

from statemill.engine import choice  # noqa: E402
from statemill.engine.errors import CompileError, StatesError  # noqa: E402
from statemill.engine.scope import Scope  # noqa: E402


_UNSET = object()


def holds(rule: dict, value=None, *, data=_UNSET, context=None, variables=None) -> bool:
    """Compile ``rule`` (its Variable defaults to $.v) and evaluate it with ``value`` at $.v (or ``data`` as $)."""
    rule = {"Variable": "$.v", **rule} if not ({"And", "Or", "Not"} & rule.keys()) else rule
    scope = Scope({"v": value} if data is _UNSET else data, context or {}, variables or {})
    return choice.compile_rule({**rule, "Next": "X"}).matches(scope)


def runtime_cause(rule: dict, data) -> str:
    with pytest.raises(StatesError) as info:
        choice.compile_rule(rule).matches(Scope(data))
    assert info.value.error == "States.Runtime"
    return info.value.cause


def compile_error(rule) -> CompileError:
    with pytest.raises(CompileError) as info:
        choice.compile_rule(rule)
    return info.value


def invalid_path_cause(path: str) -> str:
    return f"Invalid path '{path}': The choice state's condition path references an invalid value."


# --- the operator set ------------------------------------------------------------------------------------------------

def test_operators_are_the_39_comparisons_of_the_language():
    orderings = ["Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"]
    expected = {f"{kind}{o}{p}" for kind in ("String", "Numeric", "Timestamp") for o in orderings for p in ("", "Path")}
    expected |= {"StringMatches", "BooleanEquals", "BooleanEqualsPath", "IsNull", "IsPresent", "IsNumeric",
                 "IsString", "IsBoolean", "IsTimestamp"}
    assert choice.OPERATORS == expected
    assert len(choice.OPERATORS) == 39
    assert choice.BOOLEAN_OPERATORS == {"And", "Or", "Not"}


def test_every_operator_compiles_and_evaluates():
    samples = {"String": "b", "Numeric": 2, "Boolean": True, "Timestamp": "2020-01-01T00:00:00Z"}
    for op in sorted(choice.OPERATORS):
        if op.endswith("Path"):
            kind = next(k for k in samples if op.startswith(k))
            rule, data = {"Variable": "$.v", op: "$.w"}, {"v": samples[kind], "w": samples[kind]}
        elif op.startswith("Is"):
            rule, data = {"Variable": "$.v", op: True}, {"v": 1}
        elif op == "StringMatches":
            rule, data = {"Variable": "$.v", op: "*"}, {"v": "x"}
        else:
            kind = next(k for k in samples if op.startswith(k))
            rule, data = {"Variable": "$.v", op: samples[kind]}, {"v": samples[kind]}
        compiled = choice.compile_rule(rule)
        assert isinstance(compiled, choice.Rule)
        assert isinstance(compiled.matches(Scope(data)), bool), op


# --- type mismatch is false, never an error --------------------------------------------------------------------------

NOT_A_STRING = [0, 1.5, False, True, None, [], [""], {}, {"a": "x"}]
NOT_A_NUMBER = ["", "0", "1", False, True, None, [], [0], {}]
NOT_A_BOOLEAN = [0, 1, 0.0, "", "true", "false", None, [], {}]
NOT_A_TIMESTAMP = [0, 1349809255, False, None, [], {}, "", " ", "2023-02-24", "2023-02-24 12:15:56.832957"]


@pytest.mark.parametrize("op", ["StringEquals", "StringLessThan", "StringGreaterThan", "StringLessThanEquals",
                                "StringGreaterThanEquals"])
@pytest.mark.parametrize("value", NOT_A_STRING, ids=repr)
def test_string_operators_are_false_for_non_strings(op, value):
    assert holds({op: ""}, value) is False
    assert holds({op: "zzz"}, value) is False


@pytest.mark.parametrize("op", ["NumericEquals", "NumericLessThan", "NumericGreaterThan", "NumericLessThanEquals",
                                "NumericGreaterThanEquals"])
@pytest.mark.parametrize("value", NOT_A_NUMBER, ids=repr)
def test_numeric_operators_are_false_for_non_numbers(op, value):
    assert holds({op: 0}, value) is False
    assert holds({op: 1}, value) is False


@pytest.mark.parametrize("value", NOT_A_BOOLEAN, ids=repr)
@pytest.mark.parametrize("operand", [True, False])
def test_boolean_equals_is_false_for_non_booleans(value, operand):
    assert holds({"BooleanEquals": operand}, value) is False


@pytest.mark.parametrize("op", ["TimestampEquals", "TimestampLessThan", "TimestampGreaterThan",
                                "TimestampLessThanEquals", "TimestampGreaterThanEquals"])
@pytest.mark.parametrize("value", NOT_A_TIMESTAMP, ids=repr)
def test_timestamp_operators_are_false_for_non_timestamps(op, value):
    assert holds({op: "1970-01-01T00:00:00Z"}, value) is False
    assert holds({op: "9999-12-31T23:59:59Z"}, value) is False


@pytest.mark.parametrize("op, other", [
    ("StringEqualsPath", 0), ("StringLessThanPath", None), ("NumericEqualsPath", "0"),
    ("NumericGreaterThanEqualsPath", False), ("BooleanEqualsPath", 0), ("BooleanEqualsPath", "false"),
    ("TimestampEqualsPath", "not a time"), ("TimestampLessThanPath", 0),
], ids=lambda x: repr(x) if not isinstance(x, str) or "Path" not in x else x)
def test_path_operand_of_the_wrong_type_is_false(op, other):
    own = {"String": "", "Numeric": 0, "Boolean": False, "Timestamp": "2020-01-01T00:00:00Z"}
    value = next(v for k, v in own.items() if op.startswith(k))
    assert holds({op: "$.w"}, data={"v": value, "w": other}) is False


# --- numbers ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op, operand, value, expected", [
    ("NumericEquals", 0, 0, True),
    ("NumericEquals", 0, 0.0, True),
    ("NumericEquals", 0.0, 0, True),
    ("NumericEquals", 0, -0.0, True),
    ("NumericEquals", 1, 1.0, True),
    ("NumericEquals", 1.0, 1, True),
    ("NumericEquals", 2.22, 2.22, True),
    ("NumericEquals", 1, 1.1, False),
    ("NumericEquals", 0, 1, False),
    ("NumericEquals", 2 ** 53, 2 ** 53 + 1, True),  # both round to the same IEEE double
    ("NumericEquals", 0.1 + 0.2, 0.3, False),
    ("NumericLessThan", 0, -1, True),
    ("NumericLessThan", 0, 0, False),
    ("NumericLessThan", 1, 0.999, True),
    ("NumericLessThanEquals", 0, 0.0, True),
    ("NumericLessThanEquals", 0, 0.5, False),
    ("NumericGreaterThan", 0, 0.0, False),
    ("NumericGreaterThan", 100, 100.5, True),
    ("NumericGreaterThan", -1, 0, True),
    ("NumericGreaterThanEquals", 0, 0, True),
    ("NumericGreaterThanEquals", 1, 0, False),
    ("NumericGreaterThan", 1e308, 10 ** 400, True),  # an int beyond doubles counts as infinity, not an error
])
def test_numeric_comparison_uses_ieee_doubles(op, operand, value, expected):
    assert holds({op: operand}, value) is expected


@pytest.mark.parametrize("value", [True, False], ids=["true_is_not_1", "false_is_not_0"])
def test_booleans_are_not_numbers(value):
    assert holds({"NumericEquals": int(value)}, value) is False
    assert holds({"NumericGreaterThanEquals": 0}, value) is False


# --- strings ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op, operand, value, expected", [
    ("StringEquals", "", "", True),
    ("StringEquals", "HelloWorld", "HelloWorld", True),
    ("StringEquals", "HelloWorld", "helloworld", False),
    ("StringEquals", "     ", " ", False),
    ("StringEquals", "\t\r\n", "\t\n", False),
    ("StringEquals", "\u00e9", "e\u0301", False),  # no Unicode normalisation
    ("StringLessThan", "", "", False),
    ("StringLessThan", "AB", "A", True),
    ("StringLessThan", "a", "B", True),  # code point order: "B" (66) < "a" (97)
    ("StringLessThan", "A", "AB", False),
    ("StringLessThan", "z", "\u00e9", False),  # é (233) sorts after z (122)
    ("StringLessThan", "\U0001F600", "\uffff", True),  # by code point, not by UTF-16 unit
    ("StringLessThanEquals", "", "", True),
    ("StringLessThanEquals", "A", "AB", False),
    ("StringGreaterThan", "", "", False),
    ("StringGreaterThan", "A ", "A", False),
    ("StringGreaterThan", "", "a", True),
    ("StringGreaterThan", "10", "9", True),  # strings, not numbers
    ("StringGreaterThanEquals", "", "", True),
    ("StringGreaterThanEquals", "A", "AB", True),
])
def test_strings_compare_by_code_point(op, operand, value, expected):
    assert holds({op: operand}, value) is expected


# --- booleans --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("operand, value, expected", [
    (True, True, True), (False, False, True), (True, False, False), (False, True, False),
])
def test_boolean_equals(operand, value, expected):
    assert holds({"BooleanEquals": operand}, value) is expected


# --- timestamps ------------------------------------------------------------------------------------------------------

VALID_TIMESTAMPS = [
    "2012-10-09T19:00:55Z",
    "2012-10-09T19:00:55+01:00",
    "2012-10-09T19:00:55-00:00",
    "2012-10-09T19:00:55.5Z",
    "2016-03-05T21:29:29.243167252Z",
    "2000-02-29T00:00:00Z",  # leap year (divisible by 400)
    "2024-02-29T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999+14:00",
]
INVALID_TIMESTAMPS = [
    "", "2012-10-09", "19:00:55Z",
    "2012-10-09T19:00:55",  # no offset
    "2012-10-09 19:00:55Z",  # space instead of T
    "2012-10-09t19:00:55Z",  # lowercase t
    "2012-10-09T19:00:55z",  # lowercase z
    "2012-10-09T19:00Z",  # no seconds
    "2012-10-09T19:00:55+0100",  # offset without colon
    "2012-10-09T19:00:55+01",
    "2016-13-05T21:29:29Z",  # month 13
    "2016-00-05T21:29:29Z",
    "2023-02-29T00:00:00Z",  # not a leap year
    "1900-02-29T00:00:00Z",  # centuries are not leap years unless divisible by 400
    "2023-04-31T00:00:00Z",
    "2023-01-00T00:00:00Z",
    "2023-01-01T24:00:00Z",
    "2023-01-01T23:60:00Z",
    "2016-12-31T23:59:60Z",  # leap second
    "2012-10-09T19:00:55.Z",
    "2012-10-09T19:00:55.1234567891Z",  # more than nanoseconds
    "2012-10-09T19:00:55+24:00",
    "05-12-2016T21:29:29Z",
    " 2012-10-09T19:00:55Z",
    "2012-10-09T19:00:55Z ",
    "\uff12012-10-09T19:00:55Z",  # a non-ASCII digit
]


@pytest.mark.parametrize("text", VALID_TIMESTAMPS)
def test_valid_timestamps_are_timestamps(text):
    assert choice.parse_timestamp(text) is not None
    assert holds({"IsTimestamp": True}, text) is True
    assert holds({"TimestampEquals": text}, text) is True


@pytest.mark.parametrize("text", INVALID_TIMESTAMPS)
def test_invalid_timestamps_are_not_timestamps(text):
    assert choice.parse_timestamp(text) is None
    assert holds({"IsTimestamp": True}, text) is False
    assert holds({"IsTimestamp": False}, text) is True
    assert holds({"TimestampLessThan": "9999-12-31T23:59:59Z"}, text) is False


@pytest.mark.parametrize("text", INVALID_TIMESTAMPS[:12])
def test_invalid_timestamp_operand_is_a_compile_error(text):
    err = compile_error({"Variable": "$.t", "TimestampEquals": text})
    assert err.pointer == "/TimestampEquals"
    assert "TimestampEquals" in str(err)


def test_parse_timestamp_gives_epoch_nanoseconds():
    assert choice.parse_timestamp("1970-01-01T00:00:00Z") == 0
    assert choice.parse_timestamp("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert choice.parse_timestamp("1970-01-01T01:00:00+01:00") == 0
    assert choice.parse_timestamp("1969-12-31T23:59:59.000000001Z") == -999_999_999
    assert choice.parse_timestamp("2012-10-09T19:00:55Z") == 1349809255 * 10 ** 9
    assert choice.parse_timestamp(0) is None


@pytest.mark.parametrize("op, operand, value, expected", [
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", False),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T20:00:55+01:00", True),  # same instant
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T14:30:55-04:30", True),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55.000Z", True),
    ("TimestampEquals", "2012-10-09T19:00:55.5Z", "2012-10-09T19:00:55.500000000Z", True),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55+01:00", False),
    ("TimestampGreaterThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", False),
    ("TimestampGreaterThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", True),
    ("TimestampGreaterThan", "2012-10-09T19:00:55.25Z", "2012-10-09T19:00:55.5Z", True),
    ("TimestampGreaterThan", "2012-10-09T19:00:55Z", "2012-10-09T19:30:00+01:00", False),  # 18:30Z is earlier
    ("TimestampGreaterThanEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
    ("TimestampLessThan", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", True),
    ("TimestampLessThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", False),
    ("TimestampLessThan", "2000-01-01T00:00:00Z", "1999-12-31T23:59:59.999999999Z", True),
    ("TimestampLessThanEquals", "2012-10-09T19:00:56Z", "2012-10-09T19:00:56Z", True),
    ("TimestampLessThanEquals", "2012-10-09T19:00:56Z", "2012-10-09T19:00:57Z", False),
])
def test_timestamps_compare_as_instants(op, operand, value, expected):
    assert holds({op: operand}, value) is expected


# --- StringMatches ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, value, expected", [
    ("log-*.txt", "log-2024.txt", True),
    ("log-*.txt", "log-.txt", True),
    ("log-*.txt", "log-2024.txt.bak", False),
    ("log-*.txt", "xlog-1.txt", False),
    ("*.log", "zebra.log", True),
    ("foo*.*", "foobar.zebra", True),
    ("foo*.*", "foobar", False),
    ("*", "", True),
    ("*", "anything at all", True),
    ("**", "", True),
    ("", "", True),
    ("", " ", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "acb", False),
    ("a*a", "a", False),  # the two literal a's cannot overlap
    ("a*a", "aa", True),
    ("*ab*ab*", "abab", True),
    ("*ab*ab*", "aba", False),
    ("abc", "ABC", False),  # case sensitive
    ("a*", "a\nb", True),  # * also spans newlines
    ("a?c", "abc", False),  # ? is literal
    ("a?c", "a?c", True),
    ("[ab]", "a", False),  # brackets are literal
    ("[ab]", "[ab]", True),
    ("a.c", "abc", False),  # . is literal
    ("a+", "aa", False),
    ("^a$", "^a$", True),
    ("\\*", "*", True),  # \* is a literal star
    ("\\*", "x", False),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("*\\**", "x*y", True),
    ("*\\**", "xy", False),
    ("\\\\", "\\", True),  # \\ is a literal backslash
    ("\\\\*", "\\abc", True),
    ("\\\\*", "abc", False),
    ("C:\\dir", "C:\\dir", True),  # a backslash before another character stays literal
])
def test_string_matches_only_star_is_special(pattern, value, expected):
    assert holds({"StringMatches": pattern}, value) is expected


@pytest.mark.parametrize("value", NOT_A_STRING, ids=repr)
def test_string_matches_is_false_for_non_strings(value):
    assert holds({"StringMatches": "*"}, value) is False


def test_string_matches_has_no_catastrophic_backtracking():
    rule = choice.compile_rule({"Variable": "$.v", "StringMatches": "*a" * 30 + "b"})
    started = time.perf_counter()
    assert rule.matches(Scope({"v": "a" * 20000})) is False
    assert time.perf_counter() - started < 1.0


# --- type tests ------------------------------------------------------------------------------------------------------

TYPE_TABLE = [
    # value, IsNull, IsNumeric, IsString, IsBoolean, IsTimestamp
    (None, True, False, False, False, False),
    (0, False, True, False, False, False),
    (0.0, False, True, False, False, False),
    (1.5, False, True, False, False, False),
    (False, False, False, False, True, False),
    (True, False, False, False, True, False),
    ("", False, False, True, False, False),
    (" ", False, False, True, False, False),
    ("0", False, False, True, False, False),
    ("2012-10-09T19:00:55Z", False, False, True, False, True),
    ("2012-10-09T19:00:55", False, False, True, False, False),
    ([], False, False, False, False, False),
    ([""], False, False, False, False, False),
    ({}, False, False, False, False, False),
    ({"A": 0}, False, False, False, False, False),
]


@pytest.mark.parametrize("row", TYPE_TABLE, ids=lambda row: repr(row[0]))
@pytest.mark.parametrize("index, op", list(enumerate(["IsNull", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"],
                                                     start=1)))
def test_type_tests_and_their_negation(row, index, op):
    value, expected = row[0], row[index]
    assert holds({op: True}, value) is expected
    assert holds({op: False}, value) is (not expected)


@pytest.mark.parametrize("value", [None, 0, False, "", [], {}], ids=repr)
def test_is_present_is_true_for_any_value_even_falsy_ones(value):
    assert holds({"IsPresent": True}, value) is True
    assert holds({"IsPresent": False}, value) is False


def test_is_present_is_false_for_a_missing_path_without_error():
    assert holds({"Variable": "$.nope", "IsPresent": True}, data={}) is False
    assert holds({"Variable": "$.nope", "IsPresent": False}, data={}) is True
    assert holds({"Variable": "$.a.b", "IsPresent": True}, data={"a": "text"}) is False


# --- missing paths ---------------------------------------------------------------------------------------------------

MISSING_VARIABLE_RULES = [
    {"StringEquals": ""}, {"StringLessThan": "a"}, {"StringMatches": "*"}, {"NumericEquals": 0},
    {"NumericGreaterThan": 0}, {"BooleanEquals": False}, {"TimestampEquals": "2020-01-01T00:00:00Z"},
    {"IsNull": True}, {"IsNull": False}, {"IsNumeric": False}, {"IsString": True}, {"IsBoolean": False},
    {"IsTimestamp": False}, {"StringEqualsPath": "$.w"}, {"NumericLessThanPath": "$.w"},
    {"BooleanEqualsPath": "$.w"}, {"TimestampGreaterThanPath": "$.w"},
]


@pytest.mark.parametrize("rule", MISSING_VARIABLE_RULES,
                         ids=lambda r: next(iter(r)) + "_" + repr(next(iter(r.values()))))
def test_missing_variable_is_a_runtime_error(rule):
    cause = runtime_cause({"Variable": "$.missing", **rule, "Next": "X"}, {"w": 0, "v": None})
    assert cause == invalid_path_cause("$.missing")


@pytest.mark.parametrize("op, value", [
    ("StringEqualsPath", "a"), ("NumericEqualsPath", 0), ("BooleanEqualsPath", False),
    ("TimestampEqualsPath", "2020-01-01T00:00:00Z"), ("StringGreaterThanPath", 5),
])
def test_missing_path_operand_is_a_runtime_error(op, value):
    cause = runtime_cause({"Variable": "$.v", op: "$.limit"}, {"v": value})
    assert cause == invalid_path_cause("$.limit")


def test_null_value_is_present_not_missing():
    assert holds({"IsNull": True}, None) is True
    assert holds({"NumericEquals": 0}, None) is False
    assert holds({"StringEqualsPath": "$.w"}, data={"v": None, "w": None}) is False


# --- *Path operands, context and variables ---------------------------------------------------------------------------

@pytest.mark.parametrize("op, value, other, expected", [
    ("StringEqualsPath", "", "", True),
    ("StringEqualsPath", "Hello", "Hello", True),
    ("StringEqualsPath", "\t\n", "\t\r\n", False),
    ("StringLessThanPath", "A", "AB", True),
    ("StringGreaterThanEqualsPath", "AB", "A", True),
    ("StringLessThanEqualsPath", "", "", True),
    ("NumericEqualsPath", 0, 0.0, True),
    ("NumericEqualsPath", 1, 1.0, True),
    ("NumericEqualsPath", 0, 1, False),
    ("NumericLessThanPath", 0, 1, True),
    ("NumericGreaterThanPath", 1, 1, False),
    ("NumericLessThanEqualsPath", 0.0, 0, True),
    ("NumericGreaterThanEqualsPath", 1, 0, True),
    ("BooleanEqualsPath", False, False, True),
    ("BooleanEqualsPath", True, True, True),
    ("BooleanEqualsPath", False, True, False),
    ("TimestampEqualsPath", "2012-10-09T19:00:55Z", "2012-10-09T21:00:55+02:00", True),
    ("TimestampLessThanPath", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", True),
    ("TimestampGreaterThanPath", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", False),
    ("TimestampLessThanEqualsPath", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", False),
    ("TimestampGreaterThanEqualsPath", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
])
def test_path_operands_compare_two_values_of_the_input(op, value, other, expected):
    assert holds({op: "$.w"}, data={"v": value, "w": other}) is expected


def test_variable_can_read_the_context_object():
    context = {"Execution": {"Input": {"input-value": 0}}}
    rule = {"Variable": "$$.Execution.Input['input-value']", "NumericLessThanEquals": 0}
    assert holds(rule, data={}, context=context) is True


def test_variable_can_read_a_workflow_variable():
    assert holds({"Variable": "$count", "NumericEquals": 0}, data={}, variables={"count": 0}) is True
    assert holds({"Variable": "$flag", "BooleanEquals": False}, data={}, variables={"flag": False}) is True


def test_path_operand_can_read_a_workflow_variable():
    rule = {"Variable": "$.amount", "NumericGreaterThanPath": "$limit"}
    assert holds(rule, data={"amount": 5}, variables={"limit": 0}) is True
    assert holds(rule, data={"amount": -1}, variables={"limit": 0}) is False


def test_undefined_workflow_variable_is_a_runtime_error():
    with pytest.raises(StatesError) as info:
        choice.compile_rule({"Variable": "$nope", "IsNull": True}).matches(Scope({}, {}, {}))
    assert info.value.error == "States.Runtime"
    assert info.value.cause == invalid_path_cause("$nope")


def test_variable_can_be_the_whole_input():
    assert holds({"Variable": "$", "NumericEquals": 3}, data=3) is True
    assert holds({"Variable": "$", "StringEquals": ""}, data="") is True
    assert holds({"Variable": "$", "IsNull": True}, data=None) is True


# --- And / Or / Not --------------------------------------------------------------------------------------------------

T = {"Variable": "$.t", "BooleanEquals": True}
F = {"Variable": "$.t", "BooleanEquals": False}
BOOM = {"Variable": "$.missing", "IsNull": True}  # raises States.Runtime when evaluated
DATA = {"t": True}


@pytest.mark.parametrize("rule, expected", [
    ({"And": [T]}, True),
    ({"And": [F]}, False),
    ({"And": [T, T, T]}, True),
    ({"And": [T, F]}, False),
    ({"Or": [F]}, False),
    ({"Or": [F, T]}, True),
    ({"Or": [F, F]}, False),
    ({"Not": T}, False),
    ({"Not": F}, True),
    ({"Not": {"Not": T}}, True),
    ({"And": [T, {"Or": [F, {"Not": F}]}]}, True),
    ({"Or": [{"And": [T, F]}, {"And": [F, T]}]}, False),
], ids=lambda x: repr(x) if isinstance(x, bool) else None)
def test_boolean_combinations(rule, expected):
    assert holds(rule, data=DATA) is expected


@pytest.mark.parametrize("rule", [
    {"And": [F, BOOM]},
    {"Or": [T, BOOM]},
    {"And": [T, {"Or": [T, BOOM]}]},
    {"Not": {"Or": [T, BOOM]}},
], ids=["and_stops_at_first_false", "or_stops_at_first_true", "nested_or_stops", "not_of_short_circuit"])
def test_and_or_short_circuit(rule):
    holds(rule, data=DATA)  # no States.Runtime for the missing path that is never evaluated


@pytest.mark.parametrize("rule", [{"And": [T, BOOM]}, {"Or": [F, BOOM]}, {"Not": BOOM}],
                         ids=["and", "or", "not"])
def test_missing_path_inside_a_combination_still_fails_when_evaluated(rule):
    assert runtime_cause(rule, DATA) == invalid_path_cause("$.missing")


def test_aws_docs_example_routes_by_first_matching_rule():
    rules = [
        choice.compile_rule({"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"}),
        choice.compile_rule({"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"}),
        choice.compile_rule({"And": [{"Variable": "$.value", "NumericGreaterThanEquals": 20},
                                     {"Variable": "$.value", "NumericLessThan": 30}], "Next": "ValueInTwenties"}),
    ]
    verdicts = [rule.matches(Scope({"type": "Private", "value": 22})) for rule in rules]
    assert verdicts == [False, False, True]


def test_comments_are_allowed_in_top_level_and_nested_rules():
    rule = {"And": [{"Variable": "$.status", "StringEquals": "complete", "Comment": "done?"}], "Comment": "c",
            "Next": "Done", "Assign": {"x": 1}}
    assert choice.compile_rule(rule).matches(Scope({"status": "complete"})) is True


# --- compile errors --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, pointer, words", [
    ({"Variable": "$.x", "NumericEquals": "5", "Next": "N"}, "/NumericEquals", ["NumericEquals", "number", '"5"']),
    ({"Variable": "$.x", "NumericEquals": True}, "/NumericEquals", ["number", "boolean"]),
    ({"Variable": "$.x", "NumericLessThan": None}, "/NumericLessThan", ["number", "null"]),
    ({"Variable": "$.x", "StringEquals": 0}, "/StringEquals", ["string", "number 0"]),
    ({"Variable": "$.x", "StringGreaterThan": None}, "/StringGreaterThan", ["string", "null"]),
    ({"Variable": "$.x", "BooleanEquals": "true"}, "/BooleanEquals", ["true or false", '"true"']),
    ({"Variable": "$.x", "BooleanEquals": 0}, "/BooleanEquals", ["true or false"]),
    ({"Variable": "$.x", "TimestampEquals": "2016-13-05T21:29:29Z"}, "/TimestampEquals", ["timestamp"]),
    ({"Variable": "$.x", "TimestampLessThan": 0}, "/TimestampLessThan", ["timestamp"]),
    ({"Variable": "$.x", "IsNull": "true"}, "/IsNull", ["IsNull", "true or false"]),
    ({"Variable": "$.x", "IsPresent": 1}, "/IsPresent", ["IsPresent", "true or false"]),
    ({"Variable": "$.x", "IsTimestamp": None}, "/IsTimestamp", ["true or false"]),
    ({"Variable": "$.x", "StringMatches": "log\\"}, "/StringMatches", ["backslash"]),
    ({"Variable": "$.x", "StringMatches": 5}, "/StringMatches", ["string"]),
    ({"Variable": "$.x", "Next": "N"}, "", ["no comparison operator", "$.x"]),
    ({"Next": "N"}, "", ["Variable"]),
    ({}, "", ["Variable"]),
    ({"Variable": "$.x", "IsNull": True, "IsString": True}, "/IsString", ["exactly one", "IsNull", "IsString"]),
    ({"Variable": "$.x", "StringEquals": "a", "NumericEquals": 1}, "/NumericEquals", ["exactly one"]),
    ({"And": [T], "Or": [T]}, "/Or", ["exactly one"]),
    ({"Variable": "$.x", "And": [T]}, "/Variable", ["Variable", "And"]),
    ({"NumericEquals": 1, "Next": "N"}, "", ["NumericEquals", "Variable"]),
    ({"Variable": "amount", "IsNull": True}, "/Variable", ["Variable", "amount"]),
    ({"Variable": "$.a[", "IsNull": True}, "/Variable", ["Variable"]),
    ({"Variable": 5, "IsNull": True}, "/Variable", ["Variable", "path"]),
    ({"Variable": None, "IsNull": True}, "/Variable", ["Variable", "path"]),
    ({"Variable": "$.x", "NumericEqualsPath": "limit"}, "/NumericEqualsPath", ["NumericEqualsPath", "limit"]),
    ({"Variable": "$.x", "TimestampLessThanPath": 5}, "/TimestampLessThanPath", ["path"]),
    ({"Variable": "$.x", "StringEqualsPath": "$.a["}, "/StringEqualsPath", ["StringEqualsPath"]),
    ({"And": []}, "/And", ["at least one"]),
    ({"Or": []}, "/Or", ["at least one"]),
    ({"And": T}, "/And", ["list"]),
    ({"Or": "nope"}, "/Or", ["list"]),
    ({"Not": [T]}, "/Not", ["single rule"]),
    ({"Not": None}, "/Not", ["single rule"]),
    ({"And": [T, {"Variable": "$.x", "NumericEquals": "5"}]}, "/And/1/NumericEquals", ["NumericEquals"]),
    ({"Or": [T, {"Not": {"Variable": "$.x"}}]}, "/Or/1/Not", ["no comparison operator"]),
    ({"And": [T, 5]}, "/And/1", ["object"]),
    ({"Not": {"And": [T, {"Variable": "$.x", "IsNull": True, "Next": "N"}]}}, "/Not/And/1/Next", ["top-level"]),
    ({"Not": {**T, "Assign": {}}}, "/Not/Assign", ["top-level"]),
    ({"Variable": "$.x", "NumericEqual": 1}, "/NumericEqual", ["NumericEqual", "NumericEquals"]),
    ({"Variable": "$.x", "IsNull": True, "Default": "N"}, "/Default", ["Default"]),
    ({"Condition": "{% true %}", "Next": "N"}, "/Condition", ["JSONata"]),
    ({"Variable": "$.x", "IsNull": True, "a/b": 1}, "/a~1b", ["a/b"]),
    (["not", "a", "rule"], "", ["object"]),
    (None, "", ["object"]),
], ids=lambda x: x if isinstance(x, str) and x.startswith("/") else None)
def test_compile_errors_are_located_and_clear(rule, pointer, words):
    err = compile_error(rule)
    assert err.pointer == pointer
    for word in words:
        assert word in str(err), (word, str(err))


# --- describe() ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, text", [
    ({"Variable": "$.amount", "NumericGreaterThan": 100}, "$.amount > 100"),
    ({"Variable": "$.amount", "NumericLessThanEquals": 0}, "$.amount <= 0"),
    ({"Variable": "$.ratio", "NumericEquals": 0.5}, "$.ratio == 0.5"),
    ({"Variable": "$.status", "StringEquals": "paid"}, '$.status == "paid"'),
    ({"Variable": "$.s", "StringEquals": ""}, '$.s == ""'),
    ({"Variable": "$.s", "StringEquals": "0"}, '$.s == "0"'),
    ({"Variable": "$.s", "StringLessThan": 'say "hi"'}, '$.s < "say \\"hi\\""'),
    ({"Variable": "$.flag", "BooleanEquals": False}, "$.flag == false"),
    ({"Variable": "$.ts", "TimestampGreaterThanEquals": "2024-01-01T00:00:00Z"}, "$.ts >= 2024-01-01T00:00:00Z"),
    ({"Variable": "$.ts", "TimestampGreaterThanEqualsPath": "$.limit"}, "$.ts >= $.limit"),
    ({"Variable": "$.a", "StringEqualsPath": "$$.Execution.Name"}, "$.a == $$.Execution.Name"),
    ({"Variable": "$.name", "StringMatches": "log-*.txt"}, '$.name matches "log-*.txt"'),
    ({"Variable": "$.x", "IsNull": True}, "$.x is null"),
    ({"Variable": "$.x", "IsNull": False}, "$.x is not null"),
    ({"Variable": "$.retry", "IsPresent": True}, "$.retry is present"),
    ({"Variable": "$.retry", "IsPresent": False}, "$.retry is not present"),
    ({"Variable": "$.n", "IsNumeric": True}, "$.n is numeric"),
    ({"Variable": "$.s", "IsString": False}, "$.s is not a string"),
    ({"Variable": "$.b", "IsBoolean": True}, "$.b is a boolean"),
    ({"Variable": "$.t", "IsTimestamp": True}, "$.t is a timestamp"),
    ({"Variable": "$count", "NumericEquals": 0}, "$count == 0"),
    ({"And": [{"Variable": "$.status", "StringEquals": "paid"}, {"Variable": "$.retry", "IsPresent": True}]},
     '$.status == "paid" and $.retry is present'),
    ({"Not": {"Variable": "$.x", "IsNull": True}}, "not ($.x is null)"),
    ({"Or": [{"Variable": "$.a", "NumericEquals": 1},
             {"And": [{"Variable": "$.b", "NumericEquals": 2}, {"Variable": "$.c", "NumericEquals": 3}]}]},
     "$.a == 1 or ($.b == 2 and $.c == 3)"),
    ({"And": [{"Or": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.b", "NumericEquals": 2}]},
              {"Not": {"Variable": "$.c", "NumericEquals": 3}}]},
     "($.a == 1 or $.b == 2) and not ($.c == 3)"),
    ({"And": [{"Variable": "$.a", "NumericEquals": 1}]}, "$.a == 1"),
    ({"Or": [{"And": [{"Variable": "$.a", "NumericEquals": 1}]}, {"Variable": "$.b", "NumericEquals": 2}]},
     "$.a == 1 or $.b == 2"),
    ({"Not": {"And": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.b", "NumericEquals": 2}]}},
     "not ($.a == 1 and $.b == 2)"),
])
def test_describe_reads_as_plain_words(rule, text):
    compiled = choice.compile_rule({**rule, "Next": "N"})
    assert compiled.describe() == text
    assert text in repr(compiled)


# --- compiled once, evaluated many times -----------------------------------------------------------------------------

def test_compiled_rule_is_immutable():
    rule = choice.compile_rule({"And": [T], "Next": "N"})
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError)):
        rule.rules = ()  # type: ignore[attr-defined]


def test_compile_does_not_keep_a_reference_to_the_definition():
    definition = {"Variable": "$.v", "StringEquals": "a", "Next": "N"}
    rule = choice.compile_rule(definition)
    definition["StringEquals"] = "b"
    assert rule.matches(Scope({"v": "a"})) is True


def test_one_compiled_rule_evaluates_many_inputs():
    rule = choice.compile_rule({"Variable": "$.v", "NumericGreaterThan": 0, "Next": "N"})
    assert [rule.matches(Scope({"v": v})) for v in [-1, 0, 1, "1", None, 0.5]] == [False, False, True, False,
                                                                                  False, True]
