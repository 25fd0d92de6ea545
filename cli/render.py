"""``statemill render``: draw a definition, or an execution coloured by where it stands."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from statemill.engine.errors import DefinitionError, StatemillError
from statemill.visualizer import graph, overlay
from statemill.visualizer.mermaid import mermaid_source

_TEXT = ("dot", "mermaid")


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file; the format comes from its suffix (.svg .png .pdf .dot .mmd).")
@click.option("-f", "--format", "fmt", type=click.Choice(graph.FORMATS, case_sensitive=False),
              help="Force the format. Without -o, dot and mermaid print to standard output.")
@click.option("-e", "--execution", metavar="ARN",
              help="Draw this execution's machine coloured by its history (an execution ARN or name).")
@click.option("--db", metavar="URL", help="Database of --execution (default: $STATEMILL_DATABASE_URL, "
                                          "[tool.statemill] database, or sqlite:///statemill.db).")
@click.option("--title", help="A heading over the drawing.")
def render(file: str | None, output: str | None, fmt: str | None, execution: str | None, db: str | None,
           title: str | None) -> None:
    """Draw a state machine FILE (or an --execution) as SVG, PNG, PDF, DOT or Mermaid.

    \b
      statemill render order.yaml -o order.svg
      statemill render order.yaml --format mermaid
      statemill render --execution ARN -o run.svg --db sqlite:///orders.db

    SVG, PNG and PDF need Graphviz's `dot` program; DOT and Mermaid do not.
    """
    if (file is None) == (execution is None):
        raise click.UsageError("give a definition FILE or --execution ARN (one of the two)")
    try:
        fmt = graph.format_for(Path(output) if output else None, fmt or (None if output else "dot"))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if output is None and fmt not in _TEXT:
        raise click.UsageError(f"{fmt} output is binary: give -o FILE.{fmt}")
    try:
        source, layer = _source(file, execution, db)
        if output is None:
            text = mermaid_source(source, layer, title=title) if fmt == "mermaid" else \
                graph.dot_source(source, layer, title=title)
            click.echo(text, nl=False)
            return
        path = graph.render(source, output, format=fmt, overlay=layer, title=title)
    except DefinitionError as exc:
        for diagnostic in exc.diagnostics:
            click.echo(diagnostic.format(), err=True)
        sys.exit(1)
    except (graph.DotNotFound, StatemillError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    state = f" ({layer.status})" if layer is not None else ""
    click.echo(f"wrote {path}{state}", err=True)


def _source(file: str | None, execution: str | None, db: str | None):
    """The machine to draw and its overlay (None when drawing a plain definition)."""
    if execution is None:
        return graph.as_diagram(file), None
    from statemill.engine.client import Client

    from .config import database_url
    machine, layer = overlay.load_execution(Client(database_url(db)), execution)
    return machine, layer
