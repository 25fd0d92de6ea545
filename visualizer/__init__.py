"""Draws state machines and live executions with Graphviz."""
