"""User text (state names, comments, error names, Choice values) made safe for each drawing syntax.

Every string that comes from a definition or an execution reaches DOT or Mermaid through one of these functions:
control characters are first turned into visible symbols (no output may hold them raw: XML forbids most, Graphviz's
HTML labels reject them, Mermaid ends a statement at a newline), then the syntax's own markup characters are escaped.
"""
from __future__ import annotations

import html
import re

import graphviz

# C0 and C1 controls, DEL, lone surrogates (a JSON definition can hold them) and the two XML non-characters.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Mermaid decodes ``#code;`` entities after parsing, so these characters can neither end a quoted label nor start
# markup, a directive (``%%{init...}%%``) or a markdown string.
_MERMAID = str.maketrans({char: f"#{ord(char)};" for char in '#&"<>|%`{}[]();'})


def _symbol(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control pictures: ␀ … ␛ … ␟
    return "\u2421" if code == 0x7f else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character shown as a symbol: ESC as ␛, a newline as ␊, a tab as ␉, U+0085 as
    ``\\u0085``; other text unchanged."""
    return _UNSHOWABLE.sub(_symbol, text)


def html_text(text: str) -> str:
    """Text inside a Graphviz HTML-like label: visible, ``& < > "`` as entities (so it cannot become markup),
    ``]`` too (Graphviz 2.43 rejects a text of only ``]``) and backslashes doubled (Graphviz expands ``\\N``,
    ``\\G``... even there)."""
    return html.escape(visible(text), quote=True).replace("]", "&#93;").replace("\\", "\\\\")


def dot_label(text: str) -> str:
    """A plain (non-HTML) DOT label such as a cluster's: an escString that shows ``text`` as written."""
    return _esc_string(text, "\\\\")


def dot_tooltip(text: str) -> str:
    """A DOT tooltip that shows ``text`` as written. Graphviz reads a tooltip's backslashes twice (once turning
    ``\\n`` into a newline, once expanding ``\\N``...), so each of ours is written four times."""
    return _esc_string(text, "\\\\\\\\")


def _esc_string(text: str, backslash: str) -> str:
    """An escString: always quoted (never read as an HTML label), ``&`` as an entity (Graphviz decodes them), each
    backslash as ``backslash``, each newline as ``\\n``."""
    lines = (visible(line).replace("&", "&amp;").replace("\\", backslash) for line in (text or " ").split("\n"))
    return graphviz.nohtml("\\n".join(lines))


def mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: visible, with Mermaid's and HTML's markup characters as entity codes."""
    return visible(text).translate(_MERMAID)
