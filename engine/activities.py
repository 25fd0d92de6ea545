"""Activities: named queues of Task states whose Resource is an activity ARN, served to pollers in any language.

A Task on ``arn:aws:states:REGION:ACCOUNT:activity:NAME`` runs no handler: the worker writes ActivityScheduled and
parks the frame with a task token (the ``task_tokens`` row carries the activity ARN). ``take_task`` hands the
oldest untaken token of an activity to one poller (GetActivityTask), writes ActivityStarted with its worker name and
starts the heartbeat clock; the poller answers with SendTaskSuccess/Failure/Heartbeat (engine/tokens.py).

A Task whose activity does not exist when it is scheduled (each attempt) writes ActivityScheduleFailed instead and
fails the execution with States.Runtime (``schedule_failed``), as on AWS.

As AWS does, a task is handed out once: a poller that dies holding it loses nothing, the task times out by its
HeartbeatSeconds (from ActivityStarted and each heartbeat) or TimeoutSeconds (from ActivityScheduled), and the
state's Retry schedules a new attempt with a new token.
"""
from __future__ import annotations

import re
import sqlalchemy as sa

from . import errors as E
from . import history as h
from .errors import StatemillError, StatesError
from .store.schema import activities, executions, frames, history_events, tags, task_tokens

NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")  # AWS's rule for resource names


class ActivityDoesNotExist(StatemillError):
    """No activity has that ARN (DescribeActivity, GetActivityTask)."""


def schedule_failed(arn: str) -> tuple[h.Event, StatesError]:
    """What AWS does with a Task on an activity that does not exist (never created, or deleted): it writes
    ActivityScheduleFailed and fails with States.Runtime, which no Retry or Catch handles, so the execution fails."""
    cause = f"Activity Does Not Exist: '{arn}'"
    return h.Event("ActivityScheduleFailed", {"error": E.RUNTIME, "cause": cause}), StatesError(E.RUNTIME, cause)


def activity_arn(client, name: str) -> str:
    return f"arn:aws:states:{client.region}:{client.account}:activity:{name}"


def create(client, name: str, tag_pairs: list[tuple[str, str]] = ()) -> dict:
    """CreateActivity: idempotent, as in AWS: creating an existing name answers its ARN and creation date (and
    does not change its tags). ``{"activityArn", "creationDate"}``; InvalidName for a name AWS refuses."""
    from .client import InvalidName
    from .machines import tag
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidName(f"Invalid Name: '{name}' (1 to 80 characters, no whitespace, brackets, wildcards or "
                          "control characters)")
    arn = activity_arn(client, name)
    with client.db.begin() as conn:
        found = conn.execute(sa.select(activities.c.created_at).where(activities.c.arn == arn)).scalar()
        if found is None:
            found = client.clock.now()
            conn.execute(activities.insert().values(arn=arn, name=name, created_at=found))
            tag(conn, arn, list(tag_pairs))
    return {"activityArn": arn, "creationDate": found}


def describe(client, arn: str) -> dict:
    """DescribeActivity: ``{"activityArn", "name", "creationDate"}``; ActivityDoesNotExist."""
    with client.reader.connect() as conn:
        row = conn.execute(sa.select(activities).where(activities.c.arn == arn)).one_or_none()
    if row is None:
        raise ActivityDoesNotExist(f"Activity Does Not Exist: '{arn}'")
    return {"activityArn": row.arn, "name": row.name, "creationDate": row.created_at}


def exists(conn, arn: str) -> bool:
    return conn.execute(sa.select(activities.c.arn).where(activities.c.arn == arn)).first() is not None


def page(client, prefix: str, after: str | None, size: int) -> list[dict]:
    """ListActivities: up to ``size`` activities whose ARN starts with ``prefix`` (the caller's region and
    account), in ARN order after ``after``."""
    query = sa.select(activities).where(activities.c.arn.startswith(prefix, autoescape=True))
    if after is not None:
        query = query.where(activities.c.arn > after)
    with client.reader.connect() as conn:
        rows = conn.execute(query.order_by(activities.c.arn).limit(size)).all()
    return [{"activityArn": r.arn, "name": r.name, "creationDate": r.created_at} for r in rows]


def delete(client, arn: str) -> None:
    """DeleteActivity: removes the activity and its tags (nothing when it does not exist, as AWS answers). Tasks
    already scheduled on it stay answerable by token; they time out by their own deadlines."""
    with client.db.begin() as conn:
        conn.execute(activities.delete().where(activities.c.arn == arn))
        conn.execute(tags.delete().where(tags.c.resource_arn == arn))


def take_task(client, arn: str, worker_name: str | None = None) -> dict | None:
    """One GetActivityTask attempt, without waiting: ``{"taskToken", "input"}`` of the oldest task of activity
    ``arn`` no poller has taken, now taken by this one, or None when there is none. ActivityDoesNotExist."""
    waiting = (task_tokens.c.activity_arn == arn, task_tokens.c.status == "PENDING", task_tokens.c.started_at.is_(None))
    with client.reader.connect() as conn:  # a read first: an idle poll never takes the write lock
        if not exists(conn, arn):
            raise ActivityDoesNotExist(f"Activity Does Not Exist: '{arn}'")
        if conn.execute(sa.select(task_tokens.c.token).where(*waiting).limit(1)).first() is None:
            return None
    now = client.clock.now()
    with client.db.begin() as conn:
        query = (sa.select(task_tokens.c.token, task_tokens.c.frame_id, task_tokens.c.execution_id,
                           task_tokens.c.heartbeat_seconds)
                 .where(*waiting)
                 .order_by(task_tokens.c.created_at).limit(8))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # concurrent pollers take different tasks
        for row in conn.execute(query).all():
            taken = _take(conn, row, worker_name, now)
            if taken is not None:
                return taken
    return None


def _take(conn, row, worker_name: str | None, now: float) -> dict | None:
    """Hand ``row``'s task to a poller: the token row, the frame's deadlines and the ActivityStarted event, or
    None when the frame is not waiting for it right now (a worker holds it: the next poll may take it)."""
    frame = conn.execute(sa.select(frames.c.version, frames.c.data, frames.c.last_event_id, frames.c.status,
                                   frames.c.phase, frames.c.lease_until)
                         .where(frames.c.id == row.frame_id)).one_or_none()
    if frame is None or frame.status != "ACTIVE" or frame.phase != "callback" or \
            (frame.data or {}).get("token") != row.token or (frame.lease_until is not None and frame.lease_until >= now):
        return None
    data = dict(frame.data)
    heartbeat_at = now + row.heartbeat_seconds if row.heartbeat_seconds else None
    deadlines = [d for d in (data.get("timeout_at"), heartbeat_at) if d is not None]
    event_id = conn.execute(executions.update()
                            .where(executions.c.id == row.execution_id, executions.c.status == "RUNNING")
                            .values(event_count=executions.c.event_count + 1)
                            .returning(executions.c.event_count)).scalar()
    if event_id is None:
        return None  # the execution ended; its tokens are being closed
    if heartbeat_at is not None:
        data["heartbeat_at"] = heartbeat_at
    # Version moved on: a worker that claimed the frame before us must not write over this (its commit is stale).
    moved = conn.execute(frames.update().where(frames.c.id == row.frame_id, frames.c.version == frame.version)
                         .values(version=frame.version + 1, data=data, last_event_id=event_id,
                                 run_at=min(deadlines) if deadlines else None)).rowcount
    won = conn.execute(task_tokens.update().where(task_tokens.c.token == row.token, task_tokens.c.started_at.is_(None))
                       .values(started_at=now, worker_name=worker_name, heartbeat_deadline=heartbeat_at)).rowcount
    if moved != 1 or won != 1:
        raise RuntimeError("the activity task changed while it was being handed out; poll again")
    details = {"workerName": worker_name} if worker_name else None
    conn.execute(history_events.insert().values(
        execution_id=row.execution_id, id=event_id, previous_event_id=frame.last_event_id, frame_id=row.frame_id,
        type="ActivityStarted", timestamp=now, details=details))
    return {"taskToken": row.token, "input": h.dumps(data.get("task_input"))}

