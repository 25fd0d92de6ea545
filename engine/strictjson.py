"""JSON as AWS accepts it: no NaN or Infinity, numbers within a double, objects and arrays nested at most
MAX_DEPTH levels. One parser (``load_strict``) for execution inputs, SendTaskSuccess outputs and
States.StringToJson; the same depth bound for definitions (engine/source.py) and for values handed over as
Python objects. Every layer that walks a JSON value (schema validation, paths, templates, the history encoder)
recurses once per level, so deep nesting is refused where it comes in, not as a RecursionError far away.
"""
from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

MAX_DEPTH = 100  # levels of objects and arrays; the outermost object or array is level 1

# A JSON string (skipped whole, so that brackets inside it do not count) or one bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


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
        return json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise ValueError(f"a number has more than {sys.get_int_max_str_digits():,} digits") from None
        raise


def _not_json(word: str):
    raise ValueError(f"{word} is not a JSON value")


def _finite(word: str) -> float:
    number = float(word)
    if math.isinf(number):
        raise ValueError(f"{word} is out of the range of a double (about 1.8e308)")
    return number
