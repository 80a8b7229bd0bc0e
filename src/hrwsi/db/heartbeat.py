"""The services' heartbeat: each ``hrwsi run`` process says it is alive, and who else is.

A :class:`Heartbeat` upserts one row of ``hrwsi.service_heartbeat`` every ``interval_s``
seconds while its runner runs and deletes it on a graceful stop. A row not refreshed for
``STALE_AFTER_INTERVALS`` intervals belongs to a process that died without stopping.
:func:`seen` reads who runs a service, for commands that must say what will happen next
(``hrwsi retry``: is a launcher there to dispatch the task again?).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow

from hrwsi import __version__
from hrwsi.db import connect, queries
from hrwsi.domain import errors

log = logging.getLogger(__name__)

INTERVAL_S = 5.0
STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class Seen:
    """One process that ran a service, as its heartbeat row says."""

    process_id: str
    host: str
    pid: int
    services: tuple[str, ...]
    started_at: datetime
    last_seen: datetime
    version: str
    age_s: float

    def alive(self, interval_s: float = INTERVAL_S) -> bool:
        return self.age_s <= interval_s * STALE_AFTER_INTERVALS


class Heartbeat:
    """Keeps this process's heartbeat row fresh while :meth:`run` runs."""

    def __init__(
        self, db_url: str, services: Sequence[str], *, interval_s: float = INTERVAL_S
    ) -> None:
        self._db_url = db_url
        self._interval_s = interval_s
        self.started_at = datetime.now(UTC)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.process_id = f"{self.host}:{self.pid}:{int(self.started_at.timestamp())}"
        self._params = {
            "process_id": self.process_id,
            "host": self.host,
            "pid": self.pid,
            "services": list(services),
            "started_at": self.started_at,
            "version": __version__,
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every interval until ``stop``, then remove the row. A failed beat is logged
        and tried again next interval: the heartbeat never stops the services."""
        conn: psycopg.AsyncConnection[TupleRow] | None = None
        try:
            while not stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = await connect.connect(self._db_url, autocommit=True)
                    await conn.execute(queries.get("heartbeat_beat"), self._params)
                except (psycopg.Error, errors.DatabaseError) as exc:
                    log.warning("heartbeat.beat_failed", extra={"error": str(exc)})
                    await _closed(conn)
                    conn = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._interval_s)
            if conn is not None and not conn.closed:
                await conn.execute(queries.get("heartbeat_forget"), self._params)
        except (psycopg.Error, errors.DatabaseError) as exc:
            log.warning("heartbeat.forget_failed", extra={"error": str(exc)})
        finally:
            await _closed(conn)


async def _closed(conn: psycopg.AsyncConnection[TupleRow] | None) -> None:
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            await conn.close()


async def seen(conn: psycopg.AsyncConnection[TupleRow], service: str) -> list[Seen]:
    """Every process whose heartbeat names ``service``, freshest first (stale ones too)."""
    cur = await conn.execute(queries.get("heartbeat_seen"), {"service": service})
    return [
        Seen(str(r[0]), str(r[1]), int(r[2]), tuple(r[3]), r[4], r[5], str(r[6]), float(r[7]))
        for r in await cur.fetchall()
    ]
