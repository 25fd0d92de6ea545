"""Parse YAML or JSON definitions into plain Python values while remembering where each node came from.

Positions are kept per JSON pointer (``/States/Charge/Next``) so that any later check can report
``file:line:col``. JSON is parsed by the C ``json`` module; its positions are only computed (by a small scanner)
when a diagnostic actually needs one, so valid files pay nothing for them.
"""
from __future__ import annotations

import bisect
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from .jsonvalue import MAX_DEPTH, line_column, too_deep_text

MAX_DEFINITION_BYTES = 1024 * 1024  # AWS: a definition is at most 1 MiB, a hard quota


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
    """Parse ``text`` as ``"yaml"`` or ``"json"``; raise SourceError on malformed text, duplicate keys, or a
    document that JSON cannot carry or that is over AWS's limits (size, and nesting for our own safety)."""
    _check_size(text)
    if kind == "json":
        return _parse_json(text), SourceMap(text, "json")
    from .yamlsource import parse_yaml  # PyYAML is loaded for YAML files only (`validate x.json` starts faster)
    return parse_yaml(text)


def decode(data: bytes) -> str:
    """The text of a definition file; SourceError at the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[:exc.start].decode("utf-8")
        raise SourceError(f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} here); save it as UTF-8",
                          Position(*line_column(head, len(head)))) from None


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _check_size(text: str) -> None:
    size = _utf8_size(text)
    if size > MAX_DEFINITION_BYTES:
        inside = len(text.encode("utf-8", "surrogatepass")[:MAX_DEFINITION_BYTES].decode("utf-8", "ignore"))
        raise SourceError(f"the definition is {size:,} bytes; AWS allows at most 1 MiB "
                          f"({MAX_DEFINITION_BYTES:,} bytes), which ends here", Position(*line_column(text, inside)),
                          code="SM003")


def _too_deep_message(what: str = "objects and arrays nest") -> str:
    return f"{what} more than {MAX_DEPTH} levels deep"


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


class _NotJsonNumber(Exception):
    """NaN, Infinity, or a number too large for a double: Python's json accepts them, JSON and AWS do not."""

    def __init__(self, word: str):
        self.word = word


def _constant(word: str):
    raise _NotJsonNumber(word)


def _finite(word: str) -> float:
    number = float(word)
    if math.isinf(number):
        raise _NotJsonNumber(word)
    return number


def not_json_number(word: str) -> str:
    """Why a number word is refused: ``NaN``/``Infinity`` are not JSON, ``1e999`` overflows a double."""
    if word.lstrip("-+") in ("NaN", "Infinity", "nan", "inf", ".nan", ".inf", ".NaN", ".Inf", ".NAN", ".INF"):
        return f"{word} is not a JSON number"
    return f"{word} is out of the range of a double (about 1.8e308)"


def _parse_json(text: str) -> Any:
    deep = too_deep_text(text)
    if deep is not None:
        raise SourceError(_too_deep_message(), Position(*line_column(text, deep)), code="SM004")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise SourceError(f"invalid JSON: {exc.msg}", Position(exc.lineno, exc.colno)) from None
    except _DuplicateKey:
        _scan_json_positions(text)  # raises SourceError at the duplicate, with its position
        raise AssertionError("duplicate key not found by the scanner")  # pragma: no cover
    except _NotJsonNumber as exc:
        raise SourceError(not_json_number(exc.word), _atom_position(text, lambda atom: atom == exc.word),
                          code="SM006") from None
    except ValueError:  # an integer longer than Python converts
        digits = sys.get_int_max_str_digits()
        at = _atom_position(text, lambda atom: len(atom.lstrip("-")) > digits)
        raise SourceError(_long_number(digits), at, code="SM006") from None


def _long_number(digits: int) -> str:
    return f"a number has more than {digits:,} digits"


_ATOM = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s"\[\]{},:]+')


def _atom_position(text: str, wanted) -> Position | None:
    """Where the first JSON atom (a number or literal, never a string) for which ``wanted(atom)`` holds starts."""
    for match in _ATOM.finditer(text):
        atom = match.group()
        if not atom.startswith('"') and wanted(atom):
            return Position(*line_column(text, match.start()))
    return None  # pragma: no cover - the parser only complains about atoms that are in the text


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
