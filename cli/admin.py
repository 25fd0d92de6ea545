"""Operating the database: schema upgrades, live workers, pruning old executions."""
from __future__ import annotations

import json
import math
import re

import click

from .config import database_url, open_client
from .executions import columns, db_option, json_option

# A live worker heartbeats at least every 10 s (a third of its lease, at most 10 s); one silent for three default
# leases has died without deregistering (SIGKILL, power loss) and is not shown.
LIVE_WITHIN_SECONDS = 90.0

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600s`` or ``2w`` in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text, flags=re.ASCII)
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan
    if not math.isfinite(seconds) or seconds > 1e11:
        raise click.BadParameter(f"{text!r} is not a duration like 30d, 12h, 90m or 3600s")
    return seconds


@click.group()
def db() -> None:
    """Manage the system database's schema."""


@db.command()
@db_option
def upgrade(db):
    """Apply pending schema migrations (safe to run while workers run)."""
    from statemill.engine.store import migrations
    from statemill.engine.store.db import open_engine
    engine = open_engine(database_url(db), schema=False)
    before, after = migrations.upgrade(engine)
    click.echo(f"schema version {after}" + (f" (was {before})" if before != after else " (up to date)"))


@db.command()
@db_option
def status(db):
    """Show the recorded schema version and the one this statemill expects."""
    from statemill.engine.store import migrations
    from statemill.engine.store.db import open_engine
    engine = open_engine(database_url(db), read_only=True, schema=False)
    with engine.connect() as conn:
        version = migrations.current_version(conn)
    click.echo(f"database schema version {version}; this statemill expects {migrations.LATEST}")


@click.command(name="workers")
@db_option
@json_option
def workers_(db, as_json):
    """List live workers (a heartbeat within the last 90 s): id, pid, last heartbeat, frames each holds."""
    found = [w for w in open_client(db, read_only=True).workers()
             if w["secondsSinceHeartbeat"] <= LIVE_WITHIN_SECONDS]
    if as_json:
        click.echo(json.dumps({"workers": found}))
        return
    if not found:
        click.echo("no live workers")
        return
    columns([("WORKER", "PID", "HEARTBEAT", "HOLDING", "SERVES"),
             *((w["workerId"], str(w["pid"]), f"{w['secondsSinceHeartbeat']}s ago", str(w["framesHeld"]),
                f"only {w['executionArn']}" if "executionArn" in w else
                ", ".join(w["handlerKeys"] or []) or "no task (only states without a handler)")
               for w in found)])


@click.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE", help="e.g. 30d, 12h, 90m.",
              callback=lambda _ctx, _param, value: parse_duration(value))
@db_option
@json_option
def prune(older_than, db, as_json):
    """Delete executions that finished more than AGE ago, with their history."""
    removed = open_client(db).prune(older_than)
    click.echo(json.dumps({"deleted": removed}) if as_json else f"deleted {removed} execution(s)")


COMMANDS = [db, workers_, prune]
