"""Shared fixtures: a fresh database per test (a SQLite file, and PostgreSQL when a server answers), a fake
clock, and an engine on both.

PostgreSQL: ``$STATEMILL_TEST_POSTGRES_URL`` (a server URL; the tests create and drop their own database on it),
else the server on 127.0.0.1:5432 as user ``postgres``. When none answers, the PostgreSQL variants are skipped
with the reason.
"""
from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from statemill.engine import Engine, FakeClock
from statemill.engine.store.schema import metadata

POSTGRES_SERVER = os.environ.get("STATEMILL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _psycopg_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database for this test run (dropped at the end), or a skip saying why."""
    try:
        admin = sa.create_engine(_psycopg_url(POSTGRES_SERVER), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach a server means: skip
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_SERVER} ({type(exc).__name__}); set "
                    "STATEMILL_TEST_POSTGRES_URL to a server URL to run the PostgreSQL tests")
    name = f"statemill_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A database URL with no executions in it: a new SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'statemill.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(_psycopg_url(url))
    with engine.begin() as conn:
        metadata.create_all(conn)
        names = ", ".join(t.name for t in metadata.sorted_tables if t.name != "statemill_schema")
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that jumps over Waits and retry backoff instead of sleeping."""
    return FakeClock()


@pytest.fixture
def engine(db_url, fake_clock) -> Engine:
    """An engine on a fresh database with the fake clock; add handlers with ``@engine.handler(...)``."""
    made = Engine(db_url, clock=fake_clock)
    yield made
    made.db.dispose()
