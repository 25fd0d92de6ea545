"""Commands for state machine versions and aliases: publish, versions list|delete, alias create|update|delete|list.

Start an execution on one with ``statemill start FILE --alias NAME`` (or ``--version N``), or StartExecution on
the version or alias ARN through ``statemill serve``.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from statemill.engine import versions as v

from .config import open_client
from .executions import columns, db_option, json_option


def _route(text: str) -> tuple[int, int]:
    """``3`` (weight 100) or ``3=40``: a version number and its weight."""
    number, _, weight = text.partition("=")
    if not number.isdigit() or weight and not weight.isdigit():
        raise click.BadParameter(f"{text!r} is not VERSION or VERSION=WEIGHT (e.g. 3 or 3=40)")
    return int(number), int(weight) if weight else 100


def route_option(required: bool):
    return click.option("--route", "routes", multiple=True, required=required, metavar="VERSION[=WEIGHT]",
                        help="A version the alias runs and its weight in percent (repeat for a second version; "
                             "the weights add up to 100).")


def description_option(fn):
    return click.option("--description", metavar="TEXT", help="A description (at most 256 characters).")(fn)


def _echo(found: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(found) if as_json else text)


@click.command()
@click.argument("machine", metavar="FILE|NAME")
@click.option("--machine-name", metavar="NAME", help="State machine name for FILE (default: the file's stem).")
@description_option
@db_option
@json_option
def publish(machine, machine_name, description, db, as_json):
    """Publish the current revision of a state machine as a new, immutable, numbered version.

    Given a FILE, register it first (it becomes the current revision, as `run` does); given a NAME, publish what
    that machine runs now. Publishing a revision that already has a version prints that version.
    """
    client = open_client(db, create=Path(machine).is_file())
    if Path(machine).is_file():
        machine = client.register(machine, machine_name)["name"]
    with client.db.begin() as conn:
        number, created = v.publish(conn, machine, description, client.clock.now())
    arn = f"{client.machine_arn(machine)}:{number}"
    _echo({"stateMachineVersionArn": arn, "creationDate": created}, as_json, arn)


@click.group()
def versions() -> None:
    """List and delete the published versions of a state machine."""


@versions.command(name="list")
@click.argument("machine", metavar="NAME")
@db_option
@json_option
def list_versions(machine, db, as_json):
    """The versions of NAME, newest first, with the aliases that route to each."""
    client = open_client(db, read_only=True)
    with client.reader.connect() as conn:
        rows = v.versions(conn, machine, None, v.MAX_VERSIONS)
        routed = v.aliases(conn, machine, None, None, v.MAX_ALIASES)
    found = [{"stateMachineVersionArn": f"{client.machine_arn(machine)}:{r.version}", "version": r.version,
              "description": r.description, "creationDate": r.created_at,
              "aliases": [a.name for a in routed if any(n == r.version for n, _ in a.routing)]} for r in rows]
    if as_json:
        click.echo(json.dumps({"stateMachineVersions": found}))
    elif not found:
        click.echo(f"{machine} has no versions: publish one with `statemill publish {machine}`")
    else:
        columns([("VERSION", "ALIASES", "DESCRIPTION"),
                 *((str(f["version"]), ", ".join(f["aliases"]), f["description"] or "") for f in found)])


@versions.command(name="delete")
@click.argument("machine", metavar="NAME")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@db_option
def delete_version(machine, number, db):
    """Delete version VERSION of NAME (its running executions finish); refused while an alias routes to it."""
    client = open_client(db)
    with client.db.begin() as conn:
        v.delete_version(conn, machine, number)
    click.echo(f"deleted {client.machine_arn(machine)}:{number}")


@click.group()
def alias() -> None:
    """Name one or two versions of a state machine, with routing weights, to start executions on."""


@alias.command(name="create")
@click.argument("machine", metavar="NAME")
@click.argument("name", metavar="ALIAS")
@route_option(required=True)
@description_option
@db_option
@json_option
def create_alias(machine, name, routes, description, db, as_json):
    """Create ALIAS of NAME routing to one version (--route 3) or two (--route 3=90 --route 4=10)."""
    client = open_client(db)
    with client.db.begin() as conn:
        created = v.create_alias(conn, machine, name, description, [_route(r) for r in routes], client.clock.now())
    arn = f"{client.machine_arn(machine)}:{name}"
    _echo({"stateMachineAliasArn": arn, "creationDate": created}, as_json, arn)


@alias.command(name="update")
@click.argument("machine", metavar="NAME")
@click.argument("name", metavar="ALIAS")
@route_option(required=False)
@description_option
@db_option
@json_option
def update_alias(machine, name, routes, description, db, as_json):
    """Change the routing (all --route options together) and/or the description of ALIAS. Executions already
    started keep the version they run."""
    if not routes and description is None:
        raise click.UsageError("give --route and/or --description")
    client = open_client(db)
    with client.db.begin() as conn:
        updated = v.update_alias(conn, machine, name, ... if description is None else description,
                                 [_route(r) for r in routes] or None, client.clock.now())
    arn = f"{client.machine_arn(machine)}:{name}"
    _echo({"stateMachineAliasArn": arn, "updateDate": updated}, as_json, arn)


@alias.command(name="delete")
@click.argument("machine", metavar="NAME")
@click.argument("name", metavar="ALIAS")
@db_option
def delete_alias(machine, name, db):
    """Delete ALIAS of NAME (the versions it routes to stay)."""
    client = open_client(db)
    with client.db.begin() as conn:
        v.delete_alias(conn, machine, name)
    click.echo(f"deleted {client.machine_arn(machine)}:{name}")


@alias.command(name="list")
@click.argument("machine", metavar="NAME")
@db_option
@json_option
def list_aliases(machine, db, as_json):
    """The aliases of NAME and the versions each routes to, with their weights."""
    client = open_client(db, read_only=True)
    with client.reader.connect() as conn:
        rows = v.aliases(conn, machine, None, None, v.MAX_ALIASES)
    found = [{"stateMachineAliasArn": f"{client.machine_arn(machine)}:{r.name}", "name": r.name,
              "description": r.description,
              "routingConfiguration": [{"stateMachineVersionArn": f"{client.machine_arn(machine)}:{n}", "weight": w}
                                       for n, w in r.routing]} for r in rows]
    if as_json:
        click.echo(json.dumps({"stateMachineAliases": found}))
    elif not found:
        click.echo(f"{machine} has no aliases: create one with `statemill alias create {machine} ALIAS --route N`")
    else:
        columns([("ALIAS", "ROUTES", "DESCRIPTION"),
                 *((r.name, ", ".join(f"{n}={w}%" for n, w in r.routing), r.description or "") for r in rows)])


COMMANDS = [publish, versions, alias]
