"""statemill engine: load, validate and durably run Amazon States Language state machines.

    from statemill.engine import Engine

    engine = Engine("sqlite:///orders.db")

    @engine.handler("charge-card")
    def charge(order, context):
        return {"charged": order["amount"]}

    result = engine.run("order.yaml", {"amount": 0})

The names below are imported on first use (module ``__getattr__``): ``import statemill.engine`` stays cheap, so a
command that needs neither the database nor the loader (``statemill --help``) starts at once.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and editors; at run time each name is imported when first used
    from .client import (Client, ExecutionAlreadyExists, ExecutionDoesNotExist, InvalidExecutionInput, InvalidName,
                         StateMachineDoesNotExist)
    from .clock import FakeClock, SystemClock
    from .engine import Engine
    from .errors import (CompileError, DefinitionError, InvalidOutput, InvalidToken, StatemillError, StatesError,
                         TaskDoesNotExist, TaskTimedOut)
    from .handlers import HandlerRegistry, TaskContext, TaskFailure, default_registry, handler
    from .loader import load, loads, validate
    from .model import StateMachine
    from .runtime import TERMINAL
    from .worker import Worker

_WHERE = {  # public name -> the submodule defining it
    "Engine": "engine", "Worker": "worker", "TERMINAL": "runtime", "StateMachine": "model",
    **dict.fromkeys(("Client", "ExecutionAlreadyExists", "ExecutionDoesNotExist", "InvalidExecutionInput",
                     "InvalidName", "StateMachineDoesNotExist"), "client"),
    **dict.fromkeys(("FakeClock", "SystemClock"), "clock"),
    **dict.fromkeys(("CompileError", "DefinitionError", "StatemillError", "StatesError", "InvalidOutput",
                     "InvalidToken", "TaskDoesNotExist", "TaskTimedOut"), "errors"),
    **dict.fromkeys(("HandlerRegistry", "TaskContext", "TaskFailure", "default_registry", "handler"), "handlers"),
    **dict.fromkeys(("load", "loads", "validate"), "loader"),
}

__all__ = [
    "Engine", "Client", "handler", "default_registry", "Worker", "HandlerRegistry", "TaskContext", "TaskFailure", "FakeClock", "SystemClock",
    "StateMachine", "load", "loads", "validate", "DefinitionError", "CompileError", "StatemillError", "StatesError",
    "ExecutionAlreadyExists", "ExecutionDoesNotExist", "InvalidExecutionInput", "InvalidName",
    "StateMachineDoesNotExist", "InvalidToken", "TaskDoesNotExist", "TaskTimedOut", "InvalidOutput",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
