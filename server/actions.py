"""Import every group of actions so each registers itself (one module per group)."""
from . import executions  # noqa: F401
