"""``hrwsi config show`` / ``hrwsi config check``: the effective configuration, and its check.

``show`` prints every setting with its value and where it came from (``default``, ``file
PATH`` or ``variable HRWSI_...``); secrets (database URL, Nomad and dashboard tokens) are
masked. ``check`` validates the file and the variables together, as every command does at
start, and exits 0 when they hold, 2 with every problem listed when they do not.
"""

from __future__ import annotations

import json

import typer

from hrwsi import config as config_module
from hrwsi.cli import common

config_app = typer.Typer(
    help="Show or check the effective configuration.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _source(loaded: config_module.Loaded) -> str:
    return str(loaded.path) if loaded.path is not None else "no file (defaults and variables)"


@config_app.command("show")
def show(
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object: {key: {value, origin}} for machines."
    ),
) -> None:
    """Print every setting, its value (secrets masked) and where it came from."""
    loaded = common.load_loaded()
    rows = config_module.describe_sources(loaded)
    if as_json:
        typer.echo(
            json.dumps({key: {"value": value, "origin": origin} for key, value, origin in rows})
        )
        return
    typer.echo(f"# configuration file: {_source(loaded)}")
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        typer.echo(f"{key:<{width}} = {value}  # {origin}")


@config_app.command("check")
def check() -> None:
    """Validate the file and the HRWSI_* variables together; exit 2 listing every problem."""
    loaded = common.load_loaded()
    cfg = loaded.config
    typer.echo(
        f"configuration OK ({_source(loaded)}): {len(cfg.routines)} routines, "
        f"{len(cfg.processing_conditions)} processing conditions, "
        f"{len(cfg.harvester.queries)} harvest queries, executor {cfg.executor.kind}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
