"""``Engine``: a client with handlers, which runs executions in its own process as well as starting them."""
from __future__ import annotations

from os import PathLike
from typing import Any, Callable, Mapping

from .client import Client
from .handlers import HandlerRegistry, default_registry
from .runtime import TERMINAL
from .storage import Storage, storage_root
from .worker import Worker


class Engine(Client):
    """A client with handlers: register handlers and definitions, start executions and work on them.

    ``run`` drives one execution to its end in this process; ``worker().run()`` serves every execution in the
    database (the tasks it has handlers for) until stopped. Other processes can use a plain ``Client`` on the same database.
    ``storage`` (a ``Storage`` or its folder; ``storage_root()`` by default) is where Distributed Map reads items and
    writes results.
    """

    def __init__(self, db: Any = None, *, handlers: Mapping[str, Callable[..., Any]] | None = None,
                 concurrency: int = 16, storage: Storage | str | PathLike | None = None, **options: Any):
        super().__init__(db, **options)
        self.handlers = HandlerRegistry(default_registry.mapping())
        if handlers:
            self.handlers.update(handlers)
        self.concurrency = concurrency
        self.storage = storage if isinstance(storage, Storage) else Storage(storage_root(storage))

    def handler(self, resource: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a handler for a Task ``Resource``."""
        return self.handlers.handler(resource)

    def worker(self, **options: Any) -> Worker:
        options.setdefault("concurrency", self.concurrency)
        options.setdefault("storage", self.storage)
        return Worker(self, self.handlers, **options)

    def wait(self, arn: str, **worker_options: Any) -> dict:
        """Drive the execution ``arn`` (and nothing else) in this process until it has finished; return its
        description. A task of it without a handler here fails, as on AWS."""
        worker = self.worker(execution=arn, **worker_options)
        try:
            worker.run(until=lambda: self.status(arn) in TERMINAL)
        finally:
            worker.close()
        return self.describe(arn)

    def run(self, definition: str | PathLike | Mapping[str, Any], input: Any = None, *, name: str | None = None,
            machine_name: str | None = None, mocks: Any = None, mock_config: Any = None, test_case: str | None = None,
            **worker_options: Any) -> dict:
        """Register ``definition``, start it with ``input`` and drive it to its end; return DescribeExecution.

        ``mock_config`` (a Step Functions Local mock file's path, or a ``MockConfig``) with ``test_case`` answers the
        test case's Task states with its mocked responses; ``mocks`` does the same from Python: state name to a
        value, an exception, or a list of them (one per invocation)."""
        from .mocks import MockConfig, TestCase
        machine = self.register(definition, machine_name)
        if mock_config is not None:
            config = mock_config if isinstance(mock_config, MockConfig) else MockConfig.load(mock_config)
            if test_case is None:
                raise TypeError("test_case= names the test case of mock_config to run")
            mocks = config.test_case(machine["name"], test_case, self.machine(machine["id"]))
        elif mocks is not None and not isinstance(mocks, TestCase):
            mocks = TestCase.of(mocks)
        started = self.start(machine["name"], input, name=name, mocks=mocks)
        return self.wait(started["executionArn"], **worker_options)
