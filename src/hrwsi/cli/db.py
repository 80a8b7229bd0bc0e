"""``hrwsi db init`` / ``hrwsi db migrate``: create or upgrade the schema in place."""

from __future__ import annotations

import logging

import typer

from hrwsi.cli import common
from hrwsi.config import Config
from hrwsi.db import connect, migrate, seed

db_app = typer.Typer(
    help="Create or upgrade the hrwsi schema.", no_args_is_help=True, rich_markup_mode=None
)


async def _init(database: connect.Database, cfg: Config) -> tuple[migrate.MigrationReport, int]:
    conn = await connect.connect(database.url, autocommit=True)
    async with conn:
        report = await migrate.migrate(conn)
        changed = await seed.seed(conn, cfg)
    return report, changed


def _apply() -> None:
    cfg = common.load_config()
    if cfg.logging.level != "DEBUG":
        # The applied migrations are printed below: their log events would say it twice.
        logging.getLogger(migrate.__name__).setLevel(logging.WARNING)
    database = common.open_database(cfg, schema=False)
    report, seeded = common.run(_init(database, cfg))
    for m in report.applied:
        typer.echo(f"applied {m.version:04d}_{m.name}")
    if not report.changed and not seeded:
        typer.echo(f"schema up to date ({report.already} migrations applied); nothing changed")
    elif seeded:
        typer.echo(f"seeded {seeded} routine/condition/product type rows from the configuration")


@db_app.command("init")
def init() -> None:
    """Create the hrwsi schema (or bring it up to date) and seed routines and conditions."""
    _apply()


@db_app.command("migrate")
def migrate_command() -> None:
    """Upgrade the schema in place; an HR-WSI v1 database keeps all its data."""
    _apply()


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
