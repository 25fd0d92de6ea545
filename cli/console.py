"""``statemill console``: only the web console (no API, no workers) over a database, for watching and approving."""
from __future__ import annotations

import logging
import signal

import click

from .config import open_client
from .errors import USAGE, fail
from .executions import db_option
from .serve import _loopback


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8084, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@db_option
@click.option("--actions", is_flag=True, help="Allow starting and stopping executions and answering waiting tasks "
              "(read-only without this).")
@click.option("--access-key-id", envvar="STATEMILL_ACCESS_KEY_ID", metavar="KEY",
              help="Require a login with this key and --secret-access-key [env STATEMILL_ACCESS_KEY_ID].")
@click.option("--secret-access-key", envvar="STATEMILL_SECRET_ACCESS_KEY", metavar="SECRET",
              help="The password of the login [env STATEMILL_SECRET_ACCESS_KEY].")
@click.option("--allow-unauthenticated", is_flag=True,
              help="Serve without a login on an address other than loopback.")
@click.option("--quiet", "-q", is_flag=True, help="No request log.")
def console(host, port, db, actions, access_key_id, secret_access_key, allow_unauthenticated, quiet):
    """Serve the web console alone on HOST:PORT (open http://HOST:PORT/): executions live, state machines and
    their diagrams, waiting tasks. Executions are run by `statemill serve` or `statemill worker` elsewhere."""
    if bool(access_key_id) != bool(secret_access_key):
        fail("UsageError", "--access-key-id and --secret-access-key go together", USAGE)
    credentials = (access_key_id, secret_access_key) if access_key_id else None
    if credentials is None and not _loopback(host) and not allow_unauthenticated:
        fail("UsageError", f"refusing to serve the console without a login on {host}: configure --access-key-id "
             "and --secret-access-key, or pass --allow-unauthenticated", USAGE)
    import uvicorn
    from starlette.applications import Starlette

    from statemill.server.app import Server
    from statemill.server.console import mount

    server = Server(open_client(db, read_only=not actions), credentials=credentials, console_actions=actions)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    config = uvicorn.Config(Starlette(routes=mount(server, actions=actions)), host=host, port=port,
                            log_level="warning" if quiet else "info", access_log=not quiet, lifespan="off")
    # uvicorn finishes open requests on SIGTERM/SIGINT, then raises the signal again: ignored, the exit is 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run()


COMMANDS = [console]
