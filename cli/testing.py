"""Testing commands and options: ``run --mock-config/--test-case/--virtual-time/--coverage``, ``test-state`` and
``coverage report``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from statemill.engine import FakeClock
from statemill.engine.mocks import MockConfig
from statemill.engine.teststate import LEVELS, test_state

from .errors import FAILED, USAGE, fail
from .text import safe


def run_options(fn):
    """The testing options of ``run``."""
    for option in reversed([
        click.option("--mock-config", metavar="PATH", type=click.Path(dir_okay=False),
                     help="A Step Functions Local mock configuration file (JSON or YAML)."),
        click.option("--test-case", metavar="NAME", help="The test case of --mock-config to run."),
        click.option("--virtual-time", is_flag=True, help="Jump over Waits, Retry backoff and task deadlines as "
                     "soon as nothing else can run (the database's clock is not touched)."),
        click.option("--coverage", "coverage_file", metavar="FILE", type=click.Path(dir_okay=False),
                     help="Add this execution's state and transition coverage to FILE (created if missing)."),
    ]):
        fn = option(fn)
    return fn


def engine_options(virtual_time: bool) -> dict:
    return {"clock": FakeClock.virtual()} if virtual_time else {}


def load_test_case(mock_config: str | None, test_case: str | None, machine_name: str, machine):
    """The mocks of ``--mock-config``/``--test-case`` for ``machine`` (None without them); located errors."""
    if mock_config is None and test_case is None:
        return None
    if mock_config is None or test_case is None:
        raise click.UsageError("--mock-config and --test-case go together")
    try:
        config = MockConfig.load(mock_config)
    except OSError as exc:
        fail("UsageError", f"cannot read {mock_config}: {exc.strerror or exc}", USAGE)
    return config.test_case(machine_name, test_case, machine)


def record_coverage(path: str | None, client, arn: str) -> None:
    if path is None:
        return
    from statemill.visualizer.coverage import accumulate
    try:
        accumulate(path, client, [arn])
    except ValueError as exc:
        fail("InvalidCoverageFile", str(exc), USAGE)


def _json_arg(value: str | None, what: str) -> str | None:
    """``--input``-style values: JSON text, or @file (@- for stdin), returned as text."""
    if value is None or not value.startswith("@"):
        return value
    source = value[1:]
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read {what} file {source!r}: {exc}") from None


@click.command(name="test-state")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--state", "state_name", metavar="NAME", help="The state to test (FILE is then a whole state machine; "
              "without it FILE holds one state's definition).")
@click.option("--input", "input_", metavar="JSON|@FILE", help="The state's input (default {}).")
@click.option("--mock", metavar="JSON|@FILE", help='TestState\'s mock: {"result": "<JSON text>"} or '
              '{"errorOutput": {"error": "...", "cause": "..."}}.')
@click.option("--variables", metavar="JSON|@FILE", help="Workflow variables the state reads (a JSON object).")
@click.option("--context", metavar="JSON|@FILE", help="Fields of the context object $$ (with --mock only).")
@click.option("--state-configuration", metavar="JSON", help="TestState's stateConfiguration, e.g. "
              '{"retrierRetryCount": 1}.')
@click.option("--inspection-level", type=click.Choice(LEVELS), default="INFO", show_default=True)
@click.option("--handlers", "handlers", multiple=True, metavar="MODULE",
              help="Import MODULE's handlers (a Task without --mock calls its handler).")
@click.option("--json", "as_json", is_flag=True, help="Print the TestState response (AWS's shape).")
def test_state_command(file, state_name, input_, mock, variables, context, state_configuration, inspection_level,
                       handlers, as_json):
    """Run one state of FILE, as AWS's TestState API does: its output, next state, status (SUCCEEDED, FAILED,
    RETRIABLE, CAUGHT_ERROR) and, at DEBUG or TRACE, each step of its data processing.

    Exit code 0 for SUCCEEDED or CAUGHT_ERROR, 1 for FAILED or RETRIABLE, 2 for a bad request."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail("UsageError", f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}", USAGE)
    if state_name is not None:
        from statemill.engine import loader
        loader.load(file)  # a whole machine: its problems are reported located, as `validate` does
    request = {"definition": text, "input": _json_arg(input_, "input") or "{}", "inspectionLevel": inspection_level}
    if state_name is not None:
        request["stateName"] = state_name
    for key, value in (("variables", variables), ("context", context)):
        if value is not None:
            request[key] = _json_arg(value, key)
    for key, value in (("mock", mock), ("stateConfiguration", state_configuration)):
        if value is not None:
            try:
                request[key] = json.loads(_json_arg(value, key))
            except ValueError as exc:
                raise click.UsageError(f"--{key.replace('C', '-c').lower()} is not valid JSON: {exc}") from None
    registry = None
    if handlers:
        from types import SimpleNamespace
        from statemill.engine import HandlerRegistry, default_registry
        from .config import import_handlers
        holder = SimpleNamespace(handlers=HandlerRegistry(default_registry.mapping()))
        import_handlers(handlers, holder)
        registry = holder.handlers
    response = test_state(request, registry)
    if as_json:
        click.echo(json.dumps(response, ensure_ascii=False))
    else:
        _show(response)
    sys.exit(0 if response["status"] in ("SUCCEEDED", "CAUGHT_ERROR") else FAILED)


def _show(response: dict) -> None:
    click.echo(f"status: {response['status']}")
    for key in ("nextState", "error", "cause"):
        if key in response:
            click.echo(f"{key}: {safe(response[key])}")
    if "output" in response:
        click.echo("output: " + safe(json.dumps(json.loads(response["output"]), indent=2, ensure_ascii=False)))
    for key, value in response.get("inspectionData", {}).items():
        click.echo(f"  {key}: {safe(value if isinstance(value, str) else json.dumps(value))}")


@click.group(name="coverage")
def coverage_group() -> None:
    """State and transition coverage collected by `run --coverage FILE` and `pytest --statemill-cov FILE`."""


@coverage_group.command(name="report")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True)
@click.option("-o", "--output", metavar="PATH", help="Write the report to PATH instead of standard output.")
@click.option("--fail-under", type=float, metavar="PERCENT", help="Exit 1 when a state machine's coverage is below "
              "PERCENT.")
def coverage_report(file, fmt, output, fail_under):
    """Report which states, transitions, Choice rules, Retriers and Catchers the recorded executions exercised."""
    from statemill.visualizer.coverage import CoverageFile, report, summary
    if not Path(file).exists():
        fail("UsageError", f"no coverage file at {file}; record one with `statemill run ... --coverage {file}`",
             USAGE)
    try:
        coverage = CoverageFile.read(file)
    except ValueError as exc:
        fail("InvalidCoverageFile", str(exc), USAGE)
    text = report(coverage, fmt)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)
    if fail_under is not None and any(summary(entry)["percent"] < fail_under
                                      for entry in coverage.machines.values()):
        sys.exit(FAILED)


COMMANDS = [test_state_command, coverage_group]
