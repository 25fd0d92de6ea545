"""JSON values as the engine stores them: strict JSON text for the database, and the check that turns a handler's
Python result into such a value before any transaction, so a value the store cannot hold fails the task instead of
the commit (which would otherwise fail again on every redelivery).
"""
from __future__ import annotations

import json
import math
from typing import Any

# AWS Lambda's Python runtime fails a function whose return value JSON cannot carry with this error name and an
# "Unable to marshal response: ..." message; a statemill handler is the same kind of Python function.
MARSHAL_ERROR = "Runtime.MarshalError"
# Deeper values are refused: every later step (paths, history, the drivers) must handle them far from Python's
# recursion limit. Ruby's JSON and serde_json stop at 100 and 128 levels; no real payload comes near.
MAX_DEPTH = 128


def dumps(value: Any) -> str:
    """Compact JSON text for the database. NaN and Infinity are refused (ValueError): they are not JSON, and a
    strict parser reading ``describe --json`` would reject them."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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
    return check_depth(stored)


def check_depth(value: Any) -> Any:
    """``value`` itself; ValueError when its arrays and objects nest deeper than MAX_DEPTH levels. Iterative, so it
    answers the same whatever Python's recursion limit is."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"it is nested deeper than {MAX_DEPTH} levels")
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return value
