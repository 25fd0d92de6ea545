"""Showing user text on a terminal safely: names, causes and paths come from definitions, inputs and handlers,
and a control character in them (ESC sequences set the window title or clear the screen) must be shown, not obeyed.

Every human-readable line goes through ``safe`` (plain output) or ``markup`` (rich output); ``--json`` output is
exact JSON and never passes through here.
"""
from __future__ import annotations

import unicodedata
from typing import Any

# Bidirectional overrides and isolates reorder what follows them on screen ("Trojan Source"); show them too.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def safe(value: Any) -> str:
    """``str(value)`` with control characters (C0, DEL, C1), bidi overrides and lone surrogates (which no terminal
    encoding takes) escaped as ``\\x1b`` / ``\\u202e``."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(_escaped(ch) if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI else ch for ch in text)


def markup(value: Any) -> str:
    """``safe(value)`` for a rich markup string: ``[bold]`` in a state name is shown, not interpreted."""
    from rich.markup import escape  # here: only rich output needs it, and importing rich slows every start
    return escape(safe(value))


def _escaped(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
