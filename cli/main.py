"""Entry point of the ``statemill`` command."""
import click


@click.group()
@click.version_option(package_name="statemill", prog_name="statemill")
def main() -> None:
    """statemill: a durable Amazon States Language engine."""
