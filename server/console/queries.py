"""The console's read-only queries over the schema tables: keyset pages of executions, machines with their
revisions and counts, waiting task tokens. Writes go through ``Client`` (start, stop, send_task_*), never here.

Executions are paged newest first by id (ids are handed out in start order), so a page is one index range scan
whatever the table holds: ``before``/``after`` are the ids at the page's edges, never an OFFSET.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from statemill.engine.store.schema import executions, map_runs, state_machines, task_tokens

# Every status an execution can have (AWS's ExecutionStatus): the machine-only page reads one index range per status.
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
SHOWN = STATUSES[:5]  # the ones statemill sets (its redrive goes straight back to RUNNING)
PAGE = 50
MAX_PAGE = 500
_LIST_COLUMNS = (executions.c.id, executions.c.name, executions.c.machine_name, executions.c.arn,
                 executions.c.status, executions.c.started_at, executions.c.stopped_at)


@dataclass(frozen=True)
class Filters:
    """What the executions page shows: a machine, a status, a name substring (each optional)."""

    machine: str = ""
    status: str = ""
    search: str = ""

    def where(self, query: sa.Select) -> sa.Select:
        if self.machine:
            query = query.where(executions.c.machine_name == self.machine)
        if self.status:
            query = query.where(executions.c.status == self.status)
        if self.search:
            query = query.where(executions.c.name.contains(self.search, autoescape=True))
        return query


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    newer: int | None  # pass as ``after`` for the newer page; None on the newest page
    older: int | None  # pass as ``before`` for the older page; None on the oldest page


def _first(conn: sa.Connection, filters: Filters, edge: int | None, ascending: bool, limit: int) -> list[Any]:
    """The first ``limit`` executions with an id past ``edge`` (above it when ``ascending``, else below), in that
    order."""
    if filters.machine and not filters.status:
        return conn.execute(_by_status(ascending, edge is not None, bool(filters.search)),
                            {"machine": filters.machine, "edge": edge, "limit": limit,
                             "search": f"%{_escape(filters.search)}%"}).all()
    query = filters.where(sa.select(*_LIST_COLUMNS))
    if edge is not None:
        query = query.where(executions.c.id > edge if ascending else executions.c.id < edge)
    order = executions.c.id.asc() if ascending else executions.c.id.desc()
    return conn.execute(query.order_by(order).limit(limit)).all()


def _escape(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


@functools.lru_cache(maxsize=None)
def _by_status(ascending: bool, edge: bool, search: bool) -> sa.CompoundSelect:
    """A machine's executions without a status filter: one range scan of the (machine_name, status, id) index per
    status, merged, so they are never sorted however many there are. Built once per shape (it is costly to build)."""
    def order(column):
        return column.asc() if ascending else column.desc()
    query = sa.select(*_LIST_COLUMNS).where(executions.c.machine_name == sa.bindparam("machine"))
    if edge:
        query = query.where(executions.c.id > sa.bindparam("edge") if ascending
                            else executions.c.id < sa.bindparam("edge"))
    if search:
        query = query.where(executions.c.name.like(sa.bindparam("search"), escape="/"))
    parts = [sa.select(query.where(executions.c.status == status).order_by(order(executions.c.id))
                       .limit(sa.bindparam("limit")).subquery()) for status in STATUSES]
    merged = sa.union_all(*parts).subquery()
    return sa.select(merged).order_by(order(merged.c.id)).limit(sa.bindparam("limit"))


def executions_page(conn: sa.Connection, filters: Filters, *, before: int | None = None,
                    after: int | None = None, limit: int = PAGE) -> Page:
    """One page of executions, newest first: the ``limit`` just older than id ``before``, or just newer than id
    ``after``, or the newest. One row past the page tells whether there is a page beyond."""
    if after is not None:
        rows = _first(conn, filters, after, True, limit + 1)
        more_newer = len(rows) > limit
        rows = rows[:limit][::-1]
        return Page(rows, rows[0].id if more_newer and rows else None, rows[-1].id if rows else None)
    rows = _first(conn, filters, before, False, limit + 1)
    more_older = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[0].id if before is not None and rows else None,
                rows[-1].id if more_older else None)


def machine_names(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.select(state_machines.c.name).distinct().order_by(state_machines.c.name)).scalars())


def machines(conn: sa.Connection) -> list[dict]:
    """Every state machine: its latest revision, how many revisions, and its executions counted by status."""
    revisions = conn.execute(sa.select(state_machines.c.name, sa.func.max(state_machines.c.revision),
                                       sa.func.count(), sa.func.max(state_machines.c.created_at))
                             .group_by(state_machines.c.name).order_by(state_machines.c.name)).all()
    counts: dict[str, dict[str, int]] = {}
    for name, status, count in conn.execute(sa.select(executions.c.machine_name, executions.c.status,
                                                      sa.func.count())
                                            .group_by(executions.c.machine_name, executions.c.status)):
        counts.setdefault(name, {})[status] = count
    return [{"name": name, "revision": latest, "revisions": total, "updated": updated,
             "counts": counts.get(name, {})} for name, latest, total, updated in revisions]


def machine_revisions(conn: sa.Connection, name: str) -> list[Any]:
    """The revisions of machine ``name``, newest first (id, revision, created_at, definition)."""
    return conn.execute(sa.select(state_machines.c.id, state_machines.c.revision, state_machines.c.created_at,
                                  state_machines.c.definition)
                        .where(state_machines.c.name == name).order_by(state_machines.c.revision.desc())).all()


def status_counts(conn: sa.Connection, name: str) -> dict[str, int]:
    return dict(conn.execute(sa.select(executions.c.status, sa.func.count())
                             .where(executions.c.machine_name == name).group_by(executions.c.status)).all())


def execution(conn: sa.Connection, execution_id: int) -> Any | None:
    """The execution row with the revision number it runs, or None."""
    return conn.execute(sa.select(executions, state_machines.c.revision)
                        .join(state_machines, state_machines.c.id == executions.c.machine_id)
                        .where(executions.c.id == execution_id)).first()


def relatives(conn: sa.Connection, row: Any, limit: int = 500) -> tuple[Any | None, list[Any]]:
    """The parent (or None) and the first ``limit`` child workflows of the execution ``row``, each with its id, name
    and status: the console links them by id, so it reads them here rather than through ``Client.links`` (ARNs)."""
    columns = (executions.c.id, executions.c.name, executions.c.status)
    parent = None if row.parent_id is None else \
        conn.execute(sa.select(*columns).where(executions.c.id == row.parent_id)).first()
    children = conn.execute(sa.select(*columns).where(executions.c.parent_id == row.id)
                            .order_by(executions.c.id).limit(limit)).all()
    return parent, list(children)


def map_runs_of(conn: sa.Connection, execution_id: int) -> list[Any]:
    """The Distributed Map runs of an execution with their item counters, oldest first."""
    return conn.execute(sa.select(map_runs).where(map_runs.c.execution_id == execution_id)
                        .order_by(map_runs.c.id)).all()


def event_count(conn: sa.Connection, execution_id: int) -> tuple[int, str] | None:
    """(events recorded, status) of an execution: what the live view compares to tell whether anything changed."""
    row = conn.execute(sa.select(executions.c.event_count, executions.c.status)
                       .where(executions.c.id == execution_id)).first()
    return None if row is None else (row.event_count, row.status)


def waiting_tasks(conn: sa.Connection, execution_id: int | None = None) -> list[Any]:
    """Every task token waiting for an answer, oldest first, with its execution's id, name and machine."""
    query = (sa.select(task_tokens.c.token, task_tokens.c.state, task_tokens.c.created_at,
                       task_tokens.c.heartbeat_deadline, executions.c.id.label("execution_id"),
                       executions.c.name.label("execution_name"), executions.c.machine_name)
             .join(executions, executions.c.id == task_tokens.c.execution_id)
             .where(task_tokens.c.status == "PENDING").order_by(task_tokens.c.created_at, task_tokens.c.token))
    if execution_id is not None:
        query = query.where(task_tokens.c.execution_id == execution_id)
    return conn.execute(query).all()
