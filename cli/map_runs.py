"""Distributed Map runs: ``statemill map-runs EXECUTION`` lists an execution's map runs with their item counts;
``statemill map-run MAP_RUN_ARN`` describes one (DescribeMapRun). ``statemill list --map-run ARN`` lists its
child executions."""
from __future__ import annotations

import json

import click

from .config import open_client
from .executions import columns, db_option, err, json_option, resolve_arn
from .text import safe


def _counts(counts: dict) -> str:
    return (f"{counts['succeeded']} succeeded, {counts['failed']} failed, {counts['timedOut']} timed out, "
            f"{counts['aborted']} aborted, {counts['running']} running of {counts['total']}")


@click.command(name="map-runs")
@click.argument("arn", metavar="EXECUTION")
@db_option
@json_option
def map_runs(arn, db, as_json):
    """List the Distributed Map runs an execution started, newest first, with their item counts (ListMapRuns).

    EXECUTION is an execution ARN, MACHINE:NAME, or a NAME only one state machine uses."""
    client = open_client(db, read_only=True)
    found = [client.describe_map_run(run["mapRunArn"]) for run in client.list_map_runs(resolve_arn(client, arn))]
    if as_json:
        click.echo(json.dumps({"mapRuns": found}, ensure_ascii=False))
        return
    if not found:
        err.print("no map runs", markup=False)
        return
    columns([("STATUS", "STARTED", "ITEMS", "SUCCEEDED", "FAILED", "RUNNING", "MAP RUN ARN"),
             *((run["status"], run["startDate"], str(run["itemCounts"]["total"]),
                str(run["itemCounts"]["succeeded"]),
                str(run["itemCounts"]["failed"] + run["itemCounts"]["timedOut"] + run["itemCounts"]["aborted"]),
                str(run["itemCounts"]["running"]), run["mapRunArn"]) for run in found)])


@click.command(name="map-run")
@click.argument("arn", metavar="MAP_RUN_ARN")
@db_option
@json_option
def map_run(arn, db, as_json):
    """Describe a Distributed Map run: status, settings, item and child execution counts (DescribeMapRun)."""
    run = open_client(db, read_only=True).describe_map_run(arn)
    if as_json:
        click.echo(json.dumps(run, ensure_ascii=False))
        return
    for key in ("mapRunArn", "executionArn", "status", "startDate", "stopDate", "maxConcurrency",
                "toleratedFailureCount", "toleratedFailurePercentage", "redriveCount", "redriveDate"):
        if key in run:
            click.echo(f"{key:27} {safe(run[key])}")
    click.echo(f"{'items':27} {_counts(run['itemCounts'])}")
    click.echo(f"{'child executions':27} {_counts(run['executionCounts'])}")
    click.echo(f"{'results written':27} {run['itemCounts']['resultsWritten']}")


COMMANDS = [map_runs, map_run]
