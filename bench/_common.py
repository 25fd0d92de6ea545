"""Shared pieces of the benchmark suite: results, timing loops, SQL statement counting, profiles, the table.

Every ratio the table prints compares two figures measured in the same run (a ``Result`` names its baselines by
key), so a slow or busy machine shifts both sides alike instead of comparing against numbers from elsewhere.
"""
from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Result:
    """One figure. ``against`` names baselines (other results' keys) that the table divides by."""

    key: str
    group: str
    label: str
    value: float
    unit: str
    higher_is_better: bool = True
    against: tuple[str, ...] = ()
    aim: tuple[str, float] | None = None  # (baseline key, the largest acceptable gap as a factor)
    note: str = ""
    short: str = ""  # how other rows name this one when they compare against it

    @property
    def name(self) -> str:
        return self.short or self.label


@dataclass
class Context:
    """What a benchmark gets: the mode, a scratch folder, the results so far, and where reports go."""

    quick: bool
    tmp: Path
    profile: bool = False
    results: dict[str, Result] = field(default_factory=dict)
    reports: list[str] = field(default_factory=list)

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full

    def add(self, result: Result) -> Result:
        self.results[result.key] = result
        return result

    def report(self, title: str, text: str) -> None:
        self.reports.append(f"--- {title}\n{text.rstrip()}\n")


# ------------------------------------------------------------------------------------------------ timing
def best_rate(step: Callable[[], int], seconds: float, rounds: int) -> float:
    """Call ``step`` (returns how many units it did) for ``seconds`` per round; the best units/second of the rounds.

    Best-of is the usual choice for CPU-bound loops: noise from other processes only ever slows a round down.
    """
    best = 0.0
    for _ in range(rounds):
        done, start = 0, time.perf_counter()
        deadline = start + seconds
        while True:
            done += step()
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, done / (now - start))
    return best


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Wall seconds of ``repeat`` calls of ``fn`` and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def median(values: list[float]) -> float:
    return statistics.median(values)


# ------------------------------------------------------------------------------------------------ SQL counting
class SqlCounter:
    """Counts the statements an SQLAlchemy engine's SQLite connections run (sqlite3's trace callback, so the
    transitions' statements sent straight to the DBAPI cursor count too; an executemany counts once per row) and
    its COMMITs/ROLLBACKs, split between the worker's frame threads (the transitions) and every other thread (the
    worker's loop)."""

    FRAME_THREAD = "statemill-frame"

    def __init__(self, engine):
        import sqlalchemy as sa
        self.engine = engine
        self.lock = threading.Lock()
        self.frame: Counter[str] = Counter()
        self.other: Counter[str] = Counter()
        self._traced: list = []
        sa.event.listen(engine, "engine_connect", self._connected)
        engine.dispose()  # connections made from now on are traced

    def close(self) -> None:
        import sqlalchemy as sa
        sa.event.remove(self.engine, "engine_connect", self._connected)
        for dbapi_connection in self._traced:
            try:
                dbapi_connection.set_trace_callback(None)
            except Exception:  # noqa: BLE001 - a closed connection traces nothing anyway
                pass

    def _connected(self, conn) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection not in self._traced:
            self._traced.append(dbapi_connection)
            dbapi_connection.set_trace_callback(self._statement)

    def _bucket(self) -> Counter[str]:
        name = threading.current_thread().name
        return self.frame if name.startswith(self.FRAME_THREAD) or name == "bench-frame" else self.other

    def _statement(self, statement: str) -> None:
        words = statement.lstrip().split(None, 2)
        kind = " ".join(words[:2]).upper() if words and words[0].upper() == "BEGIN" else (words[0].upper()
                                                                                          if words else "?")
        with self.lock:
            self._bucket()[kind] += 1

    def reset(self) -> None:
        with self.lock:
            self.frame.clear()
            self.other.clear()


def statements(counter: Counter[str]) -> int:
    """Statements sent to the database, COMMIT/ROLLBACK excluded (they are calls on the connection)."""
    return sum(n for kind, n in counter.items() if kind not in ("COMMIT", "ROLLBACK"))


def describe_counts(counter: Counter[str], per: float) -> str:
    parts = [f"{kind} {n / per:.2g}" for kind, n in sorted(counter.items(), key=lambda kv: -kv[1])]
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------------ profiling
CATEGORIES = (
    ("sqlalchemy", "sqlalchemy/"),
    ("jsonschema", "jsonschema/"),
    ("referencing", "referencing/"),
    ("engine.interpreter", "engine/interpreter.py"),
    ("engine.runtime", "engine/runtime.py"),
    ("engine.worker", "engine/worker.py"),
    ("engine.client", "engine/client.py"),
    ("engine.source", "engine/source.py"),
    ("engine.loader", "engine/loader.py"),
    ("engine.paths", "engine/paths.py"),
    ("engine.intrinsics", "engine/intrinsics.py"),
    ("engine.choice", "engine/choice.py"),
    ("engine.history", "engine/history.py"),
    ("engine.clock", "engine/clock.py"),
    ("engine (other)", "engine/"),
    ("json", "json/"),
    ("yaml", "yaml/"),
    ("sqlite3 (C calls)", "sqlite3.Connection"),
    ("sqlite3 (C calls)", "sqlite3.Cursor"),
    ("datetime", "datetime"),
    ("threading", "threading.py"),
)


def _category(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for label, needle in CATEGORIES:
        if needle in where:
            return label
    if filename == "~":
        return "builtins (other)"
    return "other"


def profile(fn: Callable[[], Any], top: int = 18) -> tuple[Any, str]:
    """Run ``fn`` under cProfile; a report of self time by package and the top functions by self time."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        result = fn()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    by_category: Counter[str] = Counter()
    total = 0.0
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        by_category[_category(filename, name)] += tottime
        total += tottime
    lines = [f"self time by package (cProfile, total {total:.2f} s; profiling inflates Python-heavy code):"]
    for label, seconds in by_category.most_common(12):
        lines.append(f"  {label:<22} {seconds:7.3f} s  {100 * seconds / total:5.1f} %")
    buffer = io.StringIO()
    stats.stream = buffer  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    body = buffer.getvalue()
    start = body.find("   ncalls")
    lines.append(f"top {top} functions by self time:")
    lines += ["  " + line.replace(str(Path.cwd()) + os.sep, "") for line in body[start:].splitlines() if line]
    return result, "\n".join(lines)


# ------------------------------------------------------------------------------------------------ the table
def _number(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f}"
    if unit == "ms":
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    if unit == "µs":
        return f"{value:.1f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _comparison(result: Result, results: dict[str, Result]) -> str:
    parts = []
    for key in result.against:
        base = results.get(key)
        if base is None or not base.value or not result.value:
            continue
        ratio = result.value / base.value
        parts.append(f"{ratio:.3g}x {base.name}")
    if result.aim is not None and result.aim[0] in results and result.value:
        base = results[result.aim[0]]
        gap = base.value / result.value if result.higher_is_better else result.value / base.value
        verdict = "ok" if gap <= result.aim[1] else "MISSED"
        parts.append(f"gap {gap:.1f}x, aim <= {result.aim[1]:g}x: {verdict}")
    return "; ".join(parts)


def table(results: dict[str, Result], groups: list[tuple[str, str]]) -> str:
    """The results as a text table, one section per group in ``groups`` order ((name, heading) pairs)."""
    rows = list(results.values())
    label_w = max([len(r.label) for r in rows] + [20]) + 2
    value_w = max([len(_number(r.value, r.unit)) for r in rows] + [6]) + 1
    unit_w = max([len(r.unit) for r in rows] + [4]) + 2
    out = []
    for group, heading in groups:
        section = [r for r in rows if r.group == group]
        if not section:
            continue
        out.append(f"\n{heading}")
        for r in section:
            line = f"  {r.label:<{label_w}}{_number(r.value, r.unit):>{value_w}} {r.unit:<{unit_w}}"
            comparison = _comparison(r, results)
            if comparison:
                line += comparison
            out.append(line.rstrip())
            if r.note:
                out.append(f"  {'':<{label_w}}{'':>{value_w}}  {r.note}")
    return "\n".join(out)
