"""One lazily opened database connection, shared by a store's operations and reopened after
it breaks: the one connection-holding helper of every service (launcher, orchestrator,
harvester, dashboard).

Connections are opened through :func:`hrwsi.db.connect.connect` only, so a connection error
never carries the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import LiteralString

import psycopg
from psycopg.rows import TupleRow

from hrwsi.db import connect
from hrwsi.domain import errors

log = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[TupleRow]


class ConnectionHolder:
    """An autocommit connection opened on first use and kept; :meth:`drop` forgets it (the next
    :meth:`get` opens a fresh one). ``setup`` runs once on every new connection (session
    settings); ``options`` are libpq options (e.g. ``-c jit=off``)."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        timeout_s: float = 10.0,
        options: str | None = None,
        setup: LiteralString | None = None,
    ) -> None:
        self._url = url
        self.name = name
        self._timeout_s = timeout_s
        self._options = options
        self._setup = setup
        self._conn: Connection | None = None
        # The first callers of a burst open one connection between them, not one each.
        self._opening = asyncio.Lock()

    @property
    def url(self) -> str:
        return self._url

    def current(self) -> Connection | None:
        """The open connection, if any (without opening one)."""
        conn = self._conn
        return conn if conn is not None and not conn.closed and not conn.broken else None

    async def get(self) -> Connection:
        """The connection, opened (and set up) if there is none or it broke."""
        conn = self.current()
        if conn is not None:
            return conn
        async with self._opening:
            conn = self.current()
            if conn is not None:
                return conn
            await self.drop()
            conn = await connect.connect(
                self._url, autocommit=True, timeout_s=self._timeout_s, options=self._options
            )
            if self._setup is not None:
                try:
                    await conn.execute(self._setup)
                except psycopg.Error as exc:
                    await conn.close()
                    raise errors.DatabaseError(f"{self.name} session setup failed: {exc}") from exc
            self._conn = conn
            return conn

    async def drop(self) -> None:
        """Close and forget the connection (after an error left it in an unknown state)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def aclose(self) -> None:
        await self.drop()
