"""``[tool.statemill]`` of the nearest pyproject.toml: settings the CLI and the engine share (database, storage...).

Standard library only, so that reading a setting imports neither click nor SQLAlchemy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]


def project_settings(start: Path | None = None) -> dict[str, Any]:
    """``[tool.statemill]`` of the nearest pyproject.toml (``_root`` is that file's folder), or an empty dict."""
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:  # the current directory was removed
        return {}
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and tomllib is not None:
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                return {}
            settings = data.get("tool", {}).get("statemill", {})
            if settings:
                settings = dict(settings, _root=str(folder))
            return settings
    return {}
