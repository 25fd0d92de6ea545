"""Parse YAML or JSON definitions into plain Python values while remembering where each node came from.

Positions are kept per JSON pointer (``/States/Charge/Next``) so that any later check can report
``file:line:col``. JSON is parsed by the C ``json`` module; its positions are only computed (by a small scanner)
when a diagnostic actually needs one, so valid files pay nothing for them.
"""
from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


class SourceError(Exception):
    """The text is not well-formed YAML or JSON, or repeats a key. Carries the position of the problem."""

    def __init__(self, message: str, position: Position | None, pointer: str = "", code: str = "SM001"):
        super().__init__(message)
        self.message = message
        self.position = position
        self.pointer = pointer
        self.code = code


def escape_pointer_token(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(pointer: str, token: Any) -> str:
    return f"{pointer}/{escape_pointer_token(token)}"


@dataclass
class SourceMap:
    """Where each JSON pointer's value (and, for object members, its key) starts in the text."""

    text: str = ""
    kind: str = "json"
    _values: dict[str, Position] | None = None
    _keys: dict[str, Position] = field(default_factory=dict)

    def locate(self, pointer: str, key: bool = False) -> Position | None:
        """The position of the node at ``pointer`` (its key with ``key=True``); the nearest ancestor if unknown."""
        if self._values is None:
            self._values, self._keys = _scan_json_positions(self.text)
        table = self._keys if key else self._values
        while True:
            if pointer in table:
                return table[pointer]
            if key:  # fall back to the value's own position, then to ancestors
                table, key = self._values, False
                continue
            if not pointer:
                return None
            pointer = pointer.rsplit("/", 1)[0]


def parse_text(text: str, kind: str) -> tuple[Any, SourceMap]:
    """Parse ``text`` as ``"yaml"`` or ``"json"``; raise SourceError on malformed text or duplicate keys."""
    if kind == "json":
        return _parse_json(text), SourceMap(text, "json")
    return _parse_yaml(text)


def guess_kind(name: str, text: str) -> str:
    """JSON for ``.json``/``.asl.json`` files or text that starts with ``{``; YAML otherwise."""
    lower = name.lower()
    if lower.endswith(".json"):
        return "json"
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    return "json" if text.lstrip().startswith("{") else "yaml"


# ----------------------------------------------------------------------------------------------------------- JSON
class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise SourceError(f"invalid JSON: {exc.msg}", Position(exc.lineno, exc.colno)) from None
    except _DuplicateKey:
        _scan_json_positions(text)  # raises SourceError at the duplicate, with its position
        raise AssertionError("duplicate key not found by the scanner")  # pragma: no cover


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}


def _scan_json_positions(text: str) -> tuple[dict[str, Position], dict[str, Position]]:
    """Walk well-formed JSON text and record the start of every value and object key by JSON pointer."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def pos(offset: int) -> Position:
        line = bisect.bisect_right(line_starts, offset)
        return Position(line, offset - line_starts[line - 1] + 1)

    values: dict[str, Position] = {}
    keys: dict[str, Position] = {}
    scanstring = json.decoder.scanstring

    def value(i: int, pointer: str) -> int:
        i = _WS.match(text, i).end()
        values[pointer] = pos(i)
        ch = text[i]
        if ch == "{":
            i = _WS.match(text, i + 1).end()
            if text[i] == "}":
                return i + 1
            seen: set[str] = set()
            while True:
                key_at = i
                key, i = scanstring(text, i + 1)
                child = join_pointer(pointer, key)
                if key in seen:
                    raise SourceError(f'duplicate key "{key}"', pos(key_at), child, "SM002")
                seen.add(key)
                keys[child] = pos(key_at)
                i = _WS.match(text, i).end() + 1  # the colon
                i = _WS.match(text, value(i, child)).end()
                if text[i] == "}":
                    return i + 1
                i = _WS.match(text, i + 1).end()  # the comma
        if ch == "[":
            i = _WS.match(text, i + 1).end()
            if text[i] == "]":
                return i + 1
            index = 0
            while True:
                i = _WS.match(text, value(i, join_pointer(pointer, index))).end()
                index += 1
                if text[i] == "]":
                    return i + 1
                i += 1
        if ch == '"':
            return scanstring(text, i + 1)[1]
        for word in _LITERALS:
            if text.startswith(word, i):
                return i + len(word)
        return _NUMBER.match(text, i).end()

    value(0, "")
    return values, keys


# ----------------------------------------------------------------------------------------------------------- YAML
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML loading where timestamps stay strings (ASL compares them as RFC 3339 text)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# JSON (and YAML 1.2) numbers such as 1e3 or 2E-1 are floats; YAML 1.1 would keep them as text.
_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _parse_yaml(text: str) -> tuple[Any, "SourceMap"]:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        source = SourceMap(text, "yaml", {}, {})
        value = _construct(loader, root, "", source) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else None
        raise SourceError(f"invalid YAML: {exc.problem or exc.context}", where) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"invalid YAML: {exc}", None) from None
    finally:
        loader.dispose()
    return value, source


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _construct(loader: yaml.Loader, node: yaml.Node, pointer: str, source: SourceMap) -> Any:
    source._values[pointer] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SourceError("mapping keys must be plain strings", _mark(key_node), pointer, "SM001")
            key = key_node.value  # keys are always strings in ASL (`On:` or `1:` stays text)
            child = join_pointer(pointer, key)
            if key in result:
                raise SourceError(f'duplicate key "{key}"', _mark(key_node), child, "SM002")
            source._keys[child] = _mark(key_node)
            result[key] = _construct(loader, value_node, child, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, join_pointer(pointer, i), source) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
