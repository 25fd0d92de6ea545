"""State machines as AWS keeps them: a machine (name, type, status, creation date, tags) whose current revision
(definition, role, logging, tracing) new executions run; create, update, delete, describe, list.

A name's revisions are rows of ``state_machines`` (executions point at the one they started with); ``machines``
holds one row per machine that exists. DeleteStateMachine marks it DELETING: new executions are refused, running
ones finish, and once none runs the machine is gone (its row is cleared when the name is created again).
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .errors import StatemillError
from .store.schema import executions, machine_aliases, machine_versions, machines, state_machines, tags

STANDARD, EXPRESS = "STANDARD", "EXPRESS"
MAX_TAGS = 50  # AWS's limit per resource


class StateMachineDoesNotExist(StatemillError):
    """No state machine has that name."""


class StateMachineAlreadyExists(StatemillError):
    """CreateStateMachine: the name is taken by a machine with another definition, type, logging or tracing."""


class StateMachineDeleting(StatemillError):
    """The machine is being deleted (executions it started still run): it cannot be started, updated or created."""


class ResourceNotFound(StatemillError):
    """Tags: no resource has that ARN."""


class TooManyTags(StatemillError):
    """TagResource/CreateStateMachine: a resource would have more than 50 tags."""


@dataclass(frozen=True)
class Settings:
    """What a revision runs with besides its definition; None is AWS's default (the default role, logging OFF,
    tracing disabled)."""

    role_arn: str | None = None
    logging: dict | None = None
    tracing: dict | None = None


def revision_sha(definition: Any, settings: Settings) -> str:
    """The key of a revision among its name's: the definition, plus the settings when any differs from the default
    (so revisions stored before settings existed keep their key)."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    if settings != Settings():
        text += "\0" + json.dumps([settings.role_arn, settings.logging, settings.tracing], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def revision_id(sha: str) -> str:
    """AWS's revisionId: a UUID, here derived from the revision's key so it needs no column."""
    return str(uuid.UUID(sha[:32]))


def head(conn: sa.Connection, name: str):
    """The row of the machine ``name`` if it exists: ACTIVE, or DELETING while an execution it started runs."""
    row = conn.execute(sa.select(machines).where(machines.c.name == name)).first()
    if row is None or row.status == "ACTIVE" or _runs(conn, row):
        return row
    return None


def _runs(conn: sa.Connection, row) -> bool:
    return conn.execute(sa.select(executions.c.id).where(
        executions.c.machine_name == row.name, executions.c.status == "RUNNING",
        executions.c.started_at >= row.created_at).limit(1)).first() is not None


def executions_of(name: str) -> sa.ColumnElement[bool]:
    """The condition that an execution is of the machine ``name`` as it is now, not of one deleted before it was
    created again under the name (AWS keeps those apart)."""
    created = sa.select(machines.c.created_at).where(machines.c.name == name).scalar_subquery()
    return sa.and_(executions.c.machine_name == name, executions.c.started_at >= created)


def live(conn: sa.Connection, name: str, *, for_change: bool = True):
    """``head(name)``, raising StateMachineDoesNotExist when there is none and (``for_change``) StateMachineDeleting
    while it is being deleted."""
    row = head(conn, name)
    if row is None:
        raise StateMachineDoesNotExist(f"no state machine named {name!r} exists")
    if for_change and row.status == "DELETING":
        raise StateMachineDeleting(f"State machine {name!r} is being deleted: it waits for its running executions "
                                   "to finish")
    return row


def current_id(conn: sa.Connection, name: str) -> int:
    """The id of the revision a new execution of ``name`` runs."""
    return live(conn, name).revision_id


def store(conn: sa.Connection, name: str, definition: Any, text: str, settings: Settings, now: float,
          *, type_: str = STANDARD, create: bool = False) -> tuple[int, int, bool]:
    """Make (definition, settings) the current revision of ``name``, creating the machine when it does not exist
    (or, with ``create``, raising StateMachineAlreadyExists when it exists and differs). Returns (revision row id,
    revision number, whether anything changed)."""
    sha = revision_sha(definition, settings)
    row = conn.execute(sa.select(state_machines.c.id, state_machines.c.revision)
                       .where(state_machines.c.name == name, state_machines.c.sha256 == sha)).first()
    machine = conn.execute(sa.select(machines).where(machines.c.name == name)).first()
    if machine is not None and head(conn, name) is None:  # deleted, its last execution over: the name is free
        drop(conn, name)
        machine = None
    if machine is not None and machine.status == "DELETING":
        live(conn, name)
    if create and machine is not None:
        # AWS's idempotency check ignores the role ARN (and tags): an identical request returns the machine as is.
        current = settings_of(conn, machine.revision_id)
        same = Settings(current.role_arn, settings.logging, settings.tracing)
        if machine.type != type_ or revision(conn, machine.revision_id).sha256 != revision_sha(definition, same):
            raise StateMachineAlreadyExists(f"State Machine Already Exists: {name!r} exists with a different "
                                            "definition, type, logging or tracing configuration")
        return machine.revision_id, revision(conn, machine.revision_id).revision, False
    if row is None:
        number = (conn.execute(sa.select(sa.func.max(state_machines.c.revision))
                               .where(state_machines.c.name == name)).scalar() or 0) + 1
        row_id = conn.execute(state_machines.insert().values(
            name=name, revision=number, sha256=sha, definition=text, created_at=now, role_arn=settings.role_arn,
            logging=settings.logging, tracing=settings.tracing)).inserted_primary_key[0]
    else:
        row_id, number = row.id, row.revision
    if machine is None:
        conn.execute(machines.insert().values(name=name, type=type_, status="ACTIVE", revision_id=row_id,
                                              created_at=now))
        return row_id, number, True
    if machine.revision_id != row_id:
        conn.execute(machines.update().where(machines.c.name == name).values(revision_id=row_id, updated_at=now))
        return row_id, number, True
    return row_id, number, False


def settings_of(conn: sa.Connection, revision: int) -> Settings:
    row = conn.execute(sa.select(state_machines.c.role_arn, state_machines.c.logging, state_machines.c.tracing)
                       .where(state_machines.c.id == revision)).one()
    return Settings(row.role_arn, row.logging, row.tracing)


def drop(conn: sa.Connection, name: str) -> None:
    """Forget the machine ``name``, its tags, versions and aliases (its revisions stay: executions still point at
    them)."""
    conn.execute(machines.delete().where(machines.c.name == name))
    conn.execute(machine_aliases.delete().where(machine_aliases.c.machine_name == name))
    conn.execute(machine_versions.delete().where(machine_versions.c.machine_name == name))
    conn.execute(tags.delete().where(tags.c.resource_arn.endswith(f":stateMachine:{name}", autoescape=True)))


def delete(conn: sa.Connection, name: str) -> None:
    """DeleteStateMachine: DELETING while executions it started run, gone at once otherwise; nothing when there is
    no such machine (AWS answers success)."""
    row = head(conn, name)
    if row is None:
        return
    if _runs(conn, row):
        conn.execute(machines.update().where(machines.c.name == name).values(status="DELETING"))
    else:
        drop(conn, name)


def listed(conn: sa.Connection, after: str | None, limit: int) -> list:
    """Machines that exist, by name, from the first after ``after``; at most ``limit``."""
    running = sa.exists().where(executions.c.machine_name == machines.c.name, executions.c.status == "RUNNING",
                                executions.c.started_at >= machines.c.created_at)
    query = sa.select(machines).where(sa.or_(machines.c.status == "ACTIVE", running))
    if after is not None:
        query = query.where(machines.c.name > after)
    return conn.execute(query.order_by(machines.c.name).limit(limit)).all()


def revision(conn: sa.Connection, revision_row: int):
    """A stored revision row (definition, settings, sha256, created_at)."""
    return conn.execute(sa.select(state_machines).where(state_machines.c.id == revision_row)).one()


def execution_revision(conn: sa.Connection, arn: str):
    """The revision the execution ``arn`` runs (or ran), or None when there is no such execution."""
    return conn.execute(sa.select(state_machines).join(executions, executions.c.machine_id == state_machines.c.id)
                        .where(executions.c.arn == arn)).first()


# -- tags (keyed by the resource's ARN)
def tag(conn: sa.Connection, arn: str, pairs: list[tuple[str, str]]) -> None:
    """Add or overwrite tags; TooManyTags when the resource would have more than MAX_TAGS."""
    current = dict(list_tags(conn, arn))
    current.update(pairs)
    if len(current) > MAX_TAGS:
        raise TooManyTags(f"Too many tags: a resource has at most {MAX_TAGS}; {arn} would have {len(current)}")
    new = dict(pairs)
    conn.execute(tags.delete().where(tags.c.resource_arn == arn, tags.c.key.in_(list(new))))
    if new:
        conn.execute(tags.insert(), [{"resource_arn": arn, "key": k, "value": v} for k, v in new.items()])


def untag(conn: sa.Connection, arn: str, keys: list[str]) -> None:
    conn.execute(tags.delete().where(tags.c.resource_arn == arn, tags.c.key.in_(keys)))


def list_tags(conn: sa.Connection, arn: str) -> list[tuple[str, str]]:
    return [(r.key, r.value) for r in conn.execute(sa.select(tags.c.key, tags.c.value)
                                                   .where(tags.c.resource_arn == arn).order_by(tags.c.key))]
