"""Import every group of actions so each registers itself (one module per group)."""
from . import activities, executions, map_runs, redrive, state_machines, tags, tokens, versions  # noqa: F401
