"""QueryLanguage JSONata: ``{% ... %}`` expressions and the JSON templates holding them, compiled once per definition.

Evaluation uses jsonata-python, with what Step Functions changes on top of JSONata 2.0: its extra functions
(``$partition``, ``$range``, ``$hash``, ``$random`` with an optional seed, ``$uuid``, ``$parse``), no ``$eval``,
``$count(null)`` = 1 as in the JavaScript reference, and AWS's ``States.QueryEvaluationError`` causes for a failing,
undefined or wrong-typed result. An expression sees ``$states`` (``input``, ``context``, and ``result`` or
``errorOutput`` where AWS allows them) and the workflow variables as ``$name``.

jsonata-python represents JSON null as ``Utils.NULL_VALUE`` (``None`` means "undefined"); values are converted on the
way in and out. Simple paths (``$states.input.a.b``, ``$var.x``) over objects take a direct lookup that gives the
same value as the engine, which is several times faster.
"""
from __future__ import annotations

import json
import math
import re
import threading
from typing import Any, Callable

from . import errors as E
from .errors import CompileError, StatesError
from .jsonvalue import type_name
from .paths import MISSING, _Array, _Literal, _Object, to_json_text  # template nodes shared with JSONPath

__all__ = ["Expression", "JsonataTemplate", "QueryEvaluationError", "compile_expression", "compile_template",
           "is_expression", "expression_text", "type_name"]

# jsonata-python, imported by _load() when the first expression is compiled: a definition without JSONata never
# pays for it (it is a good part of `statemill validate`'s start-up). Everything below that uses these names runs
# on behalf of a compiled Expression.
_jsonata: Any = None
JException: Any = None
Utils: Any = None
_NULL: Any = None


def _load() -> None:
    global _jsonata, JException, Utils, _NULL
    if _jsonata is None:
        import jsonata
        from jsonata.jexception import JException as exception
        from jsonata.utils import Utils as utils
        JException, Utils, _NULL = exception, utils, utils.NULL_VALUE
        _jsonata = jsonata
_SIMPLE = re.compile(r"\$(?:states\.(?:input|result|errorOutput|context)|[A-Za-z_][A-Za-z0-9_]*)"
                     r"(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_BUILTIN_HINT = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*\(")


class QueryEvaluationError(StatesError):
    """``States.QueryEvaluationError``; ``location`` names the field (``Output/result``) for the history event."""

    def __init__(self, cause: str, location: str | None = None):
        super().__init__(E.QUERY_EVALUATION_ERROR, cause)
        self.location = location


def is_expression(value: Any) -> bool:
    """Whether a definition value is a JSONata expression string: ``{%`` first and ``%}`` last."""
    return isinstance(value, str) and len(value) >= 4 and value.startswith("{%") and value.endswith("%}")


def expression_text(value: str) -> str:
    """The expression inside ``{% ... %}``, as AWS quotes it in causes (blanks around it removed)."""
    return value[2:-2].strip()


# ----------------------------------------------------------------------------------------------- conversions
def _to_engine(value: Any) -> Any:
    """JSON null becomes NULL_VALUE, recursively; the same object comes back when it holds no null."""
    if value is None:
        return _NULL
    if isinstance(value, (dict, list)):
        out = None
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            new = _to_engine(item)
            if new is not item:
                if out is None:
                    out = value.copy()
                out[key] = new
        return value if out is None else out
    return value


class _Unsupported(Exception):
    pass


def _from_engine(value: Any) -> Any:
    """An engine value as JSON: NULL_VALUE to None, sequences to lists, integral doubles to ints (JSON text from
    JavaScript prints 7, not 7.0); undefined object members dropped; functions are not JSON."""
    if value is _NULL or value is None:
        return None
    if value is True or value is False or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**63:
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): _from_engine(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_from_engine(v) for v in value if v is not None]
    raise _Unsupported


# ----------------------------------------------------------------------------------------------- Step Functions functions
def _count(*args):
    if not args or args[0] is None:
        return 0
    return len(args[0]) if isinstance(args[0], list) else 1


def _partition(array, size):
    if not isinstance(array, list) or isinstance(size, bool) or not isinstance(size, (int, float)) or size <= 0 \
            or size != int(size):
        raise JException("D3050", 0)  # "The second argument of ... must be a positive integer" (as the engine's own)
    size = int(size)
    return [list(array[i:i + size]) for i in range(0, len(array), size)]


def _range(start, end, step=1):
    numbers = (start, end, step)
    if any(isinstance(n, bool) or not isinstance(n, (int, float)) or n != int(n) for n in numbers) or step == 0:
        raise JException("D3050", 0)
    start, end, step = int(start), int(end), int(step)
    values = list(range(start, end + (1 if step > 0 else -1), step))
    return Utils.create_sequence(values) if len(values) != 1 else Utils.create_sequence(values[0])


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(text, algorithm="SHA-256"):
    if not isinstance(text, str) or algorithm not in _HASHES:
        raise JException("D3050", 0)
    import hashlib  # here: OpenSSL's start-up is paid by the definitions that hash only
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8")).hexdigest()


def _random(seed=None):
    import random
    if seed is None:
        return random.random()
    return random.Random(json.dumps(_from_engine(seed), sort_keys=True)).random()


def _uuid():
    import uuid
    return str(uuid.uuid4())


def _parse(text):
    if not isinstance(text, str):
        raise JException("D3050", 0)
    try:
        return _to_engine(json.loads(text))
    except ValueError:
        raise JException("D3050", 0) from None


_FUNCTIONS: dict[str, Callable] = {"count": _count, "partition": _partition, "range": _range, "hash": _hash,
                                   "random": _random, "uuid": _uuid, "parse": _parse}


# ----------------------------------------------------------------------------------------------- expressions
class Expression:
    """One compiled ``{% %}`` expression of a field (``location`` as AWS names it: ``Arguments/FunctionName``)."""

    __slots__ = ("text", "location", "_engine", "_lock", "_path", "_simple", "variables", "needs_context", "ast")

    def __init__(self, text: str, location: str):
        self.text = text
        self.location = location
        _load()
        try:
            engine = _jsonata.Jsonata(text)
        except Exception as exc:  # noqa: BLE001 - the parser raises its own exception types
            raise CompileError(f"the JSONata expression {text!r} does not parse: {exc}") from None
        engine.set_output_convert_nulls(False)
        engine.set_validate_input(False)
        for name, fn in _FUNCTIONS.items():
            engine.register_lambda(name, fn)
        engine.register_function("eval", None)  # Step Functions removes $eval
        self._engine = engine
        self.ast = engine.ast
        self._lock = threading.Lock()
        self._path = tuple(text[1:].split(".")) if _SIMPLE.fullmatch(text) and text != "$states" else None
        self._simple = _simple(engine.ast) if self._path is None else None
        self.variables = frozenset(_VARIABLE.findall(text)) - {"states"}
        self.needs_context = "context" in text or re.search(r"\$states(?!\.(input|result|errorOutput)\b)",
                                                            text) is not None

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def fail(self, why: str) -> QueryEvaluationError:
        return QueryEvaluationError(f"The JSONata expression '{self.text}' specified for the field "
                                    f"'{self.location}' {why}", self.location)

    def unexpected(self, expected: str, value: Any) -> QueryEvaluationError:
        return self.fail(f"returned an unexpected result type. Expected '{expected}', but was "
                         f"'{type_name(value)}' for value: {to_json_text(value)}")

    def evaluate(self, scope) -> Any:
        """The JSON value of the expression in ``scope``; QueryEvaluationError when it fails or gives nothing."""
        if self._path is not None:
            value = self._lookup(scope, self._path)
        elif self._simple is not None:
            value = self._simple(scope)
        else:
            value = MISSING
        if value is MISSING:
            value = self._run(scope)
        if value is MISSING:
            raise self.fail("returned nothing (undefined).")
        return value

    @staticmethod
    def _lookup(scope, path) -> Any:
        """A simple path over objects, or MISSING to let the engine decide (arrays map and flatten in JSONata)."""
        head, *rest = path
        if head == "states":
            head, *rest = rest
            node = {"input": scope.input, "result": scope.result, "errorOutput": scope.error_output,
                    "context": MISSING}[head]
            if head == "context":
                node = scope.context
        else:
            node = scope.variables.get(head, MISSING)
        for key in rest:
            if not isinstance(node, dict):
                return MISSING
            node = node.get(key, MISSING)
            if node is MISSING:
                return MISSING
        return MISSING if isinstance(node, list) else node

    def _run(self, scope) -> Any:
        bindings = {name: _to_engine(scope.variables[name]) for name in self.variables if name in scope.variables}
        states = {"input": _to_engine(scope.input)}
        if scope.result is not MISSING:
            states["result"] = _to_engine(scope.result)
        if scope.error_output is not MISSING:
            states["errorOutput"] = _to_engine(scope.error_output)
        if self.needs_context:
            states["context"] = _to_engine(scope.context)
        bindings["states"] = states
        try:
            with self._lock:  # the engine keeps per-call state (timestamp) on the instance
                value = self._engine.evaluate(None, bindings)
        except JException as exc:
            raise self.fail(f"threw an error during evaluation. {exc.error}: {_message(exc)}") from None
        except RecursionError:
            raise self.fail("threw an error during evaluation. U1001: Stack overflow error") from None
        except Exception as exc:  # noqa: BLE001 - a defect of the library must still be a catchable States error
            raise self.fail(f"threw an error during evaluation. {type(exc).__name__}: {exc}") from None
        if value is None:
            return MISSING
        try:
            return _from_engine(value)
        except _Unsupported:
            raise self.fail("returned an unsupported result type.") from None


# ----------------------------------------------------------------------------------------------- fast path
# Comparisons, and/or, & and + - * over simple paths and literals are computed directly when every operand is a
# plain scalar of the types the operator takes; anything else (undefined, null, arrays, mixed types) returns
# MISSING and the engine evaluates the expression, so results and errors stay the engine's.
_COMPARE = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_ARITHMETIC = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_PLAIN_STEP = ("stages", "predicate", "group", "focus", "index", "tuple", "keep_array")


def _kind(value: Any) -> str | None:
    if value is True or value is False:
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if abs(value) < 2**53 else None
    return "string" if isinstance(value, str) else None


def _simple(node) -> Callable | None:
    """A direct evaluator for ``node``, or None when it is outside the subset described above."""
    kind = node.type
    if kind in ("number", "string") or (kind == "value" and isinstance(node.value, bool)):
        value = node.value
        return lambda scope: value
    if kind == "path":
        steps = node.steps or []
        if not steps or steps[0].type != "variable" or any(s.type != "name" for s in steps[1:]) \
                or any(getattr(s, a, None) for s in steps for a in _PLAIN_STEP):
            return None
        path = (steps[0].value, *(s.value for s in steps[1:]))
        if path[0] in ("", "$") or (path[0] == "states" and (len(path) < 2 or path[1] not in
                                                             ("input", "result", "errorOutput", "context"))):
            return None
        return lambda scope: Expression._lookup(scope, path)
    if kind != "binary" or node.lhs is None or node.rhs is None:
        return None
    left, right, op = _simple(node.lhs), _simple(node.rhs), node.value
    if left is None or right is None:
        return None
    if op in _COMPARE:
        compare, ordered = _COMPARE[op], op not in ("=", "!=")

        def comparison(scope):
            a, b = left(scope), right(scope)
            ka, kb = _kind(a), _kind(b)
            if ka is None or kb is None or (ordered and (ka != kb or ka == "boolean")):
                return MISSING
            return compare(a, b) if ka == kb else op == "!="
        return comparison
    if op in ("and", "or"):
        def logical(scope):
            a, b = left(scope), right(scope)
            if not isinstance(a, bool) or not isinstance(b, bool):
                return MISSING
            return (a and b) if op == "and" else (a or b)
        return logical
    if op == "&":
        def concat(scope):
            a, b = left(scope), right(scope)
            return a + b if isinstance(a, str) and isinstance(b, str) else MISSING
        return concat
    if op in _ARITHMETIC:
        arithmetic = _ARITHMETIC[op]

        def number(scope):
            a, b = left(scope), right(scope)
            if _kind(a) != "number" or _kind(b) != "number":
                return MISSING
            value = arithmetic(a, b)
            return _from_engine(value) if abs(value) < 2**53 else MISSING
        return number
    return None


def free_variables(expression: Expression) -> set[str]:
    """The workflow variables an expression reads: ``$name`` references, not counting functions it calls, names it
    binds itself (``$x := ...``, lambda parameters), ``$``, ``$$`` and ``$states``."""
    symbol = type(expression.ast)
    used: set[str] = set()
    local: set[str] = {"", "$", "states"}
    stack = [expression.ast]
    while stack:
        node = stack.pop()
        if node.type == "variable":
            used.add(node.value)
        elif node.type == "bind" and getattr(node.lhs, "type", None) == "variable":
            local.add(node.lhs.value)
        elif node.type == "lambda":
            local.update(a.value for a in node.arguments or () if getattr(a, "type", None) == "variable")
        for key, value in vars(node).items():
            if key == "procedure" and getattr(value, "type", None) == "variable":
                continue
            if isinstance(value, symbol):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, symbol))
    return used - local


def top_level_problem(expression: Expression) -> str | None:
    """What AWS refuses at the top of an expression: ``$``, ``$$`` or a bare field name (use ``$states.input``)."""
    node = expression.ast
    if node.type == "path" and node.steps:
        node = node.steps[0]
    if node.type == "variable" and node.value in ("", "$"):
        return f"'{'$' + node.value}' cannot be used at the top level of a JSONata expression; use $states.input " \
               "or $states.context"
    if node.type == "name":
        return f"the field name '{node.value}' cannot be used at the top level of a JSONata expression; use " \
               f"$states.input.{node.value}"
    return None


def _message(exc) -> str:
    text = str(exc)
    return text if text and text != "None" else exc.error


_EXPRESSIONS: dict[tuple[str, str], Expression] = {}


def compile_expression(value: str, location: str) -> Expression:
    """Compile the ``{% %}`` string ``value`` of the field at ``location``; CompileError when it does not parse."""
    key = (value, location)
    cached = _EXPRESSIONS.get(key)
    if cached is None:
        cached = Expression(expression_text(value), location)
        if len(_EXPRESSIONS) < 4096:
            _EXPRESSIONS[key] = cached
    return cached


# ----------------------------------------------------------------------------------------------- templates
def _compile_node(value: Any, location: str, found: list):
    if is_expression(value):
        expression = compile_expression(value, location)
        found.append(expression)
        return expression
    if isinstance(value, dict):
        items = tuple((k, _compile_node(v, f"{location}/{k}", found)) for k, v in value.items())
        return _Literal(value) if all(isinstance(n, _Literal) for _, n in items) else _Object(items)
    if isinstance(value, list):
        items = tuple(_compile_node(v, f"{location}/{i}", found) for i, v in enumerate(value))
        return _Literal(value) if all(isinstance(n, _Literal) for n in items) else _Array(items)
    return _Literal(value)


class JsonataTemplate:
    """A JSONata-capable field value: any JSON, where every ``{% %}`` string (at any depth) is evaluated."""

    __slots__ = ("_root", "expressions", "location")

    def __init__(self, value: Any, location: str):
        found: list[Expression] = []
        self._root = _compile_node(value, location, found)
        self.expressions = tuple(found)
        self.location = location

    @property
    def is_static(self) -> bool:
        return isinstance(self._root, _Literal)

    @property
    def expression(self) -> Expression | None:
        """The expression when the whole field is one ``{% %}`` string."""
        return self._root if isinstance(self._root, Expression) else None

    def evaluate(self, scope) -> Any:
        return self._root.evaluate(scope)


def compile_template(value: Any, location: str) -> JsonataTemplate:
    """Compile a JSONata field (``Output``, ``Arguments``, one ``Assign`` value...) named ``location`` in causes."""
    return JsonataTemplate(value, location)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
