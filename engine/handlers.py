"""Task handlers: the registry mapping a Task's ``Resource`` to a Python callable, and what a handler receives.

Only callables an operator registered are reachable: a definition names resources, never Python code. A handler
is ``fn(input)`` or ``fn(input, context)``, plain or ``async def``; raising fails the task with the exception's class
name as the error and its message as the cause, or with the names given to ``TaskFailure``. Lambda resources get
AWS's Lambda shapes (``lambda_shapes``): the Invoke response around a ``lambda:invoke`` result, Lambda's error JSON
as the cause of an exception.
"""
from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import lambda_shapes
from .errors import TASK_FAILED, StatesError

CALLBACK_SUFFIX = ".waitForTaskToken"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_LAMBDA_ARN = re.compile(r"^(?:arn:[^:]+:lambda:([^:]*):([^:]*):function:)?([A-Za-z0-9_-]+)(?::[^:]+)?$")
_PARTIAL_ARN = re.compile(r"^(?:[0-9]{12}:)?function:([A-Za-z0-9_-]+)(?::[^:]+)?$")


class TaskFailure(Exception):
    """Raise from a handler to fail the task with a chosen error name and cause (both may be None)."""

    def __init__(self, error: str | None = None, cause: str | None = None):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a handler knows about the task it runs.

    ``idempotency_key`` is the same on every delivery of one attempt (after a worker crash, say), so a handler can
    deduplicate its side effects; ``attempt`` counts retries (0 for the first attempt).
    """

    execution_arn: str
    execution_name: str
    state_name: str
    attempt: int
    idempotency_key: str
    task_token: str | None = None
    resource: str = ""


@dataclass(frozen=True, slots=True)
class Handler:
    fn: Callable[..., Any]
    wants_context: bool
    is_async: bool

    def __call__(self, value: Any, context: TaskContext, timeout: float | None = None) -> Any:
        """Call the handler; an ``async def`` one runs on its own event loop and is cancelled at ``timeout``."""
        args = (value, context) if self.wants_context else (value,)
        if self.is_async:
            return asyncio.run(asyncio.wait_for(self.fn(*args), timeout))
        return self.fn(*args)


def _wrap(fn: Callable[..., Any]) -> Handler:
    if not callable(fn):
        raise TypeError(f"a handler must be callable, got {fn!r}")
    try:
        params = inspect.signature(fn).parameters.values()
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        wants_context = len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
    except (TypeError, ValueError):
        wants_context = False
    return Handler(fn, wants_context, inspect.iscoroutinefunction(fn))


INVOKE, FUNCTION = "invoke", "function"  # how a Lambda function was called: lambda:invoke, or its own ARN


@dataclass(frozen=True, slots=True)
class Call:
    """A resolved task call: the handler, the value it receives, and how its result and errors are shaped
    (``lambda_via``: INVOKE or FUNCTION for a Lambda resource, None for a plain one)."""

    handler: Handler
    value: Any
    lambda_via: str | None = None

    def shape(self, result: Any) -> Any:
        if self.lambda_via == INVOKE:  # the optimised Lambda integration returns the Invoke response
            return lambda_shapes.invoke_result(result)
        return result

    def error(self, exc: BaseException) -> StatesError:
        """The ASL error the handler's exception becomes; from a Lambda function, with Lambda's error JSON as the
        cause (a ``TaskFailure`` or ``StatesError`` keeps the names it was given)."""
        failure = error_of(exc)
        if self.lambda_via is None or isinstance(exc, (TaskFailure, StatesError)):
            return failure
        return StatesError(failure.error, lambda_shapes.error_cause(exc, self.lambda_via == INVOKE, __file__))


class HandlerRegistry:
    """Maps resource strings to handlers. Lambda ARNs and ``lambda:invoke`` calls resolve by function name too.

    Every handler is also filed under its handler keys (see ``handler_key``), so a worker can claim exactly the
    tasks this registry resolves: ``resolve`` finds a handler if and only if ``keys()`` holds the task's key.
    """

    def __init__(self, handlers: Mapping[str, Callable[..., Any]] | None = None):
        self._exact: dict[str, Handler] = {}
        self._by_key: dict[str, Handler] = {}
        if handlers:
            self.update(handlers)

    def register(self, resource: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        handler = _wrap(fn)
        self._exact[resource] = handler
        for key in {handler_key(resource), _function_key(resource)}:
            self._by_key[key] = handler
        return fn

    def handler(self, resource: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form: ``@registry.handler("charge-card")``."""
        return lambda fn: self.register(resource, fn)

    def update(self, handlers: Mapping[str, Callable[..., Any]]) -> None:
        for resource, fn in handlers.items():
            self.register(resource, fn)

    def mapping(self) -> dict[str, Callable[..., Any]]:
        """Every registered resource with its original callable."""
        return {resource: handler.fn for resource, handler in self._exact.items()}

    def __contains__(self, resource: str) -> bool:
        return resource in self._exact

    def resources(self) -> list[str]:
        return sorted(self._exact)

    def keys(self) -> list[str]:
        """The handler keys of every task this registry can run (what a worker claims and advertises)."""
        return sorted(self._by_key)

    def resolve(self, resource: str, value: Any, region: str = "us-east-1", account: str = "000000000000") -> Call:
        """The call for ``resource`` with the task's effective input; StatesError when nothing is registered.

        An exact registration wins; otherwise the handler filed under the task's key (a Lambda function by name).
        """
        base = _base(resource)
        key = handler_key(resource, value)
        if base == LAMBDA_INVOKE:
            name = value.get("FunctionName") if isinstance(value, dict) else None
            handler = (self._exact.get(name) if isinstance(name, str) else None) or self._by_key.get(key)
            if handler is None:
                raise _function_not_found(str(name), region, account)
            payload = value.get("Payload") if isinstance(value, dict) else None
            return Call(handler, lambda_shapes.invoke_payload(payload), INVOKE)
        handler = self._exact.get(resource) or self._exact.get(base) or self._by_key.get(key)
        if handler is not None:
            return Call(handler, value, FUNCTION if _is_lambda_arn(base) else None)
        if _is_lambda_arn(base):
            raise _function_not_found(base, region, account)
        known = ", ".join(self.resources()[:10]) or "none"
        raise StatesError(TASK_FAILED, f"No handler is registered for resource '{resource}'. Registered: {known}. "
                                       "Register one in Python or with --handlers MODULE.")


def handler_key(resource: str, value: Any = None) -> str:
    """Which handler a task needs, normalised so workers can be matched to tasks in SQL: the resource without its
    ``.waitForTaskToken`` suffix, or for a Lambda function (an ARN, full, partial or with an alias, or the
    ``FunctionName`` of an ``arn:aws:states:::lambda:invoke`` call's input ``value``) ``arn:aws:lambda:*:*:function:NAME``.
    """
    base = _base(resource)
    if base == LAMBDA_INVOKE:
        name = value.get("FunctionName") if isinstance(value, dict) else None
        return _function_key(name if isinstance(name, str) else "")
    return _function_key(base) if _is_lambda_arn(base) else base


def _base(resource: str) -> str:
    return resource[: -len(CALLBACK_SUFFIX)] if resource.endswith(CALLBACK_SUFFIX) else resource


def _is_lambda_arn(resource: str) -> bool:
    return resource.startswith("arn:") and ":lambda:" in resource


def _function_key(name: str) -> str:
    """The key of a Lambda function given by name or ARN; a name no pattern recognises is its own key."""
    match = _LAMBDA_ARN.match(name) or _PARTIAL_ARN.match(name)
    return f"arn:aws:lambda:*:*:function:{match.groups()[-1]}" if match else name


default_registry = HandlerRegistry()


def handler(resource: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a handler in the process-wide default registry, which every ``Engine`` starts from; this is how a
    module named with ``--handlers`` registers handlers at import time."""
    return default_registry.handler(resource)


def _function_not_found(name: str, region: str, account: str) -> StatesError:
    if not name.startswith("arn:"):
        match = _PARTIAL_ARN.match(name)
        name = f"arn:aws:lambda:{region}:{account}:function:{match.group(1) if match else name}"
    if name.count(":") == 6:
        name += ":$LATEST"
    return StatesError("Lambda.ResourceNotFoundException",
                       f"Function not found: {name} (Service: AWSLambda; Status Code: 404; Error Code: "
                       "ResourceNotFoundException; Request ID: 00000000-0000-0000-0000-000000000000; Proxy: null)")


def error_of(exc: BaseException) -> StatesError:
    """The ASL error a handler's exception becomes."""
    if isinstance(exc, TaskFailure):
        return StatesError(exc.error, exc.cause)
    if isinstance(exc, StatesError):
        return exc
    return StatesError(type(exc).__name__, str(exc))
