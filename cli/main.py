"""Entry point of the ``statemill`` command: a click group; each command family lives in its own module."""
from __future__ import annotations

import json
import sys

import click

from .errors import report


class StatemillGroup(click.Group):
    """The command group, reporting every failure the same way: one line ``error: <Name>: <message>`` and the
    exit code of ``cli.errors`` (never a traceback)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
            code = report(exc)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=StatemillGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="statemill", prog_name="statemill")
def main() -> None:
    """statemill: run Amazon States Language (AWS Step Functions) state machines durably, with Python handlers."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as a JSON list.")
def validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check state machine definitions (YAML or JSON) and report every problem as FILE:LINE:COL.

    Exits 0 when every file is valid (warnings allowed), 1 when any has errors, 2 when a file cannot be read.
    """
    from statemill.engine import loader
    found, unreadable = [], False
    for file in files:
        try:
            found += loader.validate(file)
        except OSError as exc:
            click.echo(f"{file}: error: cannot read: {exc.strerror or exc}", err=True)
            unreadable = True
    if as_json:
        click.echo(json.dumps([d.to_json() for d in found], indent=2))
    else:
        for diagnostic in found:
            click.echo(diagnostic.format())
        errors = sum(d.severity == "error" for d in found)
        if not found and not unreadable:
            click.echo("ok" if len(files) == 1 else f"ok: {len(files)} files")
        elif found:
            click.echo(f"{errors} error(s), {len(found) - errors} warning(s)", err=True)
    if unreadable:
        sys.exit(2)
    sys.exit(1 if any(d.severity == "error" for d in found) else 0)


def _add_commands() -> None:
    from . import activities, admin, console, executions, map_runs, serve, testing, tokens, versions
    for command in [*executions.COMMANDS, *tokens.COMMANDS, *admin.COMMANDS, *serve.COMMANDS, *testing.COMMANDS,
                    *console.COMMANDS, *versions.COMMANDS, *activities.COMMANDS, *map_runs.COMMANDS]:
        main.add_command(command)
    try:
        from .render import render
    except ImportError:  # pragma: no cover - the visualizer is part of the package; this guards partial installs
        return
    main.add_command(render)


_add_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
