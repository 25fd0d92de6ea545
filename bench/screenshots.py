"""The README's console screenshots, made again from the examples: a `statemill serve --console-actions` over a
fresh database with order sagas (shipped, compensated) and expense approvals waiting for a person, photographed in
Chromium by Playwright.

    python bench/screenshots.py [--out server/console/screenshots]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from consoletools import wait_for  # noqa: E402
from servertools import ServerProcess  # noqa: E402
from statemill.engine import Client  # noqa: E402

EXAMPLES = ROOT / "statemachines"
HANDLERS = "statemill.statemachines.demo_handlers"
# The approval example's handler prints commands; here a person answers in the console instead.
QUIET_APPROVAL = 'HANDLERS = {"approval.request": lambda request: {"notified": "console"}}\n'


def populate(client: Client) -> int:
    """Sagas that ship and that compensate, and approvals waiting; returns the id of one waiting approval."""
    client.register(EXAMPLES / "order_saga.yaml")
    client.register(EXAMPLES / "approval.yaml")
    order = json.loads((EXAMPLES / "order_input.json").read_text())
    for i, country in enumerate(["NL", "DE", "US", "FR", "NL"]):
        client.start("order_saga", {**order, "orderId": f"A-{1001 + i}", "address": {**order["address"],
                                                                                     "country": country}},
                     name=f"order-A-{1001 + i}")
    waiting = []
    for who, amount, reason in [("ada", 120, "conference ticket"), ("grace", 0, "a book"),
                                ("linus", 2400, "a new laptop")]:
        arn = client.start("approval", {"requester": who, "amount": amount, "reason": reason, "urgent": False},
                           name=f"expense-{who}")["executionArn"]
        waiting.append(arn)
    for arn in waiting:
        wait_for(lambda: client.pending_tokens(arn), what="the approval's token")
    wait_for(lambda: all(e["status"] != "RUNNING" for e in client.list("order_saga")), what="the sagas")
    first = client.pending_tokens(waiting[0])[0]["taskToken"]
    client.send_task_success(first, json.dumps({"approver": "grace", "comment": ""}))
    return client.execution_id(waiting[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "server" / "console" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory(prefix="statemill-shots-") as folder:
        (Path(folder) / "quiet_approval.py").write_text(QUIET_APPROVAL)
        db = f"sqlite:///{folder}/console.db"
        server = ServerProcess(Path(folder), db, "--handlers", HANDLERS, "--handlers", "quiet_approval", "-q",
                               "--console-actions")
        client = Client(db)
        try:
            waiting = populate(client)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=os.environ.get("STATEMILL_CHROMIUM", "/usr/bin/chromium"), args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                shots = {"executions.png": "/console/executions", "execution.png": f"/console/executions/{waiting}",
                         "tasks.png": "/console/tasks", "machine.png": "/console/machines/order_saga"}
                for name, path in shots.items():
                    page.goto(server.url + path)
                    page.screenshot(path=str(out / name))
                    print(out / name)
                browser.close()
        finally:
            server.stop()
            client.db.dispose()


if __name__ == "__main__":
    main()
