"""The pure interpreter: ``advance(machine, frame, trigger, env) -> Transition``.

A frame is one thread of an execution (the root, a Parallel branch, a Map iteration) positioned at a state and a
phase. Given what just happened (the frame became runnable, a task returned or failed, children joined), ``advance``
returns the history events to append, the frame's next position and the work to do next. No I/O, threads or sleeps:
the runtime persists the transition in one transaction and carries out its effects.

Phases: ``enter`` (about to enter ``state``), ``task`` (the handler must run), ``retry`` (backoff timer before the
next attempt), ``wait`` (a Wait state's timer), ``join`` (children running), ``callback`` (waiting for a task token).
"""
from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from . import errors as E
from . import history as h
from . import model as m
from .choice import parse_timestamp
from .clock import iso
from .errors import StatesError
from .jsonata import QueryEvaluationError, type_name
from .jsonvalue import DEFAULT_PAYLOAD_LIMIT  # defined there, so that light modules need not import this one
from .paths import MISSING
from .scope import Scope

VARIABLE_LIMIT = 256 * 1024  # AWS: 256 KiB per variable and per Assign
MAX_WAIT_SECONDS = 2**31 - 1  # AWS refuses longer waits ("Wait state delay is too long.")
# Errors raised while a state processes its data get AWS's "An error occurred while executing the state ..." prefix.
_PREFIXED = frozenset({E.RUNTIME, E.QUERY_EVALUATION_ERROR, E.INTRINSIC_FAILURE})
_UNCATCHABLE = frozenset({E.RUNTIME})


# ----------------------------------------------------------------------------------------------- inputs/outputs
@dataclass(frozen=True, slots=True)
class Frame:
    """Where a frame stands: state name, phase, the state's raw input, and phase data (JSON-able dict)."""

    state: str
    phase: str = "enter"
    input: Any = None
    data: dict = field(default_factory=dict)
    # ``input``'s JSON text when the step that made the frame had it (the previous state's output): the next step's
    # ``…StateEntered`` and the frame's row reuse it instead of encoding the same value again.
    text: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """What the context object ``$$`` says about the execution."""

    arn: str
    name: str
    input: Any
    start_time: float
    machine_arn: str
    machine_name: str
    role_arn: str = ""
    machine_id: int = 0  # the stored definition revision the execution pinned
    redrive_count: int = 0  # $$.Execution.RedriveCount, and RedriveTime once it was redriven
    redrive_time: float | None = None


@dataclass(frozen=True, slots=True)
class Env:
    now: float
    next_event_id: int  # the id the first event of this transition will get
    execution: ExecutionInfo
    is_root: bool = True
    payload_limit: int = DEFAULT_PAYLOAD_LIMIT
    rng: random.Random | None = None
    task_token: str | None = None  # the token a callback task will hand out, issued by the runtime
    activity_exists: Callable[[str], bool] | None = None  # whether an activity ARN exists now (None: not checked)


@dataclass(frozen=True, slots=True)
class Trigger:
    """What happened: ``step`` (runnable), ``result``, ``error``, ``timeout``, ``joined`` or ``join_failed``."""

    kind: str = "step"
    value: Any = None
    error: str | None = None
    cause: str | None = None
    started_at: float | None = None  # when the handler started: the time of the TaskStarted event


STEP = Trigger()


@dataclass(frozen=True, slots=True)
class TaskRequest:
    resource: str
    input: Any
    timeout_at: float | None
    heartbeat_seconds: int | None
    attempt: int


@dataclass(frozen=True, slots=True)
class Child:
    """A frame to start: ``branch`` runs from its StartAt with ``input``; ``data`` seeds its phase data."""

    branch: m.StateMachine
    input: Any
    data: dict


@dataclass(frozen=True, slots=True)
class FanOut:
    children: tuple[Child, ...]
    max_concurrency: int = 0  # 0 = all at once


@dataclass(frozen=True, slots=True)
class MapRunRequest:
    """A Distributed Map's run to create (engine/map_runs.py): its ARN and settings as the state evaluated them.
    ``items`` is the state's item array when it has no ItemReader; ``reader``, ``batcher`` and ``writer`` the
    evaluated ItemReader, ItemBatcher and ResultWriter (None when absent)."""

    arn: str
    label: str
    execution_type: str
    max_concurrency: int
    tolerated_count: int | None
    tolerated_percentage: float | None
    items: list | None
    reader: dict | None
    batcher: dict | None
    writer: dict | None


@dataclass
class Transition:
    events: list[h.Event] = field(default_factory=list)
    frame: Frame | None = None  # None once the frame has finished
    run_at: float | None = None  # when the frame is runnable again; None while waiting on something external
    task: TaskRequest | None = None
    fan_out: FanOut | None = None
    map_run: MapRunRequest | None = None
    status: str = "RUNNING"  # RUNNING, or SUCCEEDED / FAILED for the frame
    output: Any = None
    error: str | None = None
    cause: str | None = None
    last_event_id: int = 0  # set by the runtime once the events have ids
    handler_key: str | None = None  # set by the runtime: the key of the task the frame is about to run
    leased: bool = False  # set by the runtime: the committer kept the frame's lease to go on with it at once
    claimed: Any = None  # set by the runtime: another frame the committer leased to go on with (runtime.Claimed)
    cites_event_ids: bool = False  # an event id went into a text (a cause, a map run's id): its value is final


# ----------------------------------------------------------------------------------------------- entry point
def advance(machine: m.StateMachine, frame: Frame, trigger: Trigger, env: Env) -> Transition:
    """Run one transition of ``frame``. Never raises StatesError: failures become events and a failed frame."""
    return _Step(machine, frame, env).run(trigger)


class _Step:
    def __init__(self, machine: m.StateMachine, frame: Frame, env: Env):
        self.machine = machine
        self.frame = frame
        self.env = env
        self.state = machine.state(frame.state)
        self.data = dict(frame.data)
        self.t = Transition()
        self.catching = False  # set while a catcher is applied, so that its own failure is not caught again
        self.sized: tuple[Any, str] | None = None  # the value check_size last measured, and its JSON text
        self.entered_at: float | None = None  # when the state was entered in this step (formatted when needed)

    # -- bookkeeping
    def emit(self, event: h.Event) -> int:
        self.t.events.append(event)
        return self.env.next_event_id + len(self.t.events) - 1

    def context(self, token: str | None = None, item: dict | None = None) -> dict:
        info = self.env.execution
        ctx = {
            "Execution": {"Id": info.arn, "Input": info.input, "StartTime": iso(info.start_time), "Name": info.name,
                          "RoleArn": info.role_arn, "RedriveCount": info.redrive_count},
            "StateMachine": {"Id": info.machine_arn, "Name": info.machine_name},
            "State": {"Name": self.state.name, "EnteredTime": self.data.get("entered_time") or iso(
                self.env.now if self.entered_at is None else self.entered_at)},
        }
        if info.redrive_time is not None:
            ctx["Execution"]["RedriveTime"] = iso(info.redrive_time)
        if isinstance(self.state, (m.TaskState, m.ParallelState, m.MapState)):
            ctx["State"]["RetryCount"] = self.data.get("attempt", 0)
        if token is not None:
            ctx["Task"] = {"Token": token}
        if item is not None:
            ctx["Map"] = {"Item": item}
        return ctx

    def scope(self, value: Any, *, result: Any = MISSING, error_output: Any = MISSING, **ctx: Any) -> Scope:
        return Scope(value, None, self.data.get("variables") or {}, self.state.name,
                     make_context=lambda: self.context(**ctx), result=result, error_output=error_output)

    @property
    def jsonata(self) -> bool:
        return self.state.query_language == "JSONata"

    def field(self, name: str, scope: Scope, default: Any = MISSING) -> Any:
        """A JSONata field of the state evaluated in ``scope``, or ``default`` when the state has none."""
        template = self.state.jsonata.get(name)
        return default if template is None else template.evaluate(scope)

    def assigned(self, assign: Any, scope: Scope) -> dict | None:
        """The values an ``Assign`` gives, all computed from the variables as they were on entering the state."""
        if assign is None:
            return None
        values = assign.evaluate(scope)
        total = 0
        for name, value in values.items():
            size = len(h.dumps(value).encode("utf-8"))
            if size > VARIABLE_LIMIT:
                raise StatesError(E.DATA_LIMIT_EXCEEDED, f"The variable '{name}' in state '{self.state.name}' has "
                                                         "a size exceeding the maximum number of bytes service limit.")
            total += size
        if total > VARIABLE_LIMIT:
            raise StatesError(E.DATA_LIMIT_EXCEEDED, f"The Assign field of state '{self.state.name}' has a size "
                                                     "exceeding the maximum number of bytes service limit.")
        return values

    def child_data(self) -> dict:
        """What a branch or iteration starts with: the variables it can read (a distributed Map's cannot)."""
        variables = self.data.get("variables")
        if not variables or getattr(self.state, "mode", "INLINE") == "DISTRIBUTED":
            return {}
        return {"variables": dict(variables)}

    def text_of(self, value: Any) -> str:
        """``value``'s JSON text, reusing the one check_size made when it measured this very value."""
        sized = self.sized
        return sized[1] if sized is not None and sized[0] is value else h.dumps(value)

    def check_size(self, value: Any, who: str | None = None) -> None:
        """States.DataLimitExceeded when ``value`` is over the payload limit; AWS names the state, or for a task
        result the resource (the service for an integration, the function ARN for a legacy Lambda)."""
        text = h.dumps(value)
        self.sized = (value, text)
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        if size > self.env.payload_limit:
            raise StatesError(E.DATA_LIMIT_EXCEEDED,
                              f"The state/task '{who or self.state.name}' returned a result with a size exceeding "
                              "the maximum number of bytes service limit.")

    # -- the step
    def run(self, trigger: Trigger) -> Transition:
        try:
            if self.frame.phase == "enter":
                self.enter()
            elif trigger.kind in ("error", "timeout", "join_failed"):
                self.fail_attempt(trigger)
            elif self.frame.phase == "task" and trigger.kind == "submitted":
                self.submitted(trigger.value)
            elif self.frame.phase == "task":
                self.task_result(trigger.value)
            elif self.frame.phase == "retry":
                self.retry_fired()
            elif self.frame.phase == "wait":
                self.leave_wait()
            elif self.frame.phase == "join":
                self.joined(trigger.value)
            elif self.frame.phase == "callback" and trigger.kind == "rearm":
                self.rearm(trigger.value)
            elif self.frame.phase == "callback":
                self.task_result(trigger.value)
            else:
                raise AssertionError(f"unknown phase {self.frame.phase!r}")
        except StatesError as exc:
            self.state_failed(exc)
        if self.entered_at is not None and "entered_time" not in self.data and self.t.frame is not None and \
                self.t.frame.data is self.data:  # the frame stays in this state: keep when it entered it
            self.data["entered_time"] = iso(self.entered_at)
        return self.t

    def enter(self) -> None:
        state, raw = self.state, self.frame.input
        iteration = self.data.get("iteration")
        if iteration is not None and not self.data.get("iteration_started"):
            self.emit(h.Event("MapIterationStarted", dict(iteration)))
            self.data["iteration_started"] = True
        self.data.pop("entered_time", None)
        self.entered_at = self.env.now
        self.data.update(attempt=0, retries=[])
        self.data["entered_id"] = self.emit(h.entered(state.type, state.name, raw, self.frame.text))
        _ENTER[state.type](self, state, raw)

    def effective_input(self, state: m.State, raw: Any) -> Any:
        path = state.input_path
        if path is None:
            return raw if state.query_language == "JSONata" else {}
        return raw if path.whole or state.query_language == "JSONata" else path.resolve(self.scope(raw))

    def output(self, value: Any) -> Any:
        path = self.state.output_path
        out = {} if path is None else value if path.whole else path.resolve(self.scope(value))
        self.check_size(out)
        return out

    def apply_result(self, result: Any) -> Any:
        """ResultPath then OutputPath: the state's output from its raw input and its result."""
        raw = self.frame.input
        combined = raw if self.state.result_path is None else self.state.result_path.assign(raw, result)
        return self.output(combined)

    def exit(self, output: Any, next_state: str | None = None, assigned: dict | None = None) -> None:
        state = self.state
        if assigned is not None:
            self.data["variables"] = {**(self.data.get("variables") or {}), **assigned}
        text = self.text_of(output)
        self.emit(h.exited(state.type, state.name, output, assigned, text))
        target = next_state or state.next
        if target is None or (state.end and next_state is None):
            self.finish(output)
        else:
            self.goto(target, output, text)

    def goto(self, target: str, value: Any, text: str | None = None) -> None:
        keep = {k: self.data[k] for k in ("iteration", "iteration_started", "variables") if k in self.data}
        self.t.frame = Frame(target, "enter", value, keep, text)
        self.t.run_at = self.env.now

    def finish(self, output: Any) -> None:
        iteration = self.data.get("iteration")
        if iteration is not None:
            self.emit(h.Event("MapIterationSucceeded", dict(iteration)))
        if self.env.is_root:
            self.emit(h.Event("ExecutionSucceeded", {"output": self.text_of(output),
                                                     "outputDetails": h.payload(output)}))
        self.t.frame, self.t.status, self.t.output = None, "SUCCEEDED", output

    def fail_frame(self, error: str | None, cause: str | None) -> None:
        iteration = self.data.get("iteration")
        if iteration is not None:
            self.emit(h.Event("MapIterationFailed", dict(iteration)))
        if self.env.is_root:
            details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
            self.emit(h.Event("ExecutionFailed", details))
        self.t.frame, self.t.status, self.t.error, self.t.cause = None, "FAILED", error, cause

    def state_failed(self, exc: StatesError) -> None:
        """A data-flow error inside the state (not a task failure): Task/Parallel/Map may still retry or catch.
        A JSONata evaluation failure is logged as ``EvaluationFailed`` first, and is catchable even on entry."""
        error, cause = exc.error, exc.cause
        if error in _PREFIXED:
            self.t.cites_event_ids = True
            cause = (f"An error occurred while executing the state '{self.state.name}' "
                     f"(entered at the event id #{self.data.get('entered_id', 0)}). {cause}")
        state = self.state
        if error == E.QUERY_EVALUATION_ERROR:
            details = {"error": error, "cause": cause, "state": state.name}
            if getattr(exc, "location", None):
                details["location"] = exc.location
            self.emit(h.Event("EvaluationFailed", details))
            if isinstance(state, (m.ParallelState, m.MapState)):
                self.emit(h.Event(f"{state.type}StateFailed"))
        catchable = isinstance(state, (m.TaskState, m.ParallelState, m.MapState)) and error not in _UNCATCHABLE \
            and (self.frame.phase != "enter" or error == E.QUERY_EVALUATION_ERROR) and not self.catching
        if catchable:
            self.catching = True
            try:
                self.handle_error(error, cause)
                return
            except StatesError as again:  # the catcher's own Output/Assign failed: the frame fails with that
                self.t.frame = None
                self.state_failed(again)
                return
        self.fail_frame(error, cause)

    # -- Pass, Choice, Succeed, Fail, Wait
    def enter_pass(self, state: m.PassState, raw: Any) -> None:
        if self.jsonata:
            self.leave(self.scope(raw), raw)
            return
        effective = self.effective_input(state, raw)
        if state.parameters is not None:
            effective = state.parameters.evaluate(self.scope(effective))
        result = effective if state.result is m.MISSING else state.result
        assigned = None if state.assign is None else self.assigned(state.assign, self.scope(result))
        self.exit(self.apply_result(result), assigned=assigned)

    def leave(self, scope: Scope, default: Any, next_state: str | None = None, assign: Any = MISSING,
              output: Any = MISSING) -> None:
        """Exit a JSONata state: its Assign and Output (or a Choice rule's) evaluated in ``scope``; the output
        defaults to ``default``."""
        assigned = self.assigned(self.state.assign if assign is MISSING else assign, scope)
        template = self.state.jsonata.get("Output") if output is MISSING else output
        value = default if template is None else template.evaluate(scope)
        self.check_size(value)
        self.exit(value, next_state, assigned)

    def enter_choice(self, state: m.ChoiceState, raw: Any) -> None:
        effective = self.effective_input(state, raw)
        scope = self.scope(effective)
        test = _condition if self.jsonata else (lambda branch, scope: branch.rule.matches(scope))
        branch = next((branch for branch in state.choices if test(branch, scope)), None)
        target = branch.next if branch is not None else state.default
        if target is None:
            raise StatesError(E.NO_CHOICE_MATCHED, f"No Matches! in state '{state.name}'")
        assign = branch.assign if branch is not None and branch.assign is not None else state.assign
        if self.jsonata:
            output = branch.output if branch is not None and branch.output is not None else MISSING
            self.leave(scope, raw, target, assign, output)
            return
        assigned = self.assigned(assign, scope)
        self.exit(self.output(effective), target, assigned)

    def enter_succeed(self, state: m.SucceedState, raw: Any) -> None:
        if self.jsonata:
            self.leave(self.scope(raw), raw)
            return
        self.exit(self.output(self.effective_input(state, raw)))

    def enter_fail(self, state: m.FailState, raw: Any) -> None:
        scope = self.scope(raw)
        if self.jsonata:
            self.fail_frame(*(_typed(state.jsonata.get(key), scope, "string", str) for key in ("Error", "Cause")))
            return
        error = _string_field(state.error_path, scope, "ErrorPath") if state.error_path is not None else state.error
        cause = _string_field(state.cause_path, scope, "CausePath") if state.cause_path is not None else state.cause
        self.fail_frame(error, cause)

    def leave_wait(self) -> None:
        effective = self.data["effective"]
        if self.jsonata:
            self.leave(self.scope(effective), effective)
            return
        self.exit(self.output(effective), assigned=self.assigned(self.state.assign, self.scope(effective)))

    def enter_wait(self, state: m.WaitState, raw: Any) -> None:
        effective = self.effective_input(state, raw)
        scope = self.scope(effective)
        seconds = _typed(state.jsonata.get("Seconds"), scope, "integer", int, minimum=0)
        stamp = _typed(state.jsonata.get("Timestamp"), scope, "string", str)
        if seconds is not None and seconds > 99_999_999:
            raise QueryEvaluationError("Wait state delay is too long.")
        if seconds is not None or stamp is not None:
            try:
                until = self.env.now + seconds if seconds is not None else _parse_timestamp(stamp, "The Timestamp field")
            except StatesError as exc:
                raise QueryEvaluationError(exc.cause) from None
        elif state.seconds is not None:
            until = self.env.now + state.seconds
        elif state.timestamp is not None:
            until = _parse_timestamp(state.timestamp, "The Timestamp field")
        elif state.seconds_path is not None:
            seconds = state.seconds_path.get(scope)
            if seconds is m.MISSING:
                raise StatesError(E.RUNTIME, f"The SecondsPath parameter does not reference an input value: "
                                             f"{state.seconds_path.text}")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds != int(seconds):
                raise StatesError(E.RUNTIME, f"The SecondsPath parameter cannot be parsed as a long value: "
                                             f"{state.seconds_path.text} == {_plain(seconds)}")
            if seconds < 0:
                raise StatesError(E.RUNTIME, f"The SecondsPath parameter references a negative value: "
                                             f"{state.seconds_path.text}")
            if seconds > 99_999_999:
                raise StatesError(E.RUNTIME, "Wait state delay is too long.")
            until = self.env.now + int(seconds)
        else:
            stamp = state.timestamp_path.get(scope)
            if stamp is m.MISSING:
                raise StatesError(E.RUNTIME, f"The TimestampPath parameter does not reference an input value: "
                                             f"{state.timestamp_path.text}")
            until = _parse_timestamp(stamp, "The TimestampPath parameter", state.timestamp_path.text)
        if until - self.env.now > MAX_WAIT_SECONDS:
            raise StatesError(E.RUNTIME, "Wait state delay is too long.")
        self.data["effective"] = effective
        self.t.frame = Frame(state.name, "wait", raw, self.data, self.frame.text)
        self.t.run_at = max(until, self.env.now)

    # -- Task
    def enter_task(self, state: m.TaskState, raw: Any) -> None:
        effective = self.effective_input(state, raw)
        self.data["effective"] = effective
        self.schedule_task()

    def schedule_task(self) -> None:
        state: m.TaskState = self.state  # type: ignore[assignment]
        effective = self.data["effective"]
        activity = h.is_activity(state.resource)  # its token goes to a poller, not into the input
        token = self.env.task_token if state.awaits_token or activity else None
        shown = token if state.wait_for_task_token and not activity else None  # $$.Task.Token: callbacks only
        value = effective
        if state.parameters is not None:
            value = state.parameters.evaluate(self.scope(effective, token=shown))
        value = self.field("Arguments", self.scope(effective, token=shown), value)
        self.check_size(value)
        timeout = state.timeout_seconds
        if state.timeout_seconds_path is not None:
            timeout = _positive_int(state.timeout_seconds_path, self.scope(effective), "TimeoutSecondsPath")
        heartbeat = state.heartbeat_seconds
        if state.heartbeat_seconds_path is not None:
            heartbeat = _positive_int(state.heartbeat_seconds_path, self.scope(effective), "HeartbeatSecondsPath")
        if state.jsonata:
            scope = self.scope(effective)
            timeout = _typed(state.jsonata.get("TimeoutSeconds"), scope, "integer", int, minimum=1) or timeout
            heartbeat = _typed(state.jsonata.get("HeartbeatSeconds"), scope, "integer", int, minimum=1) or heartbeat
        timeout_at = self.env.now + timeout if timeout else None
        if activity and self.env.activity_exists is not None and not self.env.activity_exists(state.resource):
            from .activities import schedule_failed
            event, error = schedule_failed(state.resource)
            self.emit(event)
            raise error
        self.emit(h.task_event("Scheduled", state.resource, parameters=self.text_of(value),
                               timeoutInSeconds=timeout, heartbeatInSeconds=heartbeat))
        self.data.update(task_input=value, timeout_at=timeout_at, heartbeat=heartbeat, token=token)
        if activity:
            # No handler runs it: the frame waits until a poller takes the task (GetActivityTask writes
            # ActivityStarted and starts the heartbeat clock) and answers, or TimeoutSeconds passes.
            self.data["activity"] = state.resource
            self.data.pop("heartbeat_at", None)
            self.await_callback()
            return
        self.t.frame = Frame(state.name, "task", self.frame.input, self.data, self.frame.text)
        self.t.run_at = self.env.now
        self.t.task = TaskRequest(state.resource, value, timeout_at, heartbeat, self.data.get("attempt", 0))

    def submitted(self, response: Any) -> None:
        """A callback task's handler handed its token out: wait for an answer, a heartbeat or a deadline."""
        state: m.TaskState = self.state  # type: ignore[assignment]
        self.emit(h.task_event("Started", state.resource))
        self.emit(h.task_event("Submitted", state.resource, output=h.dumps(response)))
        heartbeat = self.data.get("heartbeat")
        if heartbeat:
            self.data["heartbeat_at"] = self.env.now + heartbeat
        self.await_callback()

    def rearm(self, heartbeat_at: float | None) -> None:
        """A callback task woke before any of its deadlines passed (``heartbeat_at`` is the heartbeat deadline as
        the token now has it): wait again, without an event."""
        if heartbeat_at is not None:
            self.data["heartbeat_at"] = heartbeat_at
        self.await_callback()

    def await_callback(self) -> None:
        deadlines = [d for d in (self.data.get("timeout_at"), self.data.get("heartbeat_at")) if d is not None]
        self.t.frame = Frame(self.state.name, "callback", self.frame.input, self.data, self.frame.text)
        self.t.run_at = min(deadlines) if deadlines else None

    def task_result(self, result: Any) -> None:
        state: m.TaskState = self.state  # type: ignore[assignment]
        if self.frame.phase == "task" and not state.awaits_token:
            self.emit(h.task_event("Started", state.resource))
        try:
            self.check_size(result, h.result_owner(state.resource))
        except StatesError as exc:
            self.emit(h.task_event("Failed", state.resource, error=exc.error, cause=exc.cause))
            self.handle_error(exc.error, exc.cause)
            return
        self.emit(h.task_event("Succeeded", state.resource, output=self.text_of(result)))
        self.finish_result(result)

    def finish_result(self, result: Any) -> None:
        """A Task's, Parallel's or Map's result: Assign and Output (JSONata), or Assign then ResultSelector,
        ResultPath and OutputPath (JSONPath; Assign sees the raw result)."""
        state = self.state
        if self.jsonata:
            self.leave(self.scope(self.frame.input, result=result), result)
            return
        assigned = None if state.assign is None else self.assigned(state.assign, self.scope(result))
        selected = result
        if getattr(state, "result_selector", None) is not None:
            selected = state.result_selector.evaluate(self.scope(result))
        self.exit(self.apply_result(selected), assigned=assigned)

    def fail_attempt(self, trigger: Trigger) -> None:
        """A task failed or timed out, or a Parallel/Map child failed: record it, then Retry/Catch."""
        state = self.state
        if trigger.kind == "join_failed":
            if self.distributed():
                self.emit(h.Event("MapRunFailed", {k: v for k, v in (("error", trigger.error),
                                                                      ("cause", trigger.cause)) if v is not None}))
            # AWS writes ParallelStateFailed/MapStateFailed only once the state has failed for good: not for an
            # attempt it retries.
            self.handle_error(trigger.error, trigger.cause, h.Event(f"{state.type}StateFailed"))
            return
        if trigger.kind == "timeout":
            if self.frame.phase == "task":  # a callback task's handler failing: TaskStarted was not logged yet
                self.emit(h.task_event("Started", state.resource))
            self.emit(h.task_event("TimedOut", state.resource, error=trigger.error, cause=trigger.cause))
        else:
            if self.frame.phase == "task":
                self.emit(h.task_event("Started", state.resource))
            self.emit(h.task_event("Failed", state.resource, error=trigger.error, cause=trigger.cause))
        self.handle_error(trigger.error, trigger.cause)

    def handle_error(self, error: str | None, cause: str | None, failed: h.Event | None = None) -> None:
        """Retry, else Catch, else fail the frame; ``failed`` is written first unless the state is retried."""
        state = self.state
        retry: tuple[m.Retrier, ...] = getattr(state, "retry", ())
        catch: tuple[m.Catcher, ...] = getattr(state, "catch", ())
        if error in _UNCATCHABLE:
            retry = catch = ()
        counts = list(self.data.get("retries") or [0] * len(retry))
        counts += [0] * (len(retry) - len(counts))
        for i, retrier in enumerate(retry):
            if not error_matches(retrier.error_equals, error):
                continue
            if counts[i] < retrier.max_attempts:
                delay = retrier.interval_seconds * retrier.backoff_rate ** counts[i]
                if retrier.max_delay_seconds is not None:
                    delay = min(delay, retrier.max_delay_seconds)
                if retrier.jitter_strategy == "FULL":
                    delay = (self.env.rng or random).uniform(0, delay)
                counts[i] += 1
                self.data.update(retries=counts, attempt=self.data.get("attempt", 0) + 1)
                self.t.frame = Frame(state.name, "retry", self.frame.input, self.data, self.frame.text)
                self.t.run_at = self.env.now + delay
                return
            break
        if failed is not None:
            self.emit(failed)
        for catcher in catch:
            if error_matches(catcher.error_equals, error):
                if cause is None and error in (E.TIMEOUT, E.HEARTBEAT_TIMEOUT):
                    cause = ""  # AWS hands a caught timeout's catcher an empty cause, not null
                error_output = {"Error": error, "Cause": cause}
                raw = self.frame.input
                self.catching = True
                if self.jsonata:
                    scope = self.scope(raw, error_output=error_output)
                    assigned = self.assigned(catcher.assign, scope)
                    output = error_output if catcher.output is None else catcher.output.evaluate(scope)
                else:
                    assigned = self.assigned(catcher.assign, self.scope(error_output))
                    output = raw if catcher.result_path is None else catcher.result_path.assign(raw, error_output)
                self.check_size(output)
                self.exit(output, catcher.next, assigned)
                return
        self.fail_frame(error, cause)

    def retry_fired(self) -> None:
        if isinstance(self.state, m.TaskState):
            self.schedule_task()
        else:
            self.fan_out(self.state, self.data["effective"])

    # -- Parallel and Map
    def enter_parallel(self, state: m.ParallelState, raw: Any) -> None:
        effective = self.effective_input(state, raw)
        if state.parameters is not None:
            effective = state.parameters.evaluate(self.scope(effective))
        effective = self.field("Arguments", self.scope(effective), effective)
        self.data["effective"] = effective
        self.fan_out(state, effective)

    def enter_map(self, state: m.MapState, raw: Any) -> None:
        effective = self.effective_input(state, raw)
        self.data["effective"] = effective
        self.fan_out(state, effective)

    def fan_out(self, state: m.State, effective: Any) -> None:
        if isinstance(state, m.ParallelState):
            self.emit(h.Event("ParallelStateStarted"))
            children = tuple(Child(branch, effective, self.child_data()) for branch in state.branches)
            concurrency = 0
        elif self.distributed():
            self.start_map_run(state, effective)  # type: ignore[arg-type]
            return
        else:
            children, concurrency = self.map_children(state, effective)  # type: ignore[arg-type]
        if concurrency:
            self.data["concurrency"] = concurrency  # a redrive restarts the unfinished children within it
        self.t.frame = Frame(state.name, "join", self.frame.input, self.data, self.frame.text)
        self.t.run_at = None
        if not children:
            self.joined([])
            return
        self.t.fan_out = FanOut(children, concurrency)

    def map_items(self, state: m.MapState, scope: Scope, effective: Any) -> list:
        """The items of a Map without an ItemReader: its input, ItemsPath or (JSONata) Items, an array."""
        items = state.items_path.resolve(scope) if state.items_path is not None else effective
        if "Items" in state.jsonata:
            items = _typed(state.jsonata["Items"], scope, "array", list)
        if not isinstance(items, list):
            error = E.QUERY_EVALUATION_ERROR if self.jsonata else E.RUNTIME
            raise StatesError(error, f"Map state input must be an array but was: {_java_type(items)}")
        return items

    def max_concurrency(self, state: m.MapState, scope: Scope) -> int:
        concurrency = state.max_concurrency
        if "MaxConcurrency" in state.jsonata:
            concurrency = _typed(state.jsonata["MaxConcurrency"], scope, "integer", int, minimum=0)
        if state.max_concurrency_path is not None:
            value = state.max_concurrency_path.get(scope)
            if isinstance(value, str) and value.isdigit():  # AWS reads a numeric string as its number
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise StatesError(E.RUNTIME, f'The MaxConcurrencyPath field refers to value "{h.dumps(value)}" '
                                             "which is not a valid integer: "
                                             f"{state.max_concurrency_path.text}")
            concurrency = value
        return concurrency

    def map_children(self, state: m.MapState, effective: Any) -> tuple[tuple[Child, ...], int]:
        scope = self.scope(effective)
        items = self.map_items(state, scope, effective)
        concurrency = self.max_concurrency(state, scope)
        self.emit(h.Event("MapStateStarted", {"length": len(items)}))
        children = []
        selector = state.item_selector if state.item_selector is not None else state.jsonata.get("ItemSelector")
        inherited = self.child_data()
        for index, item in enumerate(items):
            value = item
            if selector is not None:
                value = selector.evaluate(self.scope(effective, item={"Index": index, "Value": item}))
            children.append(Child(state.processor, value,
                                  {"iteration": {"name": state.name, "index": index}, **inherited}))
        return tuple(children), concurrency

    def start_map_run(self, state: m.MapState, effective: Any) -> None:
        """A Distributed Map: evaluate its reader, batcher, writer and limits, and ask the runtime for a map run
        whose child executions run the items (engine/map_runs.py); the frame waits for the run to end."""
        scope = self.scope(effective)
        reader = self.config(state.reader, scope, {"ReaderConfig": {"MaxItems": "MaxItemsPath"}})
        items = None if reader is not None else self.map_items(state, scope, effective)
        batcher = self.config(state.batcher, scope, {"": {"MaxItemsPerBatch": "MaxItemsPerBatchPath",
                                                          "MaxInputBytesPerBatch": "MaxInputBytesPerBatchPath"}})
        writer = self.config(state.writer, scope, {})
        count = self.tolerated(state, scope, "ToleratedFailureCount", state.tolerated_failure_count, int)
        percentage = self.tolerated(state, scope, "ToleratedFailurePercentage", state.tolerated_failure_percentage,
                                    (int, float))
        if percentage is not None and not 0 <= percentage <= 100:
            raise StatesError(E.RUNTIME, "ToleratedFailurePercentage must be between 0 and 100, but was: "
                                         f"{h.dumps(percentage)}")
        concurrency = self.max_concurrency(state, scope)
        self.emit(h.Event("MapStateStarted", {"length": 0 if items is None else len(items)}))
        arn = self.map_run_arn()
        self.emit(h.Event("MapRunStarted", {"mapRunArn": arn}))
        self.data["map_run_arn"] = arn
        self.t.map_run = MapRunRequest(arn, state.label or state.name, state.execution_type, concurrency, count,
                                       percentage, items, reader, batcher, writer)
        self.t.frame = Frame(state.name, "join", self.frame.input, self.data)
        self.t.run_at = self.env.now  # at once: the runtime starts the first children

    def config(self, template: Any, scope: Scope, paths_of: dict) -> dict | None:
        """An evaluated ItemReader/ItemBatcher/ResultWriter: templates filled in, and each ``...Path`` field of
        ``paths_of`` ({object key ("" = the top): {field: path field}}) resolved into its field."""
        if template is None:
            return None
        value = template.evaluate(scope)
        if not isinstance(value, dict):
            return value
        for where, fields in paths_of.items():
            holder = value.get(where) if where else value
            if not isinstance(holder, dict):
                continue
            for field_name, path_field in fields.items():
                if isinstance(holder.get(path_field), str):
                    from .paths import compile_reference_path
                    path = compile_reference_path(holder.pop(path_field))
                    holder[field_name] = _positive_int(path, scope, path_field)
        return value

    def tolerated(self, state: m.MapState, scope: Scope, name: str, static: Any, kind: Any) -> Any:
        """ToleratedFailureCount/Percentage: the number given, its ``...Path`` from the input, or (JSONata) its
        expression; None when the state sets none."""
        if name in state.jsonata:
            return _typed(state.jsonata[name], scope, "number", kind if kind is int else (int, float), minimum=0)
        text = state.raw.get(f"{name}Path")
        if isinstance(text, str) and not self.jsonata:
            from .paths import compile_reference_path
            value = compile_reference_path(text).get(scope)
            if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
                raise StatesError(E.RUNTIME, f"The {name}Path field refers to value \"{h.dumps(value)}\" which is "
                                             f"not a valid {'integer' if kind is int else 'number'}: {text}")
            return value
        return static

    def item_input(self, index: int, item: Any) -> Any:
        """A Distributed Map item's child input: the item, or ItemSelector's value with ``$$.Map.Item``."""
        state: m.MapState = self.state  # type: ignore[assignment]
        selector = state.item_selector if state.item_selector is not None else state.jsonata.get("ItemSelector")
        if selector is None:
            return item
        return selector.evaluate(self.scope(self.data.get("effective"), item={"Index": index, "Value": item}))

    def distributed(self) -> bool:
        """A Distributed Map runs its items as child executions: its history shows a map run, not iterations."""
        return getattr(self.state, "mode", "INLINE") == "DISTRIBUTED"

    def map_run_arn(self) -> str:
        """``arn:…:mapRun:<machine>/<label or state>:<id>``, the id fixed by the execution and this event's id."""
        info = self.env.execution
        self.t.cites_event_ids = True
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{info.arn}#{self.env.next_event_id + len(self.t.events)}")
        label = getattr(self.state, "label", None) or self.state.name
        return f"{info.machine_arn.replace(':stateMachine:', ':mapRun:', 1)}/{label}:{run_id}"

    def joined(self, outputs: list) -> None:
        if self.distributed():
            self.emit(h.Event("MapRunSucceeded"))
        self.emit(h.Event(f"{self.state.type}StateSucceeded"))
        self.finish_result(outputs)


def item_inputs(machine: m.StateMachine, frame: Frame, env: Env):
    """For engine/map_runs.py: ``(index, item) -> child input`` for the Distributed Map ``frame`` waits in (raises
    StatesError when ItemSelector fails)."""
    return _Step(machine, frame, env).item_input


_ENTER = {kind: getattr(_Step, f"enter_{kind.lower()}")
          for kind in ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")}


# ----------------------------------------------------------------------------------------------- helpers
def error_matches(names: tuple[str, ...], error: str | None) -> bool:
    """ErrorEquals matching as AWS does it: States.ALL matches all but States.Runtime; States.TaskFailed all but
    timeouts; States.Timeout also matches a heartbeat timeout."""
    for name in names:
        if name == error:
            return True
        if name == E.ALL and error != E.RUNTIME:
            return True
        if name == E.TASK_FAILED and error not in (E.TIMEOUT, E.HEARTBEAT_TIMEOUT, E.RUNTIME):
            return True
        if name == E.TIMEOUT and error == E.HEARTBEAT_TIMEOUT:
            return True
    return False


def _string_field(expression: Any, scope: Scope, field: str) -> Any:
    if hasattr(expression, "resolve_field"):
        value = expression.resolve_field(scope, field)
    else:
        value = expression.evaluate(scope)
    if not isinstance(value, str):
        raise StatesError(E.RUNTIME, f"The {field} field must resolve to a string, but was: {h.dumps(value)}")
    return value


def _condition(branch: m.ChoiceBranch, scope: Scope) -> bool:
    """A JSONata Choice rule's Condition: a boolean, or an expression that must give one."""
    condition = branch.condition
    if isinstance(condition, bool):
        return condition
    value = condition.evaluate(scope)
    if not isinstance(value, bool):
        raise condition.unexpected("boolean", value)
    return value


def _typed(template: Any, scope: Scope, expected: str, kind: type, minimum: int | None = None) -> Any:
    """A JSONata field that must give a ``kind`` value (an integer at least ``minimum``); None when absent."""
    if template is None:
        return None
    value = template.evaluate(scope)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    wrong = isinstance(value, bool) or not isinstance(value, kind) or (minimum is not None and value < minimum)
    if wrong:
        expression = template.expression
        if expression is None:
            raise QueryEvaluationError(f"The field '{template.location}' must be a{'n' if expected[0] in 'ai' else ''}"
                                       f" {expected}, but was '{type_name(value)}' for value: {h.dumps(value)}",
                                       template.location)
        raise expression.unexpected(expected, value)
    return value


def _positive_int(path: Any, scope: Scope, field: str) -> int:
    value = path.get(scope)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        shown = path.text
        raise StatesError(E.RUNTIME, f"The {field} parameter does not reference a positive integer: {shown}")
    return value


def _parse_timestamp(value: Any, what: str, path_text: str | None = None) -> float:
    """Epoch seconds of an RFC 3339 timestamp, or States.Runtime with AWS's message."""
    nanoseconds = parse_timestamp(value) if isinstance(value, str) else None
    if nanoseconds is not None:
        return nanoseconds / 1e9
    if path_text is not None:
        raise StatesError(E.RUNTIME, f"{what} does not reference a valid ISO-8601 extended offset date-time "
                                     f"format string: {path_text} == {value}")
    raise StatesError(E.RUNTIME, f"{what} cannot be parsed as an ISO-8601 extended offset date-time format "
                                 f"string: {value}")


def _plain(value: Any) -> str:
    """A value as AWS prints it after ``==`` in Wait errors: strings bare, anything else as JSON."""
    return value if isinstance(value, str) else h.dumps(value)


def _java_type(value: Any) -> str:
    """How AWS prints a non-array Map input in its error message."""
    if isinstance(value, (dict, str)):
        return h.dumps(value) if isinstance(value, dict) else json.dumps(value)
    return h.dumps(value)

