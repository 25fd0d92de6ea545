"""What the console tests share: an approval machine with a hostile state name, its handlers module, and an HTTP
session that reads the CSRF token off a page the way a browser form carries it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from statemill.engine import Client
from statemill.engine.store.schema import executions

from enginetools import wait_for
from servertools import ServerProcess, free_port, serving

HOSTILE = "<script>alert(1)</script>"
# Pass -> a task (named like a script tag) waiting for a token -> Succeed; a rejection is caught into a Fail.
APPROVAL = {
    "Comment": "approve or reject <b>from the console</b>",
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": {"zero": 0, "no": False, "empty": "", "none": None},
                    "ResultPath": "$.falsy", "Next": HOSTILE},
        HOSTILE: {"Type": "Task", "Resource": "console.ask.waitForTaskToken",
                "Parameters": {"token.$": "$$.Task.Token"}, "ResultPath": "$.answer", "Next": "Done",
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejection", "Next": "Refused"}]},
        "Refused": {"Type": "Fail", "Error": "Refused", "Cause": "rejected in the console"},
        "Done": {"Type": "Succeed"},
    },
}
HANDLERS = 'HANDLERS = {"console.ask": lambda payload: {"asked": 0}}\n'


def write_handlers(folder: Path) -> str:
    """The handlers module for ``statemill serve --handlers``, in ``folder`` (on the server's PYTHONPATH)."""
    (folder / "console_handlers.py").write_text(HANDLERS)
    return "console_handlers"


def console_fixtures(name: str):
    """A console test module's ``server`` (``statemill serve --console-actions`` with the approval handlers, one
    for the module) and ``client`` (a Client on its database, with ``approval`` registered) fixtures:
    ``server, client = console_fixtures("console")``."""
    @pytest.fixture(scope="module")
    def server(tmp_path_factory):
        folder = tmp_path_factory.mktemp(name)
        yield from serving(folder, "--handlers", write_handlers(folder), "-q", "--console-actions")

    @pytest.fixture(scope="module")
    def client(server):
        found = Client(server.db)
        found.register(APPROVAL, "approval")
        return found

    return server, client


_names = iter(range(10**6))


def waiting(client: Client, name: str | None = None) -> tuple[str, int, str]:
    """A new execution of ``approval`` waiting in its task for a token: (arn, id, token)."""
    arn = client.start("approval", {"n": 0, "html": "<img src=x onerror=alert(2)>"},
                       name=name or f"run-{next(_names)}")["executionArn"]
    token = wait_for(lambda: client.pending_tokens(arn), what="the task token")[0]["taskToken"]
    return arn, client.execution_id(arn), token


def ended(client: Client, arn: str) -> dict:
    """The execution's description once it is no longer RUNNING."""
    wait_for(lambda: client.status(arn) != "RUNNING", what="the end of the execution")
    return client.describe(arn)


def seed(client: Client, machine: str, count: int, statuses=("RUNNING",)) -> None:
    """``count`` executions of a registered ``machine`` named e0000, e0001... in start order, written in one
    transaction: the pages read only the executions table, and one Client.start each would take ~10 ms apiece."""
    with client.db.begin() as conn:
        machine_id = conn.execute(sa.text("SELECT max(id) FROM state_machines WHERE name = :n"), {"n": machine}).scalar()
        now = client.clock.now()
        rows = [{"machine_id": machine_id, "machine_name": machine, "name": f"e{i:04d}",
                 "arn": client.execution_arn(machine, f"e{i:04d}"), "status": statuses[i % len(statuses)],
                 "input": {"i": i}, "started_at": now - count + i, "event_count": 1,
                 "stopped_at": None if statuses[i % len(statuses)] == "RUNNING" else now - count + i + 0.5}
                for i in range(count)]
        for start in range(0, count, 5000):
            conn.execute(executions.insert(), rows[start:start + 5000])


class Session:
    """An HTTP client of the console with its session cookie, posting forms with the page's CSRF token."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
        self.csrf = ""

    def get(self, path: str, **options) -> httpx.Response:
        answer = self.http.get(path, **options)
        found = re.search(r'name="csrf" value="([^"]+)"', answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, data: dict, csrf: str | None = None) -> httpx.Response:
        return self.http.post(path, data={"csrf": self.csrf if csrf is None else csrf, **data})

    def close(self) -> None:
        self.http.close()


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash [^"]*"[^>]*>([^<]*)</p>', html)


class ConsoleProcess(ServerProcess):
    """``statemill console`` (read-only, no workers) on a free port, instead of ``serve``."""

    def __init__(self, folder: Path, db: str, *args: str):
        self.folder, self.db, self.port = Path(folder), db, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.folder / "console.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "statemill.cli.main", "console", "--port", str(self.port), "--db", db, "-q",
                 *args], cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_until_up()
