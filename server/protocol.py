"""AWS's JSON 1.0 protocol: the action registry, request context, errors as botocore parses them, and field helpers.

An action is a function ``(call: Call) -> dict`` registered under its AWS name with ``@action("StartExecution")``
(run in a thread; an ``async def`` one, such as GetActivityTask's long poll, runs on the event loop);
it raises ``ApiError`` (or one of the engine's named errors, which keep their AWS names) for the client to see.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from statemill.engine import Client, StatemillError

Action = Callable[["Call"], dict]
ACTIONS: dict[str, Action] = {}


class ApiError(Exception):
    """An error answered as ``{"__type": TYPE, "message": MESSAGE}`` with HTTP ``status``."""

    def __init__(self, type_: str, message: str, status: int = 400):
        super().__init__(message)
        self.type = type_
        self.message = message
        self.status = status


# The engine's own errors that are AWS error types of the same name.
ENGINE_ERRORS = {"ExecutionDoesNotExist", "StateMachineDoesNotExist", "ExecutionAlreadyExists",
                 "InvalidExecutionInput", "InvalidName", "InvalidToken", "TaskDoesNotExist", "TaskTimedOut",
                 "InvalidOutput", "InvalidArn", "InvalidDefinition", "StateMachineAlreadyExists",
                 "StateMachineDeleting", "ValidationException", "ResourceNotFound", "TooManyTags",
                 "ConflictException", "ServiceQuotaExceededException", "ActivityDoesNotExist",
                 "ExecutionNotRedrivable"}


def as_api_error(exc: BaseException) -> ApiError | None:
    """The API error an engine exception stands for, or None when it is not one the client should see."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StatemillError) and type(exc).__name__ in ENGINE_ERRORS:
        return ApiError(type(exc).__name__, str(exc))
    return None


def action(name: str) -> Callable[[Action], Action]:
    """Register ``fn`` as the handler of the AWS action ``name``."""
    def register(fn: Action) -> Action:
        if name in ACTIONS:
            raise RuntimeError(f"action {name} registered twice")
        ACTIONS[name] = fn
        return fn
    return register


@dataclass
class Call:
    """One request: the action's JSON body, the client for the caller's region, and the server it came to."""

    action: str
    body: dict[str, Any]
    client: Client
    server: Any  # server.app.Server: workers, settings and the clients of other regions

    @property
    def region(self) -> str:
        return self.client.region

    @property
    def account(self) -> str:
        return self.client.account

    def get(self, key: str, kind: type | tuple[type, ...] = str, default: Any = None) -> Any:
        """An optional field of the request; ValidationException when present with the wrong JSON type."""
        value = self.body.get(key)
        if value is None:
            return default
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ApiError("ValidationException", f"1 validation error detected: Value at '{key}' failed to "
                           f"satisfy constraint: Member must be of type {_type_name(kind)}")
        return value

    def require(self, key: str, kind: type | tuple[type, ...] = str) -> Any:
        """A required field; ValidationException naming it when it is missing."""
        value = self.get(key, kind)
        if value is None:
            raise ApiError("ValidationException", f"1 validation error detected: Value null at '{key}' failed to "
                           "satisfy constraint: Member must not be null")
        return value


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "integer", bool: "boolean", dict: "structure", list: "list", float: "number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def epoch(text: str | None) -> float | None:
    """An engine timestamp (ISO 8601 with Z) as the epoch seconds AWS's JSON protocol carries."""
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
