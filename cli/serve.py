"""``statemill serve``: the Step Functions API over HTTP (boto3, the AWS CLI, any AWS SDK), with workers."""
from __future__ import annotations

import ipaddress
import logging
import signal
import threading

import click

from .config import open_engine_with_handlers, storage_dir
from .errors import USAGE, fail
from .executions import db_option, handlers_option, storage_option


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8083, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@db_option
@handlers_option
@storage_option
@click.option("--workers", "worker_count", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker threads run in this process, each with --concurrency handler slots.")
@click.option("--no-worker", is_flag=True, help="Serve the API only; `statemill worker` processes run executions.")
@click.option("--concurrency", default=16, show_default=True, help="Handlers each worker runs at once.")
@click.option("--access-key-id", envvar="STATEMILL_ACCESS_KEY_ID", metavar="KEY",
              help="Require requests signed (AWS SigV4) with this key [env STATEMILL_ACCESS_KEY_ID].")
@click.option("--secret-access-key", envvar="STATEMILL_SECRET_ACCESS_KEY", metavar="SECRET",
              help="The secret of --access-key-id [env STATEMILL_SECRET_ACCESS_KEY].")
@click.option("--allow-unauthenticated", is_flag=True,
              help="Serve without credentials on an address other than loopback.")
@click.option("--console-actions", is_flag=True,
              help="Let the web console (GET /) start and stop executions and answer waiting tasks; it is "
                   "read-only without this.")
@click.option("--quiet", "-q", is_flag=True, help="No request log.")
def serve(host, port, db, handlers, storage, worker_count, no_worker, concurrency, access_key_id, secret_access_key,
          allow_unauthenticated, console_actions, quiet):
    """Serve the AWS Step Functions API (JSON 1.0 protocol) on HOST:PORT, running executions with workers in this
    process unless --no-worker. Stops gracefully on SIGTERM or Ctrl-C (finishing what is in flight)."""
    if bool(access_key_id) != bool(secret_access_key):
        fail("UsageError", "--access-key-id and --secret-access-key go together", USAGE)
    credentials = (access_key_id, secret_access_key) if access_key_id else None
    if credentials is None and not _loopback(host) and not allow_unauthenticated:
        fail("UsageError", f"refusing to serve unauthenticated on {host}: configure --access-key-id and "
             "--secret-access-key, or pass --allow-unauthenticated", USAGE)
    import uvicorn

    from statemill.server.app import Server, create_app

    engine = open_engine_with_handlers(db, handlers, concurrency=concurrency, storage=storage_dir(storage))
    server = Server(engine, credentials=credentials, engine=None if no_worker else engine,
                    console_actions=console_actions)
    workers = [] if no_worker else [engine.worker() for _ in range(worker_count)]
    threads = [threading.Thread(target=w.run, name=f"statemill-worker-{i}", daemon=True)
               for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    config = uvicorn.Config(create_app(server), host=host, port=port, log_level="warning" if quiet else "info",
                            access_log=not quiet, lifespan="off")
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
