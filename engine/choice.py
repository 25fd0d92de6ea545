"""Choice state rules (QueryLanguage JSONPath), compiled once into immutable predicate objects.

AWS semantics kept here: a value of the wrong type makes a comparison false, never an error; a ``Variable`` or
``*Path`` operand that selects nothing fails the execution with ``States.Runtime``, except under ``IsPresent``,
which is then simply false. ``And``/``Or`` short-circuit, so a later rule's missing path raises nothing.
"""
from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from . import paths
from .errors import RUNTIME, CompileError, StatesError

__all__ = ["OPERATORS", "BOOLEAN_OPERATORS", "Rule", "compile_rule", "parse_timestamp"]

_MISSING = paths.MISSING
_NO = object()  # "this value has the wrong type for the comparison"

_ORDERINGS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "Equals": ("==", operator.eq),
    "LessThan": ("<", operator.lt),
    "GreaterThan": (">", operator.gt),
    "LessThanEquals": ("<=", operator.le),
    "GreaterThanEquals": (">=", operator.ge),
}
_IS_OPERATORS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")

# The comparison operators of a data-test rule (39: the And/Or/Not of BOOLEAN_OPERATORS make the 42 rule keys).
OPERATORS: frozenset[str] = frozenset(
    [f"{kind}{order}{suffix}" for kind in ("String", "Numeric", "Timestamp") for order in _ORDERINGS
     for suffix in ("", "Path")]
    + ["StringMatches", "BooleanEquals", "BooleanEqualsPath", *_IS_OPERATORS]
)
BOOLEAN_OPERATORS: frozenset[str] = frozenset({"And", "Or", "Not"})

_NESTED_FIELDS = frozenset({"Variable", "Comment"})
_TOP_FIELDS = _NESTED_FIELDS | {"Next", "Assign"}
_KNOWN_FIELDS = sorted(OPERATORS | BOOLEAN_OPERATORS | _TOP_FIELDS)


def _invalid_path(text: str) -> StatesError:
    return StatesError(RUNTIME,
                       f"Invalid path '{text}': The choice state's condition path references an invalid value.")


# --- value types ---------------------------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_double(value: int | float) -> float:
    """Numbers compare as IEEE doubles (as in AWS); an int too large for a double becomes +/-infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (works for year 0000 too)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def parse_timestamp(text: Any) -> int | None:
    """The instant ``text`` denotes, in nanoseconds since the epoch, or None if it is not a timestamp.

    Accepts RFC 3339 as the States language restricts it: ``YYYY-MM-DDThh:mm:ss[.f{1,9}]`` then ``Z`` or ``±hh:mm``,
    uppercase ``T`` and ``Z``, real calendar dates, no leap second (AWS rejects ``2016-13-05``, a missing offset and
    a space for ``T``)."""
    if not isinstance(text, str):
        return None
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (month == 2 and leap):
        return None
    offset = 0
    if m.group(8):
        off_hours, off_minutes = int(m.group(9)), int(m.group(10))
        if off_hours > 23 or off_minutes > 59:
            return None
        offset = (off_hours * 60 + off_minutes) * 60 * (-1 if m.group(8) == "-" else 1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000_000 + int((m.group(7) or "").ljust(9, "0"))


def _string_key(value: Any) -> Any:
    return value if isinstance(value, str) else _NO


def _numeric_key(value: Any) -> Any:
    return _as_double(value) if _is_number(value) else _NO


def _boolean_key(value: Any) -> Any:
    return value if isinstance(value, bool) else _NO


def _timestamp_key(value: Any) -> Any:
    instant = parse_timestamp(value)
    return _NO if instant is None else instant


_KINDS: dict[str, tuple[Callable[[Any], Any], str]] = {
    # kind: (value -> comparable key or _NO, what a literal operand must be)
    "String": (_string_key, "a string"),
    "Numeric": (_numeric_key, "a number"),
    "Boolean": (_boolean_key, "true or false"),
    "Timestamp": (_timestamp_key, 'an RFC 3339 timestamp such as "2024-01-31T09:30:00Z"'),
}

_TYPE_TESTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "IsNull": (lambda v: v is None, "null"),
    "IsNumeric": (_is_number, "numeric"),
    "IsString": (lambda v: isinstance(v, str), "a string"),
    "IsBoolean": (lambda v: isinstance(v, bool), "a boolean"),
    "IsTimestamp": (lambda v: parse_timestamp(v) is not None, "a timestamp"),
}


# --- StringMatches -------------------------------------------------------------------------------------------------

def _glob_segments(pattern: str) -> tuple[str, ...] | None:
    """Split a StringMatches pattern at its unescaped ``*``; ``\\*`` is a literal star, ``\\\\`` a backslash.

    A backslash before any other character stays a literal backslash. Returns None for a dangling final backslash."""
    segments, current, i = [], [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 == len(pattern):
                return None
            nxt = pattern[i + 1]
            if nxt in "*\\":
                current.append(nxt)
                i += 2
                continue
            current.append(char)
        elif char == "*":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    segments.append("".join(current))
    return tuple(segments)


def _glob_match(text: str, segments: tuple[str, ...]) -> bool:
    """Whole-string match where only ``*`` (zero or more characters) is special. Linear scans, no backtracking."""
    if len(segments) == 1:
        return text == segments[0]
    first, last = segments[0], segments[-1]
    if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for segment in segments[1:-1]:
        found = text.find(segment, position, end)
        if found < 0:
            return False
        position = found + len(segment)
    return True


# --- compiled rules ------------------------------------------------------------------------------------------------

class Rule:
    """A compiled Choice rule: ``matches(scope)`` evaluates it, ``describe()`` renders it in plain words."""

    __slots__ = ()

    def matches(self, scope: Any) -> bool:
        """True if the rule holds for ``scope``; raises StatesError(States.Runtime) for a path that selects nothing."""
        raise NotImplementedError

    def describe(self) -> str:
        """The rule in short plain words for diagrams and logs, e.g. ``$.amount > 100``."""
        raise NotImplementedError

    def _compound(self) -> bool:
        """Whether describe() joins several parts with and/or, so it needs parentheses inside another and/or."""
        return False

    def __repr__(self) -> str:
        return f"<Rule {self.describe()}>"


@dataclass(frozen=True, slots=True, repr=False)
class _Compare(Rule):
    """Variable <op> literal: the literal was converted to its comparable key at compile time."""
    variable: Any
    variable_text: str
    key: Callable[[Any], Any]
    compare: Callable[[Any, Any], bool]
    operand: Any
    text: str  # the describe() form, e.g. "$.amount > 100"

    def matches(self, scope: Any) -> bool:
        value = self.variable.get(scope, default=_MISSING)
        if value is _MISSING:
            raise _invalid_path(self.variable_text)
        left = self.key(value)
        return left is not _NO and self.compare(left, self.operand)

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, repr=False)
class _ComparePath(Rule):
    """Variable <op> value at another path (the *Path operators): both values must have the operator's type."""
    variable: Any
    variable_text: str
    key: Callable[[Any], Any]
    compare: Callable[[Any, Any], bool]
    other: Any
    other_text: str
    text: str

    def matches(self, scope: Any) -> bool:
        value = self.variable.get(scope, default=_MISSING)
        if value is _MISSING:
            raise _invalid_path(self.variable_text)
        other = self.other.get(scope, default=_MISSING)
        if other is _MISSING:
            raise _invalid_path(self.other_text)
        left = self.key(value)
        if left is _NO:
            return False
        right = self.key(other)
        return right is not _NO and self.compare(left, right)

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, repr=False)
class _Matches(Rule):
    variable: Any
    variable_text: str
    segments: tuple[str, ...]
    text: str

    def matches(self, scope: Any) -> bool:
        value = self.variable.get(scope, default=_MISSING)
        if value is _MISSING:
            raise _invalid_path(self.variable_text)
        return isinstance(value, str) and _glob_match(value, self.segments)

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, repr=False)
class _TypeTest(Rule):
    """IsNull, IsNumeric, IsString, IsBoolean, IsTimestamp: ``expected`` false negates the test."""
    variable: Any
    variable_text: str
    test: Callable[[Any], bool]
    expected: bool
    text: str

    def matches(self, scope: Any) -> bool:
        value = self.variable.get(scope, default=_MISSING)
        if value is _MISSING:
            raise _invalid_path(self.variable_text)
        return self.test(value) == self.expected

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, repr=False)
class _IsPresent(Rule):
    """The one operator for which a path selecting nothing is an answer (false) rather than an error."""
    variable: Any
    expected: bool
    text: str

    def matches(self, scope: Any) -> bool:
        return (self.variable.get(scope, default=_MISSING) is not _MISSING) == self.expected

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, repr=False)
class _And(Rule):
    rules: tuple[Rule, ...]

    def matches(self, scope: Any) -> bool:
        for rule in self.rules:
            if not rule.matches(scope):
                return False
        return True

    def describe(self) -> str:
        return " and ".join(_operand_text(rule) for rule in self.rules)

    def _compound(self) -> bool:
        return len(self.rules) > 1 or self.rules[0]._compound()


@dataclass(frozen=True, slots=True, repr=False)
class _Or(Rule):
    rules: tuple[Rule, ...]

    def matches(self, scope: Any) -> bool:
        for rule in self.rules:
            if rule.matches(scope):
                return True
        return False

    def describe(self) -> str:
        return " or ".join(_operand_text(rule) for rule in self.rules)

    def _compound(self) -> bool:
        return len(self.rules) > 1 or self.rules[0]._compound()


@dataclass(frozen=True, slots=True, repr=False)
class _Not(Rule):
    rule: Rule

    def matches(self, scope: Any) -> bool:
        return not self.rule.matches(scope)

    def describe(self) -> str:
        return f"not ({self.rule.describe()})"


def _operand_text(rule: Rule) -> str:
    text = rule.describe()
    return f"({text})" if rule._compound() else text


# --- compiling -----------------------------------------------------------------------------------------------------

def _error(message: str, pointer: str) -> CompileError:
    err = CompileError(message)
    err.pointer = pointer
    return err


def _pointer(base: str, key: Any) -> str:
    return f"{base}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _shown(value: Any) -> str:
    """A JSON value as the user wrote it, kept short, for error messages and describe()."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {_shown(value)}"
    if _is_number(value):
        return f"number {_shown(value)}"
    if isinstance(value, str):
        return f"string {_shown(value)}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def compile_rule(rule: Mapping) -> Rule:
    """Compile one Choice rule (a ``Choices`` element, or a rule nested in And/Or/Not) into a Rule.

    Raises CompileError whose ``pointer`` locates the problem relative to ``rule`` (e.g. ``/And/1/NumericEquals``)."""
    return _compile(rule, "", nested=False)


def _compile(rule: Any, pointer: str, nested: bool) -> Rule:
    if not isinstance(rule, Mapping):
        raise _error(f"a Choice rule must be an object, got {_type_name(rule)}", pointer)
    _check_fields(rule, pointer, nested)
    ops = [key for key in rule if key in OPERATORS or key in BOOLEAN_OPERATORS]
    if not ops:
        if "Variable" in rule:
            raise _error(f"the rule on {_shown(rule['Variable'])} has no comparison operator "
                         "(such as StringEquals, NumericGreaterThan or IsPresent)", pointer)
        raise _error("a Choice rule needs a Variable and one comparison operator, or And, Or or Not", pointer)
    if len(ops) > 1:
        raise _error(f"a Choice rule takes exactly one operator, found {len(ops)}: {', '.join(ops)}",
                     _pointer(pointer, ops[1]))
    op = ops[0]
    if op in BOOLEAN_OPERATORS:
        if "Variable" in rule:
            raise _error(f"Variable cannot be used together with {op}: put the comparison inside {op}",
                         _pointer(pointer, "Variable"))
        return _compile_boolean(op, rule[op], _pointer(pointer, op))
    if "Variable" not in rule:
        raise _error(f"{op} needs a Variable: the path of the value to compare", pointer)
    return _compile_test(op, rule, pointer)


def _check_fields(rule: Mapping, pointer: str, nested: bool) -> None:
    allowed = _NESTED_FIELDS if nested else _TOP_FIELDS
    for key in rule:
        if key in OPERATORS or key in BOOLEAN_OPERATORS or key in allowed:
            continue
        if key in _TOP_FIELDS:
            raise _error(f"{key} is only allowed on a top-level Choice rule, not inside And, Or or Not",
                         _pointer(pointer, key))
        if key == "Condition":
            hint = ': Condition belongs to QueryLanguage JSONata; JSONPath rules use Variable and an operator'
        else:
            import difflib
            close = difflib.get_close_matches(str(key), _KNOWN_FIELDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
        raise _error(f"unknown field {_shown(key)} in a Choice rule{hint}", _pointer(pointer, key))


def _compile_boolean(op: str, value: Any, pointer: str) -> Rule:
    if op == "Not":
        if not isinstance(value, Mapping):
            raise _error(f"Not takes a single rule object, got {_type_name(value)}", pointer)
        return _Not(_compile(value, pointer, nested=True))
    if not isinstance(value, (list, tuple)):
        raise _error(f"{op} takes a list of rules, got {_type_name(value)}", pointer)
    if not value:
        raise _error(f"{op} needs at least one rule", pointer)
    rules = tuple(_compile(item, _pointer(pointer, i), nested=True) for i, item in enumerate(value))
    return _And(rules) if op == "And" else _Or(rules)


def _compile_path(value: Any, field: str, pointer: str) -> Any:
    if not isinstance(value, str):
        raise _error(f"{field} must be a path such as \"$.amount\", got {_type_name(value)}", pointer)
    try:
        return paths.compile_path(value)
    except CompileError as exc:
        raise _error(f"{field}: {exc}", pointer) from exc


def _compile_test(op: str, rule: Mapping, pointer: str) -> Rule:
    var_text = rule["Variable"]
    variable = _compile_path(var_text, "Variable", _pointer(pointer, "Variable"))
    operand, op_pointer = rule[op], _pointer(pointer, op)

    if op == "IsPresent" or op in _TYPE_TESTS:
        if not isinstance(operand, bool):
            raise _error(f"{op} must be true or false, got {_type_name(operand)}", op_pointer)
        if op == "IsPresent":
            return _IsPresent(variable, operand, f"{var_text} is {'' if operand else 'not '}present")
        test, word = _TYPE_TESTS[op]
        return _TypeTest(variable, var_text, test, operand, f"{var_text} is {'' if operand else 'not '}{word}")

    if op == "StringMatches":
        if not isinstance(operand, str):
            raise _error(f"StringMatches needs a string pattern, got {_type_name(operand)}", op_pointer)
        segments = _glob_segments(operand)
        if segments is None:
            raise _error(f"StringMatches pattern {_shown(operand)} ends with a lone backslash "
                         "(in a pattern, \\* is a literal star and \\\\ a literal backslash)", op_pointer)
        return _Matches(variable, var_text, segments, f"{var_text} matches {_shown(operand)}")

    base = op[:-4] if op.endswith("Path") else op
    kind = next(k for k in _KINDS if base.startswith(k))
    key, expected = _KINDS[kind]
    symbol, compare = _ORDERINGS[base[len(kind):]]
    if op.endswith("Path"):
        other = _compile_path(operand, op, op_pointer)
        return _ComparePath(variable, var_text, key, compare, other, operand, f"{var_text} {symbol} {operand}")
    literal = key(operand)
    if literal is _NO:
        raise _error(f"{op} needs {expected}, got {_type_name(operand)}", op_pointer)
    shown = operand if kind == "Timestamp" else _shown(operand)
    return _Compare(variable, var_text, key, compare, literal, f"{var_text} {symbol} {shown}")
