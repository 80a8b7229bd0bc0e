"""One LISTEN connection per console process, fanned out to every open page.

:class:`Hub` runs one :class:`hrwsi.db.listener.Listener` on the channels that mean "something
changed". Notifications are coalesced for ``coalesce_s`` seconds; then the overview snapshot
is computed once (through the shared cache) and one batch is put on every subscriber's queue,
so a thousand open tabs cost one listener, one snapshot per burst and no polling. A slow
subscriber whose queue is full misses batches (each batch carries the whole overview, so the
next one catches it up); it never slows the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hrwsi.db.listener import Listener

log = logging.getLogger(__name__)

CHANNELS = (
    "input_insertion",
    "processing_task_insertion",
    "processing_tasks_state_processed",
    "processing_task_ended",
    "product_insertion",
    "task_cancelled",
)


class Hub:
    def __init__(
        self,
        db_url: str,
        snapshot: Callable[[], Awaitable[dict[str, Any]]],
        *,
        coalesce_s: float = 0.25,
        queue_size: int = 16,
    ) -> None:
        self._db_url = db_url
        self._snapshot = snapshot
        self._coalesce_s = coalesce_s
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._pending: list[tuple[str, str]] = []
        self._flush: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self.listener: Listener | None = None
        self.batches = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        self.listener = Listener(
            self._db_url,
            CHANNELS,
            on_notify=self._on_notify,
            on_connect=self._on_connect,
            name="console.listener",
        )
        self._runner = asyncio.create_task(self.listener.run(self._stop), name="console.listener")

    async def aclose(self) -> None:
        self._stop.set()  # the listener leaves its wait and closes its connection
        if self._runner is not None:
            done, _ = await asyncio.wait({self._runner}, timeout=5)
            if not done:
                self._runner.cancel()
        if self._flush is not None:
            self._flush.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flush

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def _on_notify(self, channel: str, payload: str) -> None:
        self._pending.append((channel, payload[:200]))
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._publish())

    async def _on_connect(self) -> None:
        # Notifications may have been lost while disconnected: every page refreshes.
        self._on_notify("reconnect", "")

    async def _publish(self) -> None:
        try:
            await asyncio.sleep(self._coalesce_s)
            events, self._pending = self._pending[:200], []
            try:
                overview: dict[str, Any] | None = await self._snapshot()
            except Exception as exc:  # the page keeps its last figures
                log.warning("console.snapshot_failed", extra={"error": repr(exc)})
                overview = None
            batch = {
                "channels": sorted({c for c, _ in events}),
                "events": [{"channel": c, "payload": p} for c, p in events],
                "overview": overview,
            }
            self.batches += 1
            for queue in list(self._subscribers):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(batch)
        finally:
            self._flush = None
            if self._pending and not self._stop.is_set():
                self._flush = asyncio.get_running_loop().create_task(self._publish())
