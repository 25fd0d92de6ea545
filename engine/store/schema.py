"""The system database's tables, declared once with SQLAlchemy Core for SQLite and PostgreSQL alike.

Frames double as the work queue: a frame (the root thread of an execution, a Parallel branch or a Map
iteration) is runnable when it is ACTIVE, its ``run_at`` has come and no live lease holds it; a frame about to run a
task is runnable only for the workers serving its ``handler_key``. Claiming is a guarded
UPDATE of the lease columns; committing a transition is a compare-and-set on ``version``.
"""
from __future__ import annotations

import json

from sqlalchemy import (Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        TypeDecorator, UniqueConstraint, text)
from sqlalchemy.dialects.postgresql import JSON

from ..jsonvalue import dumps

metadata = MetaData()


class JsonText(TypeDecorator):
    """JSON stored as TEXT. A column declared ``JSON`` gets NUMERIC affinity in SQLite, which would turn the text
    ``0.0`` into the integer 0; TEXT keeps every JSON value exactly as written. NaN and Infinity cannot be stored."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        # JSON null is stored as SQL NULL, so `IS NULL` guards (first failure wins) see it.
        return None if value is None else dumps(value)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


# PostgreSQL's `json` keeps the text verbatim; JSONB would reorder object keys, and outputs must keep AWS's order.
Json = JsonText().with_variant(JSON(none_as_null=True), "postgresql")

schema_version = Table(
    "statemill_schema", metadata,
    Column("version", Integer, primary_key=True),
)

state_machines = Table(
    "state_machines", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("definition", Text, nullable=False),  # the source text as given, so diagnostics keep their lines
    Column("created_at", Float, nullable=False),
    # What a revision runs with besides its definition (UpdateStateMachine changes them; executions keep the
    # revision they started with). NULL: the default role ARN, no logging, tracing disabled.
    Column("role_arn", Text, nullable=True),
    Column("logging", Json, nullable=True),
    Column("tracing", Json, nullable=True),
    UniqueConstraint("name", "sha256"),
    UniqueConstraint("name", "revision"),
)

# One row per state machine that exists (the rows of `state_machines` are its revisions): what AWS keeps per machine.
# DeleteStateMachine marks it DELETING; the row is gone once no execution it started is RUNNING, and a machine
# created again under the name is a new one (executions started before its created_at belong to the old one).
machines = Table(
    "machines", metadata,
    Column("name", String(80), primary_key=True),
    Column("type", String(8), nullable=False, default="STANDARD", server_default="STANDARD"),  # or EXPRESS
    Column("status", String(8), nullable=False, default="ACTIVE", server_default="ACTIVE"),  # or DELETING
    Column("revision_id", Integer, ForeignKey("state_machines.id"), nullable=False),  # the current revision
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=True),
    Column("last_version", Integer, nullable=True),  # the last version number published (never reused); NULL: none
)

# PublishStateMachineVersion's immutable, numbered versions: each names one revision of its machine.
machine_versions = Table(
    "machine_versions", metadata,
    Column("machine_name", String(80), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("revision_id", Integer, ForeignKey("state_machines.id"), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)

# State machine aliases: a name routing StartExecution to one or two versions by weight, [[version, weight], ...].
machine_aliases = Table(
    "machine_aliases", metadata,
    Column("machine_name", String(80), primary_key=True),
    Column("name", String(80), primary_key=True),
    Column("description", Text, nullable=True),
    Column("routing", Json, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=True),
)

# TagResource's tags: state machines (and activities) are taggable in AWS, executions are not.
tags = Table(
    "tags", metadata,
    Column("resource_arn", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

executions = Table(
    "executions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("machine_id", Integer, ForeignKey("state_machines.id"), nullable=False),
    Column("machine_name", String(80), nullable=False),
    Column("name", String(80), nullable=False),
    Column("arn", String(400), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    Column("input", Json, nullable=True),
    Column("output", Json, nullable=True),
    Column("error", Text, nullable=True),
    Column("cause", Text, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("stopped_at", Float, nullable=True),
    Column("deadline_at", Float, nullable=True),  # top-level TimeoutSeconds
    Column("event_count", Integer, nullable=False, default=0),  # last history event id handed out
    # The version it was started on (a version ARN, or the version an alias picked) and the alias; NULL for an
    # execution started on the unqualified ARN, which runs the machine's current revision.
    Column("version", Integer, nullable=True),
    Column("alias", String(80), nullable=True),
    # A child workflow (engine/children.py, migration 10): the execution whose Task started it, that task attempt's
    # idempotency key (a redelivered attempt finds its child instead of starting another), and for `.sync`/`.sync:2`
    # the parent's task token this execution answers when it closes, and which of the two it is.
    Column("parent_id", Integer, nullable=True),
    Column("root_id", Integer, nullable=True),  # the top execution of a tree of child workflows (`statemill run`)
    Column("parent_key", Text, nullable=True),
    Column("parent_token", String(128), nullable=True),
    Column("parent_mode", String(8), nullable=True),
    # RedriveExecution (engine/redrive.py, migration 10): how often and when last.
    Column("redrive_count", Integer, nullable=True),
    Column("redrive_date", Float, nullable=True),
    # A Distributed Map's child execution (engine/map_runs.py, migration 12): its map run, its place in the run
    # (the order of the Map's output) and how many items it was given (1, or a batch's size).
    Column("map_run_id", Integer, nullable=True),
    Column("map_index", Integer, nullable=True),
    Column("map_items", Integer, nullable=True),
    UniqueConstraint("machine_name", "name"),
    Index("ix_executions_status", "status", "started_at"),
    # The console (migration 8): pages newest first by id filtered by status, or by machine and status, are index
    # range scans; counts by machine and status read the index only. A machine alone sorts its ids from the index.
    Index("ix_executions_machine_status", "machine_name", "status", "id"),
    Index("ix_executions_status_page", "status", "id"),
    Index("ix_executions_parent", "parent_id", "id"),
    Index("ix_executions_root", "root_id"),
    Index("ix_executions_map_run", "map_run_id", "map_index"),
    # An idle worker asks, every poll, for the earliest deadline of the running executions and for those past it:
    # two index range scans, not a read of every running execution (migration 13).
    Index("ix_executions_deadline", "status", "deadline_at"),
)

frames = Table(
    "frames", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", Integer, ForeignKey("executions.id"), nullable=False),
    Column("parent_id", Integer, ForeignKey("frames.id"), nullable=True),
    Column("idx", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),  # PENDING | ACTIVE | SUCCEEDED | FAILED | CANCELLED
    Column("version", Integer, nullable=False, default=0),
    Column("state", Text, nullable=True),  # current state name
    Column("phase", String(16), nullable=False),  # what the frame does next (see interpreter.Phase)
    Column("input", Json, nullable=True),  # raw input of the current state
    Column("data", Json, nullable=True),  # phase data: effective input, retry counters, deadlines...
    Column("run_at", Float, nullable=True),  # runnable from then on; NULL while waiting on children or a token
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_event_id", Integer, nullable=False, default=0),
    Column("pending", Integer, nullable=False, default=0),  # children not yet finished
    Column("failure", Json, nullable=True),  # first child failure {"error", "cause"}
    Column("output", Json, nullable=True),  # the frame's result once SUCCEEDED
    # In the task phase: the handler key of the task (handlers.handler_key; only workers serving it claim the frame)
    # and its TimeoutSeconds deadline (from then on any worker claims it, to time it out). NULL in other phases.
    Column("handler_key", Text, nullable=True),
    Column("task_deadline", Float, nullable=True),
    # Failed commits of the current version (reset by the next commit): a transition that can never be stored
    # fails the frame after a few tries instead of being redelivered forever.
    Column("commit_failures", Integer, nullable=False, default=0, server_default="0"),
    # Claims take the oldest due first, ties by id (a Map's iterations are all due at once): no sort on PostgreSQL.
    Index("ix_frames_runnable", "run_at", "id", postgresql_where=text("status = 'ACTIVE'"),
          sqlite_where=text("status = 'ACTIVE'")),
    Index("ix_frames_task_deadline", "task_deadline", postgresql_where=text("status = 'ACTIVE'"),
          sqlite_where=text("status = 'ACTIVE'")),
    Index("ix_frames_parent", "parent_id", "idx"),
    # Children waiting for a free slot (Map MaxConcurrency): finding the next one must not scan every sibling.
    Index("ix_frames_pending", "parent_id", "idx", postgresql_where=text("status = 'PENDING'"),
          sqlite_where=text("status = 'PENDING'")),
    Index("ix_frames_execution", "execution_id"),
)

history_events = Table(
    "history_events", metadata,
    Column("execution_id", Integer, ForeignKey("executions.id"), primary_key=True),
    Column("id", Integer, primary_key=True, autoincrement=False),  # AWS's 1-based event id
    Column("previous_event_id", Integer, nullable=False),
    Column("frame_id", Integer, nullable=True),
    Column("type", String(40), nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("details", Json, nullable=True),
)

task_tokens = Table(
    "task_tokens", metadata,
    Column("token", String(128), primary_key=True),
    Column("execution_id", Integer, ForeignKey("executions.id"), nullable=False),
    Column("frame_id", Integer, ForeignKey("frames.id"), nullable=False),
    Column("frame_version", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("status", String(16), nullable=False),  # PENDING | SUCCEEDED | FAILED | TIMED_OUT | CANCELLED
    Column("output", Json, nullable=True),
    Column("error", Text, nullable=True),
    Column("cause", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("heartbeat_seconds", Integer, nullable=True),
    Column("heartbeat_deadline", Float, nullable=True),
    Column("completed_at", Float, nullable=True),
    # Activity tasks (migration 11): the activity ARN a poller takes the task from, and who took it when.
    Column("activity_arn", String(256), nullable=True),
    Column("worker_name", String(80), nullable=True),
    Column("started_at", Float, nullable=True),
    Index("ix_task_tokens_frame", "frame_id"),
    Index("ix_task_tokens_pending", "status", "created_at"),
    Index("ix_task_tokens_activity", "activity_arn", "status", "started_at", "created_at"),
)

# A Distributed Map's run (engine/map_runs.py, migration 12): one per attempt of the Map state. Its children are
# executions with ``map_run_id``; the counters are DescribeMapRun's, moved in the transactions that start and close
# children. ``cursor`` is where the item reader stands: children and cursor are saved together, so no item is
# skipped or started twice.
map_runs = Table(
    "map_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("arn", String(400), nullable=False, unique=True),
    Column("execution_id", Integer, ForeignKey("executions.id"), nullable=False),
    Column("frame_id", Integer, nullable=False),  # the parent frame, waiting in the Map state
    Column("status", String(16), nullable=False),  # RUNNING | SUCCEEDED | FAILED | ABORTED
    Column("label", String(80), nullable=False),
    Column("execution_type", String(8), nullable=False),  # STANDARD | EXPRESS
    Column("max_concurrency", Integer, nullable=False),  # 0: AWS's default (statemill: map_runs.DEFAULT_CONCURRENCY)
    Column("tolerated_failure_count", Integer, nullable=True),
    Column("tolerated_failure_percentage", Float, nullable=True),
    Column("items", Json, nullable=True),  # the items from the state input (no ItemReader)
    Column("reader", Json, nullable=True),  # the evaluated ItemReader
    Column("batcher", Json, nullable=True),  # the evaluated ItemBatcher
    Column("writer", Json, nullable=True),  # the evaluated ResultWriter
    Column("cursor", Json, nullable=True),
    Column("reader_done", Integer, nullable=False, default=0),
    Column("items_read", Integer, nullable=False, default=0),
    Column("children", Integer, nullable=False, default=0),  # child executions started (the next child's index)
    *[Column(f"{kind}_{count}", Integer, nullable=False, default=0)
      for kind in ("exec", "items") for count in ("running", "succeeded", "failed", "timed_out", "aborted")],
    Column("results_written", Integer, nullable=False, default=0),
    Column("writer_details", Json, nullable=True),
    Column("error", Text, nullable=True),
    Column("cause", Text, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("stopped_at", Float, nullable=True),
    Index("ix_map_runs_execution", "execution_id", "status"),
)

activities = Table(
    "activities", metadata,
    # CreateActivity: one row per activity ARN (the region is part of it); pollers take tasks by this ARN.
    Column("arn", String(256), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("created_at", Float, nullable=False),
)

workers = Table(
    "workers", metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("last_heartbeat", Float, nullable=False),
    Column("handler_keys", Json, nullable=True),  # the handler keys it serves (a list)
    Column("execution_id", Integer, nullable=True),  # set for a `run`: it drives this execution only
    Column("wake_address", String(255), nullable=True),  # SQLite: its wake socket (engine/wake.py), poked on commits
)

execution_mocks = Table(
    "execution_mocks", metadata,
    # The mocked task answers an execution started with (a Step Functions Local test case, or the pytest plugin's
    # mocks), stored with it so any worker applies them; ``calls`` remembers which invocation each task attempt was.
    Column("execution_id", Integer, ForeignKey("executions.id"), primary_key=True),
    Column("test_case", Text, nullable=True),
    Column("responses", Json, nullable=False),  # {state: [[first, last or null, {"Return": v} | {"Throw": {...}}]]}
    Column("calls", Json, nullable=False),  # {attempt key: [state, invocation]}
)

mocked_states = Table(
    "mocked_states", metadata,
    # The states of an execution that mocks answer: any worker claims their tasks, handler or not (runtime.Serving).
    Column("execution_id", Integer, ForeignKey("executions.id"), primary_key=True),
    Column("state", String(80), primary_key=True),
)
