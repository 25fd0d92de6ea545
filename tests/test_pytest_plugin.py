"""The pytest plugin, as a user's test suite sees it: a suite run by pytest with the plugin from its entry point."""
from __future__ import annotations

import json
import textwrap

pytest_plugins = ["pytester"]

ORDER = {"StartAt": "Reserve", "States": {
    "Reserve": {"Type": "Task", "Resource": "inventory.reserve", "Next": "Cool"},
    "Cool": {"Type": "Wait", "Seconds": 172800, "Next": "Charge"},
    "Charge": {"Type": "Task", "Resource": "payments.charge", "Next": "Ship",
               "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 3600, "MaxAttempts": 2}],
               "Catch": [{"ErrorEquals": ["Declined"], "ResultPath": "$.problem", "Next": "Refund"}]},
    "Ship": {"Type": "Task", "Resource": "shipping.ship", "End": True},
    "Refund": {"Type": "Pass", "Next": "Failed"},
    "Failed": {"Type": "Fail", "Error": "OrderFailed"}}}

SUITE = '''
import pytest
from statemill.engine import FakeClock, SystemClock, TaskFailure


@pytest.fixture(autouse=True)
def handlers(statemill):
    statemill.handler("inventory.reserve")(lambda order: {"reserved": order["items"]})
    statemill.register("shipping.ship", lambda order: {"tracking": ""})


def test_a_declined_payment_is_refunded(statemill):
    result = statemill.run("order.json", {"items": 0}, mocks={"Charge": TaskFailure("Declined", "card expired")})
    assert result.status == "FAILED" and result.error == "OrderFailed"
    assert result.states_entered == ["Reserve", "Cool", "Charge", "Refund", "Failed"]
    assert repr(result).startswith("<Result FAILED OrderFailed: None via Reserve → Cool")


def test_a_busy_payment_is_retried_then_shipped(statemill):
    result = statemill.run("order.json", {"items": 0}, mocks={"Charge": [TimeoutError("busy?"),
                                                                         TaskFailure("Busy", ""), {"id": None}]})
    assert result.status == "FAILED"  # TimeoutError is not Busy: no retry, no catch
    result = statemill.run("order.json", {"items": 0}, mocks={"Charge": [TaskFailure("Busy", ""), {"id": None}]})
    assert result.status == "SUCCEEDED" and result.output == {"tracking": ""}
    assert [e["taskFailedEventDetails"]["error"] for e in result.events("TaskFailed")] == ["Busy"]
    assert isinstance(statemill.engine.clock, FakeClock)


def test_default_mocks_apply_to_every_run(statemill):
    statemill.mock("Charge", {"id": 0})
    statemill.mock("Ship", False)
    assert statemill.run("order.json", {"items": 0}).output is False
    assert statemill.run("order.json", {"items": 0}, mocks={"Ship": 0}).output == 0


@pytest.mark.statemill(virtual_time=False)
def test_real_time_on_request(statemill):
    assert isinstance(statemill.engine.clock, SystemClock)
    result = statemill.run({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, {"x": 0})
    assert result.output == {"x": 0} and result.history[0]["type"] == "ExecutionStarted"
'''


def test_a_suite_using_the_fixture_passes_and_writes_coverage(pytester):
    pytester.makefile(".json", order=json.dumps(ORDER))
    pytester.makepyfile(test_order=textwrap.dedent(SUITE))
    result = pytester.runpytest("-p", "no:cacheprovider", "--statemill-cov", "cov.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*statemill coverage*", "order: *% (*/*) over 5 execution(s)",
                                 "workflow: 100.0% (*) over 1 execution(s)"])
    written = json.loads((pytester.path / "cov.json").read_text())
    order = written["machines"]["order"]
    assert order["executions"] == 5
    assert order["catchers"] == {"Charge#0": 1}
    assert order["retriers"] == {"Charge#0": 1}


def test_without_the_option_no_coverage_is_written(pytester):
    pytester.makefile(".json", order=json.dumps(ORDER))
    pytester.makepyfile(test_order=textwrap.dedent(SUITE))
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "declined")
    result.assert_outcomes(passed=1, deselected=3)
    assert not (pytester.path / "cov.json").exists()
    assert "statemill coverage" not in result.stdout.str()
