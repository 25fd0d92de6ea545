"""The out-of-process API: register definitions, start, describe, list, read history, stop, answer task tokens.

A ``Client`` needs only the database: any process that can reach it can start executions or complete a token,
whether or not a worker is running at that moment. Shapes follow the AWS API (DescribeExecution and friends).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from pathlib import Path
from os import PathLike
from typing import Any, Mapping

import sqlalchemy as sa

from . import loader, machines, versions
from .clock import SystemClock, iso
from .errors import InvalidOutput, InvalidToken, StatemillError, TaskDoesNotExist, TaskTimedOut  # noqa: F401
from .history import dumps
from .interpreter import DEFAULT_PAYLOAD_LIMIT, ExecutionInfo
from .jsonvalue import MAX_DEPTH, load_strict, stored_form, too_deep
from .machines import StateMachineDoesNotExist
from .model import StateMachine
from .runtime import end_execution, notify
from .store.db import open_engine, reader
from .store.schema import (execution_mocks, executions, frames, history_events, mocked_states, state_machines,
                           task_tokens, workers)

EXPRESS_TIMEOUT = 300  # seconds: AWS's cap on an EXPRESS execution
_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,80}$")


class ExecutionDoesNotExist(StatemillError):
    """No execution has that ARN."""


class ExecutionAlreadyExists(StatemillError):
    """An execution with that name exists with a different input."""


class InvalidExecutionInput(StatemillError):
    """The execution input is not JSON, or is larger than the payload limit."""


class InvalidName(StatemillError):
    """A state machine or execution name that AWS would refuse."""


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidName(f"invalid {kind} name {name!r}: 1 to 80 characters, without whitespace, brackets, "
                          "wildcards, control characters or any of \" # % \\ ^ | ~ ` $ & , ; : /")
    return name


def parse_input(text: str | None, limit: int = DEFAULT_PAYLOAD_LIMIT) -> Any:
    """Execution input from JSON text (``{}`` when None); InvalidExecutionInput when it is not JSON or too large."""
    if text is None:
        return {}
    try:
        value = load_strict(text)
    except ValueError as exc:
        raise InvalidExecutionInput(f"the input is not valid JSON: {exc}") from None
    check_payload(value, limit, "the input")
    return value


def _json_input(value: Any) -> Any:
    """A Python input value as it will be stored; InvalidExecutionInput when JSON cannot carry it (NaN, a set...)."""
    try:
        return stored_form(value)
    except ValueError as exc:
        raise InvalidExecutionInput(f"the input is not a JSON value: {exc}") from None


def canonical(value: Any) -> str:
    """JSON text that tells apart what Python's == confuses (False vs 0, 1 vs 1.0)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_payload(value: Any, limit: int, what: str) -> None:
    """InvalidExecutionInput unless ``value`` is JSON (no NaN or Infinity), nested at most MAX_DEPTH levels and at
    most ``limit`` bytes as compact UTF-8 JSON."""
    deep = too_deep(value)
    if deep is not None:
        raise InvalidExecutionInput(f"{what} nests objects and arrays more than {MAX_DEPTH} levels deep (at "
                                    f"{deep!r})")
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidExecutionInput(f"{what} is not a JSON value: {exc}") from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidExecutionInput(f"{what} is {size} bytes, over the payload limit of {limit} bytes")


class Client:
    """Talks to the system database. ``db`` is a URL (default: ``$STATEMILL_DATABASE_URL`` or ``statemill.db``)."""

    def __init__(self, db: str | sa.Engine | None = None, *, region: str = "us-east-1",
                 account: str = "000000000000", clock: Any = None, payload_limit: int = DEFAULT_PAYLOAD_LIMIT):
        self.db = db if isinstance(db, sa.Engine) else open_engine(db)
        self.reader = reader(self.db)
        self.region = region
        self.account = account
        self.clock = clock or SystemClock()
        self.payload_limit = payload_limit
        self._machines: dict[int, StateMachine] = {}
        self._infos: dict[int, ExecutionInfo] = {}
        self._compiled: dict[str, StateMachine] = {}
        self._lock = threading.Lock()

    # -- ARNs
    def machine_arn(self, name: str) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"

    def execution_arn(self, machine: str, name: str) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:execution:{machine}:{name}"

    def express_arn(self, machine: str, name: str) -> str:
        """An EXPRESS execution's ARN: AWS adds a UUID, since express execution names need not be unique."""
        return f"arn:aws:states:{self.region}:{self.account}:express:{machine}:{name}:{uuid.uuid4()}"

    # -- state machines
    def register(self, definition: str | PathLike | Mapping[str, Any], name: str | None = None) -> dict:
        """Validate and store a definition (a file path or a dict) under ``name`` (default: the file's stem).

        A changed definition becomes a new revision; executions keep the revision they started with.
        """
        machine = self._compile(definition)
        if name is None:
            if isinstance(definition, Mapping):
                raise TypeError("name= is required when registering a definition given as a dict")
            stem = str(definition).replace("\\", "/").rsplit("/", 1)[-1]
            name = re.sub(r"(\.asl)?\.(ya?ml|json)$", "", stem)
        check_name("state machine", name)
        text = json.dumps(machine.definition, sort_keys=True, separators=(",", ":"))
        with self.db.begin() as conn:  # a new definition keeps the machine's type, role, logging and tracing
            current = machines.head(conn, name)
            settings = machines.settings_of(conn, current.revision_id) if current else machines.Settings()
            machine_id, revision, _ = machines.store(conn, name, machine.definition, text, settings,
                                                     self.clock.now())
        self._machines[machine_id] = machine
        return {"stateMachineArn": self.machine_arn(name), "name": name, "revision": revision, "id": machine_id}

    def _compile(self, definition: str | PathLike | Mapping[str, Any]) -> StateMachine:
        """Validate and compile a definition, once per distinct source text in this process."""
        if isinstance(definition, Mapping):
            try:
                text, file = canonical(definition), None
            except RecursionError:  # nested far too deeply to encode: the loader says so, with a diagnostic
                return loader.load(definition)
        else:
            file = str(definition)
            text = Path(file).read_bytes()
        key = hashlib.sha256(f"{file}\0".encode() + (text.encode() if isinstance(text, str) else text)).hexdigest()
        found = self._compiled.get(key)
        if found is None:
            found = loader.load(definition) if file is None else loader.loads(text, name=file)
            self._compiled[key] = found
        return found

    def machine(self, machine_id: int) -> StateMachine:
        """The compiled definition of a stored revision (compiled once per process)."""
        found = self._machines.get(machine_id)
        if found is None:
            with self.reader.connect() as conn:
                text = conn.execute(sa.select(state_machines.c.definition)
                                    .where(state_machines.c.id == machine_id)).scalar_one()
            found = self._machines.setdefault(machine_id, loader.load(json.loads(text)))
        return found

    def _latest(self, conn, name: str):
        """The current revision of ``name`` (StateMachineDoesNotExist, or StateMachineDeleting once deleted)."""
        return machines.current_id(conn, name)

    def machine_type(self, name: str) -> str:
        """STANDARD or EXPRESS (StateMachineDoesNotExist when there is no machine ``name``)."""
        with self.reader.connect() as conn:
            return machines.live(conn, name, for_change=False).type

    # -- executions
    def start(self, machine: str, input: Any = None, *, name: str | None = None, input_text: str | None = None,
              mocks: Any = None, qualifier: str | None = None, parent: Any = None) -> dict:
        """Start an execution of the latest revision of ``machine`` (or, with ``qualifier``, of that version number
        or what that alias picks); returns StartExecution's response.

        As on AWS, starting again with the same name and the same input while the execution runs returns it;
        a different input, or a name whose execution has closed, raises ExecutionAlreadyExists. An EXPRESS
        machine's execution gets an express ARN and at most EXPRESS_TIMEOUT seconds to run. ``mocks`` (a
        ``mocks.TestCase``) answers the Task states it names instead of their handlers, stored with the execution.
        ``parent`` (a ``children.Parent``) starts it as a child workflow: a second start by the same task attempt
        returns the child the first one started, whatever its status.
        """
        try:
            return self._start(machine, input, name, input_text, mocks, qualifier, parent)
        except sa.exc.IntegrityError:
            if name is None:
                raise
            # A concurrent start of the same name committed first: answer as for a start that came after it.
            return self._start(machine, input, name, input_text, mocks, qualifier, parent)

    def start_many(self, machine: str, inputs: Any, *, names: Any = None, batch: int = 500) -> list[str]:
        """Start one execution of ``machine`` per item of ``inputs`` (named by ``names``, else a UUID each), each as
        ``start`` would, but ``batch`` of them per transaction: loading thousands of executions takes seconds,
        not minutes. Returns their ARNs in order (see engine/bulk.py)."""
        from .bulk import start_many
        return start_many(self, machine, inputs, names, batch)

    def _start(self, machine: str, input: Any, name: str | None, input_text: str | None, mocks: Any,
               qualifier: str | None, parent: Any = None) -> dict:
        if input_text is not None:
            value = parse_input(input_text, self.payload_limit)
        else:
            check_payload(input, self.payload_limit, "the input")
            value = {} if input is None else _json_input(input)
        name = check_name("execution", name or str(uuid.uuid4()))
        now = self.clock.now()
        with self.db.begin() as conn:
            head = machines.live(conn, machine)
            target = versions.target(conn, machine, qualifier)
            machine_id = target.revision_id
            compiled = self.machine(machine_id)
            express = head.type == machines.EXPRESS
            arn = self.express_arn(machine, name) if express else self.execution_arn(machine, name)
            existing = conn.execute(sa.select(executions.c.input, executions.c.started_at, executions.c.status,
                                              executions.c.parent_key)
                                    .where(executions.c.arn == arn)).first()
            if existing is not None and parent is not None and existing.parent_key == parent.key:
                return {"executionArn": arn, "startDate": iso(existing.started_at)}  # a redelivered task attempt
            if existing is not None:
                if existing.status != "RUNNING":
                    raise ExecutionAlreadyExists(f"execution {name!r} of {machine!r} already exists and has "
                                                 f"closed ({existing.status}); choose another name")
                if canonical(existing.input) != canonical(value):
                    raise ExecutionAlreadyExists(f"execution {name!r} of {machine!r} already exists with a "
                                                 "different input")
                return {"executionArn": arn, "startDate": iso(existing.started_at)}
            if express:
                existing = conn.execute(sa.select(executions.c.id).where(executions.c.machine_name == machine,
                                                                           executions.c.name == name)).first()
                if existing is not None:  # AWS allows it; statemill keeps execution names unique per machine
                    raise ExecutionAlreadyExists(f"execution {name!r} of {machine!r} already exists; statemill "
                                                 "keeps names unique for EXPRESS machines too: choose another name")
            timeout = compiled.timeout_seconds
            if express:
                timeout = min(timeout or EXPRESS_TIMEOUT, EXPRESS_TIMEOUT)
            deadline = now + timeout if timeout else None
            execution_id = conn.execute(executions.insert().values(
                **execution_row(target, machine, name, arn, value, now, deadline),
                **(parent.columns(conn) if parent is not None else {}))).inserted_primary_key[0]
            started_on = self._started_on(machine, target.version, target.alias)
            conn.execute(history_events.insert().values(
                **started_event(execution_id, value, now, self._role_of(conn, machine_id), started_on)))
            conn.execute(frames.insert().values(**root_frame(execution_id, compiled, value, now)))
            if mocks is not None:
                from .mocks import store
                mocks.check(compiled)
                store(conn, execution_id, mocks)
            notify(conn)
        return {"executionArn": arn, "startDate": iso(now)}

    def _started_on(self, machine: str, version: int | None, alias: str | None) -> dict:
        """stateMachineVersionArn and stateMachineAliasArn of an execution started on a version or alias."""
        found = {}
        if alias is not None:
            found["stateMachineAliasArn"] = f"{self.machine_arn(machine)}:{alias}"
        if version is not None:
            found["stateMachineVersionArn"] = f"{self.machine_arn(machine)}:{version}"
        return found

    @property
    def role_arn(self) -> str:
        """The execution role ARN the context object shows (``$$.Execution.RoleArn``); nothing assumes it."""
        return f"arn:aws:iam::{self.account}:role/statemill-sfn-role"

    def _role_of(self, conn, revision_id: int) -> str:
        """The role ARN a revision runs with (its machine's roleArn; the default role without one)."""
        return machines.settings_of(conn, revision_id).role_arn or self.role_arn

    def execution_info(self, execution_id: int) -> ExecutionInfo:
        """What ``$$.Execution`` shows; it changes only on a redrive (which forgets it), so it is read once per run of
        an execution (bounded cache)."""
        found = self._infos.get(execution_id)
        if found is None:
            with self.reader.connect() as conn:
                row = conn.execute(sa.select(executions).where(executions.c.id == execution_id)).one()
                role = self._role_of(conn, row.machine_id)
            found = ExecutionInfo(row.arn, row.name, row.input, row.started_at, self.machine_arn(row.machine_name),
                                  row.machine_name, role, row.machine_id, row.redrive_count or 0, row.redrive_date)
            if len(self._infos) >= 1_000:  # executions in flight; parked and finished ones are forgotten
                self._infos.pop(next(iter(self._infos)))
            self._infos[execution_id] = found
        return found

    def forget(self, execution_id: int) -> None:
        """Drop what this process cached about an execution (it finished, or waits on the outside world)."""
        self._infos.pop(execution_id, None)

    def _execution(self, conn, arn: str):
        row = conn.execute(sa.select(executions).where(executions.c.arn == arn)).first()
        if row is None:
            raise ExecutionDoesNotExist(f"no execution has the ARN {arn!r}")
        return row

    def _describe_row(self, row) -> dict:
        result = {"executionArn": row.arn, "stateMachineArn": self.machine_arn(row.machine_name), "name": row.name,
                  "status": row.status, "startDate": iso(row.started_at), "input": row.input,
                  **self._started_on(row.machine_name, row.version, row.alias)}
        if row.stopped_at is not None:
            result["stopDate"] = iso(row.stopped_at)
        if row.status == "SUCCEEDED":
            result["output"] = row.output
        for key in ("error", "cause"):
            if getattr(row, key) is not None:
                result[key] = getattr(row, key)
        if row.redrive_count:
            result.update(redriveCount=row.redrive_count, redriveDate=iso(row.redrive_date))
        return result

    def describe(self, arn: str) -> dict:
        """DescribeExecution: status, input, output (JSON values), error, cause, dates; a Distributed Map's child
        execution also its ``mapRunArn``."""
        with self.reader.connect() as conn:
            row = self._execution(conn, arn)
            found = self._describe_row(row)
            if row.map_run_id is not None:
                from .store.schema import map_runs
                found["mapRunArn"] = conn.execute(sa.select(map_runs.c.arn)
                                                  .where(map_runs.c.id == row.map_run_id)).scalar()
            return found

    def redrive(self, arn: str) -> dict:
        """RedriveExecution: restart a FAILED, TIMED_OUT or ABORTED execution from the state that did not succeed
        (engine/redrive.py); ``{"redriveDate"}``. ExecutionNotRedrivable says why one cannot be."""
        from .redrive import redrive
        return redrive(self, arn)

    def links(self, arn: str) -> dict:
        """statemill's describe extras for child workflows: ``parentExecutionArn`` and ``childExecutionArns``."""
        from .children import links
        with self.reader.connect() as conn:
            self._execution(conn, arn)
            return links(conn, arn)

    def list(self, machine: str | None = None, status: str | None = None, limit: int = 100,
             parent: str | None = None, map_run: str | None = None) -> list[dict]:
        """ListExecutions, newest first; ``parent``: only the child workflows that execution ARN started;
        ``map_run``: only the child executions of that Distributed Map run, in item order."""
        return self.list_page(machine, status, limit, parent=parent, map_run=map_run)[0]

    # -- Distributed Map runs (engine/map_runs.py)
    def describe_map_run(self, arn: str) -> dict:
        """DescribeMapRun: status, MaxConcurrency, tolerated failures, item and execution counts."""
        from . import map_runs
        with self.reader.connect() as conn:
            return map_runs.describe(conn, arn)

    def list_map_runs(self, execution_arn: str) -> list[dict]:
        """ListMapRuns: the map runs the execution started, newest first."""
        from . import map_runs
        with self.reader.connect() as conn:
            return map_runs.of_execution(conn, self._execution(conn, execution_arn).id, self.machine_arn)

    def update_map_run(self, arn: str, max_concurrency: int | None = None, tolerated_failure_count: int | None = None,
                       tolerated_failure_percentage: float | None = None) -> None:
        """UpdateMapRun: change a running map run's MaxConcurrency and tolerated failures."""
        from . import map_runs
        with self.db.begin() as conn:
            map_runs.update(conn, arn, max_concurrency, tolerated_failure_count, tolerated_failure_percentage)

    def list_page(self, machine: str | None = None, status: str | None = None, limit: int = 100,
                  after: tuple[float, int] | None = None, express: bool = True, qualifier: str | None = None,
                  parent: str | None = None, redriven: bool | None = None,
                  map_run: str | None = None) -> tuple[list[dict], tuple | None]:
        """One page of ListExecutions, newest first: at most ``limit`` executions that come after the key
        ``after``, and the key of the last one when more may follow (else None). A key is (start time, id), so
        the pages stay in place while new executions start. ``express=False`` leaves EXPRESS executions out;
        ``qualifier`` (a version number or alias name) keeps those started on it."""
        query = sa.select(executions).order_by(executions.c.started_at.desc(), executions.c.id.desc())\
            .limit(limit + 1)
        if machine:
            query = query.where(machines.executions_of(machine))
        if status:
            query = query.where(executions.c.status == status)
        if qualifier is not None:
            query = query.where(versions.started_on(int(qualifier), None) if versions.is_version(qualifier)
                                else versions.started_on(None, qualifier))
        if redriven is not None:  # ListExecutions' redriveFilter
            query = query.where(executions.c.redrive_count > 0 if redriven else
                                sa.func.coalesce(executions.c.redrive_count, 0) == 0)
        if parent:
            parents = sa.select(executions.c.id).where(executions.c.arn == parent).scalar_subquery()
            query = query.where(executions.c.parent_id == parents)
        if map_run:
            from .store.schema import map_runs
            run = sa.select(map_runs.c.id).where(map_runs.c.arn == map_run).scalar_subquery()
            query = query.where(executions.c.map_run_id == run)
        if not express:
            query = query.where(executions.c.arn.not_like("%:express:%"))
        if after is not None:
            started, last_id = after
            query = query.where(sa.or_(executions.c.started_at < started,
                                       sa.and_(executions.c.started_at == started, executions.c.id < last_id)))
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        more, rows = len(rows) > limit, rows[:limit]
        items = [{k: v for k, v in self._describe_row(r).items() if k not in ("input", "output", "error", "cause")}
                 for r in rows]
        if map_run:
            for item, row in zip(items, rows):
                item["itemCount"] = row.map_items

        return items, ((rows[-1].started_at, rows[-1].id) if more else None)

    def history(self, arn: str, reverse: bool = False) -> list[dict]:
        """GetExecutionHistory's events: id, previousEventId, type, timestamp and the typed details."""
        return self.history_page(arn, reverse)

    def history_page(self, arn: str, reverse: bool = False, limit: int | None = None, after: int | None = None)\
            -> list[dict]:
        """At most ``limit`` events of the history of ``arn`` that come after event id ``after`` (in the order
        asked for). Event ids never change, so the pages of a running execution stay in place."""
        with self.reader.connect() as conn:
            execution = self._execution(conn, arn)
            order = history_events.c.id.desc() if reverse else history_events.c.id
            query = sa.select(history_events).where(history_events.c.execution_id == execution.id).order_by(order)
            if after is not None:
                query = query.where(history_events.c.id < after if reverse else history_events.c.id > after)
            rows = conn.execute(query if limit is None else query.limit(limit)).all()
        from .history import Event
        events = []
        for row in rows:
            event = {"timestamp": iso(row.timestamp), "type": row.type, "id": row.id,
                     "previousEventId": row.previous_event_id}
            if row.details is not None:  # an ExecutionFailed without error or cause still has its {} (as AWS)
                event[Event(row.type).details_key()] = row.details
            events.append(event)
        return events

    def execution_id(self, arn: str) -> int:
        """The database id of the execution ``arn``; ExecutionDoesNotExist when there is none."""
        with self.reader.connect() as conn:
            return self._execution(conn, arn).id

    def status(self, arn: str) -> str:
        with self.reader.connect() as conn:
            return self._execution(conn, arn).status

    def stop(self, arn: str, error: str | None = None, cause: str | None = None) -> dict:
        """StopExecution: the execution becomes ABORTED; its frames and outstanding task tokens are cancelled.
        As on AWS, stopping an execution that has already closed changes nothing (its own stopDate is returned)."""
        now = self.clock.now()
        with self.db.begin() as conn:
            row = self._execution(conn, arn)
            if not end_execution(conn, row.id, "ABORTED", "ExecutionAborted", error, cause, now,
                                 self.machine(row.machine_id)):
                return {"stopDate": iso(self._execution(conn, arn).stopped_at)}
            notify(conn)  # a `statemill run` driving it returns at once
        return {"stopDate": iso(now)}

    def prune(self, older_than_seconds: float) -> int:
        """Delete executions that closed more than ``older_than_seconds`` ago, with their history, frames and
        tokens; returns how many. Running executions are never touched."""
        cutoff = self.clock.now() - older_than_seconds
        with self.db.begin() as conn:
            ids = conn.execute(sa.select(executions.c.id).where(executions.c.status != "RUNNING",
                                                                executions.c.stopped_at < cutoff)).scalars().all()
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for table in (history_events, task_tokens, frames, execution_mocks, mocked_states):
                    conn.execute(table.delete().where(table.c.execution_id.in_(chunk)))
                conn.execute(executions.delete().where(executions.c.id.in_(chunk)))
        return len(ids)

    def workers(self) -> list[dict]:
        """Workers with a recent heartbeat, what each serves (``handlerKeys``; a ``run`` drives only its
        ``executionArn``) and the frames each holds a live lease on."""
        now = self.clock.now()
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(workers, executions.c.arn).outerjoin(
                executions, executions.c.id == workers.c.execution_id).order_by(workers.c.started_at)).all()
            held = conn.execute(sa.select(frames.c.lease_owner, sa.func.count())
                                .where(frames.c.lease_owner.is_not(None), frames.c.lease_until > now)
                                .group_by(frames.c.lease_owner)).all()
        counts = dict(held)
        found = []
        for r in rows:
            worker = {"workerId": r.id, "host": r.host, "pid": r.pid, "startDate": iso(r.started_at),
                      "lastHeartbeat": iso(r.last_heartbeat), "secondsSinceHeartbeat": round(now - r.last_heartbeat, 1),
                      "framesHeld": counts.get(r.id, 0), "handlerKeys": r.handler_keys}
            if r.arn is not None:
                worker["executionArn"] = r.arn
            found.append(worker)
        return found

    def waiting_for_workers(self, arn: str) -> list[dict]:
        """The tasks of execution ``arn`` waiting for a worker to run them: the state, its resource, the handler
        key a worker must serve, since when, the TimeoutSeconds deadline, and how many live workers serve the key
        (0: none will run it until one starts)."""
        now = self.clock.now()
        with self.reader.connect() as conn:
            execution = self._execution(conn, arn)
            rows = conn.execute(sa.select(frames.c.state, frames.c.handler_key, frames.c.run_at,
                                          frames.c.task_deadline)
                                .where(frames.c.execution_id == execution.id, frames.c.status == "ACTIVE",
                                       frames.c.handler_key.is_not(None),
                                       sa.or_(frames.c.lease_until.is_(None), frames.c.lease_until < now))
                                .order_by(frames.c.run_at, frames.c.id)).all()
            served = conn.execute(sa.select(workers.c.handler_keys).where(workers.c.execution_id.is_(None))
                                  ).scalars().all() if rows else []
        machine = self.machine(execution.machine_id) if rows else None
        return [{"stateName": r.state, "resource": machine.state(r.state).raw["Resource"], "handlerKey": r.handler_key,
                 "since": iso(r.run_at), "timeoutDate": iso(r.task_deadline) if r.task_deadline else None,
                 "liveWorkersServing": sum(r.handler_key in (keys or ()) for keys in served)} for r in rows]

    def pending_tokens(self, arn: str | None = None) -> list[dict]:
        query = (sa.select(task_tokens, executions.c.arn).join(executions)
                 .where(task_tokens.c.status == "PENDING").order_by(task_tokens.c.created_at))
        if arn:
            query = query.where(executions.c.arn == arn)
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        return [{"taskToken": r.token, "executionArn": r.arn, "stateName": r.state, "createdAt": iso(r.created_at),
                 "heartbeatDeadline": iso(r.heartbeat_deadline) if r.heartbeat_deadline else None} for r in rows]

    # -- task tokens (the work is in engine/tokens.py)
    def send_task_success(self, token: str, output: Any) -> dict:
        """SendTaskSuccess: ``output`` (JSON text, or a JSON-able value) becomes the waiting task's result."""
        from .tokens import send_task_success
        return send_task_success(self, token, output)

    def send_task_failure(self, token: str, error: str | None = None, cause: str | None = None) -> dict:
        """SendTaskFailure: the waiting task fails with ``error``/``cause`` (both may be None), then Retry/Catch."""
        from .tokens import send_task_failure
        return send_task_failure(self, token, error, cause)

    def send_task_heartbeat(self, token: str) -> dict:
        """SendTaskHeartbeat: restart the task's HeartbeatSeconds clock (never its TimeoutSeconds)."""
        from .tokens import send_task_heartbeat
        return send_task_heartbeat(self, token)


# The rows that start an execution (Client.start, and engine/bulk.py's start_many a batch at a time).
def execution_row(target, machine: str, name: str, arn: str, value: Any, now: float, deadline: float | None) -> dict:
    """The executions row of a new RUNNING execution of ``target`` (a versions.target: revision, version, alias)."""
    return {"machine_id": target.revision_id, "machine_name": machine, "name": name, "arn": arn, "status": "RUNNING",
            "input": value, "started_at": now, "deadline_at": deadline, "event_count": 1, "version": target.version,
            "alias": target.alias}


def started_event(execution_id: int, value: Any, now: float, role: str, started_on: dict) -> dict:
    """Its ExecutionStarted history event (event id 1)."""
    return {"execution_id": execution_id, "id": 1, "previous_event_id": 0, "frame_id": None,
            "type": "ExecutionStarted", "timestamp": now,
            "details": {"input": dumps(value), "inputDetails": {"truncated": False}, "roleArn": role, **started_on}}


def root_frame(execution_id: int, compiled, value: Any, now: float) -> dict:
    """Its root frame, runnable at once at the machine's StartAt."""
    return {"execution_id": execution_id, "parent_id": None, "idx": 0, "status": "ACTIVE", "version": 0,
            "state": compiled.start_at, "phase": "enter", "input": value, "data": {}, "run_at": now,
            "last_event_id": 0, "pending": 0}
