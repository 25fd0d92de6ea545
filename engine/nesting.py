"""One bound on how deeply JSON objects and arrays nest, for definitions, execution inputs and task outputs.

Every layer that walks a JSON value (the schema validator, paths, templates, the encoder writing history) recurses
once per level, so a value nested hundreds of levels deep would end in a ``RecursionError`` somewhere far from
where it came in. It is refused where it enters instead: on the text before ``json.loads`` and on values handed
over as Python objects.
"""
from __future__ import annotations

import re
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
