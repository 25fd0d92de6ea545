"""Draws state machines and live executions with Graphviz."""
from .diagram import Cluster, Diagram, Edge, Node, build
from .graph import DotNotFound, digraph, dot_source, format_for, image, render
from .mermaid import mermaid_source
from .overlay import Overlay, StateRun, from_history, load_execution

__all__ = [
    "build", "Diagram", "Node", "Edge", "Cluster", "digraph", "dot_source", "image", "render", "format_for",
    "mermaid_source", "DotNotFound", "Overlay", "StateRun", "from_history", "load_execution",
]
