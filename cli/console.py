"""``statemill console``: only the web console (no API, no workers) over a database, for watching and approving."""
from __future__ import annotations

import signal

import click

from .config import open_client
from .executions import db_option
from .listen import listen_options, uvicorn_config


@click.command()
@listen_options(8084, key_help="Require a login with this key and --secret-access-key",
                secret_help="The password of the login", refusal="the console without a login")
@db_option
@click.option("--actions", is_flag=True, help="Allow starting and stopping executions and answering waiting tasks "
              "(read-only without this).")
def console(host, port, credentials, quiet, db, actions):
    """Serve the web console alone on HOST:PORT (open http://HOST:PORT/): executions live, state machines and
    their diagrams, waiting tasks. Executions are run by `statemill serve` or `statemill worker` elsewhere."""
    import uvicorn
    from starlette.applications import Starlette

    from statemill.server.app import Server
    from statemill.server.console import mount

    server = Server(open_client(db, read_only=not actions), credentials=credentials, console_actions=actions)
    config = uvicorn_config(Starlette(routes=mount(server, actions=actions)), host, port, quiet)
    # uvicorn finishes open requests on SIGTERM/SIGINT, then raises the signal again: ignored, the exit is 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run()


COMMANDS = [console]
