"""ASL intrinsic functions (JSONPath mode): ``States.Format('{}', $.x)`` and its 17 siblings.

``compile_intrinsic`` tokenizes and parses a call once, at definition load, into a tree of small closures;
``Intrinsic.evaluate`` only runs those closures. Semantics follow what real AWS does where it differs from the
spec (recorded in the conformance corpus): ``States.Format`` renders objects Java-style (``{a=1, b=[]}``),
``StringSplit`` splits on every delimiter character and drops empty parts, ``MathAdd`` rounds each operand
half-up like Java's ``Math.round``, ``StringToJson('')`` is ``null``, ``JsonMerge`` is shallow only.

Every runtime failure is a ``StatesError('States.Runtime', "The function '<call>' had the following error: ...")``
naming the whole expression as written, which is how AWS words an unresolvable argument path; the interpreter
adds the "An error occurred while executing the state ..." prefix.
"""
from __future__ import annotations

import functools

import json
import math
import re
from typing import Any, Callable, Mapping

from . import paths
from .errors import RUNTIME, CompileError, StatesError
from .jsonvalue import load_strict, type_name

__all__ = ["FUNCTIONS", "MAX_NESTING", "Intrinsic", "compile_intrinsic", "is_intrinsic", "java_double"]

# name -> (minimum arguments, maximum arguments or None when variadic)
FUNCTIONS: Mapping[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}

MAX_NESTING = 10          # "You can nest up to 10 intrinsic functions within a field" (DG)
MAX_RANGE_ITEMS = 1000    # States.ArrayRange result size
MAX_TEXT_CHARS = 10_000   # Base64Encode / Base64Decode / Hash input
ERROR_NAME = RUNTIME      # AWS fails the state with States.Runtime (not the spec's States.IntrinsicFailure)

_RESERVED_ESCAPES = "'{}\\"
_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def is_intrinsic(text: Any) -> bool:
    """True when a ``.$`` value is an intrinsic call rather than a path: it starts with ``States.``."""
    return isinstance(text, str) and text.lstrip().startswith("States.")


class Intrinsic:
    """A compiled intrinsic call. Immutable; ``evaluate`` never re-parses ``text``."""

    __slots__ = ("text", "name", "references", "_run")

    def __init__(self, text: str, name: str, references: tuple[str, ...], run: Callable[[Any], Any]):
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "name", name)              # outermost function, e.g. "States.Format"
        object.__setattr__(self, "references", references)  # every path argument, as written, in order
        object.__setattr__(self, "_run", run)

    def __setattr__(self, key, value):
        raise AttributeError("Intrinsic is immutable")

    def __repr__(self) -> str:
        return f"Intrinsic({self.text!r})"

    def evaluate(self, scope) -> Any:
        """The call's value in ``scope``; raises ``StatesError`` with AWS's error name and cause body."""
        try:
            return self._run(scope)
        except _Failure as failure:
            raise StatesError(ERROR_NAME, f"The function '{self.text}' had the following error: {failure}") from None


class _Failure(Exception):
    """An argument or data problem found while evaluating; ``Intrinsic.evaluate`` words the cause."""


# --------------------------------------------------------------------------------------------------- tokenizer

_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class _Token:
    """One lexeme: ``kind`` is one of ( ) , STRING NUMBER PATH WORD END; ``pos`` is its offset in the text."""

    __slots__ = ("kind", "value", "pos", "segments")

    def __init__(self, kind: str, value: Any, pos: int, segments: tuple[str, ...] | None = None):
        self.kind, self.value, self.pos, self.segments = kind, value, pos, segments


def _tokenize(text: str) -> list[_Token]:
    """Split an intrinsic call into tokens; paths are scanned whole (brackets, quotes and filters included)."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            tokens.append(_Token(c, c, i))
            i += 1
        elif c == "'":
            i = _scan_string(text, i, tokens)
        elif c == "$":
            i = _scan_path(text, i, tokens)
        elif c == "-" or "0" <= c <= "9":  # ASCII only: str.isdigit() is also true for "٣" and "²"
            m = _NUMBER.match(text, i)
            if not m:
                raise _syntax(text, i, f"'{c}' does not start a number")
            lexeme = m.group()
            is_float = any(ch in lexeme for ch in ".eE")
            if is_float and math.isinf(float(lexeme)):
                raise _syntax(text, i, f"the number {lexeme} is out of the range of a double")
            tokens.append(_Token("NUMBER", float(lexeme) if is_float else int(lexeme), i))
            i = m.end()
        elif c.isascii() and (c.isalpha() or c == "_"):  # names are ASCII; "À" is an unexpected character
            m = _WORD.match(text, i)
            tokens.append(_Token("WORD", m.group(), i))
            i = m.end()
        else:
            raise _syntax(text, i, f"unexpected character {c!r}")
    tokens.append(_Token("END", None, n))
    return tokens


def _scan_string(text: str, start: int, tokens: list[_Token]) -> int:
    """A 'quoted' literal. Escapes: \\' \\{ \\} \\\\. Also records the Format template split at unescaped ``{}``."""
    chars: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                raise _syntax(text, i, "dangling backslash at the end of the text")
            nxt = text[i + 1]
            if nxt not in _RESERVED_ESCAPES:
                raise _syntax(text, i, f"invalid escape '\\{nxt}' (only \\', \\{{, \\}} and \\\\ may be escaped)")
            chars.append(nxt)
            i += 2
        elif c == "'":
            tokens.append(_Token("STRING", "".join(chars), start, _template_segments(text, start + 1, i)))
            return i + 1
        else:
            chars.append(c)
            i += 1
    raise _syntax(text, start, "unterminated string literal (missing closing ')")


def _template_segments(text: str, begin: int, end: int) -> tuple[str, ...]:
    """The literal text between unescaped ``{}`` placeholders of text[begin:end] (already known to be valid)."""
    segments: list[str] = []
    current: list[str] = []
    i = begin
    while i < end:
        c = text[i]
        if c == "\\":
            current.append(text[i + 1])
            i += 2
        elif c == "{" and i + 1 < end and text[i + 1] == "}":
            segments.append("".join(current))
            current = []
            i += 2
        else:
            current.append(c)
            i += 1
    segments.append("".join(current))
    return tuple(segments)


def _scan_path(text: str, start: int, tokens: list[_Token]) -> int:
    """A path argument runs to the next ``,`` or ``)`` outside brackets, parentheses and quotes."""
    depth_bracket = depth_paren = 0
    quote = ""
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"" and depth_bracket:
            quote = c
        elif c == "[":
            depth_bracket += 1
        elif c == "]":
            depth_bracket -= 1
        elif c == "(":
            depth_paren += 1
        elif c == ")":
            if depth_paren == 0 and depth_bracket == 0:
                break
            depth_paren -= 1
        elif c == "," and depth_paren == 0 and depth_bracket == 0:
            break
        i += 1
    if quote or depth_bracket > 0:
        raise _syntax(text, start, "unterminated path argument (unbalanced brackets or quotes)")
    tokens.append(_Token("PATH", text[start:i].rstrip(), start))
    return i


def _syntax(text: str, pos: int, problem: str) -> CompileError:
    return CompileError(f"Invalid intrinsic function call {text!r}: {problem} (at position {pos})")


# ------------------------------------------------------------------------------------------------------ parser

class _Parser:
    """Recursive descent over the token list, building evaluation closures."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.at = 0
        self.references: list[str] = []

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, token: _Token, problem: str) -> CompileError:
        return _syntax(self.text, token.pos, problem)

    def parse(self) -> tuple[str, Callable[[Any], Any]]:
        first = self.peek()
        if first.kind != "WORD":
            raise self.fail(first, "an intrinsic call must start with a function name such as States.Format")
        name, run = self.call(depth=1)
        rest = self.peek()
        if rest.kind != "END":
            raise self.fail(rest, f"unexpected {_describe(rest)} after the closing parenthesis")
        return name, run

    def call(self, depth: int) -> tuple[str, Callable[[Any], Any]]:
        token = self.take()
        name = token.value
        if name not in FUNCTIONS:
            raise CompileError(f"{name} is not an intrinsic function{_suggest(name)} in {self.text!r}")
        if depth > MAX_NESTING:
            raise CompileError(
                f"Intrinsic functions are nested more than {MAX_NESTING} levels deep in {self.text!r}")
        opening = self.take()
        if opening.kind != "(":
            raise self.fail(opening, f"expected '(' after {name}, found {_describe(opening)}")
        args: list[tuple[Callable[[Any], Any], _Token | None]] = []
        if self.peek().kind == ")":
            self.take()
        else:
            while True:
                args.append(self.argument(name, depth))
                sep = self.take()
                if sep.kind == ")":
                    break
                if sep.kind != ",":
                    raise self.fail(sep, f"expected ',' or ')' in the arguments of {name}, "
                                         f"found {_describe(sep)}")
        _check_arity(name, len(args), self.text)
        return name, _BUILDERS[name]([a for a, _ in args], [t for _, t in args])

    def argument(self, fname: str, depth: int) -> tuple[Callable[[Any], Any], _Token | None]:
        token = self.peek()
        kind = token.kind
        if kind in ("STRING", "NUMBER"):
            self.take()
            value = token.value
            return (lambda scope: value), token
        if kind == "PATH":
            self.take()
            return self.path(token, fname), None
        if kind == "WORD":
            if token.value in _LITERAL_WORDS:
                self.take()
                value = _LITERAL_WORDS[token.value]
                return (lambda scope: value), None
            if token.value in FUNCTIONS or token.value.startswith("States."):
                _, run = self.call(depth + 1)
                return run, None
            raise CompileError(f"{token.value} is not a valid argument of {fname}{_suggest(token.value)} "
                               f"in {self.text!r} (at position {token.pos}); arguments are 'strings', numbers, "
                               f"true, false, null, paths and States.* calls")
        raise self.fail(token, f"expected an argument of {fname}, found {_describe(token)}")

    def path(self, token: _Token, fname: str) -> Callable[[Any], Any]:
        from . import paths  # lazy: paths may import this module

        text = token.value
        try:
            compiled = paths.compile_path(text)
        except CompileError as exc:
            raise CompileError(f"Invalid path argument '{text}' of {fname} in {self.text!r}: {exc}") from None
        self.references.append(text)
        missing, to_json_text = paths.MISSING, paths.to_json_text
        shown = "$" + text[2:] if text.startswith("$$") else text   # AWS names $$.X as $.X in this cause

        def resolve(scope):
            try:
                value = compiled.get(scope)
            except StatesError as exc:
                raise _Failure(exc.cause or exc.error) from None
            if value is missing:
                raise _Failure(f"The JsonPath argument for the field '{shown}' could not be found in the input "
                               f"'{to_json_text(scope.input)}'")
            return value

        return resolve


_LITERAL_WORDS = {"null": None, "true": True, "false": False}


def _describe(token: _Token) -> str:
    if token.kind == "END":
        return "the end of the text"
    if token.kind == "STRING":
        return "a string literal"
    return f"'{token.value}'"


def _suggest(name: str) -> str:
    """' (did you mean States.X?)' for the known function closest to ``name``, else ''."""
    bare = name[len("States."):] if name.startswith("States.") else name
    by_bare = {n[len("States."):].lower(): n for n in FUNCTIONS}
    import difflib
    close = difflib.get_close_matches(bare.lower(), list(by_bare), n=1, cutoff=0.7)
    return f" (did you mean {by_bare[close[0]]}?)" if close else ""


def _check_arity(name: str, count: int, text: str) -> None:
    low, high = FUNCTIONS[name]
    if count >= low and (high is None or count <= high):
        return
    if high is None:
        expected = f"at least {low} argument{'s' if low != 1 else ''}"
    elif low == high:
        expected = f"{low} argument{'s' if low != 1 else ''}" if low else "no arguments"
    else:
        expected = f"{low} or {high} arguments" if high == low + 1 else f"{low} to {high} arguments"
    raise CompileError(f"{name} expects {expected} but got {count} in {text!r}")


def compile_intrinsic(text: str) -> Intrinsic:
    """Parse an intrinsic call once. Raises ``CompileError`` with a message a user can act on."""
    if not isinstance(text, str):
        raise CompileError(f"An intrinsic function call must be a string, not {type(text).__name__}")
    return _compile_cached(text)


@functools.lru_cache(maxsize=8192)
def _compile_cached(text: str) -> Intrinsic:
    """Compiled calls are immutable, so a definition repeating a call (or a reload) shares one."""
    parser = _Parser(text)
    name, run = parser.parse()
    return Intrinsic(text, name, tuple(parser.references), run)


# ------------------------------------------------------------------------------------------- JSON helpers


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def java_double(x: float) -> str:
    """Java's ``Double.toString`` (what AWS's Java runtime prints), shared with the JSON text of error causes."""
    return paths.java_double(x)


def _java_string(value: Any) -> str:
    """``String.valueOf`` of the Java object a JSON value maps to: how States.Format inserts an argument."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_java_string(v) for v in value) + "]"
    return str(value)


def _identity(value: Any) -> Any:
    """A hashable key under which two JSON values are equal iff they are deep-equal (1 == 1.0, true != 1)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, dict):
        return ("o", frozenset((k, _identity(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("a", tuple(_identity(v) for v in value))
    return ("?", repr(value))


def _java_round(value: float | int) -> int:
    """Java ``Math.round``: half rounds towards positive infinity (AWS: MathAdd(-0.5, 0) == 0, (0.5, 0) == 1)."""
    if isinstance(value, int):
        return value
    whole = math.floor(value)
    rounded = whole + 1 if value - whole >= 0.5 else whole      # exact, unlike floor(value + 0.5)
    return max(-(1 << 63), min(rounded, (1 << 63) - 1))       # Java clamps to the long range


def _utf16_length(text: str) -> int:
    """Java ``String.length()``: characters outside the BMP count twice."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------- argument checks

_ORDINAL = ("first", "second", "third")


def _bad(fname: str, index: int, expected: str, value: Any) -> _Failure:
    return _Failure(f"Invalid arguments in {fname}: the {_ORDINAL[index]} argument must be {expected}, "
                    f"but was {type_name(value)}")


def _array(fname: str, index: int, value: Any) -> list:
    if not isinstance(value, list):
        raise _bad(fname, index, "an array", value)
    return value


def _string(fname: str, index: int, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(fname, index, "a string", value)
    return value


def _integer(fname: str, index: int, value: Any) -> int:
    """An integer argument; AWS rounds a non-integer number to the nearest integer (Java rounding)."""
    if not _is_number(value):
        raise _bad(fname, index, "a number", value)
    return _java_round(value)


def _limited(fname: str, text: str) -> str:
    if len(text) > MAX_TEXT_CHARS // 2 and _utf16_length(text) > MAX_TEXT_CHARS:
        raise _Failure(f"Invalid arguments in {fname}: the input string must be at most {MAX_TEXT_CHARS} "
                       f"characters long, but was {_utf16_length(text)}")
    return text


# ------------------------------------------------------------------------------------------ the functions
# Each builder takes the compiled argument closures (and their literal tokens, for States.Format) and returns the
# call's closure. Arity is already checked. Arguments are evaluated left to right, like AWS.

Run = Callable[[Any], Any]


def _build_format(args: list[Run], tokens: list[_Token | None]) -> Run:
    template_run, rest = args[0], args[1:]
    first = tokens[0]
    literal_segments = first.segments if first is not None and first.kind == "STRING" else None

    def run(scope):
        if literal_segments is not None:
            segments = literal_segments
        else:
            template = template_run(scope)
            if not isinstance(template, str):
                raise _bad("States.Format", 0, "a string", template)
            segments = template.split("{}")
        values = [a(scope) for a in rest]
        if len(segments) - 1 != len(values):
            raise _Failure(f"Invalid arguments in States.Format: the format string has {len(segments) - 1} "
                           f"'{{}}' placeholder(s) but {len(values)} value argument(s) were given")
        out = [segments[0]]
        for value, segment in zip(values, segments[1:]):
            out.append(_java_string(value))
            out.append(segment)
        return "".join(out)

    return run


def _build_string_to_json(args: list[Run], _t) -> Run:
    (arg,) = args

    def run(scope):
        text = _string("States.StringToJson", 0, arg(scope))
        if not text.strip():
            return None       # AWS: StringToJson('') and StringToJson(' ') are null
        try:
            return load_strict(text)
        except ValueError as exc:
            raise _Failure(f"Invalid arguments in States.StringToJson: the string is not valid JSON "
                           f"({exc})") from None

    return run


def _build_json_to_string(args: list[Run], _t) -> Run:
    from .paths import to_json_text  # compact JSON exactly as AWS (Jackson) writes it; lazy to avoid a cycle

    (arg,) = args
    return lambda scope: to_json_text(arg(scope))


def _build_array(args: list[Run], _t) -> Run:
    return lambda scope: [a(scope) for a in args]


def _build_array_partition(args: list[Run], _t) -> Run:
    array_run, size_run = args

    def run(scope):
        array = _array("States.ArrayPartition", 0, array_run(scope))
        size = _integer("States.ArrayPartition", 1, size_run(scope))
        if size <= 0:
            raise _Failure(f"Invalid arguments in States.ArrayPartition: the chunk size must be a positive "
                           f"integer, but was {size}")
        return [array[i:i + size] for i in range(0, len(array), size)]

    return run


def _build_array_contains(args: list[Run], _t) -> Run:
    array_run, value_run = args

    def run(scope):
        array = _array("States.ArrayContains", 0, array_run(scope))
        wanted = _identity(value_run(scope))
        return any(_identity(item) == wanted for item in array)

    return run


def _build_array_range(args: list[Run], _t) -> Run:
    start_run, end_run, step_run = args

    def run(scope):
        start = _integer("States.ArrayRange", 0, start_run(scope))
        end = _integer("States.ArrayRange", 1, end_run(scope))
        step = _integer("States.ArrayRange", 2, step_run(scope))
        if step == 0:
            raise _Failure("Invalid arguments in States.ArrayRange: the step must not be 0")
        count = (end - start) // step + 1 if (end - start) * step >= 0 else 0
        if count > MAX_RANGE_ITEMS:
            raise _Failure(f"Invalid arguments in States.ArrayRange: the range would hold {count} items, "
                           f"more than the maximum of {MAX_RANGE_ITEMS}")
        return list(range(start, start + count * step, step)) if count else []

    return run


def _build_array_get_item(args: list[Run], _t) -> Run:
    array_run, index_run = args

    def run(scope):
        array = _array("States.ArrayGetItem", 0, array_run(scope))
        index = _integer("States.ArrayGetItem", 1, index_run(scope))
        if not 0 <= index < len(array):
            raise _Failure(f"Index {index} out of bounds for length {len(array)}")
        return array[index]

    return run


def _build_array_length(args: list[Run], _t) -> Run:
    (arg,) = args
    return lambda scope: len(_array("States.ArrayLength", 0, arg(scope)))


def _build_array_unique(args: list[Run], _t) -> Run:
    (arg,) = args

    def run(scope):
        seen = set()
        unique = []
        for item in _array("States.ArrayUnique", 0, arg(scope)):
            key = _identity(item)
            if key not in seen:
                seen.add(key)
                unique.append(item)
        return unique

    return run


def _build_base64_encode(args: list[Run], _t) -> Run:
    (arg,) = args

    def run(scope):
        text = _limited("States.Base64Encode", _string("States.Base64Encode", 0, arg(scope)))
        import base64
        return base64.b64encode(text.encode("utf-8", "replace")).decode("ascii")

    return run


def _build_base64_decode(args: list[Run], _t) -> Run:
    (arg,) = args

    def run(scope):
        text = _limited("States.Base64Decode", _string("States.Base64Decode", 0, arg(scope)))
        padded = text + "=" * (-len(text) % 4) if len(text) % 4 in (2, 3) else text   # Java accepts no padding
        import base64
        try:
            raw = base64.b64decode(padded, validate=True)
        except ValueError:  # binascii.Error is one
            raise _Failure("Invalid arguments in States.Base64Decode: the string is not valid Base64") from None
        return raw.decode("utf-8", "replace")

    return run


def _build_hash(args: list[Run], _t) -> Run:
    data_run, algorithm_run = args

    def run(scope):
        data = _limited("States.Hash", _string("States.Hash", 0, data_run(scope)))
        algorithm = algorithm_run(scope)
        if not isinstance(algorithm, str) or algorithm not in _HASHES:  # an array or object is no dict key
            raise _Failure(f"Invalid arguments in States.Hash: the hashing algorithm must be one of "
                           f"{', '.join(_HASHES)}, but was {json.dumps(algorithm, ensure_ascii=False)}")
        import hashlib
        return hashlib.new(_HASHES[algorithm], data.encode("utf-8", "replace")).hexdigest()

    return run


def _build_json_merge(args: list[Run], _t) -> Run:
    first_run, second_run, deep_run = args

    def run(scope):
        first, second, deep = first_run(scope), second_run(scope), deep_run(scope)
        if not isinstance(first, dict):
            raise _bad("States.JsonMerge", 0, "a JSON object", first)
        if not isinstance(second, dict):
            raise _bad("States.JsonMerge", 1, "a JSON object", second)
        if not isinstance(deep, bool):
            raise _bad("States.JsonMerge", 2, "a boolean", deep)
        if deep:
            raise _Failure("Invalid arguments in States.JsonMerge: Step Functions only supports the shallow "
                           "merging mode; the third argument must be false")
        return {**first, **second}

    return run


def _build_math_random(args: list[Run], _t) -> Run:
    start_run, end_run = args[0], args[1]
    seed_run = args[2] if len(args) == 3 else None

    def run(scope):
        start = _integer("States.MathRandom", 0, start_run(scope))
        end = _integer("States.MathRandom", 1, end_run(scope))
        seed = _integer("States.MathRandom", 2, seed_run(scope)) if seed_run is not None else None
        if end <= start:
            raise _Failure(f"Invalid arguments in States.MathRandom: the start ({start}) must be less than "
                           f"the end ({end})")
        if seed is None:
            import random
            return random.randrange(start, end)
        return start + _java_random_int(seed, end - start)

    return run


def _java_random_int(seed: int, bound: int) -> int:
    """``new java.util.Random(seed).nextInt(bound)``: the same seed always gives the same number."""
    if bound > 0x7FFFFFFF:
        import random
        return random.Random(seed).randrange(bound)
    multiplier, mask = 0x5DEECE66D, (1 << 48) - 1
    state = (seed ^ multiplier) & mask

    def next31():
        nonlocal state
        state = (state * multiplier + 0xB) & mask
        return state >> 17

    r = next31()
    m = bound - 1
    if bound & m == 0:
        return (bound * r) >> 31
    u = r
    while True:
        r = u % bound
        if u - r + m < 0x80000000:      # Java's int overflow test: u - r + m < 0 when it wraps
            return r
        u = next31()


def _build_math_add(args: list[Run], _t) -> Run:
    a_run, b_run = args

    def run(scope):
        return _integer("States.MathAdd", 0, a_run(scope)) + _integer("States.MathAdd", 1, b_run(scope))

    return run


def _build_string_split(args: list[Run], _t) -> Run:
    text_run, delimiters_run = args

    def run(scope):
        text = _string("States.StringSplit", 0, text_run(scope))
        delimiters = _string("States.StringSplit", 1, delimiters_run(scope))
        if not delimiters:
            return [text] if text else []
        first = delimiters[0]
        if len(delimiters) > 1:
            text = text.translate({ord(c): first for c in delimiters[1:]})
        return [part for part in text.split(first) if part]

    return run


def _build_uuid(args: list[Run], _t) -> Run:
    import uuid
    return lambda scope: str(uuid.uuid4())


_BUILDERS: dict[str, Callable[[list[Run], list[_Token | None]], Run]] = {
    "States.Format": _build_format,
    "States.StringToJson": _build_string_to_json,
    "States.JsonToString": _build_json_to_string,
    "States.Array": _build_array,
    "States.ArrayPartition": _build_array_partition,
    "States.ArrayContains": _build_array_contains,
    "States.ArrayRange": _build_array_range,
    "States.ArrayGetItem": _build_array_get_item,
    "States.ArrayLength": _build_array_length,
    "States.ArrayUnique": _build_array_unique,
    "States.Base64Encode": _build_base64_encode,
    "States.Base64Decode": _build_base64_decode,
    "States.Hash": _build_hash,
    "States.JsonMerge": _build_json_merge,
    "States.MathRandom": _build_math_random,
    "States.MathAdd": _build_math_add,
    "States.StringSplit": _build_string_split,
    "States.UUID": _build_uuid,
}
assert set(_BUILDERS) == set(FUNCTIONS)
