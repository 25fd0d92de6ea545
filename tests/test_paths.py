"""Spec of the JSONPath data flow: Paths, Reference Paths (ResultPath) and payload templates, as AWS evaluates them."""
from __future__ import annotations

import copy
import importlib
import sys
import types

import pytest

import statemill.engine as engine_package
from statemill.engine.errors import CompileError, StatesError
from statemill.engine.paths import (
    MISSING, RESULT_PATH_ERROR, Path, ReferencePath, compile_path, compile_reference_path, compile_template, is_path,
    to_json_text,
)
from statemill.engine.scope import Scope

DOC = {
    "zero": 0, "no": False, "empty": "", "nothing": None, "emptyobj": {}, "emptylist": [],
    "a": {"b": {"c": "deep"}, "list": [10, 20, 30]},
    "items": [{"id": 0, "tag": "x"}, {"id": 1, "tag": "y"}, {"id": 2}],
    "a b": "spaced", "dash-key": "dashed", "dot.key": "dotted", "q'uote": "quoted",
    "matrix": [[1, 2], [3, 4]],
}
CONTEXT = {"Execution": {"Id": "exec-1", "Input": {"k": 0}}, "Map": {"Item": {"Index": 0, "Value": None}}}
VARIABLES = {"count": 0, "flag": False, "obj": {"inner": [None, "v"]}, "nil": None}


def scope(doc=DOC, context=CONTEXT, variables=VARIABLES):
    return Scope(doc, context=context, variables=variables)


# ------------------------------------------------------------------------------------------------------------
# Reading values
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("$", DOC),
    ("$.zero", 0),
    ("$.no", False),
    ("$.empty", ""),
    ("$.nothing", None),
    ("$.emptyobj", {}),
    ("$.emptylist", []),
    ("$.a.b.c", "deep"),
    ("$['a']['b']['c']", "deep"),
    ('$["a"]["b"]', {"c": "deep"}),
    ("$.a['b'].c", "deep"),
    ("$.a.list[0]", 10),
    ("$.a.list[2]", 30),
    ("$.a.list[-1]", 30),
    ("$.a.list[ 1 ]", 20),
    ("$.matrix[1][0]", 3),
    ("$['a b']", "spaced"),
    ("$.dash-key", "dashed"),
    ("$['dot.key']", "dotted"),
    ("$[\"q'uote\"]", "quoted"),
    ("$.items[1].tag", "y"),
    ("$.['a'].b.c", "deep"),
], ids=[
    "dollar-alone-is-whole-input", "zero-is-a-value", "false-is-a-value", "empty-string-is-a-value",
    "null-is-a-value", "empty-object", "empty-list", "dotted-names", "bracket-names", "double-quoted-brackets",
    "mixed-dot-and-bracket", "first-index", "last-index", "negative-index-counts-from-end", "blanks-inside-brackets",
    "nested-indexes", "bracket-name-with-blank", "dash-in-dot-name", "dot-inside-bracket-name",
    "single-quote-inside-double-quoted-name", "index-then-name", "dot-before-bracket",
])
def test_definite_path_returns_the_single_value(text, expected):
    path = compile_path(text)
    assert path.definite
    assert path.resolve(scope()) == expected
    assert path.get(scope()) == expected


@pytest.mark.parametrize("text, expected", [
    ("$.items[*].id", [0, 1, 2]),
    ("$.items[*].tag", ["x", "y"]),
    ("$.items.*.id", [0, 1, 2]),
    ("$.a.list[*]", [10, 20, 30]),
    ("$.a.*", [{"c": "deep"}, [10, 20, 30]]),
    ("$.a.list[1:]", [20, 30]),
    ("$.a.list[:2]", [10, 20]),
    ("$.a.list[-2:]", [20, 30]),
    ("$.a.list[1:2]", [20]),
    ("$.a.list[5:]", []),
    ("$.a.list[0,2]", [10, 30]),
    ("$.items[?(@.id == 0)]", [{"id": 0, "tag": "x"}]),
    ("$.items[?(@.id > 0)].id", [1, 2]),
    ("$.items[?(@.tag)].id", [0, 1]),
    ("$.items[?(@.tag == 'y' || @.id == 2)].id", [1, 2]),
    ("$.items[?(@.id >= 1 && @.tag)].id", [1]),
    ("$.items[?(@.id < $.a.list[0])].id", [0, 1, 2]),
    ("$.a.list[?(@ > 15)]", [20, 30]),
    ("$..c", ["deep"]),
    ("$..id", [0, 1, 2]),
    ("$.matrix[*][0]", [1, 3]),
    ("$..tag", ["x", "y"]),
], ids=[
    "wildcard-then-name", "wildcard-skips-elements-without-the-name", "dot-wildcard", "wildcard-on-array",
    "wildcard-on-object-gives-values", "slice-from", "slice-to", "slice-negative-start", "slice-range",
    "slice-past-end-is-empty", "index-union", "filter-equals-zero", "filter-greater-then-name", "filter-existence",
    "filter-or", "filter-and", "filter-compares-with-root", "filter-on-current-node", "recursive-descent-name",
    "recursive-descent-through-arrays", "wildcard-then-index", "recursive-descent-skips-missing",
])
def test_indefinite_path_returns_the_list_of_matches(text, expected):
    path = compile_path(text)
    assert not path.definite
    assert path.resolve(scope()) == expected
    assert path.get(scope()) == expected


@pytest.mark.parametrize("text, doc", [
    ("$[*]", {}),
    ("$.items[*]", {}),
    ("$.item.items[*]", {}),
    ("$.item.items[1:]", {}),
    ("$.item.items[1:5]", {}),
    ("$.items[:1].itemValue", {}),
    ("$.users[?(@.status == 0)]", {"users": [{"status": 1}]}),
    ("$.a[*].b", {"a": 5}),
    ("$..missing", {"a": [{"b": 0}]}),
], ids=[
    "wildcard-on-empty-input", "wildcard-on-missing-array", "wildcard-below-missing-object", "slice-below-missing",
    "bounded-slice-below-missing", "slice-then-name-on-missing", "filter-without-match", "wildcard-on-scalar",
    "recursive-descent-without-match",
])
def test_indefinite_path_without_match_is_an_empty_list_not_an_error(text, doc):
    path = compile_path(text)
    assert path.resolve(Scope(doc)) == []
    assert path.resolve_field(Scope(doc), "item.$") == []


def test_filter_on_an_object_tests_the_object_itself():
    assert compile_path("$.a[?(@.b)]").resolve(scope()) == [DOC["a"]]
    assert compile_path("$.a[?(@.zzz)]").resolve(scope()) == []


@pytest.mark.parametrize("text, expected", [
    ("$.a.list[3]", None),
    ("$.a.list[-4]", None),
    ("$.items[5].id", MISSING),
], ids=["index-past-end-is-null", "negative-index-before-start-is-null", "name-below-out-of-range-index"])
def test_out_of_range_index_reads_as_null(text, expected):
    assert compile_path(text).get(scope()) is expected


def test_bracket_names_are_taken_verbatim_without_unescaping():
    key = 'Test\\""Name"'  # Test\""Name"
    path = compile_path("$['Test\\\"\"Name\"']")
    assert path.resolve(Scope({key: 'Value"\\', 'Test""Name"': "unescaped"})) == 'Value"\\'


def test_union_of_names_as_last_step_merges_present_members():
    doc = {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}}
    assert compile_path("$['a', 'b']").resolve(Scope(doc)) == {"a": {"v": 1}, "b": {"v": 2}}
    assert compile_path("$['a','zz']").resolve(Scope(doc)) == {"a": {"v": 1}}


def test_function_call_syntax_is_an_ordinary_name_that_does_not_match():
    path = compile_path("$.list.length()")
    assert path.get(Scope({"list": [1, 2]})) is MISSING
    assert path.resolve(Scope({"list": {"length()": 0}})) == 0


@pytest.mark.parametrize("text, expected", [
    ("$$", CONTEXT),
    ("$$.Execution.Id", "exec-1"),
    ("$$.Execution.Input.k", 0),
    ("$$.Map.Item.Value", None),
    ("$$['Execution']['Id']", "exec-1"),
    ("$count", 0),
    ("$flag", False),
    ("$nil", None),
    ("$obj.inner[0]", None),
    ("$obj.inner[1]", "v"),
    ("$obj['inner'][-1]", "v"),
    ("$obj.inner[*]", [None, "v"]),
], ids=[
    "context-alone", "context-path", "context-input-zero", "context-null-value", "context-brackets",
    "variable-zero", "variable-false", "variable-null", "variable-null-element", "variable-path",
    "variable-bracket-path", "variable-wildcard",
])
def test_context_and_variable_paths_read_their_own_documents(text, expected):
    path = compile_path(text)
    assert path.resolve(Scope({"count": "input, not variable"}, context=CONTEXT, variables=VARIABLES)) == expected


@pytest.mark.parametrize("text, root, variable", [
    ("$.a", "input", None), ("$", "input", None), ("$[0]", "input", None), ("$$.x", "context", None),
    ("$$", "context", None), ("$var_1.x", "variable", "var_1"), ("$_x[0]", "variable", "_x"), ("$né", "variable", "né"),
], ids=["input-dot", "input-alone", "input-bracket", "context-dot", "context-alone", "variable-with-path",
        "variable-with-index", "variable-unicode-name"])
def test_path_root_is_input_context_or_variable(text, root, variable):
    path = compile_path(text)
    assert (path.root, path.variable) == (root, variable)


def test_get_returns_default_when_nothing_matches_and_never_raises():
    s = scope()
    assert compile_path("$.missing").get(s) is MISSING
    assert compile_path("$.missing").get(s, "fallback") == "fallback"
    assert compile_path("$.a.missing.deeper").get(s, None) is None
    assert compile_path("$.zero.x").get(s, 7) == 7
    assert compile_path("$undefinedVar").get(s, 7) == 7
    assert compile_path("$.x").get(Scope(None), 7) == 7
    assert compile_path("$").get(Scope(None), 7) is None


def test_returned_values_are_equal_to_the_input_nodes():
    value = compile_path("$.a.b").resolve(scope())
    assert value == {"c": "deep"}


# ------------------------------------------------------------------------------------------------------------
# Runtime errors (States.Runtime) with AWS's causes
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, doc, cause", [
    ("$.NoSuchInputPath", {"int-literal": 0},
     "Invalid path '$.NoSuchInputPath' : No results for path: $['NoSuchInputPath']"),
    ("$.a.missing", {"a": {"b": 0}}, "Invalid path '$.a.missing' : No results for path: $['a']['missing']"),
    ("$.no.such.result.path", {"a": 1}, "Invalid path '$.no.such.result.path' : Missing property in path $['no']"),
    ("$.a.x.y", {"a": {}}, "Invalid path '$.a.x.y' : Missing property in path $['a']['x']"),
    ("$['a b'].c", {}, "Invalid path '$['a b'].c' : Missing property in path $['a b']"),
    ("$.list.length()", {"list": [1]}, "Invalid path '$.list.length()' : Property ['length()'] not found in path $['list']"),
    ("$.s.x", {"s": "text"}, "Invalid path '$.s.x' : Property ['x'] not found in path $['s']"),
    ("$.x", "a string input", "Invalid path '$.x' : Property ['x'] not found in path $"),
    ("$.a[0]", {"a": {"k": 0}},
     "Invalid path '$.a[0]' : Filter: [0] can only be applied to arrays. Current context is: {\"k\":0}"),
    ("$.a[0]", {"a": None}, "Invalid path '$.a[0]' : The path $['a'] is null"),
    ("$['a', 'b'].v", {"a": {"v": 1}},
     "Invalid path '$['a', 'b'].v' : Multi properties can only be used as path leafs: $['a', 'b']"),
    ("$missingVar", {}, "Invalid path '$missingVar' : The variable 'missingVar' is not defined"),
], ids=[
    "missing-leaf", "missing-nested-leaf", "missing-intermediate", "missing-deeper-intermediate",
    "missing-intermediate-bracket-name", "function-call-on-array", "name-on-string", "name-on-string-input",
    "index-on-object", "index-on-null", "union-not-last", "undefined-variable",
])
def test_resolve_miss_raises_states_runtime_with_jayway_cause(text, doc, cause):
    with pytest.raises(StatesError) as raised:
        compile_path(text).resolve(Scope(doc, variables={}))
    assert (raised.value.error, raised.value.cause) == ("States.Runtime", cause)


@pytest.mark.parametrize("text, doc, field, cause", [
    ("$.no_such_jsonpath", {"int-literal": 0}, "value.$",
     "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be found in the input "
     "'{\"int-literal\":0}'"),
    ("$.application.address", {"flagged": False}, "address.$",
     "The JSONPath '$.application.address' specified for the field 'address.$' could not be found in the input "
     "'{\"flagged\":false}'"),
    ("$.ErrorX", {"Error": "e", "Cause": "c"}, "ErrorPath",
     "The JSONPath '$.ErrorX' specified for the field 'ErrorPath' could not be found in the input "
     "'{\"Error\":\"e\",\"Cause\":\"c\"}'"),
    ("$$.Execution.Input.no_such_jsonpath", {"int-literal": 0}, "value.$",
     "The JSONPath '$$.Execution.Input.no_such_jsonpath' specified for the field 'value.$' could not be found in "
     "the input '{\"int-literal\":0}'"),
    ("$.Jobs.sum()", {"Jobs": [0, 1]}, "Jobs.$",
     "The JSONPath '$.Jobs.sum()' specified for the field 'Jobs.$' could not be found in the input "
     "'{\"Jobs\":[0,1]}'"),
    ("$.x", {"n": 1.5, "s": "a\"\n", "u": "é", "l": [None, True, 1e20]}, "x.$",
     "The JSONPath '$.x' specified for the field 'x.$' could not be found in the input "
     "'{\"n\":1.5,\"s\":\"a\\\"\\n\",\"u\":\"é\",\"l\":[null,true,1.0E20]}'"),
], ids=["missing-field", "missing-intermediate", "error-path", "context-path-prints-state-input",
        "function-call", "input-printed-as-compact-json"])
def test_resolve_field_miss_names_the_field_and_prints_the_input(text, doc, field, cause):
    with pytest.raises(StatesError) as raised:
        compile_path(text).resolve_field(Scope(doc, context=CONTEXT), field)
    assert (raised.value.error, raised.value.cause) == ("States.Runtime", cause)


@pytest.mark.parametrize("call", [
    lambda p: compile_path("$").resolve_field(Scope(None), "Input.$"),
    lambda p: compile_path("$.x").resolve_field(Scope(None), "x.$"),
    lambda p: compile_path("$.x").resolve(Scope(None)),
], ids=["dollar-in-template", "path-in-template", "input-path"])
def test_path_applied_to_null_input_fails_like_aws(call):
    with pytest.raises(StatesError) as raised:
        call(None)
    assert (raised.value.error, raised.value.cause) == (
        "States.Runtime", "Unable to apply Path transformation to null or empty input.")


def test_dollar_alone_as_input_path_passes_null_input_through():
    assert compile_path("$").resolve(Scope(None)) is None


def test_null_input_check_does_not_apply_to_context_or_variables():
    s = Scope(None, context=CONTEXT, variables=VARIABLES)
    assert compile_path("$$.Execution.Id").resolve_field(s, "id.$") == "exec-1"
    assert compile_path("$count").resolve_field(s, "c.$") == 0


# ------------------------------------------------------------------------------------------------------------
# Compilation
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "", "a.b", "$.", "$..", "$a b", "$.a b", "$[", "$['a'", "$['a]", "$[x]", "$[1:2:3]", "$.a[?(@.x in [1])]",
    "$.a[?@.x]", "$.a[?(@.x ==)]", "$$x", "$.a]", "$1", "$...a", "$['a',]", "$.a[]",
], ids=[
    "empty", "no-dollar", "trailing-dot", "trailing-double-dot", "blank-after-variable", "blank-in-dot-name",
    "unclosed-bracket", "unclosed-quote", "unclosed-bracket-after-quote", "unquoted-bracket-name", "slice-with-step",
    "unsupported-filter-operator", "filter-without-parentheses", "incomplete-filter", "context-followed-by-name",
    "stray-bracket", "digit-after-dollar", "triple-dot", "dangling-comma", "empty-brackets",
])
def test_invalid_path_syntax_is_a_compile_error_quoting_the_path(text):
    with pytest.raises(CompileError) as raised:
        compile_path(text)
    assert f"'{text}'" in str(raised.value)


@pytest.mark.parametrize("value", [None, 0, ["$"], {"a": 1}], ids=["null", "number", "list", "object"])
def test_non_string_path_is_a_compile_error(value):
    with pytest.raises(CompileError):
        compile_path(value)
    with pytest.raises(CompileError):
        compile_reference_path(value)


def test_compilation_is_cached_and_paths_compare_by_text():
    assert compile_path("$.a.b") is compile_path("$.a.b")
    assert compile_reference_path("$.a") == compile_reference_path("$.a")
    assert compile_path("$.a") != compile_reference_path("$.a")
    assert repr(compile_path("$.a")) == "Path('$.a')"


@pytest.mark.parametrize("text, expected", [
    ("$.a", True), ("$", True), ("$$.x", True), ("$v", True), ("$.a[?(@.x > 1)]", True),
    ("a", False), ("$.", False), ("", False), (None, False), (0, False),
], ids=["dot", "root", "context", "variable", "filter", "no-dollar", "trailing-dot", "empty", "null", "number"])
def test_is_path(text, expected):
    assert is_path(text) is expected


# ------------------------------------------------------------------------------------------------------------
# Reference paths
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "$", "$.a", "$.a.b", "$['a b'].c", "$.a[0]", "$[0].a", "$.a[-1]", "$$.Execution.Input", "$var", "$var.a[1]",
], ids=["root", "name", "nested", "bracket", "index", "leading-index", "negative-index", "context", "variable",
        "variable-path"])
def test_reference_path_accepts_single_node_paths(text):
    path = compile_reference_path(text)
    assert isinstance(path, ReferencePath) and isinstance(path, Path) and path.definite


@pytest.mark.parametrize("text, why", [
    ("$.a[*]", "wildcards"), ("$.a.*", "wildcards"), ("$..a", "recursive descent"), ("$.a[1:]", "slices"),
    ("$.a[?(@.x)]", "filter"), ("$['a','b']", "unions"), ("$.a[0,1]", "unions"), ("$.a.length()", "functions"),
    ("$.", "must not end"),
], ids=["bracket-wildcard", "dot-wildcard", "recursive", "slice", "filter", "name-union", "index-union",
        "function", "syntax"])
def test_reference_path_rejects_multi_node_syntax_saying_why(text, why):
    with pytest.raises(CompileError) as raised:
        compile_reference_path(text)
    assert why in str(raised.value) and f"'{text}'" in str(raised.value)


def test_reference_path_reads_like_a_path():
    assert compile_reference_path("$.a.list[1]").resolve(scope()) == 20
    assert compile_reference_path("$.zero").get(scope()) == 0


@pytest.mark.parametrize("text, document, value, expected", [
    ("$", {"a": 1}, "result", "result"),
    ("$", "string input", {"r": 0}, {"r": 0}),
    ("$", None, None, None),
    ("$.r", {"a": 1}, 0, {"a": 1, "r": 0}),
    ("$.r", {"r": {"old": 1}}, False, {"r": False}),
    ("$.r", {}, None, {"r": None}),
    ("$.x.y.z", {"a": 1}, "", {"a": 1, "x": {"y": {"z": ""}}}),
    ("$.x.y", {"x": {"keep": 0}}, [], {"x": {"keep": 0, "y": []}}),
    ("$['a b'].c", {}, 1, {"a b": {"c": 1}}),
    ("$.list[1]", {"list": [0, 1, 2]}, "new", {"list": [0, "new", 2]}),
    ("$.list[-1].k", {"list": [{}, {"k": 0}]}, 9, {"list": [{}, {"k": 9}]}),
    ("$[0]", [1, 2], "first", ["first", 2]),
], ids=[
    "dollar-replaces-document", "dollar-replaces-non-object", "dollar-with-null", "adds-member",
    "overwrites-member", "null-result-is-stored", "creates-intervening-objects", "keeps-siblings-when-nesting",
    "bracket-name", "replaces-array-element", "negative-index-then-name", "array-document",
])
def test_assign_returns_a_new_document_with_the_value_at_the_path(text, document, value, expected):
    before = copy.deepcopy(document)
    result = compile_reference_path(text).assign(document, value)
    assert result == expected
    assert document == before


def test_assign_copies_only_along_the_path_and_never_mutates_shared_objects():
    shared = {"untouched": {"deep": [1]}, "path": {"inner": {"x": 0}}}
    result = compile_reference_path("$.path.inner.y").assign(shared, 1)
    assert shared == {"untouched": {"deep": [1]}, "path": {"inner": {"x": 0}}}
    assert result["path"] is not shared["path"] and result["path"]["inner"] is not shared["path"]["inner"]
    assert result["untouched"] is shared["untouched"]


def test_assigned_result_can_be_changed_by_a_later_assign_without_touching_the_first():
    first = compile_reference_path("$.a").assign({}, {"n": 0})
    second = compile_reference_path("$.a.n").assign(first, 1)
    assert first == {"a": {"n": 0}} and second == {"a": {"n": 1}}


@pytest.mark.parametrize("text, document, cause", [
    ("$.someTaskResult", "input1", 'Unable to apply ReferencePath $.someTaskResult to input "input1"'),
    ("$.r", 0, "Unable to apply ReferencePath $.r to input 0"),
    ("$.r", None, "Unable to apply ReferencePath $.r to input null"),
    ("$.r", [1, 2], "Unable to apply ReferencePath $.r to input [1,2]"),
    ("$.r", '{"a":1}', 'Unable to apply ReferencePath $.r to input "{\\"a\\":1}"'),
    ("$.a.b", {"a": 5}, 'Unable to apply step "b" to input {"a":5}'),
    ("$.a.b", {"a": None}, 'Unable to apply step "b" to input {"a":null}'),
    ("$.a.b.c", {"a": {"b": "s"}}, 'Unable to apply step "c" to input {"a":{"b":"s"}}'),
    ("$.a[0]", {"a": {}}, 'Unable to apply step "[0]" to input {"a":{}}'),
    ("$.a[3]", {"a": [0]}, 'Unable to apply step "[3]" to input {"a":[0]}'),
    ("$[0]", {"a": 1}, 'Unable to apply ReferencePath $[0] to input {"a":1}'),
], ids=[
    "string-input", "number-input", "null-input", "array-input", "json-text-input-is-a-string",
    "intervening-number", "intervening-null", "intervening-string", "index-on-object", "index-out-of-range",
    "index-on-object-document",
])
def test_assign_that_cannot_be_applied_raises_aws_reference_path_error(text, document, cause):
    with pytest.raises(StatesError) as raised:
        compile_reference_path(text).assign(document, "result")
    assert (raised.value.error, raised.value.cause) == (RESULT_PATH_ERROR, cause)


@pytest.mark.parametrize("text", ["$$.Execution", "$var.a"], ids=["context", "variable"])
def test_assign_to_context_or_variable_is_refused(text):
    path = compile_reference_path(text)
    assert not path.assignable
    with pytest.raises(CompileError):
        path.assign({}, 1)


# ------------------------------------------------------------------------------------------------------------
# Payload templates
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("template, expected", [
    ({}, {}),
    ({"k": "v", "n": 0, "f": False, "z": None, "e": ""}, {"k": "v", "n": 0, "f": False, "z": None, "e": ""}),
    ({"lit": "$.a.b", "ctx": "$$", "var": "$count"}, {"lit": "$.a.b", "ctx": "$$", "var": "$count"}),
    ({"v.$": "$.zero"}, {"v": 0}),
    ({"v.$": "$.no", "w.$": "$.nothing", "x.$": "$.empty"}, {"v": False, "w": None, "x": ""}),
    ({"all.$": "$"}, {"all": DOC}),
    ({"outer": {"inner.$": "$.a.b.c", "lit": 1}}, {"outer": {"inner": "deep", "lit": 1}}),
    ({"list": [{"id.$": "$.zero"}, "$.literal", 0, [{"x.$": "$.no"}]]},
     {"list": [{"id": 0}, "$.literal", 0, [{"x": False}]]}),
    ({"ids.$": "$.items[*].id"}, {"ids": [0, 1, 2]}),
    ({"none.$": "$.items[?(@.id > 9)]"}, {"none": []}),
    ({"ctx.$": "$$.Execution.Id", "item.$": "$$.Map.Item.Value"}, {"ctx": "exec-1", "item": None}),
    ({"var.$": "$count", "deep.$": "$obj.inner[1]"}, {"var": 0, "deep": "v"}),
    ({"item.$": "$.items[0]"}, {"item": {"id": 0, "tag": "x"}}),
    ({".$": "$.zero"}, {"": 0}),
    ({"a.$.b": "$.zero"}, {"a.$.b": "$.zero"}),
    ([{"x.$": "$.zero"}, 1], [{"x": 0}, 1]),
    ("plain", "plain"),
    (0, 0),
    (None, None),
], ids=[
    "empty-object", "literal-scalars-kept", "dollar-strings-without-suffix-are-literals", "path-value-zero",
    "path-values-false-null-empty", "whole-input", "nested-object", "objects-inside-arrays-are-templates",
    "wildcard-value", "empty-filter-value", "context-values", "variable-values", "array-index-value",
    "key-that-is-only-the-suffix", "suffix-only-at-the-end", "top-level-array", "top-level-string",
    "top-level-zero", "top-level-null",
])
def test_template_evaluates_dollar_fields_and_keeps_literals(template, expected):
    assert compile_template(template).evaluate(scope()) == expected


def test_template_keeps_key_order():
    result = compile_template({"z": 1, "a.$": "$.zero", "m": 2}).evaluate(scope())
    assert list(result) == ["z", "a", "m"]


def test_template_literals_are_fresh_copies_on_each_evaluation():
    tpl = compile_template({"static": {"list": [1, {"k": 0}]}, "dyn.$": "$.zero"})
    first = tpl.evaluate(scope())
    first["static"]["list"][1]["k"] = "mutated"
    assert tpl.evaluate(scope()) == {"static": {"list": [1, {"k": 0}]}, "dyn": 0}


def test_template_does_not_share_objects_with_the_definition():
    definition = {"static": {"k": [0]}}
    tpl = compile_template(definition)
    definition["static"]["k"].append("changed later")
    assert tpl.evaluate(scope()) == {"static": {"k": [0]}}


def test_template_is_static_only_without_dollar_fields():
    assert compile_template({"a": {"b": [1]}}).is_static
    assert not compile_template({"a": [{"b.$": "$"}]}).is_static


@pytest.mark.parametrize("template, field, text", [
    ({"value.$": "$.no_such_jsonpath"}, "value.$", "$.no_such_jsonpath"),
    ({"outer": {"inner.$": "$.a.missing"}}, "inner.$", "$.a.missing"),
    ({"list": [{"deep.$": "$$.Execution.Nope"}]}, "deep.$", "$$.Execution.Nope"),
], ids=["top-level-field", "nested-field", "field-inside-array"])
def test_template_miss_names_the_field_with_its_suffix(template, field, text):
    with pytest.raises(StatesError) as raised:
        compile_template(template).evaluate(scope({"int-literal": 0}))
    assert raised.value.error == "States.Runtime"
    assert raised.value.cause == (f"The JSONPath '{text}' specified for the field '{field}' could not be found in "
                                  "the input '{\"int-literal\":0}'")


def test_template_with_null_input_fails_on_input_paths():
    with pytest.raises(StatesError) as raised:
        compile_template({"Input.$": "$"}).evaluate(Scope(None))
    assert raised.value.cause == "Unable to apply Path transformation to null or empty input."


@pytest.mark.parametrize("template, pointer", [
    ({"a": {"b.$": 5}}, "/a/b.$"),
    ({"x.$": None}, "/x.$"),
    ({"x.$": {"nested": "$"}}, "/x.$"),
    ({"x.$": ["$"]}, "/x.$"),
    ({"a": [0, {"bad.$": "$."}]}, "/a/1/bad.$"),
    ({"a/b": {"c~d.$": "$[unclosed"}}, "/a~1b/c~0d.$"),
    ({"k.$": "not a path"}, "/k.$"),
    ({"k.$": ""}, "/k.$"),
    ({"a": 1, "a.$": "$.x"}, "/a.$"),
    ({"a.$": "$.x", "a": 1}, "/a.$"),
    ({"o": {"n.$": "$.x", "n": {"deep": 0}}}, "/o/n.$"),
    ([{"k.$": 1}], "/0/k.$"),
], ids=[
    "number-value", "null-value", "object-value", "array-value", "invalid-path-inside-array",
    "pointer-escapes-slash-and-tilde", "neither-path-nor-intrinsic", "empty-string", "collision-literal-first",
    "collision-dynamic-first", "nested-collision", "top-level-array",
])
def test_template_compile_error_carries_a_json_pointer(template, pointer):
    with pytest.raises(CompileError) as raised:
        compile_template(template)
    assert raised.value.pointer == pointer


def test_template_collision_message_names_both_keys():
    with pytest.raises(CompileError) as raised:
        compile_template({"a": 1, "a.$": "$.x"})
    assert "'a'" in str(raised.value) and "'a.$'" in str(raised.value)


def test_template_invalid_path_message_quotes_the_path():
    with pytest.raises(CompileError) as raised:
        compile_template({"k.$": "$.a b"})
    assert "'$.a b'" in str(raised.value)


# -- intrinsic calls: the contract with engine/intrinsics.py -----------------------------------------------------

@pytest.fixture
def fake_intrinsics(monkeypatch):
    """A stand-in intrinsics module honouring the contract (is_intrinsic / compile_intrinsic / .evaluate)."""
    module = types.ModuleType("statemill.engine.intrinsics")
    calls = []

    class Call:
        def __init__(self, text):
            self.text = text

        def evaluate(self, scope):
            calls.append(self.text)
            return {"called": self.text, "input": scope.input}

    def compile_intrinsic(text):
        if "(" not in text:
            raise CompileError(f"bad intrinsic '{text}'")
        return Call(text)

    module.is_intrinsic = lambda text: isinstance(text, str) and text.startswith("States.")
    module.compile_intrinsic = compile_intrinsic
    monkeypatch.setitem(sys.modules, "statemill.engine.intrinsics", module)
    monkeypatch.setattr(engine_package, "intrinsics", module, raising=False)
    return calls


def test_template_delegates_intrinsic_calls_to_the_intrinsics_module(fake_intrinsics):
    tpl = compile_template({"r.$": "States.Anything($.x)", "p.$": "$.zero"})
    assert tpl.evaluate(Scope({"zero": 0})) == {"r": {"called": "States.Anything($.x)", "input": {"zero": 0}},
                                                "p": 0}
    assert fake_intrinsics == ["States.Anything($.x)"]


def test_template_intrinsic_compile_error_gets_the_pointer(fake_intrinsics):
    with pytest.raises(CompileError) as raised:
        compile_template({"a": [{"r.$": "States.Broken"}]})
    assert raised.value.pointer == "/a/0/r.$"


def test_template_rejects_strings_that_are_neither_paths_nor_intrinsics(fake_intrinsics):
    with pytest.raises(CompileError) as raised:
        compile_template({"r.$": "Format('x')"})
    assert raised.value.pointer == "/r.$" and "'Format('x')'" in str(raised.value)


def _real_intrinsics():
    try:
        return importlib.import_module("statemill.engine.intrinsics")
    except ImportError:
        return None


needs_intrinsics = pytest.mark.skipif(_real_intrinsics() is None, reason="engine/intrinsics.py not available yet")


@needs_intrinsics
@pytest.mark.parametrize("template, expected", [
    ({"greeting.$": "States.Format('Hello {}', $.name)"}, {"greeting": "Hello Ann"}),
    ({"arr.$": "States.Array($.zero, $.no, $$.Execution.Id)"}, {"arr": [0, False, "exec-1"]}),
    ({"outer": [{"arr.$": "States.Array($count)"}]}, {"outer": [{"arr": [0]}]}),
], ids=["format-with-path", "array-with-falsy-and-context", "array-with-variable-nested"])
def test_template_evaluates_real_intrinsic_calls(template, expected):
    s = Scope({"name": "Ann", "zero": 0, "no": False}, context=CONTEXT, variables=VARIABLES)
    assert compile_template(template).evaluate(s) == expected


# ------------------------------------------------------------------------------------------------------------
# JSON text as AWS prints it
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    ({"a": 1, "b": [True, False, None]}, '{"a":1,"b":[true,false,null]}'),
    ("quote\" back\\ nl\n tab\t ctl\x01", '"quote\\" back\\\\ nl\\n tab\\t ctl\\u0001"'),
    ("é€😀", '"é€😀"'),
    (0, "0"), (0.0, "0.0"), (1.0, "1.0"), (1.5, "1.5"), (0.001, "0.001"), (0.0001, "1.0E-4"),
    (1234567.5, "1234567.5"), (12345678.9, "1.23456789E7"), (1e20, "1.0E20"), (-2.5e-7, "-2.5E-7"),
    (10 ** 20, "100000000000000000000"), ({}, "{}"), ([], "[]"), ("", '""'),
], ids=[
    "compact-object", "escapes", "non-ascii-kept", "int-zero", "float-zero", "float-one", "float", "small-float",
    "tiny-float-scientific", "float-below-1e7", "float-from-1e7-scientific", "huge-float", "negative-tiny",
    "big-int", "empty-object", "empty-array", "empty-string",
])
def test_to_json_text_matches_aws_compact_printing(value, text):
    assert to_json_text(value) == text
