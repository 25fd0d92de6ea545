"""Operating the database: schema upgrades, live workers, pruning old executions."""
from __future__ import annotations

import json
import re

import click

from statemill.engine.store import migrations
from statemill.engine.store.db import normalise_url

from .config import database_url, make_engine
from .executions import db_option, json_option

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600s`` or ``2w`` in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 30d, 12h, 90m or 3600s")
    return float(match.group(1)) * _UNITS[match.group(2)]


@click.group()
def db() -> None:
    """Manage the system database's schema."""


@db.command()
@db_option
def upgrade(db):
    """Apply pending schema migrations (safe to run while workers run)."""
    import sqlalchemy as sa
    engine = sa.create_engine(normalise_url(database_url(db)))
    before, after = migrations.upgrade(engine)
    click.echo(f"schema version {after}" + (f" (was {before})" if before != after else " (up to date)"))


@db.command()
@db_option
def status(db):
    """Show the recorded schema version and the one this statemill expects."""
    import sqlalchemy as sa
    engine = sa.create_engine(normalise_url(database_url(db)))
    with engine.connect() as conn:
        version = migrations.current_version(conn)
    click.echo(f"database schema version {version}; this statemill expects {migrations.LATEST}")


@click.command(name="workers")
@db_option
@json_option
def workers_(db, as_json):
    """List live workers: host, pid, last heartbeat, how many frames each holds and what each serves."""
    found = make_engine(db).workers()
    if as_json:
        click.echo(json.dumps({"workers": found}))
        return
    if not found:
        click.echo("no live workers")
    for w in found:
        serves = f"runs only {w['executionArn']}" if "executionArn" in w else \
            f"serves {', '.join(w['handlerKeys'] or []) or 'no task (only states without a handler)'}"
        click.echo(f"{w['workerId']}  pid {w['pid']}  heartbeat {w['secondsSinceHeartbeat']}s ago  "
                   f"holding {w['framesHeld']}  {serves}")


@click.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE", help="e.g. 30d, 12h, 90m.")
@db_option
@json_option
def prune(older_than, db, as_json):
    """Delete executions that finished more than AGE ago, with their history."""
    removed = make_engine(db).prune(parse_duration(older_than))
    click.echo(json.dumps({"deleted": removed}) if as_json else f"deleted {removed} execution(s)")


COMMANDS = [db, workers_, prune]
