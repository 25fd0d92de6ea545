"""JSON values as AWS accepts them and as the engine stores them.

One strict parser (``load_strict``: no NaN or Infinity, numbers within a double, objects and arrays nested at most
MAX_DEPTH levels) for execution inputs, SendTaskSuccess outputs and States.StringToJson; the same depth bound for
definitions (engine/source.py) and for values handed over as Python objects; strict JSON text for the database; and
the check that turns a handler's Python result into a storable value before any transaction, so a value the store
cannot hold fails the task instead of the commit (which would otherwise fail again on every redelivery). Every layer
that walks a JSON value recurses once per level, so deep nesting is refused where it comes in.
"""
from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, Callable

# AWS Lambda's Python runtime fails a function whose return value JSON cannot carry with this error name and an
# "Unable to marshal response: ..." message; a statemill handler is the same kind of Python function.
MARSHAL_ERROR = "Runtime.MarshalError"
MAX_DEPTH = 100  # levels of objects and arrays; the outermost object or array is level 1

# A JSON string (skipped whole, so that brackets inside it do not count) or one bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')

DEFAULT_PAYLOAD_LIMIT = 256 * 1024  # AWS: inputs, outputs and task results are at most 256 KiB of UTF-8 JSON


def too_deep_text(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The offset of the first ``[`` or ``{`` that opens level ``limit + 1`` of JSON text, or None."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > limit:
                return match.start()
        elif char in "]}":
            depth -= 1
    return None


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """The JSON pointer of the first object or array of ``value`` at level ``limit + 1``, or None."""
    todo = [(value, "", 1)]
    while todo:
        node, pointer, depth = todo.pop()
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, (list, tuple)):
            items = enumerate(node)
        else:
            continue
        if depth > limit:
            return pointer
        todo.extend((child, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}", depth + 1)
                    for key, child in items if isinstance(child, (dict, list, tuple)))
    return None


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def load_strict(text: str) -> Any:
    """Parse JSON text as AWS does (NaN, Infinity and numbers beyond a double are not JSON), nested at most
    MAX_DEPTH levels; the ValueError says what is wrong and where."""
    deep = too_deep_text(text)
    if deep is not None:
        line, column = line_column(text, deep)
        raise ValueError(f"objects and arrays nest more than {MAX_DEPTH} levels deep (at line {line} column "
                         f"{column})")
    try:
        value = json.loads(text, parse_constant=_not_json, parse_float=finite_float)
        # "\ud800" parses, but a lone surrogate is not Unicode: no database or terminal can take it
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return value
    except UnicodeEncodeError as exc:
        raise ValueError(f"{exc.object[exc.start:exc.end]!r} is a lone surrogate, not a Unicode character") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise ValueError(f"a number has more than {sys.get_int_max_str_digits():,} digits") from None
        raise


def _not_json(word: str):
    raise ValueError(f"{word} is not a JSON value")


def dumps(value: Any) -> str:
    """Compact JSON text for the database. NaN and Infinity are refused (ValueError): they are not JSON, and a
    strict parser reading ``describe --json`` would reject them."""
    return _STRICT(value)


def compact_encoder(allow_nan: bool) -> Callable[[Any], str]:
    """What ``json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan).encode`` does, minus
    its per-call Python layer: json's C encoder called directly (with a fresh circular-reference guard each time,
    as ``encode`` has). Hot: every history event and frame row goes through one of these."""
    plain = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
    make = json.encoder.c_make_encoder
    if make is None:  # pragma: no cover - an interpreter without the C accelerator
        return plain.encode
    default, escape = plain.default, json.encoder.encode_basestring

    def encode(value: Any) -> str:
        return "".join(make({}, default, escape, None, ":", ",", False, False, allow_nan)(value, 0))

    return encode


_STRICT = compact_encoder(allow_nan=False)


def finite_float(text: str) -> float:
    """``parse_float`` for ``json.loads``: a number too large for a double is refused, not read as Infinity."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text} is out of the range of a double")
    return value


def stored_form(value: Any) -> Any:
    """``value`` as the database will hold it: its JSON round trip (tuples become lists, non-string keys strings).
    ValueError says why when it has none: not JSON-serialisable, NaN or Infinity, a lone surrogate (UTF-8
    cannot encode it), or nested deeper than MAX_DEPTH."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
        stored = json.loads(text)
    except RecursionError:
        raise ValueError(f"it is nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        raise ValueError(f"a string holds a lone surrogate ({bad!a}), which UTF-8 cannot encode") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # too few brackets to nest that deep: no walk needed
        return stored
    return check_depth(stored)


def check_depth(value: Any) -> Any:
    """``value`` itself; ValueError when its arrays and objects nest deeper than MAX_DEPTH levels. Iterative, so it
    answers the same whatever Python's recursion limit is."""
    if too_deep(value) is not None:
        raise ValueError(f"it is nested deeper than {MAX_DEPTH} levels")
    return value


def type_name(value: Any) -> str:
    """JSON type of a value as AWS names it in messages ("Expected 'array', but was 'object'")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
