"""What `statemill serve` and `statemill console` share: where to listen, who may come in, and running uvicorn."""
from __future__ import annotations

import functools
import ipaddress
import logging

import click

from .errors import USAGE, fail


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_options(port: int, key_help: str, secret_help: str, refusal: str):
    """Add --host, --port, the credential options and --quiet to a command, which then receives ``host``, ``port``,
    ``credentials`` (a (key id, secret) pair or None, checked) and ``quiet``. ``refusal`` names what is refused
    off loopback without credentials ("unauthenticated", "the console without a login")."""
    def decorate(command):
        @functools.wraps(command)
        def checked(*args, access_key_id, secret_access_key, allow_unauthenticated, **kwargs):
            if bool(access_key_id) != bool(secret_access_key):
                fail("UsageError", "--access-key-id and --secret-access-key go together", USAGE)
            credentials = (access_key_id, secret_access_key) if access_key_id else None
            host = kwargs["host"]
            if credentials is None and not _loopback(host) and not allow_unauthenticated:
                fail("UsageError", f"refusing to serve {refusal} on {host}: configure --access-key-id and "
                     "--secret-access-key, or pass --allow-unauthenticated", USAGE)
            return command(*args, credentials=credentials, **kwargs)

        for option in reversed([
            click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on."),
            click.option("--port", default=port, show_default=True, type=click.IntRange(0, 65535),
                         help="Port to listen on."),
            click.option("--access-key-id", envvar="STATEMILL_ACCESS_KEY_ID", metavar="KEY",
                         help=f"{key_help} [env STATEMILL_ACCESS_KEY_ID]."),
            click.option("--secret-access-key", envvar="STATEMILL_SECRET_ACCESS_KEY", metavar="SECRET",
                         help=f"{secret_help} [env STATEMILL_SECRET_ACCESS_KEY]."),
            click.option("--allow-unauthenticated", is_flag=True,
                         help=f"Serve {refusal} on an address other than loopback."),
            click.option("--quiet", "-q", is_flag=True, help="No request log."),
        ]):
            checked = option(checked)
        return checked
    return decorate


def uvicorn_config(app, host: str, port: int, quiet: bool):
    """uvicorn's configuration for ``app`` on host:port, logging requests unless ``quiet``."""
    import uvicorn

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    return uvicorn.Config(app, host=host, port=port, log_level="warning" if quiet else "info",
                          access_log=not quiet, lifespan="off")
