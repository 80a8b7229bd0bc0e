"""The ``hrwsi`` command line: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from hrwsi import __version__
from hrwsi.cli import actions, dashboard, db, demo, harvest, plan, retry, run, status, tasks

app = typer.Typer(
    name="hrwsi",
    help="Event-driven production system for Earth observation (HR-WSI).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hrwsi {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Event-driven production system for Earth observation (HR-WSI)."""


db.register(app)
dashboard.register(app)
harvest.register(app)
retry.register(app)
plan.register(app)
status.register(app)
run.register(app)
demo.register(app)
tasks.register(app)
actions.register(app)


def main() -> None:
    app()
