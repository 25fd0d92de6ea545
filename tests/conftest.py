"""Shared fixtures: a fresh database per test (a SQLite file, and PostgreSQL when a server answers), a fake
clock, and an engine on both.

PostgreSQL: ``$STATEMILL_TEST_POSTGRES_URL`` (a server URL; the tests create and drop their own database on it),
else the server on 127.0.0.1:5432 as user ``postgres``, else a throwaway server started with ``initdb``/``pg_ctl``
when PostgreSQL is installed. When none of these works, the PostgreSQL variants are skipped with the reason on a
developer's machine, and fail the run on CI (``CI=true``) or when ``STATEMILL_TEST_POSTGRES_URL`` names a server:
there a missing server is a broken setup, not a reason to go green.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from statemill.engine import Engine, FakeClock
from statemill.engine.store.schema import metadata

# Property-based tests: a short profile by default (CI), a long one on demand:
#   STATEMILL_HYPOTHESIS_PROFILE=long python -m pytest -m property   (or any test selection)
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("STATEMILL_HYPOTHESIS_PROFILE", "ci"))

POSTGRES_SERVER = os.environ.get("STATEMILL_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


def _psycopg_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def _answers(url: str) -> Exception | None:
    try:
        probe = sa.create_engine(_psycopg_url(url), connect_args={"connect_timeout": 3})
        with probe.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        probe.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to reach a server counts as "does not answer"
        return exc
    return None


def _throwaway_server(folder: str):
    """Start a private PostgreSQL with initdb/pg_ctl in ``folder``; returns (url, stop) or (None, reason)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    initdb = found[-1]
    if not initdb or not os.path.exists(initdb):
        return None, "initdb is not installed"
    bindir = os.path.dirname(initdb)
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        if not shutil.which("runuser"):
            return None, "running as root without runuser to start PostgreSQL as another user"
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = os.path.join(folder, "data")
    try:
        subprocess.run([*as_user, initdb, "-D", data, "-U", "postgres", "--auth=trust"], check=True,
                       capture_output=True, timeout=120)
        subprocess.run([*as_user, os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-l",
                        os.path.join(folder, "log"), "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
                        "start"], check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not start a throwaway PostgreSQL ({exc})"

    def stop() -> None:
        subprocess.run([*as_user, os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


def postgres_required() -> bool:
    """On CI, or with a server named explicitly, the PostgreSQL tests must run: a missing server fails them."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or "STATEMILL_TEST_POSTGRES_URL" in os.environ


def _unavailable(reason: str) -> None:
    if postgres_required():
        pytest.fail(f"{reason} (PostgreSQL is required here: CI is set or STATEMILL_TEST_POSTGRES_URL names a "
                    "server)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database for this test run (dropped at the end); else a skip saying why, or a
    failure on CI (see ``postgres_required``)."""
    server, stop = POSTGRES_SERVER, None
    problem = _answers(server)
    if problem is not None and "STATEMILL_TEST_POSTGRES_URL" not in os.environ:
        folder = tempfile.mkdtemp(prefix="statemill-pg-")
        started, stop_or_reason = _throwaway_server(folder)
        if started is None:
            _unavailable(f"no PostgreSQL server answers at {server} ({type(problem).__name__}) and "
                         f"{stop_or_reason}; set STATEMILL_TEST_POSTGRES_URL to a server URL to run these tests")
        server, stop, problem = started, stop_or_reason, _answers(started)
    if problem is not None:
        _unavailable(f"no PostgreSQL server answers at {server} ({type(problem).__name__}); set "
                     "STATEMILL_TEST_POSTGRES_URL to a server URL to run the PostgreSQL tests")
    with _database(server) as url:
        yield url
    if stop is not None:
        stop()


@contextlib.contextmanager
def _database(server: str):
    """A new, empty database on the PostgreSQL ``server`` (a URL of any of its databases), dropped afterwards."""
    admin = sa.create_engine(_psycopg_url(server), isolation_level="AUTOCOMMIT")
    name = f"statemill_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_postgres_url(postgres_url):
    """A database with no tables at all on the session's PostgreSQL server, for this test alone."""
    with _database(postgres_url) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite file with the current schema, made once: each test's database starts as a copy of it, which is
    many times faster than creating the schema again (as the PostgreSQL variant keeps its schema and is emptied)."""
    path = tmp_path_factory.mktemp("template") / "statemill.db"
    Engine(f"sqlite:///{path}").db.dispose()  # the last connection closed: everything is in the main file
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A database URL with the schema and no executions in it: a new SQLite file, or the session's PostgreSQL
    database emptied."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "statemill.db")
        return f"sqlite:///{tmp_path / 'statemill.db'}"
    url = request.getfixturevalue("postgres_url")
    with request.getfixturevalue("postgres_admin").begin() as conn:
        metadata.create_all(conn)
        # DELETE, not TRUNCATE: on tables this small it is several times faster (no new files per table).
        for table in reversed(metadata.sorted_tables):
            if table.name != "statemill_schema":
                conn.execute(table.delete())
        conn.execute(sa.text("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'"))  # ids from 1 again
    return url


@pytest.fixture(scope="session")
def postgres_admin(postgres_url):
    """One connection pool on the session's PostgreSQL database, for emptying it between tests."""
    engine = sa.create_engine(_psycopg_url(postgres_url), pool_size=1)
    yield engine
    engine.dispose()


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


# -- the API server's clients, for every test module that defines a ``server`` fixture (tests/servertools.py)
@pytest.fixture(scope="module")
def sfn(server):
    """A boto3 Step Functions client of the module's ``statemill serve``."""
    return server.client()


@pytest.fixture(scope="module")
def unchecked(server):
    """A client that sends what it is given (botocore's own parameter checks off), to reach the server's checks."""
    return server.client(parameter_validation=False)
