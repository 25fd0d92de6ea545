"""Commands that answer and list task tokens: send-task-success, send-task-failure, send-task-heartbeat, tokens.

Named and shaped as the AWS CLI's ``aws stepfunctions send-task-*``. They need only the database, not a worker: an
answer is stored at once and the next worker to run carries the execution on. A refused call prints
``error: <AWS error name>: <explanation>`` on stderr and exits 1 (2 when the output, error or cause given is
invalid, or for usage errors); the database is then unchanged.
"""
from __future__ import annotations

import json
from datetime import datetime

import click

from .config import open_client
from .executions import columns, db_option, err, json_option, read_input, resolve_arn
from .text import safe


def token_option(fn):
    return click.option("--task-token", "token", required=True, metavar="TOKEN",
                        help="The token the task handed out ($$.Task.Token); `statemill tokens` lists them.")(fn)


def answer(db: str | None, call) -> dict:
    """``call(target)`` on the database: first opened directly (no SQLAlchemy to import, so the command returns at
    once), else, or when the direct connection fails, through a Client, which explains any problem."""
    from statemill.engine.tokens import Direct

    from .config import database_url
    direct = Direct.open(database_url(db))
    if direct is not None:
        try:
            return call(direct)
        except direct.errors:  # rolled back, nothing written: the Client tries again and reports what is wrong
            pass
        finally:
            direct.close()
    return call(open_client(db))


def done(result: dict, verb: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"{verb}: {safe(result['stateName'])} of {safe(result['executionArn'])}", err=True)


@click.command(name="send-task-success")
@token_option
@click.option("--task-output", "output", required=True, metavar="JSON|@FILE",
              help="The task's result: JSON text, @file, or @- for stdin.")
@db_option
@json_option
def send_task_success(token, output, db, as_json):
    """Complete a waiting task with OUTPUT as its result (SendTaskSuccess)."""
    from statemill.engine.errors import InvalidOutput
    text = read_input(output, InvalidOutput)
    result = answer(db, lambda target: target.send_task_success(token, text))
    done(result, "succeeded", as_json)


@click.command(name="send-task-failure")
@token_option
@click.option("--error", metavar="NAME", help="Error name Retry and Catch match (default: none).")
@click.option("--cause", metavar="TEXT", help="A longer explanation (default: none).")
@db_option
@json_option
def send_task_failure(token, error, cause, db, as_json):
    """Fail a waiting task with ERROR and CAUSE; its Retry and Catch apply (SendTaskFailure)."""
    result = answer(db, lambda target: target.send_task_failure(token, error, cause))
    done(result, "failed", as_json)


@click.command(name="send-task-heartbeat")
@token_option
@db_option
@json_option
def send_task_heartbeat(token, db, as_json):
    """Tell a waiting task its worker is alive: its HeartbeatSeconds start again (SendTaskHeartbeat)."""
    result = answer(db, lambda target: target.send_task_heartbeat(token))
    done(result, "heartbeat", as_json)


@click.command()
@click.option("--execution", "arn", metavar="ARN", help="Only the tokens of this execution.")
@db_option
@json_option
def tokens(arn, db, as_json):
    """List the task tokens waiting for an answer: execution, state, age, heartbeat deadline and token."""
    client = open_client(db, read_only=True)
    waiting = client.pending_tokens(resolve_arn(client, arn) if arn else None)
    if as_json:
        click.echo(json.dumps({"tokens": waiting}))
        return
    if not waiting:
        err.print("no task is waiting for a token", markup=False)
        return
    now = client.clock.now()
    rows = [("EXECUTION", "STATE", "AGE", "HEARTBEAT DEADLINE", "TOKEN")]
    for item in waiting:
        execution = item["executionArn"].split(":execution:", 1)[-1]
        rows.append((execution, item["stateName"], age(now - _epoch(item["createdAt"])),
                     item["heartbeatDeadline"] or "-", item["taskToken"]))
    columns(rows)  # plain text, never wrapped: the token must stay copyable


def age(seconds: float) -> str:
    """A short duration: 42s, 3m05s, 2h07m, 3d04h."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


COMMANDS = [send_task_success, send_task_failure, send_task_heartbeat, tokens]
