"""Mocked task answers: AWS Step Functions Local's mock configuration file, and mocks given from Python.

A mock file (JSON or YAML) names, per state machine, test cases mapping Task state names to mocked responses; a
mocked response answers each invocation of the state (``"0"``, ``"1-2"``...) with ``Return`` (the task's result) or
``Throw`` (its ``Error`` and ``Cause``). An execution started with a test case stores the answers with it
(``execution_mocks``), so whichever worker runs a mocked task answers it without calling any handler. Invocations
are counted per state across the whole execution, each Retry attempt and each Map iteration being one, as Step
Functions Local counts them; an invocation the response does not cover fails the execution (``States.Runtime``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import sqlalchemy as sa

from . import errors as E
from .diagnostics import Diagnostic, did_you_mean
from .errors import DefinitionError, StatemillError
from .handlers import TaskFailure
from .jsonvalue import stored_form
from .source import SourceError, SourceMap, decode, guess_kind, join_pointer, parse_text
from .store.schema import execution_mocks, mocked_states

_RANGE = re.compile(r"^(0|[1-9][0-9]*)(?:-(0|[1-9][0-9]*))?$")
_TOP = ("StateMachines", "MockedResponses")

# The codes of mock file problems (the definition loader's SMxxx codes are for definitions).
CODES = {
    "MK001": "the file is not well-formed YAML or JSON, or not UTF-8",
    "MK101": "a field is missing, unknown, or of the wrong type",
    "MK102": "an invocation key is not \"N\" or \"N-M\", or two keys cover the same invocation",
    "MK201": "a test case names a mocked response that MockedResponses does not define",
    "MK202": "no test cases for this state machine, or no test case of that name",
    "MK203": "a test case names a state the state machine does not have, or one that is not a Task",
}


class InvalidMocks(StatemillError):
    """Mocks that name a state the state machine does not have, or one that is not a Task."""


class MockConfigError(DefinitionError):
    """A mock configuration file that cannot be used; ``diagnostics`` locates every problem (file:line:col), shown
    as the loader shows a definition's."""


# ----------------------------------------------------------------------------------------------- one response
@dataclass(frozen=True)
class MockedResponse:
    """Answers by invocation: ``ranges`` holds (first, last or None for "every later one", answer) where an answer
    is ``{"Return": value}`` or ``{"Throw": {"Error": ..., "Cause": ...}}``."""

    name: str
    ranges: tuple[tuple[int, int | None, dict], ...]

    def stored(self) -> list:
        return [[first, last, answer] for first, last, answer in self.ranges]

    @classmethod
    def of(cls, name: str, value: Any) -> "MockedResponse":
        """From Python: a value answers every invocation; an exception fails every one; a list or tuple answers
        invocation i with item i (each a value or an exception), and none after its end."""
        if isinstance(value, (list, tuple)):
            return cls(name, tuple((i, i, _python_answer(item)) for i, item in enumerate(value)))
        return cls(name, ((0, None, _python_answer(value)),))


def _python_answer(value: Any) -> dict:
    if isinstance(value, BaseException):
        error, cause = (value.error, value.cause) if isinstance(value, (TaskFailure, E.StatesError)) else \
            (type(value).__name__, str(value))
        return {"Throw": {"Error": error, "Cause": cause}}
    try:
        return {"Return": stored_form(value)}
    except ValueError as exc:
        raise TypeError(f"a mocked result must be a JSON value or an exception: {exc}") from None


@dataclass(frozen=True)
class TestCase:
    """The mocked responses of one execution, by Task state name."""

    __test__ = False  # not a pytest test class

    name: str | None
    states: Mapping[str, MockedResponse] = field(default_factory=dict)

    def stored(self) -> dict:
        return {state: response.stored() for state, response in self.states.items()}

    @classmethod
    def of(cls, mocks: Mapping[str, Any], name: str | None = None) -> "TestCase":
        """From Python: ``{"Charge": {"id": 0}, "Ship": [TimeoutError("slow"), {"ok": True}]}``."""
        return cls(name, {state: MockedResponse.of(state, value) for state, value in mocks.items()})

    def check(self, machine) -> None:
        """InvalidMocks naming a state ``machine`` does not have, or one that is not a Task."""
        for state in self.states:
            problem = _state_problem(machine, state)
            if problem:
                raise InvalidMocks(problem)


def _state_problem(machine, state: str) -> str | None:
    found = machine.index.get(state)
    if found is None:
        return f"the state machine has no state named {state!r}{did_you_mean(state, machine.index)}"
    if found.type != "Task":
        return f"{state!r} is a {found.type} state; mocks answer Task states only"
    return None


# ----------------------------------------------------------------------------------------------- the mock file
class MockConfig:
    """A parsed, checked mock configuration file. ``test_case(machine_name, name, machine)`` picks one test case."""

    def __init__(self, document: dict, where: SourceMap | None, file: str):
        self.document, self.where, self.file = document, where, file

    @classmethod
    def load(cls, path: str | Path) -> "MockConfig":
        """Read and check a mock file; MockConfigError locating every problem; OSError when it cannot be read."""
        file = str(path)
        data = Path(path).read_bytes()
        try:
            text = decode(data)
            document, where = parse_text(text, guess_kind(file, text))
        except SourceError as exc:
            position = exc.position
            raise MockConfigError([Diagnostic("MK001", "error", exc.message, exc.pointer, file,
                                              position.line if position else None,
                                              position.column if position else None)]) from None
        config = cls(document, where, file)
        problems = config._check()
        if problems:
            raise MockConfigError(problems)
        return config

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], name: str = "<mock config>") -> "MockConfig":
        config = cls(json.loads(json.dumps(document)), None, name)
        problems = config._check()
        if problems:
            raise MockConfigError(problems)
        return config

    def diagnostic(self, code: str, pointer: str, message: str, key: bool = False) -> Diagnostic:
        position = self.where.locate(pointer, key=key) if self.where is not None else None
        return Diagnostic(code, "error", message, pointer, self.file,
                          position.line if position else None, position.column if position else None)

    def _check(self) -> list[Diagnostic]:
        """Every problem of the file's shape, with its location."""
        doc, found = self.document, []

        def bad(code: str, pointer: str, message: str, key: bool = False) -> None:
            found.append(self.diagnostic(code, pointer, message, key))

        if not isinstance(doc, dict):
            bad("MK101", "", "a mock configuration is an object with StateMachines and MockedResponses")
            return found
        for name in doc:
            if name not in _TOP:
                bad("MK101", join_pointer("", name), f"unknown field {name!r}{did_you_mean(name, _TOP)}; a mock "
                    "configuration has StateMachines and MockedResponses", key=True)
        responses = doc.get("MockedResponses", {})
        if not isinstance(responses, dict):
            bad("MK101", "/MockedResponses", "MockedResponses must be an object of named mocked responses")
            responses = {}
        for name, response in responses.items():
            self._check_response(join_pointer("/MockedResponses", name), response, bad)
        machines = doc.get("StateMachines", {})
        if not isinstance(machines, dict):
            bad("MK101", "/StateMachines", "StateMachines must be an object keyed by state machine name")
            machines = {}
        for machine, body in machines.items():
            at = join_pointer("/StateMachines", machine)
            if not isinstance(body, dict) or not isinstance(body.get("TestCases"), dict):
                bad("MK101", at, f"state machine {machine!r} needs a TestCases object")
                continue
            for extra in set(body) - {"TestCases"}:
                bad("MK101", join_pointer(at, extra), f"unknown field {extra!r}; a state machine entry has "
                    "TestCases only", key=True)
            for case, states in body["TestCases"].items():
                case_at = join_pointer(join_pointer(at, "TestCases"), case)
                if not isinstance(states, dict):
                    bad("MK101", case_at, f"test case {case!r} must map Task state names to mocked response names")
                    continue
                for state, response in states.items():
                    state_at = join_pointer(case_at, state)
                    if not isinstance(response, str):
                        bad("MK101", state_at, f"state {state!r}: the name of a mocked response (a string)")
                    elif response not in responses:
                        bad("MK201", state_at, f"no mocked response named {response!r} in MockedResponses"
                            f"{did_you_mean(response, responses)}")
        return found

    def _check_response(self, at: str, response: Any, bad) -> None:
        if not isinstance(response, dict) or not response:
            bad("MK101", at, "a mocked response is an object of invocation keys (\"0\", \"1-2\") to Return or Throw")
            return
        covered: list[tuple[int, int, str]] = []
        for key, answer in response.items():
            key_at = join_pointer(at, key)
            match = _RANGE.match(str(key))
            if match is None or (match.group(2) is not None and int(match.group(2)) < int(match.group(1))):
                bad("MK102", key_at, f"invocation key {key!r} is not a number (\"0\") or an inclusive range "
                    "(\"1-2\")", key=True)
            else:
                first = int(match.group(1))
                last = int(match.group(2)) if match.group(2) is not None else first
                for other_first, other_last, other in covered:
                    if first <= other_last and other_first <= last:
                        bad("MK102", key_at, f"invocation key {key!r} overlaps {other!r}", key=True)
                covered.append((first, last, key))
            if not isinstance(answer, dict) or len(answer) != 1 or next(iter(answer)) not in ("Return", "Throw"):
                bad("MK101", key_at, "each invocation is answered by an object with exactly one field, Return or "
                    "Throw")
                continue
            throw = answer.get("Throw")
            if "Throw" in answer and not (isinstance(throw, dict) and set(throw) == {"Error", "Cause"}
                                          and all(isinstance(v, str) for v in throw.values())):
                bad("MK101", join_pointer(key_at, "Throw"), "Throw is an object with the string fields Error and "
                    "Cause (and nothing else)")

    def _response(self, name: str) -> MockedResponse:
        ranges = []
        for key, answer in self.document["MockedResponses"][name].items():
            first, _, last = str(key).partition("-")
            ranges.append((int(first), int(last or first), answer))
        return MockedResponse(name, tuple(sorted(ranges, key=lambda r: r[0])))

    def test_case_names(self, machine_name: str) -> list[str]:
        entry = self.document.get("StateMachines", {}).get(machine_name)
        return list(entry["TestCases"]) if entry else []

    def test_case(self, machine_name: str, name: str, machine=None) -> TestCase:
        """Test case ``name`` of the state machine ``machine_name``; with the compiled ``machine``, every state it
        names is checked to be one of its Task states. MockConfigError (located) otherwise."""
        machines = self.document.get("StateMachines", {})
        if machine_name not in machines:
            raise MockConfigError([self.diagnostic(
                "MK202", "/StateMachines", f"no test cases for the state machine {machine_name!r}"
                f"{did_you_mean(machine_name, machines)}; StateMachines has "
                f"{', '.join(map(repr, machines)) or 'none'}", key=True)])
        cases = machines[machine_name]["TestCases"]
        cases_at = join_pointer(join_pointer("/StateMachines", machine_name), "TestCases")
        if name not in cases:
            raise MockConfigError([self.diagnostic(
                "MK202", cases_at, f"state machine {machine_name!r} has no test case {name!r}"
                f"{did_you_mean(name, cases)}; it has {', '.join(map(repr, cases)) or 'none'}", key=True)])
        states = cases[name]
        if machine is not None:
            problems = [self.diagnostic("MK203", join_pointer(join_pointer(cases_at, name), state), problem,
                                        key=True)
                        for state in states if (problem := _state_problem(machine, state))]
            if problems:
                raise MockConfigError(problems)
        return TestCase(name, {state: self._response(response) for state, response in states.items()})


# ----------------------------------------------------------------------------------------------- at run time
def store(conn: sa.Connection, execution_id: int, case: TestCase) -> None:
    """Keep ``case`` with a new execution (in the transaction that creates it)."""
    conn.execute(execution_mocks.insert().values(execution_id=execution_id, test_case=case.name,
                                                 responses=case.stored(), calls={}))
    if case.states:
        conn.execute(mocked_states.insert(), [{"execution_id": execution_id, "state": state}
                                              for state in case.states])


def stored_test_case(conn: sa.Connection, execution_id: int) -> tuple[str | None, dict] | None:
    row = conn.execute(sa.select(execution_mocks.c.test_case, execution_mocks.c.responses)
                       .where(execution_mocks.c.execution_id == execution_id)).first()
    return None if row is None else (row.test_case, row.responses)


def states_mocked(conn: sa.Connection, execution_id: int) -> frozenset[str]:
    """The states of the execution answered by mocks (empty: none)."""
    return frozenset(conn.execute(sa.select(mocked_states.c.state)
                                  .where(mocked_states.c.execution_id == execution_id)).scalars())


def answer(db: sa.Engine, execution_id: int, state: str, attempt_key: str) -> tuple[int, dict | None]:
    """(invocation number, its answer or None when the mocked response has none) for the task attempt
    ``attempt_key`` of ``state``. A redelivered attempt (after a worker crash) keeps its number; a new attempt takes
    the next one of its state, counted under a lock on the execution's mocks row."""
    with db.begin() as conn:
        row = conn.execute(sa.select(execution_mocks.c.responses, execution_mocks.c.calls)
                           .where(execution_mocks.c.execution_id == execution_id).with_for_update()).one()
        calls = dict(row.calls or {})
        if attempt_key in calls:
            invocation = calls[attempt_key][1]
        else:
            invocation = sum(1 for called, _ in calls.values() if called == state)
            calls[attempt_key] = [state, invocation]
            conn.execute(execution_mocks.update().where(execution_mocks.c.execution_id == execution_id)
                         .values(calls=calls))
    for first, last, response in row.responses[state]:
        if first <= invocation and (last is None or invocation <= last):
            return invocation, response
    return invocation, None


def missing_cause(state: str, invocation: int, test_case: str | None) -> str:
    case = f" of test case '{test_case}'" if test_case else ""
    return (f"The mocked response{case} for state '{state}' has no answer for invocation {invocation} "
            "(invocations count from 0, each retry being one).")


def mocked_trigger(client, cache: dict, execution_id: int, state: str, attempt_key: str, token: str | None):
    """The trigger a mocked task attempt ends with, or None when ``state`` is not mocked in this execution (then
    its handler runs). ``cache`` keeps each execution's mocked states (they never change). A ``.waitForTaskToken``
    task hands its token out and the mock answers it (SendTaskSuccess/SendTaskFailure), as Step Functions Local
    generates and completes the token; any other task (``.sync`` included) ends with the mocked result or error."""
    states = cache.get(execution_id)
    if states is None:
        with client.reader.connect() as conn:
            states = states_mocked(conn, execution_id)
        if len(cache) >= 10_000:
            cache.pop(next(iter(cache)))
        cache[execution_id] = states
    if state not in states:
        return None
    from .interpreter import Trigger
    invocation, response = answer(client.db, execution_id, state, attempt_key)
    if response is None:
        with client.reader.connect() as conn:
            case = stored_test_case(conn, execution_id)
        return Trigger("error", error=E.RUNTIME, cause=missing_cause(state, invocation, case and case[0]))
    throw = response.get("Throw")
    if token is not None:
        from .client import TaskTimedOut
        try:
            if throw is not None:
                client.send_task_failure(token, throw.get("Error"), throw.get("Cause"))
            else:
                client.send_task_success(token, json.dumps(response["Return"]))
        except TaskTimedOut:
            pass  # a redelivery (the worker before us crashed after answering): the answer is already there
        return Trigger("submitted", {})
    if throw is not None:
        return Trigger("error", error=throw.get("Error"), cause=throw.get("Cause"))
    return Trigger("result", response["Return"])


def start(client, state_machine_arn: str, config: "MockConfig | None" = None, input: Any = None, *,
          name: str | None = None, input_text: str | None = None) -> dict:
    """StartExecution as Step Functions Local takes it: ``stateMachineArn#TestCaseName`` runs the execution with
    that test case of ``config`` (the server's ``--mock-config``); a plain ARN starts it as usual. For the API
    server's StartExecution; InvalidMocks when a test case is asked for and there is no mock configuration."""
    arn, _, case = state_machine_arn.partition("#")
    machine_name = arn.rsplit(":", 1)[-1]
    mocks = None
    if case:
        if config is None:
            raise InvalidMocks(f"{state_machine_arn!r} names the test case {case!r}, but no mock configuration "
                               "was given (statemill serve --mock-config FILE)")
        with client.reader.connect() as conn:
            machine_id = client._latest(conn, machine_name)
        mocks = config.test_case(machine_name, case, client.machine(machine_id))
    return client.start(machine_name, input, name=name, input_text=input_text, mocks=mocks)
