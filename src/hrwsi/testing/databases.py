"""Throw-away databases on a PostgreSQL server: a migrated template and fast copies of it.

Used by the test-suite and the benchmarks: ``HRWSI_TEST_DATABASE_URL`` names a server (any
database on it; we connect to it to create others), else an embedded server is started.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from hrwsi.config import Config
from hrwsi.db import connect, embedded, migrate, seed


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    return embedded.with_database(url, database)


def server_url(data_dir: Path | None = None) -> str:
    """A server to create test databases on: HRWSI_TEST_DATABASE_URL, else an embedded one."""
    explicit = os.environ.get("HRWSI_TEST_DATABASE_URL")
    if explicit:
        return explicit
    if data_dir is None:
        default = Path(tempfile.gettempdir()) / f"hrwsi-test-embedded-{os.getuid()}"
        data_dir = Path(os.environ.get("HRWSI_TEST_DATA_DIR", str(default)))
    return embedded.start(data_dir).admin_url  # stopped when the process exits


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def _migrate_and_seed(url: str, config: Config) -> None:
    conn = await connect.connect(url, autocommit=True)
    async with conn:
        await migrate.migrate(conn)
        await seed.seed(conn, config)


def create_migrated_database(admin_url: str, name: str, config: Config | None = None) -> str:
    """A new database with the hrwsi schema migrated and seeded from ``config``."""
    url = create_database(admin_url, name)
    asyncio.run(_migrate_and_seed(url, config or Config()))
    return url
