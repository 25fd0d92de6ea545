"""Reading the ARNs that execution actions are given, with AWS's errors for malformed ones.

``arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`` names a machine in the caller's region and account;
``...:execution:MACHINE:NAME`` an execution; ``...:express:MACHINE:NAME:UUID`` an EXPRESS execution, which AWS
does not let DescribeExecution, StopExecution or GetExecutionHistory see.
"""
from __future__ import annotations

from statemill.engine import StateMachineDoesNotExist

from .protocol import ApiError, Call


def _parts(arn: str) -> list[str]:
    if not arn.startswith("arn:"):
        raise ApiError("InvalidArn", f"Invalid Arn: 'Invalid ARN prefix: {arn}'")
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "states" or not all(parts[1:7]):
        raise ApiError("InvalidArn", f"Invalid Arn: '{arn}' is not a Step Functions ARN "
                       "(arn:aws:states:REGION:ACCOUNT:TYPE:NAME)")
    return parts


def machine_name(call: Call, arn: str) -> str:
    """The name of the state machine ``arn`` names; StateMachineDoesNotExist unless it is an unqualified machine
    ARN of the caller's region and account (statemill has no versions or aliases)."""
    parts = _parts(arn)
    if parts[5] != "stateMachine":
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {parts[5]}'")
    if len(parts) != 7 or parts[3] != call.region or parts[4] != call.account:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    return parts[6]


def execution_arn(call: Call, arn: str) -> str:
    """``arn`` when it names a (STANDARD) execution; InvalidArn for a malformed or an express execution ARN."""
    parts = _parts(arn)
    if parts[5] != "execution" or len(parts) != 8:
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {parts[5]}'")
    return arn
