"""A real ``statemill serve`` subprocess and boto3 clients for it (the API tests' fixtures use these)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving(folder: Path, *args: str, db: str | None = None, env: dict[str, str] | None = None):
    """A test module's server (``yield from`` it in a fixture): ``statemill serve`` on ``db`` (default: a SQLite
    file in ``folder``), stopped after the module's tests, which also checks that it exits 0 on SIGTERM."""
    process = ServerProcess(folder, db or f"sqlite:///{folder}/sm.db", *args, env=env)
    yield process
    assert process.stop() == 0, process.log.read_text()


class ServerProcess:
    """``statemill serve`` on a free port of 127.0.0.1, started in ``folder`` (its log is ``folder/server.log``)."""

    def __init__(self, folder: Path, db: str, *args: str, env: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db
        self.log = self.folder / "server.log"
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(self.folder), *sys.path]), **(env or {}))
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "statemill.cli.main", "serve", "--port", str(self.port), "--db", db, *args],
                cwd=self.folder, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"statemill serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"statemill serve did not answer within {timeout} s:\n{self.log.read_text()}")

    def client(self, region: str = REGION, key: str = "test", secret: str = "test", **config):
        return boto3.client("stepfunctions", endpoint_url=self.url, region_name=region, aws_access_key_id=key,
                            aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}, inject_host_prefix=False, **config))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode
