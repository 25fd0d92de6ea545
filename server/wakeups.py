"""Wake-ups for GetActivityTask's long polls: a worker in this process that schedules an activity task wakes the
polls waiting here at once, instead of their next backoff step. A poll still retries on its own backoff, which is
what finds tasks that workers in other processes schedule (``serve --no-worker`` and ``statemill worker``)."""
from __future__ import annotations

import asyncio
from typing import Any


class Wakeups:
    """A generation counter bumped, from any thread, on each activity task scheduled in this process."""

    def __init__(self) -> None:
        self.generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def on_transition(self, update: dict[str, Any]) -> None:
        """A worker's ``on_event`` callback (after the commit): poke when the transition scheduled an activity task."""
        if any(event_type == "ActivityScheduled" for event_type, _ in update["events"]):
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self.generation += 1
        event, self._event = self._event, None
        if event is not None:
            event.set()

    async def wait(self, since: int, timeout: float) -> None:
        """Return when the generation moves past ``since`` (perhaps already), or after ``timeout`` seconds."""
        self._loop = asyncio.get_running_loop()
        if self.generation != since:
            return
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
