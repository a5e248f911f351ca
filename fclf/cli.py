"""The `fclf` command: user commands that are not pipeline stages."""

from __future__ import annotations

import typer

from fclf import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fclf {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Function-Contrastive Latent Fields on CLIP face embeddings."""


def main() -> None:
    app()
