"""``statemill render``: draw a definition, or an execution coloured by where it stands."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from statemill.engine.errors import StatemillError

from .errors import FAILED, fail, report
from .text import safe

_TEXT = ("dot", "mermaid")
FORMATS = ("svg", "png", "pdf", *_TEXT)  # visualizer.graph.FORMATS, which is imported only when drawing


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file; the format comes from its suffix (.svg .png .pdf .dot .mmd).")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False),
              help="Force the format. Without -o, dot and mermaid print to standard output.")
@click.option("-e", "--execution", metavar="ARN",
              help="Draw this execution's machine coloured by its history (an execution ARN, MACHINE:NAME or NAME).")
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
    from statemill.visualizer import graph
    from statemill.visualizer.mermaid import mermaid_source
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
    except StatemillError as exc:
        sys.exit(report(exc))
    except (graph.DotNotFound, OSError) as exc:
        fail(type(exc).__name__, str(exc), FAILED)
    state = f" ({layer.status})" if layer is not None else ""
    click.echo(f"wrote {safe(path)}{state}", err=True)


def _source(file: str | None, execution: str | None, db: str | None):
    """The machine to draw and its overlay (None when drawing a plain definition)."""
    from statemill.visualizer import graph, overlay
    if execution is None:
        return graph.as_diagram(file), None
    from .config import open_client
    from .executions import resolve_arn
    client = open_client(db, read_only=True)
    return overlay.load_execution(client, resolve_arn(client, execution))
