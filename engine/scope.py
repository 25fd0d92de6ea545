"""What a path, intrinsic call or Choice rule is evaluated against: ``$``, ``$$`` and variables."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class Scope:
    """The data an expression sees. ``input`` is ``$``, ``context`` is ``$$`` (the context object), ``variables``
    holds workflow variables (``$name``). ``field`` names the definition field being evaluated, for error causes
    (for example ``"Parameters"`` or ``"ItemsPath"``)."""

    input: Any
    context: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    state_name: str = ""
    entered_event_id: int = 0

    def with_input(self, value: Any) -> "Scope":
        return Scope(value, self.context, self.variables, self.state_name, self.entered_event_id)
