"""Distributed Map: every item (or batch) of a ``Mode: DISTRIBUTED`` Map is a child execution any worker runs,
tracked by a map run (DescribeMapRun, ListMapRuns, ListExecutions with mapRunArn).

The spec, as AWS behaves: items come from the state input or an ItemReader (JSONL, CSV) and are read as children
are started, never all at once; ItemSelector sees ``$$.Map.Item``; ItemBatcher groups them; at most MaxConcurrency
children run at a time; failed, timed-out and aborted items beyond ToleratedFailureCount/Percentage fail the Map
with States.ExceedToleratedFailureThreshold; the output is the children's outputs in item order, or with a
ResultWriter the map run ARN and the manifest's place; stopping the parent aborts the run and its children.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from statemill.engine import Engine
from statemill.engine.store.schema import executions

from servertools import serving

WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = WORKER.parent.parent
FALSY = [0, False, "", None]
EXCEEDED = ("States.ExceedToleratedFailureThreshold", "The specified tolerated failure threshold was exceeded")


def processor(*states, execution_type="STANDARD") -> dict:
    """An ItemProcessor running ``py:work`` (or the given states) in child executions."""
    body = dict(states) if states else {"Work": {"Type": "Task", "Resource": "py:work", "End": True}}
    return {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
            "StartAt": next(iter(body)), "States": body}


def machine(**fields) -> dict:
    return {"StartAt": "Map", "States": {"Map": {"Type": "Map", "ItemProcessor": processor(), "End": True,
                                                 **fields}}}


def reader(key: str, kind: str, **config) -> dict:
    return {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": kind, **config},
            "Parameters": {"Bucket": "data", "Key.$": "$.key"}}


@pytest.fixture
def bucket(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


@pytest.fixture
def dmap(db_url, fake_clock, tmp_path):
    """An engine whose storage is ``tmp_path`` and whose ``py:work`` fails an item whose ``fail`` is true (and a
    batch holding one), recording each call's input."""
    engine = Engine(db_url, clock=fake_clock, storage=str(tmp_path), concurrency=4)
    engine.calls = []

    @engine.handler("py:work")
    def work(value, context):
        engine.calls.append(value)
        items = value.get("Items", [value]) if isinstance(value, dict) else [value]
        if any(isinstance(i, dict) and i.get("fail") in (True, "true") for i in items):
            raise ValueError("told to fail")
        return value
    yield engine
    engine.db.dispose()


def only_run(engine: Engine, arn: str) -> dict:
    (run,) = engine.list_map_runs(arn)
    return engine.describe_map_run(run["mapRunArn"])


def test_items_from_the_input_run_as_child_executions_and_come_back_in_order(dmap):
    done = dmap.run(machine(ItemsPath="$.items", MaxConcurrency=2,
                            ItemSelector={"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value"}),
                    {"items": FALSY}, machine_name="m")
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == [{"index": i, "value": v} for i, v in enumerate(FALSY)]
    run = only_run(dmap, done["executionArn"])
    assert run["status"] == "SUCCEEDED" and run["maxConcurrency"] == 2
    assert run["itemCounts"]["succeeded"] == run["itemCounts"]["total"] == 4
    assert run["executionCounts"]["succeeded"] == 4 and run["itemCounts"]["running"] == 0
    children = dmap.list(map_run=run["mapRunArn"])
    assert len(children) == 4 and {c["status"] for c in children} == {"SUCCEEDED"}
    assert all(c["executionArn"].startswith(dmap.execution_arn("m/Map", "")) for c in children)
    assert {c["stateMachineArn"] for c in children} == {dmap.machine_arn("m/Map")}
    assert dmap.list(machine="m") == [dmap.list(machine="m")[0]]  # the children are not the machine's executions
    types = [e["type"] for e in dmap.history(done["executionArn"])]
    assert types == ["ExecutionStarted", "MapStateEntered", "MapStateStarted", "MapRunStarted", "MapRunSucceeded",
                     "MapStateSucceeded", "MapStateExited", "ExecutionSucceeded"]
    child_types = [e["type"] for e in dmap.history(children[0]["executionArn"])]
    assert child_types[0] == "ExecutionStarted" and child_types[-1] == "ExecutionSucceeded"


def test_express_children_get_express_arns(dmap):
    definition = machine(Label="fast")
    definition["States"]["Map"]["ItemProcessor"] = processor(execution_type="EXPRESS")
    done = dmap.run(definition, [0, ""], machine_name="m")
    assert done["status"] == "SUCCEEDED" and done["output"] == [0, ""]
    (run,) = dmap.list_map_runs(done["executionArn"])
    assert all(":express:m/fast:" in c["executionArn"] for c in dmap.list(map_run=run["mapRunArn"]))


def test_an_empty_item_array_succeeds_with_an_empty_output(dmap):
    done = dmap.run(machine(Label="empty"), [], machine_name="m")
    assert done["status"] == "SUCCEEDED" and done["output"] == []
    (run,) = dmap.list_map_runs(done["executionArn"])
    assert ":mapRun:m/empty:" in run["mapRunArn"]


@pytest.mark.parametrize("kind, text", [
    ("JSONL", "".join(json.dumps({"n": v}) + "\n" for v in FALSY)),
    ("CSV", "n,other\n0,false\n,\nnull,0\n\"\",\n"),
], ids=["jsonl", "csv_first_row"])
def test_items_are_read_from_a_file_in_storage(dmap, bucket, kind, text):
    (bucket / "items").write_text(text)
    done = dmap.run(machine(ItemReader=reader("items", kind), MaxConcurrency=1), {"key": "items"},
                    machine_name="m")
    assert done["status"] == "SUCCEEDED"
    assert len(done["output"]) == 4
    if kind == "JSONL":
        assert done["output"] == [{"n": v} for v in FALSY]
    else:
        assert [row["n"] for row in done["output"]] == ["0", "", "null", ""]
    assert only_run(dmap, done["executionArn"])["itemCounts"]["total"] == 4


def test_batches_give_each_child_its_items_and_the_batch_input(dmap, bucket):
    (bucket / "items.jsonl").write_text("".join(json.dumps({"n": i}) + "\n" for i in range(7)))
    done = dmap.run(machine(ItemReader=reader("items.jsonl", "JSONL"),
                            ItemBatcher={"MaxItemsPerBatch": 3, "BatchInput": {"zero": 0, "from.$": "$.key"}}),
                    {"key": "items.jsonl"}, machine_name="m")
    assert done["status"] == "SUCCEEDED"
    assert [len(batch["Items"]) for batch in done["output"]] == [3, 3, 1]
    assert done["output"][0] == {"Items": [{"n": 0}, {"n": 1}, {"n": 2}],
                                 "BatchInput": {"zero": 0, "from": "items.jsonl"}}
    run = only_run(dmap, done["executionArn"])
    assert run["itemCounts"]["succeeded"] == 7 and run["executionCounts"]["succeeded"] == 3
    assert sorted(c["itemCount"] for c in dmap.list(map_run=run["mapRunArn"])) == [1, 3, 3]


def test_no_more_children_run_at_once_than_max_concurrency(dmap):
    peak = []

    @dmap.handler("py:count")
    def count(value, context):
        with dmap.db.connect() as conn:
            peak.append(conn.execute(sa.select(sa.func.count()).select_from(executions).where(
                executions.c.map_run_id.is_not(None), executions.c.status == "RUNNING")).scalar())
        return value
    definition = machine(MaxConcurrency=2)
    definition["States"]["Map"]["ItemProcessor"] = processor(("C", {"Type": "Task", "Resource": "py:count",
                                                                    "End": True}))
    done = dmap.run(definition, list(range(9)), machine_name="m")
    assert done["status"] == "SUCCEEDED" and done["output"] == list(range(9))
    assert len(peak) == 9 and max(peak) <= 2


@pytest.mark.parametrize("tolerance, fails", [
    ({}, False),
    ({"ToleratedFailureCount": 0}, True),
    ({"ToleratedFailureCount": 1}, False),
    ({"ToleratedFailurePercentage": 0}, True),
    ({"ToleratedFailurePercentage": 25}, False),
    ({"ToleratedFailurePercentage": 20}, True),
    ({"ToleratedFailureCountPath": "$.tolerated"}, False),
], ids=["none_tolerated", "count_0", "count_1", "percentage_0", "percentage_25_of_4",
        "percentage_20_of_4", "count_path"])
def test_failed_items_beyond_the_tolerated_threshold_fail_the_map(dmap, tolerance, fails):
    items = [{"fail": False}, {"fail": True}, {"fail": 0}, {"fail": None}]
    done = dmap.run(machine(ItemsPath="$.items", **tolerance), {"items": items, "tolerated": 1}, machine_name="m")
    if tolerance == {}:
        fails = True
    run = only_run(dmap, done["executionArn"])
    if fails:
        assert done["status"] == "FAILED" and (done["error"], done["cause"]) == EXCEEDED
        assert run["status"] == "FAILED"
        assert "MapRunFailed" in [e["type"] for e in dmap.history(done["executionArn"])]
    else:
        assert done["status"] == "SUCCEEDED"
        assert done["output"][1] == {"Error": "ValueError", "Cause": "told to fail"}
        assert run["itemCounts"]["failed"] == 1 and run["itemCounts"]["succeeded"] == 3


def test_the_threshold_error_can_be_caught(dmap):
    definition = machine(ItemsPath="$.items", ToleratedFailureCount=0,
                         Catch=[{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "Done"}])
    definition["States"]["Done"] = {"Type": "Pass", "End": True}
    done = dmap.run(definition, {"items": [{"fail": True}]}, machine_name="m")
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {"Error": EXCEEDED[0], "Cause": EXCEEDED[1]}


def test_a_missing_file_fails_the_map_with_item_reader_failed(dmap, bucket):
    done = dmap.run(machine(ItemReader=reader("absent", "JSONL")), {"key": "absent"}, machine_name="m")
    assert done["status"] == "FAILED" and done["error"] == "States.ItemReaderFailed"


def test_the_result_writer_writes_the_manifest_and_result_files(dmap, bucket, tmp_path):
    items = [{"fail": False, "n": 0}, {"fail": True, "n": 1}, {"fail": None, "n": 2}]
    done = dmap.run(machine(ItemsPath="$.items", ToleratedFailureCount=1,
                            ResultWriter={"Resource": "arn:aws:states:::s3:putObject",
                                          "Parameters": {"Bucket": "data", "Prefix": "out"}}),
                    {"items": items}, machine_name="m")
    assert done["status"] == "SUCCEEDED"
    (run,) = dmap.list_map_runs(done["executionArn"])
    assert done["output"]["MapRunArn"] == run["mapRunArn"]
    key = done["output"]["ResultWriterDetails"]["Key"]
    assert done["output"]["ResultWriterDetails"]["Bucket"] == "data" and key.endswith("manifest.json")
    manifest = json.loads((bucket / key).read_text())
    assert manifest["MapRunArn"] == run["mapRunArn"]
    results = {status: [r for f in files for r in json.loads((bucket / f["Key"]).read_text())]
               for status, files in manifest["ResultFiles"].items()}
    assert [json.loads(r["Output"])["n"] for r in results["SUCCEEDED"]] == [0, 2]
    assert [json.loads(r["Input"])["n"] for r in results["FAILED"]] == [1]
    assert results["FAILED"][0]["Error"] == "ValueError"
    assert dmap.describe_map_run(run["mapRunArn"])["itemCounts"]["resultsWritten"] == 3


def test_a_result_writer_that_cannot_write_fails_the_map_with_result_writer_failed(dmap, bucket):
    done = dmap.run(machine(ResultWriter={"Resource": "arn:aws:states:::s3:putObject",
                                          "Parameters": {"Bucket": "absent", "Prefix": ""}}), [0], machine_name="m")
    assert done["status"] == "FAILED" and done["error"] == "States.ResultWriterFailed"
    assert only_run(dmap, done["executionArn"])["status"] == "FAILED"


def test_stopping_the_parent_aborts_the_map_run_and_its_children(dmap):
    definition = machine(ItemsPath="$.items", MaxConcurrency=2)
    definition["States"]["Map"]["ItemProcessor"] = processor(("Ask", {
        "Type": "Task", "Resource": "py:work.waitForTaskToken", "Parameters": {"token.$": "$$.Task.Token"},
        "End": True}))

    @dmap.handler("py:work.waitForTaskToken")
    def park(value, context):
        return None
    arn = dmap.start(dmap.register(definition, "m")["name"], {"items": FALSY})["executionArn"]
    worker = dmap.worker()
    try:
        worker.run(until=lambda: len(dmap.pending_tokens()) == 2)
    finally:
        worker.close()
    dmap.stop(arn)
    run = only_run(dmap, arn)
    assert run["status"] == "ABORTED"
    assert run["executionCounts"]["aborted"] == 2 and run["executionCounts"]["total"] == 2
    assert {c["status"] for c in dmap.list(map_run=run["mapRunArn"])} == {"ABORTED"}
    types = [e["type"] for e in dmap.history(arn)]
    assert types[-3:] == ["MapRunAborted", "MapStateAborted", "ExecutionAborted"]


def test_a_parent_failing_elsewhere_aborts_the_map_run_and_its_children(dmap):
    ask = {"Type": "Task", "Resource": "py:work.waitForTaskToken", "Parameters": {"token.$": "$$.Task.Token"},
           "End": True}
    mapped = machine(ItemsPath="$.items", MaxConcurrency=2)
    mapped["States"]["Map"]["ItemProcessor"] = processor(("Ask", ask))
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        mapped, {"StartAt": "Gate", "States": {"Gate": {**ask, "Parameters": {"gate.$": "$$.Task.Token"}}}}]}}}

    @dmap.handler("py:work.waitForTaskToken")
    def park(value, context):
        return None
    arn = dmap.start(dmap.register(definition, "m")["name"], {"items": FALSY})["executionArn"]
    for until in (lambda: len(dmap.pending_tokens()) == 3, lambda: dmap.status(arn) != "RUNNING"):
        worker = dmap.worker()
        try:
            worker.run(until=until)
        finally:
            worker.close()
        gate = [t["taskToken"] for t in dmap.pending_tokens() if t["stateName"] == "Gate"]
        if gate:
            dmap.send_task_failure(gate[0], "Gate.Closed", "")
    assert dmap.describe(arn)["status"] == "FAILED"
    run = only_run(dmap, arn)
    assert run["status"] == "ABORTED" and run["executionCounts"]["aborted"] == 2
    assert {c["status"] for c in dmap.list(map_run=run["mapRunArn"])} == {"ABORTED"}


@pytest.mark.parametrize("point, skip", [("in_handler", 4), ("in_map_run_chunk", 2)],
                         ids=["in_the_fifth_handler_call", "starting_the_third_chunk_of_children"])
def test_a_worker_killed_mid_map_loses_and_repeats_no_item(db_url, tmp_path, bucket, point, skip):
    """SIGKILL of the only worker mid-map; a new worker finishes: every item has exactly one child execution, and
    the result files hold each item once."""
    count = 30
    (bucket / "items.jsonl").write_text("".join(json.dumps({"n": i, "zero": 0}) + "\n" for i in range(count)))
    client = Engine(db_url, storage=str(tmp_path))
    definition = machine(ItemReader=reader("items.jsonl", "JSONL"), MaxConcurrency=4,
                         ItemBatcher={"MaxItemsPerBatch": 2},
                         ResultWriter={"Resource": "arn:aws:states:::s3:putObject",
                                       "Parameters": {"Bucket": "data", "Prefix": "results"}})
    definition["States"]["Map"]["ItemProcessor"] = processor(("Echo", {"Type": "Task", "Resource": "py:echo",
                                                                       "End": True}))
    arn = client.start(client.register(definition, "m")["name"], {"key": "items.jsonl"})["executionArn"]
    env = {**os.environ, "STATEMILL_STORAGE": str(tmp_path), "STATEMILL_FAULT": point,
           "STATEMILL_FAULT_ONCE": str(tmp_path / "crashed"), "CRASH_SKIP_HITS": str(skip)}
    calls = tmp_path / "calls.jsonl"
    command = [sys.executable, str(WORKER), db_url, str(calls), "--lease", "1", "--concurrency", "3"]
    crashed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -9, crashed.stderr
    assert client.status(arn) == "RUNNING"
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert finished.returncode == 0, finished.stderr
    assert client.status(arn) == "SUCCEEDED"
    run = only_run(client, arn)
    assert run["itemCounts"]["succeeded"] == count and run["executionCounts"]["succeeded"] == count // 2
    children = client.list(map_run=run["mapRunArn"], limit=1000)
    assert len(children) == count // 2
    seen = sorted(item["n"] for line in calls.read_text().splitlines() for item in json.loads(line)["input"]["Items"])
    assert set(seen) == set(range(count))  # every item handled; handlers run at least once: only the batches in
    assert len(seen) - count <= 3 * 2     # flight when the worker died (3 threads, 2 items each) ran twice
    bucket_root = tmp_path / "data"
    manifest = json.loads((bucket_root / client.describe(arn)["output"]["ResultWriterDetails"]["Key"]).read_text())
    written = [json.loads(r["Output"]) for f in manifest["ResultFiles"]["SUCCEEDED"]
               for r in json.loads((bucket_root / f["Key"]).read_text())]
    assert sorted(item["n"] for batch in written for item in batch["Items"]) == list(range(count))
    client.db.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(tmp_path_factory.mktemp("dmap"), "--no-worker")


def test_the_api_describes_and_lists_map_runs_and_their_children(server, sfn):
    engine = Engine(server.db)

    @engine.handler("py:work")
    def work(value, context):
        return value
    done = engine.run(machine(MaxConcurrency=3, ToleratedFailurePercentage=0), FALSY, machine_name="apimap")
    runs = sfn.list_map_runs(executionArn=done["executionArn"])["mapRuns"]
    assert len(runs) == 1 and runs[0]["executionArn"] == done["executionArn"]
    described = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
    assert described["status"] == "SUCCEEDED" and described["maxConcurrency"] == 3
    assert described["toleratedFailurePercentage"] == 0 and described["toleratedFailureCount"] == 0
    assert described["itemCounts"]["succeeded"] == 4 and described["executionCounts"]["total"] == 4
    children = sfn.list_executions(mapRunArn=runs[0]["mapRunArn"])["executions"]
    assert len(children) == 4 and {c["itemCount"] for c in children} == {1}
    assert {c["mapRunArn"] for c in children} == {runs[0]["mapRunArn"]}
    assert sfn.describe_execution(executionArn=children[0]["executionArn"])["mapRunArn"] == runs[0]["mapRunArn"]
    sfn.update_map_run(mapRunArn=runs[0]["mapRunArn"], maxConcurrency=5)
    assert sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["maxConcurrency"] == 5
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"][:-3] + "000")
    engine.db.dispose()


def test_the_example_prices_a_csv_file_in_batches(db_url, tmp_path):
    import shutil
    from statemill.statemachines.demo_handlers import HANDLERS
    shutil.copytree(ROOT / "statemachines" / "storage", tmp_path / "storage")
    engine = Engine(db_url, storage=str(tmp_path / "storage"), handlers=HANDLERS)
    done = engine.run(ROOT / "statemachines" / "orders_distributed.yaml", {"key": "orders.csv"})
    assert done["status"] == "SUCCEEDED"
    (run,) = engine.list_map_runs(done["executionArn"])
    counts = engine.describe_map_run(run["mapRunArn"])["itemCounts"]
    assert (counts["total"], counts["succeeded"], counts["failed"]) == (40, 30, 10)
    assert (tmp_path / "storage" / "orders" / done["output"]["ResultWriterDetails"]["Key"]).is_file()
    engine.db.dispose()


def test_the_cli_lists_and_describes_map_runs(db_url, dmap):
    from click.testing import CliRunner
    from statemill.cli.main import main as cli
    done = dmap.run(machine(), FALSY, machine_name="m")
    listed = CliRunner().invoke(cli, ["map-runs", done["executionArn"], "--db", db_url, "--json"])
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.output)["mapRuns"]
    assert run["itemCounts"]["succeeded"] == 4
    table = CliRunner().invoke(cli, ["map-runs", done["executionArn"], "--db", db_url])
    assert "SUCCEEDED" in table.output and run["mapRunArn"] in table.output
    described = CliRunner().invoke(cli, ["map-run", run["mapRunArn"], "--db", db_url])
    assert described.exit_code == 0 and "4 succeeded, 0 failed" in described.output
    children = CliRunner().invoke(cli, ["list", "--map-run", run["mapRunArn"], "--db", db_url, "--json"])
    assert len(json.loads(children.output)["executions"]) == 4
    missing = CliRunner().invoke(cli, ["map-run", run["mapRunArn"] + "0", "--db", db_url])
    assert missing.exit_code == 1
