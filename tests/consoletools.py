"""What the console tests share: an approval machine with a hostile state name, its handlers module, and an HTTP
session that reads the CSRF token off a page the way a browser form carries it."""
from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

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


def wait_for(predicate, seconds: float = 15.0, what: str = "the condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds} s")


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
