"""How every command reports a failure: one line ``error: <Name>: <message>`` on stderr, and an exit code.

Exit codes (the same for every command):
  0  the command did what was asked (an execution run to its end SUCCEEDED);
  1  it was understood but could not be done: the execution FAILED, TIMED_OUT or was ABORTED, what it names does
     not exist, the engine refused it (a used task token, an execution name taken), or the database is unusable;
  2  the command line is wrong: usage, input that is not JSON, an invalid definition, a file that cannot be read,
     a database URL statemill cannot use, a handler module that cannot be used.
"""
from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from statemill.engine.errors import DefinitionError, StatemillError

from .text import safe

OK, FAILED, USAGE = 0, 1, 2
INTERRUPTED = 130


class InvalidHandlers(StatemillError):
    """A handler module cannot be imported, or what it offers is not a mapping of resources to callables.
    ``details`` holds the lines shown under the error: the user's own frames of an import failure."""

    def __init__(self, message: str, details: list[str] | None = None):
        super().__init__(message)
        self.details = details or []


# Errors in what the user typed; every other StatemillError means "understood, but refused or not possible".
USAGE_ERRORS = (("statemill.engine.client", "InvalidExecutionInput"), ("statemill.engine.errors", "InvalidOutput"),
                ("statemill.engine.client", "InvalidName"), ("statemill.engine.store.db", "InvalidDatabaseUrl"),
                (__name__, "InvalidHandlers"))


def loaded(module: str, name: str) -> type | None:
    """Class ``name`` of ``module`` if that module has been imported, else None: an exception of a module nobody
    imported cannot have been raised, and importing it only to say so would cost every command its start-up."""
    found = sys.modules.get(module)
    return getattr(found, name, None) if found is not None else None


def fail(name: str, message: str, code: int) -> NoReturn:
    """Print ``error: <name>: <message>`` on stderr and exit with ``code``."""
    click.echo(f"error: {name}: {safe(message)}", err=True)
    sys.exit(code)


def report(exc: BaseException) -> int:
    """Print what went wrong with ``exc`` for a user, and return the exit code."""
    if isinstance(exc, DefinitionError):
        for diagnostic in exc.diagnostics:
            click.echo(safe(diagnostic.format()), err=True)
        return USAGE
    database_error = loaded("sqlalchemy.exc", "DBAPIError")
    if isinstance(exc, StatemillError):
        usage = tuple(filter(None, (loaded(module, name) for module, name in USAGE_ERRORS)))
        name, code = type(exc).__name__, USAGE if isinstance(exc, usage) else FAILED
        message = str(exc)
    elif database_error is not None and isinstance(exc, database_error):
        from statemill.engine.store.db import describe_error
        name, code, message = "DatabaseError", FAILED, describe_error(exc)
    elif isinstance(exc, click.UsageError):
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        name, code, message = "UsageError", USAGE, exc.format_message() + where
    elif isinstance(exc, click.ClickException):
        name, code, message = "UsageError", exc.exit_code, exc.format_message()
    elif isinstance(exc, (KeyboardInterrupt, click.exceptions.Abort)):
        name, code, message = "Interrupted", INTERRUPTED, "stopped by the user"
    else:
        if os.environ.get("STATEMILL_DEBUG"):
            raise exc
        name, code = "InternalError", FAILED
        message = f"{type(exc).__name__}: {exc} (a bug in statemill; STATEMILL_DEBUG=1 shows the traceback)"
    click.echo(f"error: {name}: {safe(' '.join(message.split()))}", err=True)
    for line in getattr(exc, "details", []):
        click.echo(safe(line), err=True)
    return code
