"""Load a definition (YAML, JSON, or a dict), validate it, and compile it into a ``model.StateMachine``.

Three passes, each reporting located diagnostics: the JSON Schema in ``schemas/asl.schema.json``; graph checks
(names, transition targets, reachability, termination); compilation of every path, template, intrinsic call and
Choice rule. Compilation runs only on a schema-valid document, so it may trust field types.
"""
from __future__ import annotations

import ast
import functools
import json
import math
import re
from collections import deque
from os import PathLike, fspath
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import jsonschema_rs

if TYPE_CHECKING:
    import jsonschema

from . import choice, intrinsics, paths
from . import jsonata as jn
from . import model as m
from .diagnostics import Diagnostic, did_you_mean
from .errors import ALL, KNOWN_STATES_ERRORS, CompileError, DefinitionError
from .jsonvalue import MAX_DEPTH, too_deep
from .source import (
    MAX_DEFINITION_BYTES, SourceError, SourceMap, decode, escape_pointer_token, guess_kind, join_pointer,
    not_json_number, parse_text,
)

__all__ = ["load", "loads", "validate", "validates", "schema"]

JSONPATH_ONLY = frozenset({
    "InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "ItemsPath", "SecondsPath",
    "TimestampPath", "TimeoutSecondsPath", "HeartbeatSecondsPath", "ErrorPath", "CausePath", "MaxConcurrencyPath",
    "ToleratedFailureCountPath", "ToleratedFailurePercentagePath",
})
JSONATA_ONLY = frozenset({"Arguments", "Output", "Items"})
WAIT_FIELDS = ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")


@functools.cache
def schema() -> dict:
    """The language's JSON Schema (``schemas/asl.schema.json``), as shipped inside the package."""
    import statemill.schemas  # a plain folder beside this package (importlib.resources costs a start-up ~0.1 s)
    text = (Path(statemill.schemas.__file__).parent / "asl.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _fast_validator():
    """The same schema compiled by jsonschema-rs: about 100 times faster at saying "valid"."""
    return jsonschema_rs.validator_for(schema())


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    """The pure-Python validator, which explains what is wrong; imported only then (it is slow to import)."""
    import jsonschema
    return jsonschema.Draft202012Validator(schema())


# ------------------------------------------------------------------------------------------------ public surface
def load(source: str | PathLike | Mapping[str, Any], *, name: str | None = None) -> m.StateMachine:
    """Compile a definition file (a path) or a dict; raise ``DefinitionError`` listing every problem."""
    machine, diagnostics = _analyse(*_read(source, name))
    if machine is None:
        raise DefinitionError(diagnostics)
    return machine


def loads(text: str | bytes, *, name: str = "<string>") -> m.StateMachine:
    """Compile a definition given as YAML or JSON text (``bytes`` must be UTF-8)."""
    machine, diagnostics = _analyse(text, name)
    if machine is None:
        raise DefinitionError(diagnostics)
    return machine


def validate(source: str | PathLike | Mapping[str, Any], *, name: str | None = None) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) for a definition file or dict; empty when it is clean."""
    return _analyse(*_read(source, name))[1]


def validates(text: str | bytes, *, name: str = "<string>") -> list[Diagnostic]:
    return _analyse(text, name)[1]


def _read(source, name):
    if isinstance(source, Mapping):
        return dict(source), name or "<definition>"
    path = Path(fspath(source))
    return path.read_bytes(), name or str(source)


def _analyse(source: str | bytes | dict, file: str) -> tuple[m.StateMachine | None, list[Diagnostic]]:
    if isinstance(source, (str, bytes)):
        try:
            text = decode(source) if isinstance(source, bytes) else source
            document, where = parse_text(text, guess_kind(file, text))
        except SourceError as exc:
            line, col = (exc.position.line, exc.position.column) if exc.position else (None, None)
            return None, [Diagnostic(exc.code, "error", exc.message, exc.pointer, file, line, col)]
    else:
        document, where = source, None
        problem = _value_problem(document)
        if problem:
            return None, [Diagnostic(problem[0], "error", problem[2], problem[1], file)]
    analysis = _Analysis(document, where, file)
    machine = analysis.run()
    return machine, analysis.sorted_diagnostics()


def _value_problem(document: dict) -> tuple[str, str, str] | None:
    """``(code, pointer, message)`` when a definition given as a dict is one JSON text could not carry: nested
    too deeply, holding NaN or Infinity, or over AWS's 1 MiB as JSON."""
    deep = too_deep(document)
    if deep is not None:
        return "SM004", deep, f"objects and arrays nest more than {MAX_DEPTH} levels deep"
    try:
        size = len(json.dumps(document, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
                   .encode("utf-8", "surrogatepass"))
    except ValueError:
        pointer, number = _non_finite(document, "")
        return "SM006", pointer, not_json_number(repr(number).replace("inf", "Infinity").replace("nan", "NaN"))
    if size > MAX_DEFINITION_BYTES:
        return "SM003", "", (f"the definition is {size:,} bytes as JSON; AWS allows at most 1 MiB "
                             f"({MAX_DEFINITION_BYTES:,} bytes)")
    return None


def _lone_surrogate(value: Any, pointer: str = "") -> str | None:
    """The pointer of the first string (or key) holding a lone surrogate, which UTF-8 cannot encode."""
    def bad(text: str) -> bool:
        return any("\ud800" <= ch <= "\udfff" for ch in text)
    if isinstance(value, str):
        return pointer if bad(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        child_pointer = join_pointer(pointer, key)
        if isinstance(key, str) and bad(key):
            return pointer
        found = _lone_surrogate(child, child_pointer)
        if found is not None:
            return found
    return None


def _non_finite(value: Any, pointer: str) -> tuple[str, float] | None:
    """The pointer and value of the first NaN or infinite float in ``value`` (nested at most MAX_DEPTH deep)."""
    if isinstance(value, float) and not math.isfinite(value):
        return pointer, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found = _non_finite(child, join_pointer(pointer, key))
        if found:
            return found
    return None


# ------------------------------------------------------------------------------------------------ the analysis
def _state_label(pointer: str) -> str:
    """``state "Charge": `` for a pointer inside a state, else an empty string."""
    tokens = pointer.split("/")
    for i in range(len(tokens) - 2, 0, -1):
        if tokens[i] == "States":
            return f'state "{tokens[i + 1].replace("~1", "/").replace("~0", "~")}": '
    return ""


class _Analysis:
    def __init__(self, document: Any, where: SourceMap | None, file: str):
        self.document = document
        self.where = where
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.mirrored: list[Diagnostic] = []  # schema errors restating a semantic rule, under that rule's code

    # -- reporting
    def report(self, code: str, pointer: str, message: str, *, key: bool = False, severity: str = "error") -> None:
        line = column = None
        if self.where is not None:
            position = self.where.locate(pointer, key=key)
            if position:
                line, column = position.line, position.column
        self.diagnostics.append(Diagnostic(code, severity, _state_label(pointer) + message, pointer, self.file,
                                           line, column))

    def sorted_diagnostics(self) -> list[Diagnostic]:
        unique = {(d.code, d.pointer, d.message): d for d in self.diagnostics}.values()
        return sorted(unique, key=lambda d: (d.line or 0, d.column or 0, d.code))

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def run(self) -> m.StateMachine | None:
        if not isinstance(self.document, dict):
            self.report("SM103", "", "a state machine definition must be an object with StartAt and States")
            return None
        schema_ok = self.check_schema()
        self.all_names = set(_all_state_names(self.document))
        self.check_scope(self.document, "", {})
        self.drop_mirrored()
        if not schema_ok or self.failed:
            return None
        machine = _Compiler(self).machine(self.document)
        return None if self.failed else machine

    # -- pass 1: JSON Schema
    def check_schema(self) -> bool:
        try:
            if _fast_validator().is_valid(self.document):  # compiled fast path; errors are explained by jsonschema
                return True
        except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON) is not Unicode text
            self.report("SM001", _lone_surrogate(self.document) or "",
                        "a string holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape), which is not Unicode text")
            return False
        ok = True
        for error in _validator().iter_errors(self.document):
            ok = False
            self.schema_diagnostic(_deepest(error))
        return ok

    def schema_diagnostic(self, error: jsonschema.ValidationError) -> None:
        pointer = "".join(join_pointer("", p) for p in error.absolute_path)
        field = error.absolute_path[-1] if error.absolute_path else None
        keyword = error.validator
        mirrored = self.mirror(error, pointer)
        if mirrored:
            code, at, message = mirrored
            self.report(code, at, message, key=at != pointer or keyword == "required")
            self.mirrored.append(self.diagnostics[-1])
            return
        if keyword in ("additionalProperties", "unevaluatedProperties"):
            allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
            kind = error.instance.get("Type") if isinstance(error.instance, dict) else None
            where = f"a {kind} state" if isinstance(kind, str) and pointer.rsplit("/", 2)[-2:-1] == ["States"] \
                else "this object"
            language = error.instance.get("QueryLanguage") if isinstance(error.instance, dict) else None
            for extra in _extras(error.message):
                if kind == "Choice" and extra == "End":
                    code, message = "SM206", _CHOICE_END
                elif (language, extra in JSONPATH_ONLY, extra in JSONATA_ONLY) in (("JSONata", True, False),
                                                                                   ("JSONPath", False, True)):
                    other = "JSONPath" if language == "JSONata" else "JSONata"
                    code, message = "SM504", f'field "{extra}" belongs to {other}, but this state uses {language}'
                else:
                    code = "SM101"
                    message = f'field "{extra}" is not allowed in {where}{did_you_mean(extra, allowed)}'
                self.report(code, join_pointer(pointer, extra), message, key=True)
                if code != "SM101":
                    self.mirrored.append(self.diagnostics[-1])
            return
        if keyword == "required":
            missing = re.match(r"'((?:[^'\\]|\\.)*)'", error.message)
            name = missing.group(1) if missing else error.message
            self.report("SM102", pointer, f'missing required field "{name}"')
            return
        code = {"type": "SM103", "enum": "SM103", "const": "SM103", "pattern": "SM103", "format": "SM103",
                "minimum": "SM104", "maximum": "SM104", "exclusiveMinimum": "SM104",
                "exclusiveMaximum": "SM104"}.get(keyword, "SM105")
        label = f'field "{field}": ' if isinstance(field, str) else ""
        message = error.message
        described = error.schema.get("description") if isinstance(error.schema, dict) else None
        if keyword in ("not", "pattern", "minProperties", "maxProperties", "dependentRequired") and described:
            message = described
        self.report(code, pointer, label + message)

    def mirror(self, error: jsonschema.ValidationError, pointer: str) -> tuple[str, str, str] | None:
        """``(code, pointer, message)`` when a schema error restates a semantic rule (Next/End, Wait fields, one
        Choice operator, timestamps, ``.$`` values...), so it is reported once under that rule's specific code."""
        keyword, tokens = error.validator, list(error.absolute_path)
        field, instance = (tokens[-1] if tokens else None), error.instance
        parent = _node(self.document, tokens[:-1])
        state_at = pointer.rsplit("/", 1)[0]
        described = (error.schema.get("description") if isinstance(error.schema, dict) else None) or ""
        if keyword == "maxLength" and "propertyNames" in error.relative_schema_path and isinstance(instance, str):
            return "SM204", join_pointer(pointer, instance), _long_name(instance)
        missing = re.match(r"'((?:[^'\\]|\\.)*)'", error.message) if keyword == "required" else None
        is_wait = isinstance(instance, dict) and instance.get("Type") == "Wait"
        if missing and missing.group(1) in WAIT_FIELDS and is_wait:
            return "SM501", pointer, _wait_message(instance)
        if keyword == "not" and field in WAIT_FIELDS and isinstance(parent, dict) and parent.get("Type") == "Wait":
            return "SM501", state_at, _wait_message(parent)
        if missing and missing.group(1) == "Next" and isinstance(instance, dict) and "Type" in instance \
                and "End" not in instance:
            return "SM205", pointer, _NEITHER
        if keyword == "not" and field == "Next" and isinstance(parent, dict) and "End" in parent:
            return "SM205", f"{state_at}/End", _BOTH
        if keyword == "const" and field == "End" and isinstance(parent, dict) and "Next" not in parent:
            return "SM205", state_at, _NEITHER
        if keyword == "maxItems" and field == "ErrorEquals" and isinstance(instance, list) and ALL in instance:
            kind = tokens[-3] if len(tokens) >= 3 else "Retry"
            return "SM301", join_pointer(pointer, instance.index(ALL)), _all_message(kind)
        if keyword in ("minProperties", "maxProperties") and "Choices" in tokens and isinstance(instance, dict):
            try:
                choice.compile_rule(instance)
            except CompileError as exc:
                return "SM502", pointer + (getattr(exc, "pointer", "") or ""), str(exc)
            return "SM502", pointer, described or error.message
        if keyword == "pattern" and "RFC 3339" in described and isinstance(instance, str):
            return "SM506", pointer, _timestamp_message(instance)
        if field in ("ErrorPath", "CausePath") and intrinsics.is_intrinsic(instance):
            try:
                intrinsics.compile_intrinsic(instance)
            except CompileError as exc:
                return "SM404", pointer, str(exc)
        if isinstance(field, str) and field.endswith(".$"):
            try:
                paths.compile_template({field: instance})
            except CompileError as exc:
                return _template_code({field: instance}, join_pointer("", field)), pointer, str(exc)
            return "SM403", pointer, f'field "{field}": {described or error.message}'
        return None

    def drop_mirrored(self) -> None:
        """Drop a restated schema error when the semantic checks reported the same code at the same state."""
        mine = {id(d) for d in self.mirrored}
        semantic = {(d.code, _state_of(d.pointer)) for d in self.diagnostics if id(d) not in mine}
        self.diagnostics = [d for d in self.diagnostics
                            if id(d) not in mine or (d.code, _state_of(d.pointer)) not in semantic]

    # -- pass 2: the graph of each scope
    def check_scope(self, scope: Any, pointer: str, seen: dict[str, str]) -> None:
        states = scope.get("States") if isinstance(scope, dict) else None
        if not isinstance(states, dict):
            return
        start = scope.get("StartAt")
        if isinstance(start, str) and start not in states:
            self.report("SM201", join_pointer(pointer, "StartAt"),
                        f'StartAt "{start}" names no state of this scope{did_you_mean(start, states)}')
        edges: dict[str, list[str]] = {}
        broken = False  # a missing target or a dead end: reachability findings would only restate it
        for name, state in states.items():
            at = join_pointer(join_pointer(pointer, "States"), name)
            if name in seen:
                self.report("SM202", at, f'a state named "{name}" already exists at {seen[name]}', key=True)
            else:
                seen[name] = at
            if len(name) > 80:
                self.report("SM204", at, _long_name(name), key=True)
            if not isinstance(state, dict):
                broken = True
                continue
            targets = [t for t, _ in self.transitions(state, at, states)]
            edges[name] = [t for t in targets if t in states]
            dead_end = self.check_next_end(state, at)
            broken = broken or dead_end or len(edges[name]) < len(targets)
            self.check_error_lists(state, at)
            branches = state.get("Branches") if state.get("Type") == "Parallel" else None
            for i, branch in enumerate(branches if isinstance(branches, list) else ()):  # `Branches: true` too
                self.check_scope(branch, f"{at}/Branches/{i}", seen)
            if state.get("Type") == "Map":
                for key in ("ItemProcessor", "Iterator"):
                    if isinstance(state.get(key), dict):
                        self.check_scope(state[key], f"{at}/{key}", seen)
        if isinstance(start, str) and start in states and not broken:
            self.check_reachability(states, start, edges, pointer)

    def transitions(self, state: dict, at: str, states: dict) -> Iterator[tuple[str, str]]:
        targets = [("Next", state.get("Next")), ("Default", state.get("Default"))]
        for key in ("Choices", "Catch"):
            items = state.get(key)
            if isinstance(items, list):
                targets += [(f"{key}/{i}/Next", item.get("Next")) for i, item in enumerate(items)
                            if isinstance(item, dict)]
        for where, target in targets:
            if not isinstance(target, str):
                continue
            yield target, where  # missing ones too: the caller learns its scope has a broken edge
            if target in states:
                continue
            hint = did_you_mean(target, states)
            label = {"Choices": "Choice rule Next", "Catch": "Catch Next"}.get(where.split("/")[0], where)
            if target in self.all_names and not hint:
                message = (f'{label} target "{target}" is in another scope: transitions cannot cross the boundary '
                           "of a Parallel branch or Map processor")
            else:
                message = f'{label} target "{target}" does not exist{hint}'
            self.report("SM203", f"{at}/{where}", message)

    def check_next_end(self, state: dict, at: str) -> bool:
        """Report a bad Next/End combination; True when the state is a dead end (neither Next nor End)."""
        kind, has_next, ends = state.get("Type"), "Next" in state, state.get("End") is True
        if kind == "Choice":
            if "End" in state:
                self.report("SM206", f"{at}/End", _CHOICE_END, key=True)
        elif kind in ("Succeed", "Fail"):
            return False
        elif has_next and ends:
            self.report("SM205", f"{at}/End", _BOTH, key=True)
        elif not has_next and not ends and kind in ("Pass", "Task", "Wait", "Parallel", "Map"):
            self.report("SM205", at, _NEITHER, key=True)
            return True
        return False

    def check_error_lists(self, state: dict, at: str) -> None:
        for key in ("Retry", "Catch"):
            items = state.get(key)
            if not isinstance(items, list):
                continue
            for i, item in enumerate(items):
                names = item.get("ErrorEquals") if isinstance(item, dict) else None
                if not isinstance(names, list):
                    continue
                for j, name in enumerate(names):
                    where = f"{at}/{key}/{i}/ErrorEquals/{j}"
                    if name == ALL and (len(names) > 1 or i != len(items) - 1):
                        self.report("SM301", where, _all_message(key))
                    elif isinstance(name, str) and name.startswith("States.") and name not in KNOWN_STATES_ERRORS:
                        self.report("SM302", where, f'"{name}" is not an error name AWS defines'
                                    f"{did_you_mean(name, KNOWN_STATES_ERRORS)}")

    def check_reachability(self, states: dict, start: str, edges: dict[str, list[str]], pointer: str) -> None:
        reached, todo = {start}, deque([start])
        while todo:
            for target in edges.get(todo.popleft(), ()):
                if target not in reached:
                    reached.add(target)
                    todo.append(target)
        for name in states:
            if name not in reached:
                self.report("SM207", join_pointer(join_pointer(pointer, "States"), name),
                            "is unreachable: no transition leads to it from StartAt", key=True)
        terminal = {n for n, s in states.items() if isinstance(s, dict) and (
            s.get("End") is True or s.get("Type") in ("Succeed", "Fail"))}
        if not terminal & reached:
            where = "the machine" if not pointer else "this branch"
            self.report("SM208", join_pointer(pointer, "StartAt"),
                        f"{where} can never finish: no End, Succeed or Fail state is reachable from StartAt")


_CHOICE_END = "a Choice state cannot End; give every rule a Next (and a Default)"
_BOTH = "has both Next and End: keep one"
_NEITHER = "needs either Next or End: true"


def _long_name(name: str) -> str:
    return f"state names are at most 80 characters (this one has {len(name)})"


def _all_message(key: Any) -> str:
    return f"States.ALL must be the only error name of the last {key} entry"


def _wait_message(state: dict) -> str:
    given = [k for k in WAIT_FIELDS if k in state]
    return ("a Wait state needs exactly one of Seconds, Timestamp, SecondsPath and TimestampPath "
            f"(found {', '.join(given) or 'none'})")


def _timestamp_message(stamp: str) -> str:
    return f'"{stamp}" is not an RFC 3339 timestamp (for example "2026-03-14T01:59:00Z")'


def _state_of(pointer: str) -> str:
    """The pointer of the state that ``pointer`` lies in (``/States/A`` for ``/States/A/Retry/0``), else ``""``."""
    tokens = pointer.split("/")
    for i in range(len(tokens) - 2, 0, -1):
        if tokens[i] == "States":
            return "/".join(tokens[:i + 2])
    return ""


def _node(value: Any, tokens) -> Any:
    """The value at a path of keys/indexes inside ``value``, or None when there is none."""
    for token in tokens:
        if isinstance(value, dict):
            value = value.get(token)
        elif isinstance(value, list) and isinstance(token, int) and token < len(value):
            value = value[token]
        else:
            return None
    return value


def _unescape(sub: str) -> list[Any]:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in sub.split("/")[1:]]
    return [int(t) if t.isdigit() else t for t in tokens]


def _template_code(template: Any, sub: str) -> str:
    """The code of a payload-template error at ``sub``: a key collision (SM405), an intrinsic call (SM404), a path
    that does not parse (SM401), else a value that is neither (SM403)."""
    tokens = _unescape(sub)
    parent = _node(template, tokens[:-1])
    key = tokens[-1] if tokens else None
    if not isinstance(parent, dict) or not isinstance(key, str):
        return "SM403"
    base = key[:-2] if key.endswith(".$") else key
    if base in parent and f"{base}.$" in parent:
        return "SM405"
    value = parent.get(key)
    if intrinsics.is_intrinsic(value):
        return "SM404"
    return "SM401" if isinstance(value, str) and value.startswith("$") else "SM403"


def _choice_code(rule: Any, sub: str) -> str:
    """The code of a Choice rule error at ``sub``: a path that does not parse (SM401), a bad timestamp (SM506), else
    a malformed rule (SM502)."""
    tokens = _unescape(sub)
    field, value = (tokens[-1] if tokens else ""), _node(rule, tokens)
    if not isinstance(field, str) or not isinstance(value, str):
        return "SM502"
    if (field == "Variable" or field.endswith("Path")) and not paths.is_path(value):
        return "SM401"
    if field.startswith("Timestamp") and not field.endswith("Path") and not _is_timestamp(value):
        return "SM506"
    return "SM502"


def _reference_code(value: Any, sub: str) -> str:
    """A Reference Path that is not even a Path is SM401; one that is a Path but not a single node is SM402."""
    return "SM402" if paths.is_path(value) else "SM401"


def _all_state_names(scope: Any) -> Iterator[str]:
    states = scope.get("States") if isinstance(scope, dict) else None
    for name, state in (states.items() if isinstance(states, dict) else ()):
        yield name
        if isinstance(state, dict):
            for branch in state.get("Branches") or () if isinstance(state.get("Branches"), list) else ():
                yield from _all_state_names(branch)
            for key in ("ItemProcessor", "Iterator"):
                yield from _all_state_names(state.get(key))


def _extras(message: str) -> list[str]:
    """The unexpected property names of jsonschema's message, which lists them as Python reprs: ``'a'``, or
    ``"'"`` for a name holding a single quote."""
    reprs = re.findall(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"', message.split("(", 1)[-1])
    return [ast.literal_eval(text) for text in reprs]


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For anyOf/oneOf failures, the most relevant error of the best alternative."""
    import jsonschema
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    return error


# ------------------------------------------------------------------------------------------------ pass 3: compile
class _Compiler:
    """Builds the model from a schema-valid document, reporting any path/template/rule that does not compile."""

    def __init__(self, analysis: _Analysis):
        self.a = analysis
        self.index: dict[str, m.State] = {}
        self.machine_language = "JSONPath"
        self.one_language = True  # a JSONata machine may not contain JSONPath states (SM505)

    def machine(self, doc: dict) -> m.StateMachine:
        self.machine_language = doc.get("QueryLanguage", "JSONPath")
        root = self.scope(doc, "", top=True)
        _Variables(self.a, root).check()
        return root

    def scope(self, doc: dict, pointer: str, top: bool = False) -> m.StateMachine:
        states = {name: self.state(name, spec, f"{pointer}/States/{escape_pointer_token(name)}")
                  for name, spec in doc["States"].items()}
        return m.StateMachine(
            start_at=doc["StartAt"], states=states, pointer=pointer, comment=doc.get("Comment"),
            timeout_seconds=doc.get("TimeoutSeconds") if top else None,
            query_language=self.machine_language, index=self.index if top else {},
            definition=doc if top else {}, source_name=self.a.file if top else "")

    # -- field compilers: each reports its CompileError at the field and returns None
    def _compile(self, fn, value, at: str, code):
        """``fn(value)``, or None after reporting its CompileError under ``code`` (or ``code(value, sub_pointer)``)."""
        try:
            return fn(value)
        except CompileError as exc:
            sub = getattr(exc, "pointer", "") or ""
            code = code(value, sub) if callable(code) else code
            self.a.report(getattr(exc, "code", None) or code, at + sub, str(exc))
            return None

    def path(self, spec: dict, key: str, at: str, default: str | None = "$"):
        if key not in spec:
            return paths.compile_path(default) if default else None
        value = spec[key]
        return None if value is None else self._compile(paths.compile_path, value, f"{at}/{key}", "SM401")

    def ref_path(self, spec: dict, key: str, at: str, default: str | None = "$"):
        if key not in spec:
            return paths.compile_reference_path(default) if default else None
        value = spec[key]
        if value is None:
            return None
        return self._compile(paths.compile_reference_path, value, f"{at}/{key}", _reference_code)

    def template(self, spec: dict, key: str, at: str):
        if key not in spec:
            return None
        return self._compile(paths.compile_template, spec[key], f"{at}/{key}", _template_code)

    def path_or_intrinsic(self, spec: dict, key: str, at: str):
        value = spec.get(key)
        if value is None:
            return None
        if intrinsics.is_intrinsic(value):
            return self._compile(intrinsics.compile_intrinsic, value, f"{at}/{key}", "SM404")
        return self._compile(paths.compile_reference_path, value, f"{at}/{key}", _reference_code)

    def retriers(self, spec: dict) -> tuple[m.Retrier, ...]:
        return tuple(m.Retrier(
            error_equals=tuple(r["ErrorEquals"]), interval_seconds=r.get("IntervalSeconds", 1),
            max_attempts=r.get("MaxAttempts", 3), backoff_rate=r.get("BackoffRate", 2.0),
            max_delay_seconds=r.get("MaxDelaySeconds"), jitter_strategy=r.get("JitterStrategy", "NONE"),
        ) for r in spec.get("Retry", ()))

    def catchers(self, spec: dict, at: str, jsonpath: bool) -> tuple[m.Catcher, ...]:
        out = []
        for i, c in enumerate(spec.get("Catch", ())):
            where = f"{at}/Catch/{i}"
            if jsonpath:
                out.append(m.Catcher(error_equals=tuple(c["ErrorEquals"]), next=c["Next"],
                                     result_path=self.ref_path(c, "ResultPath", where),
                                     assign=self.assign(c, where, jsonpath)))
            else:
                out.append(m.Catcher(error_equals=tuple(c["ErrorEquals"]), next=c["Next"], result_path=None,
                                     output=self.jsonata_field(c, "Output", at, f"Catch/{i}/Output"),
                                     assign=self.assign(c, where, jsonpath, f"Catch/{i}/Assign")))
        return tuple(out)

    def assign(self, spec: dict, at: str, jsonpath: bool, location: str = "Assign"):
        """The compiled Assign of a state, Choice rule or Catcher: a payload template in JSONPath, a JSONata
        template in JSONata; None when absent."""
        if not isinstance(spec.get("Assign"), dict):
            return None
        if jsonpath:
            return self.template(spec, "Assign", at)
        return self.jsonata_field(spec, "Assign", at, location)

    def jsonata_field(self, spec: dict, key: str, at: str, location: str | None = None):
        """A JSONata-capable field compiled as a template (its ``{% %}`` strings parsed once), or None when absent
        or when an expression does not parse (check_jsonata reported that)."""
        if key not in spec:
            return None
        try:
            return jn.compile_template(spec[key], location or key)
        except CompileError:
            return None

    def jsonata_fields(self, spec: dict, at: str) -> dict:
        fields = {}
        for key in _JSONATA_FIELDS:
            compiled = self.jsonata_field(spec, key, at)
            if compiled is not None:
                fields[key] = compiled
        return fields

    # -- states
    def state(self, name: str, spec: dict, at: str) -> m.State:
        language = spec.get("QueryLanguage", self.machine_language)
        if self.one_language and self.machine_language == "JSONata" and language == "JSONPath":
            self.a.report("SM505", f"{at}/QueryLanguage",
                          "this machine's QueryLanguage is JSONata, so its states cannot use JSONPath")
        other = JSONPATH_ONLY if language == "JSONata" else JSONATA_ONLY
        for key in spec:
            if key in other:
                self.a.report("SM504", f"{at}/{key}", f'field "{key}" belongs to '
                              f'{"JSONPath" if language == "JSONata" else "JSONata"}, but this state uses {language}',
                              key=True)
        for holder in ("ItemReader", "ResultWriter"):
            wrong = "Arguments" if language == "JSONPath" else "Parameters"
            if isinstance(spec.get(holder), dict) and wrong in spec[holder]:
                self.a.report("SM504", f"{at}/{holder}/{wrong}", f'field "{wrong}" of {holder} belongs to '
                              f'{"JSONata" if wrong == "Arguments" else "JSONPath"}, but this state uses {language}',
                              key=True)
        if language == "JSONata":
            self.check_jsonata(spec, at)
        kind = spec["Type"]
        common: dict[str, Any] = dict(name=name, type=kind, pointer=at, comment=spec.get("Comment"),
                                      next=spec.get("Next"), end=spec.get("End") is True, query_language=language,
                                      raw=spec)
        jsonpath = language == "JSONPath"
        common["assign"] = self.assign(spec, at, jsonpath)
        if not jsonpath:
            common["jsonata"] = self.jsonata_fields(spec, at)
        if jsonpath and kind not in ("Fail",):
            common["input_path"] = self.path(spec, "InputPath", at)
            common["output_path"] = self.path(spec, "OutputPath", at)
        build = getattr(self, f"_{kind.lower()}")
        state = build(spec, at, common, jsonpath)
        self.index[name] = state
        self.check_assign_names(spec, at)
        if not jsonpath:
            self.check_expressions(state, at)
        return state

    def check_assign_names(self, spec: dict, at: str) -> None:
        """Assign targets must be plain variable names (at most 80 characters), never the reserved ``states``."""
        for where, assign in _assign_fields(spec, at):
            for key in assign:
                name = key[:-2] if isinstance(key, str) and key.endswith(".$") else key
                if name == "states":
                    self.a.report("SM510", join_pointer(where, key), '"states" is reserved (it is $states in '
                                  "JSONata) and cannot be assigned", key=True)
                elif not _VARIABLE_NAME.fullmatch(name) or len(name) > 80:
                    self.a.report("SM510", join_pointer(where, key), f'"{name}" is not a valid variable name '
                                  "(a letter or _ then letters, digits or _, at most 80 characters)", key=True)

    def check_expressions(self, state: m.State, at: str) -> None:
        """Where AWS provides $states.result (a Task's, Parallel's or Map's own Output and Assign) and
        $states.errorOutput (a Catcher's Output and Assign); no $, $$ or field name at an expression's top."""
        produces = isinstance(state, (m.TaskState, m.ParallelState, m.MapState))
        sites = [(t, produces and key == "Output", False) for key, t in state.jsonata.items()]
        sites.append((state.assign, produces, False))
        for branch in getattr(state, "choices", ()):
            sites += [(branch.assign, False, False), (branch.output, False, False)]
            if isinstance(branch.condition, jn.Expression):
                self.check_expression(branch.condition, at, False, False)
        for catcher in getattr(state, "catch", ()):
            sites += [(catcher.output, False, True), (catcher.assign, False, True)]
        for template, result_ok, error_ok in sites:
            for expression in getattr(template, "expressions", ()):
                self.check_expression(expression, at, result_ok, error_ok)

    def check_expression(self, expression, at: str, result_ok: bool, error_ok: bool) -> None:
        where = f"{at}/{expression.location}"
        for member, allowed, place in (("result", result_ok, "the Output and Assign of a Task, Parallel or Map"),
                                       ("errorOutput", error_ok, "the Output and Assign of a Catcher")):
            if not allowed and re.search(rf"\$states\s*\.\s*{member}\b", expression.text):
                self.a.report("SM508", where, f"$states.{member} is not available here: only in {place}")
        problem = jn.top_level_problem(expression)
        if problem:
            self.a.report("SM509", where, problem)

    def check_jsonata(self, value: Any, at: str) -> None:
        """Every ``{% ... %}`` string of a JSONata state must parse; half-delimited strings are mistakes."""
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in _NOT_EXPRESSIONS:
                    self.check_jsonata(item, join_pointer(at, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.check_jsonata(item, f"{at}/{i}")
        elif isinstance(value, str):
            opens, closes = value.startswith("{%"), value.endswith("%}")
            if opens and closes and len(value) >= 4:
                problem = _jsonata_problem(value[2:-2])
                if problem:
                    self.a.report("SM507", at, f"the JSONata expression {value!r} does not parse: {problem}")
            elif opens or closes:
                self.a.report("SM507", at, f"{value!r} looks like a JSONata expression but is not enclosed in "
                              '"{% ... %}"')

    def _pass(self, spec, at, common, jsonpath):
        if not jsonpath:
            return m.PassState(**common)
        return m.PassState(**common, result=spec.get("Result", m.MISSING),
                           parameters=self.template(spec, "Parameters", at),
                           result_path=self.ref_path(spec, "ResultPath", at))

    def _task(self, spec, at, common, jsonpath):
        timeout, heartbeat = spec.get("TimeoutSeconds"), spec.get("HeartbeatSeconds")
        if isinstance(timeout, int) and isinstance(heartbeat, int) and heartbeat >= timeout:
            self.a.report("SM503", f"{at}/HeartbeatSeconds",
                          f"HeartbeatSeconds ({heartbeat}) must be smaller than TimeoutSeconds ({timeout})")
        extra = {}
        if jsonpath:
            extra = dict(parameters=self.template(spec, "Parameters", at),
                         result_selector=self.template(spec, "ResultSelector", at),
                         result_path=self.ref_path(spec, "ResultPath", at),
                         timeout_seconds_path=self.ref_path(spec, "TimeoutSecondsPath", at, None),
                         heartbeat_seconds_path=self.ref_path(spec, "HeartbeatSecondsPath", at, None))
        return m.TaskState(**common, **extra, resource=spec["Resource"],
                           timeout_seconds=timeout if isinstance(timeout, int) else None,
                           heartbeat_seconds=heartbeat if isinstance(heartbeat, int) else None,
                           retry=self.retriers(spec), catch=self.catchers(spec, at, jsonpath))

    def _choice(self, spec, at, common, jsonpath):
        if "Default" not in spec:
            self.a.report("SM901", at, "has no Default: when no rule matches, the execution fails with "
                          "States.NoChoiceMatched", key=True, severity="warning")
        branches = []
        for i, rule in enumerate(spec["Choices"]):
            where = f"{at}/Choices/{i}"
            if jsonpath:
                compiled = self._compile(choice.compile_rule, rule, where, _choice_code)
                branches.append(m.ChoiceBranch(compiled, rule["Next"], assign=self.assign(rule, where, True)))
                continue
            condition = rule.get("Condition")
            if jn.is_expression(condition):
                template = self.jsonata_field(rule, "Condition", at, f"Choices/{i}/Condition")
                condition = template.expression if template is not None else None
            branches.append(m.ChoiceBranch(None, rule["Next"], condition=condition,
                                           assign=self.assign(rule, where, False, f"Choices/{i}/Assign"),
                                           output=self.jsonata_field(rule, "Output", at, f"Choices/{i}/Output")))
        return m.ChoiceState(**common, choices=tuple(branches), default=spec.get("Default"))

    def _wait(self, spec, at, common, jsonpath):
        given = [k for k in WAIT_FIELDS if k in spec]
        if len(given) != 1:
            self.a.report("SM501", at, _wait_message(spec), key=True)
        stamp = spec.get("Timestamp")
        if jsonpath and isinstance(stamp, str) and not _is_timestamp(stamp):
            self.a.report("SM506", f"{at}/Timestamp", _timestamp_message(stamp))
        if not jsonpath:
            seconds = spec.get("Seconds")
            return m.WaitState(**common, seconds=seconds if isinstance(seconds, int) else None,
                               timestamp=stamp if isinstance(stamp, str) and not jn.is_expression(stamp) else None)
        return m.WaitState(**common, seconds=spec.get("Seconds"), timestamp=stamp,
                           seconds_path=self.ref_path(spec, "SecondsPath", at, None),
                           timestamp_path=self.ref_path(spec, "TimestampPath", at, None))

    def _succeed(self, spec, at, common, jsonpath):
        return m.SucceedState(**common)

    def _fail(self, spec, at, common, jsonpath):
        if not jsonpath:
            return m.FailState(**common)
        return m.FailState(**common, error=spec.get("Error"), cause=spec.get("Cause"),
                           error_path=self.path_or_intrinsic(spec, "ErrorPath", at),
                           cause_path=self.path_or_intrinsic(spec, "CausePath", at))

    def _parallel(self, spec, at, common, jsonpath):
        branches = tuple(self.scope(b, f"{at}/Branches/{i}") for i, b in enumerate(spec["Branches"]))
        extra = {}
        if jsonpath:
            extra = dict(parameters=self.template(spec, "Parameters", at),
                         result_selector=self.template(spec, "ResultSelector", at),
                         result_path=self.ref_path(spec, "ResultPath", at))
        return m.ParallelState(**common, **extra, branches=branches, retry=self.retriers(spec),
                               catch=self.catchers(spec, at, jsonpath))

    def _map(self, spec, at, common, jsonpath):
        key = "ItemProcessor" if "ItemProcessor" in spec else "Iterator"
        mode = (spec.get(key, {}).get("ProcessorConfig") or {}).get("Mode", "INLINE")
        outer, strict = self.machine_language, self.one_language
        if mode == "DISTRIBUTED":  # a distributed processor runs as a child state machine: it may mix languages
            self.machine_language = spec[key].get("QueryLanguage", outer)
            self.one_language = False
        processor = self.scope(spec[key], f"{at}/{key}")
        self.machine_language, self.one_language = outer, strict
        extra = {}
        if jsonpath:
            selector_key = "ItemSelector" if "ItemSelector" in spec else "Parameters"
            extra = dict(items_path=self.ref_path(spec, "ItemsPath", at),
                         item_selector=self.template(spec, selector_key, at),
                         max_concurrency_path=self.ref_path(spec, "MaxConcurrencyPath", at, None),
                         result_selector=self.template(spec, "ResultSelector", at),
                         result_path=self.ref_path(spec, "ResultPath", at))
        for field, holder in (("reader", "ItemReader"), ("batcher", "ItemBatcher"), ("writer", "ResultWriter")):
            if isinstance(spec.get(holder), dict):
                extra[field] = self.template(spec, holder, at) if jsonpath else self.jsonata_field(spec, holder, at)
        if mode == "DISTRIBUTED":
            extra["label"] = spec.get("Label") if isinstance(spec.get("Label"), str) else None
            extra["execution_type"] = (spec[key].get("ProcessorConfig") or {}).get("ExecutionType", "STANDARD")
        concurrency = spec.get("MaxConcurrency", 0)
        count, percentage = spec.get("ToleratedFailureCount"), spec.get("ToleratedFailurePercentage")
        return m.MapState(**common, **extra, processor=processor, mode=mode,
                          max_concurrency=concurrency if isinstance(concurrency, int) else 0,
                          tolerated_failure_count=count if isinstance(count, int) else None,
                          tolerated_failure_percentage=percentage if isinstance(percentage, (int, float)) else None,
                          retry=self.retriers(spec), catch=self.catchers(spec, at, jsonpath))


_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JSONPATH_VARIABLE = re.compile(r"(?<![$\w])\$([A-Za-z_][A-Za-z0-9_]*)")


def _assign_fields(spec: dict, at: str) -> Iterator[tuple[str, dict]]:
    """Every Assign object of a state: its own, its Choice rules' and its Catchers' (pointer, object)."""
    if isinstance(spec.get("Assign"), dict):
        yield f"{at}/Assign", spec["Assign"]
    for key in ("Choices", "Catch"):
        for i, item in enumerate(spec.get(key) or ()):
            if isinstance(item, dict) and isinstance(item.get("Assign"), dict):
                yield f"{at}/{key}/{i}/Assign", item["Assign"]


def _jsonpath_references(value: Any, key: str = "") -> Iterator[str]:
    """Variables read by a JSONPath state: ``$name`` in ``.$`` values, *Path fields and Choice Variables."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in ("States", "Branches", "ItemProcessor", "Iterator"):
                yield from _jsonpath_references(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _jsonpath_references(item, key)
    elif isinstance(value, str) and (key.endswith(".$") or key.endswith("Path") or key == "Variable"):
        yield from _JSONPATH_VARIABLE.findall(value)


class _Variables:
    """Machine-wide variable checks: an inner scope (Parallel branch, inline Map iteration) may read but not assign
    a variable its outer scopes assign (SM511); a variable that no state assigns is worth a warning (SM902)."""

    def __init__(self, analysis: _Analysis, machine: m.StateMachine):
        self.a = analysis
        self.machine = machine
        self.assigned: set[str] = set()

    def check(self) -> None:
        self.walk(self.machine, set())
        for state in self.machine.index.values():
            for name in sorted(self.references(state) - self.assigned):
                self.a.report("SM902", state.pointer, f"reads the variable ${name}, which no state assigns: it fails "
                              "when it runs unless the variable exists by then", key=True, severity="warning")

    def walk(self, scope: m.StateMachine, outer: set[str]) -> None:
        """A Parallel or Map state's own Assign and Catchers run in the outer scope after its branches end, so
        its branches may reuse those names; any other outer assignment is off limits inside."""
        by_state: dict[str, set[str]] = {}
        for state in scope.states.values():
            names = by_state.setdefault(state.name, set())
            for where, assign in _assign_fields(state.raw, state.pointer):
                for key in assign:
                    name = key[:-2] if key.endswith(".$") else key
                    names.add(name)
                    if name in outer:
                        self.a.report("SM511", join_pointer(where, key), f'assigns "{name}", a variable of an outer '
                                      "scope: a Parallel branch or Map iteration can read it but not assign it",
                                      key=True)
        for names in by_state.values():
            self.assigned |= names
        for state in scope.states.values():
            others = set().union(*(names for name, names in by_state.items() if name != state.name))
            inner = outer | others
            if isinstance(state, m.MapState):
                self.walk(state.processor, set() if state.mode == "DISTRIBUTED" else inner)
            for branch in getattr(state, "branches", ()):
                self.walk(branch, inner)

    @staticmethod
    def references(state: m.State) -> set[str]:
        if state.query_language == "JSONPath":
            return set(_jsonpath_references(state.raw))
        templates = [*state.jsonata.values(), state.assign]
        for branch in getattr(state, "choices", ()):
            templates += [branch.assign, branch.output]
        for catcher in getattr(state, "catch", ()):
            templates += [catcher.output, catcher.assign]
        names: set[str] = set()
        for template in templates:
            for expression in getattr(template, "expressions", ()):
                names |= jn.free_variables(expression)
        for branch in getattr(state, "choices", ()):
            if isinstance(branch.condition, jn.Expression):
                names |= jn.free_variables(branch.condition)
        return names


_JSONATA_FIELDS = ("Arguments", "Output", "Items", "ItemSelector", "TimeoutSeconds", "HeartbeatSeconds", "Seconds",
                   "Timestamp", "Error", "Cause", "MaxConcurrency", "ToleratedFailureCount",
                   "ToleratedFailurePercentage")
_NOT_EXPRESSIONS = frozenset({"Type", "Next", "End", "Comment", "Resource", "QueryLanguage", "States", "StartAt",
                              "Branches", "ItemProcessor", "Iterator", "ErrorEquals", "Default", "ProcessorConfig"})


@functools.lru_cache(maxsize=4096)
def _jsonata_problem(expression: str) -> str | None:
    """The parser's complaint about a JSONata expression, or None when it parses."""
    import jsonata
    try:
        jsonata.Jsonata(expression)
    except Exception as exc:  # noqa: BLE001 - the parser raises its own exception types
        return str(exc)
    return None


def _is_timestamp(text: str) -> bool:
    return choice.parse_timestamp(text) is not None
