"""What the engine test modules share: waiting for a condition, and working executions to their end with a real
worker, both bounded in real time so that an engine that loses an execution fails the test instead of hanging it."""
from __future__ import annotations

import time

from statemill.engine import Engine
from statemill.engine.runtime import TERMINAL

QUICK = {"poll_seconds": 0.01}


def wait_for(check, seconds: float = 15.0, what: str = "the condition", every: float = 0.02):
    """``check()``'s first truthy answer, asked every ``every`` seconds; AssertionError after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(every)


def finish(engine: Engine, arn: str, deadline: float = 20, **worker_options) -> dict:
    """Run a worker of ``engine`` (``QUICK`` unless ``worker_options`` say otherwise) until ``arn`` has ended or
    ``deadline`` real seconds passed; its DescribeExecution."""
    give_up = time.monotonic() + deadline
    worker = engine.worker(**{**QUICK, **worker_options})
    try:
        worker.run(until=lambda: engine.status(arn) in TERMINAL or time.monotonic() > give_up)
    finally:
        worker.close()
    return engine.describe(arn)


def run(engine: Engine, definition: dict, value=None, name: str | None = None, deadline: float = 20,
        only: bool = False) -> dict:
    """Register ``definition`` as machine "m", start it (as ``name``) and ``finish`` it, with a worker serving
    only that execution when ``only``."""
    engine.register(definition, "m")
    arn = engine.start("m", value, name=name)["executionArn"]
    return finish(engine, arn, deadline, **({"execution": arn} if only else {}))
