"""Shared fixtures: a fresh SQLite database per test, a fake clock, and an engine on both."""
from __future__ import annotations

import pytest

from statemill.engine import Engine, FakeClock


@pytest.fixture
def db_url(tmp_path) -> str:
    """A SQLAlchemy URL of a SQLite file that does not exist yet (the engine creates its tables)."""
    return f"sqlite:///{tmp_path / 'statemill.db'}"


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
