"""Version and alias actions: PublishStateMachineVersion, ListStateMachineVersions, DeleteStateMachineVersion and
Create/Describe/Update/Delete/ListStateMachineAliases, in AWS's shapes over ``statemill.engine.versions``."""
from __future__ import annotations

from statemill.engine import machines as m
from statemill.engine import versions as v

from .arns import machine_or_version, qualified
from .pages import page
from .protocol import ApiError, Call, action

MAX_DESCRIPTION = 256


def _stamp(seconds: float) -> float:
    return round(seconds, 3)


def description(call: Call, key: str = "description") -> str | None:
    text = call.get(key)
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise ApiError("ValidationException", f"1 validation error detected: Value at '{key}' failed to satisfy "
                       f"constraint: Member must have length less than or equal to {MAX_DESCRIPTION}")
    return text


def version_arn(call: Call, name: str, number: int) -> str:
    return f"{call.client.machine_arn(name)}:{number}"


def _unqualified(call: Call, key: str = "stateMachineArn") -> str:
    name, qualifier = qualified(call, call.require(key), key)
    if qualifier is not None:
        raise ApiError("ValidationException", f"{key} must be a state machine ARN without a version or alias "
                       f"(arn:aws:states:REGION:ACCOUNT:stateMachine:NAME), not {call.body[key]!r}")
    return name


def _version(call: Call, key: str) -> tuple[str, int]:
    name, qualifier = qualified(call, call.require(key), key)
    if qualifier is None or not v.is_version(qualifier):
        raise ApiError("InvalidArn", f"Invalid Arn: '{call.body[key]}' ({key}: expected a state machine version "
                       "ARN, arn:aws:states:REGION:ACCOUNT:stateMachine:NAME:NUMBER)")
    return name, int(qualifier)


def _alias(call: Call, key: str = "stateMachineAliasArn") -> tuple[str, str]:
    name, qualifier = qualified(call, call.require(key), key)
    if qualifier is None or v.is_version(qualifier):
        raise ApiError("InvalidArn", f"Invalid Arn: '{call.body[key]}' ({key}: expected a state machine alias ARN, "
                       "arn:aws:states:REGION:ACCOUNT:stateMachine:NAME:ALIAS)")
    return name, qualifier


def _routing(call: Call, required: bool) -> tuple[str | None, list[tuple[int, int]] | None]:
    """(machine name, [(version, weight)]) of routingConfiguration; every version of one machine."""
    items = call.require("routingConfiguration", list) if required else call.get("routingConfiguration", list)
    if items is None:
        return None, None
    names, routing = set(), []
    for i, item in enumerate(items):
        arn = item.get("stateMachineVersionArn") if isinstance(item, dict) else None
        weight = item.get("weight") if isinstance(item, dict) else None
        if not isinstance(arn, str) or weight is None:
            raise ApiError("ValidationException", f"1 validation error detected: Value at 'routingConfiguration."
                           f"{i + 1}' failed to satisfy constraint: stateMachineVersionArn and weight are required")
        name, qualifier = qualified(call, arn, f"routingConfiguration.{i + 1}.stateMachineVersionArn")
        if qualifier is None or not v.is_version(qualifier):
            raise ApiError("ValidationException", f"routingConfiguration.{i + 1}.stateMachineVersionArn must be a "
                           f"state machine version ARN (ending in :NUMBER), not {arn!r}")
        names.add(name)
        routing.append((int(qualifier), weight))
    if len(names) > 1:
        raise ApiError("ValidationException", "routingConfiguration: every version must belong to the same state "
                       "machine")
    v.check_routing(routing)
    return names.pop(), routing


def _routing_shape(call: Call, name: str, routing: list) -> list[dict]:
    return [{"stateMachineVersionArn": version_arn(call, name, n), "weight": w} for n, w in routing]


# -- versions
@action("PublishStateMachineVersion")
def publish_state_machine_version(call: Call) -> dict:
    name = _unqualified(call)
    text = description(call)
    with call.client.db.begin() as conn:
        number, created = v.publish(conn, name, text, call.client.clock.now(), call.get("revisionId"))
    return {"creationDate": _stamp(created), "stateMachineVersionArn": version_arn(call, name, number)}


@action("ListStateMachineVersions")
def list_state_machine_versions(call: Call) -> dict:
    name = _unqualified(call)
    def fetch(before, n):
        with call.client.reader.connect() as conn:
            return v.versions(conn, name, before, n)

    return page(call, {"a": "ListStateMachineVersions", "m": name}, "stateMachineVersions", fetch,
                lambda r: {"stateMachineVersionArn": version_arn(call, name, r.version),
                           "creationDate": _stamp(r.created_at)}, lambda r: r.version, kind=int)


@action("DeleteStateMachineVersion")
def delete_state_machine_version(call: Call) -> dict:
    name, number = _version(call, "stateMachineVersionArn")
    with call.client.db.begin() as conn:
        v.delete_version(conn, name, number)
    return {}


# -- aliases
@action("CreateStateMachineAlias")
def create_state_machine_alias(call: Call) -> dict:
    alias = v.check_alias_name(call.require("name"))
    text = description(call)
    name, routing = _routing(call, required=True)
    with call.client.db.begin() as conn:
        created = v.create_alias(conn, name, alias, text, routing, call.client.clock.now())
    return {"stateMachineAliasArn": f"{call.client.machine_arn(name)}:{alias}", "creationDate": _stamp(created)}


@action("DescribeStateMachineAlias")
def describe_state_machine_alias(call: Call) -> dict:
    name, alias = _alias(call)
    with call.client.reader.connect() as conn:
        row = v.alias(conn, name, alias)
    answer = {"stateMachineAliasArn": call.body["stateMachineAliasArn"], "name": alias}
    if row.description is not None:
        answer["description"] = row.description
    answer.update(routingConfiguration=_routing_shape(call, name, row.routing),
                  creationDate=_stamp(row.created_at))
    if row.updated_at is not None:
        answer["updateDate"] = _stamp(row.updated_at)
    return answer


@action("UpdateStateMachineAlias")
def update_state_machine_alias(call: Call) -> dict:
    name, alias = _alias(call)
    text = description(call) if "description" in call.body else ...
    machine, routing = _routing(call, required=False)
    if text is ... and routing is None:
        raise ApiError("ValidationException", "Either the description or the routingConfiguration must be "
                       "specified")
    if machine is not None and machine != name:
        raise ApiError("ValidationException", "routingConfiguration: the versions must belong to the alias's state "
                       f"machine {name!r}")
    with call.client.db.begin() as conn:
        updated = v.update_alias(conn, name, alias, text, routing, call.client.clock.now())
    return {"updateDate": _stamp(updated)}


@action("DeleteStateMachineAlias")
def delete_state_machine_alias(call: Call) -> dict:
    name, alias = _alias(call)
    with call.client.db.begin() as conn:
        v.delete_alias(conn, name, alias)
    return {}


@action("ListStateMachineAliases")
def list_state_machine_aliases(call: Call) -> dict:
    """The aliases of a machine, or (given a version ARN) those that route to that version."""
    name, number = machine_or_version(call, ", not an alias ARN")

    def fetch(after, n):
        with call.client.reader.connect() as conn:
            try:
                return v.aliases(conn, name, number, after, n)
            except m.StateMachineDoesNotExist:
                if number is None:
                    raise
                raise m.ResourceNotFound(f"Resource Not Found: '{call.body['stateMachineArn']}'") from None

    return page(call, {"a": "ListStateMachineAliases", "m": call.body["stateMachineArn"]}, "stateMachineAliases",
                fetch, lambda r: {"stateMachineAliasArn": f"{call.client.machine_arn(name)}:{r.name}",
                                  "creationDate": _stamp(r.created_at)}, lambda r: r.name)
