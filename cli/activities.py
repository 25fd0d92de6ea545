"""``statemill activity create|list|delete|poll``: activities from the command line, over the database.

``poll`` is GetActivityTask's long poll for scripts: it takes one task of the activity, prints
``{"taskToken", "input"}`` (the input as JSON, not as text) and exits 0; answer it with ``statemill
send-task-success``. When nothing comes within ``--wait`` seconds it exits 1 with nothing on stdout.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import click

from .config import open_client
from .errors import FAILED, fail
from .executions import columns, db_option, json_option


def _arn(client, activity: str) -> str:
    """An activity given by ARN or by name (in the configured region and account)."""
    from statemill.engine import activities as a
    return activity if activity.startswith("arn:") else a.activity_arn(client, activity)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@click.group(name="activity")
def activity():
    """Activities: Task states on arn:aws:states:REGION:ACCOUNT:activity:NAME wait for a poller in any language."""


@activity.command(name="create")
@click.argument("name")
@db_option
@json_option
def create(name, db, as_json):
    """Create activity NAME (nothing changes if it exists) and print its ARN."""
    from statemill.engine import activities as a
    found = a.create(open_client(db, create=True), name)
    click.echo(json.dumps({**found, "creationDate": _when(found["creationDate"])}) if as_json else found["activityArn"])


@activity.command(name="list")
@db_option
@json_option
def list_(db, as_json):
    """List the activities, in ARN order."""
    from statemill.engine import activities as a
    client = open_client(db, read_only=True)
    rows = a.page(client, a.activity_arn(client, ""), None, 1 << 30)
    rows = [{**r, "creationDate": _when(r["creationDate"])} for r in rows]
    if as_json:
        click.echo(json.dumps({"activities": rows}))
    else:
        columns([("NAME", "CREATED", "ARN")] + [(r["name"], r["creationDate"], r["activityArn"]) for r in rows])


@activity.command(name="delete")
@click.argument("activity_")
@db_option
def delete(activity_, db):
    """Delete ACTIVITY (a name or ARN); tasks already scheduled on it time out by their own deadlines."""
    from statemill.engine import activities as a
    client = open_client(db)
    a.delete(client, _arn(client, activity_))


@activity.command(name="poll")
@click.argument("activity_")
@click.option("--worker-name", metavar="NAME", help="Recorded in the ActivityStarted event.")
@click.option("--wait", type=click.FloatRange(0, 60), default=60.0, show_default=True,
              help="Seconds to wait for a task (AWS's long poll waits 60).")
@db_option
def poll(activity_, worker_name, wait, db):
    """Take one task of ACTIVITY (a name or ARN) and print {"taskToken", "input"} as JSON."""
    from statemill.engine import activities as a
    client = open_client(db)
    arn = _arn(client, activity_)
    deadline, pause = time.monotonic() + wait, 0.005
    while (task := a.take_task(client, arn, worker_name)) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            fail("NoTask", f"no task of {arn} came within {wait:g} s; poll again", FAILED)
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.1)
    click.echo(json.dumps({"taskToken": task["taskToken"], "input": json.loads(task["input"])}, ensure_ascii=False))


COMMANDS = [activity]
