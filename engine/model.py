"""The compiled state machine: immutable dataclasses per state type, paths and rules already parsed.

The loader builds these once per definition; the interpreter executes them without re-parsing anything.
Path fields follow ASL's three cases: absent (the default ``$``), ``null`` (stored as ``None``) or a compiled path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .paths import MISSING  # one "no value" sentinel for the whole engine  # noqa: E402


@dataclass(frozen=True, slots=True)
class Retrier:
    error_equals: tuple[str, ...]
    interval_seconds: float = 1
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter_strategy: str = "NONE"


@dataclass(frozen=True, slots=True)
class Catcher:
    error_equals: tuple[str, ...]
    next: str
    result_path: Any  # ReferencePath, or None to discard the error output
    output: Any = None  # JSONata Output template (default: the error output)
    assign: Any = None  # Assign: a payload template (JSONPath) or a JSONata template


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """Fields every state has. ``pointer`` locates the state in its definition (``/States/Charge``)."""

    name: str
    type: str
    pointer: str
    comment: str | None = None
    next: str | None = None
    end: bool = False
    query_language: str = "JSONPath"
    input_path: Any = None  # Path or None (``InputPath: null``)
    output_path: Any = None  # Path or None (``OutputPath: null``)
    assign: Any = None  # Assign: a payload template (JSONPath) or a JSONata template, None when absent
    jsonata: Mapping[str, Any] = field(default_factory=dict)  # JSONata fields by name (Output, Arguments, Items...)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        return self.end or self.type in ("Succeed", "Fail")


@dataclass(frozen=True, slots=True, kw_only=True)
class PassState(State):
    result: Any = MISSING
    parameters: Any = None  # Template or None
    result_path: Any = None  # ReferencePath, or None for ``ResultPath: null``


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskState(State):
    resource: str
    parameters: Any = None
    result_selector: Any = None
    result_path: Any = None
    timeout_seconds: int | None = None
    timeout_seconds_path: Any = None
    heartbeat_seconds: int | None = None
    heartbeat_seconds_path: Any = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()

    @property
    def wait_for_task_token(self) -> bool:
        return self.resource.endswith(".waitForTaskToken")

    @property
    def awaits_token(self) -> bool:
        """Whether the task parks on a task token after its handler returns: ``.waitForTaskToken``, or a child
        workflow's ``.sync``/``.sync:2`` (the child's end answers the token: engine/children.py)."""
        return self.wait_for_task_token or self.resource.startswith(_SYNC_CHILD)


_SYNC_CHILD = ("arn:aws:states:::states:startExecution.sync",)  # .sync and .sync:2


@dataclass(frozen=True, slots=True)
class ChoiceBranch:
    rule: Any  # choice.Rule (JSONPath), or None for a JSONata rule
    next: str
    condition: Any = None  # JSONata: True/False or an Expression
    assign: Any = None  # the rule's own Assign, replacing the state's when the rule matches
    output: Any = None  # JSONata: the rule's own Output, replacing the state's


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceState(State):
    choices: tuple[ChoiceBranch, ...] = ()
    default: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitState(State):
    seconds: int | None = None
    timestamp: str | None = None
    seconds_path: Any = None
    timestamp_path: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SucceedState(State):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class FailState(State):
    error: str | None = None
    cause: str | None = None
    error_path: Any = None  # Path or Intrinsic
    cause_path: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParallelState(State):
    branches: tuple["StateMachine", ...] = ()
    parameters: Any = None
    result_selector: Any = None
    result_path: Any = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MapState(State):
    processor: "StateMachine"
    items_path: Any = None  # ReferencePath
    item_selector: Any = None  # Template (ItemSelector, or the legacy Parameters)
    max_concurrency: int = 0
    max_concurrency_path: Any = None
    result_selector: Any = None
    result_path: Any = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    mode: str = "INLINE"
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None
    # Distributed mode: ItemReader, ItemBatcher and ResultWriter compiled as templates (JSONPath ``.$`` keys or JSONata
    # expressions), evaluated when the state starts its map run; the Label and the children's ExecutionType.
    reader: Any = None
    batcher: Any = None
    writer: Any = None
    label: str | None = None
    execution_type: str = "STANDARD"


@dataclass(frozen=True, slots=True, kw_only=True)
class StateMachine:
    """A machine, or one scope inside it (a Parallel branch, a Map's ItemProcessor): StartAt and its States.

    ``index`` maps every state name in the whole machine, branches included, to its state (names are unique
    machine-wide), so the interpreter can find a nested state in one lookup.
    """

    start_at: str
    states: Mapping[str, State]
    pointer: str = ""
    comment: str | None = None
    timeout_seconds: int | None = None
    query_language: str = "JSONPath"
    index: Mapping[str, State] = field(default_factory=dict, repr=False, compare=False)
    definition: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    source_name: str = ""

    def state(self, name: str) -> State:
        return self.index[name]
