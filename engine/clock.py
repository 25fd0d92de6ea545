"""Time as the engine sees it: the system clock, or a fake one that tests advance instantly."""
from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timezone


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        """Sleep up to ``seconds``, returning early when ``wake`` is set."""
        if wake is not None:
            wake.wait(max(0.0, seconds))
        elif seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to, or when the engine would sleep: a 2-day Wait passes instantly."""

    def __init__(self, start: float = 1_767_225_600.0):  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()

    @classmethod
    def virtual(cls) -> "FakeClock":
        """Virtual time from the real present on: ``statemill run --virtual-time`` and the pytest plugin. A worker
        on it jumps over Waits, Retry backoff and task deadlines as soon as nothing else can run."""
        return cls(time.time())

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        self.advance(seconds)
        time.sleep(0)  # let other threads run


def iso(epoch: float) -> str:
    """RFC 3339 with milliseconds and Z, as the context object and the CLI show times. (As datetime would give
    it: the microseconds rounded half to even first; the text of the last second is kept, as most calls share it.)"""
    fraction, second = math.modf(epoch)
    micros = round(fraction * 1e6)
    if micros < 0:  # before 1970
        second, micros = second - 1, micros + 1_000_000
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    global _LAST_SECOND
    last = _LAST_SECOND
    if last[0] != second:
        last = _LAST_SECOND = (second, datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{last[1]}{micros // 1000:03d}Z"


_LAST_SECOND: tuple[float, str] = (math.nan, "")
