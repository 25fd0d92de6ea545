"""TagResource, UntagResource, ListTagsForResource: tags of state machines and activities (executions are not
taggable, so their ARNs are InvalidArn)."""
from __future__ import annotations

from statemill.engine import activities as a
from statemill.engine import machines as m

from .arns import local, parse
from .protocol import ApiError, Call, action
from .state_machines import tag_pairs


def _resource(call: Call) -> tuple[str, str]:
    """(ARN, machine name or "" for an activity) of the request's resourceArn; ResourceNotFound unless it names a
    machine or activity of this region and account."""
    arn = call.require("resourceArn")
    parts = parse(arn, "resourceArn", ("stateMachine", "activity"))
    if not local(call, parts) or len(parts) != 7:
        raise m.ResourceNotFound(f"Resource not found: '{arn}'")
    return arn, parts[6] if parts[5] == "stateMachine" else ""


def _exists(conn, arn: str, name: str) -> None:
    if (m.head(conn, name) is None) if name else not a.exists(conn, arn):
        raise m.ResourceNotFound(f"Resource not found: '{arn}'")


def _change(call: Call, change, argument) -> dict:
    """Apply ``change(conn, arn, argument(call))`` to the request's resource, in one transaction once found."""
    arn, name = _resource(call)
    value = argument(call)
    with call.client.db.begin() as conn:
        _exists(conn, arn, name)
        change(conn, arn, value)
    return {}


def _keys(call: Call) -> list[str]:
    keys = call.require("tagKeys", list)
    if not all(isinstance(k, str) for k in keys):
        raise ApiError("ValidationException", "1 validation error detected: Value at 'tagKeys' failed to satisfy "
                       "constraint: Member must be a list of strings")
    return keys


def _pairs(call: Call) -> list:
    call.require("tags", list)
    return tag_pairs(call)


@action("TagResource")
def tag_resource(call: Call) -> dict:
    return _change(call, m.tag, _pairs)


@action("UntagResource")
def untag_resource(call: Call) -> dict:
    return _change(call, m.untag, _keys)


@action("ListTagsForResource")
def list_tags_for_resource(call: Call) -> dict:
    arn, name = _resource(call)
    with call.client.reader.connect() as conn:
        _exists(conn, arn, name)
        return {"tags": [{"key": k, "value": v} for k, v in m.list_tags(conn, arn)]}
