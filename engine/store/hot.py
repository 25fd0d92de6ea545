"""The statements every transition runs, as SQL text prebuilt once per dialect and executed on the DBAPI cursor of
the caller's SQLAlchemy connection (inside its transaction).

A transition is a handful of statements; SQLAlchemy's per-call machinery (compiled-cache lookup, parameter
processing, result wrapping) cost more than SQLite itself. Everything else (schema, migrations, claims of many
frames, reads) stays on SQLAlchemy. JSON columns get the same text ``schema.JsonText`` and the PostgreSQL engine's
serializer write: ``jsonvalue.dumps``, with NULL for None.
"""
from __future__ import annotations

import contextlib
import itertools
import re
import threading
import weakref
from typing import Any

import sqlalchemy as sa

from ..jsonvalue import dumps

# (column, is JSON) of the frame update that moves a frame on, and of the one that ends it.
_MOVE = (("version", False), ("last_event_id", False), ("state", False), ("phase", False), ("input", True),
         ("data", True), ("run_at", False), ("lease_owner", False), ("lease_until", False), ("handler_key", False),
         ("task_deadline", False))
_FINISH = (("version", False), ("last_event_id", False), ("state", False), ("status", False), ("run_at", False),
           ("lease_owner", False), ("lease_until", False), ("handler_key", False), ("task_deadline", False),
           ("output", True), ("data", True))
MOVE_COLUMNS = tuple(c for c, _ in _MOVE)
FINISH_COLUMNS = tuple(c for c, _ in _FINISH)


def json_text(value: Any) -> str | None:
    """A JSON column's bound value: compact strict JSON text, NULL for None (so ``IS NULL`` guards see it)."""
    return None if value is None else dumps(value)


class HotStatements:
    """The prebuilt SQL of one dialect. Placeholders are the driver's own (sqlite3 ``?``, psycopg ``%s``)."""

    def __init__(self, dialect: str):
        postgres = dialect == "postgresql"
        p = "%s" if postgres else "?"
        as_json = f"CAST({p} AS json)" if postgres else p

        def sets(columns) -> str:
            return ", ".join(f"{c} = {as_json if is_json else p}" for c, is_json in columns)

        cas = f"WHERE id = {p} AND version = {p} AND lease_owner = {p}"
        self.lock_execution = (f"SELECT status, event_count FROM executions WHERE id = {p}"
                               + (" FOR UPDATE" if postgres else ""))
        self.move_frame = f"UPDATE frames SET commit_failures = 0, {sets(_MOVE)} {cas}"
        self.finish_frame = f"UPDATE frames SET commit_failures = 0, {sets(_FINISH)} {cas}"
        self.insert_events = ("INSERT INTO history_events (execution_id, id, previous_event_id, frame_id, type, "
                              f"timestamp, details) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {as_json})")
        # PostgreSQL: a batch's events as one INSERT of arrays (execution, frame, ids, previous ids, types,
        # timestamps, details); a statement per event cost a round trip's share each under the execution's lock.
        self.insert_event_arrays = (
            "INSERT INTO history_events (execution_id, id, previous_event_id, frame_id, type, timestamp, details) "
            "SELECT %s, e.id, e.previous, %s, e.type, e.stamp, CAST(e.details AS json) FROM unnest("
            "%s::integer[], %s::integer[], %s::text[], %s::float8[], %s::text[]) AS e(id, previous, type, stamp, "
            "details) ORDER BY e.id") if postgres else None
        self.count_events = f"UPDATE executions SET event_count = {p} WHERE id = {p}"
        self.read_count = f"SELECT status, event_count FROM executions WHERE id = {p}"
        # A Map iteration or Parallel branch ended: one fewer child to wait for (the parent's counter, only ever
        # moved under the execution row's lock), start the next child waiting for a slot, or wake the parent once
        # none is left; the last two only while no sibling failed (guarded, so they need no result to decide).
        self.child_done = f"UPDATE frames SET pending = pending - 1 WHERE id = {p}"
        self.activate_next = (f"UPDATE frames SET status = 'ACTIVE', run_at = {p}, last_event_id = {p} WHERE id = "
                              f"(SELECT c.id FROM frames c WHERE c.parent_id = {p} AND c.status = 'PENDING' "
                              f"ORDER BY c.idx LIMIT 1) "
                              f"AND EXISTS (SELECT 1 FROM frames f WHERE f.id = {p} AND f.failure IS NULL)")
        self.wake_parent = (f"UPDATE frames SET run_at = {p}, last_event_id = {p} "
                            f"WHERE id = {p} AND pending = 0 AND failure IS NULL")
        # PostgreSQL: take the next event ids and the execution row's lock as the last statement of a transition.
        self.take_event_ids = (f"UPDATE executions SET event_count = event_count + {p} "
                               f"WHERE id = {p} AND status = 'RUNNING' RETURNING event_count")
        if postgres:
            self._at_once()

    def _at_once(self) -> None:
        """PostgreSQL: the statements of a transition committed at once (runtime.commit_at_once, one message with
        the COMMIT). The first takes its event ids from the execution's counter; the others turn the ids given
        relative to the transition's (``rel``) into ids, reading ``base`` (the last id before them) from the counter
        it moved. A guard that finds no row (the ids not taken, the frame's compare-and-set missed) fails a cast
        with hot.NOT_TAKEN or hot.STALE, so the COMMIT after it rolls everything back. Placeholders: n (events),
        execution, then the statement's own."""
        base = "b AS (SELECT event_count - %s AS base FROM executions WHERE id = %s)"
        # An id either as it is (``abs``, from before the transition) or ``rel``: ``COALESCE(b.base + rel, abs)``.
        an_id = "COALESCE(b.base + %s, %s)"
        self.take_ids_at_once = (
            "WITH c AS (UPDATE executions SET event_count = event_count + %s WHERE id = %s AND status = 'RUNNING' "
            "AND event_count + %s <= %s RETURNING event_count) "
            f"SELECT CAST(CASE WHEN count(*) = 1 THEN max(event_count)::text ELSE '{NOT_TAKEN}' END AS integer) "
            "FROM c")

        def frame_at_once(columns) -> str:
            sets = []
            for column, is_json in columns:
                if column == "last_event_id":
                    sets.append(f"last_event_id = {an_id}")
                elif column == "data":  # {"entered_id": <id>, ...}: the id is spliced in (prefix, rel, rest)
                    sets.append("data = CAST(COALESCE(%s || (b.base + %s)::text, '') || %s AS json)")
                else:
                    sets.append(f"{column} = {'CAST(%s AS json)' if is_json else '%s'}")
            return (f"WITH {base}, f AS (UPDATE frames SET commit_failures = 0, {', '.join(sets)} FROM b "
                    "WHERE frames.id = %s AND frames.version = %s AND frames.lease_owner = %s RETURNING 1) "
                    f"SELECT CAST(CASE WHEN count(*) = 1 THEN '1' ELSE '{STALE}' END AS integer) FROM f")

        self.move_frame_at_once = frame_at_once(_MOVE)
        self.finish_frame_at_once = frame_at_once(_FINISH)
        # Previous ids as in history.chain, a relative one sent negated.
        self.insert_events_at_once = (
            "INSERT INTO history_events (execution_id, id, previous_event_id, frame_id, type, timestamp, details) "
            "SELECT %s, b.base + e.n, CASE WHEN e.previous < 0 THEN b.base - e.previous ELSE e.previous END, %s, "
            "e.type, e.stamp, CAST(e.details AS json) FROM (SELECT event_count - %s AS base FROM executions "
            "WHERE id = %s) b, unnest(%s::integer[], %s::text[], %s::float8[], %s::text[]) WITH ORDINALITY "
            "AS e(previous, type, stamp, details, n) ORDER BY e.n")
        # child_done's siblings: they notify idle workers themselves when they make a frame runnable.
        self.activate_next_at_once = (
            f"WITH {base}, w AS (UPDATE frames SET status = 'ACTIVE', run_at = %s, last_event_id = {an_id} FROM b "
            "WHERE frames.id = (SELECT c.id FROM frames c WHERE c.parent_id = %s AND c.status = 'PENDING' "
            "ORDER BY c.idx LIMIT 1) AND EXISTS (SELECT 1 FROM frames f WHERE f.id = %s AND f.failure IS NULL) "
            "RETURNING 1) SELECT pg_notify('statemill', '') FROM w")
        self.wake_parent_at_once = (
            f"WITH {base}, w AS (UPDATE frames SET run_at = %s, last_event_id = b.base + %s FROM b "
            "WHERE frames.id = %s AND frames.pending = 0 AND frames.failure IS NULL RETURNING 1) "
            "SELECT pg_notify('statemill', '') FROM w")


# The errors a transition committed at once raises on the server (hot.HotStatements._at_once), so that its COMMIT
# rolls back: the frame moved on (or its lease is gone); or no ids were taken, the execution having ended or the
# transition's events going past the history limit (the caller then commits it taking the ids first).
STALE = "statemill: stale transition"
NOT_TAKEN = "statemill: event ids not taken"


# runtime.Claimed's fields, in their order.
CLAIMED_COLUMNS = "id, execution_id, parent_id, version, state, phase, input, data, run_at, last_event_id"


def claim_sql(dialect: str, pick: str) -> str:
    """The claim of runnable frames: lease those ``pick`` selects (the ids of frames due, unleased, oldest due first,
    LIMIT a placeholder) and return them. Placeholders: ``pick``'s, then owner, lease end, now (the guard: still
    unleased). PostgreSQL: the pick is a materialised CTE, evaluated once (a LIMIT ... SKIP LOCKED subquery of an
    UPDATE may run again and take more rows), and skips rows another claimer has locked; SQLite has one writer."""
    p = "%s" if dialect == "postgresql" else "?"
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    returned = ", ".join(f"frames.{c}" for c in CLAIMED_COLUMNS.split(", "))
    return (f"WITH picked AS MATERIALIZED ({pick}{lock}) "
            f"UPDATE frames SET lease_owner = {p}, lease_until = {p} WHERE frames.id IN (SELECT id FROM picked) "
            f"AND frames.status = 'ACTIVE' AND (frames.lease_until IS NULL OR frames.lease_until < {p}) "
            f"RETURNING {returned}")


# PostgreSQL: this transaction's COMMIT returns before its log record is on disk (runtime.lazy_commit).
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"

_BY_DIALECT: dict[str, HotStatements] = {}


def statements(conn: sa.Connection) -> HotStatements:
    """The prebuilt statements for ``conn``'s dialect (built once per process)."""
    name = conn.dialect.name
    found = _BY_DIALECT.get(name)
    if found is None:
        found = _BY_DIALECT[name] = HotStatements(name)
    return found


def cursor(conn: sa.Connection):
    """A DBAPI cursor on ``conn``'s connection, inside the transaction SQLAlchemy began on it."""
    return conn.connection.dbapi_connection.cursor()


def frame_params(columns: tuple[str, ...], values: dict[str, Any], frame_id: int, version: int,
                 owner: str, input_text: str | None = None) -> tuple:
    """The parameters of a prebuilt frame update: the new ``values`` in ``columns``' order, then the CAS.
    ``input_text``: the input's JSON text when the interpreter made it already (history details allow NaN and
    Infinity, a column does not: such a text is encoded again, strictly)."""
    if input_text is None or "NaN" in input_text or "Infinity" in input_text:
        input_text = json_text(values["input"]) if "input" in values else None
    return (*(input_text if c == "input" else json_text(values[c]) if c in _JSON else values[c] for c in columns),
            frame_id, version, owner)


_JSON = frozenset(("input", "data", "output"))


def run_script(conn: sa.Connection, statements: list[tuple[str, tuple]]):
    """PostgreSQL: run ``statements`` (SQL text with psycopg's ``%s`` placeholders, and their values) as one query
    message, so the server runs them through without waiting for this process; the cursor, on the first result.
    Each statement with values is prepared once per connection (PREPARE) and run with EXECUTE, its values bound
    here (psycopg's ClientCursor): a plan is not made anew each time."""
    from psycopg import ClientCursor
    dbapi = conn.connection.dbapi_connection
    cursor = ClientCursor(dbapi)
    with _PREPARED_LOCK:
        prepared = _PREPARED.setdefault(dbapi, set())
    parts = []
    for text, args in statements:
        if not args:
            parts.append(text)
            continue
        name = _prepared_name(text)
        if name not in prepared:
            try:
                cursor.execute(f"PREPARE {name} AS {_numbered(text)}")
            except Exception as exc:
                if getattr(exc, "sqlstate", None) == "42P05":  # it was after all (a pooler changed the session)
                    prepared.add(name)
                raise
            prepared.add(name)
        # Bound statement by statement: psycopg caches the parse of a short query, not of one with 50 values.
        parts.append(cursor.mogrify(f"EXECUTE {name}({', '.join(['%s'] * len(args))})", args))
    try:
        cursor.execute(";\n".join(parts))
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == "26000":  # invalid_sql_statement_name: someone ran DEALLOCATE ALL
            with _PREPARED_LOCK:
                _PREPARED.pop(dbapi, None)
        raise
    return cursor


_NAMES: dict[str, str] = {}  # statement text -> its prepared statement's name, the same on every connection
_PREPARED: "weakref.WeakKeyDictionary[Any, set[str]]" = weakref.WeakKeyDictionary()  # connection -> names prepared
_PREPARED_LOCK = threading.Lock()


def _prepared_name(text: str) -> str:
    with _PREPARED_LOCK:
        name = _NAMES.get(text)
        if name is None:
            name = _NAMES[text] = f"statemill_{len(_NAMES)}"
    return name


def _numbered(text: str) -> str:
    """psycopg's placeholders as PREPARE's: ``%s`` becomes $1, $2, ... and ``%%`` a ``%``."""
    count = itertools.count(1)
    return re.sub(r"%[s%]", lambda m: "%" if m.group() == "%%" else f"${next(count)}", text)


def pipeline(conn: sa.Connection):
    """PostgreSQL: the statements sent in the block go in one round trip (psycopg's pipeline mode), their results
    (``rowcount``) are read after it; a transition holding the execution row's lock waits for one reply, not one
    per statement. SQLite: the statements simply run one by one."""
    if conn.dialect.name == "postgresql":
        return conn.connection.dbapi_connection.pipeline()
    return contextlib.nullcontext()
