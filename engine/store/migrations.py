"""Numbered schema migrations and the recorded schema version.

Version 1 is the schema as ``schema.py`` declares it. A later release appends a function that moves version N-1
to N; ``upgrade`` applies the missing ones in order, in one transaction, under a PostgreSQL advisory lock (SQLite's
``BEGIN IMMEDIATE`` already serialises it), so many workers starting at once never race.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import sqlalchemy as sa

# SQLAlchemy and the tables are imported inside the functions: reading LATEST must stay cheap for the commands that
# check the schema version without SQLAlchemy (engine/tokens.py's direct path).

_LOCK_KEY = 5127301  # any constant: the advisory lock that serialises migrations


def _v1_create_tables(conn: sa.Connection) -> None:
    from .schema import metadata
    metadata.create_all(conn, checkfirst=True)


def _v2_route_tasks_to_workers(conn: sa.Connection) -> None:
    """Frames record the handler key and deadline of the task they wait to run (deadlines indexed); workers
    record what they serve. Version 1 ran ``create_all`` of the current tables, so a database created fresh
    already has all of these."""
    from .schema import frames, workers
    for column in (frames.c.handler_key, frames.c.task_deadline, workers.c.handler_keys, workers.c.execution_id):
        _add_column(conn, column)
    next(i for i in frames.indexes if i.name == "ix_frames_task_deadline").create(conn, checkfirst=True)


def _add_column(conn: sa.Connection, column: sa.Column) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for a nullable column, unless its table has it already."""
    import sqlalchemy as sa
    table = column.table.name
    if column.name in {c["name"] for c in sa.inspect(conn).get_columns(table)}:
        return
    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column.name} {column.type.compile(dialect=conn.dialect)}"))


def _v3_count_commit_failures(conn: sa.Connection) -> None:
    """frames.commit_failures. Version 1 ran ``create_all`` of the current tables, so a database created fresh
    already has it."""
    import sqlalchemy as sa
    if "commit_failures" not in {c["name"] for c in sa.inspect(conn).get_columns("frames")}:
        conn.execute(sa.text("ALTER TABLE frames ADD COLUMN commit_failures INTEGER NOT NULL DEFAULT 0"))


def _v4_machines_and_tags(conn: sa.Connection) -> None:
    """What AWS keeps per state machine: its type, status and creation date (``machines``, one row per name, made
    from the latest revision of each name already registered), each revision's role, logging and tracing, and
    tags."""
    import sqlalchemy as sa

    from .schema import machines, state_machines, tags
    for column in (state_machines.c.role_arn, state_machines.c.logging, state_machines.c.tracing):
        _add_column(conn, column)
    machines.create(conn, checkfirst=True)
    tags.create(conn, checkfirst=True)
    revisions = state_machines.alias("r")
    latest = sa.select(sa.func.max(revisions.c.revision)).where(revisions.c.name == state_machines.c.name)
    first = sa.select(sa.func.min(revisions.c.created_at)).where(revisions.c.name == state_machines.c.name)
    known = sa.select(machines.c.name).where(machines.c.name == state_machines.c.name)
    conn.execute(machines.insert().from_select(
        ["name", "type", "status", "revision_id", "created_at"],
        sa.select(state_machines.c.name, sa.literal("STANDARD"), sa.literal("ACTIVE"), state_machines.c.id,
                  first.scalar_subquery())
        .where(state_machines.c.revision == latest.scalar_subquery(), ~sa.exists(known))))


def _v5_index_pending_children(conn: sa.Connection) -> None:
    """A partial index of the children waiting for a free slot: each finishing Map iteration looks for the next
    one, which scanned all its siblings (a 1,000-item Map: a million rows read, under the execution's lock)."""
    from .schema import frames
    next(i for i in frames.indexes if i.name == "ix_frames_pending").create(conn, checkfirst=True)


def _v6_execution_mocks(conn: sa.Connection) -> None:
    """execution_mocks and mocked_states: the mocked task answers of executions started with a test case, and the
    states they answer (engine/mocks.py)."""
    from .schema import execution_mocks, mocked_states
    execution_mocks.create(conn, checkfirst=True)
    mocked_states.create(conn, checkfirst=True)


def _v7_index_executions_for_the_console(conn: sa.Connection) -> None:
    """The web console pages executions newest first by id, filtered by status or by machine and status, and counts
    them by machine and status: two indexes, so neither reads the whole table. Version 1 creates them fresh."""
    from .schema import executions
    for index in executions.indexes:
        if index.name in ("ix_executions_machine_status", "ix_executions_status_page"):
            index.create(conn, checkfirst=True)


def _v8_versions_and_aliases(conn: sa.Connection) -> None:
    """Published versions and aliases of state machines, each machine's last version number, and the version and
    alias an execution was started on."""
    from .schema import executions, machine_aliases, machine_versions, machines
    for column in (machines.c.last_version, executions.c.version, executions.c.alias):
        _add_column(conn, column)
    machine_versions.create(conn, checkfirst=True)
    machine_aliases.create(conn, checkfirst=True)


def _v9_worker_wake_address(conn: sa.Connection) -> None:
    """workers.wake_address: the socket a worker listens on for wake-ups (engine/wake.py). Version 1 ran
    ``create_all`` of the current tables, so a database created fresh already has it."""
    from .schema import workers
    _add_column(conn, workers.c.wake_address)


def _v10_activities(conn: sa.Connection) -> None:
    """Activities (CreateActivity) and the task-token columns an activity task needs: its activity ARN, and the
    worker name and time of the GetActivityTask that took it. Idempotent, so its place in the list may move."""
    from .schema import activities, task_tokens
    activities.create(conn, checkfirst=True)
    for column in (task_tokens.c.activity_arn, task_tokens.c.worker_name, task_tokens.c.started_at):
        _add_column(conn, column)
    next(i for i in task_tokens.indexes if i.name == "ix_task_tokens_activity").create(conn, checkfirst=True)


def _v11_child_executions(conn: sa.Connection) -> None:
    """Child workflows: each execution's parent execution, task attempt key, waiting token and `.sync` mode, and an
    index to list an execution's children, and each child's root execution (a `run` drives the whole tree); and
    each execution's redrive count and date (RedriveExecution)."""
    from .schema import executions
    for name in ("parent_id", "root_id", "parent_key", "parent_token", "parent_mode", "redrive_count",
                 "redrive_date"):
        _add_column(conn, executions.c[name])
    for index in executions.indexes:
        if index.name in ("ix_executions_parent", "ix_executions_root"):
            index.create(conn, checkfirst=True)


def _v12_map_runs(conn: sa.Connection) -> None:
    """Distributed Map runs (engine/map_runs.py) and each child execution's map run, index and item count."""
    from .schema import executions, map_runs
    map_runs.create(conn, checkfirst=True)
    for name in ("map_run_id", "map_index", "map_items"):
        _add_column(conn, executions.c[name])
    next(i for i in executions.indexes if i.name == "ix_executions_map_run").create(conn, checkfirst=True)


def _v13_index_claims_and_idle_reads(conn: sa.Connection) -> None:
    """Indexes for the claim and for what a worker reads while everything waits. Runnable frames by (run_at, id),
    the claim's order: PostgreSQL sorted every due frame of a Map on each claim (its iterations are due at the same
    moment; SQLite's index held the id, its rowid, already; the housekeeping sweep of expired leases reads only
    the frames due, through it). The running executions' deadlines (TimeoutSeconds): an idle worker looks, every
    poll, for the earliest one and for those already past, which with 100,000 parked read every execution each
    time and filled the page cache of the connection that read it."""
    import sqlalchemy as sa

    from .schema import executions, frames
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_frames_runnable"))
    next(i for i in frames.indexes if i.name == "ix_frames_runnable").create(conn)
    next(i for i in executions.indexes if i.name == "ix_executions_deadline").create(conn, checkfirst=True)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [_v1_create_tables, _v2_route_tasks_to_workers,
                                                     _v3_count_commit_failures, _v4_machines_and_tags,
                                                     _v5_index_pending_children, _v6_execution_mocks,
                                                     _v7_index_executions_for_the_console, _v8_versions_and_aliases,
                                                     _v9_worker_wake_address, _v10_activities, _v11_child_executions,
                                                     _v12_map_runs, _v13_index_claims_and_idle_reads]
LATEST = len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    """The recorded version; 0 for an empty database."""
    import sqlalchemy as sa

    from .schema import schema_version
    if not sa.inspect(conn).has_table(schema_version.name):
        return 0
    return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0


def upgrade(engine: sa.Engine) -> tuple[int, int]:
    """Apply every missing migration; returns (version before, version after)."""
    import sqlalchemy as sa

    from .schema import schema_version
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))
        before = current_version(conn)
        if before > LATEST:
            raise RuntimeError(f"the database schema is version {before}, newer than this statemill knows "
                               f"({LATEST}); upgrade statemill")
        for version in range(before + 1, LATEST + 1):
            MIGRATIONS[version - 1](conn)
            conn.execute(schema_version.delete())
            conn.execute(schema_version.insert().values(version=version))
    return before, LATEST
