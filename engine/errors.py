"""Error names of the States language and the exceptions statemill raises.

Two families live here:
- ``StatesError``: a runtime error *inside* an execution (``States.Runtime``, ``States.TaskFailed``, a handler's own
  error name...). It is a value that flows through Retry and Catch; it never escapes a worker.
- ``StatemillError`` and subclasses: problems a *caller* of statemill must act on (a bad definition, an unknown
  execution, a refused task token). Their class names follow the AWS API error names where AWS has one.
"""
from __future__ import annotations

# Error names AWS defines (the States.* namespace is reserved for these).
ALL = "States.ALL"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
TASK_FAILED = "States.TaskFailed"
PERMISSIONS = "States.Permissions"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
RUNTIME = "States.Runtime"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"  # the spec's name; AWS raises the next one
REFERENCE_PATH_CONFLICT = "States.ReferencePathConflict"  # a ResultPath that cannot be applied, as AWS reports it
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
BRANCH_FAILED = "States.BranchFailed"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
ITEM_READER_FAILED = "States.ItemReaderFailed"
RESULT_WRITER_FAILED = "States.ResultWriterFailed"
HTTP_SOCKET = "States.Http.Socket"

KNOWN_STATES_ERRORS = frozenset({
    ALL, TIMEOUT, HEARTBEAT_TIMEOUT, TASK_FAILED, PERMISSIONS, DATA_LIMIT_EXCEEDED, RUNTIME,
    RESULT_PATH_MATCH_FAILURE, REFERENCE_PATH_CONFLICT, PARAMETER_PATH_FAILURE, INTRINSIC_FAILURE, QUERY_EVALUATION_ERROR,
    NO_CHOICE_MATCHED, BRANCH_FAILED, EXCEED_TOLERATED_FAILURE_THRESHOLD, ITEM_READER_FAILED,
    RESULT_WRITER_FAILED, HTTP_SOCKET,
})


class StatesError(Exception):
    """An ASL runtime error: a name (``States.Runtime``, ``MyError``...) and an optional cause.

    Raised by pure evaluation code (paths, intrinsics, Choice rules, handlers) and caught by the interpreter, which
    turns it into Retry/Catch processing or a failed execution. ``error`` and ``cause`` may be None: AWS allows a
    callback failure without either.
    """

    def __init__(self, error: str | None, cause: str | None = None):
        super().__init__(f"{error}: {cause}" if cause else str(error))
        self.error = error
        self.cause = cause

    def to_output(self) -> dict:
        """The Error Output a Catcher receives: ``{"Error": ..., "Cause": ...}``."""
        return {"Error": self.error, "Cause": self.cause}


class StatemillError(Exception):
    """Base class of every error statemill raises to its callers."""


class DefinitionError(StatemillError):
    """A state machine definition is invalid; ``diagnostics`` lists every problem found, located."""

    def __init__(self, diagnostics):
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        first = errors[0] if errors else None
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.format() if first else 'invalid definition'}{more}")


class CompileError(StatemillError):
    """A path, intrinsic call or rule inside a definition does not parse. The loader turns it into a diagnostic."""


# The errors of SendTaskSuccess/Failure/Heartbeat (engine/tokens.py), named as AWS names them. They live here, not
# in client.py, so that answering a token from the command line imports no more than it needs.
class InvalidToken(StatemillError):
    """SendTask*: the task token is malformed or was never issued by this database."""


class TaskDoesNotExist(StatemillError):
    """SendTask*: the token is known but the execution or thread that issued it no longer exists."""


class TaskTimedOut(StatemillError):
    """SendTask*: the token is closed: already answered, timed out, its attempt is over, or its execution ended."""


class InvalidOutput(StatemillError):
    """SendTaskSuccess: the output is not JSON or is over the payload limit (SendTaskFailure: error/cause too long)."""
