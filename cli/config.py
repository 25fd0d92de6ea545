"""Settings shared by the commands: the database URL, the storage folder, handler modules, region and account.

Precedence: command-line options, then environment variables, then ``[tool.statemill]`` in the nearest
``pyproject.toml`` (current directory or a parent), then defaults.

Only the commands that run tasks (``run`` and ``worker``) import handler modules: reading settings is safe in an
untrusted checkout, importing its code is not, so ``list``, ``describe`` and the other inspection commands never do.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from statemill.engine.project import project_settings

from .errors import InvalidHandlers

if TYPE_CHECKING:
    from statemill.engine import Client, Engine

# store.db's ENV_VAR and DEFAULT_URL, repeated: that module imports SQLAlchemy, which the token commands avoid.
ENV_VAR = "STATEMILL_DATABASE_URL"
DEFAULT_URL = "sqlite:///statemill.db"


def database_url(option: str | None) -> str:
    if option:
        return option
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    settings = project_settings()
    if isinstance(settings.get("database"), str):
        return settings["database"]
    return DEFAULT_URL


def storage_dir(option: str | None) -> str:
    """Distributed Map's storage folder: --storage, $STATEMILL_STORAGE, [tool.statemill] storage, ./statemill-storage."""
    from statemill.engine.storage import storage_root
    return str(storage_root(option))


def _arn_options() -> dict[str, Any]:
    settings = project_settings()
    return {key: str(settings[key]) for key in ("region", "account") if key in settings}


def open_client(db: str | None, *, create: bool = False, read_only: bool = False) -> Client:
    """A client without handlers. ``create=False`` (the default) refuses a database that does not exist instead
    of creating it; ``read_only`` also writes nothing (see ``open_engine``)."""
    from statemill.engine import Client
    from statemill.engine.store.db import open_engine
    return Client(open_engine(database_url(db), create=create, read_only=read_only), **_arn_options())


def open_engine_with_handlers(db: str | None, handlers: tuple[str, ...], **options: Any) -> Engine:
    """An engine for the commands that run tasks: the database (created if needed) and the handler modules."""
    from statemill.engine import Engine
    from statemill.engine.store.db import open_engine
    engine = Engine(open_engine(database_url(db)), **_arn_options(), **options)
    import_handlers(handlers, engine)
    return engine


def import_handlers(modules: tuple[str, ...], engine: Engine) -> None:
    """Import each module and register its ``HANDLERS`` mapping plus whatever it registered with
    ``statemill.engine.handler`` at import time. Modules from ``[tool.statemill] handlers`` come first."""
    from statemill.engine import default_registry
    settings = project_settings()
    configured = settings.get("handlers", [])
    if isinstance(configured, str):
        configured = [configured]
    for path in (os.getcwd(), settings.get("_root")):
        if path and path not in sys.path:
            sys.path.insert(0, path)
    for name in [*configured, *modules]:
        before = default_registry.mapping()
        module = _import(str(name))
        mapping = getattr(module, "HANDLERS", None)
        if mapping is not None:
            engine.handlers.update(_checked(name, mapping))
        elif default_registry.mapping() == before:
            raise InvalidHandlers(f"handler module {name!r} has no HANDLERS mapping and registered no handler with "
                                  "@statemill.engine.handler(...)")
    engine.handlers.update(default_registry.mapping())


def _import(name: str):
    """Import a handler module; a failure shows the user's own frames, not importlib's or ours."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise InvalidHandlers(f"cannot import handler module {name!r}: no module named {exc.name!r} "
                                  f"(looked in the current directory and sys.path)") from None
        raise InvalidHandlers(f"handler module {name!r} failed to import: {_one_line(exc)}",
                              _user_frames(exc)) from None
    except BaseException as exc:  # noqa: BLE001 - any failure of the user's module at import time
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise InvalidHandlers(f"handler module {name!r} failed to import: {_one_line(exc)}",
                              _user_frames(exc)) from None


def _user_frames(exc: BaseException) -> list[str]:
    """The traceback limited to frames outside importlib and statemill (and a SyntaxError's located line)."""
    ours = (str(Path(__file__).resolve().parent), "<frozen")
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(ours) and "/importlib/" not in f.filename]
    lines = [line for block in traceback.format_list(frames) for line in block.rstrip("\n").split("\n")]
    if isinstance(exc, SyntaxError):
        lines += [line for block in traceback.format_exception_only(type(exc), exc)
                  for line in block.rstrip("\n").split("\n")][:-1]
    return lines


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def _checked(name: str, mapping: Any) -> dict[str, Callable[..., Any]]:
    """``HANDLERS`` must map resource strings to callables."""
    if not hasattr(mapping, "items"):
        raise InvalidHandlers(f"{name}.HANDLERS must be a mapping of resource strings to callables, "
                              f"not {type(mapping).__name__}")
    for resource, fn in mapping.items():
        if not isinstance(resource, str) or not resource:
            raise InvalidHandlers(f"{name}.HANDLERS has the key {resource!r}: resources are non-empty strings")
        if not callable(fn):
            raise InvalidHandlers(f"{name}.HANDLERS[{resource!r}] is {fn!r}, not a function")
    return dict(mapping)
