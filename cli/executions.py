"""Commands that run and inspect executions: run, start, worker, describe, list, history, stop.

Human-readable output by default; ``--json`` prints one JSON object with AWS's field names. Exit codes: 0 when an
execution SUCCEEDED (or a command worked), 1 for FAILED/TIMED_OUT/ABORTED, 2 for usage or definition errors.
"""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from statemill.engine import (DefinitionError, ExecutionAlreadyExists, ExecutionDoesNotExist, InvalidExecutionInput,
                              InvalidName, StateMachineDoesNotExist)
from statemill.engine.client import parse_input
from statemill.engine.runtime import TERMINAL

from .config import make_engine

err = Console(stderr=True, highlight=False)
EXPECTED = (ExecutionAlreadyExists, ExecutionDoesNotExist, InvalidExecutionInput, InvalidName,
            StateMachineDoesNotExist)


def db_option(fn):
    return click.option("--db", metavar="URL", help="Database URL (default: $STATEMILL_DATABASE_URL, "
                        "[tool.statemill] database, or sqlite:///statemill.db).")(fn)


def handlers_option(fn):
    return click.option("--handlers", "handlers", multiple=True, metavar="MODULE",
                        help="Import MODULE and register its HANDLERS mapping (repeatable).")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object (AWS field names).")(fn)


def start_options(fn):
    """The options ``run`` and ``start`` share: the definition, its input, the names, handlers and database."""
    for option in reversed([
        click.argument("file", type=click.Path(dir_okay=False)),
        click.option("--input", "input_", metavar="JSON|@FILE", help="Execution input: JSON text, @file or @- for stdin."),
        click.option("--name", metavar="NAME", help="Execution name (default: a UUID)."),
        click.option("--machine-name", metavar="NAME", help="State machine name (default: the file's stem)."),
        handlers_option, db_option, json_option,
    ]):
        fn = option(fn)
    return fn


def read_input(value: str | None) -> str | None:
    """``--input`` takes JSON text or ``@file``; ``@-`` reads standard input."""
    if value is None or not value.startswith("@"):
        return value
    source = value[1:]
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot read input file {source!r}: {exc.strerror or exc}") from None


def fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    sys.exit(code)


def definition_failed(exc: DefinitionError) -> None:
    for diagnostic in exc.diagnostics:
        err.print(diagnostic.format(), markup=False, soft_wrap=True)
    sys.exit(2)


def print_execution(description: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(description, ensure_ascii=False))
        return
    status = description["status"]
    colour = {"SUCCEEDED": "green", "RUNNING": "cyan"}.get(status, "red")
    err.print(f"[{colour}]{status}[/{colour}] {description['executionArn']}", markup=True, soft_wrap=True)
    if "output" in description:
        click.echo(json.dumps(description["output"], indent=2, ensure_ascii=False))
    if "error" in description or "cause" in description:
        err.print(f"error: {description.get('error')}\ncause: {description.get('cause')}", markup=False,
                  soft_wrap=True)


def exit_for(status: str) -> None:
    sys.exit(0 if status in ("SUCCEEDED", "RUNNING") else 1)


def progress_printer(quiet: bool):
    """A live view on stderr of the states each transition enters and leaves."""
    if quiet:
        return None

    def show(update: dict[str, Any]) -> None:
        for event_type, name in update["events"]:
            if event_type.endswith("StateEntered"):
                err.print(f"  [cyan]→[/cyan] {name} [dim]({event_type[:-12]})[/dim]", markup=True)
            elif event_type in ("ExecutionFailed", "ExecutionTimedOut", "MapIterationFailed") or \
                    event_type.endswith(("Failed", "TimedOut")) and not event_type.startswith("Execution"):
                err.print(f"  [red]✗[/red] {event_type}", markup=True)
    return show


@click.command()
@start_options
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option("--concurrency", default=16, show_default=True, help="Handlers run at once.")
def run(file, input_, name, machine_name, handlers, db, as_json, quiet, concurrency):
    """Register FILE, start an execution and drive it to its end in this process; print the result.

    Exit code 0 when the execution SUCCEEDED, 1 when it FAILED, TIMED_OUT or was ABORTED, 2 for usage errors or
    an invalid definition.
    """
    arn, engine = _start(file, input_, name, machine_name, handlers, db)
    previous = signal.getsignal(signal.SIGTERM)
    worker = engine.worker(execution=arn, concurrency=concurrency, on_event=progress_printer(quiet or as_json))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.run(until=lambda: engine.status(arn) in TERMINAL)
    except KeyboardInterrupt:
        worker.stop()
        err.print(f"interrupted: the execution goes on durably; resume it with `statemill worker` ({arn})")
        sys.exit(130)
    finally:
        worker.close()
        signal.signal(signal.SIGTERM, previous)
    description = engine.describe(arn)
    print_execution(description, as_json)
    exit_for(description["status"])


@click.command()
@start_options
def start(file, input_, name, machine_name, handlers, db, as_json):
    """Register FILE and start an execution; return at once (a `statemill worker` runs it)."""
    arn, engine = _start(file, input_, name, machine_name, handlers, db)
    started = {"executionArn": arn, "startDate": engine.describe(arn)["startDate"]}
    click.echo(json.dumps(started) if as_json else arn)


def _start(file, input_, name, machine_name, handlers, db):
    text = read_input(input_)
    try:
        value = parse_input(text)  # refuse bad input before anything is written
    except InvalidExecutionInput as exc:
        fail(f"InvalidExecutionInput: {exc}")
    engine = make_engine(db, handlers)
    try:
        machine = engine.register(file, machine_name)
        started = engine.start(machine["name"], value, name=name)
    except DefinitionError as exc:
        definition_failed(exc)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    except EXPECTED as exc:
        fail(f"{type(exc).__name__}: {exc}")
    return started["executionArn"], engine


@click.command()
@handlers_option
@db_option
@click.option("--concurrency", default=16, show_default=True, help="Handlers run at once.")
@click.option("--lease", default=30.0, show_default=True, help="Seconds a claimed frame stays ours unrenewed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def worker(handlers, db, concurrency, lease, quiet):
    """Work on every execution in the database until SIGTERM or Ctrl-C (finishing what is in flight): every state
    that needs no handler, and the tasks whose handlers --handlers registers (others wait for a worker that has them)."""
    engine = make_engine(db, handlers)
    loop = engine.worker(concurrency=concurrency, lease_seconds=lease, on_event=progress_printer(quiet))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.stop())
    if not quiet:
        err.print(f"worker {loop.id} on {engine.db.url.render_as_string(hide_password=True)} "
                  f"with handlers: {', '.join(engine.handlers.resources()) or 'none'}")
    try:
        loop.run()
    finally:
        loop.close()


@click.command()
@click.argument("arn")
@db_option
@json_option
def describe(arn, db, as_json):
    """Show an execution (DescribeExecution), the task tokens it waits on and the tasks waiting for a worker."""
    engine = make_engine(db)
    try:
        description = engine.describe(arn)
    except ExecutionDoesNotExist as exc:
        fail(f"ExecutionDoesNotExist: {exc}", 1)
    waiting, unserved = engine.pending_tokens(arn), engine.waiting_for_workers(arn)
    if waiting:
        description = {**description, "waitingTasks": waiting}
    if unserved:
        description = {**description, "waitingForWorkers": unserved}
    if as_json:
        click.echo(json.dumps(description, ensure_ascii=False))
        return
    for key in ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "error", "cause"):
        if key in description:
            click.echo(f"{key:16} {description[key]}")
    click.echo(f"{'input':16} {json.dumps(description['input'], ensure_ascii=False)}")
    if "output" in description:
        click.echo(f"{'output':16} {json.dumps(description['output'], ensure_ascii=False)}")
    for task in waiting:
        click.echo(f"{'waiting':16} {task['stateName']} since {task['createdAt']}: token {task['taskToken']}")
    for task in unserved:
        click.echo(f"{'waiting':16} {task['stateName']} since {task['since']}: for a worker serving "
                   f"{task['handlerKey']} (live workers serving it: {task['liveWorkersServing']})")


@click.command(name="list")
@click.option("--machine", metavar="NAME", help="Only executions of this state machine.")
@click.option("--status", type=click.Choice(["RUNNING", *TERMINAL]), help="Only executions with this status.")
@click.option("--limit", default=100, show_default=True)
@db_option
@json_option
def list_(machine, status, limit, db, as_json):
    """List executions, newest first (ListExecutions)."""
    engine = make_engine(db)
    found = engine.list(machine, status, limit)
    if as_json:
        click.echo(json.dumps({"executions": found}))
        return
    from rich.table import Table
    table = Table("status", "started", "machine", "name", "executionArn", box=None)
    for item in found:
        table.add_row(item["status"], item["startDate"], item["stateMachineArn"].rsplit(":", 1)[-1], item["name"],
                      item["executionArn"])
    Console().print(table)


@click.command()
@click.argument("arn")
@click.option("--reverse", is_flag=True, help="Newest event first.")
@db_option
@json_option
def history(arn, reverse, db, as_json):
    """Show an execution's history events (GetExecutionHistory)."""
    engine = make_engine(db)
    try:
        events = engine.history(arn, reverse)
    except ExecutionDoesNotExist as exc:
        fail(f"ExecutionDoesNotExist: {exc}", 1)
    if as_json:
        click.echo(json.dumps({"events": events}, ensure_ascii=False))
        return
    for event in events:
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
        summary = details.get("name") or details.get("error") or ""
        click.echo(f"{event['id']:>5} {event['timestamp']} {event['type']:28} {summary}")


@click.command()
@click.argument("arn")
@click.option("--error", metavar="NAME", help="Error name recorded on the execution.")
@click.option("--cause", metavar="TEXT", help="Cause recorded on the execution.")
@db_option
@json_option
def stop(arn, error, cause, db, as_json):
    """Stop a running execution (status ABORTED); its waiting task tokens stop being accepted."""
    engine = make_engine(db)
    try:
        result = engine.stop(arn, error, cause)
    except ExecutionDoesNotExist as exc:
        fail(f"ExecutionDoesNotExist: {exc}", 1)
    click.echo(json.dumps(result) if as_json else f"stopped {arn}")


COMMANDS = [run, start, worker, describe, list_, history, stop]
