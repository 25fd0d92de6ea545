"""Open the system database: one SQLAlchemy engine configured for SQLite or PostgreSQL, and its tables created.

SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``, so claims and compare-and-set
commits from many threads and processes serialise on the write lock instead of failing mid-transaction.

Commands that only read (or only answer what exists) open with ``create=False``: a mistyped path is reported, not
created, and nothing is migrated; ``read_only=True`` also writes nothing at all, so a read-only file works.
"""
from __future__ import annotations

import os
import re
import sqlite3
import weakref
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..errors import StatemillError
from ..jsonvalue import dumps
from .migrations import LATEST, current_version, upgrade

ENV_VAR = "STATEMILL_DATABASE_URL"
DEFAULT_URL = "sqlite:///statemill.db"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")
_HINT = "give sqlite:///path/to/file.db, a path ending in .db or .sqlite, or postgresql://user@host/database"


class InvalidDatabaseUrl(StatemillError, ValueError):
    """The database URL is not one statemill can use (unknown scheme, or not a URL at all)."""


class DatabaseUnavailable(StatemillError):
    """The database cannot be opened: missing, unreachable, not a statemill database, or refusing access."""


def default_url() -> str:
    """``$STATEMILL_DATABASE_URL``, else a SQLite file ``statemill.db`` in the current directory."""
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL for ``url``: ``sqlite:///…`` and ``postgresql://…`` (psycopg 3) as given, and a bare path
    ending in .db/.sqlite/.sqlite3 as SQLite. Anything else raises InvalidDatabaseUrl: a typo must not quietly
    become a new file."""
    if "://" not in url:
        if url.lower().endswith(_SQLITE_SUFFIXES) and url.isprintable() and _encodable(url):
            return f"sqlite:///{Path(url).expanduser()}"
        raise InvalidDatabaseUrl(f"{url!r} is not a database URL; {_HINT}")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise InvalidDatabaseUrl(f"unsupported database scheme {scheme!r} in {url!r}; {_HINT}")
    try:
        parsed = sa.engine.make_url(url)
        (parsed.host or "").encode("idna")
        str(parsed).encode("utf-8")
    except (sa.exc.ArgumentError, ValueError):  # UnicodeError is a ValueError
        raise InvalidDatabaseUrl(f"{url!r} is not a database URL; {_HINT}") from None
    if scheme == "sqlite":
        return url
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def open_engine(url: str | None = None, *, create: bool = True, read_only: bool = False,
                schema: bool = True) -> Engine:
    """Create the engine for ``url`` (default: ``default_url()``) and check it answers.

    ``create=True`` creates the database file if needed and migrates the schema to this release's version;
    ``create=False`` requires an existing statemill database of this version and changes nothing;
    ``read_only=True`` (implies ``create=False``) also never writes, so read-only SQLite files and folders work;
    ``schema=False`` neither migrates nor checks the schema version (``statemill db status|upgrade`` do that).
    Raises InvalidDatabaseUrl or DatabaseUnavailable with one line a user can act on.
    """
    given = url or default_url()
    url = normalise_url(given)
    create = create and not read_only
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url, create, read_only)
    else:
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                                  # prepare_threshold: psycopg prepares no statement of its own, so it never sends
                                  # DEALLOCATE ALL (after a ROLLBACK), which would drop hot.run_script's too
                                  connect_args={"connect_timeout": 10, "prepare_threshold": None},
                                  # the `json` columns refuse NaN and Infinity as schema.JsonText does on SQLite
                                  json_serializer=dumps)
    shown = given if "://" not in given else sa.engine.make_url(given).render_as_string(hide_password=True)
    try:
        if create and schema:
            upgrade(engine)
        elif schema:
            _check_schema(engine, shown)
        else:
            engine.connect().close()
    except (sa.exc.DBAPIError, RuntimeError) as exc:
        engine.dispose()
        raise DatabaseUnavailable(f"cannot use the database {shown}: {describe_error(exc)}") from None
    return engine


def _sqlite_engine(url: str, create: bool, read_only: bool) -> Engine:
    path = sa.engine.make_url(url).database or ""
    in_memory = path in ("", ":memory:") or path.startswith("file:")
    if not in_memory:
        file = Path(path)
        if not create and not file.is_file():
            raise DatabaseUnavailable(f"no database at {path} (nothing was created): check --db, "
                                      f"${ENV_VAR} or [tool.statemill] database")
        if create and not file.parent.is_dir():
            raise DatabaseUnavailable(f"cannot create the database {path}: the folder {file.parent} does not exist")
    if read_only and not in_memory:
        engine = sa.create_engine("sqlite://", creator=lambda: _read_only_connection(path))
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    if in_memory:
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
    else:  # no cap on connections: a worker keeps one per frame thread (see keeps_connections)
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, max_overflow=-1)
        _UNCAPPED.add(engine)
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


_UNCAPPED: "weakref.WeakSet[Engine]" = weakref.WeakSet()  # SQLite file engines whose pool never runs out


def keeps_connections(engine: Engine) -> bool:
    """Whether a thread may keep a connection of ``engine`` between its transactions: a SQLite file opened here,
    whose pool has no cap, so connections held that way never starve other callers (nor a server's limit)."""
    return engine in _UNCAPPED


def _read_only_connection(path: str) -> sqlite3.Connection:
    """A connection that never writes. A WAL database needs its -shm file: when the folder is read-only and no
    writer has it open, the file cannot change under us, so it is opened as immutable."""
    uri = Path(path).resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, timeout=60)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if "unable to open" not in str(exc):
            raise
        conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    conn.isolation_level = None
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def _check_schema(engine: Engine, shown: str) -> None:
    """``create=False``: the database must already hold this release's schema."""
    with engine.connect() as conn:
        version = current_version(conn)
    if version == 0:
        raise DatabaseUnavailable(f"{shown} is not a statemill database (no schema): check --db, or "
                                  "create it with `statemill db upgrade`")
    if version < LATEST:
        raise DatabaseUnavailable(f"the database {shown} has schema version {version}, this statemill "
                                  f"needs {LATEST}: run `statemill db upgrade`")
    if version > LATEST:
        raise DatabaseUnavailable(f"the database {shown} has schema version {version}, newer than this "
                                  f"statemill knows ({LATEST}); upgrade statemill")


# Failures that retrying cannot cure: a full disk, a read-only or corrupted file, an I/O error, a lost file.
_LASTING_SQLITE = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CORRUPT", "SQLITE_NOTADB",
                   "SQLITE_CANTOPEN")
_LASTING_SQLITE_TEXT = ("disk is full", "readonly database", "disk i/o error", "not a database", "malformed",
                        "unable to open")
_LASTING_SQLSTATE = ("53", "58", "25006")  # insufficient resources (disk full...), system I/O error, read-only


def lasting(exc: BaseException) -> bool:
    """Whether a database error will come back however often the same work is retried (a deadlock or a dropped
    connection will not: those are retried)."""
    inner = getattr(exc, "orig", None) or exc
    sqlstate = getattr(inner, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith(_LASTING_SQLSTATE)
    name = getattr(inner, "sqlite_errorname", None)
    if name:
        return name.startswith(_LASTING_SQLITE)
    text = str(inner).lower()
    return any(marker in text for marker in _LASTING_SQLITE_TEXT)


def describe_error(exc: BaseException) -> str:
    """The driver's own message, on one line (SQLAlchemy appends SQL and a documentation link)."""
    inner = getattr(exc, "orig", None) or exc
    text = " ".join(str(inner).split())
    return re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text) or type(inner).__name__


def reader(engine: Engine) -> Engine:
    """The same engine for read-only work: on SQLite its transactions take no write lock (WAL readers see a
    consistent snapshot), so describing or polling never waits for, or blocks, a commit."""
    return engine.execution_options(statemill_read_only=True)


def _sqlite_begin(conn) -> None:
    """Start the transaction on the driver's connection directly: SQLAlchemy's execution machinery cost more than
    the BEGIN itself, on every transaction. Its failure is wrapped as SQLAlchemy would wrap it."""
    sql = "BEGIN" if conn.get_execution_options().get("statemill_read_only") else "BEGIN IMMEDIATE"
    try:
        conn.connection.dbapi_connection.execute(sql)
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc


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
