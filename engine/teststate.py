"""TestState: run one state of a definition in memory and answer as AWS's TestState API does.

``test_state(request)`` takes the API's request (``definition``, ``stateName``, ``input``, ``inspectionLevel``,
``mock``, ``variables``, ``context``, ``stateConfiguration``; JSON values as JSON text, as on the wire) and returns
its response: ``output``, ``error``, ``cause``, ``nextState``, ``status`` (SUCCEEDED, FAILED, RETRIABLE or
CAUGHT_ERROR) and, at DEBUG and TRACE, ``inspectionData``. The state runs through the engine's own interpreter
(nothing is stored, no history is written); a Task calls its registered handler unless ``mock`` gives its result or
error. Parallel, Map, ``.sync`` and ``.waitForTaskToken`` states need a mock, as on AWS. The API server's TestState
action calls this function with the request body.
"""
from __future__ import annotations

import json
import time
from typing import Any, Mapping

from . import errors as E
from . import loader
from . import model as m
from .errors import StatemillError, StatesError
from .handlers import HandlerRegistry, TaskContext
from .interpreter import STEP, Env, ExecutionInfo, Frame, Trigger, _Step, error_matches
from .jsonvalue import load_strict, stored_form

LEVELS = ("INFO", "DEBUG", "TRACE")
MOCK_REQUIRED = (".sync", ".sync:2", ".waitForTaskToken")


class ValidationException(StatemillError):
    """A TestState request AWS would refuse (a field of the wrong shape, a mock where none is allowed...)."""


class InvalidDefinition(StatemillError):
    """TestState: the definition (or the state in it) does not compile; the loader's diagnostics follow."""


class InvalidExecutionInput(StatemillError):
    """TestState: the input, variables or context is not JSON of the right shape."""


def test_state(request: Mapping[str, Any], handlers: HandlerRegistry | None = None, *,
               region: str = "us-east-1", account: str = "000000000000", now: float | None = None) -> dict:
    """Run the TestState request ``request`` (AWS's field names) and return AWS's TestState response."""
    unknown = set(request) - {"definition", "stateName", "input", "inspectionLevel", "mock", "variables", "context",
                              "stateConfiguration", "revealSecrets", "roleArn"}
    if unknown:
        raise ValidationException(f"unknown TestState field(s): {', '.join(sorted(unknown))}")
    level = request.get("inspectionLevel") or "INFO"
    if level not in LEVELS:
        raise ValidationException(f"inspectionLevel must be one of {', '.join(LEVELS)}, not {level!r}")
    machine, name = _compile(request.get("definition"), request.get("stateName"))
    state = machine.state(name)
    raw = _json(request.get("input"), "input", default={})
    variables = _json(request.get("variables"), "variables", default=None)
    if variables is not None and not isinstance(variables, dict):
        raise InvalidExecutionInput("variables must be a JSON object of variable names to values")
    mock = _mock(request.get("mock"))
    context = _json(request.get("context"), "context", default=None)
    if context is not None and (mock is None or not isinstance(context, dict)):
        raise ValidationException("context (a JSON object) may only be given together with a mock")
    config = request.get("stateConfiguration") or {}
    _check_config(config, state, mock)
    if mock is None and (isinstance(state, (m.ParallelState, m.MapState)) or
                         (isinstance(state, m.TaskState) and state.resource.endswith(MOCK_REQUIRED))):
        raise ValidationException(f"testing a {_kind(state)} needs a mock (mock.result or mock.errorOutput)")
    probe = _Probe(machine, state, raw, variables, context, region, account, time.time() if now is None else now)
    return probe.run(mock, config, handlers or HandlerRegistry(), level)


# ------------------------------------------------------------------------------------------------ request parsing
def _compile(definition: Any, state_name: str | None) -> tuple[m.StateMachine, str]:
    if isinstance(definition, str):
        try:
            document = load_strict(definition) if definition.lstrip().startswith("{") else None
        except ValueError as exc:
            raise InvalidDefinition(f"the definition is not valid JSON: {exc}") from None
        if document is None:  # YAML text: the loader parses it (with located diagnostics)
            import yaml
            try:
                document = yaml.safe_load(definition)
            except yaml.YAMLError as exc:
                raise InvalidDefinition(f"the definition is neither JSON nor YAML: {exc}") from None
    elif isinstance(definition, Mapping):
        document = dict(definition)
    else:
        raise ValidationException("definition (the state's or the state machine's definition) is required")
    if not isinstance(document, dict):
        raise InvalidDefinition("the definition must be a JSON object: a state, or a state machine with stateName")
    if state_name is not None:
        if "States" not in document:
            raise InvalidDefinition("with stateName, the definition must be a whole state machine (StartAt, States)")
        machine = _load(document)
        if state_name not in machine.index:
            from .diagnostics import did_you_mean
            raise ValidationException(f"the state machine has no state named {state_name!r}"
                                      f"{did_you_mean(state_name, machine.index)}")
        return machine, state_name
    if "States" in document:
        raise ValidationException("the definition is a state machine: give stateName, the state to test")
    return _single(document), "TestState"


def _single(state: dict) -> m.StateMachine:
    """A one-state definition as a machine: its targets (Next, Choice rules, Default, Catch) become end states."""
    targets = [state.get("Next"), state.get("Default"), *(c.get("Next") for c in state.get("Choices") or ()
                                                          if isinstance(c, dict)),
               *(c.get("Next") for c in state.get("Catch") or () if isinstance(c, dict))]
    states = {t: {"Type": "Succeed"} for t in targets if isinstance(t, str)}
    states["TestState"] = state
    document = {"StartAt": "TestState", "States": states}
    if state.get("QueryLanguage") == "JSONata":
        document["QueryLanguage"] = "JSONata"
    return _load(document)


def _load(document: dict) -> m.StateMachine:
    try:
        return loader.load(document, name="<definition>")
    except E.DefinitionError as exc:
        problems = "; ".join(f"{d.pointer or '/'}: {d.message}" for d in exc.diagnostics if d.severity == "error")
        raise InvalidDefinition(problems) from None


def _json(text: Any, what: str, default: Any) -> Any:
    if text is None:
        return default
    if not isinstance(text, str):
        raise InvalidExecutionInput(f"{what} is JSON text (a string), not {type(text).__name__}")
    try:
        return load_strict(text)
    except ValueError as exc:
        raise InvalidExecutionInput(f"{what} is not valid JSON: {exc}") from None


def _mock(mock: Any) -> dict | None:
    """The mock as {"result": value} or {"error": ..., "cause": ...}; ValidationException when malformed."""
    if mock is None:
        return None
    if not isinstance(mock, Mapping) or set(mock) - {"result", "errorOutput", "fieldValidationMode"}:
        raise ValidationException("mock is an object with result (JSON text) or errorOutput ({error, cause}), and "
                                  "optionally fieldValidationMode")
    mode = mock.get("fieldValidationMode", "STRICT")
    if mode not in ("STRICT", "PRESENT", "NONE"):
        raise ValidationException(f"mock.fieldValidationMode must be STRICT, PRESENT or NONE, not {mode!r}")
    if ("result" in mock) == ("errorOutput" in mock):
        raise ValidationException("mock needs exactly one of result and errorOutput")
    if "result" in mock:
        if not isinstance(mock["result"], str):
            raise ValidationException("mock.result is the result as JSON text (a string)")
        try:
            return {"result": load_strict(mock["result"])}
        except ValueError as exc:
            raise ValidationException(f"mock.result is not valid JSON: {exc}") from None
    error = mock["errorOutput"]
    if not isinstance(error, Mapping) or not isinstance(error.get("error"), str) or \
            not isinstance(error.get("cause", ""), str) or set(error) - {"error", "cause"}:
        raise ValidationException("mock.errorOutput is an object with error (required) and cause, both strings")
    return {"error": error["error"], "cause": error.get("cause")}


def _check_config(config: Any, state: m.State, mock: dict | None) -> None:
    if not isinstance(config, Mapping):
        raise ValidationException("stateConfiguration must be an object")
    unknown = set(config) - {"retrierRetryCount", "errorCausedByState", "mapIterationFailureCount",
                             "mapItemReaderData"}
    if unknown:
        raise ValidationException(f"unknown stateConfiguration field(s): {', '.join(sorted(unknown))}")
    for key in ("retrierRetryCount", "mapIterationFailureCount"):
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValidationException(f"stateConfiguration.{key} must be an integer of at least 0")
    if config.get("retrierRetryCount") is not None and (mock is None or "error" not in mock):
        raise ValidationException("stateConfiguration.retrierRetryCount needs a mocked error (mock.errorOutput)")
    caused_by = config.get("errorCausedByState")
    if caused_by is not None:
        inner = _inner_states(state)
        if not isinstance(state, (m.ParallelState, m.MapState)) or caused_by not in inner:
            raise ValidationException("stateConfiguration.errorCausedByState names a state inside the tested "
                                      "Parallel or Map state")
        if mock is None or "error" not in mock:
            raise ValidationException("stateConfiguration.errorCausedByState needs a mocked error")
    if config.get("mapItemReaderData") is not None:
        raise ValidationException("stateConfiguration.mapItemReaderData: ItemReader is not supported by statemill")


def _inner_states(state: m.State) -> set[str]:
    """The names of every state inside a Parallel's branches or a Map's processor, nested ones included."""
    scopes = list(getattr(state, "branches", ())) + ([state.processor] if isinstance(state, m.MapState) else [])
    return {name for scope in scopes for name, inner in scope.states.items()
            for name in (name, *_inner_states(inner))}


def _kind(state: m.State) -> str:
    return f"{state.type} state" if not isinstance(state, m.TaskState) else f"Task with resource {state.resource}"


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------------------------------------ running it
class _Probe:
    """Drives one state through the interpreter, noting what TestState reports about each step."""

    def __init__(self, machine: m.StateMachine, state: m.State, raw: Any, variables: dict | None,
                 context: dict | None, region: str, account: str, now: float):
        self.machine, self.state, self.raw = machine, state, raw
        machine_arn = f"arn:aws:states:{region}:{account}:stateMachine:TestStateMachine"
        self.info = ExecutionInfo(f"arn:aws:states:{region}:{account}:execution:TestStateMachine:test-state",
                                  "test-state", raw, now, machine_arn, "TestStateMachine",
                                  f"arn:aws:iam::{account}:role/statemill-sfn-role")
        self.variables, self.context, self.now = variables, context, now
        self.inspection: dict[str, Any] = {"input": _text(raw)}
        self.details: dict[str, int] = {}

    def step(self, frame: Frame) -> _Step:
        env = Env(now=self.now, next_event_id=1, execution=self.info, task_token="test-state-token")
        step = _Step(self.machine, frame, env)
        if self.context is not None:
            base = step.context
            step.context = lambda *a, **k: _merged(base(*a, **k), self.context)  # type: ignore[method-assign]
        return step

    def advance(self, frame: Frame, trigger: Trigger):
        step = self.step(frame)
        return step, step.run(trigger)

    def run(self, mock: dict | None, config: Mapping[str, Any], handlers: HandlerRegistry, level: str) -> dict:
        state = self.state
        data = {"variables": dict(self.variables)} if self.variables else {}
        entering = Frame(state.name, "enter", self.raw, data)
        step, t = self.advance(entering, STEP)
        step = self.step(entering)  # inspection evaluates with the variables as they were on entry
        self.note_input(step, t)
        error: tuple[str | None, str | None] | None = None
        if t.frame is not None and t.frame.phase in ("task", "join"):
            trigger = self.answer(t, mock, handlers)
            if trigger.kind in ("error", "join_failed"):
                error = (trigger.error, trigger.cause)
                frame = self.preset_retries(t.frame, config.get("retrierRetryCount"), trigger.error)
            else:
                frame = t.frame
                self.note_result(step, trigger.value)
            step, t = self.advance(frame, trigger)
        elif t.frame is not None and t.frame.phase == "wait":  # TestState does not wait
            step, t = self.advance(t.frame, STEP)
        return self.response(t, error, level)

    def answer(self, t, mock: dict | None, handlers: HandlerRegistry) -> Trigger:
        join = t.frame.phase == "join"
        if mock is not None:
            if "error" in mock:
                return Trigger("join_failed" if join else "error", error=mock["error"], cause=mock["cause"])
            return Trigger("joined" if join else "result", mock["result"])
        return self.call(t.task, handlers)

    def call(self, task, handlers: HandlerRegistry) -> Trigger:
        """The Task's registered handler, as a worker calls it (Lambda shapes included)."""
        try:
            call = handlers.resolve(task.resource, task.input)
        except StatesError as exc:
            return Trigger("error", error=exc.error, cause=exc.cause)
        context = TaskContext(self.info.arn, self.info.name, self.state.name, 0, f"{self.info.arn}#test-state",
                              None, task.resource)
        try:
            result = call.handler(call.value, context, task.timeout_at and task.timeout_at - self.now)
        except Exception as exc:  # noqa: BLE001 - any handler failure becomes the state's error
            failure = call.error(exc)
            return Trigger("error", error=failure.error, cause=failure.cause)
        try:
            return Trigger("result", stored_form(call.shape(result)))
        except ValueError as exc:
            return Trigger("error", error="Runtime.MarshalError", cause=f"Unable to marshal response: {exc}")

    def preset_retries(self, frame: Frame, retried: int | None, error: str | None) -> Frame:
        """stateConfiguration.retrierRetryCount: the attempts the Retrier matching ``error`` has already used."""
        retry = getattr(self.state, "retry", ())
        if not retried or not retry:
            return frame
        counts = [0] * len(retry)
        index = next((i for i, r in enumerate(retry) if error_matches(r.error_equals, error)), None)
        if index is None:
            return frame
        counts[index] = retried
        return Frame(frame.state, frame.phase, frame.input, {**frame.data, "retries": counts, "attempt": retried})

    # -- inspection data
    def note_input(self, step: _Step, t) -> None:
        state, data = self.state, (t.frame.data if t.frame is not None else {})
        if state.query_language == "JSONata":
            if t.task is not None:
                self.inspection["afterArguments"] = _text(t.task.input)
            elif isinstance(state, m.ParallelState) and "effective" in data:
                self.inspection["afterArguments"] = _text(data["effective"])
            return
        try:
            effective = step.effective_input(state, self.raw)
        except StatesError:
            return
        self.inspection["afterInputPath"] = _text(effective)
        if t.task is not None:
            self.inspection["afterParameters"] = _text(t.task.input)
        elif isinstance(state, (m.PassState, m.ParallelState)) and getattr(state, "parameters", None) is not None:
            try:
                effective = state.parameters.evaluate(step.scope(effective))
                self.inspection["afterParameters"] = _text(effective)
            except StatesError:
                return
        if isinstance(state, m.PassState):
            self.note_result(step, effective if state.result is m.MISSING else state.result)
        if isinstance(state, m.MapState):
            self.note_map(step, effective)

    def note_map(self, step: _Step, effective: Any) -> None:
        state: m.MapState = self.state  # type: ignore[assignment]
        try:
            items = state.items_path.resolve(step.scope(effective)) if state.items_path is not None else effective
            self.inspection["afterItemsPath"] = _text(items)
            if state.item_selector is not None and isinstance(items, list):
                selected = [state.item_selector.evaluate(step.scope(effective, item={"Index": i, "Value": item}))
                            for i, item in enumerate(items)]
                self.inspection["afterItemSelector"] = _text(selected)
        except StatesError:
            pass
        self.inspection["maxConcurrency"] = state.max_concurrency
        if state.tolerated_failure_count is not None:
            self.inspection["toleratedFailureCount"] = state.tolerated_failure_count
        if state.tolerated_failure_percentage is not None:
            self.inspection["toleratedFailurePercentage"] = state.tolerated_failure_percentage

    def note_result(self, step: _Step, result: Any) -> None:
        state = self.state
        self.inspection["result"] = _text(result)
        if state.query_language == "JSONata":
            return
        try:
            selected = result
            if getattr(state, "result_selector", None) is not None:
                selected = state.result_selector.evaluate(step.scope(result))
                self.inspection["afterResultSelector"] = _text(selected)
            path = getattr(state, "result_path", None)
            combined = self.raw if path is None else path.assign(self.raw, selected)
            self.inspection["afterResultPath"] = _text(combined)
        except StatesError:
            pass

    # -- the response
    def response(self, t, error: tuple[str | None, str | None] | None, level: str) -> dict:
        state = self.state
        found: dict[str, Any] = {}
        if t.frame is not None and t.frame.phase == "retry":
            retry = getattr(state, "retry", ())
            index = next(i for i, r in enumerate(retry) if error_matches(r.error_equals, error[0]))
            self.details = {"retryIndex": index, "retryBackoffIntervalSeconds": int(round(t.run_at - self.now))}
            found.update(status="RETRIABLE", error=error[0], cause=error[1])
        elif t.frame is not None:
            catchers = getattr(state, "catch", ())
            caught = error is not None or (t.frame.state != state.next and
                                           t.frame.state in {c.next for c in catchers} and
                                           not isinstance(state, m.ChoiceState))
            found["output"] = _text(t.frame.input)
            found["nextState"] = t.frame.state
            if caught and error is not None:
                self.details = {"catchIndex": next(i for i, c in enumerate(catchers)
                                                   if error_matches(c.error_equals, error[0]))}
                found.update(status="CAUGHT_ERROR", error=error[0], cause=error[1])
            else:
                found["status"] = "SUCCEEDED"
            if t.frame.data.get("variables"):
                self.inspection["variables"] = _text(t.frame.data["variables"])
        elif t.status == "SUCCEEDED":
            found.update(output=_text(t.output), status="SUCCEEDED")
        else:
            found.update(status="FAILED", error=t.error, cause=t.cause)
        found = {k: v for k, v in found.items() if v is not None}
        if level != "INFO":
            if self.details:
                self.inspection["errorDetails"] = self.details
            found["inspectionData"] = self.inspection
        return found


def _merged(base: dict, override: Mapping[str, Any]) -> dict:
    """The context object with the caller's fields laid over it (objects merged key by key)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) \
            else value
    return out
