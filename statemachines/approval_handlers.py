"""The handler of the approval example (``approval.yaml``): it hands the task token to a person by printing the
exact commands that approve or reject the request.

Use it with ``--handlers statemill.statemachines.approval_handlers``. A real deployment would send an e-mail or a
chat message with the same two commands (or links to a small web page that calls ``send_task_success``).
"""
from __future__ import annotations

import json
import os
import shlex
import sys

from statemill.engine.store.db import ENV_VAR


def commands(token: str, database: str | None = None) -> dict:
    """The shell commands that approve or reject the task holding ``token``."""
    db = f" --db {shlex.quote(database)}" if database else ""
    decision = json.dumps({"approver": os.environ.get("USER", "me"), "comment": ""})
    return {
        "approve": f"statemill send-task-success{db} --task-token {shlex.quote(token)} "
                   f"--task-output {shlex.quote(decision)}",
        "reject": f"statemill send-task-failure{db} --task-token {shlex.quote(token)} "
                  f"--error Approval.Rejected --cause {shlex.quote('not this time')}",
    }


def request_approval(request: dict) -> dict:
    """Print who asks for what and how to answer; the execution then waits for one of the two commands."""
    found = commands(request["taskToken"], os.environ.get(ENV_VAR))
    print(f"\n[approval] {request['requester']} asks for {request['amount']} ({request['reason']})\n"
          f"  approve: {found['approve']}\n"
          f"  reject:  {found['reject']}\n", file=sys.stderr, flush=True)
    return {"notified": "terminal", **found}


HANDLERS = {"approval.request": request_approval}
