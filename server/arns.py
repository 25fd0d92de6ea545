"""ARNs as AWS forms and checks them: a malformed one is InvalidArn; a well-formed one of another region, account
or partition names nothing here (the action's does-not-exist error)."""
from __future__ import annotations

from statemill.engine.machines import StateMachineDoesNotExist

from .protocol import ApiError, Call


def parse(arn: str, field: str, kinds: tuple[str, ...] | None = None) -> list[str]:
    """``arn:partition:service:region:account:resource...`` split on ':'; InvalidArn when it is not an ARN or (with
    ``kinds``) not a Step Functions ARN of one of those resource types."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not all(parts[1:3]) or not parts[5]:
        raise ApiError("InvalidArn", f"Invalid Arn: 'Invalid ARN prefix: {arn}' ({field})")
    if kinds is not None and (parts[2] != "states" or parts[5] not in kinds or len(parts) < 7 or not parts[6]):
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {parts[5]}' ({field}: "
                       f"expected a {' or '.join(kinds)} ARN)")
    return parts


def local(call: Call, parts: list[str]) -> bool:
    """Whether a parsed ARN is of this partition, the caller's region and our account."""
    return parts[1] == "aws" and parts[3] == call.region and parts[4] == call.account


def machine_name(call: Call, arn: str, field: str = "stateMachineArn") -> str:
    """The name of the state machine ``arn``; StateMachineDoesNotExist for another region's or account's, or a
    version or alias ARN (actions that take those use ``qualified``)."""
    parts = parse(arn, field, ("stateMachine",))
    if not local(call, parts) or len(parts) != 7:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    return parts[6]


def qualified(call: Call, arn: str, field: str = "stateMachineArn") -> tuple[str, str | None]:
    """(machine name, version number or alias name or None) of a state machine ARN, qualified or not;
    StateMachineDoesNotExist for another region's or account's."""
    parts = parse(arn, field, ("stateMachine",))
    if not local(call, parts) or len(parts) > 8:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    if len(parts) == 8 and not parts[7]:
        raise ApiError("InvalidArn", f"Invalid Arn: '{arn}' ({field}: a qualified ARN ends in a version number or "
                       "an alias name)")
    return parts[6], (parts[7] if len(parts) == 8 else None)


def machine_or_version(call: Call, hint: str) -> tuple[str, int | None]:
    """(machine name, version number or None) of the request's stateMachineArn; InvalidArn, ending in ``hint``,
    for an alias ARN."""
    name, qualifier = qualified(call, call.require("stateMachineArn"))
    if qualifier is not None and not qualifier.isdigit():
        raise ApiError("InvalidArn", f"Invalid Arn: '{call.body['stateMachineArn']}' (stateMachineArn: a state "
                       f"machine or version ARN{hint})")
    return name, int(qualifier) if qualifier is not None else None


def execution_arn(call: Call, arn: str, field: str = "executionArn") -> str:
    """``arn`` when it is a (STANDARD) execution ARN; InvalidArn for anything else, an EXPRESS execution's ARN
    included: AWS does not let DescribeExecution, StopExecution or GetExecutionHistory see those."""
    parts = parse(arn, field)
    if parts[2] != "states" or parts[5] != "execution" or len(parts) != 8:
        raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {parts[5]}' ({field}: "
                       "expected an execution ARN, arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME)")
    return arn
