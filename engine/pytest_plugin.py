"""The statemill pytest plugin (registered through the ``pytest11`` entry point): test workflows in a few lines.

    def test_refund_when_payment_declined(statemill):
        statemill.handler("inventory.reserve")(lambda order: {"reserved": True})
        result = statemill.run("order_saga.yaml", {"orderId": "A-1", "amount": 0},
                               mocks={"Charge": TaskFailure("Payment.Declined", "card expired")})
        assert result.status == "FAILED"
        assert result.states_entered[-2:] == ["Refund", "OrderFailed"]

The ``statemill`` fixture is an engine on a throwaway SQLite database with virtual time (Waits, Retry backoff and
timeouts pass at once); ``@pytest.mark.statemill(virtual_time=False, db="postgresql://...")`` changes either.
``pytest --statemill-cov FILE`` writes the state and transition coverage of every execution the tests ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any, Callable, Mapping

import pytest

from . import Engine, FakeClock
from .mocks import MockConfig, TestCase

_COVERAGE = pytest.StashKey[Any]()


@dataclass(frozen=True)
class Result:
    """An execution run to its end: DescribeExecution's fields and its history, with helpers for assertions."""

    description: Mapping[str, Any]
    history: list[dict]

    @property
    def arn(self) -> str:
        return self.description["executionArn"]

    @property
    def status(self) -> str:
        return self.description["status"]

    @property
    def output(self) -> Any:
        return self.description.get("output")

    @property
    def error(self) -> str | None:
        return self.description.get("error")

    @property
    def cause(self) -> str | None:
        return self.description.get("cause")

    @property
    def states_entered(self) -> list[str]:
        """The name of each state entered, in the order the history records them (Map iterations included)."""
        return [event["stateEnteredEventDetails"]["name"] for event in self.history
                if event["type"].endswith("StateEntered")]

    def events(self, kind: str) -> list[dict]:
        """The history events of one type (``TaskFailed``, ``WaitStateExited``...)."""
        return [event for event in self.history if event["type"] == kind]

    def __repr__(self) -> str:
        problem = f" {self.error}: {self.cause}" if self.status != "SUCCEEDED" else ""
        return f"<Result {self.status}{problem} via {' → '.join(self.states_entered)}>"


class WorkflowTester:
    """What the ``statemill`` fixture gives: an ``Engine`` (``.engine``) with handlers, mocks and ``run``."""

    def __init__(self, db: str, virtual_time: bool = True, on_result: Callable[[Engine, str], None] | None = None):
        self.engine = Engine(db, clock=FakeClock.virtual() if virtual_time else None)
        self.mocks: dict[str, Any] = {}
        self._on_result = on_result

    def handler(self, resource: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a handler for a Task ``Resource`` (as ``Engine.handler``)."""
        return self.engine.handler(resource)

    def register(self, resource: str, fn: Callable[..., Any]) -> None:
        self.engine.handlers.register(resource, fn)

    def mock(self, state: str, answer: Any) -> None:
        """Answer Task ``state`` in every later ``run`` with ``answer``: a value (its result), an exception (its
        error: the class name and message, or TaskFailure's), or a list of them, one per invocation."""
        self.mocks[state] = answer

    def run(self, definition: str | PathLike | Mapping[str, Any], input: Any = None, *,
            mocks: Mapping[str, Any] | None = None, mock_config: str | PathLike | MockConfig | None = None,
            test_case: str | None = None, name: str | None = None, machine_name: str | None = None) -> Result:
        """Run ``definition`` with ``input`` to its end; ``mocks`` (merged over ``mock()``'s) or a mock file's
        ``test_case`` answer Task states instead of their handlers."""
        if isinstance(definition, Mapping) and machine_name is None:
            machine_name = "workflow"
        if mock_config is not None:
            description = self.engine.run(definition, input, name=name, machine_name=machine_name,
                                          mock_config=mock_config, test_case=test_case)
        else:
            merged = {**self.mocks, **(mocks or {})}
            description = self.engine.run(definition, input, name=name, machine_name=machine_name,
                                          mocks=TestCase.of(merged) if merged else None)
        if self._on_result is not None:
            self._on_result(self.engine, description["executionArn"])
        return Result(description, self.engine.history(description["executionArn"]))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("statemill", "statemill workflows")
    group.addoption("--statemill-cov", metavar="FILE", default=None,
                    help="Write the state and transition coverage of the workflows the tests ran to FILE (JSON; "
                         "read it with `statemill coverage report FILE`).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "statemill(virtual_time=True, db=None): options of the statemill fixture")
    if config.getoption("statemill_cov", None):
        from statemill.visualizer.coverage import CoverageFile
        config.stash[_COVERAGE] = CoverageFile()


def pytest_sessionfinish(session: pytest.Session) -> None:
    coverage = session.config.stash.get(_COVERAGE, None)
    if coverage is not None:
        coverage.write(session.config.getoption("statemill_cov"))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    coverage = config.stash.get(_COVERAGE, None)
    if coverage is None:
        return
    from statemill.visualizer.coverage import summary
    terminalreporter.write_sep("-", "statemill coverage")
    for name, entry in coverage.machines.items():
        data = summary(entry)
        terminalreporter.write_line(f"{name}: {data['percent']}% ({data['covered']}/{data['total']}) over "
                                    f"{data['executions']} execution(s)")
    terminalreporter.write_line(f"written to {config.getoption('statemill_cov')}; details: statemill coverage "
                                f"report {config.getoption('statemill_cov')}")


@pytest.fixture
def statemill(request: pytest.FixtureRequest, tmp_path) -> WorkflowTester:
    """An engine on a throwaway SQLite database with virtual time; see ``WorkflowTester``."""
    marker = request.node.get_closest_marker("statemill")
    options = dict(marker.kwargs) if marker is not None else {}
    coverage = request.config.stash.get(_COVERAGE, None)
    on_result = None
    if coverage is not None:
        from statemill.visualizer.coverage import record_execution
        on_result = lambda engine, arn: record_execution(engine, arn, coverage)  # noqa: E731
    tester = WorkflowTester(options.get("db") or f"sqlite:///{tmp_path / 'statemill.db'}",
                            options.get("virtual_time", True), on_result)
    yield tester
    tester.engine.db.dispose()
