"""Running ``statemill`` as a user does: the installed console script in a subprocess, in a folder of our own."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def command() -> list[str]:
    """The installed console script next to this Python (the venv's), else on PATH, else the module."""
    beside = Path(sys.executable).with_name("statemill")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("statemill")
    return [found] if found else [sys.executable, "-m", "statemill.cli.main"]


def statemill(*args: str, cwd: Path, stdin: bytes | None = None, env: dict | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one command; stdout and stderr are decoded as UTF-8 (errors replaced, so a raw byte is still seen)."""
    import os
    environment = {k: v for k, v in os.environ.items() if k != "STATEMILL_DATABASE_URL"}
    done = subprocess.run([*command(), *args], cwd=cwd, input=stdin if stdin is not None else b"",
                          capture_output=True, timeout=timeout, env={**environment, **(env or {})})
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))
