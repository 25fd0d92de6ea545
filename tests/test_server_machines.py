"""State machine and tag actions of ``statemill serve``, driven by boto3 against a real server subprocess; the machine
model (revisions, deletion, migration 4) on SQLite and PostgreSQL."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from servertools import REGION, serving
from statemill.engine import Client, Engine
from statemill.engine.machines import StateMachineDeleting
from statemill.engine.store import migrations
from statemill.engine.store.db import normalise_url

ROLE = "arn:aws:iam::000000000000:role/statemill-test"
ACCOUNT = "000000000000"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"zero": 0, "no": False, "none": None,
                                                                                 "empty": ""}, "End": True}}})
OTHER = json.dumps({"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": True}}})
WAIT = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(tmp_path_factory.mktemp("machines"))


@pytest.fixture(scope="module")
def engine_client(server):
    """The engine's client on the server's database: what `statemill run/start/list` use."""
    made = Client(server.db)
    yield made
    made.db.dispose()


def arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:states:{region}:{account}:stateMachine:{name}"


def code(caught) -> tuple[str, int]:
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def create(sfn, name: str, definition: str = PASS, **more) -> dict:
    return sfn.create_state_machine(name=name, definition=definition, roleArn=more.pop("roleArn", ROLE), **more)


# --------------------------------------------------------------------------------------------- create / describe
def test_a_created_machine_is_described_with_its_definition_text_as_given(sfn):
    text = '{ "StartAt": "P",\n  "States": {"P": {"Type": "Pass", "End": true}} }'
    created = create(sfn, "described", text)
    assert created["stateMachineArn"] == arn("described")
    found = sfn.describe_state_machine(stateMachineArn=created["stateMachineArn"])
    assert found["definition"] == text
    assert (found["name"], found["status"], found["type"], found["roleArn"]) == ("described", "ACTIVE", "STANDARD",
                                                                                  ROLE)
    assert found["creationDate"] == created["creationDate"]
    assert found["loggingConfiguration"] == {"level": "OFF", "includeExecutionData": False}
    assert found["tracingConfiguration"] == {"enabled": False}
    assert len(found["revisionId"]) == 36


def test_an_express_machine_keeps_its_type_logging_and_tracing(sfn):
    logging = {"level": "ALL", "includeExecutionData": True, "destinations": [
        {"cloudWatchLogsLogGroup": {"logGroupArn": "arn:aws:logs:us-east-1:000000000000:log-group:g:*"}}]}
    create(sfn, "express", type="EXPRESS", loggingConfiguration=logging, tracingConfiguration={"enabled": True})
    found = sfn.describe_state_machine(stateMachineArn=arn("express"))
    assert (found["type"], found["loggingConfiguration"], found["tracingConfiguration"]) == (
        "EXPRESS", logging, {"enabled": True})
    listed = {m["name"]: m["type"] for m in sfn.list_state_machines()["stateMachines"]}
    assert listed["express"] == "EXPRESS"


def test_creating_again_identically_returns_the_machine_and_ignores_role_and_tags_as_aws(sfn):
    first = create(sfn, "idempotent", tags=[{"key": "team", "value": "a"}])
    again = create(sfn, "idempotent", roleArn="arn:aws:iam::000000000000:role/other",
                   tags=[{"key": "team", "value": "b"}])
    assert again["creationDate"] == first["creationDate"]
    assert sfn.describe_state_machine(stateMachineArn=arn("idempotent"))["roleArn"] == ROLE
    assert sfn.list_tags_for_resource(resourceArn=arn("idempotent"))["tags"] == [{"key": "team", "value": "a"}]


@pytest.mark.parametrize("change", [
    {"definition": OTHER},
    {"type": "EXPRESS"},
    {"loggingConfiguration": {"level": "ERROR", "includeExecutionData": False, "destinations": [
        {"cloudWatchLogsLogGroup": {"logGroupArn": "arn:aws:logs:us-east-1:000000000000:log-group:g:*"}}]}},
    {"tracingConfiguration": {"enabled": True}},
], ids=["definition", "type", "logging", "tracing"])
def test_creating_a_taken_name_differently_is_state_machine_already_exists(sfn, change):
    name = "taken-" + next(iter(change))
    create(sfn, name)
    with pytest.raises(ClientError) as caught:
        create(sfn, name, **{"definition": PASS, **change})
    assert code(caught) == ("StateMachineAlreadyExists", 400)


def test_an_invalid_definition_is_invalid_definition_with_located_messages(sfn):
    broken = '{"StartAt": "Nowhere",\n "States": {"P": {"Type": "Pass", "End": true, "Nope": 0}}}'
    with pytest.raises(ClientError) as caught:
        create(sfn, "broken", broken)
    assert code(caught) == ("InvalidDefinition", 400)
    message = caught.value.response["Error"]["Message"]
    assert message.startswith("Invalid State Machine Definition: '")
    assert "line 1, column 13: SM201" in message and "(at /StartAt)" in message
    assert "SM101" in message and "/States/P/Nope" in message
    with pytest.raises(ClientError):
        sfn.describe_state_machine(stateMachineArn=arn("broken"))  # nothing was written


@pytest.mark.parametrize("definition", ["StartAt: P\nStates: {P: {Type: Pass, End: true}}\n", "{", "[]", "null"],
                         ids=["yaml", "truncated", "array", "null"])
def test_a_definition_that_is_not_a_json_object_is_invalid_definition(sfn, definition):
    with pytest.raises(ClientError) as caught:
        create(sfn, "not-json", definition)
    assert code(caught) == ("InvalidDefinition", 400)


CALLBACK = json.dumps({"StartAt": "Fan", "States": {"Fan": {"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "End": True,
                                          "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}}}]}}})
SYNC = json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Task", "End": True,
                                                        "Resource": "arn:aws:states:::states:startExecution.sync:2"}}})


@pytest.mark.parametrize("definition, pointer, pattern", [
    (CALLBACK, "/States/Fan/Branches/0/States/Ask/Resource", ".waitForTaskToken"),
    (SYNC, "/States/Run/Resource", ".sync"),
], ids=["callback-in-a-branch", "sync"])
def test_an_express_machine_cannot_use_sync_or_callback_tasks(sfn, definition, pointer, pattern):
    with pytest.raises(ClientError) as caught:
        create(sfn, "express-" + pattern.strip("."), definition, type="EXPRESS")
    assert code(caught) == ("InvalidDefinition", 400)
    assert f"does not support '{pattern}' service integration at {pointer}" in caught.value.response["Error"][
        "Message"]
    checked = sfn.validate_state_machine_definition(definition=definition, type="EXPRESS")
    assert checked["result"] == "FAIL" and [d["location"] for d in checked["diagnostics"]] == [pointer]
    assert sfn.validate_state_machine_definition(definition=definition, type="STANDARD")["result"] == "OK"
    create(sfn, "standard-" + pattern.strip("."), definition)  # a STANDARD machine may
    create(sfn, "turned-express-" + pattern.strip("."), PASS, type="EXPRESS")
    with pytest.raises(ClientError) as updated:
        sfn.update_state_machine(stateMachineArn=arn("turned-express-" + pattern.strip(".")), definition=definition)
    assert code(updated) == ("InvalidDefinition", 400)


@pytest.mark.parametrize("name", ["has space", "x" * 81, "with:colon", "a/b", "", "brace{"],
                         ids=["space", "too-long", "colon", "slash", "empty", "brace"])
def test_a_name_aws_refuses_is_invalid_name(unchecked, name):
    with pytest.raises(ClientError) as caught:
        create(unchecked, name)
    assert code(caught) == ("InvalidName", 400)


@pytest.mark.parametrize("fields, error", [
    ({"roleArn": "role"}, "InvalidArn"),
    ({"type": "EXPRESSO"}, "ValidationException"),
    ({"loggingConfiguration": {"level": "ALL"}}, "InvalidLoggingConfiguration"),
    ({"loggingConfiguration": {"level": "LOUD"}}, "ValidationException"),
    ({"tracingConfiguration": {"enabled": "yes"}}, "InvalidTracingConfiguration"),
    ({"tags": [{"key": f"k{i}", "value": str(i)} for i in range(51)]}, "TooManyTags"),
    ({"tags": [{"key": "", "value": "v"}]}, "ValidationException"),
    ({"definition": 0}, "ValidationException"),
    ({"versionDescription": "v0"}, "ValidationException"),
    ({"encryptionConfiguration": {"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "k"}}, "ValidationException"),
], ids=["role-not-an-arn", "unknown-type", "logging-without-destination", "unknown-log-level",
        "tracing-not-boolean", "51-tags", "empty-tag-key", "definition-not-text", "version-description-without-publish",
        "kms-key"])
def test_bad_create_fields_are_named_errors_and_write_nothing(unchecked, sfn, fields, error):
    with pytest.raises(ClientError) as caught:
        unchecked.create_state_machine(**{"name": "refused", "definition": PASS, "roleArn": ROLE, **fields})
    assert code(caught) == (error, 400)
    with pytest.raises(ClientError) as absent:
        sfn.describe_state_machine(stateMachineArn=arn("refused"))
    assert code(absent)[0] == "StateMachineDoesNotExist"


@pytest.mark.parametrize("bad, error", [
    ("not-an-arn", "InvalidArn"),
    ("arn:aws:states:us-east-1:000000000000:execution:m:e", "InvalidArn"),
    ("arn:aws:lambda:us-east-1:000000000000:function:f", "InvalidArn"),
    (arn("described", region="eu-west-1"), "StateMachineDoesNotExist"),
    (arn("described", account="111111111111"), "StateMachineDoesNotExist"),
    (arn("described") + ":1", "StateMachineDoesNotExist"),
    (arn("nobody"), "StateMachineDoesNotExist"),
], ids=["malformed", "execution-arn", "other-service", "other-region", "other-account", "version", "unknown"])
def test_describing_by_a_bad_or_foreign_arn_is_a_named_error(sfn, bad, error):
    create(sfn, "described", '{ "StartAt": "P",\n  "States": {"P": {"Type": "Pass", "End": true}} }')
    with pytest.raises(ClientError) as caught:
        sfn.describe_state_machine(stateMachineArn=bad)
    assert code(caught) == (error, 400)


def test_a_client_of_another_region_sees_the_machine_under_its_own_region_arn(server, sfn):
    create(sfn, "regional")
    west = server.client(region="eu-west-1")
    found = west.describe_state_machine(stateMachineArn=arn("regional", region="eu-west-1"))
    assert found["stateMachineArn"] == arn("regional", region="eu-west-1")


# --------------------------------------------------------------------------------------- update / for execution
def test_an_update_is_a_new_revision_and_running_executions_keep_theirs(sfn, engine_client):
    created = create(sfn, "updated", WAIT)
    before = sfn.describe_state_machine(stateMachineArn=created["stateMachineArn"])
    old = engine_client.start("updated", {"n": 0})["executionArn"]
    updated = sfn.update_state_machine(stateMachineArn=created["stateMachineArn"], definition=OTHER,
                                       roleArn="arn:aws:iam::000000000000:role/new")
    assert updated["revisionId"] != before["revisionId"]
    assert updated["updateDate"] >= before["creationDate"]
    after = sfn.describe_state_machine(stateMachineArn=created["stateMachineArn"])
    assert (after["definition"], after["roleArn"], after["revisionId"]) == (
        OTHER, "arn:aws:iam::000000000000:role/new", updated["revisionId"])
    assert after["creationDate"] == before["creationDate"]
    new = engine_client.start("updated", {})["executionArn"]
    ran_old = sfn.describe_state_machine_for_execution(executionArn=old)
    assert (ran_old["definition"], ran_old["roleArn"], ran_old["revisionId"]) == (WAIT, ROLE, before["revisionId"])
    assert ran_old["name"] == "updated" and ran_old["stateMachineArn"] == created["stateMachineArn"]
    ran_new = sfn.describe_state_machine_for_execution(executionArn=new)
    assert (ran_new["definition"], ran_new["revisionId"]) == (OTHER, updated["revisionId"])
    engine_client.stop(old)


def test_updating_only_the_role_keeps_the_definition(sfn):
    create(sfn, "role-only", PASS)
    sfn.update_state_machine(stateMachineArn=arn("role-only"), roleArn="arn:aws:iam::000000000000:role/r2",
                             tracingConfiguration={"enabled": True})
    found = sfn.describe_state_machine(stateMachineArn=arn("role-only"))
    assert (found["definition"], found["roleArn"], found["tracingConfiguration"]) == (
        PASS, "arn:aws:iam::000000000000:role/r2", {"enabled": True})


def test_going_back_to_an_earlier_definition_makes_it_current_again(sfn, engine_client):
    create(sfn, "back-and-forth", PASS)
    sfn.update_state_machine(stateMachineArn=arn("back-and-forth"), definition=OTHER)
    sfn.update_state_machine(stateMachineArn=arn("back-and-forth"), definition=PASS)
    assert sfn.describe_state_machine(stateMachineArn=arn("back-and-forth"))["definition"] == PASS
    started = engine_client.start("back-and-forth", {})["executionArn"]
    assert sfn.describe_state_machine_for_execution(executionArn=started)["definition"] == PASS


@pytest.mark.parametrize("fields, error", [
    ({}, "MissingRequiredParameter"),
    ({"definition": '{"StartAt": "X", "States": {}}'}, "InvalidDefinition"),
    ({"roleArn": "nope"}, "InvalidArn"),
], ids=["nothing-to-change", "invalid-definition", "bad-role"])
def test_bad_updates_are_named_errors_and_change_nothing(unchecked, sfn, fields, error):
    create(sfn, "kept", PASS)
    with pytest.raises(ClientError) as caught:
        unchecked.update_state_machine(stateMachineArn=arn("kept"), **fields)
    assert code(caught) == (error, 400)
    assert sfn.describe_state_machine(stateMachineArn=arn("kept"))["definition"] == PASS


def test_updating_an_unknown_machine_is_state_machine_does_not_exist(sfn):
    with pytest.raises(ClientError) as caught:
        sfn.update_state_machine(stateMachineArn=arn("never"), definition=PASS)
    assert code(caught) == ("StateMachineDoesNotExist", 400)
    assert caught.value.response["Error"]["Message"] == f"State Machine Does Not Exist: '{arn('never')}'"


@pytest.mark.parametrize("bad, error", [
    ("arn:aws:states:us-east-1:000000000000:execution:m:nope", "ExecutionDoesNotExist"),
    ("nope", "InvalidArn"),
    (arn("described"), "InvalidArn"),
], ids=["unknown", "malformed", "machine-arn"])
def test_describe_state_machine_for_an_unknown_or_bad_execution_is_a_named_error(sfn, bad, error):
    with pytest.raises(ClientError) as caught:
        sfn.describe_state_machine_for_execution(executionArn=bad)
    assert code(caught) == (error, 400)


# ------------------------------------------------------------------------------------------------------- delete
def test_deleting_an_idle_machine_removes_it_and_its_tags_at_once(sfn, engine_client):
    first = create(sfn, "deleted", tags=[{"key": "k", "value": ""}])
    old = sfn.start_execution(stateMachineArn=arn("deleted"), input='{"zero": 0}')["executionArn"]
    engine_client.stop(old)
    sfn.delete_state_machine(stateMachineArn=arn("deleted"))
    with pytest.raises(ClientError) as caught:
        sfn.describe_state_machine(stateMachineArn=arn("deleted"))
    assert code(caught)[0] == "StateMachineDoesNotExist"
    assert "deleted" not in [m["name"] for m in sfn.list_state_machines(maxResults=1000)["stateMachines"]]
    again = create(sfn, "deleted", OTHER)
    assert again["creationDate"] >= first["creationDate"]
    assert sfn.describe_state_machine(stateMachineArn=arn("deleted"))["definition"] == OTHER
    assert sfn.list_tags_for_resource(resourceArn=arn("deleted"))["tags"] == []
    assert sfn.list_executions(stateMachineArn=arn("deleted"))["executions"] == []  # the old one's stay apart
    assert sfn.describe_execution(executionArn=old)["status"] in ("SUCCEEDED", "ABORTED")


def test_deleting_an_unknown_machine_succeeds_as_on_aws(sfn):
    assert sfn.delete_state_machine(stateMachineArn=arn("ghost"))["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_machine_with_running_executions_is_deleting_until_they_end(sfn, engine_client):
    create(sfn, "draining", WAIT)
    running = engine_client.start("draining", {"zero": 0})["executionArn"]
    sfn.delete_state_machine(stateMachineArn=arn("draining"))
    assert sfn.describe_state_machine(stateMachineArn=arn("draining"))["status"] == "DELETING"
    assert "draining" in [m["name"] for m in sfn.list_state_machines(maxResults=1000)["stateMachines"]]
    with pytest.raises(StateMachineDeleting):
        engine_client.start("draining", {})
    for attempt in (lambda: sfn.update_state_machine(stateMachineArn=arn("draining"), definition=PASS),
                    lambda: create(sfn, "draining", WAIT)):
        with pytest.raises(ClientError) as caught:
            attempt()
        assert code(caught) == ("StateMachineDeleting", 400)
    assert engine_client.describe(running)["status"] == "RUNNING"
    engine_client.stop(running)
    with pytest.raises(ClientError) as caught:
        sfn.describe_state_machine(stateMachineArn=arn("draining"))
    assert code(caught)[0] == "StateMachineDoesNotExist"
    assert sfn.describe_state_machine_for_execution(executionArn=running)["definition"] == WAIT


# --------------------------------------------------------------------------------------------------------- list
def test_list_pages_through_every_machine_with_boto3s_paginator(server):
    client = server.client(region="ap-south-1")
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        create(client, name)
    pages = list(client.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 2}))
    seen = [m["name"] for page in pages for m in page["stateMachines"]]
    assert [n for n in seen if n.startswith("page-")] == names
    assert len(seen) == len(set(seen))
    assert all(len(page["stateMachines"]) <= 2 for page in pages) and "nextToken" not in pages[-1]
    item = next(m for page in pages for m in page["stateMachines"] if m["name"] == "page-0")
    assert item["stateMachineArn"] == arn("page-0", region="ap-south-1") and item["type"] == "STANDARD"
    assert isinstance(item["creationDate"], datetime)


def test_a_paginator_resumes_from_any_next_token_list_state_machines_gave(sfn):
    for i in range(12):  # tokens of every length modulo 3: some tripped botocore when tokens were JSON objects
        create(sfn, "resume-" + "x" * i)
    token, pages = None, []
    while True:
        page = sfn.list_state_machines(maxResults=1, **({"nextToken": token} if token else {}))
        pages.append((token, [m["name"] for m in page["stateMachines"]]))
        token = page.get("nextToken")
        if token is None:
            break
    for token, names in pages[1:]:  # each raw nextToken, given to boto3's paginator as its StartingToken
        resumed = sfn.get_paginator("list_state_machines").paginate(
            PaginationConfig={"StartingToken": token, "PageSize": 1})
        assert [m["name"] for m in next(iter(resumed))["stateMachines"]] == names


@pytest.mark.parametrize("token", ["garbage", "eyJ4IjogMX0=", "bm90IGpzb24="], ids=["not-base64", "other-json",
                                                                                      "not-json"])
def test_a_token_list_did_not_hand_out_is_invalid_token(sfn, token):
    with pytest.raises(ClientError) as caught:
        sfn.list_state_machines(nextToken=token)
    assert code(caught) == ("InvalidToken", 400)


def test_max_results_over_1000_is_a_validation_exception(unchecked):
    with pytest.raises(ClientError) as caught:
        unchecked.list_state_machines(maxResults=1001)
    assert code(caught) == ("ValidationException", 400)


# ------------------------------------------------------------------------------------------------------ validate
CHOICE_WITHOUT_DEFAULT = json.dumps({"StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 0, "Next": "D"}]},
    "D": {"Type": "Succeed"}}})


@pytest.mark.parametrize("definition, severity, result, codes", [
    (PASS, "ERROR", "OK", []),
    (CHOICE_WITHOUT_DEFAULT, "ERROR", "OK", []),
    (CHOICE_WITHOUT_DEFAULT, "WARNING", "OK", [("WARNING", "SM901", "/States/C")]),
    ('{"StartAt": "Nowhere", "States": {"P": {"Type": "Pass", "End": true}}}', "ERROR", "FAIL",
     [("ERROR", "SM201", "/StartAt")]),
    ("{", "ERROR", "FAIL", [("ERROR", "SM001", "/")]),
], ids=["valid", "warning-hidden-at-error", "warning-shown", "error", "not-json"])
def test_validate_reports_our_diagnostics_in_aws_shape(sfn, definition, severity, result, codes):
    answer = sfn.validate_state_machine_definition(definition=definition, severity=severity)
    assert answer["result"] == result and answer["truncated"] is False
    assert [(d["severity"], d["code"], d["location"]) for d in answer["diagnostics"]] == codes
    assert all(d["message"] for d in answer["diagnostics"])


def test_validate_truncates_at_max_results(sfn):
    two = '{"StartAt": "Nowhere", "States": {"P": {"Type": "Pass", "End": true, "Nope": 0}}}'
    answer = sfn.validate_state_machine_definition(definition=two, maxResults=1)
    assert (answer["result"], len(answer["diagnostics"]), answer["truncated"]) == ("FAIL", 1, True)


# ---------------------------------------------------------------------------------------------------------- tags
def test_tags_are_added_overwritten_listed_and_removed(sfn):
    create(sfn, "tagged")
    sfn.tag_resource(resourceArn=arn("tagged"), tags=[{"key": "b", "value": "0"}, {"key": "a", "value": ""}])
    sfn.tag_resource(resourceArn=arn("tagged"), tags=[{"key": "b", "value": "false"}])
    assert sfn.list_tags_for_resource(resourceArn=arn("tagged"))["tags"] == [
        {"key": "a", "value": ""}, {"key": "b", "value": "false"}]
    sfn.untag_resource(resourceArn=arn("tagged"), tagKeys=["b", "never-set"])
    assert sfn.list_tags_for_resource(resourceArn=arn("tagged"))["tags"] == [{"key": "a", "value": ""}]


def test_more_than_50_tags_in_all_is_too_many_tags_and_adds_none(sfn):
    create(sfn, "crowded", tags=[{"key": f"k{i}", "value": "v"} for i in range(50)])
    with pytest.raises(ClientError) as caught:
        sfn.tag_resource(resourceArn=arn("crowded"), tags=[{"key": "one-more", "value": "v"}])
    assert code(caught) == ("TooManyTags", 400)
    assert len(sfn.list_tags_for_resource(resourceArn=arn("crowded"))["tags"]) == 50


@pytest.mark.parametrize("resource, error", [
    (arn("untagged-nobody"), "ResourceNotFound"),
    (arn("tagged", region="eu-west-1"), "ResourceNotFound"),
    ("arn:aws:states:us-east-1:000000000000:activity:act", "ResourceNotFound"),
    ("arn:aws:states:us-east-1:000000000000:execution:tagged:e", "InvalidArn"),
    ("tagged", "InvalidArn"),
], ids=["unknown-machine", "other-region", "activity", "execution", "not-an-arn"])
@pytest.mark.parametrize("operation", ["tag", "untag", "list"])
def test_tagging_what_is_not_a_machine_here_is_a_named_error(sfn, resource, error, operation):
    calls = {"tag": lambda: sfn.tag_resource(resourceArn=resource, tags=[{"key": "k", "value": "v"}]),
             "untag": lambda: sfn.untag_resource(resourceArn=resource, tagKeys=["k"]),
             "list": lambda: sfn.list_tags_for_resource(resourceArn=resource)}
    with pytest.raises(ClientError) as caught:
        calls[operation]()
    assert code(caught) == (error, 400)


# ------------------------------------------------------------------------------- one machine for the CLI and API
def test_a_machine_registered_from_a_file_is_seen_by_the_api_as_standard(sfn, engine_client, tmp_path):
    (tmp_path / "from_file.yaml").write_text("StartAt: P\nStates:\n  P: {Type: Pass, End: true}\n")
    engine_client.register(str(tmp_path / "from_file.yaml"))
    found = sfn.describe_state_machine(stateMachineArn=arn("from_file"))
    assert (found["type"], found["roleArn"], found["status"]) == ("STANDARD", engine_client.role_arn, "ACTIVE")
    assert json.loads(found["definition"]) == {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def test_an_api_machine_runs_under_its_name_and_keeps_its_settings_when_registered_again(sfn, engine_client,
                                                                                           tmp_path):
    create(sfn, "shared", PASS, type="EXPRESS", tracingConfiguration={"enabled": True})
    (tmp_path / "shared.json").write_text(OTHER)
    engine_client.register(str(tmp_path / "shared.json"))
    found = sfn.describe_state_machine(stateMachineArn=arn("shared"))
    assert (found["type"], found["roleArn"], found["tracingConfiguration"]) == ("EXPRESS", ROLE, {"enabled": True})
    assert json.loads(found["definition"]) == json.loads(OTHER)


# ----------------------------------------------------------------------------- the model on SQLite and PostgreSQL
def single(name: str) -> dict:
    return {"StartAt": name, "States": {name: {"Type": "Pass", "End": True}}}


def test_registering_an_earlier_definition_again_makes_it_the_one_that_runs(engine):
    engine.register(single("A"), "flip")
    engine.register(single("B"), "flip")
    engine.register(single("A"), "flip")
    started = engine.start("flip", {})["executionArn"]
    assert engine.wait(started)["output"] == {}
    assert [e["stateEnteredEventDetails"]["name"] for e in engine.history(started)
            if e["type"] == "PassStateEntered"] == ["A"]


def test_migration_4_gives_machines_registered_before_it_a_type_and_creation_date(db_url, fake_clock):
    made = Engine(db_url, clock=fake_clock)
    made.register(single("A"), "old")
    fake_clock.advance(60)
    made.register(single("B"), "old")
    running = made.start("old", {"zero": 0})["executionArn"]
    with made.db.begin() as conn:  # back to version 3: no machines, no tags, no per-revision settings
        conn.execute(sa.text("DROP TABLE machines"))
        conn.execute(sa.text("DROP TABLE tags"))
        for column in ("role_arn", "logging", "tracing"):
            conn.execute(sa.text(f"ALTER TABLE state_machines DROP COLUMN {column}"))
        conn.execute(sa.text("UPDATE statemill_schema SET version = 3"))
    made.db.dispose()
    db = sa.create_engine(normalise_url(db_url))
    assert migrations.upgrade(db) == (3, migrations.LATEST)
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT name, type, status, created_at FROM machines")).one()
    db.dispose()
    upgraded = Engine(db_url, clock=fake_clock)
    try:
        assert (row.name, row.type, row.status) == ("old", "STANDARD", "ACTIVE")
        assert row.created_at == pytest.approx(fake_clock.now() - 60)
        assert upgraded.wait(running)["status"] == "SUCCEEDED"
        assert upgraded.wait(upgraded.start("old", {})["executionArn"])["status"] == "SUCCEEDED"
    finally:
        upgraded.db.dispose()


# ------------------------------------------------------------------------------------------------- the AWS CLI
def aws(server, *args: str) -> dict:
    """Run ``aws stepfunctions ARGS`` (AWS CLI v1, a subprocess: importing awscli here would swap botocore for its
    own copy) against the server; its JSON answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    done = subprocess.run([sys.executable, "-m", "awscli", "stepfunctions", "--endpoint-url", server.url,
                           "--output", "json", *args], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


@pytest.mark.skipif(importlib.util.find_spec("awscli") is None,
                    reason="the AWS CLI (pip install awscli, part of the test extra) is not installed")
def test_the_aws_cli_creates_starts_and_describes(server):
    created = aws(server, "create-state-machine", "--name", "from-the-cli", "--definition", PASS,
                  "--role-arn", ROLE)
    assert created["stateMachineArn"] == arn("from-the-cli")
    started = aws(server, "start-execution", "--state-machine-arn", created["stateMachineArn"], "--name", "first",
                  "--input", '{"zero": 0, "no": false, "none": null, "empty": ""}')
    deadline = time.monotonic() + 30
    while (found := aws(server, "describe-execution", "--execution-arn", started["executionArn"]))["status"] \
            == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert found["status"] == "SUCCEEDED"
    assert json.loads(found["output"]) == {"zero": 0, "no": False, "none": None, "empty": ""}
    described = aws(server, "describe-state-machine", "--state-machine-arn", created["stateMachineArn"])
    assert (described["definition"], described["roleArn"]) == (PASS, ROLE)


def test_a_machine_lives_is_deleted_and_is_created_again_on_either_database(engine):
    from statemill.engine import machines as m
    wait = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}
    name, now = "cycle", engine.clock.now()
    with engine.db.begin() as conn:
        m.store(conn, name, wait, json.dumps(wait), m.Settings(ROLE, None, {"enabled": True}), now, type_=m.EXPRESS,
                create=True)
        m.tag(conn, engine.machine_arn(name), [("zero", "0"), ("empty", "")])
    running = engine.start(name, {"zero": 0})["executionArn"]
    with engine.db.begin() as conn:
        m.delete(conn, name)
        assert [(r.name, r.status, r.type) for r in m.listed(conn, None, 10)] == [(name, "DELETING", m.EXPRESS)]
    engine.stop(running)
    with engine.db.begin() as conn:
        assert m.head(conn, name) is None and m.listed(conn, None, 10) == []
        m.store(conn, name, wait, json.dumps(wait), m.Settings(), engine.clock.now() + 1, create=True)
        assert m.list_tags(conn, engine.machine_arn(name)) == []
        assert m.head(conn, name).type == m.STANDARD
    assert engine.list(machine=name) == []  # the deleted machine's execution is not the new one's
    assert engine.describe(running)["status"] == "ABORTED"
