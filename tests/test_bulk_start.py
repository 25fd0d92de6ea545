"""Client.start_many: many executions started a batch per transaction, each exactly as Client.start makes it."""
from __future__ import annotations

import pytest

from statemill.engine.client import ExecutionAlreadyExists

DEFINITION = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
INPUTS = [{"zero": 0, "no": False, "empty": "", "none": None}, 0, False, "", None, [0, None]]


def strip(history: list[dict]) -> list[dict]:
    """The history without what differs between two executions: timestamps and ARNs."""
    return [{k: v for k, v in event.items() if k not in ("timestamp", "executionStartedEventDetails")}
            | {"input": (event.get("executionStartedEventDetails") or {}).get("input")} for event in history]


@pytest.mark.parametrize("batch", [1, 4, 500])
def test_started_in_batches_run_as_started_one_by_one(engine, batch):
    engine.register(DEFINITION, "echo")
    arns = engine.start_many("echo", INPUTS, names=[f"bulk-{i}" for i in range(len(INPUTS))], batch=batch)
    alone = [engine.start("echo", value, name=f"alone-{i}")["executionArn"] for i, value in enumerate(INPUTS)]
    assert arns == [engine.execution_arn("echo", f"bulk-{i}") for i in range(len(INPUTS))]
    for bulk, single, value in zip(arns, alone, INPUTS):
        assert engine.wait(bulk)["status"] == engine.wait(single)["status"] == "SUCCEEDED"
        assert engine.describe(bulk)["output"] == engine.describe(single)["output"] == ({} if value is None else value)
        assert strip(engine.history(bulk)) == strip(engine.history(single))


def test_names_default_to_uuids(engine):
    engine.register(DEFINITION, "echo")
    arns = engine.start_many("echo", [0, 0])
    assert len(set(arns)) == 2 and all(engine.describe(arn)["status"] == "RUNNING" for arn in arns)


@pytest.mark.parametrize("taken_input, outcome", [(0, "returned"), (False, ExecutionAlreadyExists)],
                         ids=["same input: the running execution", "other input: already exists"])
def test_a_taken_name_is_answered_as_start_answers_it(engine, taken_input, outcome):
    engine.register(DEFINITION, "echo")
    taken = engine.start("echo", taken_input, name="taken")["executionArn"]
    if outcome == "returned":
        arns = engine.start_many("echo", [0, 0, 0], names=["a", "taken", "b"])
        assert arns[1] == taken and len(set(arns)) == 3
    else:
        with pytest.raises(outcome):
            engine.start_many("echo", [0, 0, 0], names=["a", "taken", "b"])


def test_an_unknown_machine_starts_nothing(engine):
    with pytest.raises(Exception, match="nope"):
        engine.start_many("nope", [0])
