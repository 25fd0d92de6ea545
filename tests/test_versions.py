"""Versions and aliases in the engine, on SQLite and PostgreSQL: executions on a version or alias run that version's
revision and keep it; register-on-run still moves $LATEST; migration 9 upgrades a database made before it."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from statemill.engine import Engine
from statemill.engine import versions as v
from statemill.engine.machines import StateMachineDoesNotExist
from statemill.engine.store import migrations
from statemill.engine.store.db import normalise_url

BEFORE = migrations.MIGRATIONS.index(migrations._v8_versions_and_aliases)  # the version before it (others may follow)


def marked(mark) -> dict:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"mark": mark, "empty": ""}, "End": True}}}


def publish(engine: Engine, name: str, mark) -> int:
    engine.register(marked(mark), name)
    with engine.db.begin() as conn:
        return v.publish(conn, name, None, engine.clock.now())[0]


def test_register_on_run_moves_latest_while_versions_stay_put(engine):
    assert publish(engine, "m", 0) == 1
    assert publish(engine, "m", None) == 2
    engine.register(marked(False), "m")  # a run from a changed file: a new current revision, no new version
    outputs = {}
    for qualifier in (None, "1", "2"):
        arn = engine.start("m", {}, qualifier=qualifier)["executionArn"]
        outputs[qualifier] = engine.wait(arn)
    assert {q: d["output"]["mark"] for q, d in outputs.items()} == {None: False, "1": 0, "2": None}
    assert "stateMachineVersionArn" not in outputs[None]
    assert outputs["2"]["stateMachineVersionArn"] == engine.machine_arn("m") + ":2"


def test_an_alias_execution_keeps_its_version_after_the_alias_moves(engine):
    publish(engine, "a", 0)
    publish(engine, "a", 1)
    with engine.db.begin() as conn:
        v.create_alias(conn, "a", "prod", None, [(1, 100)], engine.clock.now())
    first = engine.start("a", {}, qualifier="prod")["executionArn"]
    with engine.db.begin() as conn:
        v.update_alias(conn, "a", "prod", ..., [(1, 0), (2, 100)], engine.clock.now())
    second = engine.start("a", {}, qualifier="prod")["executionArn"]
    done = [engine.wait(first), engine.wait(second)]
    assert [(d["output"]["mark"], d["stateMachineVersionArn"][-1], d["stateMachineAliasArn"][-5:]) for d in done] \
        == [(0, "1", ":prod"), (1, "2", ":prod")]
    listed = engine.list_page("a", qualifier="2")[0]
    assert [e["executionArn"] for e in listed] == [second]


def test_a_deleted_version_cannot_be_started_but_its_executions_finish(engine):
    publish(engine, "d", 0)
    arn = engine.start("d", {}, qualifier="1")["executionArn"]
    with engine.db.begin() as conn:
        v.delete_version(conn, "d", 1)
    with pytest.raises(StateMachineDoesNotExist):
        engine.start("d", {}, qualifier="1")
    assert engine.wait(arn)["output"] == {"mark": 0, "empty": ""}


def test_migration_9_upgrades_a_database_made_before_it(db_url, fake_clock):
    made = Engine(db_url, clock=fake_clock)
    made.register(marked(0), "old")
    started = made.start("old", {"zero": 0})["executionArn"]
    with made.db.begin() as conn:  # back to the schema before versions: no tables, no columns
        conn.execute(sa.text("DROP TABLE machine_versions"))
        conn.execute(sa.text("DROP TABLE machine_aliases"))
        for table, column in (("machines", "last_version"), ("executions", "version"), ("executions", "alias")):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(sa.text(f"UPDATE statemill_schema SET version = {BEFORE}"))
    made.db.dispose()
    db = sa.create_engine(normalise_url(db_url))
    assert migrations.upgrade(db) == (BEFORE, migrations.LATEST)
    db.dispose()
    upgraded = Engine(db_url, clock=fake_clock)
    try:
        assert "stateMachineVersionArn" not in upgraded.wait(started)
        assert publish(upgraded, "old", 0) == 1
        assert upgraded.wait(upgraded.start("old", {}, qualifier="1")["executionArn"])["stateMachineVersionArn"] \
            .endswith(":old:1")
    finally:
        upgraded.db.dispose()


def test_concurrent_publishes_of_one_revision_make_one_version(db_url, fake_clock):
    """Eight connections publish the same revision at once: each gets version 1 (the machine's row serialises
    them; without it, PostgreSQL would insert version 1 twice)."""
    from concurrent.futures import ThreadPoolExecutor
    made = Engine(db_url, clock=fake_clock)
    made.register(marked(0), "racy")

    def publish_once(_):
        with made.db.begin() as conn:
            return v.publish(conn, "racy", None, fake_clock.now())[0]
    try:
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(publish_once, range(8))) == [1] * 8
        with made.reader.connect() as conn:
            assert [r.version for r in v.versions(conn, "racy", None, 10)] == [1]
    finally:
        made.db.dispose()
