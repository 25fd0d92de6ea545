"""Settings shared by the commands: the database URL, handler modules, region and account.

Precedence: command-line options, then environment variables, then ``[tool.statemill]`` in the nearest
``pyproject.toml`` (current directory or a parent), then defaults.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from statemill.engine import Engine, default_registry
from statemill.engine.store.db import ENV_VAR, default_url

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]


def project_settings(start: Path | None = None) -> dict[str, Any]:
    """``[tool.statemill]`` of the nearest pyproject.toml, or an empty dict."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and tomllib is not None:
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                return {}
            settings = data.get("tool", {}).get("statemill", {})
            if settings:
                settings = dict(settings, _root=str(folder))
            return settings
    return {}


def database_url(option: str | None) -> str:
    if option:
        return option
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    settings = project_settings()
    if "database" in settings:
        return settings["database"]
    return default_url()


def import_handlers(modules: tuple[str, ...], engine: Engine) -> None:
    """Import each module and register its ``HANDLERS`` mapping plus whatever it registered with
    ``statemill.engine.handler`` at import time. Modules from ``[tool.statemill] handlers`` come first."""
    settings = project_settings()
    configured = settings.get("handlers", [])
    if isinstance(configured, str):
        configured = [configured]
    for path in (os.getcwd(), settings.get("_root")):
        if path and path not in sys.path:
            sys.path.insert(0, path)
    for name in [*configured, *modules]:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise click.UsageError(f"cannot import handler module {name!r}: {exc}") from None
        mapping = getattr(module, "HANDLERS", None)
        if mapping is not None:
            if not hasattr(mapping, "items"):
                raise click.UsageError(f"{name}.HANDLERS must be a mapping of resource strings to callables")
            engine.handlers.update(mapping)
    engine.handlers.update(default_registry.mapping())


def make_engine(db: str | None, handlers: tuple[str, ...] = (), **options: Any) -> Engine:
    settings = project_settings()
    for key in ("region", "account"):
        if key in settings and key not in options:
            options[key] = settings[key]
    engine = Engine(database_url(db), **options)
    import_handlers(handlers, engine)
    return engine
