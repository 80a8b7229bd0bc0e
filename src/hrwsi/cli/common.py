"""What every command needs: the configuration, the database, clean errors and signals."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from hrwsi import config as config_module
from hrwsi import logs
from hrwsi.db import connect
from hrwsi.domain import errors

T = TypeVar("T")
console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_config() -> config_module.Config:
    """The validated configuration, or exit 2 with the file and key at fault."""
    try:
        cfg = config_module.load()
    except errors.ConfigError as exc:
        fail(f"invalid configuration: {exc}")
    logs.configure(cfg.logging.level, cfg.logging.format)
    return cfg


def open_database(cfg: config_module.Config, *, quiet: bool = False) -> connect.Database:
    """Resolve the database (starting the embedded one if needed) and say which it is."""
    _terminate_on_sigterm()
    try:
        database = connect.resolve(cfg.database)
    except errors.DatabaseError as exc:
        fail(str(exc))
    if not quiet:
        console.print(f"database: {database.description}", highlight=False)
    return database


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; hrwsi errors become a clean message and exit code 1."""
    try:
        return asyncio.run(coro)
    except errors.HrwsiError as exc:
        fail(str(exc), code=1)


def _terminate_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so atexit handlers (the embedded server stop) run."""

    def _exit(signum: int, frame: object) -> None:
        sys.exit(128 + signum)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit)
