"""JSONPath data flow of the States language (QueryLanguage JSONPath): Paths, Reference Paths and payload templates.

AWS evaluates paths with Jayway JsonPath (Java). This module reproduces the behaviour AWS shows, including its
error causes, rather than any JSONPath standard:

- A *definite* path (only names and single indexes) yields one value or fails with Jayway's message
  (``No results for path: $['x']`` for a missing leaf, ``Missing property in path $['x']`` for a missing
  intermediate object). An array index past the end yields ``null`` (AWS's Jackson-backed provider does that).
- An *indefinite* path (wildcard, slice, filter, ``..``, union) yields a list of matches and never fails: AWS answers
  ``[]`` even when an object on the way is missing.
- A quoted name in brackets is taken verbatim: ``$['a\\"b']`` names the key ``a\\"b`` (AWS does not unescape).
- ``$$...`` reads the context object, ``$name...`` the workflow variable ``name``.

Paths are parsed once (``compile_path`` / ``compile_reference_path``, cached by text) into a tuple of segments.
Definite paths walk the document with a small loop; indefinite ones go segment by segment; filter predicates
(``[?(...)]``) are compiled once with jsonpath-ng and evaluated per candidate.

Aliasing rule: values returned by ``get``/``resolve``/``Template.evaluate`` may share nested objects with the
document they were read from. Treat every JSON value as immutable: ``ReferencePath.assign`` copies the objects on
the written path (copy-on-write) and never mutates its arguments. Template literals are copied on each evaluation.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Iterator

from .errors import REFERENCE_PATH_CONFLICT, CompileError, StatesError

__all__ = [
    "MISSING", "Path", "ReferencePath", "Template", "PathNotFound", "compile_path", "compile_reference_path",
    "compile_template", "is_path", "to_json_text", "RESULT_PATH_ERROR",
]

RUNTIME = "States.Runtime"
#: Error name AWS reports when a ResultPath cannot be applied. The ASL spec names it "States.ResultPathMatchFailure",
#: but executions on AWS fail with "States.ReferencePathConflict" and a cause "Unable to apply ReferencePath ...".
RESULT_PATH_ERROR = REFERENCE_PATH_CONFLICT
NULL_INPUT_CAUSE = "Unable to apply Path transformation to null or empty input."


class _Missing:
    """The type of ``MISSING``: a value that is not there (distinct from JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class PathNotFound(Exception):
    """A definite path matched nothing; ``reason`` is Jayway's message (``No results for path: $['x']``)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------------------------
# JSON text as AWS prints it in causes (Jackson, compact)
# ---------------------------------------------------------------------------------------------------------------

def java_double(x: float) -> str:
    """A float as Java's Double.toString writes it: ``1.0``, ``0.001``, ``1.0E7``, ``1.5E-5``."""
    if x != x or x in (math.inf, -math.inf):
        return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign, digits, exp = Decimal(repr(x)).as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    text = "".join(map(str, digits))
    sci = len(text) - 1 + exp
    prefix = "-" if sign else ""
    if -3 <= sci < 7:
        if sci >= 0:
            whole = text[:sci + 1].ljust(sci + 1, "0")
            frac = text[sci + 1:] or "0"
        else:
            whole, frac = "0", "0" * (-sci - 1) + text
        return f"{prefix}{whole}.{frac}"
    return f"{prefix}{text[0]}.{text[1:] or '0'}E{sci}"


def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch < " ":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(ch, f"\\u{ord(ch):04x}"))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def to_json_text(value: Any) -> str:
    """Compact JSON as AWS prints a document inside an error cause (``{"a":1,"b":[1.5,null]}``)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_string(str(k))}:{to_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json_text(v) for v in value) + "]"
    return _json_string(str(value))


def _clone(value: Any) -> Any:
    """A deep copy of a JSON value (dicts and lists only; scalars are immutable)."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------------
# Segments
# ---------------------------------------------------------------------------------------------------------------

class _Seg:
    """One step of a path. ``definite`` steps select at most one node."""

    __slots__ = ()
    definite = False
    kind = ""

    def apply(self, value: Any, root: Any) -> Iterator[Any]:  # pragma: no cover - abstract
        raise NotImplementedError


class _Name(_Seg):
    __slots__ = ("name",)
    definite = True
    kind = "name"

    def __init__(self, name: str):
        self.name = name

    def fragment(self) -> str:
        return f"['{self.name}']"

    def apply(self, value, root):
        if isinstance(value, dict) and self.name in value:
            yield value[self.name]


class _Names(_Seg):
    """``['a','b']``: Jayway merges the named members of an object into a new object (only as the last step)."""

    __slots__ = ("names",)
    definite = True
    kind = "union"

    def __init__(self, names: tuple[str, ...]):
        self.names = names

    def fragment(self) -> str:
        return "[" + ", ".join(f"'{n}'" for n in self.names) + "]"

    def merge(self, value):
        return {n: value[n] for n in self.names if n in value}

    def apply(self, value, root):
        if isinstance(value, dict):
            yield self.merge(value)


class _Index(_Seg):
    __slots__ = ("index",)
    definite = True
    kind = "index"

    def __init__(self, index: int):
        self.index = index

    def fragment(self) -> str:
        return f"[{self.index}]"

    def apply(self, value, root):
        if isinstance(value, list):
            yield _at(value, self.index)


def _at(array: list, index: int) -> Any:
    """``array[index]`` with negative indexes counting from the end; ``None`` when out of range (as on AWS)."""
    n = len(array)
    j = index + n if index < 0 else index
    return array[j] if 0 <= j < n else None


class _Indexes(_Seg):
    __slots__ = ("indexes",)
    kind = "union"

    def __init__(self, indexes: tuple[int, ...]):
        self.indexes = indexes

    def apply(self, value, root):
        if isinstance(value, list):
            for i in self.indexes:
                yield _at(value, i)


class _Wildcard(_Seg):
    __slots__ = ()
    kind = "wildcard"

    def apply(self, value, root):
        if isinstance(value, dict):
            yield from value.values()
        elif isinstance(value, list):
            yield from value


class _Slice(_Seg):
    __slots__ = ("start", "stop")
    kind = "slice"

    def __init__(self, start: int | None, stop: int | None):
        self.start, self.stop = start, stop

    def apply(self, value, root):
        if isinstance(value, list):
            yield from value[self.start:self.stop]


class _Filter(_Seg):
    """``[?(...)]``: the predicate is a jsonpath-ng filter, compiled once. On an array it keeps the matching elements;
    on an object it tests the object itself (Jayway's behaviour)."""

    __slots__ = ("expressions", "uses_root")
    kind = "filter"

    def __init__(self, node):
        self.expressions = tuple(node.expressions)
        self.uses_root = node._references_root()

    def _matches(self, candidate, root) -> bool:
        if self.uses_root:
            from jsonpath_ng import DatumInContext
            candidate = DatumInContext(candidate, context=DatumInContext(root))
        try:
            return all(e.find(candidate) for e in self.expressions)
        except (TypeError, ValueError, KeyError, AttributeError):  # a comparison between incompatible values
            return False

    def apply(self, value, root):
        if isinstance(value, list):
            for item in value:
                if self._matches(item, root):
                    yield item
        elif isinstance(value, dict):
            if self._matches(value, root):
                yield value


class _Scan(_Seg):
    """``..x``: applies the inner step to every object and array of the tree, in document (pre-)order."""

    __slots__ = ("inner",)
    kind = "recursive"

    def __init__(self, inner: _Seg):
        self.inner = inner

    def apply(self, value, root):
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                yield from self.inner.apply(node, root)
                stack.extend(reversed(list(node.values())))
            elif isinstance(node, list):
                yield from self.inner.apply(node, root)
                stack.extend(reversed(node))


# ---------------------------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------------------------

class _Parser:
    """Reads a path text into (root kind, variable name, segments). Raises CompileError quoting the path."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> CompileError:
        return CompileError(f"Invalid JSONPath '{self.text}': {why}")

    def parse(self) -> tuple[str, str | None, tuple[_Seg, ...]]:
        text = self.text
        if not text.startswith("$"):
            raise self.fail("a path must start with '$'")
        root, variable = "input", None
        self.pos = 1
        if text.startswith("$$"):
            root, self.pos = "context", 2
        elif len(text) > 1 and (text[1].isalpha() or text[1] == "_"):
            end = 2
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            root, variable, self.pos = "variable", text[1:end], end
        segs: list[_Seg] = []
        while self.pos < len(text):
            segs.append(self.segment())
        for i, seg in enumerate(segs[:-1]):
            if isinstance(seg, _Names):
                # Jayway accepts this syntax and fails every evaluation; keep the path valid, fail at run time.
                return root, variable, tuple(segs[:i + 1]) + (_BadUnion(seg, tuple(segs[:i + 1])),)
        return root, variable, tuple(segs)

    def segment(self) -> _Seg:
        text, pos = self.text, self.pos
        ch = text[pos]
        if ch == ".":
            if text.startswith("..", pos):
                self.pos = pos + 2
                if self.pos >= len(text):
                    raise self.fail("a path must not end with '..'")
                if text[self.pos] == ".":
                    raise self.fail(f"unexpected '.' at position {self.pos}")
                if text[self.pos] == "[":
                    return _Scan(self.bracket())
                return _Scan(self.dot_name())
            self.pos = pos + 1
            if self.pos >= len(text):
                raise self.fail("a path must not end with '.'")
            if text[self.pos] == "[":
                return self.bracket()
            return self.dot_name()
        if ch == "[":
            return self.bracket()
        raise self.fail(f"unexpected character {ch!r} at position {pos}")

    def dot_name(self) -> _Seg:
        text, start = self.text, self.pos
        if text[start] == "*":
            self.pos = start + 1
            if self.pos < len(text) and text[self.pos] not in ".[":
                raise self.fail(f"unexpected character {text[self.pos]!r} at position {self.pos}")
            return _Wildcard()
        end = start
        while end < len(text) and text[end] not in ".[":
            if text[end].isspace():
                raise self.fail("use bracket notation ['my prop'] for names that contain blanks")
            if text[end] == "]":
                raise self.fail(f"unexpected ']' at position {end}")
            end += 1
        if end == start:
            raise self.fail(f"empty name at position {start}")
        self.pos = end
        return _Name(text[start:end])

    def skip_blanks(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def close(self) -> None:
        self.skip_blanks()
        if self.pos >= len(self.text) or self.text[self.pos] != "]":
            raise self.fail(f"expected ']' at position {self.pos}")
        self.pos += 1

    def bracket(self) -> _Seg:
        text = self.text
        self.pos += 1  # '['
        self.skip_blanks()
        if self.pos >= len(text):
            raise self.fail("unclosed '['")
        ch = text[self.pos]
        if ch == "*":
            self.pos += 1
            self.close()
            return _Wildcard()
        if ch in "'\"":
            names = [self.quoted()]
            self.skip_blanks()
            while self.pos < len(text) and text[self.pos] == ",":
                self.pos += 1
                self.skip_blanks()
                if self.pos >= len(text) or text[self.pos] not in "'\"":
                    raise self.fail(f"expected a quoted name at position {self.pos}")
                names.append(self.quoted())
                self.skip_blanks()
            self.close()
            return _Name(names[0]) if len(names) == 1 else _Names(tuple(names))
        if ch == "?":
            return self.filter()
        end = text.find("]", self.pos)
        if end < 0:
            raise self.fail("unclosed '['")
        body = text[self.pos:end].strip()
        self.pos = end + 1
        try:
            if ":" in body:
                parts = [p.strip() for p in body.split(":")]
                if len(parts) != 2:
                    raise self.fail(f"slices take [start:end] only, got [{body}]")
                start, stop = (_index(p) if p else None for p in parts)
                return _Slice(start, stop)
            indexes = tuple(_index(p.strip()) for p in body.split(","))
        except ValueError:
            raise self.fail(f"invalid array index [{body}]") from None
        return _Index(indexes[0]) if len(indexes) == 1 else _Indexes(indexes)

    def quoted(self) -> str:
        """A quoted name, verbatim: a backslash protects the next character but is kept (as AWS does)."""
        text, quote = self.text, self.text[self.pos]
        i = self.pos + 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == quote:
                name = text[self.pos + 1:i]
                self.pos = i + 1
                return name
            i += 1
        raise self.fail("unclosed quoted name")

    def filter(self) -> _Seg:
        text, start = self.text, self.pos
        depth, i, quote = 0, start, None
        while i < len(text):
            c = text[i]
            if quote:
                if c == "\\":
                    i += 1
                elif c == quote:
                    quote = None
            elif c in "'\"":
                quote = c
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == "]" and depth == 0:
                break
            i += 1
        else:
            raise self.fail("unclosed filter expression")
        body = text[start:i].strip()
        self.pos = i + 1
        if not (body.startswith("?(") and body.endswith(")")):
            raise self.fail(f"filters are written [?(...)], got [{body}]")
        from jsonpath_ng.ext import parse as ng_parse
        from jsonpath_ng.ext.filter import Filter
        try:
            node = ng_parse(f"$[{body}]")
        except Exception as exc:  # jsonpath-ng raises several exception types for bad syntax
            raise self.fail(f"unsupported filter expression [{body}] ({exc})") from None
        node = getattr(node, "right", None)
        if not isinstance(node, Filter):
            raise self.fail(f"unsupported filter expression [{body}]")
        return _Filter(node)


_INDEX = re.compile(r"-?[0-9]+")


def _index(text: str) -> int:
    """An array index in ASCII digits; Python's int() would also take "1_000", "+1" and "٣" (Arabic three)."""
    if not _INDEX.fullmatch(text):
        raise ValueError(text)
    return int(text)


class _BadUnion(_Seg):
    """Marks a ``['a','b']`` step that is not the last: every evaluation fails, as on AWS."""

    __slots__ = ("message",)
    definite = True
    kind = "union"

    def __init__(self, seg: _Names, upto: tuple[_Seg, ...]):
        self.message = "Multi properties can only be used as path leafs: " + _normalised(upto)

    def apply(self, value, root):
        return iter(())


def _normalised(segs) -> str:
    """Jayway's normalised form of definite steps: ``$['a']['b'][0]``."""
    return "$" + "".join(s.fragment() for s in segs if hasattr(s, "fragment"))


# ---------------------------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------------------------

class Path:
    """A compiled JSONPath Path (InputPath, OutputPath, payload template values, Choice variables...).

    ``root`` is ``"input"`` (``$``), ``"context"`` (``$$``) or ``"variable"`` (``$name``, name in ``variable``).
    ``definite`` paths select a single value; the others select a list of values.
    """

    __slots__ = ("text", "root", "variable", "segments", "definite", "_steps", "_bad", "whole")

    def __init__(self, text: str, root: str, variable: str | None, segments: tuple[_Seg, ...]):
        self.text = text
        self.root = root
        self.variable = variable
        self.segments = segments
        self.whole = root == "input" and not segments  # ``$``: selects the input itself (no evaluation needed)
        self.definite = all(s.definite for s in segments)
        bad = [s for s in segments if isinstance(s, _BadUnion)]
        self._bad = bad[0].message if bad else None
        self._steps = segments if self.definite and not self._bad else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.text == self.text

    def __hash__(self) -> int:
        return hash((type(self), self.text))

    # -- evaluation ------------------------------------------------------------------------------------------

    def _document(self, scope) -> Any:
        if self.root == "input":
            return scope.input
        if self.root == "context":
            return scope.context
        variables = scope.variables
        if self.variable not in variables:
            raise PathNotFound(f"The variable '{self.variable}' is not defined")
        return variables[self.variable]

    def _select(self, document: Any) -> Any:
        """The value (definite) or list of values (indefinite) at this path; PathNotFound when a definite path
        matches nothing."""
        steps = self._steps
        if steps is not None:
            node = document
            for i, step in enumerate(steps):
                if type(step) is _Name:
                    if isinstance(node, dict):
                        try:
                            node = node[step.name]
                            continue
                        except KeyError:
                            pass
                    raise PathNotFound(self._definite_failure(i, node))
                if type(step) is _Index:
                    if isinstance(node, list):
                        node = _at(node, step.index)
                        continue
                    raise PathNotFound(self._definite_failure(i, node))
                if isinstance(node, dict):  # _Names, always the last step
                    return step.merge(node)
                raise PathNotFound(self._definite_failure(i, node))
            return node
        if self._bad:
            raise PathNotFound(self._bad)
        values = [document]
        for seg in self.segments:
            values = [out for value in values for out in seg.apply(value, document)]
            if not values:
                break
        return values

    def _definite_failure(self, i: int, node: Any) -> str:
        """Jayway's message for step ``i`` of a definite path failing on ``node``."""
        step = self._steps[i]
        before = _normalised(self._steps[:i])
        if isinstance(step, _Index):
            if node is None:
                return f"The path {before} is null"
            return f"Filter: [{step.index}] can only be applied to arrays. Current context is: {to_json_text(node)}"
        if not isinstance(node, dict):
            return f"Property {step.fragment()} not found in path {before}"
        if i == len(self._steps) - 1:
            return f"No results for path: {_normalised(self._steps)}"
        return f"Missing property in path {_normalised(self._steps[:i + 1])}"

    def get(self, scope, default: Any = MISSING) -> Any:
        """The value at this path, or ``default`` when a definite path matches nothing (never raises for that).
        An indefinite path always returns a list, possibly empty."""
        if self.root == "input" and scope.input is None and self.segments:
            return default
        try:
            return self._select(self._document(scope))
        except PathNotFound:
            return default

    def resolve(self, scope) -> Any:
        """The value as InputPath/OutputPath/ItemsPath see it. A miss raises ``States.Runtime`` with AWS's cause:
        ``Invalid path '$.x' : No results for path: $['x']``."""
        if self.root == "input" and scope.input is None and self.segments:
            raise StatesError(RUNTIME, NULL_INPUT_CAUSE)
        try:
            return self._select(self._document(scope))
        except PathNotFound as miss:
            raise StatesError(RUNTIME, f"Invalid path '{self.text}' : {miss.reason}") from None

    def resolve_field(self, scope, field: str) -> Any:
        """The value for a payload-template field (``"x.$"``) or ErrorPath/CausePath. A miss raises
        ``States.Runtime``: ``The JSONPath '$.x' specified for the field 'x.$' could not be found in the input
        '{...}'``; a null input raises AWS's ``Unable to apply Path transformation to null or empty input.``"""
        if self.root == "input" and scope.input is None:
            raise StatesError(RUNTIME, NULL_INPUT_CAUSE)
        try:
            return self._select(self._document(scope))
        except PathNotFound:
            raise StatesError(
                RUNTIME,
                f"The JSONPath '{self.text}' specified for the field '{field}' could not be found in the input "
                f"'{to_json_text(scope.input)}'",
            ) from None


_REFERENCE_FORBIDDEN = {
    "wildcard": "reference paths cannot contain wildcards ('*')",
    "slice": "reference paths cannot contain slices (':')",
    "filter": "reference paths cannot contain filter expressions ('?', '@')",
    "recursive": "reference paths cannot contain recursive descent ('..')",
    "union": "reference paths cannot contain unions (',')",
}


class ReferencePath(Path):
    """A Reference Path (ResultPath, ItemsPath, Choice Variable, *Path fields): names and single indexes only,
    identifying one node."""

    __slots__ = ()

    @property
    def assignable(self) -> bool:
        """Whether this path may be a ResultPath target (rooted at ``$``, not at ``$$`` or a variable)."""
        return self.root == "input"

    def assign(self, document: Any, value: Any) -> Any:
        """ResultPath: a new document where the node at this path is ``value``. ``$`` replaces the document;
        missing objects on the way are created; an existing member is overwritten. Only the objects on the path
        are copied, ``document`` is never mutated. A non-object on the way raises ``RESULT_PATH_ERROR``."""
        if not self.assignable:
            raise CompileError(f"Invalid ResultPath '{self.text}': a ResultPath must start with '$.' or be '$'")
        if not self.segments:
            return value
        first = self.segments[0]
        if (type(first) is _Name and not isinstance(document, dict)) or (
                type(first) is _Index and not isinstance(document, list)):
            raise StatesError(RESULT_PATH_ERROR,
                              f"Unable to apply ReferencePath {self.text} to input {to_json_text(document)}")
        return self._put(document, 0, value, document)

    def _put(self, node: Any, i: int, value: Any, document: Any) -> Any:
        step = self.segments[i]
        last = i == len(self.segments) - 1
        if type(step) is _Name:
            if not isinstance(node, dict):
                raise self._conflict(f'"{step.name}"', document)
            copy = dict(node)
            if last:
                copy[step.name] = value
            else:
                child = node.get(step.name, MISSING)
                copy[step.name] = self._put({} if child is MISSING else child, i + 1, value, document)
            return copy
        if not isinstance(node, list):
            raise self._conflict(f'"[{step.index}]"', document)
        n = len(node)
        j = step.index + n if step.index < 0 else step.index
        if not 0 <= j < n:
            raise self._conflict(f'"[{step.index}]"', document)
        copy = list(node)
        copy[j] = value if last else self._put(node[j], i + 1, value, document)
        return copy

    def _conflict(self, step: str, document: Any) -> StatesError:
        return StatesError(RESULT_PATH_ERROR, f"Unable to apply step {step} to input {to_json_text(document)}")


# ---------------------------------------------------------------------------------------------------------------
# Compilation (cached: compiled paths are immutable)
# ---------------------------------------------------------------------------------------------------------------

_PATHS: dict[str, Path] = {}
_REFERENCE_PATHS: dict[str, ReferencePath] = {}
_CACHE_LIMIT = 4096


def compile_path(text: str) -> Path:
    """Compile a JSONPath Path (``$``, ``$.a.b``, ``$['a b']``, ``$.a[0]``, ``$.a[-1]``, ``$.a[*].b``,
    ``$.a[1:3]``, ``$.a[?(@.x > 1)]``, ``$..x``, ``$$.Execution.Id``, ``$var.x``). CompileError if invalid."""
    if not isinstance(text, str):
        raise CompileError(f"Invalid JSONPath {text!r}: a path must be a string")
    cached = _PATHS.get(text)
    if cached is not None:
        return cached
    path = Path(text, *_Parser(text).parse())
    if len(_PATHS) < _CACHE_LIMIT:
        _PATHS[text] = path
    return path


def compile_reference_path(text: str) -> ReferencePath:
    """Compile a Reference Path: like ``compile_path`` but only names and single indexes are allowed (no ``*``,
    ``..``, slices, filters, unions or functions). CompileError says what is not allowed."""
    if not isinstance(text, str):
        raise CompileError(f"Invalid reference path {text!r}: a path must be a string")
    cached = _REFERENCE_PATHS.get(text)
    if cached is not None:
        return cached
    try:
        root, variable, segs = _Parser(text).parse()
    except CompileError as exc:
        raise CompileError(str(exc).replace("Invalid JSONPath", "Invalid reference path", 1)) from None
    for seg in segs:
        why = _REFERENCE_FORBIDDEN.get(seg.kind)
        if why is None and type(seg) is _Name and seg.name.endswith(")") and "(" in seg.name:
            why = "reference paths cannot call functions such as length()"
        if why:
            raise CompileError(f"Invalid reference path '{text}': {why}")
    path = ReferencePath(text, root, variable, segs)
    if len(_REFERENCE_PATHS) < _CACHE_LIMIT:
        _REFERENCE_PATHS[text] = path
    return path


def is_path(text: Any) -> bool:
    """Whether ``text`` is a string that compiles as a JSONPath Path."""
    if not isinstance(text, str) or not text.startswith("$"):
        return False
    try:
        compile_path(text)
    except CompileError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# Payload templates
# ---------------------------------------------------------------------------------------------------------------

def _pointer_token(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _located(exc: CompileError, pointer: str) -> CompileError:
    located = CompileError(str(exc))
    located.pointer = pointer
    return located


class _Literal:
    __slots__ = ("value", "mutable")

    def __init__(self, value):
        self.value = value
        self.mutable = isinstance(value, (dict, list))  # a copy each time only when it could be changed later

    def evaluate(self, scope):
        return _clone(self.value) if self.mutable else self.value


class _PathField:
    __slots__ = ("path", "field")

    def __init__(self, path: Path, field: str):
        self.path, self.field = path, field

    def evaluate(self, scope):
        return self.path.resolve_field(scope, self.field)


class _Object:
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def evaluate(self, scope):
        return {key: node.evaluate(scope) for key, node in self.items}


class _Array:
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def evaluate(self, scope):
        return [node.evaluate(scope) for node in self.items]


def _is_static(node) -> bool:
    return isinstance(node, _Literal)


def _compile_expression(key: str, text: Any, pointer: str):
    """The evaluator of a ``"key.$"`` value: a path, a context path, a variable or an intrinsic call."""
    if not isinstance(text, str):
        raise _located(CompileError(
            f"The value of the field '{key}' must be a JSONPath or an intrinsic function call string, "
            f"got {to_json_text(text)}"), pointer)
    try:
        if text.startswith("$"):
            return _PathField(compile_path(text), key)
        from . import intrinsics
        if intrinsics.is_intrinsic(text):
            return intrinsics.compile_intrinsic(text)
    except CompileError as exc:
        raise _located(exc, pointer) from None
    raise _located(CompileError(
        f"The value '{text}' of the field '{key}' is neither a JSONPath nor an intrinsic function call"), pointer)


def _compile_node(value: Any, pointer: str):
    if isinstance(value, dict):
        items = []
        seen: dict[str, str] = {}
        for key, item in value.items():
            here = f"{pointer}/{_pointer_token(key)}"
            dynamic = isinstance(key, str) and key.endswith(".$")
            out_key = key[:-2] if dynamic else key
            if out_key in seen:
                blame = here if dynamic else seen[out_key]
                raise _located(CompileError(
                    f"The field '{out_key}' is defined twice in the payload template (as '{key}' and as "
                    f"'{out_key if dynamic else out_key + '.$'}')"), blame)
            seen[out_key] = here
            node = _compile_expression(key, item, here) if dynamic else _compile_node(item, here)
            items.append((out_key, node))
        if all(_is_static(n) for _, n in items):
            return _Literal({k: n.value for k, n in items})
        return _Object(tuple(items))
    if isinstance(value, list):
        items = [_compile_node(item, f"{pointer}/{i}") for i, item in enumerate(value)]
        if all(_is_static(n) for n in items):
            return _Literal([n.value for n in items])
        return _Array(tuple(items))
    return _Literal(value)


class Template:
    """A compiled payload template (Parameters, ResultSelector, ItemSelector, Map's legacy Parameters)."""

    __slots__ = ("_root",)

    def __init__(self, root):
        self._root = root

    @property
    def is_static(self) -> bool:
        """Whether the template has no ``.$`` field (its value never depends on the scope)."""
        return _is_static(self._root)

    def evaluate(self, scope) -> Any:
        """The payload: a new value built from the template; ``.$`` fields evaluated against ``scope``."""
        return self._root.evaluate(scope)


def compile_template(value: Any) -> Template:
    """Compile a payload template. CompileError (with ``.pointer``, a JSON pointer relative to the template, e.g.
    ``/a/b.$``) for a ``.$`` value that is not a string, path or intrinsic call, or for keys that collide once
    ``.$`` is stripped."""
    return Template(_compile_node(value, ""))
