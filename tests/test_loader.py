"""Spec for the loader: every problem in a definition is one located diagnostic, and a clean one compiles.

The table below holds one or more bad definitions per diagnostic code (engine/diagnostics.py ``CODES``). Each is
written inline as YAML (a few as JSON) so that the reported line and column can be read off the text, and each
contains exactly one problem: the loader must report it exactly once, under its most specific code, at the
pointer and line of the offending node.
"""
from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from statemill.engine import choice, intrinsics, loader, model, paths
from statemill.engine.diagnostics import CODES, Diagnostic
from statemill.engine.errors import DefinitionError
from statemill.engine.scope import Scope

EXAMPLES = Path(__file__).parents[1] / "statemachines"
LONG = "S" * 81  # one character over the limit on state names


def diagnose(text: str) -> list[Diagnostic]:
    """Diagnostics of a definition written inline (JSON when it starts with ``{``, YAML otherwise)."""
    text = textwrap.dedent(text).lstrip("\n")
    name = "machine.json" if text.lstrip().startswith("{") else "machine.yaml"
    return loader.validates(text, name=name)


def _alias_bomb(levels: int) -> str:
    """A "billion laughs": each anchor is nine aliases of the one before, so the text grows linearly and its value
    nine-fold per level."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines + ["StartAt: A", f"States: {{A: {{Type: Pass, Result: *a{levels - 1}, End: true}}}}"]) + "\n"


BOMB_6 = _alias_bomb(6)
JSON_PASS = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Result": '  # + a value + "}}}"
OVER_1_MIB = JSON_PASS + '"' + "x" * (1 << 20) + '"}}}'

def case(id, code, pointer, line, column, text, says=""):
    """A bad definition and the one diagnostic it must produce (``says``: a part of its message)."""
    return pytest.param(text, code, pointer, line, column, says, id=id)


CASES = [
    # ---------------------------------------------------------------------------- SM001: not YAML or JSON at all
    case("yaml_bad_indentation_at_parser_position", "SM001", "", 5, 4, """
        StartAt: A
        States:
          A:
            Type: Pass
           End: true
        """, says="invalid YAML"),
    case("yaml_unclosed_flow_sequence_at_end_of_text", "SM001", "", 3, 1, """
        StartAt: A
        States: [
        """, says="invalid YAML"),
    case("yaml_tab_indentation", "SM001", "", 3, 1, "StartAt: A\nStates:\n\tA: {Type: Pass, End: true}\n",
         says="invalid YAML"),
    case("yaml_non_scalar_key", "SM001", "/States", 3, 5, """
        StartAt: A
        States:
          ? [a, b]
          : {Type: Pass, End: true}
        """, says="keys must be plain strings"),
    case("json_trailing_comma_at_parser_position", "SM001", "", 4, 39, """
        {
          "StartAt": "A",
          "States": {
            "A": {"Type": "Pass", "End": true,}
          }
        }
        """, says="invalid JSON"),
    case("json_unterminated_string", "SM001", "", 2, 17, """
        {
          "StartAt": "A,
          "States": {"A": {"Type": "Pass", "End": true}}
        }
        """, says="invalid JSON"),
    case("json_missing_closing_brace", "SM001", "", 4, 1, """
        {
          "StartAt": "A",
          "States": {"A": {"Type": "Pass", "End": true}}
        """, says="invalid JSON"),
    # ---------------------------------------------------------------------------------- SM002: a repeated key
    case("yaml_duplicate_state_name", "SM002", "/States/A", 5, 3, """
        StartAt: A
        States:
          A:
            Type: Pass
          A:
            Type: Succeed
        """, says='duplicate key "A"'),
    case("yaml_duplicate_key_nested_in_result", "SM002", "/States/A/Result/deep/x", 8, 9, """
        StartAt: A
        States:
          A:
            Type: Pass
            Result:
              deep:
                x: 0
                x: null
            End: true
        """, says='duplicate key "x"'),
    case("yaml_duplicate_top_level_key", "SM002", "/StartAt", 4, 1, """
        StartAt: A
        States:
          A: {Type: Pass, End: true}
        StartAt: A
        """),
    case("json_duplicate_state_name", "SM002", "/States/A", 5, 5, """
        {
          "StartAt": "A",
          "States": {
            "A": {"Type": "Pass", "End": true},
            "A": {"Type": "Succeed"}
          }
        }
        """, says='duplicate key "A"'),
    case("json_duplicate_key_nested_in_parameters", "SM002", "/States/A/Parameters/a/b", 4, 60, """
        {
          "StartAt": "A",
          "States": {
            "A": {"Type": "Pass", "Parameters": {"a": {"b": false, "b": ""}}, "End": true}
          }
        }
        """, says='duplicate key "b"'),
    # ---------------------------------------------------- SM003: over AWS's 1 MiB, as text or once aliases expand
    case("yaml_alias_bomb_refused_at_the_anchor_that_expands_past_1_MiB", "SM003", "", 6, 5, BOMB_6,
         says="3,321,505 bytes as JSON once its YAML aliases are expanded"),
    case("json_text_over_1_MiB_located_where_the_limit_ends", "SM003", "", 1, 1_048_577, OVER_1_MIB,
         says="AWS allows at most 1 MiB"),
    # ------------------------------------------------------ SM004: nested more than 100 levels, or an alias loop
    case("yaml_nested_101_levels", "SM004", "", 6, 110, "StartAt: A\nStates:\n  A:\n    Type: Pass\n    End: true\n"
         "    Result: " + "[" * 98 + "0" + "]" * 98 + "\n", says="more than 100 levels deep"),
    case("json_nested_101_levels", "SM004", "", 1, 171, JSON_PASS + "[" * 98 + "]" * 98 + "}}}",
         says="more than 100 levels deep"),
    case("json_nested_1000_levels_is_not_a_recursion_error", "SM004", "", 1, 171,
         JSON_PASS + "[" * 1000 + "]" * 1000 + "}}}", says="more than 100 levels deep"),
    case("yaml_anchor_used_inside_itself", "SM004", "", 6, 13, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Result: &x [0, *x]
        """, says="refers to a node that contains it"),
    case("yaml_state_used_as_its_own_result", "SM004", "", 3, 6, """
        StartAt: A
        States:
          A: &a
            Type: Pass
            End: true
            Result: *a
        """, says="refers to a node that contains it"),
    case("yaml_alias_nesting_past_100_levels_where_used", "SM004", "", 6, 14,
         "StartAt: A\nStates:\n  A:\n    Type: Pass\n    End: true\n    Comment: &a0 " + "[" * 30 + "x" + "]" * 30
         + "\n    Result: " + "[" * 70 + "*a0" + "]" * 70 + "\n", says="(YAML aliases expanded) nest more than 100"),
    # ----------------------------------------------------------------------- SM005: a YAML tag JSON does not have
    case("yaml_binary_tag", "SM005", "", 6, 13, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Result: !!binary aGVsbG8=
        """, says="the YAML tag !!binary has no JSON equivalent"),
    case("yaml_explicit_timestamp_tag", "SM005", "", 6, 18, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Result: {at: !!timestamp 2024-01-01}
        """, says="!!timestamp"),
    case("yaml_set_tag", "SM005", "", 6, 13, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Result: !!set {a, b}
        """, says="!!set"),
    case("yaml_python_tag_on_a_sequence", "SM005", "", 6, 17, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Parameters: !!python/tuple [0, false]
        """, says="!!python/tuple"),
    case("yaml_custom_tag_on_a_mapping_no_longer_loads_silently", "SM005", "", 6, 13, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Result: !custom {x: ""}
        """, says="!custom"),
    case("yaml_custom_tag_on_a_key", "SM005", "", 6, 14, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Result: {!custom k: null}
        """, says="!custom"),
    # ----------------------------------------------------------------------- SM006: a number JSON cannot carry
    case("yaml_nan_in_result", "SM006", "", 6, 17, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Result: {x: .nan}
        """, says=".nan is not a JSON number"),
    case("yaml_infinity_in_parameters", "SM006", "", 6, 25, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Parameters: {x: [0, .inf]}
        """, says=".inf is not a JSON number"),
    case("yaml_negative_infinity_as_choice_operand", "SM006", "", 5, 46, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices: [{Variable: $.n, NumericEquals: -.inf, Next: D}]
            Default: D
          D: {Type: Succeed}
        """, says="-.inf is not a JSON number"),
    case("yaml_number_beyond_a_double", "SM006", "", 6, 13, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: true
            Result: 1e999
        """, says="1e999 is out of the range of a double"),
    case("yaml_integer_of_5000_digits", "SM006", "", 6, 13, "StartAt: A\nStates:\n  A:\n    Type: Pass\n"
         "    End: true\n    Result: " + "9" * 5000 + "\n", says="more than 4,300 digits"),
    case("json_nan_in_result", "SM006", "", 1, 80, JSON_PASS + '{"x": NaN}}}}', says="NaN is not a JSON number"),
    case("json_infinity", "SM006", "", 1, 74, JSON_PASS + "Infinity}}}", says="Infinity is not a JSON number"),
    case("json_negative_infinity_as_choice_operand", "SM006", "", 1, 102,
         '{"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": '
         '-Infinity, "Next": "D"}], "Default": "D"}, "D": {"Type": "Succeed"}}}', says="-Infinity is not a JSON"),
    case("json_number_beyond_a_double", "SM006", "", 1, 78, JSON_PASS + "[0, 1e400]}}}",
         says="1e400 is out of the range of a double"),
    case("json_integer_of_5000_digits", "SM006", "", 1, 74, JSON_PASS + "9" * 5000 + "}}}",
         says="more than 4,300 digits"),
    # ------------------------------------------------------------------------------------ SM101: unknown field
    case("unknown_state_field_suggests_close_name", "SM101", "/States/A/Coment", 5, 5, """
        StartAt: A
        States:
          A:
            Type: Pass
            Coment: typo
            End: true
        """, says='field "Coment" is not allowed in a Pass state (did you mean "Comment"?)'),
    case("unknown_top_level_field_suggests_close_name", "SM101", "/TimeoutSecond", 2, 1, """
        StartAt: A
        TimeoutSecond: 5
        States:
          A: {Type: Pass, End: true}
        """, says='(did you mean "TimeoutSeconds"?)'),
    case("field_of_another_state_type", "SM101", "/States/A/Resource", 5, 5, """
        StartAt: A
        States:
          A:
            Type: Pass
            Resource: arn:aws:lambda:us-east-1:123456789012:function:f
            End: true
        """, says='"Resource" is not allowed in a Pass state'),
    case("json_unknown_field_located_at_its_key", "SM101", "/States/A/Foo", 4, 40, """
        {
          "StartAt": "A",
          "States": {
            "A": {"Type": "Pass", "End": true, "Foo": 0}
          }
        }
        """),
    # ----------------------------------------------------------------------------- SM102: missing required field
    case("task_without_resource", "SM102", "/States/A", 4, 5, """
        StartAt: A
        States:
          A:
            Type: Task
            End: true
        """, says='missing required field "Resource"'),
    case("state_without_type", "SM102", "/States/A", 3, 6, """
        StartAt: A
        States:
          A: {End: true}
        """, says='"Type"'),
    case("catcher_without_next", "SM102", "/States/A/Catch/0", 7, 9, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Catch:
              - ErrorEquals: [Oops]
            End: true
        """, says='"Next"'),
    case("machine_without_states", "SM102", "", 1, 1, """
        StartAt: A
        Comment: ""
        """, says='"States"'),
    # ----------------------------------------------------------------------------------- SM103: wrong type/enum
    case("timeout_seconds_as_string", "SM103", "/States/A/TimeoutSeconds", 5, 21, """
        StartAt: A
        States:
          A:
            Type: Task
            TimeoutSeconds: "10"
            Resource: work
            End: true
        """),
    case("unknown_state_type", "SM103", "/States/A/Type", 4, 11, """
        StartAt: A
        States:
          A:
            Type: Passs
            End: true
        """, says="'Passs' is not one of"),
    case("jitter_strategy_outside_enum", "SM103", "/States/A/Retry/0/JitterStrategy", 8, 25, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Retry:
              - ErrorEquals: [Oops]
                JitterStrategy: SOME
            End: true
        """),
    case("result_path_not_starting_with_dollar", "SM103", "/States/A/ResultPath", 4, 17, """
        StartAt: A
        States:
          A:
            ResultPath: result
            Type: Pass
            End: true
        """),
    case("definition_is_a_list", "SM103", "", 1, 1, """
        - StartAt: A
        """, says="must be an object"),
    # ------------------------------------------------------------------------------------ SM104: out of range
    case("timeout_seconds_zero", "SM104", "/States/A/TimeoutSeconds", 5, 21, """
        StartAt: A
        States:
          A:
            Type: Task
            TimeoutSeconds: 0
            Resource: work
            End: true
        """),
    case("heartbeat_seconds_negative", "SM104", "/States/A/HeartbeatSeconds", 6, 23, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            HeartbeatSeconds: -5
            End: true
        """),
    case("interval_seconds_above_99999999", "SM104", "/States/A/Retry/0/IntervalSeconds", 8, 26, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Retry:
              - ErrorEquals: [Oops]
                IntervalSeconds: 100000000
            End: true
        """, says="maximum of 99999999"),
    case("backoff_rate_below_one", "SM104", "/States/A/Retry/0/BackoffRate", 8, 22, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Retry:
              - ErrorEquals: [Oops]
                BackoffRate: 0.5
            End: true
        """),
    case("wait_seconds_negative", "SM104", "/States/W/Seconds", 3, 28, """
        StartAt: W
        States:
          W: {Type: Wait, Seconds: -1, End: true}
        """),
    case("json_max_attempts_negative", "SM104", "/States/A/Retry/0/MaxAttempts", 6, 54, """
        {
          "StartAt": "A",
          "States": {
            "A": {"Type": "Task", "Resource": "work", "End": true,
                  "Retry": [
                    {"ErrorEquals": ["Oops"], "MaxAttempts": -1}
                  ]}
          }
        }
        """),
    # ------------------------------------------------------------------------ SM105: other schema constraints
    case("parallel_with_no_branches", "SM105", "/States/P/Branches", 5, 15, """
        StartAt: P
        States:
          P:
            Type: Parallel
            Branches: []
            End: true
        """, says="non-empty"),
    case("retrier_with_empty_error_equals", "SM105", "/States/A/Retry/0/ErrorEquals", 7, 22, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Retry:
              - ErrorEquals: []
            End: true
        """),
    # ------------------------------------------------------------------------------ SM201: StartAt names nothing
    case("start_at_missing_suggests_close_name", "SM201", "/StartAt", 1, 10, """
        StartAt: Strat
        States:
          Start: {Type: Pass, End: true}
        """, says='StartAt "Strat" names no state of this scope (did you mean "Start"?)'),
    case("branch_start_at_missing", "SM201", "/States/P/Branches/0/StartAt", 6, 18, """
        StartAt: P
        States:
          P:
            Type: Parallel
            Branches:
              - StartAt: Nowhere
                States:
                  B: {Type: Pass, End: true}
            End: true
        """),
    # ------------------------------------------------------------------------------- SM202: duplicate state names
    case("duplicate_state_names_across_parallel_branches", "SM202", "/States/P/Branches/1/States/Same", 11, 11, """
        StartAt: P
        States:
          P:
            Type: Parallel
            Branches:
              - StartAt: Same
                States:
                  Same: {Type: Pass, End: true}
              - StartAt: Same
                States:
                  Same: {Type: Pass, End: true}
            End: true
        """, says="already exists at /States/P/Branches/0/States/Same"),
    case("map_processor_state_named_like_outer_state", "SM202", "/States/Work/ItemProcessor/States/Work", 8, 9, """
        StartAt: Work
        States:
          Work:
            Type: Map
            ItemProcessor:
              StartAt: Work
              States:
                Work: {Type: Pass, End: true}
            End: true
        """),
    # ------------------------------------------------------------------------------- SM203: missing targets
    case("next_target_missing_suggests_close_name", "SM203", "/States/Charge/Next", 5, 11, """
        StartAt: Charge
        States:
          Charge:
            Type: Pass
            Next: Shipp
          Ship:
            Type: Succeed
        """, says='state "Charge": Next target "Shipp" does not exist (did you mean "Ship"?)'),
    case("default_target_missing", "SM203", "/States/C/Default", 7, 14, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - {Variable: $.n, NumericEquals: 0, Next: Zero}
            Default: Elsewhere
          Zero: {Type: Succeed}
        """, says='Default target "Elsewhere" does not exist'),
    case("choice_rule_next_missing", "SM203", "/States/C/Choices/0/Next", 7, 15, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - Variable: $.flag
                Next: Approvd
                BooleanEquals: false
            Default: Approved
          Approved: {Type: Succeed}
        """, says='Choice rule Next target "Approvd" does not exist (did you mean "Approved"?)'),
    case("catch_next_missing", "SM203", "/States/A/Catch/0/Next", 8, 15, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Catch:
              - ErrorEquals: [States.ALL]
                Next: Recover
            End: true
          Recovery: {Type: Succeed}
        """, says='Catch Next target "Recover" does not exist (did you mean "Recovery"?)'),
    case("next_crosses_parallel_branch_boundary", "SM203", "/States/P/Branches/0/States/Inner/Next", 8, 37, """
        StartAt: P
        States:
          P:
            Type: Parallel
            Branches:
              - StartAt: Inner
                States:
                  Inner: {Type: Pass, Next: Done}
            Next: Done
          Done: {Type: Succeed}
        """, says="in another scope"),
    case("json_next_target_missing", "SM203", "/States/A/Next", 4, 35, """
        {
          "StartAt": "A",
          "States": {
            "A": {"Type": "Pass", "Next": "Bb"},
            "B": {"Type": "Succeed"}
          }
        }
        """, says='(did you mean "B"?)'),
    # ------------------------------------------------------------------------------- SM204: long state names
    case("state_name_over_80_characters", "SM204", f"/States/{LONG}", 4, 3, f"""
        StartAt: A
        States:
          A: {{Type: Pass, Next: {LONG}}}
          {LONG}: {{Type: Succeed}}
        """, says="at most 80 characters (this one has 81)"),
    # ---------------------------------------------------------------------------------- SM205: Next and End
    case("next_and_end_together", "SM205", "/States/A/End", 6, 5, """
        StartAt: A
        States:
          A:
            Type: Pass
            Next: B
            End: true
          B: {Type: Succeed}
        """, says="both Next and End"),
    case("neither_next_nor_end", "SM205", "/States/A", 3, 3, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
        """, says="needs either Next or End"),
    case("end_false_without_next", "SM205", "/States/A", 3, 3, """
        StartAt: A
        States:
          A:
            Type: Pass
            End: false
        """),
    # --------------------------------------------------------------------------------- SM206: Choice with End
    case("choice_state_with_end", "SM206", "/States/C/End", 8, 5, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - {Variable: $.n, NumericEquals: 0, Next: Zero}
            Default: Zero
            End: true
          Zero: {Type: Succeed}
        """, says="cannot End"),
    # ------------------------------------------------------------------------------ SM207: unreachable states
    case("unreachable_state", "SM207", "/States/Orphan", 4, 3, """
        StartAt: A
        States:
          A: {Type: Pass, End: true}
          Orphan: {Type: Succeed}
        """, says="unreachable"),
    case("unreachable_state_inside_branch", "SM207", "/States/P/Branches/0/States/Lost", 9, 11, """
        StartAt: P
        States:
          P:
            Type: Parallel
            Branches:
              - StartAt: In
                States:
                  In: {Type: Succeed}
                  Lost: {Type: Succeed}
            End: true
        """),
    # ------------------------------------------------------------------------ SM208: no terminal state reachable
    case("loop_without_terminal_state", "SM208", "/StartAt", 1, 10, """
        StartAt: Ping
        States:
          Ping: {Type: Pass, Next: Pong}
          Pong: {Type: Wait, Seconds: 0, Next: Ping}
        """, says="the machine can never finish"),
    case("branch_loop_without_terminal_state", "SM208", "/States/P/Branches/0/StartAt", 6, 18, """
        StartAt: P
        States:
          P:
            Type: Parallel
            Branches:
              - StartAt: Again
                States:
                  Again: {Type: Pass, Next: Again}
            End: true
        """, says="this branch can never finish"),
    # ----------------------------------------------------------------------------------- SM301: States.ALL
    case("states_all_not_alone", "SM301", "/States/A/Retry/0/ErrorEquals/0", 7, 23, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Retry:
              - ErrorEquals: [States.ALL, Oops]
            End: true
        """, says="States.ALL must be the only error name of the last Retry entry"),
    case("states_all_not_last", "SM301", "/States/A/Catch/0/ErrorEquals/0", 7, 23, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Catch:
              - ErrorEquals: [States.ALL]
                Next: Done
              - ErrorEquals: [Oops]
                Next: Done
            End: true
          Done: {Type: Succeed}
        """, says="last Catch entry"),
    # ------------------------------------------------------------------------- SM302: unknown States.* names
    case("unknown_states_error_suggests_close_name", "SM302", "/States/A/Retry/0/ErrorEquals/1", 7, 29, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Retry:
              - ErrorEquals: [Oops, States.Timout]
            End: true
        """, says='"States.Timout" is not an error name AWS defines (did you mean "States.Timeout"?)'),
    case("unknown_states_error_in_catch", "SM302", "/States/A/Catch/0/ErrorEquals/0", 7, 23, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Catch:
              - ErrorEquals: [States.Whatever]
                Next: Done
            End: true
          Done: {Type: Succeed}
        """),
    # ---------------------------------------------------------------------------------------- SM401: bad Paths
    case("input_path_does_not_parse", "SM401", "/States/A/InputPath", 5, 16, """
        StartAt: A
        States:
          A:
            Type: Pass
            InputPath: $.a[
            End: true
        """, says="unclosed '['"),
    case("dollar_value_path_does_not_parse", "SM401", "/States/A/Parameters/x.$", 6, 12, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters:
              x.$: $.a[
            End: true
        """),
    case("choice_variable_does_not_parse", "SM401", "/States/C/Choices/0/Variable", 6, 19, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - Variable: $.a[
                IsNull: true
                Next: Done
            Default: Done
          Done: {Type: Succeed}
        """),
    # ---------------------------------------------------------------------- SM402: Reference Paths, single node
    case("result_path_with_wildcard", "SM402", "/States/A/ResultPath", 5, 17, """
        StartAt: A
        States:
          A:
            Type: Pass
            ResultPath: $.items[*]
            End: true
        """, says="wildcards"),
    case("result_path_with_filter", "SM402", "/States/A/ResultPath", 5, 17, """
        StartAt: A
        States:
          A:
            Type: Pass
            ResultPath: $.items[?(@.n == 0)]
            End: true
        """, says="filter"),
    case("items_path_with_slice", "SM402", "/States/M/ItemsPath", 5, 16, """
        StartAt: M
        States:
          M:
            Type: Map
            ItemsPath: $.items[0:2]
            ItemProcessor:
              StartAt: I
              States:
                I: {Type: Pass, End: true}
            End: true
        """, says="slices"),
    case("result_path_with_recursive_descent", "SM402", "/States/A/ResultPath", 5, 17, """
        StartAt: A
        States:
          A:
            Type: Pass
            ResultPath: $..a
            End: true
        """),
    # ------------------------------------------------------------------------------ SM403: bad .$ values
    case("dollar_value_not_a_path", "SM403", "/States/A/Parameters/greeting.$", 6, 19, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters:
              greeting.$: hello
            End: true
        """, says="neither a JSONPath nor an intrinsic function call"),
    case("dollar_value_not_a_string", "SM403", "/States/A/Parameters/n.$", 6, 12, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters:
              n.$: 0
            End: true
        """, says="got 0"),
    case("dollar_value_null", "SM403", "/States/A/Parameters/n.$", 6, 12, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters:
              n.$: null
            End: true
        """, says="got null"),
    case("dollar_value_empty_string", "SM403", "/States/A/ResultSelector/e.$", 7, 12, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            ResultSelector:
              e.$: ""
            End: true
        """),
    # ------------------------------------------------------------------------------ SM404: bad intrinsic calls
    case("intrinsic_unknown_name_suggests_close_name", "SM404", "/States/A/Parameters/s.$", 6, 12, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters:
              s.$: States.Formatt('{}', $.x)
            End: true
        """, says="did you mean States.Format?"),
    case("intrinsic_wrong_arity", "SM404", "/States/A/Parameters/n.$", 6, 12, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters:
              n.$: States.ArrayLength($.a, $.b)
            End: true
        """, says="expects 1 argument but got 2"),
    case("intrinsic_unclosed_call", "SM404", "/States/A/Parameters/nested/s.$", 7, 14, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters:
              nested:
                s.$: States.Format('{}', $.x
            End: true
        """),
    case("fail_error_path_unknown_intrinsic", "SM404", "/States/F/ErrorPath", 5, 16, """
        StartAt: F
        States:
          F:
            Type: Fail
            ErrorPath: States.Formatt('oops')
        """),
    # --------------------------------------------------------------------- SM405: same key once .$ is stripped
    case("duplicate_key_after_stripping_dollar", "SM405", "/States/A/Parameters/a.$", 7, 12, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters:
              a: 0
              a.$: $.a
            End: true
        """, says="The field 'a' is defined twice"),
    case("duplicate_key_after_stripping_dollar_nested_in_list", "SM405",
         "/States/A/Parameters/list/0/k.$", 8, 16, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Parameters:
              list:
                - k.$: $.k
                  k: ""
            End: true
        """),
    # ----------------------------------------------------------------------------------- SM501: Wait fields
    case("wait_with_two_fields", "SM501", "/States/W", 3, 3, """
        StartAt: W
        States:
          W:
            Type: Wait
            Seconds: 0
            SecondsPath: $.delay
            End: true
        """, says="found Seconds, SecondsPath"),
    case("wait_with_no_field", "SM501", "/States/W", 3, 3, """
        StartAt: W
        States:
          W:
            Type: Wait
            End: true
        """, says="found none"),
    # ------------------------------------------------------------------------------------- SM502: Choice rules
    case("choice_rule_with_two_operators", "SM502", "/States/C/Choices/0/IsPresent", 8, 9, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - Variable: $.x
                IsNull: false
                IsPresent: true
                Next: Done
            Default: Done
          Done: {Type: Succeed}
        """, says="exactly one operator, found 2: IsNull, IsPresent"),
    case("choice_rule_without_operator", "SM502", "/States/C/Choices/0", 6, 9, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - Variable: $.x
                Next: Done
            Default: Done
          Done: {Type: Succeed}
        """, says="no comparison operator"),
    case("nested_choice_rule_without_operator", "SM502", "/States/C/Choices/0/And/1", 8, 13, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - And:
                  - {Variable: $.x, IsNull: false}
                  - {Variable: $.y}
                Next: Done
            Default: Done
          Done: {Type: Succeed}
        """),
    # ------------------------------------------------------------------------------- SM503: heartbeat/timeout
    case("heartbeat_equal_to_timeout", "SM503", "/States/A/HeartbeatSeconds", 7, 23, """
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            TimeoutSeconds: 10
            HeartbeatSeconds: 10
            End: true
        """, says="HeartbeatSeconds (10) must be smaller than TimeoutSeconds (10)"),
    case("heartbeat_above_timeout", "SM503", "/States/A/HeartbeatSeconds", 5, 23, """
        StartAt: A
        States:
          A:
            Type: Task
            HeartbeatSeconds: 60
            TimeoutSeconds: 30
            Resource: work
            End: true
        """),
    # ------------------------------------------------------------------------ SM504: the other query language
    case("jsonata_field_in_jsonpath_state", "SM504", "/States/A/Output", 5, 5, """
        StartAt: A
        States:
          A:
            Type: Pass
            Output: "{% $states.input %}"
            End: true
        """, says='field "Output" belongs to JSONata, but this state uses JSONPath'),
    case("jsonpath_field_in_jsonata_machine", "SM504", "/States/A/Parameters", 6, 5, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            Parameters: {a: 0}
            End: true
        """, says='field "Parameters" belongs to JSONPath, but this state uses JSONata'),
    case("jsonpath_field_in_state_declared_jsonata", "SM504", "/States/A/InputPath", 6, 5, """
        StartAt: A
        States:
          A:
            Type: Pass
            QueryLanguage: JSONata
            InputPath: $.a
            End: true
        """, says="this state uses JSONata"),
    # ------------------------------------------------------------------ SM505: JSONPath state in JSONata machine
    case("jsonpath_state_in_jsonata_machine", "SM505", "/States/A/QueryLanguage", 6, 20, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            QueryLanguage: JSONPath
            End: true
        """, says="cannot use JSONPath"),
    # ------------------------------------------------------------------------------------- SM506: timestamps
    case("wait_timestamp_impossible_date", "SM506", "/States/W/Timestamp", 5, 16, """
        StartAt: W
        States:
          W:
            Type: Wait
            Timestamp: "2026-02-30T00:00:00Z"
            End: true
        """, says='"2026-02-30T00:00:00Z" is not an RFC 3339 timestamp'),
    case("wait_timestamp_without_t_separator", "SM506", "/States/W/Timestamp", 5, 16, """
        StartAt: W
        States:
          W:
            Type: Wait
            Timestamp: 2026-03-14 01:59:00
            End: true
        """),
    case("choice_timestamp_operand_not_a_timestamp", "SM506", "/States/C/Choices/0/TimestampEquals", 7, 26, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - Variable: $.when
                TimestampEquals: yesterday
                Next: Done
            Default: Done
          Done: {Type: Succeed}
        """),
    case("choice_timestamp_operand_impossible_date", "SM506", "/States/C/Choices/0/TimestampLessThan", 7, 28, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - Variable: $.when
                TimestampLessThan: "2026-13-01T00:00:00Z"
                Next: Done
            Default: Done
          Done: {Type: Succeed}
        """),
    # ------------------------------------------------------------------------------------ SM507: bad JSONata
    case("jsonata_expression_does_not_parse", "SM507", "/States/A/Output/total", 7, 14, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            Output:
              total: "{% $states.input.a + %}"
            End: true
        """, says="does not parse"),
    case("jsonata_expression_half_enclosed", "SM507", "/States/A/Output", 6, 13, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            Output: "{% $states.input"
            End: true
        """, says="not enclosed"),
    # ------------------------------------------------------- SM508-SM511: where $states members and variables go
    case("states_result_in_arguments", "SM508", "/States/T/Arguments/x", 8, 10, """
        StartAt: T
        QueryLanguage: JSONata
        States:
          T:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Arguments:
              x: "{% $states.result %}"
            End: true
        """, says="$states.result is not available"),
    case("states_result_in_pass_output", "SM508", "/States/A/Output", 6, 13, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            Output: "{% $states.result %}"
            End: true
        """, says="only in the Output and Assign of a Task"),
    case("error_output_outside_a_catcher", "SM508", "/States/A/Assign/e", 7, 10, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            Assign:
              e: "{% $states.errorOutput %}"
            End: true
        """, says="$states.errorOutput"),
    case("dollar_at_the_top_of_an_expression", "SM509", "/States/A/Output", 6, 13, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            Output: "{% $.x %}"
            End: true
        """, says="'$' cannot be used at the top level"),
    case("field_name_at_the_top_of_an_expression", "SM509", "/States/A/Output", 6, 13, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            Output: "{% order.total %}"
            End: true
        """, says="$states.input.order"),
    case("assign_to_reserved_states", "SM510", "/States/A/Assign/states", 6, 7, """
        StartAt: A
        States:
          A:
            Type: Pass
            Assign:
              states: 0
            End: true
        """, says="reserved"),
    case("assign_to_invalid_name", "SM510", "/States/A/Assign/order.total", 6, 7, """
        StartAt: A
        States:
          A:
            Type: Pass
            Assign:
              order.total: ""
            End: true
        """, says="not a valid variable name"),
    case("branch_assigns_an_outer_variable", "SM511", "/States/P/Branches/0/States/B/Assign/count", 15, 15, """
        StartAt: A
        States:
          A:
            Type: Pass
            Assign: {count: 0}
            Next: P
          P:
            Type: Parallel
            Branches:
              - StartAt: B
                States:
                  B:
                    Type: Pass
                    Assign:
                      count: 1
                    End: true
            End: true
        """, says="outer scope"),
    # ------------------------------------------------------------------------------ SM901: warnings, not errors
    case("choice_without_default_warns", "SM901", "/States/C", 3, 3, """
        StartAt: C
        States:
          C:
            Type: Choice
            Choices:
              - {Variable: $.n, NumericEquals: 0, Next: Done}
          Done: {Type: Succeed}
        """, says="States.NoChoiceMatched"),
    case("variable_never_assigned_warns", "SM902", "/States/A", 4, 3, """
        StartAt: A
        QueryLanguage: JSONata
        States:
          A:
            Type: Pass
            Output: "{% $missing %}"
            End: true
        """, says="$missing"),
    case("jsonpath_variable_never_assigned_warns", "SM902", "/States/A", 3, 3, """
        StartAt: A
        States:
          A:
            Type: Pass
            Parameters: {"x.$": "$missing.a"}
            End: true
        """, says="$missing"),
]


@pytest.mark.parametrize("text, code, pointer, line, column, says", CASES)
def test_each_problem_is_one_located_diagnostic(text, code, pointer, line, column, says):
    found = diagnose(text)
    assert [(d.code, d.pointer) for d in found] == [(code, pointer)], [d.format() for d in found]
    (diagnostic,) = found
    assert (diagnostic.line, diagnostic.column) == (line, column), diagnostic.format()
    assert says in diagnostic.message
    assert diagnostic.severity == ("warning" if code.startswith("SM9") else "error")
    assert diagnostic.file in ("machine.yaml", "machine.json")


def test_every_code_has_a_case():
    covered = {param.values[1] for param in CASES}
    assert covered == set(CODES)


def test_every_code_is_documented_with_a_meaning():
    assert all(code.startswith("SM") and len(code) == 5 and meaning for code, meaning in CODES.items())


# ------------------------------------------------------------------------------- several problems at once
@pytest.mark.parametrize("text, expected", [
    pytest.param("""
        StartAt: C
        States:
          C:
            Type: Choice
            Choices: [{Variable: $.n, IsNull: true, Next: D}]
            Default: D
            End: true
            Foo: 0
          D: {Type: Succeed}
        """, [("SM206", "/States/C/End"), ("SM101", "/States/C/Foo")], id="choice_end_and_unknown_field_both_reported"),
    pytest.param("""
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            TimeoutSeconds: 0
            Next: B
            End: true
          B: {Type: Succeed}
        """, [("SM104", "/States/A/TimeoutSeconds"), ("SM205", "/States/A/End")],
        id="next_and_end_reported_beside_an_unrelated_range_error"),
    pytest.param("""
        StartAt: A
        States:
          A:
            Type: Task
            Resource: work
            Retry:
              - ErrorEquals: [States.ALL, States.Nope]
            End: true
        """, [("SM301", "/States/A/Retry/0/ErrorEquals/0"), ("SM302", "/States/A/Retry/0/ErrorEquals/1")],
        id="states_all_not_alone_and_unknown_name_in_the_same_list"),
    pytest.param("""
        StartAt: W
        States:
          W: {Type: Wait, Seconds: 1, Timestamp: "2026-01-01T00:00:00Z", SecondsPath: $.s, TimestampPath: $.t,
              End: true}
        """, [("SM501", "/States/W")], id="wait_with_four_fields_is_one_problem"),
    pytest.param("""
        StartAt: W
        States:
          W: {Type: Wait, Seconds: 0}
        """, [("SM205", "/States/W")], id="wait_without_next_or_end_is_not_a_wait_field_problem"),
    pytest.param("""
        StartAt: W
        States:
          W: {Type: Wait}
        """, [("SM205", "/States/W"), ("SM501", "/States/W")], id="wait_without_any_field_nor_next_is_two_problems"),
    pytest.param("""
        StartAt: A
        States:
          A: {Type: Pass, Next: Shipp}
          Ship: {Type: Succeed}
        """, [("SM203", "/States/A/Next")], id="typo_in_next_does_not_also_report_unreachable_or_endless"),
    pytest.param("""
        StartAt: A
        States:
          A: {Type: Pass}
          B: {Type: Succeed}
        """, [("SM205", "/States/A")], id="dead_end_does_not_also_report_unreachable_or_endless"),
    pytest.param("""
        StartAt: A
        States:
          A: {Type: Pass, Next: B}
          B: {Type: Pass, Next: B}
          C: {Type: Succeed}
        """, [("SM207", "/States/C"), ("SM208", "/StartAt")], id="unreachable_and_endless_are_two_problems"),
    pytest.param("""
        StartAt: P
        States:
          P:
            Type: Parallel
            Branches:
              - StartAt: X
                States:
                  X: {Type: Pass, End: true}
              - StartAt: X
                States:
                  X: {Type: Pass, End: true}
              - StartAt: X
                States:
                  X: {Type: Pass, End: true}
            End: true
        """, [("SM202", "/States/P/Branches/1/States/X"), ("SM202", "/States/P/Branches/2/States/X")],
        id="each_repeated_name_reported_where_it_repeats"),
])
def test_several_problems_each_reported_once(text, expected):
    found = diagnose(text)
    assert sorted((d.code, d.pointer) for d in found) == sorted(expected), [d.format() for d in found]


def test_diagnostics_are_sorted_by_position():
    found = diagnose("""
        StartAt: A
        States:
          A: {Type: Pass, Next: B, TimeoutSeconds: 1}
          B: {Type: Pass, Next: Nope}
        """)
    assert [d.line for d in found] == sorted(d.line for d in found)
    assert {d.code for d in found} == {"SM101", "SM203"}


# ----------------------------------------------------------------------------------------- clean definitions
FALSY = """
    StartAt: First
    Comment: ""
    States:
      First:
        Type: Pass
        Result: {zero: 0, no: false, empty: "", nothing: null, list: [0, false, "", null]}
        ResultPath: $.result
        Next: Second
      Second:
        Type: Pass
        Parameters:
          zero: 0
          no: false
          empty: ""
          nothing: null
          copied.$: $.result.zero
        Next: Check
      Check:
        Type: Choice
        Choices:
          - {Variable: $.zero, NumericEquals: 0, Next: Done}
          - {Variable: $.empty, StringEquals: "", Next: Done}
          - {Variable: $.no, BooleanEquals: false, Next: Done}
        Default: Done
      Done:
        Type: Wait
        Seconds: 0
        End: true
    """


def test_falsy_values_are_values_not_missing():
    assert diagnose(FALSY) == []
    machine = loader.loads(textwrap.dedent(FALSY), name="falsy.yaml")
    assert machine.states["First"].result == {"zero": 0, "no": False, "empty": "", "nothing": None,
                                              "list": [0, False, "", None]}
    assert machine.states["Second"].parameters.evaluate(Scope({"result": {"zero": 0}})) == {
        "zero": 0, "no": False, "empty": "", "nothing": None, "copied": 0}
    assert machine.states["Done"].seconds == 0
    assert machine.comment == ""


def test_state_name_of_exactly_80_characters_is_fine():
    name = "N" * 80
    assert diagnose(f"StartAt: {name}\nStates:\n  {name}: {{Type: Succeed}}\n") == []


def test_json_definition_validates_clean():
    text = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": [0, False, "", None],
                                                         "End": True}}}, indent=2)
    assert diagnose(text) == []


@pytest.mark.parametrize("text", [
    pytest.param("""
        StartAt: A
        States:
          A:
            Type: Pass
            Result:
              when: 2026-03-14T01:59:00Z
              day: 2026-03-14
            End: true
        """, id="yaml_timestamps_stay_strings"),
])
def test_yaml_timestamps_stay_strings(text):
    machine = loader.loads(textwrap.dedent(text), name="t.yaml")
    assert machine.states["A"].result == {"when": "2026-03-14T01:59:00Z", "day": "2026-03-14"}


def test_yaml_wait_timestamp_unquoted_is_a_string():
    machine = loader.loads("StartAt: W\nStates:\n  W: {Type: Wait, Timestamp: 2026-03-14T01:59:00Z, End: true}\n",
                           name="t.yaml")
    assert machine.states["W"].timestamp == "2026-03-14T01:59:00Z"


def test_yaml_keys_like_on_yes_and_numbers_stay_strings():
    text = """
        StartAt: A
        States:
          A:
            Type: Pass
            Result: {On: 1, yes: 2, no: 3, Off: 4, 1: 5, null: 6, true: 7}
            End: true
        """
    machine = loader.loads(textwrap.dedent(text), name="t.yaml")
    assert machine.states["A"].result == {"On": 1, "yes": 2, "no": 3, "Off": 4, "1": 5, "null": 6, "true": 7}


def test_yaml_state_named_yes_is_a_state_name():
    machine = loader.loads('StartAt: "yes"\nStates:\n  yes: {Type: Succeed}\n', name="t.yaml")
    assert list(machine.states) == ["yes"]


def test_yaml_yes_as_a_value_is_still_a_boolean():
    """Only keys are kept as text; a bare ``yes`` value is YAML's true, so StartAt must be quoted."""
    (diagnostic,) = diagnose("StartAt: yes\nStates:\n  yes: {Type: Succeed}\n")
    assert (diagnostic.code, diagnostic.pointer, diagnostic.line) == ("SM103", "/StartAt", 1)


def _examples() -> list[Path]:
    """The example definitions shipped in statemachines/ (``*_input.json`` files are execution inputs)."""
    found = [*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("*.yml"), *EXAMPLES.glob("*.json")]
    return sorted(p for p in found if not p.name.endswith("_input.json"))


@pytest.mark.parametrize("path", _examples() or [None], ids=lambda p: p.name if p else "none")
def test_every_example_validates_clean(path):
    if path is None:
        pytest.skip("no example state machines in statemachines/ yet")
    found = loader.validate(path)
    assert [d.format() for d in found if d.severity == "error"] == []
    assert isinstance(loader.load(path), model.StateMachine)


# ----------------------------------------------------------------------------------------- the compiled model
MODEL = """
    StartAt: Charge
    States:
      Charge:
        Type: Task
        Resource: charge
        InputPath: $.order
        Parameters:
          amount.$: $.total
          label.$: States.Format('order {}', $.id)
        ResultPath: $.receipt
        TimeoutSeconds: 30
        HeartbeatSeconds: 10
        Retry:
          - ErrorEquals: [States.Timeout]
            MaxAttempts: 0
        Catch:
          - ErrorEquals: [States.ALL]
            ResultPath: null
            Next: Failed
        Next: Route
      Route:
        Type: Choice
        Choices:
          - {Variable: $.receipt.ok, BooleanEquals: true, Next: Fanout}
        Default: Failed
      Fanout:
        Type: Parallel
        Branches:
          - StartAt: Ship
            States:
              Ship: {Type: Pass, End: true}
        Next: Done
      Done: {Type: Succeed}
      Failed:
        Type: Fail
        ErrorPath: States.Format('E{}', $.code)
        Cause: ""
    """


@pytest.fixture(scope="module")
def compiled() -> model.StateMachine:
    return loader.loads(textwrap.dedent(MODEL), name="order.yaml")


def test_load_returns_frozen_dataclasses(compiled):
    assert isinstance(compiled.states["Charge"], model.TaskState)
    assert isinstance(compiled.states["Route"], model.ChoiceState)
    assert isinstance(compiled.states["Failed"], model.FailState)
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.start_at = "Elsewhere"
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.states["Charge"].next = "Elsewhere"


def test_model_fields_come_from_the_definition(compiled):
    charge = compiled.states["Charge"]
    assert (compiled.start_at, compiled.source_name) == ("Charge", "order.yaml")
    assert (charge.resource, charge.next, charge.end, charge.pointer) == ("charge", "Route", False, "/States/Charge")
    assert (charge.timeout_seconds, charge.heartbeat_seconds) == (30, 10)
    assert charge.retry == (model.Retrier(error_equals=("States.Timeout",), max_attempts=0),)
    assert charge.catch[0].next == "Failed" and charge.catch[0].result_path is None
    assert compiled.states["Failed"].cause == ""


def test_paths_templates_rules_and_intrinsics_are_compiled(compiled):
    charge = compiled.states["Charge"]
    assert isinstance(charge.input_path, paths.Path)
    assert isinstance(charge.result_path, paths.ReferencePath)
    assert isinstance(charge.output_path, paths.Path)  # absent: the default "$", compiled too
    assert isinstance(charge.parameters, paths.Template)
    assert charge.parameters.evaluate(Scope({"total": 0, "id": 7})) == {"amount": 0, "label": "order 7"}
    rule = compiled.states["Route"].choices[0].rule
    assert isinstance(rule, choice.Rule)
    assert rule.matches(Scope({"receipt": {"ok": True}})) is True
    assert rule.matches(Scope({"receipt": {"ok": False}})) is False
    assert isinstance(compiled.states["Failed"].error_path, intrinsics.Intrinsic)


def test_nested_states_are_indexed_machine_wide(compiled):
    branch = compiled.states["Fanout"].branches[0]
    assert isinstance(branch, model.StateMachine)
    assert branch.pointer == "/States/Fanout/Branches/0"
    assert compiled.state("Ship") is branch.states["Ship"]
    assert compiled.state("Ship").pointer == "/States/Fanout/Branches/0/States/Ship"


def test_load_accepts_a_dict():
    machine = loader.load({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": None, "End": True}}})
    assert machine.states["A"].result is None


def test_load_reads_a_file_and_reports_its_name(tmp_path):
    path = tmp_path / "order.yaml"
    path.write_text("StartAt: A\nStates:\n  A: {Type: Pass, Next: B}\n", encoding="utf-8")
    (diagnostic,) = loader.validate(path)
    assert diagnostic.file == str(path)
    assert diagnostic.format() == f'{path}:3:25: error[SM203] state "A": Next target "B" does not exist'


def test_definition_error_lists_every_diagnostic():
    text = """
        StartAt: A
        States:
          A: {Type: Pass, Next: Nope}
          B: {Type: Task, Resource: work, TimeoutSeconds: 0, End: true}
        """
    with pytest.raises(DefinitionError) as raised:
        loader.loads(textwrap.dedent(text).lstrip("\n"), name="bad.yaml")
    codes = sorted(d.code for d in raised.value.diagnostics)
    assert codes == ["SM104", "SM203"]
    assert str(raised.value).startswith("bad.yaml:")
    assert str(raised.value).endswith("(and 1 more)")


def test_definition_error_for_a_dict_has_pointers_but_no_lines():
    with pytest.raises(DefinitionError) as raised:
        loader.load({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "End": True}, "B": {
            "Type": "Succeed"}}})
    (diagnostic,) = raised.value.diagnostics
    assert (diagnostic.code, diagnostic.pointer, diagnostic.line) == ("SM205", "/States/A/End", None)
    assert diagnostic.format().startswith("<definition>: error[SM205]")


def test_malformed_text_raises_definition_error_not_a_parser_exception():
    with pytest.raises(DefinitionError) as raised:
        loader.loads('{"StartAt": "A", "States": {', name="broken.json")
    (diagnostic,) = raised.value.diagnostics
    assert (diagnostic.code, diagnostic.line) == ("SM001", 1)


def test_warnings_do_not_stop_loading():
    machine = loader.loads("StartAt: C\nStates:\n  C:\n    Type: Choice\n    Choices:\n"
                           "      - {Variable: $.n, IsPresent: false, Next: D}\n  D: {Type: Succeed}\n", name="w.yaml")
    assert machine.states["C"].default is None

