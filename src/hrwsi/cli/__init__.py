"""The ``hrwsi`` command line: one Typer app; each command group lives in its own module."""

from __future__ import annotations

from pathlib import Path

import typer

from hrwsi import __version__
from hrwsi.cli import (
    actions,
    campaign,
    common,
    dashboard,
    db,
    demo,
    harvest,
    kpi,
    plan,
    retry,
    run,
    status,
    tasks,
)
from hrwsi.cli import config as config_command

app = typer.Typer(
    name="hrwsi",
    help="Event-driven production system for Earth observation (HR-WSI).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich panels print every flag as "<bool>".
    rich_markup_mode=None,
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
    config_file: Path | None = typer.Option(
        None,
        "--config",
        metavar="FILE",
        help="The TOML configuration file (wins over HRWSI_CONFIG and ./hrwsi.toml).",
    ),
    database: str | None = typer.Option(
        None,
        "--database",
        metavar="NAME",
        help="Use this database on the configured server (the embedded one by default) instead"
        " of the configured one; for example hrwsi_demo after 'hrwsi demo'.",
    ),
) -> None:
    """Event-driven production system for Earth observation (HR-WSI)."""
    common.options.config_path = config_file
    common.options.database = database


db.register(app)
config_command.register(app)
campaign.register(app)
kpi.register(app)
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
