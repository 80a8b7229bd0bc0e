"""What every command needs: the configuration, the database, clean errors and signals."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import psycopg
import typer
from rich.console import Console

from hrwsi import config as config_module
from hrwsi import logs
from hrwsi.db import connect, migrate
from hrwsi.domain import errors

T = TypeVar("T")
console = Console(stderr=True, soft_wrap=True)


@dataclass
class GlobalOptions:
    """``hrwsi --config FILE --database NAME COMMAND``: set once by the root callback."""

    config_path: Path | None = None
    database: str | None = None


options = GlobalOptions()


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_loaded() -> config_module.Loaded:
    """The validated configuration with its origins, or exit 2 naming file and keys."""
    try:
        loaded = config_module.load_with_origins(options.config_path)
    except errors.ConfigError as exc:
        fail(f"invalid configuration: {exc}")
    logs.configure(loaded.config.logging.level, loaded.config.logging.format)
    return loaded


def load_config() -> config_module.Config:
    """The validated configuration, or exit 2 with the file and key at fault."""
    return load_loaded().config


def open_database(
    cfg: config_module.Config, *, quiet: bool = False, schema: bool = True
) -> connect.Database:
    """Resolve the database (starting the embedded one if needed) and say which it is.

    With ``schema`` (every command but ``db init|migrate`` and the demo) a missing or out of
    date schema exits 2 with one line naming the fix, before the command reads anything.
    """
    _terminate_on_sigterm()
    try:
        database = connect.resolve(cfg.database, database=options.database)
    except errors.DatabaseError as exc:
        fail(str(exc))
    if not quiet:
        console.print(f"database: {database.description}", highlight=False)
    if schema:
        problem = run(_readiness(database.url))
        if problem is not None:
            fail(f"{database.description}: {problem}")
    return database


async def _readiness(url: str) -> str | None:
    conn = await connect.connect(url, autocommit=True)
    async with conn:
        try:
            return await migrate.readiness(conn)
        except psycopg.Error as exc:
            raise errors.DatabaseError(
                f"cannot read the schema version: {exc.diag.message_primary or type(exc).__name__}"
            ) from exc


# A statement naming a table, column or function the schema lacks: it is older than the code.
_SCHEMA_MISMATCH = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.InvalidSchemaName,
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; hrwsi errors become a clean message and exit code 1.

    PostgreSQL errors that escaped translation never print a traceback or SQL: a schema
    mismatch says to run 'hrwsi db migrate' (exit 2), others give their primary message.
    """
    try:
        return asyncio.run(coro)
    except errors.HrwsiError as exc:
        cause = exc.__cause__
        if isinstance(cause, _SCHEMA_MISMATCH):
            fail(_mismatch(cause))
        message = str(exc)
        if isinstance(exc, errors.DatabaseError):  # libpq appends the statement: not for people
            message = message.split("\n", 1)[0]
        fail(message, code=1)
    except _SCHEMA_MISMATCH as exc:
        fail(_mismatch(exc))
    except psycopg.Error as exc:
        fail(f"database error: {exc.diag.message_primary or type(exc).__name__}", code=1)


def _mismatch(exc: psycopg.Error) -> str:
    return (
        f"the database schema does not match this version of hrwsi "
        f"({exc.diag.message_primary or type(exc).__name__}): run 'hrwsi db migrate'"
    )


def _terminate_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so atexit handlers (the embedded server stop) run."""

    def _exit(signum: int, frame: object) -> None:
        sys.exit(128 + signum)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit)
