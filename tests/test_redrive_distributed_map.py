"""Redriving an execution whose Distributed Map failed redrives the same map run, as AWS does: the succeeded
children keep their output, only the failed (or aborted, or never started) items run again, the parent's history
gets MapRunRedriven and DescribeMapRun counts the redrive; the Map's output is whole and in item order.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

import crash_worker
from statemill.engine import Engine
from statemill.engine.store.schema import executions

from servertools import serving

ITEMS = 12
FAILING = (0, 5, 11)  # the first and the last item too


def definition(execution_type: str, concurrency: int) -> dict:
    """A Distributed Map over ``$.items`` running py:flaky in child executions, with no tolerated failures. Work is
    retried once after 1 s, so without MaxConcurrency the failing items fail after every other one succeeded."""
    work = {"Type": "Task", "Resource": "py:flaky", "End": True,
            "Retry": [{"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 1, "MaxAttempts": 1}]}
    return {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": concurrency, "ResultPath": "$.out",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
                          "StartAt": "Work", "States": {"Work": work}},
        "End": True}}}


def items(fixed: Path) -> list[dict]:
    return [{"n": n, "fail": n in FAILING, "fixed": str(fixed), "zero": 0, "no": False, "empty": "", "null": None}
            for n in range(ITEMS)]


def calls(path: Path) -> Counter:
    if not path.exists():
        return Counter()
    return Counter(c["input"]["n"] for c in map(json.loads, path.read_text().splitlines()))


def succeeded(engine: Engine) -> set[int]:
    """The indexes of the child executions that succeeded."""
    with engine.db.connect() as conn:
        return set(conn.execute(sa.select(executions.c.map_index).where(executions.c.map_index.is_not(None),
                                                                        executions.c.status == "SUCCEEDED")).scalars())


def redriven(engine: Engine) -> set[int]:
    """The indexes of the child executions that were redriven."""
    with engine.db.connect() as conn:
        return set(conn.execute(sa.select(executions.c.map_index).where(executions.c.map_index.is_not(None),
                                                                        executions.c.redrive_count > 0)).scalars())


@pytest.fixture
def flaky(db_url, fake_clock, tmp_path):
    engine = Engine(db_url, clock=fake_clock, concurrency=4)
    crash_worker.install_handlers(engine, str(tmp_path / "calls"))
    yield engine
    engine.db.dispose()


@pytest.mark.parametrize("execution_type, concurrency", [("STANDARD", 0), ("STANDARD", 2), ("EXPRESS", 0)])
def test_a_redriven_distributed_map_runs_only_the_failed_items_again(flaky, tmp_path, execution_type, concurrency):
    value = {"items": items(tmp_path / "fixed")}
    done = flaky.run(definition(execution_type, concurrency), value, machine_name="each")
    assert done["status"] == "FAILED" and done["error"] == "States.ExceedToleratedFailureThreshold"
    arn = done["executionArn"]
    (run,) = flaky.list_map_runs(arn)
    before = calls(tmp_path / "calls")
    unfinished = sorted(set(range(ITEMS)) - succeeded(flaky))  # failed, aborted or never started
    failed = flaky.describe_map_run(run["mapRunArn"])
    assert failed["status"] == "FAILED" and failed["redriveCount"] == 0 and "redriveDate" not in failed

    (tmp_path / "fixed").touch()
    flaky.redrive(arn)
    done = flaky.wait(arn)

    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {**value, "out": list(range(ITEMS))}
    again = calls(tmp_path / "calls") - before
    # The failed items run once more; with MaxConcurrency 2 the first failure also aborted or never started some.
    if concurrency == 0:
        assert unfinished == list(FAILING)
        # STANDARD children are redriven themselves; EXPRESS ones are started again
        assert redriven(flaky) == (set(FAILING) if execution_type == "STANDARD" else set())
    assert sorted(again) == unfinished and set(again.values()) == {1}
    assert flaky.list_map_runs(arn) == [run]  # the same map run, not a new one
    described = flaky.describe_map_run(run["mapRunArn"])
    assert described["status"] == "SUCCEEDED" and described["redriveCount"] == 1 and "redriveDate" in described
    assert described["itemCounts"]["succeeded"] == ITEMS and described["itemCounts"]["failed"] == 0
    assert described["executionCounts"]["total"] == ITEMS
    events = [e["type"] for e in flaky.history(arn)]
    assert events.count("MapRunStarted") == 1 and events.count("MapRunRedriven") == 1
    assert events.index("ExecutionRedriven") < events.index("MapRunRedriven") < events.index("MapRunSucceeded")


def test_the_result_writer_writes_the_redriven_run_whole(db_url, fake_clock, tmp_path):
    (tmp_path / "data").mkdir()
    engine = Engine(db_url, clock=fake_clock, storage=str(tmp_path), concurrency=4)
    crash_worker.install_handlers(engine, str(tmp_path / "calls"))
    machine = definition("STANDARD", 0)
    machine["States"]["Each"].update(ResultWriter={
        "Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "data", "Prefix": ""}})
    arn = engine.run(machine, {"items": items(tmp_path / "fixed")}, machine_name="each")["executionArn"]
    (tmp_path / "fixed").touch()
    engine.redrive(arn)
    done = engine.wait(arn)
    assert done["status"] == "SUCCEEDED"
    manifest = json.loads((tmp_path / "data" / done["output"]["out"]["ResultWriterDetails"]["Key"]).read_text())
    records = [r for f in manifest["ResultFiles"]["SUCCEEDED"]
               for r in json.loads((tmp_path / "data" / f["Key"]).read_text())]
    assert [json.loads(r["Output"]) for r in records] == list(range(ITEMS))
    assert [n for n, r in enumerate(records) if r["RedriveCount"]] == list(FAILING)
    assert manifest["ResultFiles"].get("FAILED", []) == []
    assert engine.describe_map_run(manifest["MapRunArn"])["itemCounts"]["resultsWritten"] == ITEMS
    engine.db.dispose()


def test_a_map_run_whose_item_reader_failed_reads_its_items_when_redriven(db_url, fake_clock, tmp_path):
    (tmp_path / "data").mkdir()
    engine = Engine(db_url, clock=fake_clock, storage=str(tmp_path), concurrency=4)
    crash_worker.install_handlers(engine, str(tmp_path / "calls"))
    machine = definition("STANDARD", 0)
    del machine["States"]["Each"]["ItemsPath"]
    machine["States"]["Each"].update(ResultPath="$", ItemReader={
        "Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"},
        "Parameters": {"Bucket": "data", "Key": "items.jsonl"}})
    done = engine.run(machine, {}, machine_name="each")
    assert done["status"] == "FAILED" and done["error"] == "States.ItemReaderFailed"
    (tmp_path / "data" / "items.jsonl").write_text(
        "".join(json.dumps({"n": n, "fixed": str(tmp_path), "fail": False, "null": None}) + "\n" for n in range(3)))
    engine.redrive(done["executionArn"])
    done = engine.wait(done["executionArn"])
    assert done["status"] == "SUCCEEDED" and done["output"] == [0, 1, 2]
    (run,) = engine.list_map_runs(done["executionArn"])
    assert engine.describe_map_run(run["mapRunArn"])["redriveCount"] == 1
    engine.db.dispose()


def test_a_stopped_map_run_redrives_its_aborted_children_and_starts_the_rest(flaky):
    machine = definition("STANDARD", 2)
    machine["States"]["Each"]["ItemProcessor"]["States"] = {"Work": {
        "Type": "Task", "Resource": "py:ask.waitForTaskToken", "Parameters": {"n.$": "$.n", "token.$": "$$.Task.Token"},
        "End": True}}
    asked = []

    @flaky.handler("py:ask.waitForTaskToken")
    def ask(value, context):
        asked.append(value["n"])

    arn = flaky.start(flaky.register(machine, "each")["name"],
                      {"items": [{"n": n} for n in range(ITEMS)]})["executionArn"]

    def answer_until(done) -> None:
        worker = flaky.worker()
        try:
            worker.run(until=lambda: len(flaky.pending_tokens()) == 2 or done())
        finally:
            worker.close()

    answer_until(lambda: False)
    flaky.stop(arn)
    assert sorted(asked) == [0, 1]
    flaky.redrive(arn)
    while flaky.status(arn) == "RUNNING":
        answer_until(lambda: flaky.status(arn) != "RUNNING")
        for token in flaky.pending_tokens():
            flaky.send_task_success(token["taskToken"], 0)
    assert flaky.describe(arn)["status"] == "SUCCEEDED"
    assert flaky.describe(arn)["output"]["out"] == [0] * ITEMS
    assert sorted(asked) == [0, 0, 1, 1, *range(2, ITEMS)]  # the two aborted children asked again, once
    (run,) = flaky.list_map_runs(arn)
    counts = flaky.describe_map_run(run["mapRunArn"])["executionCounts"]
    assert counts["succeeded"] == counts["total"] == ITEMS and counts["aborted"] == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(tmp_path_factory.mktemp("dmredrive"), "--no-worker")


def test_the_api_shows_the_map_run_redriven(server, sfn, tmp_path):
    engine = Engine(server.db, concurrency=4)
    crash_worker.install_handlers(engine, str(tmp_path / "calls"))
    arn = engine.run(definition("STANDARD", 0), {"items": items(tmp_path / "fixed")},
                     machine_name="apiredrive")["executionArn"]
    (tmp_path / "fixed").touch()
    sfn.redrive_execution(executionArn=arn)
    assert engine.wait(arn)["status"] == "SUCCEEDED"
    (run,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    described = sfn.describe_map_run(mapRunArn=run["mapRunArn"])
    assert described["redriveCount"] == 1 and described["redriveDate"] >= described["startDate"]
    events = sfn.get_execution_history(executionArn=arn)["events"]
    (redriven,) = [e for e in events if e["type"] == "MapRunRedriven"]
    assert redriven["mapRunRedrivenEventDetails"] == {"mapRunArn": run["mapRunArn"], "redriveCount": 1}
    engine.db.dispose()
