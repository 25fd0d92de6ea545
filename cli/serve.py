"""``statemill serve``: the Step Functions API over HTTP (boto3, the AWS CLI, any AWS SDK), with workers."""
from __future__ import annotations

import signal
import threading

import click

from .config import open_engine_with_handlers, storage_dir
from .executions import db_option, handlers_option, storage_option
from .listen import listen_options, uvicorn_config


@click.command()
@listen_options(8083, key_help="Require requests signed (AWS SigV4) with this key",
                secret_help="The secret of --access-key-id", refusal="unauthenticated")
@db_option
@handlers_option
@storage_option
@click.option("--workers", "worker_count", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker threads run in this process, each with --concurrency handler slots.")
@click.option("--no-worker", is_flag=True, help="Serve the API only; `statemill worker` processes run executions.")
@click.option("--concurrency", default=16, show_default=True, help="Handlers each worker runs at once.")
@click.option("--console-actions", is_flag=True,
              help="Let the web console (GET /) start and stop executions and answer waiting tasks; it is "
                   "read-only without this.")
def serve(host, port, credentials, quiet, db, handlers, storage, worker_count, no_worker, concurrency, console_actions):
    """Serve the AWS Step Functions API (JSON 1.0 protocol) on HOST:PORT, running executions with workers in this
    process unless --no-worker. Stops gracefully on SIGTERM or Ctrl-C (finishing what is in flight)."""
    import uvicorn

    from statemill.server.app import Server, create_app

    engine = open_engine_with_handlers(db, handlers, concurrency=concurrency, storage=storage_dir(storage))
    server = Server(engine, credentials=credentials, engine=None if no_worker else engine,
                    console_actions=console_actions)
    workers = [] if no_worker else [engine.worker(on_event=server.wakeups.on_transition)
                                    for _ in range(worker_count)]
    threads = [threading.Thread(target=w.run, name=f"statemill-worker-{i}", daemon=True)
               for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    config = uvicorn_config(create_app(server), host, port, quiet)
    def stop_workers(*_) -> None:
        for w in workers:
            w.stop()

    # uvicorn answers open requests on SIGTERM/SIGINT, restores these handlers and raises the signal again: then
    # the workers finish what they hold, and the process exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop_workers)
    try:
        uvicorn.Server(config).run()
    finally:
        stop_workers()
        for thread in threads:
            thread.join()
        for w in workers:
            w.close()


COMMANDS = [serve]
