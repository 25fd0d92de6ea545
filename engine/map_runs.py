"""Distributed Map runs: each item (or batch) of a ``Mode: DISTRIBUTED`` Map runs as a child execution of the
ItemProcessor, which any worker runs, tracked by a map run row (DescribeMapRun's counters).

The parent frame waits in the Map state's ``join`` phase. Whenever it is runnable the worker *pumps* the run
(``pump``): it starts children up to MaxConcurrency, a chunk per transaction that also saves the reader's cursor
(so a crash neither skips nor repeats an item), and parks the frame. A child's closing transaction moves the
counters and wakes the frame (``child_closed``). Once the reader is exhausted and no child runs, or the tolerated
failures are exceeded, the run ends and the frame's transition (``joined``/``join_failed``) follows. Redriving
the parent redrives the same run (``redrive``): only its unsuccessful and never-started items run again.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Iterator

import sqlalchemy as sa

from . import errors as E
from . import history as h
from .clock import iso
from .history import dumps
from .interpreter import Env, Trigger, item_inputs
from .store.schema import executions, frames, history_events, map_runs, task_tokens

DEFAULT_CONCURRENCY = 10_000  # AWS: a Distributed Map without MaxConcurrency runs up to 10,000 children at once
CHUNK = 100  # children started per transaction
EXCEEDED_CAUSE = "The specified tolerated failure threshold was exceeded"
_CLOSED = {"SUCCEEDED": "succeeded", "FAILED": "failed", "TIMED_OUT": "timed_out", "ABORTED": "aborted"}


# ----------------------------------------------------------------------------------------------- in transactions
def create(conn: sa.Connection, execution_id: int, frame_id: int, request, now: float) -> None:
    """Record the map run a Distributed Map state asked for (in the transaction that entered the state)."""
    exists = conn.execute(sa.select(map_runs.c.id).where(map_runs.c.arn == request.arn)).first()
    if exists is not None:
        return
    conn.execute(map_runs.insert().values(
        arn=request.arn, execution_id=execution_id, frame_id=frame_id, status="RUNNING", label=request.label,
        execution_type=request.execution_type, max_concurrency=request.max_concurrency,
        tolerated_failure_count=request.tolerated_count, tolerated_failure_percentage=request.tolerated_percentage,
        items=request.items, reader=request.reader, batcher=request.batcher, writer=request.writer,
        cursor=None, reader_done=0, items_read=0, children=0, started_at=now,
        **{c.name: 0 for c in map_runs.c if c.name.startswith(("exec_", "items_")) and c.name != "items_read"},
        results_written=0))


def child_closed(conn: sa.Connection, execution_id: int, status: str, now: float) -> None:
    """A child execution closed with ``status``: move its map run's counters and wake the parent frame (in the
    child's closing transaction; the map run row is locked before the parent frame, as ``pump`` does)."""
    row = conn.execute(sa.select(executions.c.map_run_id, executions.c.map_items)
                       .where(executions.c.id == execution_id)).one()
    kind, n = _CLOSED[status], row.map_items or 1
    c = map_runs.c
    found = conn.execute(map_runs.update().where(c.id == row.map_run_id)
                         .values({c.exec_running: c.exec_running - 1, c[f"exec_{kind}"]: c[f"exec_{kind}"] + 1,
                                  c.items_running: c.items_running - n, c[f"items_{kind}"]: c[f"items_{kind}"] + n})
                         .returning(c.frame_id, c.status)).first()
    if found is not None and found.status == "RUNNING":
        conn.execute(frames.update().where(frames.c.id == found.frame_id, frames.c.status == "ACTIVE",
                                           frames.c.phase == "join").values(run_at=now))
        from .runtime import notify
        notify(conn)


def abort_runs(conn: sa.Connection, execution_id: int, now: float) -> None:
    """The execution closed (stopped, timed out, failed elsewhere): abort its running map runs and their running
    children. The children are closed first and the runs' counters recounted last, so the locks are taken in
    the order a closing child takes them (its row, then the run's)."""
    runs = conn.execute(sa.select(map_runs.c.id).where(map_runs.c.execution_id == execution_id,
                                                       map_runs.c.status == "RUNNING")).scalars().all()
    for run_id in runs:
        abort_children(conn, run_id, now)
        conn.execute(map_runs.update().where(map_runs.c.id == run_id, map_runs.c.status == "RUNNING")
                     .values(status="ABORTED", stopped_at=now))


def abort_children(conn: sa.Connection, run_id: int, now: float) -> None:
    """Abort every running child of a map run, then recount the run's counters from its children."""
    from .runtime import end_execution
    running = conn.execute(sa.select(executions.c.id).where(executions.c.map_run_id == run_id,
                                                            executions.c.status == "RUNNING")).scalars().all()
    for child in running:
        end_execution(conn, child, "ABORTED", "ExecutionAborted", None, None, now, counted=False)
    if running:
        recount(conn, run_id)


def recount(conn: sa.Connection, run_id: int) -> None:
    """Set a map run's execution and item counters from its children's statuses."""
    values = {c.name: 0 for c in map_runs.c if c.name.startswith(("exec_", "items_")) and c.name != "items_read"}
    rows = conn.execute(sa.select(executions.c.status, sa.func.count(), sa.func.sum(executions.c.map_items))
                        .where(executions.c.map_run_id == run_id).group_by(executions.c.status)).all()
    for status, count, items in rows:
        kind = _CLOSED.get(status, "running")
        values[f"exec_{kind}"] += count
        values[f"items_{kind}"] += int(items or 0)
    conn.execute(map_runs.update().where(map_runs.c.id == run_id).values(values))


def redrive(conn: sa.Connection, arn: str, machine, state: str, now: float, head: int) -> int:
    """RedriveExecution reached the Distributed Map ``state`` that was joining the run ``arn``: redrive that run, as
    AWS does. Its succeeded children stay; the unsuccessful ones run again (STANDARD: each child execution is
    redriven; EXPRESS: started again from the start, AWS's StartExecution, under the same name); the items never
    started are started by the pump; the counters are recounted, so the failures count from zero. The parent's
    MapRunRedriven event follows ``head``; returns its id (the frame's new head)."""
    from .redrive import restart
    from .runtime import append_events
    run = conn.execute(sa.select(map_runs).where(map_runs.c.arn == arn)).one()
    start_at = machine.state(state).processor.start_at
    unsuccessful = conn.execute(sa.select(executions).where(
        executions.c.map_run_id == run.id, executions.c.status.in_(("FAILED", "TIMED_OUT", "ABORTED")))
        .order_by(executions.c.map_index)).all()
    for child in unsuccessful:
        if run.execution_type == "EXPRESS":
            _start_again(conn, child, start_at, now)
        else:
            restart(conn, child, now, machine, None)
    recount(conn, run.id)
    conn.execute(map_runs.update().where(map_runs.c.id == run.id).values(
        status="RUNNING", stopped_at=None, error=None, cause=None, writer_details=sa.null(), results_written=0))
    count = len(_redrives(conn, run)) + 1
    base = conn.execute(sa.select(executions.c.event_count).where(executions.c.id == run.execution_id)).scalar()
    append_events(conn, run.execution_id, None, base,
                  [h.Event("MapRunRedriven", {"mapRunArn": arn, "redriveCount": count})], [head], now)
    return base + 1


def _start_again(conn: sa.Connection, child, start_at: str, now: float) -> None:
    """An EXPRESS child runs its item again from the ItemProcessor's start (its ExecutionStarted event stays)."""
    conn.execute(task_tokens.delete().where(task_tokens.c.execution_id == child.id))
    conn.execute(frames.delete().where(frames.c.execution_id == child.id))
    conn.execute(history_events.delete().where(history_events.c.execution_id == child.id, history_events.c.id > 1))
    conn.execute(frames.insert().values(
        execution_id=child.id, parent_id=None, idx=0, status="ACTIVE", version=0, state=start_at, phase="enter",
        input=child.input, data={}, run_at=now, last_event_id=0, pending=0))
    conn.execute(executions.update().where(executions.c.id == child.id).values(
        status="RUNNING", output=sa.null(), error=None, cause=None, started_at=now, stopped_at=None,
        event_count=1))


def _redrives(conn: sa.Connection, run) -> list[float]:
    """When the run was redriven: the times of its MapRunRedriven events in the parent's history."""
    rows = conn.execute(sa.select(history_events.c.details, history_events.c.timestamp).where(
        history_events.c.execution_id == run.execution_id, history_events.c.type == "MapRunRedriven")).all()
    return [stamp for details, stamp in rows
            if (json.loads(details) if isinstance(details, str) else details or {}).get("mapRunArn") == run.arn]


# ----------------------------------------------------------------------------------------------- the pump
def pump(client, claimed, info, machine, storage, worker_id: str) -> Trigger | None:
    """Move the map run of ``claimed`` (a frame waiting in a Distributed Map) on: start children while there is
    room, then park the frame (None), or end the run and return the frame's trigger."""
    while True:
        with client.db.begin() as conn:
            run = _lock(conn, claimed.data["map_run_arn"])
            if run is None:
                raise LookupError(f"map run {claimed.data['map_run_arn']} is missing from the database")
            if run.status != "RUNNING":
                break
            failure, full = _exceeded(run), False
            if failure is None and not run.reader_done and run.exec_running < _limit(run):
                failure, full = _start_chunk(conn, client, claimed, info, machine, storage, run)
                if failure is None and not full:
                    continue  # room left, or the reader reached its end: look again
            if failure is not None:
                _end(conn, run, "FAILED", client.clock.now(), *failure)
                break
            if run.reader_done and run.exec_running == 0 and not full:
                _end(conn, run, "SUCCEEDED", client.clock.now())
                break
            # Wait for a child to close; a child closing after this commit sets run_at again.
            conn.execute(frames.update().where(frames.c.id == claimed.id, frames.c.version == claimed.version,
                                               frames.c.lease_owner == worker_id)
                         .values(run_at=None, lease_owner=None, lease_until=None))
            return None
    return _outcome(client, storage, claimed.data["map_run_arn"])


def _lock(conn: sa.Connection, arn: str):
    query = sa.select(map_runs).where(map_runs.c.arn == arn)
    return conn.execute(query.with_for_update() if conn.dialect.name == "postgresql" else query).first()


def _limit(run) -> int:
    return run.max_concurrency or DEFAULT_CONCURRENCY


def _exceeded(run) -> tuple[str, str] | None:
    """(error, cause) once the failed, timed-out and aborted items exceed what the run tolerates. The percentage is
    of all items, so with an ItemReader it is judged once the reader has reached the end."""
    failed = run.items_failed + run.items_timed_out + run.items_aborted
    if not failed:
        return None
    count, percentage = run.tolerated_failure_count, run.tolerated_failure_percentage
    over = count is None and percentage is None  # nothing tolerated
    if count is not None and failed > count:
        over = True
    known = run.items is not None or run.reader_done
    total = len(run.items) if run.items is not None else run.items_read
    if percentage is not None and known and total and failed * 100.0 / total > percentage:
        over = True
    return (E.EXCEED_TOLERATED_FAILURE_THRESHOLD, EXCEEDED_CAUSE) if over else None


def _pairs(storage, run) -> Iterator[tuple[Any, Any]]:
    """(item, cursor after it) from the run's cursor on: the state's items, or the ItemReader's."""
    if run.reader is None:
        start = run.cursor or 0
        return ((run.items[i], i + 1) for i in range(start, len(run.items)))
    return storage.items(run.reader, run.cursor)


def _start_chunk(conn, client, claimed, info, machine, storage, run) -> tuple[tuple[str, str] | None, bool]:
    """Start up to CHUNK children from the run's cursor and save the cursor with them. Returns (error, cause) when
    the reader or ItemSelector fails (else None), and whether MaxConcurrency is now reached with items left."""
    from .storage import StorageError, batches
    from .errors import StatesError
    room = min(CHUNK, _limit(run) - run.exec_running)
    select = item_inputs(machine, claimed.frame, Env(client.clock.now(), 0, info))
    counter = iter(range(run.items_read, 1 << 62))
    children, cursor, done = [], run.cursor, False
    try:  # the reader may refuse its configuration at once, or fail on an item
        selected = ((select(next(counter), item), cursor) for item, cursor in _pairs(storage, run))
        source = batches(selected, run.batcher) if run.batcher is not None else selected
        for value, cursor in source:
            children.append(value)
            if len(children) >= room:
                break
        else:
            done = True
    except (StorageError, StatesError) as exc:
        return (exc.error, exc.cause), False
    sizes = [len(v["Items"]) if run.batcher is not None else 1 for v in children]
    now = client.clock.now()
    _insert_children(conn, client, info, machine.state(claimed.state).processor, run, children, sizes, now)
    from . import runtime
    if runtime._FAULTS_ARMED:
        runtime.fault("in_map_run_chunk")  # crash tests: children inserted, the cursor not yet saved
    read = sum(sizes)
    c = map_runs.c
    conn.execute(map_runs.update().where(c.id == run.id).values(
        {c.cursor: cursor if children else run.cursor, c.reader_done: 1 if done else 0,
         c.items_read: c.items_read + read, c.children: c.children + len(children),
         c.exec_running: c.exec_running + len(children), c.items_running: c.items_running + read}))
    if children:
        from .runtime import notify
        notify(conn)
    return None, not done and run.exec_running + len(children) >= _limit(run)


def _insert_children(conn, client, info, processor, run, values: list, sizes: list, now: float) -> None:
    """Insert child executions (their rows, ExecutionStarted events and root frames) numbered from run.children.
    Names come from (map run, index), so starting one twice would fail on the unique ARN."""
    if not values:
        return
    parts = info.arn.split(":")
    region, account = parts[3], parts[4]
    machine_name = f"{info.machine_name}/{run.label}"
    parent = conn.execute(sa.select(executions.c.id, executions.c.root_id)
                          .where(executions.c.id == run.execution_id)).one()
    rows = []
    for offset, (value, size) in enumerate(zip(values, sizes)):
        index = run.children + offset
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run.arn}#{index}"))
        arn = (f"arn:aws:states:{region}:{account}:express:{machine_name}:{name}:{name}"
               if run.execution_type == "EXPRESS" else
               f"arn:aws:states:{region}:{account}:execution:{machine_name}:{name}")
        rows.append(dict(machine_id=info.machine_id, machine_name=machine_name, name=name, arn=arn,
                         status="RUNNING", input=value, started_at=now, deadline_at=None, event_count=1,
                         parent_id=parent.id, root_id=parent.root_id or parent.id, map_run_id=run.id,
                         map_index=index, map_items=size))
    ids = conn.execute(executions.insert().returning(executions.c.id, sort_by_parameter_order=True),
                       rows).scalars().all()
    conn.execute(history_events.insert(), [
        dict(execution_id=i, id=1, previous_event_id=0, frame_id=None, type="ExecutionStarted", timestamp=now,
             details={"input": dumps(r["input"]), "inputDetails": {"truncated": False}, "roleArn": info.role_arn})
        for i, r in zip(ids, rows)])
    conn.execute(frames.insert(), [
        dict(execution_id=i, parent_id=None, idx=0, status="ACTIVE", version=0, state=processor.start_at,
             phase="enter", input=r["input"], data={}, run_at=now, last_event_id=0, pending=0)
        for i, r in zip(ids, rows)])


def _end(conn, run, status: str, now: float, error: str | None = None, cause: str | None = None) -> None:
    conn.execute(map_runs.update().where(map_runs.c.id == run.id, map_runs.c.status == "RUNNING")
                 .values(status=status, stopped_at=now, error=error, cause=cause))


def _outcome(client, storage, arn: str) -> Trigger:
    """The run has ended: abort children still running (a failed run), write the results (ResultWriter) and give
    the parent frame's trigger: the outputs in item order, the ResultWriter's answer, or the run's failure. The
    files are written from a read-only connection, outside any write transaction (SQLite writers wait for none)."""
    from .storage import StorageError
    now = client.clock.now()
    with client.db.begin() as conn:
        run = conn.execute(sa.select(map_runs).where(map_runs.c.arn == arn)).one()
        if run.status != "SUCCEEDED":
            abort_children(conn, run.id, now)
            run = conn.execute(sa.select(map_runs).where(map_runs.c.arn == arn)).one()
    if run.writer is not None:
        details, failure, written = run.writer_details, None, []
        if details is None:  # written once; a repeat after a crash rewrites the same complete files
            try:
                with client.reader.connect() as conn:
                    details = storage.write_results(run.writer, arn, _records(conn, client, run, written))
            except StorageError as exc:
                failure, details = exc, {}
            with client.db.begin() as conn:
                values = {"writer_details": details, "results_written": len(written)}
                if failure is not None and run.status == "SUCCEEDED":
                    values.update(status="FAILED", error=failure.error, cause=failure.cause)
                conn.execute(map_runs.update().where(map_runs.c.id == run.id).values(values))
            if failure is not None and run.status == "SUCCEEDED":
                return Trigger("join_failed", error=failure.error, cause=failure.cause)
        if run.status == "SUCCEEDED":
            return Trigger("joined", {"MapRunArn": arn, "ResultWriterDetails": details})
    if run.status != "SUCCEEDED":
        return Trigger("join_failed", error=run.error, cause=run.cause)
    with client.reader.connect() as conn:
        rows = conn.execute(sa.select(executions.c.status, executions.c.output, executions.c.error,
                                      executions.c.cause)
                            .where(executions.c.map_run_id == run.id).order_by(executions.c.map_index))
        return Trigger("joined", [r.output if r.status == "SUCCEEDED" else {"Error": r.error, "Cause": r.cause}
                                  for r in rows])


def _records(conn, client, run, written: list) -> Iterator[tuple[str, dict]]:
    """Each child's ResultWriter record (status, DescribeExecution's shape with capitalised keys), streamed."""
    query = (sa.select(executions).where(executions.c.map_run_id == run.id).order_by(executions.c.map_index)
             .execution_options(yield_per=500))
    for row in conn.execute(query):
        record = {"ExecutionArn": row.arn, "Input": dumps(row.input), "InputDetails": {"Included": True},
                  "Name": row.name, "RedriveCount": row.redrive_count or 0, "RedriveStatus": "NOT_REDRIVABLE",
                  "StartDate": iso(row.started_at),
                  "StateMachineArn": client.machine_arn(row.machine_name), "Status": row.status,
                  "StopDate": iso(row.stopped_at) if row.stopped_at is not None else None}
        if row.status == "SUCCEEDED":
            record.update(Output=dumps(row.output), OutputDetails={"Included": True})
        else:
            record.update(Error=row.error, Cause=row.cause)
        status = row.status if row.status in ("SUCCEEDED", "FAILED") else \
            ("PENDING" if row.status == "RUNNING" else "FAILED")
        written.append(1)
        yield status, record


# ----------------------------------------------------------------------------------------------- reading
class MapRunDoesNotExist(E.StatemillError):
    """No map run has this ARN (AWS: ResourceNotFound)."""


def describe(conn: sa.Connection, arn: str) -> dict:
    """DescribeMapRun: status, settings and the item and execution counters (ISO dates)."""
    run = conn.execute(sa.select(map_runs, executions.c.arn.label("execution_arn"))
                       .join(executions, executions.c.id == map_runs.c.execution_id)
                       .where(map_runs.c.arn == arn)).first()
    if run is None:
        raise MapRunDoesNotExist(f"no map run has the ARN {arn!r}; list an execution's with `statemill map-runs`")
    total_items = len(run.items) if run.items is not None else run.items_read
    result = {"mapRunArn": run.arn, "executionArn": run.execution_arn, "status": run.status,
              "startDate": iso(run.started_at), "maxConcurrency": run.max_concurrency,
              "toleratedFailurePercentage": float(run.tolerated_failure_percentage or 0),
              "toleratedFailureCount": run.tolerated_failure_count or 0,
              # results_written counts child records; each holds its items, and every started child is written
              "itemCounts": _counts(run, "items", total_items, run.items_read if run.results_written else 0),
              "executionCounts": _counts(run, "exec", run.children, run.results_written),
              "redriveCount": 0}
    redrives = _redrives(conn, run)
    if redrives:
        result.update(redriveCount=len(redrives), redriveDate=iso(max(redrives)))
    if run.stopped_at is not None:
        result["stopDate"] = iso(run.stopped_at)
    return result


def _counts(run, kind: str, total: int, written: int) -> dict:
    done = {k: getattr(run, f"{kind}_{k}") for k in ("running", "succeeded", "failed", "timed_out", "aborted")}
    return {"pending": max(0, total - sum(done.values())), "running": done["running"],
            "succeeded": done["succeeded"], "failed": done["failed"], "timedOut": done["timed_out"],
            "aborted": done["aborted"], "total": total, "resultsWritten": written,
            "failuresNotRedrivable": 0, "pendingRedrive": 0}


def of_execution(conn: sa.Connection, execution_id: int, machine_arn) -> list[dict]:
    """ListMapRuns: the map runs an execution started, newest first."""
    rows = conn.execute(sa.select(map_runs.c.arn, map_runs.c.label, map_runs.c.started_at, map_runs.c.stopped_at,
                                  executions.c.arn.label("execution_arn"), executions.c.machine_name)
                        .join(executions, executions.c.id == map_runs.c.execution_id)
                        .where(map_runs.c.execution_id == execution_id).order_by(map_runs.c.id.desc())).all()
    return [{"executionArn": r.execution_arn, "mapRunArn": r.arn,
             "stateMachineArn": machine_arn(f"{r.machine_name}/{r.label}"), "startDate": iso(r.started_at),
             **({"stopDate": iso(r.stopped_at)} if r.stopped_at is not None else {})} for r in rows]


def update(conn: sa.Connection, arn: str, max_concurrency: int | None = None, tolerated_count: int | None = None,
           tolerated_percentage: float | None = None) -> None:
    """UpdateMapRun: new MaxConcurrency and tolerated failures for a running map run; the parent frame is woken
    so that more room starts more children at once."""
    values = {k: v for k, v in (("max_concurrency", max_concurrency), ("tolerated_failure_count", tolerated_count),
                                ("tolerated_failure_percentage", tolerated_percentage)) if v is not None}
    run = conn.execute(sa.select(map_runs.c.id, map_runs.c.frame_id, map_runs.c.status)
                       .where(map_runs.c.arn == arn)).first()
    if run is None:
        raise MapRunDoesNotExist(f"no map run has the ARN {arn!r}")
    if values:
        conn.execute(map_runs.update().where(map_runs.c.id == run.id).values(values))
    if run.status == "RUNNING":
        conn.execute(frames.update().where(frames.c.id == run.frame_id, frames.c.status == "ACTIVE",
                                           frames.c.phase == "join").values(run_at=sa.func.coalesce(
                                               frames.c.run_at, 0)))
        from .runtime import notify
        notify(conn)
