"""Commands that run and inspect executions: run, start, worker, describe, list, history, stop.

Human-readable output by default; ``--json`` prints one JSON object with AWS's field names. Exit codes are those of
``cli.errors``: 0 when an execution SUCCEEDED (or a command worked), 1 for FAILED/TIMED_OUT/ABORTED or a refused
request, 2 for usage errors or an invalid definition. Only ``run`` and ``worker`` import handler modules.
"""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from . import testing
from .config import open_client, open_engine_with_handlers, storage_dir
from .errors import FAILED, USAGE, fail
from .text import markup, safe

# The engine, the database and rich are imported inside the commands that use them: `statemill --help` and the
# light commands start without paying for them.
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")  # AWS ExecutionStatus


class _Stderr:
    """rich's Console on stderr, made when something is first printed (importing rich costs a start-up)."""

    console = None

    def __getattr__(self, name: str):
        if _Stderr.console is None:
            from rich.console import Console
            _Stderr.console = Console(stderr=True, highlight=False)
        return getattr(_Stderr.console, name)


err = _Stderr()


def db_option(fn):
    return click.option("--db", metavar="URL", help="Database URL (default: $STATEMILL_DATABASE_URL, "
                        "[tool.statemill] database, or sqlite:///statemill.db).")(fn)


def storage_option(fn):
    return click.option("--storage", metavar="DIR", help="Distributed Map's storage: one folder per S3 bucket "
                        "(default: $STATEMILL_STORAGE, [tool.statemill] storage, or ./statemill-storage).")(fn)


def handlers_option(fn):
    return click.option("--handlers", "handlers", multiple=True, metavar="MODULE",
                        help="Import MODULE and register its HANDLERS mapping (repeatable).")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object (AWS field names).")(fn)


def start_options(fn):
    """The options ``run`` and ``start`` share: the definition, its input, the names and the database."""
    for option in reversed([
        click.argument("file", type=click.Path(dir_okay=False)),
        click.option("--input", "input_", metavar="JSON|@FILE", help="Execution input: JSON text, @file or @- for stdin."),
        click.option("--name", metavar="NAME", help="Execution name (default: a UUID)."),
        click.option("--machine-name", metavar="NAME", help="State machine name (default: the file's stem)."),
        click.option("--version", "version_", metavar="N", type=click.IntRange(min=1),
                     help="Run published version N (FILE still becomes the current revision)."),
        click.option("--alias", "alias_", metavar="ALIAS", help="Run the version ALIAS picks (by weight)."),
        db_option, json_option,
    ]):
        fn = option(fn)
    return fn


def read_input(value: str | None, error: type[Exception]) -> str | None:
    """``--input``/``--task-output`` take JSON text or ``@file``; ``@-`` reads standard input. Text that is not
    UTF-8 raises ``error`` (InvalidExecutionInput or InvalidOutput)."""
    if value is None or not value.startswith("@"):
        return value
    source = value[1:]
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise click.UsageError(f"cannot read input file {source!r}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = "standard input" if source == "-" else repr(source)
        raise error(f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def resolve_arn(client, execution: str) -> str:
    """An execution ARN from an ARN, ``machine:name``, or an execution name that only one machine uses."""
    if execution.startswith("arn:"):
        return execution
    if ":" in execution:
        machine, name = execution.split(":", 1)
        return client.execution_arn(machine, name)
    from statemill.visualizer.overlay import execution_arn
    return execution_arn(client, execution)


def print_execution(description: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(description, ensure_ascii=False))
        return
    status = description["status"]
    colour = {"SUCCEEDED": "green", "RUNNING": "cyan"}.get(status, "red")
    err.print(f"[{colour}]{status}[/{colour}] {markup(description['executionArn'])}", markup=True, soft_wrap=True)
    if "output" in description:
        click.echo(json.dumps(description["output"], indent=2, ensure_ascii=False))
    for key in ("error", "cause"):
        if key in description:
            err.print(f"{key}: {safe(description[key])}", markup=False, soft_wrap=True)
    for key, label in (("stateMachineVersionArn", "version"), ("stateMachineAliasArn", "alias")):
        if key in description:
            err.print(f"{label}: {safe(description[key])}", markup=False, soft_wrap=True)


def exit_for(status: str) -> None:
    sys.exit(0 if status in ("SUCCEEDED", "RUNNING") else FAILED)


def progress_printer(quiet: bool, only: str | None = None):
    """A live view on stderr of the states each transition enters and leaves (of execution ``only`` if given: `run`
    shows its own execution's states, not those of the child executions a worker in it runs too)."""
    if quiet:
        return None

    def show(update: dict[str, Any]) -> None:
        if only is not None and update["execution"] != only:
            return
        for event_type, name in update["events"]:
            if event_type.endswith("StateEntered"):
                err.print(f"  [cyan]→[/cyan] {markup(name)} [dim]({event_type[:-12]})[/dim]", markup=True,
                          soft_wrap=True)
            elif event_type in ("ExecutionFailed", "ExecutionTimedOut", "MapIterationFailed") or \
                    event_type.endswith(("Failed", "TimedOut")) and not event_type.startswith("Execution"):
                err.print(f"  [red]✗[/red] {event_type}", markup=True)
    return show


def database_failed(exc) -> None:
    """A worker loop stopped because the database kept failing: say so in one line; what was committed stays."""
    from statemill.engine.store.db import describe_error
    fail("DatabaseError", f"the database failed: {describe_error(exc)}. The worker stopped; every committed "
         "transition is kept, and `statemill worker` carries the execution on once the database is fixed", FAILED)


@click.command()
@start_options
@handlers_option
@storage_option
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option("--concurrency", default=16, show_default=True, help="Handlers run at once.")
@testing.run_options
def run(file, input_, name, machine_name, version_, alias_, db, as_json, handlers, storage, quiet, concurrency,
        mock_config, test_case, virtual_time, coverage_file):
    """Register FILE, start an execution and drive it to its end in this process; print the result.

    Exit code 0 when the execution SUCCEEDED, 1 when it FAILED, TIMED_OUT or was ABORTED, 2 for usage errors or
    an invalid definition.
    """
    import sqlalchemy as sa

    from statemill.engine import TERMINAL
    arn, engine = _start(file, input_, name, machine_name, db,
                         lambda: open_engine_with_handlers(db, handlers, storage=storage_dir(storage),
                                                           **testing.engine_options(virtual_time)),
                         mocks=lambda client, machine: testing.load_test_case(
                             mock_config, test_case, machine["name"], client.machine(machine["id"])),
                         version=version_, alias=alias_)
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    worker = engine.worker(execution=arn, concurrency=concurrency, on_event=progress_printer(quiet or as_json, only=arn))
    interrupted = []

    def interrupt(*_) -> None:
        # Ctrl-C: stop after the transitions in flight (a second Ctrl-C interrupts at once). No KeyboardInterrupt in
        # the worker loop, which could land between handing a task to a thread and tracking it.
        interrupted.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        worker.stop()

    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, interrupt)
    try:
        worker.run(until=lambda: engine.status(arn) in TERMINAL)
    except sa.exc.DBAPIError as exc:
        database_failed(exc)
    finally:
        worker.close()
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    if interrupted and engine.status(arn) == "RUNNING":
        err.print(f"interrupted: the execution goes on durably; resume it with `statemill worker` ({markup(arn)})")
        sys.exit(130)
    testing.record_coverage(coverage_file, engine, arn)
    description = engine.describe(arn)
    print_execution(description, as_json)
    exit_for(description["status"])


@click.command()
@start_options
def start(file, input_, name, machine_name, version_, alias_, db, as_json):
    """Register FILE and start an execution; return at once (a `statemill worker` runs it)."""
    arn, client = _start(file, input_, name, machine_name, db, lambda: open_client(db, create=True),
                         version=version_, alias=alias_)
    started = {"executionArn": arn, "startDate": client.describe(arn)["startDate"]}
    click.echo(json.dumps(started) if as_json else arn)


def _start(file, input_, name, machine_name, db, connect, mocks=None, version=None, alias=None):
    """Check the input and the definition before touching the database, then register and start (with the mocks
    ``mocks(client, machine)`` gives, checked before anything starts; on a published version, or the version an
    alias picks, when given)."""
    from statemill.engine import InvalidExecutionInput, loader
    from statemill.engine.client import parse_input
    if version is not None and alias is not None:
        raise click.UsageError("give --version or --alias, not both")
    value = parse_input(read_input(input_, InvalidExecutionInput))
    try:
        loader.load(file)  # a DefinitionError lists every problem, located (a file that is not UTF-8 included)
    except OSError as exc:
        fail("UsageError", f"cannot read {file}: {exc.strerror or exc}", USAGE)
    client = connect()
    machine = client.register(file, machine_name)
    started = client.start(machine["name"], value, name=name, mocks=mocks and mocks(client, machine),
                           qualifier=alias if version is None else str(version))
    return started["executionArn"], client


@click.command()
@handlers_option
@db_option
@storage_option
@click.option("--concurrency", default=16, show_default=True, help="Handlers run at once.")
@click.option("--lease", default=30.0, show_default=True, help="Seconds a claimed frame stays ours unrenewed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def worker(handlers, db, storage, concurrency, lease, quiet):
    """Work on every execution in the database until SIGTERM or Ctrl-C (finishing what is in flight): every state
    that needs no handler, and the tasks whose handlers --handlers registers (others wait for a worker that has them)."""
    import sqlalchemy as sa
    engine = open_engine_with_handlers(db, handlers, storage=storage_dir(storage))
    loop = engine.worker(concurrency=concurrency, lease_seconds=lease, on_event=progress_printer(quiet))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.stop())
    if not quiet:
        err.print(f"worker {markup(loop.id)} on {markup(engine.db.url.render_as_string(hide_password=True))} "
                  f"with handlers: {markup(', '.join(engine.handlers.resources()) or 'none')}", soft_wrap=True)
    try:
        loop.run()
    except sa.exc.DBAPIError as exc:
        database_failed(exc)
    finally:
        loop.close()


@click.command()
@click.argument("arn", metavar="EXECUTION")
@db_option
@json_option
def describe(arn, db, as_json):
    """Show an execution (DescribeExecution), the task tokens it waits on and the tasks waiting for a worker.

    EXECUTION is an execution ARN, MACHINE:NAME, or a NAME only one state machine uses."""
    client = open_client(db, read_only=True)
    arn = resolve_arn(client, arn)
    description = client.describe(arn)
    waiting, unserved = client.pending_tokens(arn), client.waiting_for_workers(arn)
    if waiting:
        description = {**description, "waitingTasks": waiting}
    if unserved:
        description = {**description, "waitingForWorkers": unserved}
    links = {k: v for k, v in client.links(arn).items() if v}  # child workflows: statemill's extras, not AWS's
    description = {**description, **links}
    if as_json:
        click.echo(json.dumps(description, ensure_ascii=False))
        return
    for key in ("executionArn", "stateMachineArn", "stateMachineVersionArn", "stateMachineAliasArn", "name",
                "status", "startDate", "stopDate", "error", "cause"):
        if key in description:
            click.echo(f"{key:16} {safe(description[key])}")
    click.echo(f"{'input':16} {safe(json.dumps(description['input'], ensure_ascii=False))}")
    if "output" in description:
        click.echo(f"{'output':16} {safe(json.dumps(description['output'], ensure_ascii=False))}")
    if "parentExecutionArn" in links:
        click.echo(f"{'parent':16} {safe(links['parentExecutionArn'])}")
    for child in links.get("childExecutionArns", []):
        click.echo(f"{'child':16} {safe(child)}")
    for task in waiting:
        click.echo(f"{'waiting':16} {safe(task['stateName'])} since {task['createdAt']}: token {task['taskToken']}")
    for task in unserved:
        click.echo(f"{'waiting':16} {safe(task['stateName'])} since {task['since']}: for a worker serving "
                   f"{safe(task['handlerKey'])} (live workers serving it: {task['liveWorkersServing']})")


def columns(rows: list[tuple[str, ...]]) -> None:
    """Aligned plain-text columns, never truncated or wrapped: every value stays whole and copyable."""
    rows = [tuple(safe(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


@click.command(name="list")
@click.option("--machine", metavar="NAME", help="Only executions of this state machine.")
@click.option("--status", type=click.Choice(STATUSES), help="Only executions with this status.")
@click.option("--parent", metavar="EXECUTION_ARN", help="Only the child workflows this execution started.")
@click.option("--map-run", metavar="MAP_RUN_ARN", help="Only the child executions of this Distributed Map run.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@db_option
@json_option
def list_(machine, status, parent, map_run, limit, db, as_json):
    """List executions, newest first (ListExecutions)."""
    found = open_client(db, read_only=True).list(machine, status, limit, parent=parent, map_run=map_run)
    if as_json:
        click.echo(json.dumps({"executions": found}, ensure_ascii=False))
        return
    if not found:
        err.print("no executions", markup=False)
        return
    columns([("STATUS", "STARTED", "MACHINE", "NAME", "EXECUTION ARN"),
             *((item["status"], item["startDate"], item["stateMachineArn"].rsplit(":", 1)[-1], item["name"],
                item["executionArn"]) for item in found)])


@click.command()
@click.argument("arn", metavar="EXECUTION")
@click.option("--reverse", is_flag=True, help="Newest event first.")
@db_option
@json_option
def history(arn, reverse, db, as_json):
    """Show an execution's history events (GetExecutionHistory).

    EXECUTION is an execution ARN, MACHINE:NAME, or a NAME only one state machine uses."""
    client = open_client(db, read_only=True)
    events = client.history(resolve_arn(client, arn), reverse)
    if as_json:
        click.echo(json.dumps({"events": events}, ensure_ascii=False))
        return
    for event in events:
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
        summary = details.get("name") or details.get("error") or ""
        click.echo(f"{event['id']:>5} {event['timestamp']} {event['type']:28} {safe(summary)}")


@click.command()
@click.argument("arn", metavar="EXECUTION")
@click.option("--error", metavar="NAME", help="Error name recorded on the execution.")
@click.option("--cause", metavar="TEXT", help="Cause recorded on the execution.")
@db_option
@json_option
def stop(arn, error, cause, db, as_json):
    """Stop a running execution (status ABORTED); its waiting task tokens stop being accepted.

    As StopExecution on AWS, stopping an execution that has already finished changes nothing. EXECUTION is an
    execution ARN, MACHINE:NAME, or a NAME only one state machine uses."""
    client = open_client(db)
    arn = resolve_arn(client, arn)
    before = client.describe(arn)
    result = client.stop(arn, error, cause)
    if as_json:
        click.echo(json.dumps(result))
    elif before["status"] != "RUNNING":
        click.echo(f"{safe(arn)} had already finished ({before['status']} at {before.get('stopDate')}): "
                   "nothing to stop")
    else:
        click.echo(f"stopped {safe(arn)}")


@click.command()
@click.argument("arn", metavar="EXECUTION")
@db_option
@json_option
def redrive(arn, db, as_json):
    """Restart a FAILED, TIMED_OUT or ABORTED execution from the state that did not succeed (RedriveExecution);
    a worker (`statemill worker`) then runs it. EXECUTION is an execution ARN, MACHINE:NAME, or a NAME only one
    state machine uses."""
    from statemill.engine.redrive import redrive as redrive_execution
    client = open_client(db)
    arn = resolve_arn(client, arn)
    result = redrive_execution(client, arn)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"redriven {safe(arn)} at {result['redriveDate']}: run `statemill worker` to carry it on")


COMMANDS = [run, start, worker, describe, list_, history, stop, redrive]
