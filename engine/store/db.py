"""Open the system database: one SQLAlchemy engine configured for SQLite or PostgreSQL, and its tables created.

SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``, so claims and compare-and-set
commits from many threads and processes serialise on the write lock instead of failing mid-transaction.
"""
from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..jsonvalue import dumps
from .migrations import upgrade

ENV_VAR = "STATEMILL_DATABASE_URL"
DEFAULT_URL = "sqlite:///statemill.db"


def default_url() -> str:
    """``$STATEMILL_DATABASE_URL``, else a SQLite file ``statemill.db`` in the current directory."""
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def normalise_url(url: str) -> str:
    """Accept a bare file path for SQLite and ``postgresql://`` for psycopg 3."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_engine(url: str | None = None) -> Engine:
    """Create the engine for ``url`` (default: ``default_url()``) and make sure the schema exists."""
    url = normalise_url(url or default_url())
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    else:
        # json_serializer: the `json` columns refuse NaN and Infinity as schema.JsonText does on SQLite.
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, json_serializer=dumps)
    create_schema(engine)
    return engine


def reader(engine: Engine) -> Engine:
    """The same engine for read-only work: on SQLite its transactions take no write lock (WAL readers see a
    consistent snapshot), so describing or polling never waits for, or blocks, a commit."""
    return engine.execution_options(statemill_read_only=True)


def _sqlite_begin(conn) -> None:
    read_only = conn.get_execution_options().get("statemill_read_only")
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN IMMEDIATE ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def create_schema(engine: Engine) -> None:
    """Bring the schema to this release's version (see ``migrations``)."""
    upgrade(engine)
