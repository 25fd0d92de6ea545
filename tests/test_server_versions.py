"""Versions and aliases through ``statemill serve``, driven by boto3 against a real server subprocess: publishing,
describing and deleting versions, aliases and their routing weights, executions started on a version or alias."""
from __future__ import annotations

import json
import random
import time

import pytest
from botocore.exceptions import ClientError

from servertools import REGION, serving
from statemill.engine import versions

ROLE = "arn:aws:iam::000000000000:role/statemill-test"
ACCOUNT = "000000000000"


def definition(mark) -> str:
    """A machine whose output says which definition ran (``mark``) and what $$.StateMachine.Id was."""
    return json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
        "mark": mark, "zero": 0, "no": False, "none": None, "empty": "", "id.$": "$$.StateMachine.Id"},
        "End": True}}})


WAIT = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(tmp_path_factory.mktemp("versions"))


def arn(name: str, qualifier: str | int | None = None) -> str:
    base = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    return base if qualifier is None else f"{base}:{qualifier}"


def code(caught) -> str:
    return caught.value.response["Error"]["Code"]


def machine(sfn, name: str, *marks) -> str:
    """A machine with one version per mark (definition(mark) published in order); the last is current."""
    sfn.create_state_machine(name=name, definition=definition(marks[0]), roleArn=ROLE)
    for mark in marks:
        sfn.update_state_machine(stateMachineArn=arn(name), definition=definition(mark), publish=True)
    return arn(name)


def finished(sfn, execution: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        found = sfn.describe_execution(executionArn=execution)
        if found["status"] != "RUNNING" or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def run(sfn, target: str, **more) -> dict:
    return finished(sfn, sfn.start_execution(stateMachineArn=target, input='{"zero": 0}', **more)["executionArn"])


# ------------------------------------------------------------------------------------------------------- versions
def test_versions_are_numbered_from_1_and_describe_shows_the_definition_they_froze(sfn):
    base = machine(sfn, "numbered", 0, 1)
    sfn.update_state_machine(stateMachineArn=base, definition=definition(2))  # $LATEST moves on, unpublished
    listed = sfn.list_state_machine_versions(stateMachineArn=base)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [arn("numbered", 2), arn("numbered", 1)]
    first = sfn.describe_state_machine(stateMachineArn=arn("numbered", 1))
    assert first["stateMachineArn"] == arn("numbered", 1)
    assert json.loads(first["definition"])["States"]["P"]["Parameters"]["mark"] == 0
    assert json.loads(sfn.describe_state_machine(stateMachineArn=base)["definition"])["States"]["P"][
        "Parameters"]["mark"] == 2


def test_publishing_an_already_published_revision_returns_its_version(sfn):
    base = machine(sfn, "idempotent", False)
    again = sfn.publish_state_machine_version(stateMachineArn=base)
    assert again["stateMachineVersionArn"] == arn("idempotent", 1)
    assert len(sfn.list_state_machine_versions(stateMachineArn=base)["stateMachineVersions"]) == 1


def test_create_with_publish_returns_version_1_with_its_description(sfn):
    created = sfn.create_state_machine(name="born-published", definition=definition(""), roleArn=ROLE,
                                       publish=True, versionDescription="")
    assert created["stateMachineVersionArn"] == arn("born-published", 1)
    found = sfn.describe_state_machine(stateMachineArn=created["stateMachineVersionArn"])
    assert found.get("description", "") == ""
    sfn.update_state_machine(stateMachineArn=arn("born-published"), definition=definition(None), publish=True,
                             versionDescription="the null one")
    assert sfn.describe_state_machine(stateMachineArn=arn("born-published", 2))["description"] == "the null one"


def test_publish_with_a_stale_revision_id_is_a_conflict(sfn):
    base = machine(sfn, "guarded", 0)
    revision = sfn.describe_state_machine(stateMachineArn=base)["revisionId"]
    sfn.update_state_machine(stateMachineArn=base, definition=definition(1))
    with pytest.raises(ClientError) as caught:
        sfn.publish_state_machine_version(stateMachineArn=base, revisionId=revision)
    assert code(caught) == "ConflictException"
    current = sfn.describe_state_machine(stateMachineArn=base)["revisionId"]
    published = sfn.publish_state_machine_version(stateMachineArn=base, revisionId=current, description="d")
    assert published["stateMachineVersionArn"] == arn("guarded", 2)


def test_version_numbers_are_never_reused_after_a_delete(sfn):
    base = machine(sfn, "reused", 0, 1)
    sfn.delete_state_machine_version(stateMachineVersionArn=arn("reused", 2))
    sfn.delete_state_machine_version(stateMachineVersionArn=arn("reused", 2))  # deleting again succeeds, as on AWS
    sfn.update_state_machine(stateMachineArn=base, definition=definition(2), publish=True)
    assert [v["stateMachineVersionArn"] for v in sfn.list_state_machine_versions(
        stateMachineArn=base)["stateMachineVersions"]] == [arn("reused", 3), arn("reused", 1)]


def test_versions_list_in_pages(sfn):
    base = machine(sfn, "paged", 0, 1, 2)
    first = sfn.list_state_machine_versions(stateMachineArn=base, maxResults=2)
    rest = sfn.list_state_machine_versions(stateMachineArn=base, maxResults=2, nextToken=first["nextToken"])
    assert [v["stateMachineVersionArn"][-1] for v in first["stateMachineVersions"] + rest["stateMachineVersions"]] \
        == ["3", "2", "1"]
    assert "nextToken" not in rest


def test_deleting_the_machine_deletes_its_versions_and_aliases(sfn):
    base = machine(sfn, "reborn", 0)
    sfn.create_state_machine_alias(name="live", routingConfiguration=[
        {"stateMachineVersionArn": arn("reborn", 1), "weight": 100}])
    sfn.delete_state_machine(stateMachineArn=base)
    sfn.create_state_machine(name="reborn", definition=definition(1), roleArn=ROLE)
    assert sfn.list_state_machine_versions(stateMachineArn=base)["stateMachineVersions"] == []
    assert sfn.list_state_machine_aliases(stateMachineArn=base)["stateMachineAliases"] == []
    assert sfn.publish_state_machine_version(stateMachineArn=base)["stateMachineVersionArn"] == arn("reborn", 1)


# ------------------------------------------------------------------------------------------------------ executions
def test_an_execution_on_a_version_runs_that_version_and_says_so(sfn):
    machine(sfn, "pinned", 0, 1)
    done = run(sfn, arn("pinned", 1))
    assert json.loads(done["output"])["mark"] == 0
    assert done["stateMachineArn"] == arn("pinned")
    assert done["stateMachineVersionArn"] == arn("pinned", 1)
    assert "stateMachineAliasArn" not in done
    started = sfn.get_execution_history(executionArn=done["executionArn"])["events"][0]
    assert started["executionStartedEventDetails"]["stateMachineVersionArn"] == arn("pinned", 1)


def test_an_execution_on_the_unqualified_arn_runs_latest_and_has_no_version(sfn):
    machine(sfn, "latest", 0)
    sfn.update_state_machine(stateMachineArn=arn("latest"), definition=definition(1))
    done = run(sfn, arn("latest"))
    assert json.loads(done["output"])["mark"] == 1
    assert "stateMachineVersionArn" not in done and "stateMachineAliasArn" not in done


def test_the_context_object_shows_the_unqualified_machine_arn_on_a_version_or_alias(sfn):
    """AWS documents $$.StateMachine.Id as the state machine's ARN; the version and alias are in describe."""
    machine(sfn, "context", 0)
    sfn.create_state_machine_alias(name="ctx", routingConfiguration=[
        {"stateMachineVersionArn": arn("context", 1), "weight": 100}])
    for target in (arn("context", 1), arn("context", "ctx")):
        assert json.loads(run(sfn, target)["output"])["id"] == arn("context")


def test_an_execution_on_an_alias_names_the_alias_and_the_version_it_picked(sfn):
    machine(sfn, "aliased", 0, 1)
    sfn.create_state_machine_alias(name="prod", description="", routingConfiguration=[
        {"stateMachineVersionArn": arn("aliased", 1), "weight": 100},
        {"stateMachineVersionArn": arn("aliased", 2), "weight": 0}])
    done = run(sfn, arn("aliased", "prod"))
    assert (done["stateMachineAliasArn"], done["stateMachineVersionArn"]) == (arn("aliased", "prod"),
                                                                              arn("aliased", 1))
    assert json.loads(done["output"])["mark"] == 0
    listed = sfn.list_executions(stateMachineArn=arn("aliased", "prod"))["executions"]
    assert [e["executionArn"] for e in listed] == [done["executionArn"]]
    assert listed[0]["stateMachineAliasArn"] == arn("aliased", "prod")
    assert sfn.list_executions(stateMachineArn=arn("aliased", 2))["executions"] == []


def test_a_running_execution_keeps_its_version_when_the_alias_moves(sfn):
    sfn.create_state_machine(name="moving", definition=WAIT, roleArn=ROLE, publish=True)
    sfn.update_state_machine(stateMachineArn=arn("moving"), definition=definition(1), publish=True)
    sfn.create_state_machine_alias(name="blue", routingConfiguration=[
        {"stateMachineVersionArn": arn("moving", 1), "weight": 100}])
    waiting = sfn.start_execution(stateMachineArn=arn("moving", "blue"))["executionArn"]
    sfn.update_state_machine_alias(stateMachineAliasArn=arn("moving", "blue"), routingConfiguration=[
        {"stateMachineVersionArn": arn("moving", 2), "weight": 100}])
    found = sfn.describe_execution(executionArn=waiting)
    assert (found["status"], found["stateMachineVersionArn"]) == ("RUNNING", arn("moving", 1))
    assert json.loads(sfn.describe_state_machine_for_execution(executionArn=waiting)["definition"]) == \
        json.loads(WAIT)
    assert json.loads(run(sfn, arn("moving", "blue"))["output"])["mark"] == 1
    sfn.stop_execution(executionArn=waiting)


@pytest.mark.parametrize("target, ran", [(None, None), (1, 1), ("live", 2)],
                         ids=["latest_names_the_machine", "a_version_names_it", "an_alias_names_the_version_it_picked"])
def test_describe_state_machine_for_execution_names_the_version_that_ran(sfn, target, ran):
    name = f"for-execution-{target}"
    machine(sfn, name, 0, 1)
    sfn.create_state_machine_alias(name="live", routingConfiguration=[
        {"stateMachineVersionArn": arn(name, 2), "weight": 100}])
    sfn.update_state_machine(stateMachineArn=arn(name), definition=definition(""))  # $LATEST moves on
    done = run(sfn, arn(name, target))
    found = sfn.describe_state_machine_for_execution(executionArn=done["executionArn"])
    assert found["stateMachineArn"] == arn(name, ran) and found["name"] == name
    expected = sfn.describe_state_machine(stateMachineArn=arn(name, ran))
    assert json.loads(found["definition"]) == json.loads(expected["definition"])
    assert found["revisionId"] == expected["revisionId"]
    if ran is not None:  # a version never changes: its creation is its last update
        assert found["updateDate"] == expected["creationDate"]
    assert done.get("stateMachineVersionArn") == (None if ran is None else arn(name, ran))
    assert done.get("stateMachineAliasArn") == (arn(name, "live") if target == "live" else None)


def test_an_alias_splits_200_starts_50_50_within_a_wide_tolerance(sfn):
    machine(sfn, "split", 0, 1)
    sfn.create_state_machine_alias(name="half", routingConfiguration=[
        {"stateMachineVersionArn": arn("split", 1), "weight": 50},
        {"stateMachineVersionArn": arn("split", 2), "weight": 50}])
    started = [sfn.start_execution(stateMachineArn=arn("split", "half"))["executionArn"] for _ in range(200)]
    picked = [sfn.describe_execution(executionArn=e)["stateMachineVersionArn"] for e in started]
    ones = picked.count(arn("split", 1))
    assert ones + picked.count(arn("split", 2)) == 200
    assert 60 <= ones <= 140  # binomial(200, 0.5): outside this range about once in 10^9 runs


class Draw:
    """A stand-in RNG whose ``randrange(100)`` is a given number: each of the 100 equally likely draws in turn."""

    def __init__(self, value: int):
        self.value = value

    def randrange(self, stop: int) -> int:
        assert stop == 100
        return self.value


@pytest.mark.parametrize("first, second", [(100, 0), (0, 100), (90, 10), (50, 50), (1, 99)],
                         ids=["all-first", "all-second", "ninety-ten", "half", "one-percent"])
def test_the_picker_gives_each_version_exactly_its_weight_in_draws_out_of_100(first, second):
    picked = [versions.pick([[3, first], [7, second]], Draw(d)) for d in range(100)]
    assert (picked.count(3), picked.count(7)) == (first, second)


def test_a_single_version_alias_always_picks_it():
    rng = random.Random(0)
    assert {versions.pick([[4, 100]], rng) for _ in range(200)} == {4}


# --------------------------------------------------------------------------------------------------------- aliases
def test_an_alias_is_described_updated_listed_and_deleted(sfn):
    machine(sfn, "lifecycle", 0, 1)
    created = sfn.create_state_machine_alias(name="stage", description="first", routingConfiguration=[
        {"stateMachineVersionArn": arn("lifecycle", 1), "weight": 100}])
    assert created["stateMachineAliasArn"] == arn("lifecycle", "stage")
    again = sfn.create_state_machine_alias(name="stage", description="first", routingConfiguration=[
        {"stateMachineVersionArn": arn("lifecycle", 1), "weight": 100}])
    assert again["creationDate"] == created["creationDate"]  # idempotent
    sfn.update_state_machine_alias(stateMachineAliasArn=created["stateMachineAliasArn"], description="second",
                                   routingConfiguration=[
                                       {"stateMachineVersionArn": arn("lifecycle", 1), "weight": 30},
                                       {"stateMachineVersionArn": arn("lifecycle", 2), "weight": 70}])
    found = sfn.describe_state_machine_alias(stateMachineAliasArn=created["stateMachineAliasArn"])
    assert (found["name"], found["description"]) == ("stage", "second")
    assert found["routingConfiguration"] == [{"stateMachineVersionArn": arn("lifecycle", 1), "weight": 30},
                                             {"stateMachineVersionArn": arn("lifecycle", 2), "weight": 70}]
    assert found["updateDate"] >= found["creationDate"]
    sfn.create_state_machine_alias(name="other", routingConfiguration=[
        {"stateMachineVersionArn": arn("lifecycle", 2), "weight": 100}])
    listed = sfn.list_state_machine_aliases(stateMachineArn=arn("lifecycle"))["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in listed] == [arn("lifecycle", "other"), arn("lifecycle", "stage")]
    of_one = sfn.list_state_machine_aliases(stateMachineArn=arn("lifecycle", 1))["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in of_one] == [arn("lifecycle", "stage")]
    sfn.delete_state_machine_alias(stateMachineAliasArn=created["stateMachineAliasArn"])
    with pytest.raises(ClientError) as caught:
        sfn.describe_state_machine_alias(stateMachineAliasArn=created["stateMachineAliasArn"])
    assert code(caught) == "ResourceNotFound"


def test_a_version_an_alias_routes_to_cannot_be_deleted(sfn):
    machine(sfn, "referenced", 0)
    sfn.create_state_machine_alias(name="keep", routingConfiguration=[
        {"stateMachineVersionArn": arn("referenced", 1), "weight": 100}])
    with pytest.raises(ClientError) as caught:
        sfn.delete_state_machine_version(stateMachineVersionArn=arn("referenced", 1))
    assert code(caught) == "ConflictException"
    assert "keep" in caught.value.response["Error"]["Message"]
    sfn.delete_state_machine_alias(stateMachineAliasArn=arn("referenced", "keep"))
    sfn.delete_state_machine_version(stateMachineVersionArn=arn("referenced", 1))
    assert sfn.list_state_machine_versions(stateMachineArn=arn("referenced"))["stateMachineVersions"] == []


@pytest.fixture(scope="module")
def errs(sfn):
    """Machine "errs" with versions 1 and 2 and alias "taken" (to version 1); "other-errs" with version 1."""
    machine(sfn, "errs", 0, 1)
    machine(sfn, "other-errs", 0)
    sfn.create_state_machine_alias(name="taken", routingConfiguration=_route((arn("errs", 1), 100)))


def _route(*pairs):
    return [{"stateMachineVersionArn": target, "weight": weight} for target, weight in pairs]


@pytest.mark.parametrize("call, error", [
    (("create_state_machine_alias", dict(name="x", routingConfiguration=_route((arn("errs", 1), 60)))),
     "ValidationException"),
    (("create_state_machine_alias", dict(name="x", routingConfiguration=_route(
        (arn("errs", 1), 40), (arn("errs", 2), 30), (arn("errs", 3), 30)))), "ValidationException"),
    (("create_state_machine_alias", dict(name="x", routingConfiguration=_route(
        (arn("errs", 1), 50), (arn("errs", 1), 50)))), "ValidationException"),
    (("create_state_machine_alias", dict(name="x", routingConfiguration=_route(
        (arn("errs", 1), -10), (arn("errs", 2), 110)))), "ValidationException"),
    (("create_state_machine_alias", dict(name="x", routingConfiguration=[])), "ValidationException"),
    (("create_state_machine_alias", dict(name="x", routingConfiguration=_route((arn("errs", 9), 100)))),
     "ResourceNotFound"),
    (("create_state_machine_alias", dict(name="x", routingConfiguration=_route((arn("errs"), 100)))),
     "ValidationException"),
    (("create_state_machine_alias", dict(name="x", routingConfiguration=_route(
        (arn("errs", 1), 50), (arn("other-errs", 1), 50)))), "ValidationException"),
    (("create_state_machine_alias", dict(name="123", routingConfiguration=_route((arn("errs", 1), 100)))),
     "InvalidName"),
    (("create_state_machine_alias", dict(name="taken", routingConfiguration=_route((arn("errs", 2), 100)))),
     "ConflictException"),
    (("update_state_machine_alias", dict(stateMachineAliasArn=arn("errs", "taken"))), "ValidationException"),
    (("update_state_machine_alias", dict(stateMachineAliasArn=arn("errs", "nobody"), description="d")),
     "ResourceNotFound"),
    (("describe_state_machine_alias", dict(stateMachineAliasArn=arn("errs", "nobody"))), "ResourceNotFound"),
    (("describe_state_machine_alias", dict(stateMachineAliasArn=arn("errs", 1))), "InvalidArn"),
    (("delete_state_machine_alias", dict(stateMachineAliasArn=arn("errs", "nobody"))), "ResourceNotFound"),
    (("delete_state_machine_version", dict(stateMachineVersionArn=arn("errs"))), "InvalidArn"),
    (("delete_state_machine_version", dict(stateMachineVersionArn=arn("errs", "taken"))), "InvalidArn"),
    (("describe_state_machine", dict(stateMachineArn=arn("errs", 9))), "StateMachineDoesNotExist"),
    (("start_execution", dict(stateMachineArn=arn("errs", 9))), "StateMachineDoesNotExist"),
    (("start_execution", dict(stateMachineArn=arn("errs", "nobody"))), "StateMachineDoesNotExist"),
    (("publish_state_machine_version", dict(stateMachineArn=arn("nobody"))), "StateMachineDoesNotExist"),
    (("publish_state_machine_version", dict(stateMachineArn=arn("errs", 1))), "ValidationException"),
    (("list_state_machine_versions", dict(stateMachineArn=arn("nobody"))), "StateMachineDoesNotExist"),
    (("list_state_machine_aliases", dict(stateMachineArn=arn("errs", 9))), "ResourceNotFound"),
    (("update_state_machine", dict(stateMachineArn=arn("errs"), versionDescription="d")), "ValidationException"),
], ids=["weights-not-100", "three-versions", "same-version-twice", "weight-out-of-range", "no-version",
        "unknown-version", "unqualified-arn-in-routing", "versions-of-two-machines", "alias-name-only-digits",
        "alias-exists-with-other-routing", "update-with-nothing", "update-unknown-alias", "describe-unknown-alias",
        "describe-alias-by-version-arn", "delete-unknown-alias", "delete-version-by-machine-arn",
        "delete-version-by-alias-arn", "describe-unknown-version", "start-unknown-version", "start-unknown-alias",
        "publish-unknown-machine", "publish-on-a-version-arn", "list-versions-unknown-machine",
        "list-aliases-unknown-version", "version-description-without-publish"])
def test_bad_version_and_alias_requests_are_named_errors_and_change_nothing(sfn, unchecked, errs, call, error):
    before = _snapshot(sfn)
    method, arguments = call
    with pytest.raises(ClientError) as caught:
        getattr(unchecked, method)(**arguments)
    assert code(caught) == error
    assert _snapshot(sfn) == before


def _snapshot(sfn) -> tuple:
    """Versions, aliases (with routing) and executions of the error tests' machine."""
    aliases = [sfn.describe_state_machine_alias(stateMachineAliasArn=a["stateMachineAliasArn"])
               for a in sfn.list_state_machine_aliases(stateMachineArn=arn("errs"))["stateMachineAliases"]]
    return (sfn.list_state_machine_versions(stateMachineArn=arn("errs"))["stateMachineVersions"],
            [(a["name"], a.get("description"), a["routingConfiguration"]) for a in aliases],
            sfn.list_executions(stateMachineArn=arn("errs"))["executions"],
            sfn.describe_state_machine(stateMachineArn=arn("errs"))["revisionId"])
