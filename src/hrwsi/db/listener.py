"""LISTEN on PostgreSQL channels from one dedicated autocommit connection.

A notification is a wake-up, never the truth: NOTIFY is lost while the connection is down, so
``on_connect`` (the reconcile callback) runs after every connect and reconnect, and the caller
keeps a safety timer. The listener:

- waits on ``notifies()`` with a timeout and probes the connection with ``SELECT 1`` when it has
  been quiet for ``probe_interval_s``, so a dead connection is noticed even without traffic;
- reconnects with exponential backoff and jitter when the connection breaks (server restart,
  ``pg_terminate_backend``, network);
- logs a callback that raises and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from hrwsi.db import connect

log = logging.getLogger(__name__)

NotifyCallback = Callable[[str, str], None]
ConnectCallback = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter between ``initial_s`` and ``max_s``."""

    initial_s: float = 0.05
    max_s: float = 5.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        ceiling = min(self.max_s, self.initial_s * self.factor ** max(failures - 1, 0))
        return random.uniform(ceiling / 2, ceiling)


class Listener:
    """Dispatch notifications of ``channels`` to ``on_notify`` until ``stop`` is set."""

    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        *,
        on_notify: NotifyCallback | None = None,
        on_connect: ConnectCallback | None = None,
        probe_interval_s: float = 30.0,
        backoff: Backoff | None = None,
        name: str = "listener",
    ) -> None:
        self._url = url
        self._channels = tuple(channels)
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._probe_interval_s = probe_interval_s
        self._backoff = backoff or Backoff()
        self._name = name
        self.connected = asyncio.Event()
        self.connections = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set, reconnecting as often as needed."""
        failures = 0
        while not stop.is_set():
            try:
                conn = await connect.connect(self._url, autocommit=True)
            except Exception as exc:
                failures += 1
                delay = self._backoff.delay(failures)
                log.warning(
                    "listener.connect_failed",
                    extra={"listener": self._name, "error": str(exc), "retry_in_s": delay},
                )
                await _sleep_or_stop(stop, delay)
                continue
            try:
                async with conn:
                    for channel in self._channels:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    failures = 0
                    self.connections += 1
                    self.connected.set()
                    log.debug(
                        "listener.connected",
                        extra={"listener": self._name, "channels": ",".join(self._channels)},
                    )
                    await self._call_on_connect()
                    await self._pump(conn, stop)
            except psycopg.Error as exc:
                failures += 1
                delay = self._backoff.delay(failures)
                log.warning(
                    "listener.disconnected",
                    extra={"listener": self._name, "error": str(exc), "retry_in_s": delay},
                )
                self.connected.clear()
                await _sleep_or_stop(stop, delay)
            finally:
                self.connected.clear()

    async def _pump(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], stop: asyncio.Event
    ) -> None:
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                received = asyncio.ensure_future(self._drain(conn))
                done, _ = await asyncio.wait(
                    {received, stop_wait}, return_when=asyncio.FIRST_COMPLETED
                )
                if received not in done:
                    received.cancel()
                    with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                        await received
                    return
                if not received.result():
                    await conn.execute("SELECT 1")  # quiet for a while: probe the connection
        finally:
            stop_wait.cancel()

    async def _drain(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> int:
        """Deliver notifications until the connection has been quiet for the probe interval."""
        count = 0
        async for notify in conn.notifies(timeout=self._probe_interval_s):
            count += 1
            if self._on_notify is None:
                continue
            try:
                self._on_notify(notify.channel, notify.payload)
            except Exception:
                log.exception("listener.callback_failed", extra={"listener": self._name})
        return count

    async def _call_on_connect(self) -> None:
        if self._on_connect is None:
            return
        try:
            await self._on_connect()
        except Exception:
            log.exception("listener.reconcile_failed", extra={"listener": self._name})


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
