"""Property-based spec (Hypothesis) of the loader and the pure evaluators: whatever they are given, they answer in
their own terms and nothing else.

- the loader: any text, and any mutation of the example definitions, gives diagnostics or a model;
- paths, intrinsic calls and Choice rules: any expression string either fails to compile with a CompileError or
  compiles; evaluated on any JSON input it gives a value or a ``States.*`` StatesError, deterministically, without
  changing its input; and the algebra holds (a rule and its Not are complementary, JsonToString/StringToJson round
  trip, ArrayLength is len).

Each bug these found is pinned by an ``@example``. ``STATEMILL_HYPOTHESIS_PROFILE=long`` runs 3,000 examples each.
"""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, example, given, strategies as st

from statemill.engine import choice, intrinsics, loader, paths
from statemill.engine.errors import CompileError, DefinitionError, StatesError
from statemill.engine.model import StateMachine
from statemill.engine.scope import Scope

pytestmark = pytest.mark.property
EXAMPLES = sorted((Path(__file__).parents[1] / "statemachines").glob("*.yaml"))
DEFINITIONS = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in EXAMPLES]

# ----------------------------------------------------------------------------------------------- JSON values
HOSTILE_STRINGS = ["", "\x00", "\x1f\x7f", "\ud800", "\udfff", "\u2028", "\ufeff", "$", "$$", "$.", "{%", "%}",
                   "States.", "'", "\\", "{}", "[*]", "..", "\U0001F600", "a" * 300, "0", "false", "null"]
NUMBERS = st.one_of(st.integers(-2**64, 2**64), st.sampled_from([0, -0.0, 0.5, 1e308, -1e308, 5e-324, 2**53 + 1,
                                                                 10**30, 1.0]),
                    st.floats(allow_nan=False, allow_infinity=False))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12), st.sampled_from(HOSTILE_STRINGS))
KEYS = st.one_of(st.sampled_from(["a", "b", "x", "", "0", "items", "a.b", "$", "@", "'", "Next"]), st.text(max_size=6))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


def storable(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def nested(levels: int, leaf=0):
    for _ in range(levels):
        leaf = [leaf]
    return leaf


def states_error(exc: StatesError) -> None:
    assert isinstance(exc.error, str) and exc.error.startswith("States."), exc.error


# ----------------------------------------------------------------------------------------------- the loader
def check_loads(text_or_dict, name: str) -> None:
    """The loader's contract: a model, or a DefinitionError of located diagnostics; never another exception."""
    if isinstance(text_or_dict, dict):
        found = loader.validate(text_or_dict)
    else:
        found = loader.validates(text_or_dict, name=name)
    assert all(d.code and d.message for d in found)
    try:
        compiled = loader.loads(text_or_dict, name=name) if not isinstance(text_or_dict, dict) \
            else loader.load(text_or_dict)
    except DefinitionError as exc:
        assert any(d.severity == "error" for d in exc.diagnostics)
        assert [d.code for d in exc.diagnostics] == [d.code for d in found]
        return
    assert isinstance(compiled, StateMachine)
    assert not any(d.severity == "error" for d in found)


@given(st.one_of(st.text(max_size=200), JSON.map(json.dumps), JSON.map(lambda v: yaml.safe_dump(v)),
                 st.binary(max_size=60)), st.sampled_from(["m.yaml", "m.json"]))
@example("a: !!binary aGVsbG8=", "m.yaml")
@example('{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Result": 1e999}}}', "m.json")
@example("[" * 5000 + "]" * 5000, "m.json")
@example("a: &a [*a]", "m.yaml")
@example(b"\xff\xfe", "m.yaml")
@example("9" * 5000, "m.json")
def test_any_text_gives_diagnostics_or_a_model(text, name):
    check_loads(text, name)


def _pointers(value, pointer=()):
    yield pointer
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _pointers(child, (*pointer, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _pointers(child, (*pointer, i))


def _parent(doc, pointer):
    for token in pointer[:-1]:
        doc = doc[token]
    return doc


HOSTILE_VALUES = st.one_of(JSON, st.sampled_from([nested(99), nested(101), 10**400 // 10**100, 2**63, -0.0,
                                                  float(10**308), "\ud800", "\x00\x01"]))


@st.composite
def mutated_definition(draw):
    """An example definition with a few random edits: delete, retype, rename, swap, or inject a hostile value."""
    doc = copy.deepcopy(draw(st.sampled_from(DEFINITIONS)))
    for _ in range(draw(st.integers(1, 4))):
        targets = [p for p in _pointers(doc) if p]
        if not targets:  # everything deleted already
            break
        pointer = draw(st.sampled_from(targets))
        parent, last = _parent(doc, pointer), pointer[-1]
        action = draw(st.sampled_from(["delete", "retype", "rename", "swap", "hostile"]))
        if action == "delete":
            del parent[last]
        elif action in ("retype", "hostile"):
            parent[last] = copy.deepcopy(draw(JSON if action == "retype" else HOSTILE_VALUES))  # later edits
            # may reach inside it, and the strategy's sample objects must stay as they were
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(last)
        elif action == "swap":
            other = draw(st.sampled_from(targets))
            if not (other[:len(pointer)] == pointer or pointer[:len(other)] == other):
                other_parent = _parent(doc, other)
                parent[last], other_parent[other[-1]] = other_parent[other[-1]], parent[last]
    return doc


QUOTED_KEY = {**DEFINITIONS[0], "'": "x"}  # found: no diagnostic at all (the key's repr is in double quotes)
LONE_SURROGATE = {**DEFINITIONS[0], "Comment": "\ud800"}  # found: UnicodeEncodeError in the schema validator


@given(mutated_definition(), st.sampled_from(["dict", "json", "yaml"]))
@example(QUOTED_KEY, "dict")
@example(QUOTED_KEY, "json")
@example(LONE_SURROGATE, "dict")
@example(LONE_SURROGATE, "json")
@example({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": True, "End": True}}}, "dict")  # found:
# TypeError in the graph checks ('bool' object is not iterable)
def test_mutated_examples_give_diagnostics_or_a_model(doc, form):
    if form == "dict":
        check_loads(doc, "<definition>")
        return
    try:
        text = json.dumps(doc) if form == "json" else yaml.safe_dump(doc, allow_unicode=True)
    except (ValueError, yaml.YAMLError):  # a value the serialiser itself refuses: nothing to load
        assume(False)
    check_loads(text, f"m.{form}")


# ----------------------------------------------------------------------------------------------- paths
NAMES = st.sampled_from(["a", "b", "x", "items", "0", "é", "a b", "", "$", "@", "*", "'", '"', "\\", "."])
SEGMENTS = st.one_of(
    NAMES.map(lambda n: f".{n}"),
    NAMES.map(lambda n: f"['{n}']"),
    st.integers(-3, 5).map(lambda i: f"[{i}]"),
    st.sampled_from(["[*]", ".*", "..a", "..*", "[0:2]", "[-1:]", "[::2]", "[0,1]", "['a','b']", "[?(@.a)]",
                     "[?(@.a > 1)]", "[?(@ == 'x')]", "[(@.length-1)]", ".length()", "[", "]", "..", "[']", "[0",
                     "[?(@.a ==)]", "[1:0]", "[a]", "['\\'']", "[ 0 ]"]),
)
PATHS = st.one_of(
    st.tuples(st.sampled_from(["$", "$$", "$var"]), st.lists(SEGMENTS, max_size=4)).map(lambda t: t[0] + "".join(t[1])),
    st.text(max_size=12).map(lambda t: "$" + t),
    st.text(max_size=12),
)


def outcome(fn):
    """``("value", v)`` or ``("error", name, cause)``; anything but a StatesError escapes and fails the test."""
    try:
        return ("value", fn())
    except StatesError as exc:
        states_error(exc)
        return ("error", exc.error, exc.cause)


@given(PATHS, JSON, JSON)
@example("$", nested(99), None)
def test_a_path_compiles_or_not_and_evaluates_to_a_value_or_a_states_error(text, value, variable):
    compiled = {}
    for kind, compile_ in (("path", paths.compile_path), ("reference", paths.compile_reference_path)):
        try:
            compiled[kind] = compile_(text)
        except CompileError:
            pass
    before = copy.deepcopy(value)
    scope = Scope(value, {"Execution": {"Input": value}, "State": {"Name": "S"}}, {"var": variable})
    for path in compiled.values():
        first = outcome(lambda: path.resolve(scope))
        assert outcome(lambda: path.resolve(scope)) == first  # deterministic, and nothing was consumed
        outcome(lambda: path.resolve_field(scope, "x.$"))
        path.get(scope, default=None)
    assert value == before  # evaluation never changes its input


@given(JSON)
def test_the_identity_path_gives_the_input_back(value):
    assert paths.compile_path("$").resolve(Scope(value)) == value


# ----------------------------------------------------------------------------------------------- intrinsics
FUNCTIONS = sorted(intrinsics.FUNCTIONS) + ["States.Nope", "States.format"]
LITERALS = st.one_of(
    st.sampled_from(["null", "true", "false", "0", "-1", "1.5", "1e3", "''", "'a\\'b'", "'{}'", "'\\{\\}'",
                     "'[1,2]'", "'{\"a\": 1}'", "'  '", "'\\\\'", "'MD5'", "'SHA-256'", "1000", "3", "-0"]),
    st.text(max_size=8).map(lambda t: "'" + t.replace("\\", "\\\\").replace("'", "\\'").replace("{", "\\{")
                            .replace("}", "\\}") + "'"),
    st.sampled_from(["$", "$.a", "$.b", "$.items", "$.x[0]", "$$.State.Name", "$var", "$.a[*]", "$.nope"]),
)


@st.composite
def intrinsic_calls(draw, depth=0):
    name = draw(st.sampled_from(FUNCTIONS))
    args = draw(st.lists(LITERALS if depth >= 2 else st.one_of(LITERALS, intrinsic_calls(depth + 1)), max_size=4))
    return f"{name}({', '.join(args)})"


@given(st.one_of(intrinsic_calls(), st.text(max_size=20).map(lambda t: "States." + t)), JSON, JSON)
@example("States.Hash('', States.Array())", None, None)  # found: TypeError, a list is not a dict key
@example("States.AÀ", None, None)  # found: AttributeError in the tokenizer ("À".isalpha() but not a name start)
@example("States.StringToJson($.a)", {"a": "[" * 2000 + "]" * 2000}, None)
@example("States.StringToJson($.a)", {"a": "[1e999]"}, None)
@example("States.StringToJson($.a)", {"a": "9" * 5000}, None)
def test_an_intrinsic_compiles_or_not_and_evaluates_to_a_value_or_a_states_error(text, value, variable):
    try:
        call = intrinsics.compile_intrinsic(text)
    except CompileError:
        return
    before = copy.deepcopy(value)
    scope = Scope(value, {"State": {"Name": "S"}}, {"var": variable})
    random.seed(0)
    first = outcome(lambda: call.evaluate(scope))
    if "Random" not in text and "UUID" not in text:
        random.seed(0)
        assert outcome(lambda: call.evaluate(scope)) == first
    assert value == before


@pytest.mark.parametrize("compile_, text", [
    pytest.param(intrinsics.compile_intrinsic, "States.MathAdd(\u0663, 1)", id="intrinsic_arabic_three_as_a_number"),
    pytest.param(intrinsics.compile_intrinsic, "States.Array(\u00b2)", id="intrinsic_superscript_two"),
    pytest.param(paths.compile_path, "$[\u0663]", id="path_arabic_three_as_an_index"),
    pytest.param(paths.compile_path, "$[1_0]", id="path_index_with_an_underscore"),
    pytest.param(paths.compile_path, "$[+1]", id="path_index_with_a_plus_sign"),
])
def test_numbers_in_expressions_are_ascii_digits_only(compile_, text):
    """Found by the properties: Python's isdigit()/int() take "٣", "²" and "1_0"; JSON and AWS do not."""
    with pytest.raises(CompileError):
        compile_(text)


@given(JSON)
def test_json_to_string_and_string_to_json_round_trip(value):
    # Only values an execution can hold: a lone surrogate is refused wherever JSON enters (it is not Unicode).
    assume(storable(value))
    scope = Scope({"v": value})
    text = intrinsics.compile_intrinsic("States.JsonToString($.v)").evaluate(scope)
    back = intrinsics.compile_intrinsic("States.StringToJson($.s)").evaluate(Scope({"s": text}))
    assert back == value and json.loads(text) == value


@given(st.lists(JSON, max_size=8))
def test_array_length_is_len(items):
    assert intrinsics.compile_intrinsic("States.ArrayLength($.a)").evaluate(Scope({"a": items})) == len(items)


# ----------------------------------------------------------------------------------------------- Choice rules
VARIABLES = st.sampled_from(["$", "$.a", "$.b", "$.x[0]", "$.nope", "$$.State.Name", "$var", "$.a.b"])
OPERANDS = {
    "String": st.one_of(st.text(max_size=6), st.sampled_from(["", "2024-01-01T00:00:00Z"])),
    "Numeric": NUMBERS,
    "Timestamp": st.sampled_from(["2024-01-01T00:00:00Z", "2024-02-29T23:59:59.999+01:00", "1970-01-01T00:00:00Z"]),
}


@st.composite
def data_rules(draw):
    variable = draw(VARIABLES)
    kind = draw(st.sampled_from(["String", "Numeric", "Timestamp", "Boolean", "Is", "Matches", "Wrong"]))
    if kind == "Is":
        return {"Variable": variable, draw(st.sampled_from(choice._IS_OPERATORS)): draw(st.booleans())}
    if kind == "Matches":
        return {"Variable": variable, "StringMatches": draw(st.sampled_from(["*", "a*", "\\*", "*.log", "", "a\\\\"]))}
    if kind == "Boolean":
        return {"Variable": variable, "BooleanEquals": draw(st.booleans())}
    if kind == "Wrong":
        return {"Variable": variable, draw(st.sampled_from(sorted(choice.OPERATORS))): draw(JSON)}
    order = draw(st.sampled_from(["Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"]))
    if draw(st.booleans()):
        return {"Variable": variable, f"{kind}{order}Path": draw(VARIABLES)}
    return {"Variable": variable, f"{kind}{order}": draw(OPERANDS[kind])}


RULES = st.recursive(data_rules(), lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3).map(lambda rules: {"And": rules}),
    st.lists(inner, min_size=1, max_size=3).map(lambda rules: {"Or": rules}),
    inner.map(lambda rule: {"Not": rule})), max_leaves=5)
INPUTS = st.one_of(JSON, st.fixed_dictionaries({"a": JSON, "b": JSON, "x": st.lists(JSON, max_size=2)}),
                   st.fixed_dictionaries({"a": st.sampled_from(["2024-01-01T00:00:00Z", "a.log", "*", "", 0, False,
                                                                None, 1.5, True])}))


@given(RULES, INPUTS, JSON)
def test_a_rule_and_its_not_are_complementary_wherever_the_rule_evaluates(rule, value, variable):
    try:
        compiled = choice.compile_rule({**rule, "Next": "N"})
    except CompileError:
        return
    negated = choice.compile_rule({"Not": rule, "Next": "N"})
    scope = Scope(value, {"State": {"Name": "S"}}, {"var": variable})
    result = outcome(lambda: compiled.matches(scope))
    if result[0] == "value":
        assert isinstance(result[1], bool)
        assert negated.matches(scope) is (not result[1])
    else:
        assert outcome(lambda: negated.matches(scope)) == result
    compiled.describe()
