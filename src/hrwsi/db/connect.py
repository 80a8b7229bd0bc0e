"""Which database hrwsi talks to, and how to open connections to it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import conninfo
from psycopg.rows import TupleRow

from hrwsi.config import DatabaseConfig
from hrwsi.db import embedded
from hrwsi.domain import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Database:
    """A resolved database: its URL (secret) and a description safe to print."""

    url: str
    description: str
    embedded_dir: str | None = None

    def __repr__(self) -> str:
        return f"Database({self.description})"


def describe(url: str) -> str:
    """A printable description of a connection URL: never the password."""
    if "://" not in url:
        try:
            params = {k: str(v) for k, v in conninfo.conninfo_to_dict(url).items()}
        except psycopg.Error:  # malformed: describe what can be read, never the password
            params = dict(p.split("=", 1) for p in url.split() if "=" in p)
        host = params.get("host") or "localhost"
        if params.get("port"):
            host = f"{host}:{params['port']}"
        user = params.get("user", "")
        return f"postgresql://{user + '@' if user else ''}{host}/{params.get('dbname', '')}"
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # a malformed port: still describe the rest
        port = None
    if port:
        host = f"{host}:{port}"
    query = parts.query
    socket = ""
    for item in query.split("&"):
        if item.startswith("host="):
            socket = item[len("host=") :]
    where = host or socket or "localhost"
    return f"postgresql://{user + '@' if user else ''}{where}{parts.path}"


def resolve(
    config: DatabaseConfig, *, keep_embedded_running: bool = False, database: str | None = None
) -> Database:
    """The configured database, or the embedded one (started if needed) when no URL is set.

    ``database`` names another database on the same server (``hrwsi --database hrwsi_demo``);
    it must exist already (only the default embedded database is created on demand).
    """
    if config.url is not None:
        url = config.url.get_secret_value()
        if database is not None:
            url = conninfo.make_conninfo(url, dbname=database)
        return Database(url=url, description=describe(url))
    server = embedded.start(config.data_dir, keep_running=keep_embedded_running)
    name = database or embedded.DATABASE_NAME
    if database is None:
        embedded.ensure_database(server.admin_url, name)
    url = server.url(name)
    return Database(
        url=url,
        description=f"embedded PostgreSQL in {server.data_dir} (database {name})",
        embedded_dir=str(server.data_dir),
    )


async def connect(
    url: str, *, autocommit: bool = False, timeout_s: float = 10.0, options: str | None = None
) -> psycopg.AsyncConnection[TupleRow]:
    """Open an async connection; failures become DatabaseError without the password.

    ``options`` are server settings for the session (libpq ``options``, e.g. ``-c jit=off``).
    """
    extra: dict[str, Any] = {} if options is None else {"options": options}
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=autocommit, connect_timeout=max(1, int(timeout_s)), **extra
        )
    except psycopg.OperationalError as exc:
        # libpq's connection errors name host, user and database, never the password.
        raise errors.DatabaseError(f"cannot connect to {describe(url)}: {exc}") from exc
    except psycopg.Error as exc:
        # A malformed connection string: libpq may quote it, password included.
        raise errors.DatabaseError(
            f"cannot connect to {describe(url)}: malformed connection string ({type(exc).__name__})"
        ) from None
