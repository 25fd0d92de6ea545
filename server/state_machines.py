"""State machine actions: Create, Describe, Update, Delete, List, ValidateStateMachineDefinition and
DescribeStateMachineForExecution, in AWS's shapes over ``statemill.engine.machines``.

A machine created here is the one ``statemill run/describe/list`` see: same table, same name. Definitions are JSON
text (as on AWS), checked by our loader; DescribeStateMachine returns the text as it was given.
"""
from __future__ import annotations

import json

import sqlalchemy as sa

from statemill.engine import loader
from statemill.engine import machines as m
from statemill.engine import versions
from statemill.engine.client import ExecutionDoesNotExist, check_name
from statemill.engine.diagnostics import Diagnostic
from statemill.engine.errors import DefinitionError
from statemill.engine.store.schema import executions, machine_versions

from .arns import machine_name, machine_or_version, parse
from .pages import page
from .protocol import ApiError, Call, action

SOURCE = "definition.json"  # the loader parses text named *.json as JSON only, as AWS does
LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")
DEFAULT_LOGGING = {"level": "OFF", "includeExecutionData": False}
DEFAULT_TRACING = {"enabled": False}


def _stamp(seconds: float) -> float:
    """A timestamp as AWS sends it: epoch seconds to the millisecond."""
    return round(seconds, 3)


def _where(d: Diagnostic) -> str:
    return f"line {d.line}, column {d.column}" if d.line is not None else (d.pointer or "/")


def _compile(text: str):
    """The definition compiled, or InvalidDefinition listing every located error."""
    try:
        return loader.loads(text, name=SOURCE)
    except DefinitionError as exc:
        errors = [d for d in exc.diagnostics if d.severity == "error"]
        listed = "; ".join(f"{_where(d)}: {d.code} {d.message}" + (f" (at {d.pointer})" if d.pointer else "")
                           for d in errors)
        raise ApiError("InvalidDefinition", f"Invalid State Machine Definition: '{listed}'") from None


def _tasks(scope: dict, pointer: str = ""):
    """(JSON pointer, Resource) of every Task of a machine or branch, nested branches and iterations included."""
    for name, state in (scope.get("States") or {}).items():
        at = f"{pointer}/States/{name.replace('~', '~0').replace('/', '~1')}"
        if state.get("Type") == "Task" and isinstance(state.get("Resource"), str):
            yield at, state["Resource"]
        for i, branch in enumerate(state.get("Branches") or ()):
            yield from _tasks(branch, f"{at}/Branches/{i}")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _tasks(state[key], f"{at}/{key}")


def express_problems(definition: dict) -> list[tuple[str, str]]:
    """(pointer, message) for each integration pattern an EXPRESS machine cannot use: only request-response, as
    AWS documents (no .sync, no .waitForTaskToken)."""
    found = []
    for at, resource in _tasks(definition):
        pattern = next((p for p in (".sync", ".waitForTaskToken") if resource.endswith(p) or f"{p}:" in resource),
                       None)
        if pattern:
            found.append((f"{at}/Resource", f"Express state machine does not support '{pattern}' service "
                                            "integration"))
    return found


def _express_check(definition: dict) -> None:
    problems = express_problems(definition)
    if problems:
        raise ApiError("InvalidDefinition", "Invalid State Machine Definition: '" + "; ".join(
            f"SCHEMA_VALIDATION_FAILED: {message} at {pointer}" for pointer, message in problems) + "'")


def _publishing(call: Call) -> tuple[bool, str | None]:
    """(publish, versionDescription) of Create/UpdateStateMachine; a description needs publish, as on AWS."""
    publish = bool(call.get("publish", bool, False))
    text = call.get("versionDescription")
    if text is not None and len(text) > 256:
        raise ApiError("ValidationException", "1 validation error detected: Value at 'versionDescription' failed "
                       "to satisfy constraint: Member must have length less than or equal to 256")
    if text is not None and not publish:
        raise ApiError("ValidationException", "Version description can only be set when publish is true")
    return publish, text


def _unsupported(call: Call) -> None:
    """Refuse what statemill does not keep, rather than drop it silently: customer KMS keys."""
    encryption = call.get("encryptionConfiguration", dict)
    if encryption is not None and encryption.get("type") != "AWS_OWNED_KEY":
        raise ApiError("ValidationException", "encryptionConfiguration: only type AWS_OWNED_KEY is supported "
                       "(statemill does not use KMS)")


def _role(call: Call, key: str = "roleArn", required: bool = True) -> str | None:
    role = call.require(key) if required else call.get(key)
    if role is not None:
        parse(role, "roleArn")  # InvalidArn unless it is shaped like an ARN
    return role


def _logging(call: Call) -> dict | None:
    value = call.get("loggingConfiguration", dict)
    if value is None:
        return None
    level = value.get("level", "OFF")
    if level not in LOG_LEVELS:
        raise ApiError("ValidationException", f"1 validation error detected: Value '{level}' at "
                       f"'loggingConfiguration.level' failed to satisfy constraint: Member must satisfy enum value "
                       f"set: [{', '.join(LOG_LEVELS)}]")
    destinations = value.get("destinations") or []
    if not isinstance(destinations, list) or len(destinations) > 1:
        raise ApiError("InvalidLoggingConfiguration", "Invalid Logging Configuration: at most one destination "
                       "(a CloudWatch Logs log group) may be given")
    if level != "OFF" and not destinations:
        raise ApiError("InvalidLoggingConfiguration", f"Invalid Logging Configuration: level {level} needs a "
                       "destination (cloudWatchLogsLogGroup.logGroupArn)")
    result = {"level": level, "includeExecutionData": bool(value.get("includeExecutionData", False))}
    if destinations:
        result["destinations"] = destinations
    return None if result == DEFAULT_LOGGING else result


def _tracing(call: Call) -> dict | None:
    value = call.get("tracingConfiguration", dict)
    if value is None:
        return None
    enabled = value.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ApiError("InvalidTracingConfiguration", "Invalid Tracing Configuration: enabled must be a boolean")
    return {"enabled": True} if enabled else None


def tag_pairs(call: Call) -> list[tuple[str, str]]:
    pairs = []
    for i, item in enumerate(call.get("tags", list, [])):
        key, value = (item.get("key"), item.get("value", "")) if isinstance(item, dict) else (None, None)
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not isinstance(value, str) or len(value) > 256:
            raise ApiError("ValidationException", f"1 validation error detected: Value at 'tags.{i + 1}' failed "
                           "to satisfy constraint: a tag is a key of 1 to 128 characters and a value of at most 256")
        pairs.append((key, value))
    return pairs


def _type(call: Call) -> str:
    value = call.get("type", str, m.STANDARD)
    if value not in (m.STANDARD, m.EXPRESS):
        raise ApiError("ValidationException", f"1 validation error detected: Value '{value}' at 'type' failed to "
                       "satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]")
    return value


def _live(conn, call: Call, name: str, *, for_change: bool):
    """The machine ``name``; StateMachineDoesNotExist naming the ARN asked for, as AWS words it."""
    try:
        return m.live(conn, name, for_change=for_change)
    except m.StateMachineDoesNotExist:
        raise m.StateMachineDoesNotExist(f"State Machine Does Not Exist: '{call.body['stateMachineArn']}'") from None


def _revision_shape(call: Call, row) -> dict:
    """The fields a revision contributes to DescribeStateMachine(ForExecution)."""
    return {"definition": row.definition, "roleArn": row.role_arn or call.client.role_arn,
            "loggingConfiguration": row.logging or DEFAULT_LOGGING,
            "tracingConfiguration": row.tracing or DEFAULT_TRACING, "revisionId": m.revision_id(row.sha256)}


@action("CreateStateMachine")
def create_state_machine(call: Call) -> dict:
    name = check_name("state machine", call.require("name"))
    text = call.require("definition")
    _unsupported(call)
    publish, version_text = _publishing(call)
    role, kind, logging, tracing, pairs = _role(call), _type(call), _logging(call), _tracing(call), tag_pairs(call)
    compiled = _compile(text)
    if kind == m.EXPRESS:
        _express_check(compiled.definition)
    if len(dict(pairs)) > m.MAX_TAGS:
        raise m.TooManyTags(f"Too many tags: a resource has at most {m.MAX_TAGS}")
    arn = call.client.machine_arn(name)
    with call.client.db.begin() as conn:
        _, _, created = m.store(conn, name, compiled.definition, text, m.Settings(role, logging, tracing),
                                call.client.clock.now(), type_=kind, create=True)
        if created:  # an idempotent repeat leaves the machine's tags (and role) as they are, as AWS does
            m.tag(conn, arn, pairs)
        machine = m.head(conn, name)
        number = versions.publish(conn, name, version_text, machine.created_at)[0] if publish else None
    answer = {"stateMachineArn": arn, "creationDate": _stamp(machine.created_at)}
    if number is not None:
        answer["stateMachineVersionArn"] = f"{arn}:{number}"
    return answer


@action("DescribeStateMachine")
def describe_state_machine(call: Call) -> dict:
    """A machine's current revision, or (on a version ARN) the version's, with its description."""
    name, number = machine_or_version(call, "; describe an alias with DescribeStateMachineAlias")
    with call.client.reader.connect() as conn:
        machine = _live(conn, call, name, for_change=False)
        found = versions.version(conn, name, number) if number is not None else None
        row = m.revision(conn, found.revision_id if found else machine.revision_id)
    answer = {"stateMachineArn": call.body["stateMachineArn"] if found else call.client.machine_arn(name),
              "name": name, "status": machine.status, "type": machine.type,
              "creationDate": _stamp(found.created_at if found else machine.created_at), **_revision_shape(call, row)}
    if found is not None and found.description is not None:
        answer["description"] = found.description
    return answer


@action("UpdateStateMachine")
def update_state_machine(call: Call) -> dict:
    name = machine_name(call, call.require("stateMachineArn"))
    text, role = call.get("definition"), _role(call, required=False)
    _unsupported(call)
    publish, version_text = _publishing(call)
    logging = _logging(call) if "loggingConfiguration" in call.body else ...
    tracing = _tracing(call) if "tracingConfiguration" in call.body else ...
    if text is None and role is None and logging is ... and tracing is ...:
        raise ApiError("MissingRequiredParameter", "Either the definition, the roleArn, the loggingConfiguration "
                       "or the tracingConfiguration must be specified")
    compiled = _compile(text) if text is not None else None
    now = call.client.clock.now()
    with call.client.db.begin() as conn:
        machine = _live(conn, call, name, for_change=True)
        if compiled and machine.type == m.EXPRESS:
            _express_check(compiled.definition)
        current = m.revision(conn, machine.revision_id)
        settings = m.Settings(role or current.role_arn, current.logging if logging is ... else logging,
                              current.tracing if tracing is ... else tracing)
        definition = compiled.definition if compiled else json.loads(current.definition)
        row_id, _, changed = m.store(conn, name, definition, text if text is not None else current.definition,
                                     settings, now)
        row = m.revision(conn, row_id)
        updated = now if changed else (machine.updated_at or machine.created_at)
        number = versions.publish(conn, name, version_text, now)[0] if publish else None
    answer = {"updateDate": _stamp(updated), "revisionId": m.revision_id(row.sha256)}
    if number is not None:
        answer["stateMachineVersionArn"] = f"{call.client.machine_arn(name)}:{number}"
    return answer


@action("DeleteStateMachine")
def delete_state_machine(call: Call) -> dict:
    name = machine_name(call, call.require("stateMachineArn"))
    with call.client.db.begin() as conn:
        m.delete(conn, name)
    return {}


@action("ListStateMachines")
def list_state_machines(call: Call) -> dict:
    def fetch(after, n):
        with call.client.reader.connect() as conn:
            return m.listed(conn, after, n)

    return page(call, {"a": "ListStateMachines"}, "stateMachines", fetch,
                lambda r: {"stateMachineArn": call.client.machine_arn(r.name), "name": r.name, "type": r.type,
                           "creationDate": _stamp(r.created_at)}, lambda r: r.name)


@action("ValidateStateMachineDefinition")
def validate_state_machine_definition(call: Call) -> dict:
    text = call.require("definition")
    kind = _type(call)
    severity = call.get("severity", str, "ERROR")
    if severity not in ("ERROR", "WARNING"):
        raise ApiError("ValidationException", f"1 validation error detected: Value '{severity}' at 'severity' "
                       "failed to satisfy constraint: Member must satisfy enum value set: [ERROR, WARNING]")
    limit = call.get("maxResults", int, 0)
    if not 0 <= limit <= 100:
        raise ApiError("ValidationException", f"1 validation error detected: Value '{limit}' at 'maxResults' "
                       "failed to satisfy constraint: Member must have value between 0 and 100")
    limit = limit or 100
    found = loader.validates(text, name=SOURCE)
    if kind == m.EXPRESS and not any(d.severity == "error" for d in found):
        found += [Diagnostic("SCHEMA_VALIDATION_FAILED", "error", message, pointer, SOURCE)
                  for pointer, message in express_problems(json.loads(text))]
    shown = [d for d in found if d.severity == "error" or severity == "WARNING"]
    diagnostics = [{"severity": d.severity.upper(), "code": d.code, "message": f"{_where(d)}: {d.message}",
                    "location": d.pointer or "/"} for d in shown[:limit]]
    return {"result": "FAIL" if any(d.severity == "error" for d in found) else "OK",
            "diagnostics": diagnostics, "truncated": len(shown) > limit}


@action("DescribeStateMachineForExecution")
def describe_state_machine_for_execution(call: Call) -> dict:
    arn = call.require("executionArn")
    parse(arn, "executionArn", ("execution", "express"))
    with call.client.reader.connect() as conn:
        row = m.execution_revision(conn, arn)
        if row is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
        number = conn.execute(sa.select(executions.c.version).where(executions.c.arn == arn)).scalar()
        published = conn.execute(sa.select(machine_versions.c.created_at).where(
            machine_versions.c.machine_name == row.name, machine_versions.c.version == number)).scalar() \
            if number is not None else None
    # Run on a version (or on an alias, which picked one): the state machine is that version, as AWS shows it.
    machine_arn = call.client.machine_arn(row.name) + ("" if number is None else f":{number}")
    return {"stateMachineArn": machine_arn, "name": row.name,
            "updateDate": _stamp(published if published is not None else row.created_at),
            **_revision_shape(call, row)}

