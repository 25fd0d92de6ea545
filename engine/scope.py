"""What a path, intrinsic call, Choice rule or JSONata expression is evaluated against: ``$``, ``$$``, variables."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .paths import MISSING


class Scope:
    """The data an expression sees. ``input`` is ``$``, ``context`` is ``$$`` (the context object), ``variables``
    holds workflow variables (``$name``). The context object can be given as a function: it is then built on first
    use only, since most expressions never read ``$$``. ``result`` and ``error_output`` are JSONata's
    ``$states.result`` and ``$states.errorOutput`` (MISSING where the state has none)."""

    __slots__ = ("input", "_context", "_make_context", "variables", "state_name", "result", "error_output")

    def __init__(self, input: Any, context: Mapping[str, Any] | None = None,
                 variables: Mapping[str, Any] | None = None, state_name: str = "",
                 make_context: Callable[[], Mapping[str, Any]] | None = None, result: Any = MISSING,
                 error_output: Any = MISSING):
        self.input = input
        self.result = result
        self.error_output = error_output
        self._context = context
        self._make_context = make_context
        self.variables = variables if variables is not None else {}
        self.state_name = state_name

    @property
    def context(self) -> Mapping[str, Any]:
        if self._context is None:
            self._context = self._make_context() if self._make_context is not None else {}
        return self._context

    def with_input(self, value: Any) -> "Scope":
        return Scope(value, self._context, self.variables, self.state_name,
                     make_context=self._make_context)

    def __repr__(self) -> str:
        return f"Scope(input={self.input!r}, state_name={self.state_name!r})"
