"""Spec for schemas/asl.schema.json: which ASL definitions the structural schema accepts or rejects.

Each invalid case names the JSON path where the schema must report the problem, so the loader can
point at the offending field. Graph rules (targets, reachability, terminal states, unique names) and
QueryLanguage inheritance are semantic checks and are not tested here.
"""
import copy
import json
import time
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).parents[1] / "schemas/asl.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = Draft202012Validator(SCHEMA)

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:work"


def machine(state, **top):
    """A one-state machine whose state is named S (plus a Succeed state T to jump to)."""
    return {"StartAt": "S", "States": {"S": state, "T": {"Type": "Succeed"}}, **top}


def task(**fields):
    return {"Type": "Task", "Resource": LAMBDA, "End": True, **fields}


def pass_(**fields):
    return {"Type": "Pass", "End": True, **fields}


def wait(**fields):
    return {"Type": "Wait", "End": True, **fields}


def map_(**fields):
    base = {"Type": "Map", "End": True,
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}
    return {**base, **fields}


def choice(*rules, **fields):
    return {"Type": "Choice", "Choices": list(rules), "Default": "T", **fields}


def rule(**fields):
    return {"Variable": "$.x", "Next": "T", **fields}


def errors(doc):
    return list(VALIDATOR.iter_errors(doc))


def error_paths(doc):
    return sorted({e.json_path for e in errors(doc)})


def test_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == "https://statemill.dev/schemas/asl.schema.json"


def test_main_definitions_are_described():
    missing = [name for name, d in SCHEMA["$defs"].items() if isinstance(d, dict) and not d.get("description")]
    assert missing == []


# ------------------------------------------------------------------------------------------------
# Definitions the schema accepts.
VALID = {
    # statemill resources are handler names: any non-blank word, not only ARNs.
    "resource_plain_handler_name": machine(task(Resource="x")),
    "resource_dotted_handler_name": machine(task(Resource="payments.charge")),
    # top level
    "minimal_machine": machine(pass_()),
    "top_level_optional_fields": machine(pass_(), Comment="", Version="1.0", TimeoutSeconds=1,
                                         QueryLanguage="JSONata"),
    "top_timeout_at_maximum": machine(pass_(), TimeoutSeconds=99999999),
    "state_name_of_80_characters": {"StartAt": "n" * 80, "States": {"n" * 80: {"Type": "Succeed"}}},
    # Pass
    "pass_with_falsy_result_zero": machine(pass_(Result=0)),
    "pass_with_falsy_result_false": machine(pass_(Result=False)),
    "pass_with_empty_string_result": machine(pass_(Result="")),
    "pass_with_null_result": machine(pass_(Result=None)),
    "pass_with_null_paths": machine(pass_(InputPath=None, OutputPath=None, ResultPath=None)),
    "pass_with_context_and_variable_paths": machine(pass_(InputPath="$$.Execution.Input", OutputPath="$var.x")),
    "pass_with_next": machine({"Type": "Pass", "Next": "T"}),
    "pass_parameters_may_be_any_json": machine(pass_(Parameters=["abc", 0, False, None])),
    "payload_with_falsy_literals": machine(pass_(Parameters={"a": None, "b": 0, "c": False, "d": ""})),
    "payload_dynamic_keys_at_depth": machine(pass_(Parameters={
        "a": [{"b": [{}, {"c": {"d.$": "$.d"}}]}], "ctx.$": "$$.State.Name", "var.$": "$myVar",
        "fn.$": "States.MathAdd(States.ArrayLength($.xs), -1)"})),
    "payload_every_intrinsic_name": machine(pass_(Parameters={f"{name}.$": f"States.{name}()" for name in [
        "Format", "StringToJson", "JsonToString", "Array", "ArrayPartition", "ArrayContains", "ArrayRange",
        "ArrayGetItem", "ArrayLength", "ArrayUnique", "Base64Encode", "Base64Decode", "Hash", "JsonMerge",
        "MathRandom", "MathAdd", "StringSplit", "UUID"]})),
    "result_path_forms": machine(pass_(ResultPath="$['a b'][0].c")),
    # Task
    "task_all_jsonpath_fields": machine(task(
        Comment="", InputPath="$", OutputPath="$.Payload", Parameters={"x.$": "$.x"},
        ResultSelector={"y.$": "$.y"}, ResultPath="$.r", TimeoutSecondsPath="$.t",
        HeartbeatSecondsPath="$.h", Credentials={"RoleArn.$": "$.role"}, Assign={"v.$": "$.v", "zero": 0})),
    "task_timeouts_at_bounds": machine(task(TimeoutSeconds=99999999, HeartbeatSeconds=1)),
    "task_resource_lambda_alias": machine(task(Resource=LAMBDA + ":$LATEST")),
    "task_resource_service_integration": machine(task(Resource="arn:aws:states:::sqs:sendMessage.waitForTaskToken")),
    "task_resource_any_uri_scheme": machine(task(Resource="python:billing.charge")),
    "task_retry_full": machine(task(Retry=[{"ErrorEquals": ["States.Timeout", "E"], "IntervalSeconds": 1,
                                            "MaxAttempts": 0, "BackoffRate": 1, "MaxDelaySeconds": 31622400,
                                            "JitterStrategy": "NONE", "Comment": ""}])),
    "retry_max_attempts_at_maximum": machine(task(Retry=[{"ErrorEquals": ["E"], "MaxAttempts": 99999999}])),
    "retry_fractional_backoff": machine(task(Retry=[{"ErrorEquals": ["E"], "BackoffRate": 1.5}])),
    "states_all_alone": machine(task(Retry=[{"ErrorEquals": ["States.ALL"]}],
                                     Catch=[{"ErrorEquals": ["States.ALL"], "Next": "T", "ResultPath": None}])),
    "catch_with_assign_and_comment": machine(task(Catch=[{"ErrorEquals": ["E"], "Next": "T", "Comment": "",
                                                          "Assign": {"err.$": "$.Cause"}}])),
    "task_jsonata": machine(task(QueryLanguage="JSONata", Arguments={"a": "{% $states.input %}", "b": 0},
                                 Output=None, Assign={"x": False}, TimeoutSeconds="{% $t %}",
                                 HeartbeatSeconds="{% 5 %}",
                                 Catch=[{"ErrorEquals": ["E"], "Next": "T", "Output": 0, "Assign": {}}])),
    "task_jsonata_arguments_expression": machine(task(QueryLanguage="JSONata", Arguments="{% $states.input %}")),
    "jsonata_keys_ending_in_dollar_are_plain": machine(task(QueryLanguage="JSONata",
                                                            Assign={"x": {"k.$": "literal"}})),
    "state_without_query_language_accepts_both_languages": machine(task(InputPath="$", Output="{% 1 %}")),
    "explicit_jsonpath_state": machine(task(QueryLanguage="JSONPath", TimeoutSeconds=1, Parameters={})),
    # Choice
    "choice_data_test_with_falsy_operands": machine(choice(
        rule(NumericEquals=0), rule(StringEquals=""), rule(BooleanEquals=False), rule(IsPresent=False))),
    "choice_boolean_rules_nested": machine(choice({"And": [
        {"Variable": "$.a", "IsNull": False, "Comment": ""},
        {"Or": [{"Variable": "$.b", "NumericLessThanPath": "$.c"}, {"Not": {"Variable": "$.d", "IsString": True}}]}],
        "Next": "T", "Comment": "", "Assign": {"x": 1}})),
    "choice_without_default": machine({"Type": "Choice", "Choices": [rule(IsNull=True)]}),
    "choice_rule_with_comment_and_assign": machine(choice(rule(StringMatches="a*", Comment="", Assign={"v": 0}))),
    "choice_timestamp_with_offset_and_fraction": machine(choice(rule(TimestampEquals="2016-03-14T01:59:00.123+02:00"))),
    "choice_jsonata_rules": machine(choice({"Condition": False, "Next": "T"},
                                           {"Condition": "{% $states.input.x > 0 %}", "Next": "T",
                                            "Assign": {}, "Output": None, "Comment": ""},
                                           QueryLanguage="JSONata", Output={"a": 0})),
    # Wait
    "wait_zero_seconds": machine(wait(Seconds=0)),
    "wait_seconds_path": machine(wait(SecondsPath="$.s")),
    "wait_timestamp": machine(wait(Timestamp="2016-03-14T01:59:00Z")),
    "wait_timestamp_path": machine(wait(TimestampPath="$$.Execution.StartTime")),
    "wait_jsonata_expressions": machine(wait(QueryLanguage="JSONata", Seconds="{% $s %}")),
    "wait_jsonata_timestamp_expression": machine(wait(QueryLanguage="JSONata", Timestamp="{% $ts %}")),
    # Succeed / Fail
    "succeed_with_io_paths": machine({"Type": "Succeed", "InputPath": "$", "OutputPath": None}),
    "succeed_jsonata_output": machine({"Type": "Succeed", "QueryLanguage": "JSONata", "Output": False}),
    "fail_empty_error_and_cause": machine({"Type": "Fail", "Error": "", "Cause": ""}),
    "fail_dynamic_error_and_cause": machine({"Type": "Fail", "ErrorPath": "$.e",
                                             "CausePath": "States.Format('{}', $.c)"}),
    # Parallel
    "parallel_with_everything": machine({
        "Type": "Parallel", "Next": "T", "Comment": "",
        "Branches": [{"StartAt": "B", "Comment": "", "States": {"B": {"Type": "Pass", "End": True}}}],
        "InputPath": "$", "Parameters": {"a.$": "$.a"}, "ResultSelector": {"b.$": "$[0]"}, "ResultPath": None,
        "OutputPath": "$", "Retry": [{"ErrorEquals": ["E"]}], "Catch": [{"ErrorEquals": ["E"], "Next": "T"}],
        "Assign": {"x": 0}}),
    "parallel_jsonata_arguments": machine({"Type": "Parallel", "QueryLanguage": "JSONata", "End": True,
                                           "Arguments": "{% $states.input %}",
                                           "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}]}),
    # Map
    "map_inline_zero_limits": machine(map_(ItemsPath="$.items", MaxConcurrency=0, ToleratedFailureCount=0,
                                           ToleratedFailurePercentage=0, ItemSelector={"v.$": "$$.Map.Item.Value"})),
    "map_legacy_iterator_and_parameters": machine({
        "Type": "Map", "End": True, "Parameters": "$.foo", "ItemsPath": "$$.items",
        "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}),
    "map_fractional_tolerated_percentage": machine(map_(ToleratedFailurePercentage=99.5)),
    "map_dynamic_limits": machine(map_(MaxConcurrencyPath="$.c", ToleratedFailureCountPath="$.n",
                                       ToleratedFailurePercentagePath="$.p")),
    "map_distributed": machine(map_(
        ItemProcessor={"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                       "StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
        Label="my-map_1",
        ItemReader={"Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", ""],
                                     "CSVDelimiter": "SEMICOLON", "MaxItems": 1},
                    "Parameters": {"Bucket": "b", "Key.$": "$.key"}},
        ItemBatcher={"MaxItemsPerBatch": 1, "MaxInputBytesPerBatch": 262144, "BatchInput": {"x.$": "$.x"}},
        ResultWriter={"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": ""},
                      "WriterConfig": {"OutputType": "JSONL", "Transformation": "COMPACT"}})),
    "map_result_writer_config_only": machine(map_(ResultWriter={"WriterConfig": {"OutputType": "JSON"}})),
    "map_jsonata": machine(map_(QueryLanguage="JSONata", Items=[0, False, "{% $x %}"], ItemSelector="{% $v %}",
                                MaxConcurrency="{% $n %}", ToleratedFailurePercentage="{% $p %}",
                                ItemReader={"Resource": "arn:aws:states:::s3:getObject",
                                            "Arguments": {"Bucket": "{% $b %}"},
                                            "ReaderConfig": {"MaxItems": "{% $m %}"}},
                                ItemBatcher={"MaxItemsPerBatch": "{% 2 %}"}, Output={"r": "{% $states.result %}"})),
    "map_jsonata_legacy_iterator": machine({"Type": "Map", "QueryLanguage": "JSONata", "End": True,
                                            "Items": "{% $xs %}",
                                            "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}),
    "nested_map_in_parallel": machine({"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "M", "States": {"M": map_()}}]}),
}


@pytest.mark.parametrize("doc", VALID.values(), ids=VALID.keys())
def test_accepts(doc):
    assert [(e.json_path, e.message) for e in errors(doc)] == []


# ------------------------------------------------------------------------------------------------
# Definitions the schema rejects, with the JSON path of the reported problem.
INVALID = {
    # top level
    "not_an_object": ("a", "$"),
    "missing_start_at": ({"States": {"S": pass_()}}, "$"),
    "empty_start_at": (machine(pass_()) | {"StartAt": ""}, "$.StartAt"),
    "unknown_top_level_field": (machine(pass_(), a=1), "$"),
    "empty_states": ({"StartAt": "S", "States": {}}, "$.States"),
    "state_name_of_81_characters": ({"StartAt": "S", "States": {"n" * 81: {"Type": "Succeed"}}}, "$.States"),
    "empty_state_name": ({"StartAt": "S", "States": {"": {"Type": "Succeed"}}}, "$.States"),
    "state_is_null": ({"StartAt": "S", "States": {"S": None}}, "$.States.S"),
    "top_timeout_zero": (machine(pass_(), TimeoutSeconds=0), "$.TimeoutSeconds"),
    "top_timeout_fraction": (machine(pass_(), TimeoutSeconds=1.2), "$.TimeoutSeconds"),
    "top_timeout_expression": (machine(pass_(), TimeoutSeconds="{% 1 %}"), "$.TimeoutSeconds"),
    "version_other_than_1_0": (machine(pass_(), Version=""), "$.Version"),
    "unknown_query_language": (machine(pass_(), QueryLanguage="Yaml"), "$.QueryLanguage"),
    # Type dispatch
    "missing_type": (machine({"End": True}), "$.States.S"),
    "null_type": (machine({"Type": None, "End": True}), "$.States.S.Type"),
    "unknown_type": (machine({"Type": "?", "End": True}), "$.States.S.Type"),
    # transitions
    "neither_next_nor_end": (machine({"Type": "Pass"}), "$.States.S"),
    "both_next_and_end": (machine(pass_(Next="T")), "$.States.S.Next"),
    "end_false": (machine(pass_(End=False)), "$.States.S.End"),
    "empty_next": (machine({"Type": "Pass", "Next": ""}), "$.States.S.Next"),
    "end_on_succeed": (machine({"Type": "Succeed", "End": True}), "$.States.S"),
    "next_on_fail": (machine({"Type": "Fail", "Next": "T"}), "$.States.S"),
    "next_on_choice": (machine(choice(rule(IsNull=True), Next="T")), "$.States.S"),
    # fields not allowed on a state type
    "result_selector_on_pass": (machine(pass_(ResultSelector={})), "$.States.S"),
    "parameters_on_choice": (machine(choice(rule(IsNull=True), Parameters={})), "$.States.S"),
    "result_path_on_wait": (machine(wait(Seconds=1, ResultPath="$.r")), "$.States.S"),
    "input_path_on_fail": (machine({"Type": "Fail", "InputPath": "$"}), "$.States.S"),
    "output_on_fail": (machine({"Type": "Fail", "Output": {}}), "$.States.S"),
    "assign_on_succeed": (machine({"Type": "Succeed", "Assign": {}}), "$.States.S"),
    "arguments_on_map": (machine(map_(Arguments={})), "$.States.S"),
    "typo_in_field_name": (machine(task(Retries=[])), "$.States.S"),
    # paths
    "input_path_without_dollar": (machine(pass_(InputPath="bug$.x")), "$.States.S.InputPath"),
    "input_path_intrinsic": (machine(pass_(InputPath="States.Format('x')")), "$.States.S.InputPath"),
    "output_path_empty": (machine(pass_(OutputPath="")), "$.States.S.OutputPath"),
    "result_path_relative": (machine(task(ResultPath=".guid")), "$.States.S.ResultPath"),
    "result_path_context": (machine(task(ResultPath="$$.x")), "$.States.S.ResultPath"),
    "result_path_variable": (machine(task(ResultPath="$foo")), "$.States.S.ResultPath"),
    "items_path_null": (machine(map_(ItemsPath=None)), "$.States.S.ItemsPath"),
    # payload templates
    "dynamic_key_with_null": (machine(pass_(Parameters={"a.$": None})), "$.States.S.Parameters['a.$']"),
    "dynamic_key_with_empty_string": (machine(pass_(Parameters={"a.$": ""})), "$.States.S.Parameters['a.$']"),
    "dynamic_key_not_a_path": (machine(pass_(Parameters={"a": [{"b": {"d.$": "x"}}]})),
                               "$.States.S.Parameters.a[0].b['d.$']"),
    "unknown_intrinsic": (machine(task(ResultSelector={"a.$": "States.Xyz($.r)"})), "$.States.S.ResultSelector['a.$']"),
    "intrinsic_with_leading_space": (machine(task(Parameters={"a.$": " States.UUID()"})),
                                     "$.States.S.Parameters['a.$']"),
    "result_selector_not_object": (machine(task(ResultSelector="$.x")), "$.States.S.ResultSelector"),
    "assign_dynamic_key_not_a_path": (machine(pass_(Assign={"v.$": "literal"})), "$.States.S.Assign['v.$']"),
    "credentials_dynamic_key_not_a_path": (machine(task(Credentials={"RoleArn.$": "arn"})),
                                           "$.States.S.Credentials['RoleArn.$']"),
    "item_selector_dynamic_key_not_a_path": (machine(map_(ItemSelector={"v.$": "v"})),
                                             "$.States.S.ItemSelector['v.$']"),
    "batch_input_dynamic_key_not_a_path": (machine(map_(ItemBatcher={"MaxItemsPerBatch": 1,
                                                                     "BatchInput": {"v.$": "v"}})),
                                           "$.States.S.ItemBatcher.BatchInput['v.$']"),
    # Task
    "task_without_resource": (machine({"Type": "Task", "End": True}), "$.States.S"),
    "resource_empty": (machine(task(Resource="")), "$.States.S.Resource"),
    "resource_with_whitespace": (machine(task(Resource="charge card")), "$.States.S.Resource"),
    "resource_object": (machine(task(Resource={"Ref": "fn"})), "$.States.S.Resource"),
    "lambda_arn_with_empty_alias": (machine(task(Resource=LAMBDA + ":")), "$.States.S.Resource"),
    "lambda_arn_with_bad_alias": (machine(task(Resource=LAMBDA + ":$*#")), "$.States.S.Resource"),
    "task_timeout_zero": (machine(task(TimeoutSeconds=0)), "$.States.S.TimeoutSeconds"),
    "task_timeout_above_maximum": (machine(task(TimeoutSeconds=100000000)), "$.States.S.TimeoutSeconds"),
    "task_timeout_false": (machine(task(TimeoutSeconds=False)), "$.States.S.TimeoutSeconds"),
    "task_timeout_plain_string": (machine(task(TimeoutSeconds="10")), "$.States.S.TimeoutSeconds"),
    "heartbeat_zero": (machine(task(HeartbeatSeconds=0)), "$.States.S.HeartbeatSeconds"),
    "timeout_and_timeout_path": (machine(task(TimeoutSeconds=1, TimeoutSecondsPath="$")), "$.States.S.TimeoutSeconds"),
    "heartbeat_and_heartbeat_path": (machine(task(HeartbeatSeconds=1, HeartbeatSecondsPath="$.h")),
                                     "$.States.S.HeartbeatSeconds"),
    "credentials_null": (machine(task(Credentials=None)), "$.States.S.Credentials"),
    "credentials_string": (machine(task(Credentials="arn:aws:iam::1:role/r")), "$.States.S.Credentials"),
    "arguments_number": (machine(task(Arguments=42)), "$.States.S.Arguments"),
    "arguments_plain_string": (machine(task(Arguments="xyz")), "$.States.S.Arguments"),
    "arguments_empty_string": (machine(task(Arguments="")), "$.States.S.Arguments"),
    # Retry / Catch
    "catch_null": (machine(task(Catch=None)), "$.States.S.Catch"),
    "catch_not_array": (machine(task(Catch=1)), "$.States.S.Catch"),
    "catcher_empty": (machine(task(Catch=[{}])), "$.States.S.Catch[0]"),
    "catcher_without_next": (machine(task(Catch=[{"ErrorEquals": ["E"]}])), "$.States.S.Catch[0]"),
    "catcher_empty_error_equals": (machine(task(Catch=[{"ErrorEquals": [], "Next": "T"}])),
                                   "$.States.S.Catch[0].ErrorEquals"),
    "error_name_not_string": (machine(task(Catch=[{"ErrorEquals": [True], "Next": "T"}])),
                              "$.States.S.Catch[0].ErrorEquals[0]"),
    "states_all_not_alone": (machine(task(Retry=[{"ErrorEquals": ["States.ALL", "E"]}])),
                             "$.States.S.Retry[0].ErrorEquals"),
    "retrier_unknown_field": (machine(task(Retry=[{"ErrorEquals": ["E"], "Next": "T"}])), "$.States.S.Retry[0]"),
    "interval_zero": (machine(task(Retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 0}])),
                      "$.States.S.Retry[0].IntervalSeconds"),
    "max_attempts_negative": (machine(task(Retry=[{"ErrorEquals": ["E"], "MaxAttempts": -1}])),
                              "$.States.S.Retry[0].MaxAttempts"),
    "max_attempts_above_maximum": (machine(task(Retry=[{"ErrorEquals": ["E"], "MaxAttempts": 100000000}])),
                                   "$.States.S.Retry[0].MaxAttempts"),
    "backoff_below_one": (machine(task(Retry=[{"ErrorEquals": ["E"], "BackoffRate": 0.5}])),
                          "$.States.S.Retry[0].BackoffRate"),
    "max_delay_zero": (machine(task(Retry=[{"ErrorEquals": ["E"], "MaxDelaySeconds": 0}])),
                       "$.States.S.Retry[0].MaxDelaySeconds"),
    "max_delay_above_maximum": (machine(task(Retry=[{"ErrorEquals": ["E"], "MaxDelaySeconds": 31622401}])),
                                "$.States.S.Retry[0].MaxDelaySeconds"),
    "unknown_jitter_strategy": (machine(task(Retry=[{"ErrorEquals": ["E"], "JitterStrategy": "PARTIAL"}])),
                                "$.States.S.Retry[0].JitterStrategy"),
    # Choice
    "choices_empty": (machine(choice()), "$.States.S.Choices"),
    "choices_not_array": (machine({"Type": "Choice", "Choices": {}, "Default": "T"}), "$.States.S.Choices"),
    "rule_without_operator": (machine(choice(rule())), "$.States.S.Choices[0]"),
    "rule_with_two_operators": (machine(choice(rule(IsNull=True, IsPresent=True))), "$.States.S.Choices[0]"),
    "rule_without_next": (machine(choice({"Variable": "$.x", "IsNull": True})), "$.States.S.Choices[0]"),
    "rule_with_end": (machine(choice({"Variable": "$.x", "IsNull": True, "End": True})), "$.States.S.Choices[0]"),
    "variable_not_a_path": (machine(choice(rule(Variable="States.ArrayLength($.x)", IsNull=True))),
                            "$.States.S.Choices[0].Variable"),
    "data_test_with_not": (machine(choice(rule(IsNull=True, Not={"Variable": "$.y", "IsNull": True}))),
                           "$.States.S.Choices[0]"),
    "boolean_rule_and_empty": (machine(choice({"And": [], "Next": "T"})), "$.States.S.Choices[0].And"),
    "nested_rule_with_next": (machine(choice({"Not": {"Variable": "$.y", "IsNull": True, "Next": "T"},
                                              "Next": "T"})), "$.States.S.Choices[0].Not"),
    "nested_not_empty": (machine(choice({"Or": [{"Not": {}}], "Next": "T"})), "$.States.S.Choices[0].Or[0].Not"),
    "nested_operator_null": (machine(choice({"And": [{"Variable": "$", "StringEquals": None}], "Next": "T"})),
                             "$.States.S.Choices[0].And[0].StringEquals"),
    "condition_plain_string": (machine(choice({"Condition": "true", "Next": "T"})), "$.States.S.Choices[0].Condition"),
    "jsonata_rule_with_variable": (machine(choice({"Condition": True, "Variable": "$.x", "Next": "T"})),
                                   "$.States.S.Choices[0]"),
    "default_empty": (machine(choice(rule(IsNull=True)) | {"Default": ""}), "$.States.S.Default"),
    # Wait
    "wait_without_duration": (machine(wait()), "$.States.S"),
    "wait_seconds_and_timestamp": (machine(wait(Seconds=1, Timestamp="2016-03-14T01:59:00Z")), "$.States.S.Timestamp"),
    "wait_seconds_path_and_timestamp_path": (machine(wait(SecondsPath="$.s", TimestampPath="$.t")),
                                             "$.States.S.TimestampPath"),
    "wait_negative_seconds": (machine(wait(Seconds=-1)), "$.States.S.Seconds"),
    "wait_seconds_null": (machine(wait(Seconds=None)), "$.States.S.Seconds"),
    "wait_seconds_false": (machine(wait(Seconds=False)), "$.States.S.Seconds"),
    "wait_timestamp_with_space": (machine(wait(Timestamp="2016-03-14 01:59:00Z")), "$.States.S.Timestamp"),
    "wait_timestamp_without_zone": (machine(wait(Timestamp="2016-03-14T01:59:00")), "$.States.S.Timestamp"),
    "wait_timestamp_month_13": (machine(wait(Timestamp="2016-13-14T01:59:00Z")), "$.States.S.Timestamp"),
    "wait_seconds_path_not_a_path": (machine(wait(SecondsPath="s")), "$.States.S.SecondsPath"),
    # Fail
    "fail_error_not_string": (machine({"Type": "Fail", "Error": 42}), "$.States.S.Error"),
    "fail_error_and_error_path": (machine({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}), "$.States.S.Error"),
    "fail_cause_and_cause_path": (machine({"Type": "Fail", "Cause": "C", "CausePath": "$.c"}), "$.States.S.Cause"),
    "fail_error_path_not_a_path": (machine({"Type": "Fail", "ErrorPath": "x"}), "$.States.S.ErrorPath"),
    # Parallel
    "parallel_without_branches": (machine({"Type": "Parallel", "End": True}), "$.States.S"),
    "parallel_empty_branches": (machine({"Type": "Parallel", "End": True, "Branches": []}), "$.States.S.Branches"),
    "branch_without_start_at": (machine({"Type": "Parallel", "End": True, "Branches": [{"States": {"B": pass_()}}]}),
                                "$.States.S.Branches[0]"),
    "branch_query_language": (machine({"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "B", "QueryLanguage": "JSONata", "States": {"B": pass_()}}]}), "$.States.S.Branches[0]"),
    "error_inside_branch_state": (machine({"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "B", "States": {"B": wait(Seconds=-1)}}]}), "$.States.S.Branches[0].States.B.Seconds"),
    # Map
    "map_without_processor": (machine({"Type": "Map", "End": True}), "$.States.S"),
    "map_iterator_and_item_processor": (machine(map_(Iterator={"StartAt": "I", "States": {"I": pass_()}})),
                                        "$.States.S.ItemProcessor"),
    "map_parameters_and_item_selector": (machine(map_(Parameters={}, ItemSelector={})), "$.States.S.ItemSelector"),
    "map_items_and_items_path": (machine(map_(Items=[], ItemsPath="$.x")), "$.States.S.ItemsPath"),
    "map_iterator_empty": (machine({"Type": "Map", "End": True, "Iterator": {}}), "$.States.S.Iterator"),
    "map_processor_config_not_object": (machine(map_(ItemProcessor={"ProcessorConfig": "x", "StartAt": "I",
                                                                    "States": {"I": pass_()}})),
                                        "$.States.S.ItemProcessor.ProcessorConfig"),
    "map_lowercase_mode": (machine(map_(ItemProcessor={"ProcessorConfig": {"Mode": "distributed"}, "StartAt": "I",
                                                       "States": {"I": pass_()}})),
                           "$.States.S.ItemProcessor.ProcessorConfig.Mode"),
    "map_max_concurrency_negative": (machine(map_(MaxConcurrency=-1)), "$.States.S.MaxConcurrency"),
    "map_max_concurrency_and_path": (machine(map_(MaxConcurrency=0, MaxConcurrencyPath="$.c")),
                                     "$.States.S.MaxConcurrency"),
    "map_tolerated_percentage_above_100": (machine(map_(ToleratedFailurePercentage=100.5)),
                                           "$.States.S.ToleratedFailurePercentage"),
    "map_tolerated_percentage_plain_string": (machine(map_(ToleratedFailurePercentage="x")),
                                              "$.States.S.ToleratedFailurePercentage"),
    "map_tolerated_count_negative": (machine(map_(ToleratedFailureCount=-1)), "$.States.S.ToleratedFailureCount"),
    "map_tolerated_count_and_path": (machine(map_(ToleratedFailureCount=0, ToleratedFailureCountPath="$.n")),
                                     "$.States.S.ToleratedFailureCount"),
    "map_items_object": (machine(map_(Items={"bad": 42})), "$.States.S.Items"),
    "map_items_plain_string": (machine(map_(Items="states.input.xs")), "$.States.S.Items"),
    "map_label_with_space": (machine(map_(Label="my map")), "$.States.S.Label"),
    "map_label_empty": (machine(map_(Label="")), "$.States.S.Label"),
    "item_reader_not_object": (machine(map_(ItemReader="x")), "$.States.S.ItemReader"),
    "item_reader_without_resource": (machine(map_(ItemReader={"ReaderConfig": {}})), "$.States.S.ItemReader"),
    "reader_unknown_input_type": (machine(map_(ItemReader={"Resource": "arn:aws:states:::s3:getObject",
                                                           "ReaderConfig": {"InputType": "XML"}})),
                                  "$.States.S.ItemReader.ReaderConfig.InputType"),
    "reader_max_items_zero": (machine(map_(ItemReader={"Resource": "arn:aws:states:::s3:getObject",
                                                       "ReaderConfig": {"MaxItems": 0}})),
                              "$.States.S.ItemReader.ReaderConfig.MaxItems"),
    "reader_max_items_path_not_a_path": (machine(map_(ItemReader={"Resource": "arn:aws:states:::s3:getObject",
                                                                  "ReaderConfig": {"MaxItemsPath": "x"}})),
                                         "$.States.S.ItemReader.ReaderConfig.MaxItemsPath"),
    "item_batcher_without_limit": (machine(map_(ItemBatcher={"BatchInput": {}})), "$.States.S.ItemBatcher"),
    "item_batcher_size_and_path": (machine(map_(ItemBatcher={"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.b"})),
                                   "$.States.S.ItemBatcher.MaxItemsPerBatch"),
    "item_batcher_zero_items": (machine(map_(ItemBatcher={"MaxItemsPerBatch": 0})),
                                "$.States.S.ItemBatcher.MaxItemsPerBatch"),
    "item_batcher_bytes_above_256_kib": (machine(map_(ItemBatcher={"MaxInputBytesPerBatch": 262145})),
                                         "$.States.S.ItemBatcher.MaxInputBytesPerBatch"),
    "result_writer_empty": (machine(map_(ResultWriter={})), "$.States.S.ResultWriter"),
    "result_writer_unknown_output_type": (machine(map_(ResultWriter={"WriterConfig": {"OutputType": "CSV"}})),
                                          "$.States.S.ResultWriter.WriterConfig.OutputType"),
    # QueryLanguage set on the state: values must fit that language
    "jsonata_choice_with_jsonpath_rule": (machine(choice(rule(IsNull=True), QueryLanguage="JSONata")),
                                          "$.States.S.Choices[0]"),
    "jsonata_assign_not_object": (machine(pass_(QueryLanguage="JSONata", Assign="XXX")), "$.States.S.Assign"),
    "jsonpath_timeout_expression": (machine(task(QueryLanguage="JSONPath", TimeoutSeconds="{% 5 %}")),
                                    "$.States.S.TimeoutSeconds"),
    "jsonpath_wait_timestamp_expression": (machine(wait(QueryLanguage="JSONPath", Timestamp="{% $t %}")),
                                           "$.States.S.Timestamp"),
    "jsonpath_choice_condition": (machine(choice({"Condition": True, "Next": "T"}, QueryLanguage="JSONPath")),
                                  "$.States.S.Choices[0].Condition"),
    "jsonpath_choice_rule_assign_dynamic_key": (machine(choice(rule(IsNull=True, Assign={"v.$": "v"}),
                                                               QueryLanguage="JSONPath")),
                                                "$.States.S.Choices[0].Assign['v.$']"),
    "jsonpath_reader_max_items_expression": (machine(map_(QueryLanguage="JSONPath", ItemReader={
        "Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"MaxItems": "{% 1 %}"}})),
        "$.States.S.ItemReader.ReaderConfig.MaxItems"),
}


@pytest.mark.parametrize("doc, path", INVALID.values(), ids=INVALID.keys())
def test_rejects_at_path(doc, path):
    assert path in error_paths(doc)


# ------------------------------------------------------------------------------------------------
# A state that sets QueryLanguage may only use that language's fields: the error names the field, at
# the object holding it, like any unknown field (and its schema's description says why).
OTHER_LANGUAGE_FIELD = {
    "jsonata_with_input_path": (pass_(QueryLanguage="JSONata", InputPath="$"), "$.States.S", "InputPath"),
    "jsonata_with_parameters": (task(QueryLanguage="JSONata", Parameters={}), "$.States.S", "Parameters"),
    "jsonata_with_result": (pass_(QueryLanguage="JSONata", Result=0), "$.States.S", "Result"),
    "jsonata_with_null_result_path": (task(QueryLanguage="JSONata", ResultPath=None), "$.States.S", "ResultPath"),
    "jsonata_wait_with_seconds_path": (wait(QueryLanguage="JSONata", SecondsPath="$.s"), "$.States.S",
                                       "SecondsPath"),
    "jsonata_fail_with_error_path": ({"Type": "Fail", "QueryLanguage": "JSONata", "ErrorPath": "$.e"},
                                     "$.States.S", "ErrorPath"),
    "jsonata_map_with_items_path": (map_(QueryLanguage="JSONata", ItemsPath="$.x"), "$.States.S", "ItemsPath"),
    "jsonata_catcher_with_result_path": (task(QueryLanguage="JSONata",
                                              Catch=[{"ErrorEquals": ["E"], "Next": "T", "ResultPath": "$"}]),
                                         "$.States.S.Catch[0]", "ResultPath"),
    "jsonata_reader_with_parameters": (map_(QueryLanguage="JSONata", ItemReader={
        "Resource": "arn:aws:states:::s3:getObject", "Parameters": {}}), "$.States.S.ItemReader", "Parameters"),
    "jsonata_reader_with_max_items_path": (map_(QueryLanguage="JSONata", ItemReader={
        "Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"MaxItemsPath": "$.m"}}),
        "$.States.S.ItemReader.ReaderConfig", "MaxItemsPath"),
    "jsonata_batcher_with_path": (map_(QueryLanguage="JSONata", ItemBatcher={"MaxItemsPerBatchPath": "$.n"}),
                                  "$.States.S.ItemBatcher", "MaxItemsPerBatchPath"),
    "jsonpath_with_output": (pass_(QueryLanguage="JSONPath", Output={}), "$.States.S", "Output"),
    "jsonpath_with_arguments": (task(QueryLanguage="JSONPath", Arguments={}), "$.States.S", "Arguments"),
    "jsonpath_map_with_items": (map_(QueryLanguage="JSONPath", Items=[]), "$.States.S", "Items"),
    "jsonpath_catcher_with_output": (task(QueryLanguage="JSONPath",
                                          Catch=[{"ErrorEquals": ["E"], "Next": "T", "Output": 0}]),
                                     "$.States.S.Catch[0]", "Output"),
    "jsonpath_writer_with_arguments": (map_(QueryLanguage="JSONPath", ResultWriter={
        "Resource": "arn:aws:states:::s3:putObject", "Arguments": {}}), "$.States.S.ResultWriter", "Arguments"),
}


@pytest.mark.parametrize("state, path, field", OTHER_LANGUAGE_FIELD.values(), ids=OTHER_LANGUAGE_FIELD.keys())
def test_rejects_field_of_the_other_query_language(state, path, field):
    (error,) = errors(machine(state))
    assert (error.json_path, error.validator) == (path, "additionalProperties")
    assert f"'{field}' was unexpected" in error.message
    assert "QueryLanguage is " + state["QueryLanguage"] in error.schema["description"]


@pytest.mark.parametrize("state", [pass_(InputPath="$", Output=0), task(Parameters={}, Arguments={}),
                                   map_(ItemsPath="$.x", Output=None)], ids=["pass", "task", "map"])
def test_state_without_query_language_accepts_fields_of_both(state):
    assert error_paths(machine(state)) == []


# ------------------------------------------------------------------------------------------------
# Every comparison operator with a well-typed operand is accepted; a wrong type is rejected at it.
OPERANDS = {
    "String": ("", 0), "Numeric": (0, "0"), "Timestamp": ("2001-01-01T12:00:00Z", "2001-01-01"),
}
SUFFIXES = ["Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"]
OPERATORS = {f"{kind}{suffix}": values for kind, values in OPERANDS.items() for suffix in SUFFIXES}
OPERATORS |= {"StringMatches": ("", None), "BooleanEquals": (False, 0)}
OPERATORS |= {f"{op}Path": ("$.other", "other") for op in list(OPERATORS) if op != "StringMatches"}
OPERATORS |= {f"Is{kind}": (False, "false") for kind in ["Null", "Present", "Numeric", "String", "Boolean",
                                                         "Timestamp"]}


def test_all_39_data_test_operators_are_covered():
    assert len(OPERATORS) == 39  # plus And, Or, Not: the 42 Choice operators


@pytest.mark.parametrize("op", OPERATORS)
def test_operator_accepts_its_operand_type(op):
    good, _ = OPERATORS[op]
    doc = machine(choice({"And": [{"Variable": "$.x", op: good}], "Next": "T"}, rule(**{op: good})))
    assert error_paths(doc) == []


@pytest.mark.parametrize("op", OPERATORS)
def test_operator_rejects_wrong_operand_type(op):
    _, bad = OPERATORS[op]
    doc = machine(choice({"And": [{"Variable": "$.x", op: bad}], "Next": "T"}))
    assert error_paths(doc) == [f"$.States.S.Choices[0].And[0].{op}"]


# ------------------------------------------------------------------------------------------------
# Error quality: dispatch on Type reports the state's own problem, once, where it is.
@pytest.mark.parametrize("state, path", [
    (task(TimeoutSeconds=-1), "$.States.S.TimeoutSeconds"),
    (wait(Seconds="soon"), "$.States.S.Seconds"),
    (map_(MaxConcurrency=1.5), "$.States.S.MaxConcurrency"),
    ({"Type": "Fail", "Cause": 0}, "$.States.S.Cause"),
], ids=["task", "wait", "map", "fail"])
def test_one_error_per_problem(state, path):
    found = errors(machine(state))
    assert [e.json_path for e in found] == [path]


@pytest.mark.parametrize("doc, path, word", [
    (machine(choice({"Condition": True, "Next": "T"}, QueryLanguage="JSONPath")), "$.States.S.Choices[0].Condition",
     "JSONata-only"),
    (machine(task(TimeoutSeconds=1, TimeoutSecondsPath="$.t")), "$.States.S.TimeoutSeconds", "cannot be used together"),
    (machine(choice(rule())), "$.States.S.Choices[0]", "exactly one comparison operator"),
    (machine(choice(rule(IsNull=False, IsString=False))), "$.States.S.Choices[0]", "exactly one comparison operator"),
    (machine(wait()), "$.States.S", "needs one of Seconds"),
    (machine({"Type": "Task", "Resource": LAMBDA}), "$.States.S", "needs Next"),
], ids=["condition_in_jsonpath_state", "conflicting_fields",
        "no_operator", "two_operators", "wait_without_duration", "missing_next"])
def test_errors_carry_an_explanation_in_the_failing_schema(doc, path, word):
    """The loader can show error.schema["description"] where jsonschema's own message is terse."""
    (error,) = errors(doc)
    assert error.json_path == path
    assert word in error.schema["description"]


def test_unknown_field_is_named_in_the_message():
    (error,) = errors(machine(task(Retries=[])))
    assert "'Retries' was unexpected" in error.message


# ------------------------------------------------------------------------------------------------
def big_definition(n_states=2000):
    """About 1 MB: Tasks with payload templates, retries and catchers, Choices, Maps, JSONata states."""
    def heavy_task(i, nxt):
        return task(Comment="c" * 80, End=None, Next=nxt,
                    Parameters={"FunctionName": LAMBDA, "Payload.$": "$", "pad": "p" * 150,
                                "nested": {"a.$": "$.a", "b": [1, 2, {"c.$": "States.Format('{}', $.x)"}]}},
                    ResultSelector={"out.$": "$.Payload"}, ResultPath="$.r", TimeoutSeconds=30,
                    Retry=[{"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 2, "BackoffRate": 2}],
                    Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Done", "ResultPath": "$.error"}])
    makers = [
        heavy_task, heavy_task, heavy_task,
        lambda i, nxt: choice(rule(NumericGreaterThan=i, Next=nxt),
                              {"And": [{"Variable": "$.s", "StringEquals": "a"},
                                       {"Not": {"Variable": "$.b", "IsNull": True}}], "Next": nxt},
                              Default=nxt),
        lambda i, nxt: task(QueryLanguage="JSONata", End=None, Next=nxt, Output="{% $states.result %}",
                            Arguments={"Payload": "{% $states.input %}", "pad": "p" * 200}),
        lambda i, nxt: {"Type": "Pass", "Parameters": {"x.$": "$.x", "pad": "p" * 200}, "Next": nxt},
        lambda i, nxt: {"Type": "Wait", "Seconds": 5, "Next": nxt},
        lambda i, nxt: map_(End=None, Next=nxt, ItemsPath="$.items", ItemSelector={"v.$": "$$.Map.Item.Value"},
                            ItemProcessor={"StartAt": f"M{i}", "States": {f"M{i}": pass_()}}),
    ]
    states = {}
    for i in range(n_states):
        state = makers[i % len(makers)](i, f"S{i + 1}" if i + 1 < n_states else "Done")
        states[f"S{i}"] = {k: v for k, v in state.items() if v is not None}
    states["Done"] = {"Type": "Succeed"}
    return {"StartAt": "S0", "States": states}


def test_large_definition_validates_quickly():
    doc = big_definition()
    assert len(json.dumps(doc)) > 900_000
    started = time.process_time()
    assert VALIDATOR.is_valid(doc)
    # ~0.55 s of CPU on a busy 2-core box; the bound only catches order-of-magnitude regressions
    # (one oneOf over the state types took several seconds).
    assert time.process_time() - started < 3.0


def test_large_definition_error_is_found():
    doc = copy.deepcopy(big_definition(200))
    doc["States"]["S150"]["Seconds"] = -1
    assert error_paths(doc) == ["$.States.S150.Seconds"]
