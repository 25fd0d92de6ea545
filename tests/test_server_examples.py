"""The statemachines/ examples give the same result through boto3 against ``statemill serve`` as through
``statemill run``: status, output, error, cause, execution ARN, and the history's events (timestamps aside)."""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from clitools import statemill
from servertools import serving
from statemill.engine import loader

EXAMPLES = Path(__file__).resolve().parent.parent / "statemachines"
HANDLERS = "statemill.statemachines.demo_handlers"
ORDER = json.loads((EXAMPLES / "order_input.json").read_text())
CASES = {
    "order-shipped": ("order_saga.yaml", ORDER),
    "order-declined-at-zero": ("order_saga.yaml", {**ORDER, "amount": 0}),
    "order-unreachable-compensated": ("order_saga.yaml", {**ORDER, "address": {"country": "US", "city": ""}}),
    "order-jsonata-shipped": ("order_saga_jsonata.yaml", ORDER),
    "fan-out": ("fan_out.yaml", json.loads((EXAMPLES / "fan_out_input.json").read_text())),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(tmp_path_factory.mktemp("serve-examples"), "--handlers", HANDLERS, "-q")


def through_api(sfn, file: str, value, name: str) -> tuple[dict, list[dict]]:
    definition = json.dumps(loader.load(str(EXAMPLES / file)).definition)
    machine = sfn.create_state_machine(name=Path(file).stem, definition=definition,
                                       roleArn="arn:aws:iam::000000000000:role/statemill-sfn-role")
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name,
                              input=json.dumps(value))["executionArn"]
    deadline = time.monotonic() + 60
    while (found := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still RUNNING"
        time.sleep(0.05)
    result = {"executionArn": arn, "status": found["status"]}
    if "output" in found:
        result["output"] = json.loads(found["output"])
    result.update({k: found[k] for k in ("error", "cause") if k in found})
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
    return result, [event for page in pages for event in page["events"]]


def through_cli(folder: Path, file: str, value, name: str) -> tuple[dict, list[dict]]:
    db = f"sqlite:///{folder}/cli.db"
    done = statemill("run", str(EXAMPLES / file), "--input", json.dumps(value), "--name", name, "--json", "--db", db,
                     "--handlers", HANDLERS, "-q", cwd=folder)
    assert done.returncode in (0, 1), done.stderr
    found = json.loads(done.stdout)
    result = {k: found[k] for k in ("executionArn", "status", "output", "error", "cause") if k in found}
    listed = statemill("history", found["executionArn"], "--json", "--db", db, cwd=folder)
    assert listed.returncode == 0, listed.stderr
    return result, json.loads(listed.stdout)["events"]


def comparable(event: dict) -> dict:
    """An event without its timestamp, JSON text inside details parsed (the CLI and the API may space it apart)."""
    found = {k: v for k, v in event.items() if k != "timestamp"}
    for key, details in found.items():
        if key.endswith("EventDetails"):
            found[key] = {k: _parsed(v) if k in ("input", "output", "parameters") else v for k, v in details.items()}
    return found


def _parsed(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


@pytest.mark.parametrize("case", list(CASES))
def test_an_example_ends_the_same_through_boto3_and_the_cli(server, tmp_path, case):
    file, value = CASES[case]
    api, api_events = through_api(server.client(), file, value, case)
    cli, cli_events = through_cli(tmp_path, file, value, case)
    assert api == cli
    assert Counter(e["type"] for e in api_events) == Counter(e["type"] for e in cli_events)
    if not any(e["type"].startswith(("Parallel", "Map")) for e in cli_events):  # one thread: one event order
        assert [comparable(e) for e in api_events] == [comparable(e) for e in cli_events]
