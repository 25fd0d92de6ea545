"""What a handler returns, and what happens when a transition cannot be stored.

A result JSON cannot carry (NaN, a lone surrogate, a set, nesting past the limit...) fails the task with
Runtime.MarshalError, as AWS Lambda's Python runtime fails such a function, before any transaction; a transition
whose transaction keeps failing fails its frame with States.Runtime after MAX_COMMIT_FAILURES tries; NaN and Infinity
never reach the database; a sync handler hung past its TimeoutSeconds never keeps the process alive.
"""
from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import enginetools
from hypothesis import given
from hypothesis import strategies as st

from statemill.engine import DefinitionError, Engine, FakeClock, InvalidExecutionInput
from statemill.engine.jsonvalue import MARSHAL_ERROR, MAX_DEPTH
from statemill.engine.runtime import MAX_COMMIT_FAILURES
from statemill.engine.store.schema import executions, frames, history_events

ROOT = Path(__file__).resolve().parents[1]
DATA = {"zero": 0, "no": False, "empty": "", "none": None}


def nested(depth: int, leaf=0):
    """A list nested ``depth`` levels deep around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def run(engine: Engine, definition: dict, value=DATA, deadline: float = 20) -> dict:
    """``enginetools.run`` with DATA as the default input."""
    return enginetools.run(engine, definition, value, deadline=deadline)


def types(engine: Engine, result: dict) -> list[str]:
    return [e["type"] for e in engine.history(result["executionArn"])]


def returning(engine: Engine, value, calls: list | None = None) -> None:
    """Register ``py:give`` returning ``value`` (counting its calls in ``calls``)."""
    def give(_input):
        if calls is not None:
            calls.append(1)
        return value
    engine.handler("py:give")(give)


ONE_TASK = {"StartAt": "Give", "States": {"Give": {"Type": "Task", "Resource": "py:give", "End": True}}}


# ----------------------------------------------------------------------------------- results JSON cannot carry
class Opaque:
    """A custom object with no JSON form."""


class Huge(int):
    """An int past Python's 4300-digit limit for text conversion (JSON must write it in decimal)."""

    def __repr__(self) -> str:
        return "10**5000"


HUGE = Huge(10 ** 5000)


UNSTORABLE = {
    "lone_surrogate": ("\ud800", "lone surrogate ('\\ud800')"),
    "lone_surrogate_in_a_key": ({"\udfff": 0}, "lone surrogate"),
    "list_5000_deep": (nested(5000), f"nested deeper than {MAX_DEPTH} levels"),
    "one_level_past_the_limit": (nested(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels"),
    "nan": ({"v": math.nan}, "Out of range float values are not JSON compliant"),
    "infinity": ([0, math.inf], "Out of range float values are not JSON compliant"),
    "negative_infinity": (-math.inf, "Out of range float values are not JSON compliant"),
    "set": ({"s": {0}}, "Object of type set is not JSON serializable"),
    "bytes": (b"", "Object of type bytes is not JSON serializable"),
    "custom_object": (Opaque(), "Object of type Opaque is not JSON serializable"),
    "tuple_key": ({(0, 1): None}, "keys must be str, int, float, bool or None"),
    "int_past_python_digit_limit": (HUGE, "Exceeds the limit"),
}


@pytest.mark.parametrize("value, why", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
def test_a_result_json_cannot_carry_fails_the_task_with_marshal_error(engine, value, why):
    calls = []
    returning(engine, value, calls)
    result = run(engine, ONE_TASK)
    assert (result["status"], result["error"]) == ("FAILED", MARSHAL_ERROR)
    assert result["cause"].startswith("Unable to marshal response: ") and why in result["cause"]
    assert types(engine, result)[-3:] == ["TaskStarted", "TaskFailed", "ExecutionFailed"]
    assert len(calls) == 1, "the handler ran once: the failure was recorded, not redelivered"


@pytest.mark.parametrize("catch", ["States.ALL", "States.TaskFailed", MARSHAL_ERROR])
def test_a_marshal_error_is_retried_and_caught_like_any_task_failure(engine, catch):
    calls = []
    returning(engine, {"v": math.nan}, calls)
    definition = {"StartAt": "Give", "States": {
        "Give": {"Type": "Task", "Resource": "py:give", "End": True,
                 "Retry": [{"ErrorEquals": [catch], "MaxAttempts": 1, "IntervalSeconds": 1}],
                 "Catch": [{"ErrorEquals": [catch], "ResultPath": "$.error", "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}}
    result = run(engine, definition)
    assert result["status"] == "SUCCEEDED"
    assert len(calls) == 2
    assert result["output"]["error"]["Error"] == MARSHAL_ERROR
    assert {k: v for k, v in result["output"].items() if k != "error"} == DATA


STORABLE = {
    "falsy_values": (DATA, DATA),
    "tuple_becomes_a_list": ((0, False, "", None), [0, False, "", None]),
    "non_string_keys_become_strings": ({0: "", True: 0, None: None, 1.5: []}, {"0": "", "true": 0, "null": None,
                                                                              "1.5": []}),
    "negative_zero_stays_a_float": ({"v": -0.0}, {"v": -0.0}),
    "big_int_kept_exactly": ({"v": 2 ** 70}, {"v": 2 ** 70}),
    "nested_to_the_limit": (nested(MAX_DEPTH - 1, {"zero": 0}), nested(MAX_DEPTH - 1, {"zero": 0})),
    "non_ascii": ({"é": "ü\u2028😀"}, {"é": "ü\u2028😀"}),
}


@pytest.mark.parametrize("value, stored", list(STORABLE.values()), ids=list(STORABLE))
def test_a_result_is_stored_as_its_json_round_trip(engine, value, stored):
    returning(engine, value)
    definition = {"StartAt": "Give", "States": {
        "Give": {"Type": "Task", "Resource": "py:give", "ResultPath": "$.result", "Next": "Echo"},
        "Echo": {"Type": "Pass", "End": True}}}
    result = run(engine, definition)
    assert result["status"] == "SUCCEEDED"
    assert json.dumps(result["output"]["result"]) == json.dumps(stored)  # as text: -0.0 and 1 vs 1.0 differ
    succeeded = [e for e in engine.history(result["executionArn"]) if e["type"] == "TaskSucceeded"]
    assert json.loads(succeeded[0]["taskSucceededEventDetails"]["output"]) == stored


# ------------------------------------------------------------------------ NaN and Infinity never reach the store
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "infinity", "negative_infinity"])
def test_the_store_refuses_nan_and_infinity(engine, value):
    """The last line of defence: a JSON column cannot hold them (SQLite's TEXT and PostgreSQL's json alike)."""
    returning(engine, DATA)
    result = run(engine, ONE_TASK)
    with engine.db.connect() as conn:
        before = conn.execute(sa.select(frames.c.output)).scalars().all()
    with pytest.raises((sa.exc.StatementError, ValueError), match="Out of range float values"):
        with engine.db.begin() as conn:
            conn.execute(frames.update().values(output={"v": value}))
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(frames.c.output)).scalars().all() == before
    assert result["status"] == "SUCCEEDED"


BAD_INPUTS = {
    "nan": ({"v": math.nan}, None),
    "set": ({"v": {0}}, None),
    "lone_surrogate": ({"v": "\ud800"}, None),
    "number_past_a_double_as_text": (None, '{"v": 1e999}'),
    "negative_number_past_a_double_as_text": (None, '[-1E400]'),
    "text_nested_5000_deep": (None, "[" * 5000 + "]" * 5000),
    "text_nested_past_the_limit": (None, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)),
}


@pytest.mark.parametrize("value, text", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_an_input_json_cannot_carry_is_refused_and_nothing_is_written(engine, value, text):
    engine.register(ONE_TASK, "m")
    with pytest.raises(InvalidExecutionInput, match="the input is not"):
        engine.start("m", value, input_text=text)
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(executions)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(frames)).scalar() == 0


def test_an_intrinsic_literal_past_a_double_is_a_definition_error(engine):
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True,
                                                   "Parameters": {"v.$": "States.Array(1e999)"}}}}
    with pytest.raises(DefinitionError, match="the number 1e999 is out of the range of a double"):
        engine.register(definition, "m")


def test_string_to_json_of_a_number_past_a_double_fails_the_state(engine):
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True,
                                                   "Parameters": {"v.$": "States.StringToJson($.text)"}}}}
    result = run(engine, definition, {"text": "[0, 1e999]"})
    assert (result["status"], result["error"]) == ("FAILED", "States.Runtime")
    assert "the number 1e999 is out of the range of a double" in result["cause"]


# ------------------------------------------------------------------ a transition whose commit keeps failing
@pytest.fixture
def poison(engine):
    """A real database trigger refusing any frame update that moves a frame into a state listed in table
    ``poison``: the transaction of that transition fails, as one holding a value the store rejects would."""
    with engine.db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE poison (state VARCHAR(80) PRIMARY KEY)"))
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(
                "CREATE FUNCTION poison_frames() RETURNS trigger AS $$ BEGIN "
                "IF NEW.state IS DISTINCT FROM OLD.state AND NEW.state IN (SELECT state FROM poison) THEN "
                "RAISE EXCEPTION 'poisoned state %', NEW.state; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))
            conn.execute(sa.text("CREATE TRIGGER poison_frames BEFORE UPDATE ON frames FOR EACH ROW "
                                 "EXECUTE FUNCTION poison_frames()"))
        else:
            conn.execute(sa.text(
                "CREATE TRIGGER poison_frames BEFORE UPDATE ON frames "
                "WHEN NEW.state IS NOT OLD.state AND NEW.state IN (SELECT state FROM poison) "
                "BEGIN SELECT RAISE(ABORT, 'poisoned state'); END"))

    def set_poison(*states: str) -> None:
        with engine.db.begin() as conn:
            conn.execute(sa.text("DELETE FROM poison"))
            for state in states:
                conn.execute(sa.text("INSERT INTO poison VALUES (:s)"), {"s": state})
    yield set_poison
    with engine.db.begin() as conn:  # PostgreSQL keeps one database for the session: leave nothing behind
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("DROP TRIGGER poison_frames ON frames"))
            conn.execute(sa.text("DROP FUNCTION poison_frames()"))
        conn.execute(sa.text("DROP TABLE poison"))


TWO_TASKS = {"StartAt": "A", "States": {
    "A": {"Type": "Task", "Resource": "py:a", "Next": "B",
          "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
    "B": {"Type": "Task", "Resource": "py:b", "Next": "C"},
    "C": {"Type": "Pass", "End": True},
    "Caught": {"Type": "Pass", "End": True}}}


def test_a_transition_that_can_never_be_stored_fails_the_execution_after_bounded_tries(engine, poison, caplog):
    calls = []
    engine.handler("py:a")(lambda value: calls.append(1) or value)
    engine.handler("py:b")(lambda value: value)
    poison("B")
    with caplog.at_level(logging.ERROR, "statemill.worker"):
        result = run(engine, TWO_TASKS)
    assert (result["status"], result["error"]) == ("FAILED", "States.Runtime")
    assert "poisoned state" in result["cause"] and "state 'A'" in result["cause"]
    assert f"({MAX_COMMIT_FAILURES} attempts)" in result["cause"]
    assert len(calls) == MAX_COMMIT_FAILURES, "each try ran the handler again (same idempotency key), then it ended"
    history = engine.history(result["executionArn"])
    assert [e["type"] for e in history] == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled",
                                            "ExecutionFailed"]
    assert history[-1]["executionFailedEventDetails"] == {"error": "States.Runtime", "cause": result["cause"]}
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(frames.c.status)).scalars().all() == ["FAILED"]
    assert len([r for r in caplog.records if "could not be stored" in r.getMessage()]) == MAX_COMMIT_FAILURES


def test_failed_commits_are_counted_per_version_and_a_later_success_goes_on(engine, poison):
    """Each of two transitions fails MAX_COMMIT_FAILURES - 1 times (more in total than the bound), then is stored:
    the count is of one frame version's failures, so the execution succeeds."""
    calls = {"a": 0, "b": 0}

    def handler(name: str, then_poison: tuple[str, ...]):
        def call(value):
            calls[name] += 1
            if calls[name] == MAX_COMMIT_FAILURES:  # the try after the last tolerated failure: cure it
                poison(*then_poison)
            return value
        return call

    engine.handler("py:a")(handler("a", ("C",)))
    engine.handler("py:b")(handler("b", ()))
    poison("B")
    result = run(engine, TWO_TASKS)
    assert result["status"] == "SUCCEEDED" and result["output"] == DATA
    assert calls == {"a": MAX_COMMIT_FAILURES, "b": MAX_COMMIT_FAILURES}
    history = engine.history(result["executionArn"])
    assert [e["type"] for e in history].count("TaskSucceeded") == 2


def test_a_database_from_before_migration_3_gains_the_commit_failure_count(db_url, fake_clock):
    made = Engine(db_url, clock=fake_clock)
    with made.db.begin() as conn:  # as version 1 left it: no commit_failures column
        conn.execute(sa.text("ALTER TABLE frames DROP COLUMN commit_failures"))
        conn.execute(sa.text("UPDATE statemill_schema SET version = 1"))
    made.db.dispose()
    upgraded = Engine(db_url, clock=fake_clock)
    try:
        columns = {c["name"]: c for c in sa.inspect(upgraded.db).get_columns("frames")}
        assert "commit_failures" in columns and not columns["commit_failures"]["nullable"]
        returning(upgraded, DATA)
        assert run(upgraded, ONE_TASK)["status"] == "SUCCEEDED"
    finally:
        upgraded.db.dispose()


# --------------------------------------------------------------------------- a sync handler hung past its timeout
def test_run_exits_promptly_when_a_sync_handler_hangs_past_its_timeout(tmp_path):
    (tmp_path / "hung.py").write_text("import time\n\n\ndef hang(value):\n    time.sleep(40)\n    return value\n\n\n"
                                      "HANDLERS = {'hang': hang}\n")
    (tmp_path / "hang.json").write_text(json.dumps({"StartAt": "Hang", "States": {
        "Hang": {"Type": "Task", "Resource": "hang", "TimeoutSeconds": 1, "End": True}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "statemill.cli.main", "run", str(tmp_path / "hang.json"),
                           "--handlers", "hung", "--db", str(tmp_path / "s.db"), "--json", "--input", json.dumps(DATA)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    described = json.loads(done.stdout)
    assert (described["status"], described["error"]) == ("FAILED", "States.Timeout")
    assert elapsed < 15, f"run took {elapsed:.1f}s: it waited for the hung handler thread"


# ------------------------------------------------------------------------ any value a handler may return (property)
JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=8))
PLAIN_JSON = st.recursive(JSON_SCALARS, lambda kids: st.lists(kids, max_size=3)
                          | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=12)
ODD_LEAVES = (st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0, False, "", None, b"", bytearray(b"0"),
                               frozenset(), Opaque(), 2 ** 64, -(2 ** 63), HUGE, 1e308])
              | st.sets(st.integers(), max_size=2)
              | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
              | st.integers(MAX_DEPTH - 2, MAX_DEPTH + 40).map(nested))
ANY_KEY = st.text(max_size=4) | st.integers() | st.booleans() | st.none() | st.floats() | st.tuples(st.integers())
ANY_VALUE = st.recursive(JSON_SCALARS | ODD_LEAVES,
                         lambda kids: st.lists(kids, max_size=3) | st.tuples(kids)
                         | st.dictionaries(ANY_KEY, kids, max_size=3), max_leaves=10)


@pytest.fixture
def sqlite_engine(tmp_path):
    made = Engine(f"sqlite:///{tmp_path / 'property.db'}", clock=FakeClock())
    yield made
    made.db.dispose()


def run_value(engine: Engine, value) -> dict:
    """Run ONE_TASK whose handler returns ``value``; the execution must end within a few seconds."""
    engine.handlers.register("py:give", lambda _input: value)
    return run(engine, ONE_TASK, deadline=10)


@pytest.mark.property
@given(value=PLAIN_JSON)
def test_property_every_plain_json_result_is_stored_exactly(sqlite_engine, value):
    sqlite_engine.register(ONE_TASK, "m")
    result = run_value(sqlite_engine, value)
    assert result["status"] == "SUCCEEDED"
    assert json.dumps(result["output"]) == json.dumps(value)


@pytest.mark.property
@given(value=ANY_VALUE)
def test_property_any_result_is_stored_as_json_or_fails_the_task_by_name(sqlite_engine, caplog, value):
    sqlite_engine.register(ONE_TASK, "m")
    caplog.clear()
    with caplog.at_level(logging.ERROR, "statemill"):
        result = run_value(sqlite_engine, value)
    assert not caplog.records, "nothing may escape the worker"
    assert result["status"] in ("SUCCEEDED", "FAILED"), "the frame must not be stuck"
    if result["status"] == "SUCCEEDED":
        assert json.dumps(result["output"], allow_nan=False) == json.dumps(json.loads(json.dumps(value)))
    else:
        assert result["error"] == MARSHAL_ERROR and result["cause"].startswith("Unable to marshal response: ")
        with sqlite_engine.db.connect() as conn:
            kinds = conn.execute(sa.select(history_events.c.type).order_by(history_events.c.id.desc()).limit(2)
                                 .where(history_events.c.execution_id == sa.select(executions.c.id).where(
                                     executions.c.arn == result["executionArn"]).scalar_subquery())).scalars().all()
        assert kinds == ["ExecutionFailed", "TaskFailed"]
