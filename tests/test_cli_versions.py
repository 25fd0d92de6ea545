"""Spec for ``statemill publish``, ``statemill versions list|delete``, ``statemill alias create|update|delete|list``
and ``run/start --version/--alias``, run as a user runs them: the installed command in a subprocess, a SQLite file
in a folder of the test's own."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from clitools import statemill  # noqa: E402

BASE = "arn:aws:states:us-east-1:000000000000:stateMachine:greet"


def write(folder: Path, mark) -> Path:
    path = folder / "greet.json"
    path.write_text(json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {
        "mark": mark, "zero": 0, "no": False}, "End": True}}}))
    return path


def runner(folder: Path):
    def call(*args: str):
        return statemill(*args, "--db", f"sqlite:///{folder}/cli.db", cwd=folder)
    return call


def publish_two(folder: Path) -> None:
    """greet versions 1 (mark 0) and 2 (mark null, the current revision); greet.json then says mark "" (a run
    registers it as the current revision)."""
    sm = runner(folder)
    write(folder, 0)
    assert sm("publish", "greet.json", "--description", "first").stdout.strip() == BASE + ":1"
    write(folder, None)
    assert sm("publish", "greet.json").stdout.strip() == BASE + ":2"
    write(folder, "")


@pytest.fixture
def sm(tmp_path):
    """Run statemill in the test's folder on the test's database."""
    return runner(tmp_path)


@pytest.fixture
def two_versions(tmp_path):
    publish_two(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One folder with two versions for the tests that change nothing (subprocesses are slow on a busy machine)."""
    folder = tmp_path_factory.mktemp("cli-versions")
    publish_two(folder)
    return runner(folder)


def test_publish_by_name_of_an_already_published_revision_prints_its_version(sm, two_versions):
    done = sm("publish", "greet", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stateMachineVersionArn"] == BASE + ":2"


def test_run_on_a_version_runs_it_while_the_file_becomes_latest(sm, two_versions):
    on_version = sm("run", "greet.json", "--version", "1", "--json", "-q")
    assert on_version.returncode == 0, on_version.stderr
    found = json.loads(on_version.stdout)
    assert (found["output"]["mark"], found["stateMachineVersionArn"]) == (0, BASE + ":1")
    latest = json.loads(sm("run", "greet.json", "--json", "-q").stdout)
    assert latest["output"]["mark"] == "" and "stateMachineVersionArn" not in latest


def test_an_alias_is_created_listed_run_updated_and_deleted(sm, two_versions):
    assert sm("alias", "create", "greet", "prod", "--route", "1").stdout.strip() == BASE + ":prod"
    ran = sm("run", "greet.json", "--alias", "prod", "-q")
    assert ran.returncode == 0, ran.stderr
    assert f"version: {BASE}:1" in ran.stderr and f"alias: {BASE}:prod" in ran.stderr
    assert sm("alias", "update", "greet", "prod", "--route", "1=0", "--route", "2=100").returncode == 0
    listed = json.loads(sm("alias", "list", "greet", "--json").stdout)["stateMachineAliases"]
    assert listed == [{"stateMachineAliasArn": BASE + ":prod", "name": "prod", "description": None,
                       "routingConfiguration": [{"stateMachineVersionArn": BASE + ":1", "weight": 0},
                                                {"stateMachineVersionArn": BASE + ":2", "weight": 100}]}]
    started = sm("start", "greet.json", "--alias", "prod", "--name", "later").stdout.strip()
    described = sm("describe", started, "--json")
    assert json.loads(described.stdout)["stateMachineVersionArn"] == BASE + ":2"
    shown = dict(line.split(None, 1) for line in sm("describe", started).stdout.splitlines())
    assert (shown["stateMachineVersionArn"], shown["stateMachineAliasArn"]) == (BASE + ":2", BASE + ":prod")
    versions = json.loads(sm("versions", "list", "greet", "--json").stdout)["stateMachineVersions"]
    assert [(x["version"], x["aliases"], x["description"]) for x in versions] == [(2, ["prod"], None),
                                                                                  (1, ["prod"], "first")]
    assert sm("alias", "delete", "greet", "prod").returncode == 0
    assert "no aliases" in sm("alias", "list", "greet").stdout


def test_a_version_an_alias_routes_to_is_not_deleted(sm, two_versions):
    sm("alias", "create", "greet", "keep", "--route", "2")
    refused = sm("versions", "delete", "greet", "2")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ConflictException:") and "keep" in refused.stderr
    assert sm("versions", "delete", "greet", "1").returncode == 0
    table = sm("versions", "list", "greet").stdout
    assert table.splitlines()[1].split() == ["2", "keep"]


@pytest.mark.parametrize("args, code, error", [
    (("alias", "create", "greet", "half", "--route", "1=50"), 1, "ValidationException"),
    (("alias", "create", "greet", "three", "--route", "1=40", "--route", "2=30", "--route", "2=30"), 1,
     "ValidationException"),
    (("alias", "create", "greet", "ghost", "--route", "9"), 1, "ResourceNotFound"),
    (("alias", "create", "greet", "42", "--route", "1"), 2, "InvalidName"),
    (("alias", "create", "greet", "bad", "--route", "one"), 2, "UsageError"),
    (("alias", "update", "greet", "nobody", "--description", ""), 1, "ResourceNotFound"),
    (("alias", "update", "greet", "nobody"), 2, "UsageError"),
    (("alias", "delete", "greet", "nobody"), 1, "ResourceNotFound"),
    (("publish", "nobody"), 1, "StateMachineDoesNotExist"),
    (("run", "greet.json", "--version", "9", "-q"), 1, "StateMachineDoesNotExist"),
    (("run", "greet.json", "--version", "1", "--alias", "prod"), 2, "UsageError"),
], ids=["weights-not-100", "three-routes", "unknown-version", "alias-name-only-digits", "route-not-a-number",
        "update-unknown-alias", "update-with-nothing", "delete-unknown-alias", "publish-unknown-machine",
        "run-unknown-version", "version-and-alias"])
def test_bad_requests_are_one_line_errors_with_the_exit_code(shared, args, code, error):
    done = shared(*args)
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith(f"error: {error}:"), done.stderr


def test_bad_requests_left_no_alias_behind(shared):
    assert json.loads(shared("alias", "list", "greet", "--json").stdout)["stateMachineAliases"] == []
