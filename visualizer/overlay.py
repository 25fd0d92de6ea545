"""Where an execution stands, read from its history: a status per state, the transitions taken, Map item counts.

The history is a forest of threads: the root, one per Parallel branch run and one per Map iteration. An event's
``previousEventId`` points at the previous event of its own thread, except the first event of a branch or iteration,
which points at its Parallel/Map's ``…StateStarted`` (or, for an iteration waiting for a free slot, at the event of
the iteration that freed it), and a Parallel/Map's own events after it forked, which point into a child thread
(engine/history.py describes AWS's rules): those climb back to the thread running the Parallel/Map. Replaying the events thread by thread gives every visit of every
state; the latest visit per thread wins, and across threads (Map iterations) the most telling status wins. Nothing
here reads the database: ``load_execution`` fetches the history, ``from_history`` is pure.

After an ``ExecutionRedriven`` the states that run again are drawn as the current run: the visits that had failed
or were aborted before it no longer decide a state's status; the failed ones are counted as ``redriven``. A
Parallel/Map that failed goes on (the redrive does not enter it again), a re-run iteration replaces the one with its
index, and a re-run branch continues its own thread.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import sqlalchemy as sa

from statemill.engine import model as m
from statemill.engine.interpreter import error_matches
from statemill.engine.store.schema import executions

SUCCEEDED = "succeeded"
FAILED = "failed"
CAUGHT = "caught"
RUNNING = "running"
WAITING_TIMER = "waiting-timer"
WAITING_TOKEN = "waiting-token"
CANCELLED = "cancelled"
NOT_REACHED = "not-reached"
REDRIVEN = "redriven"  # not a status: the mark of a state that failed before a redrive ran it again

# The most telling status first: where an execution is now, then what went wrong, then what went fine.
PRIORITY = (RUNNING, WAITING_TOKEN, WAITING_TIMER, FAILED, CAUGHT, CANCELLED, SUCCEEDED)
LABELS = {SUCCEEDED: "succeeded", FAILED: "failed", CAUGHT: "caught", RUNNING: "running",
          WAITING_TIMER: "waiting: timer", WAITING_TOKEN: "waiting: task token", CANCELLED: "cancelled",
          NOT_REACHED: "not reached", REDRIVEN: "failed, redriven"}

_END_EVENTS = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionAborted": "ABORTED",
               "ExecutionTimedOut": "TIMED_OUT"}
_ATTEMPT = {"TaskScheduled", "LambdaFunctionScheduled", "ParallelStateStarted", "MapStateStarted"}
_FAILURE = {"TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed", "LambdaFunctionFailed",
            "LambdaFunctionTimedOut", "LambdaFunctionStartFailed", "LambdaFunctionScheduleFailed",
            "ParallelStateFailed", "MapStateFailed"}
_BUSY = {"TaskStarted", "TaskSucceeded", "LambdaFunctionStarted", "LambdaFunctionSucceeded"}
_FORKS = {"ParallelStateStarted", "MapStateStarted"}
# A Parallel/Map's own events, which may point into one of its children's threads.
_FORK_OWNED = {f"{kind}State{event}" for kind in ("Parallel", "Map")
               for event in ("Started", "Succeeded", "Failed", "Exited", "Aborted")} | \
    {"MapIterationStarted", "MapRunStarted", "MapRunSucceeded", "MapRunFailed"}
_FORK_STATES = (m.ParallelState, m.MapState)


@dataclass(frozen=True, slots=True)
class StateRun:
    """What happened to one state. ``counts`` tallies its visits by status (a state in a Map runs once per item);
    ``iterations`` is set on Map states: items, succeeded, failed, running, cancelled, not started."""

    status: str
    visits: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)
    retries: int = 0
    error: str | None = None
    cause: str | None = None
    iterations: Mapping[str, int] | None = None
    redriven: int = 0  # visits that failed before an ExecutionRedriven (a redrive ran the state again)


@dataclass(frozen=True, slots=True)
class Overlay:
    """An execution drawn over its machine. ``transitions`` holds (from, to, "next" | "catch") pairs taken;
    ``entered_first`` the states that began a thread; ``finished`` the terminal states a thread ended in."""

    status: str  # the execution's: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED
    states: Mapping[str, StateRun]
    transitions: frozenset[tuple[str, str, str]] = frozenset()
    entered_first: frozenset[str] = frozenset()
    finished: frozenset[str] = frozenset()
    title: str = ""
    error: str | None = None
    cause: str | None = None
    redrives: int = 0  # ExecutionRedriven events seen

    def status_of(self, state: str) -> str:
        run = self.states.get(state)
        return run.status if run else NOT_REACHED

    def took(self, edge: Any) -> bool:
        """Whether the execution went along a diagram edge (``diagram.Edge``)."""
        if edge.kind in ("start", "fork"):
            return edge.target in self.entered_first
        if edge.kind in ("end", "join"):
            return edge.source in self.finished
        return (edge.source, edge.target, "catch" if edge.kind == "catch" else "next") in self.transitions


# ------------------------------------------------------------------------------------------------ replay
@dataclass(eq=False)
class _Visit:
    state: m.State
    status: str | None = None  # set once the visit is over
    progressed: bool = False  # got past entering: a task scheduled, branches started
    phase: str = RUNNING  # RUNNING, WAITING_TIMER or WAITING_TOKEN while it lasts
    failed: bool = False  # its latest attempt failed and nothing has retried or caught it yet
    retry_pending: bool = False  # ...and a Retrier will run it again
    retries: int = 0
    counts: list[int] = field(default_factory=list)  # attempts used per Retrier, as the interpreter counts them
    error: str | None = None
    cause: str | None = None
    children: list["_Thread"] = field(default_factory=list)
    items: int = 0
    superseded: bool = False  # failed or aborted before a redrive, which runs it again: not the current status
    redriven: bool = False  # failed before a redrive


@dataclass(eq=False)
class _Thread:
    parent: _Visit | None
    outer: "_Thread | None" = None  # the thread running ``parent``
    visits: list[_Visit] = field(default_factory=list)
    ended: str | None = None  # SUCCEEDED, FAILED or CANCELLED once over
    index: int | None = None  # a Map iteration's

    @property
    def open(self) -> _Visit | None:
        last = self.visits[-1] if self.visits else None
        return last if last is not None and last.status is None else None


def from_history(machine: m.StateMachine, events: Iterable[Mapping[str, Any]], title: str = "") -> Overlay:
    """The overlay of ``machine`` from GetExecutionHistory events (oldest first), finished or still running."""
    replay = _Replay(machine)
    for event in events:
        replay.event(event)
    return replay.overlay(title)


class _Replay:
    def __init__(self, machine: m.StateMachine):
        self.machine = machine
        self.root = _Thread(None)
        self.threads = [self.root]
        self.thread_of: dict[int, _Thread] = {}
        self.types: dict[int, str] = {}
        self.status = "RUNNING"
        self.error: str | None = None
        self.cause: str | None = None
        self.redrives = 0

    def event(self, event: Mapping[str, Any]) -> None:
        kind, eid, previous = event["type"], event["id"], event.get("previousEventId", 0)
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), None) or {}
        self.types[eid] = kind
        if kind in _END_EVENTS:
            self.end_execution(kind, details)
            return
        if kind == "ExecutionRedriven":
            self.redriven()
            return
        thread = self.thread_of.get(previous, self.root)
        if self.redrives and thread.ended in (FAILED, CANCELLED) and kind not in _FORK_OWNED:
            thread.ended = None  # a branch the redrive runs again goes on in its own thread
        if kind in _FORK_OWNED:
            while thread.outer is not None and not (thread.open and isinstance(thread.open.state, _FORK_STATES)):
                thread = thread.outer
        if kind == "MapIterationStarted" or (kind.endswith("StateEntered") and self.types.get(previous) in _FORKS):
            parent = thread.open
            thread = _Thread(parent, thread, index=details.get("index") if kind == "MapIterationStarted" else None)
            self.threads.append(thread)
            if parent is not None:
                if thread.index is not None:  # a redriven iteration takes the place of its earlier run
                    parent.children = [c for c in parent.children if c.index != thread.index]
                parent.children.append(thread)
        self.thread_of[eid] = thread
        visit = thread.open
        if kind.endswith("StateEntered"):
            state = self.machine.index.get(details.get("name"))
            if state is None:
                return
            visit = _Visit(state, counts=[0] * len(getattr(state, "retry", ())))
            thread.visits.append(visit)
            if isinstance(state, m.WaitState):
                visit.phase = WAITING_TIMER
            elif isinstance(state, m.FailState):
                visit.status, visit.error, visit.cause = FAILED, state.error, state.cause
        elif kind == "MapIterationSucceeded":
            thread.ended = SUCCEEDED
        elif kind == "MapIterationFailed":
            self.settle(thread, FAILED)
        elif visit is None:
            return
        elif kind.endswith("StateExited"):
            visit.status = CAUGHT if visit.failed else SUCCEEDED
        elif kind in _ATTEMPT:
            if visit.failed:
                visit.retries += 1
            visit.failed = visit.retry_pending = False
            visit.progressed, visit.phase = True, RUNNING
            if kind == "MapStateStarted":
                visit.items += details.get("length", 0)
        elif kind == "TaskSubmitted":
            visit.phase = WAITING_TOKEN
        elif kind in _BUSY:
            visit.phase = RUNNING
        elif kind in _FAILURE:
            self.failure(visit, details)
        elif kind in ("ParallelStateSucceeded", "MapStateSucceeded"):
            for child in visit.children:
                child.ended = child.ended or SUCCEEDED

    def failure(self, visit: _Visit, details: Mapping[str, Any]) -> None:
        """An attempt failed: note the error, end the branches it ran, and work out whether a Retrier fires."""
        visit.failed, visit.progressed = True, True
        if "error" in details or "cause" in details:
            visit.error, visit.cause = details.get("error"), details.get("cause")
        for child in visit.children:
            if child.ended is None:
                self.settle(child, CANCELLED)
            culprit = next((v for v in child.visits if v.status == FAILED), None)
            if culprit is not None and visit.error is None:
                visit.error, visit.cause = culprit.error, culprit.cause
        visit.retry_pending = False
        for i, retrier in enumerate(getattr(visit.state, "retry", ())):
            if error_matches(retrier.error_equals, visit.error):
                if visit.counts[i] < retrier.max_attempts:
                    visit.counts[i] += 1
                    visit.retry_pending = True
                break

    def settle(self, thread: _Thread, how: str) -> None:
        """End a thread: its open visit failed, or was cancelled unless it had already failed for good."""
        thread.ended = how
        visit = thread.open
        if visit is None:
            return
        if how == FAILED or (visit.failed and not visit.retry_pending) or self.failed_on_entry(visit):
            visit.status = FAILED
        else:
            visit.status = CANCELLED
        for child in visit.children:
            if child.ended is None:
                self.settle(child, CANCELLED)

    @staticmethod
    def failed_on_entry(visit: _Visit) -> bool:
        """A Pass, Choice, Task, Parallel or Map that never got past entering failed there (its input or
        parameters did not evaluate): entering one and moving on happen in a single step. A Wait may simply wait."""
        return not visit.progressed and not isinstance(visit.state, m.WaitState)

    def redriven(self) -> None:
        """ExecutionRedriven: what failed or was aborted runs again; a failed Parallel/Map goes on where it was."""
        self.redrives += 1
        self.status, self.error, self.cause = "RUNNING", None, None
        for thread in self.threads:
            for visit in thread.visits:
                if visit.status in (FAILED, CANCELLED):
                    visit.superseded = True
                    visit.redriven = visit.redriven or visit.status == FAILED
        self.root.ended = None
        last = self.root.visits[-1] if self.root.visits else None
        if last is not None and last.superseded and last.children and isinstance(last.state, _FORK_STATES):
            last.status, last.superseded, last.phase = None, False, RUNNING
            last.failed = last.retry_pending = False
            last.counts = [0] * len(last.counts)  # a redrive starts the retry counters over

    def end_execution(self, kind: str, details: Mapping[str, Any]) -> None:
        self.status = _END_EVENTS[kind]
        self.error, self.cause = details.get("error"), details.get("cause")
        last = self.root.visits[-1] if self.root.visits else None
        if last is not None and last.status in (None, FAILED) and self.status in ("FAILED", "TIMED_OUT") \
                and last.error is None:
            last.error, last.cause = self.error, self.cause
        self.settle(self.root, FAILED if self.status in ("FAILED", "TIMED_OUT") else
                    CANCELLED if self.status == "ABORTED" else SUCCEEDED)
        for thread in self.threads:
            if thread.ended is None:
                self.settle(thread, CANCELLED)

    def live_status(self, visit: _Visit) -> str:
        """The status of a visit still under way in a running execution."""
        if visit.failed:
            return WAITING_TIMER if visit.retry_pending else FAILED
        if self.failed_on_entry(visit):
            return FAILED
        return visit.phase

    # -- the result
    def overlay(self, title: str) -> Overlay:
        latest: dict[str, list[_Visit]] = {}
        every: dict[str, list[_Visit]] = {}
        transitions, entered_first, finished = set(), set(), set()
        for thread in self.threads:
            for visit in thread.visits:
                if visit.status is None:
                    visit.status = self.live_status(visit) if thread.ended is None else CANCELLED
                every.setdefault(visit.state.name, []).append(visit)
            for before, after in zip(thread.visits, thread.visits[1:]):
                if before.status == SUCCEEDED and _caught_by(before.state, after.state.name):
                    before.status = CAUGHT  # an error after the task returned (ResultSelector...) leaves no event
                kind = "catch" if before.status == CAUGHT else "next"
                transitions.add((before.state.name, after.state.name, kind))
            if thread.visits:
                entered_first.add(thread.visits[0].state.name)
                last = thread.visits[-1]
                if last.state.is_terminal and last.status in (SUCCEEDED, FAILED) and \
                        (last.status == SUCCEEDED or isinstance(last.state, m.FailState)):
                    finished.add(last.state.name)
            seen: dict[str, _Visit] = {}
            for visit in thread.visits:
                seen[visit.state.name] = visit
            for name, visit in seen.items():
                latest.setdefault(name, []).append(visit)
        states = {}
        for name, visits in every.items():
            current = [v for v in latest[name] if not v.superseded] or latest[name]
            chosen = min(current, key=lambda v: PRIORITY.index(v.status))
            states[name] = StateRun(chosen.status, len(visits), dict(Counter(v.status for v in visits)),
                                    sum(v.retries for v in visits), chosen.error, chosen.cause,
                                    _iterations(visits) if isinstance(chosen.state, m.MapState) else None,
                                    sum(v.redriven for v in visits))
        return Overlay(self.status, states, frozenset(transitions), frozenset(entered_first), frozenset(finished),
                       title, self.error, self.cause, self.redrives)


def _caught_by(state: m.State, target: str) -> bool:
    """Whether moving on to ``target`` can only have been a Catch of ``state`` (no normal transition goes there)."""
    return target != state.next and target in {c.next for c in getattr(state, "catch", ())}


def _iterations(visits: list[_Visit]) -> dict[str, int]:
    """Map item counts over every visit of a Map state: how many iterations ended which way."""
    tally = Counter()
    for visit in visits:
        tally["items"] += visit.items
        for child in visit.children:
            tally[{SUCCEEDED: SUCCEEDED, FAILED: FAILED, CANCELLED: CANCELLED, None: RUNNING}[child.ended]] += 1
    started = tally[SUCCEEDED] + tally[FAILED] + tally[CANCELLED] + tally[RUNNING]
    return {"items": tally["items"], SUCCEEDED: tally[SUCCEEDED], FAILED: tally[FAILED], RUNNING: tally[RUNNING],
            CANCELLED: tally[CANCELLED], "not-started": max(0, tally["items"] - started)}


# ------------------------------------------------------------------------------------------------ from a database
def execution_arn(client: Any, execution: str) -> str:
    """The ARN of ``execution``, given as an ARN or as an execution name (which must then be unambiguous)."""
    if execution.startswith("arn:"):
        return execution
    with client.db.connect() as conn:
        arns = conn.execute(sa.select(executions.c.arn).where(executions.c.name == execution).limit(2)).scalars().all()
    if len(arns) == 1:
        return arns[0]
    from statemill.engine.client import ExecutionDoesNotExist
    if not arns:
        raise ExecutionDoesNotExist(f"no execution has the ARN or name {execution!r}")
    raise ExecutionDoesNotExist(f"several executions are named {execution!r}: give the execution ARN")


def machine_id(client: Any, arn: str) -> int:
    """The id of the state machine revision the execution ``arn`` was started with."""
    with client.db.connect() as conn:
        found = conn.execute(sa.select(executions.c.machine_id).where(executions.c.arn == arn)).scalar()
    if found is None:
        from statemill.engine.client import ExecutionDoesNotExist
        raise ExecutionDoesNotExist(f"no execution has the ARN {arn!r}")
    return found


def load_execution(client: Any, execution: str) -> tuple[m.StateMachine, Overlay]:
    """The machine revision an execution runs and its overlay, from ``client``'s database (an ARN or a name)."""
    arn = execution_arn(client, execution)
    machine = client.machine(machine_id(client, arn))
    events = client.history(arn)  # one query, so one consistent snapshot even while the execution runs
    parts = arn.split(":")
    title = f"{parts[-2]} / {parts[-1]}" if len(parts) >= 8 else arn  # machine / execution
    return machine, from_history(machine, events, title)
