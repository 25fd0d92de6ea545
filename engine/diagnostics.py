"""Located diagnostics (``order.yaml:14:7: error[SM203] ...``) and the table of their stable codes."""
from __future__ import annotations

from dataclasses import asdict, dataclass

# Every code the validator can emit, with a one-line meaning. The README's table is generated from this.
CODES: dict[str, str] = {
    "SM001": "the file is not well-formed YAML or JSON",
    "SM002": "a key appears twice in the same object",
    "SM003": "the definition is over AWS's 1 MiB limit (as JSON, YAML aliases expanded)",
    "SM004": "objects and arrays nest more than 100 levels deep, or a YAML alias refers to a node that contains it",
    "SM005": "a YAML tag that JSON has no equivalent for (!!binary, !!timestamp, !!set, !!python/..., !custom)",
    "SM006": "a number JSON cannot carry: NaN, Infinity, one out of a double's range, or one of thousands of digits",
    "SM101": "a field that the state type (or object) does not allow",
    "SM102": "a required field is missing",
    "SM103": "a field has the wrong type or a value outside its allowed set",
    "SM104": "a number is outside its allowed range",
    "SM105": "another JSON Schema constraint of the language is violated",
    "SM201": "StartAt names no state of its scope",
    "SM202": "two states share a name (names are unique across the whole machine, branches included)",
    "SM203": "a Next, Default, Choice rule or Catch target names no state of the same scope",
    "SM204": "a state name is longer than 80 characters",
    "SM205": "a state needs exactly one of Next and End",
    "SM206": "a Choice state cannot be terminal (End)",
    "SM207": "a state is unreachable from StartAt",
    "SM208": "the machine or a branch can never reach a terminal state",
    "SM301": "States.ALL must be alone and last in its Retry or Catch list",
    "SM302": "an error name in the reserved States. namespace that AWS does not define",
    "SM401": "a Path does not parse",
    "SM402": "a Reference Path is not a single-node path (no filters, wildcards or slices)",
    "SM403": "a payload-template value for a .$ key is not a path, context path, variable or intrinsic call",
    "SM404": "an intrinsic function call does not parse, names no function, or has the wrong number of arguments",
    "SM405": "two keys of a payload template are the same once .$ is stripped",
    "SM501": "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath and TimestampPath",
    "SM502": "a Choice rule is malformed (a data-test rule needs exactly one comparison operator)",
    "SM503": "HeartbeatSeconds must be smaller than TimeoutSeconds",
    "SM504": "a field of the other query language (JSONPath vs JSONata) is used in this state",
    "SM505": "a machine whose QueryLanguage is JSONata cannot contain a JSONPath state",
    "SM506": "a timestamp is not an RFC 3339 date-time",
    "SM507": "a JSONata expression does not parse, or a string is only half enclosed in {% %}",
    "SM508": "a JSONata expression uses $states.result or $states.errorOutput where AWS does not provide it",
    "SM509": "a JSONata expression has $, $$ or a field name at its top level (use $states.input)",
    "SM510": "an Assign target is not a valid variable name, or is the reserved name states",
    "SM511": "a Parallel branch or Map iteration assigns a variable that an outer scope assigns",
    "SM901": "warning: a Choice state without Default fails with States.NoChoiceMatched when no rule matches",
    "SM902": "warning: a variable is read but no state of the machine assigns it",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: str  # "error" | "warning"
    message: str
    pointer: str = ""
    file: str = "<definition>"
    line: int | None = None
    column: int | None = None

    def format(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        return f"{where}: {self.severity}[{self.code}] {self.message}"

    def to_json(self) -> dict:
        return asdict(self)


def did_you_mean(word: str, choices) -> str:
    """`` (did you mean "Ship"?)`` when a close match exists, else an empty string."""
    import difflib
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
