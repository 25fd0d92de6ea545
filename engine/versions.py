"""State machine versions and aliases, as AWS keeps them.

A version is an immutable, numbered snapshot of a machine's current revision (numbers are never reused while the
machine exists); an alias routes new executions to one or two versions by weight. Starting an execution on a
version or alias runs that version's revision; the unqualified name runs the current revision (``$LATEST``).
Deleting a machine deletes its versions and aliases.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

import sqlalchemy as sa

from . import machines as m
from .errors import StatemillError
from .store.schema import executions, machine_aliases, machine_versions, machines

MAX_VERSIONS = 1000  # AWS's limits per state machine
MAX_ALIASES = 100
_ALIAS_NAME = re.compile(r"(?=.*[A-Za-z_.-])[A-Za-z0-9_.-]{1,80}\Z")  # AWS: not only digits, so never a version


class ConflictException(StatemillError):
    """The version is referenced by an alias, the machine changed since the revisionId given, or an alias of that
    name exists with another configuration."""


class ServiceQuotaExceededException(StatemillError):
    """A machine would have more than 1,000 versions or 100 aliases."""


class ValidationException(StatemillError):
    """An alias's routing configuration breaks AWS's rules."""


@dataclass(frozen=True)
class Target:
    """What a new execution runs: a revision row, and the version and alias it was started on (None for $LATEST)."""

    revision_id: int
    version: int | None = None
    alias: str | None = None


def is_version(qualifier: str) -> bool:
    return qualifier.isdigit()


def check_alias_name(name: str) -> str:
    from .client import InvalidName  # the client imports this module
    if not isinstance(name, str) or not _ALIAS_NAME.match(name):
        raise InvalidName(f"Invalid Name: {name!r}: an alias name is 1 to 80 letters, digits, '-', '_' or '.', and "
                          "not only digits")
    return name


# -- versions
def publish(conn: sa.Connection, name: str, description: str | None, now: float,
            revision_id: str | None = None) -> tuple[int, float]:
    """Publish the current revision of ``name``: (version number, creation date). Idempotent: when a version of the
    current revision exists, it is returned. ``revision_id`` (AWS's revisionId) must match the current revision
    (``INITIAL``: the machine's first)."""
    machine = m.live(conn, name)
    conn.execute(machines.update().where(machines.c.name == name)
                 .values(last_version=machines.c.last_version))  # lock the row: one publish at a time per machine
    current = m.revision(conn, machine.revision_id)
    if revision_id is not None and revision_id != m.revision_id(current.sha256) and not (
            revision_id == "INITIAL" and current.revision == 1):
        raise ConflictException(f"Failed to publish the State Machine version for revision {revision_id}. The "
                                f"current State Machine revision is {m.revision_id(current.sha256)}.")
    existing = conn.execute(sa.select(machine_versions.c.version, machine_versions.c.created_at).where(
        machine_versions.c.machine_name == name, machine_versions.c.revision_id == machine.revision_id)
        .order_by(machine_versions.c.version.desc()).limit(1)).first()
    if existing is not None:
        return existing.version, existing.created_at
    count = conn.execute(sa.select(sa.func.count()).where(machine_versions.c.machine_name == name)).scalar()
    if count >= MAX_VERSIONS:
        raise ServiceQuotaExceededException(f"{name!r} has {MAX_VERSIONS} versions, AWS's limit: delete unused "
                                            "ones with DeleteStateMachineVersion")
    number = (machine.last_version or 0) + 1
    conn.execute(machines.update().where(machines.c.name == name).values(last_version=number))
    conn.execute(machine_versions.insert().values(machine_name=name, version=number,
                                                  revision_id=machine.revision_id, description=description,
                                                  created_at=now))
    return number, now


def version(conn: sa.Connection, name: str, number: int):
    """The version row (with its revision's columns under ``revision_*``), or StateMachineDoesNotExist."""
    m.live(conn, name, for_change=False)
    row = conn.execute(sa.select(machine_versions).where(machine_versions.c.machine_name == name,
                                                         machine_versions.c.version == number)).first()
    if row is None:
        raise m.StateMachineDoesNotExist(f"State machine {name!r} has no version {number}")
    return row


def versions(conn: sa.Connection, name: str, before: int | None, limit: int) -> list:
    """The versions of ``name``, newest first, from the first below ``before``; at most ``limit``."""
    m.live(conn, name, for_change=False)
    query = sa.select(machine_versions).where(machine_versions.c.machine_name == name)
    if before is not None:
        query = query.where(machine_versions.c.version < before)
    return conn.execute(query.order_by(machine_versions.c.version.desc()).limit(limit)).all()


def delete_version(conn: sa.Connection, name: str, number: int) -> None:
    """Delete a version (its running executions go on); ConflictException while an alias routes to it. Nothing
    when there is no such version, as on AWS."""
    if m.head(conn, name) is None:
        return
    using = [row.name for row in conn.execute(sa.select(machine_aliases.c.name, machine_aliases.c.routing).where(
        machine_aliases.c.machine_name == name).order_by(machine_aliases.c.name))
        if any(v == number for v, _ in row.routing)]
    if using:
        raise ConflictException("Version to be deleted must not be referenced by an alias. Current list of "
                                "aliases referencing this version: [" + ", ".join(using) + "]")
    conn.execute(machine_versions.delete().where(machine_versions.c.machine_name == name,
                                                 machine_versions.c.version == number))


# -- aliases
def check_routing(routing: list[tuple[int, int]]) -> None:
    """AWS's rules for a routing configuration: one or two distinct versions, integer weights 0-100 summing to 100."""
    if not 1 <= len(routing) <= 2:
        raise ValidationException("routingConfiguration must list one or two state machine versions")
    if len({v for v, _ in routing}) != len(routing):
        raise ValidationException("routingConfiguration lists the same state machine version twice")
    for v, weight in routing:
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise ValidationException(f"routingConfiguration: the weight of version {v} must be an integer from 0 "
                                      "to 100")
    if sum(w for _, w in routing) != 100:
        raise ValidationException("routingConfiguration: the weights must add up to 100, not "
                                  f"{sum(w for _, w in routing)}")


def _versions_exist(conn: sa.Connection, name: str, routing: list[tuple[int, int]]) -> None:
    for v, _ in routing:
        found = conn.execute(sa.select(machine_versions.c.version).where(
            machine_versions.c.machine_name == name, machine_versions.c.version == v)).first()
        if found is None:
            raise m.ResourceNotFound(f"Resource Not Found: state machine {name!r} has no version {v}")


def create_alias(conn: sa.Connection, name: str, alias: str, description: str | None,
                 routing: list[tuple[int, int]], now: float) -> float:
    """Create an alias; its creation date. Idempotent for the same description and routing; ConflictException when
    the alias exists with others."""
    check_alias_name(alias)
    check_routing(routing)
    m.live(conn, name)
    existing = conn.execute(sa.select(machine_aliases).where(machine_aliases.c.machine_name == name,
                                                             machine_aliases.c.name == alias)).first()
    if existing is not None:
        if existing.description == description and [tuple(r) for r in existing.routing] == list(routing):
            return existing.created_at
        raise ConflictException(f"Failed to create alias because an alias with the same name ({alias!r}) and a "
                                "different routing configuration or description already exists.")
    _versions_exist(conn, name, routing)
    count = conn.execute(sa.select(sa.func.count()).where(machine_aliases.c.machine_name == name)).scalar()
    if count >= MAX_ALIASES:
        raise ServiceQuotaExceededException(f"{name!r} has {MAX_ALIASES} aliases, AWS's limit: delete unused ones")
    conn.execute(machine_aliases.insert().values(machine_name=name, name=alias, description=description,
                                                 routing=[list(r) for r in routing], created_at=now))
    return now


def alias(conn: sa.Connection, name: str, alias_name: str):
    """The alias row, or ResourceNotFound."""
    row = conn.execute(sa.select(machine_aliases).where(machine_aliases.c.machine_name == name,
                                                        machine_aliases.c.name == alias_name)).first()
    if row is None or m.head(conn, name) is None:
        raise m.ResourceNotFound(f"Resource Not Found: state machine {name!r} has no alias {alias_name!r}")
    return row


def update_alias(conn: sa.Connection, name: str, alias_name: str, description: str | None | type(...),
                 routing: list[tuple[int, int]] | None, now: float) -> float:
    """Change an alias's description (``...``: keep it) and/or routing (None: keep it); the update date."""
    row = alias(conn, name, alias_name)
    m.live(conn, name)
    values = {}
    if routing is not None:
        check_routing(routing)
        _versions_exist(conn, name, routing)
        values["routing"] = [list(r) for r in routing]
    if description is not ...:
        values["description"] = description
    if any(values.get(k, getattr(row, k)) != getattr(row, k) for k in values):
        conn.execute(machine_aliases.update().where(machine_aliases.c.machine_name == name,
                                                    machine_aliases.c.name == alias_name)
                     .values(**values, updated_at=now))
        return now
    return row.updated_at or row.created_at


def delete_alias(conn: sa.Connection, name: str, alias_name: str) -> None:
    """Delete an alias (its versions stay); ResourceNotFound when there is none."""
    alias(conn, name, alias_name)
    conn.execute(machine_aliases.delete().where(machine_aliases.c.machine_name == name,
                                                machine_aliases.c.name == alias_name))


def aliases(conn: sa.Connection, name: str, version_number: int | None, after: str | None, limit: int) -> list:
    """The aliases of ``name`` (only those routing to ``version_number`` when given), by name after ``after``."""
    m.live(conn, name, for_change=False)
    if version_number is not None:
        version(conn, name, version_number)
    query = sa.select(machine_aliases).where(machine_aliases.c.machine_name == name)
    if after is not None:
        query = query.where(machine_aliases.c.name > after)
    rows = conn.execute(query.order_by(machine_aliases.c.name)).all()
    if version_number is not None:
        rows = [r for r in rows if any(v == version_number for v, _ in r.routing)]
    return rows[:limit]


def pick(routing: list, rng: random.Random | None = None) -> int:
    """The version an alias runs for one execution: each with the probability of its weight (percent)."""
    draw = (rng or random).randrange(100)
    for number, weight in routing:
        if draw < weight:
            return number
        draw -= weight
    return routing[-1][0]


def drop(conn: sa.Connection, name: str) -> None:
    """Forget the versions and aliases of a machine that is gone."""
    conn.execute(machine_aliases.delete().where(machine_aliases.c.machine_name == name))
    conn.execute(machine_versions.delete().where(machine_versions.c.machine_name == name))


# -- executions
def target(conn: sa.Connection, name: str, qualifier: str | None) -> Target:
    """What a new execution of ``name`` runs: its current revision, or (``qualifier``) a version or what an alias
    picks. StateMachineDoesNotExist for a version or alias there is not."""
    machine = m.live(conn, name)
    if qualifier is None:
        return Target(machine.revision_id)
    if is_version(qualifier):
        return Target(version(conn, name, int(qualifier)).revision_id, int(qualifier))
    try:
        row = alias(conn, name, qualifier)
    except m.ResourceNotFound:
        raise m.StateMachineDoesNotExist(f"State machine {name!r} has no alias {qualifier!r}") from None
    number = pick(row.routing)
    return Target(version(conn, name, number).revision_id, number, qualifier)


def started_on(version_number: int | None, alias_name: str | None) -> sa.ColumnElement[bool]:
    """The condition that an execution was started on a version (directly or by an alias) or an alias."""
    if alias_name is not None:
        return executions.c.alias == alias_name
    return executions.c.version == version_number
