"""Host services in one asyncio process: listen, coalesce wake-ups, reconcile, supervise.

For each service the runner keeps three loops:

- a :class:`~hrwsi.db.listener.Listener` on the service's channels, whose notifications and
  (re)connects set a wake-up event. A service may name some of its channels in an optional
  ``slow_channels`` attribute: a notification there wakes it at most ``slow_coalesce_s``
  later, all of them in that window together (a hint such as "capacity was freed", which
  may arrive hundreds of times a second and needs no millisecond reaction);
- the reconcile loop: wait for the wake-up, the service's safety timer or stop; let a burst
  settle for ``coalesce_s``; run ``reconcile()`` once for the whole burst;
- the service's ``background()`` work.

A loop that crashes is logged and restarted with backoff; it never takes the process down.
Stopping sets one event: loops finish the step they are in (a reconcile pass is one
transaction per state change, so nothing is left half-written) and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hrwsi.db.listener import Backoff, Listener
from hrwsi.services.base import Service
from hrwsi.web import metrics as console_metrics

log = logging.getLogger(__name__)

# A loop that ran this long before crashing is restarted as if it had never crashed.
HEALTHY_RUN_S = 60.0


@dataclass
class ServiceStats:
    """What the runner observed of one service (read by status views and tests)."""

    passes: int = 0
    failures: int = 0
    restarts: int = 0
    last_pass_s: float = 0.0
    wakeups: int = 0


@dataclass
class _Hosted:
    service: Service
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stats: ServiceStats = field(default_factory=ServiceStats)
    slow_wake: asyncio.TimerHandle | None = None


class Runner:
    """Run ``services`` against the database at ``db_url`` until :meth:`stop` is called."""

    def __init__(
        self,
        db_url: str,
        services: Sequence[Service],
        *,
        coalesce_s: float = 0.005,
        slow_coalesce_s: float = 0.1,
        probe_interval_s: float = 30.0,
        backoff: Backoff | None = None,
        heartbeat: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._db_url = db_url
        self._heartbeat = heartbeat  # runs beside the services until stop (hrwsi.db.heartbeat)
        self._hosted = [_Hosted(s) for s in services]
        self._coalesce_s = coalesce_s
        self._slow_coalesce_s = slow_coalesce_s
        self._probe_interval_s = probe_interval_s
        self._backoff = backoff or Backoff(initial_s=0.2, max_s=30.0)
        self._stop = asyncio.Event()
        self.listeners: dict[str, Listener] = {
            h.service.name: Listener(
                db_url,
                h.service.channels,
                on_notify=self._notify_callback(h),
                on_connect=self._connect_callback(h),
                probe_interval_s=probe_interval_s,
                name=h.service.name,
            )
            for h in self._hosted
        }

    @property
    def stats(self) -> dict[str, ServiceStats]:
        return {h.service.name: h.stats for h in self._hosted}

    def stop(self) -> None:
        self._stop.set()

    def wake(self, name: str | None = None) -> None:
        """Ask one service (or all) for a pass now."""
        for hosted in self._hosted:
            if name is None or hosted.service.name == name:
                hosted.wake.set()

    async def run(self) -> None:
        """Run until stopped, then close every service."""
        loops: list[asyncio.Task[None]] = []
        if self._heartbeat is not None:
            loops.append(asyncio.create_task(self._heartbeat(self._stop), name="heartbeat"))
        for hosted in self._hosted:
            name = hosted.service.name
            listener = self.listeners[name]
            loops.append(asyncio.create_task(listener.run(self._stop), name=f"{name}.listener"))
            loops.append(
                asyncio.create_task(
                    self._supervise(f"{name}.reconcile", hosted, partial(self._loop, hosted)),
                    name=f"{name}.reconcile",
                )
            )
            loops.append(
                asyncio.create_task(
                    self._supervise(
                        f"{name}.background",
                        hosted,
                        partial(hosted.service.background, self._stop),
                    ),
                    name=f"{name}.background",
                )
            )
            log.info("runner.service_started", extra={"service": name})
        try:
            await self._stop.wait()
        finally:
            self._stop.set()
            await asyncio.gather(*loops, return_exceptions=True)
            for hosted in self._hosted:
                if hosted.slow_wake is not None:
                    hosted.slow_wake.cancel()
                try:
                    await hosted.service.aclose()
                except Exception:
                    log.exception("runner.close_failed", extra={"service": hosted.service.name})
                log.info("runner.service_stopped", extra={"service": hosted.service.name})

    def _notify_callback(self, hosted: _Hosted) -> Callable[[str, str], None]:
        slow = frozenset(getattr(hosted.service, "slow_channels", ()))

        def wake_now() -> None:
            hosted.slow_wake = None
            hosted.wake.set()

        def on_notify(channel: str, payload: str) -> None:
            hosted.stats.wakeups += 1
            console_metrics.metrics.notified(hosted.service.name)
            if channel not in slow:
                hosted.wake.set()
            elif hosted.slow_wake is None and not hosted.wake.is_set():
                loop = asyncio.get_running_loop()
                hosted.slow_wake = loop.call_later(self._slow_coalesce_s, wake_now)

        return on_notify

    def _connect_callback(self, hosted: _Hosted) -> Callable[[], Awaitable[None]]:
        async def on_connect() -> None:
            hosted.wake.set()  # notifications may have been lost while disconnected

        return on_connect

    async def _loop(self, hosted: _Hosted) -> None:
        service = hosted.service
        hosted.wake.set()  # a pass at start
        while not self._stop.is_set():
            await _wait_any(hosted.wake, self._stop, service.interval_s)
            if self._stop.is_set():
                return
            if self._coalesce_s > 0:
                await asyncio.sleep(self._coalesce_s)  # let a burst of commits land
            hosted.wake.clear()
            console_metrics.metrics.acting(service.name)
            started = time.perf_counter()
            await service.reconcile()
            hosted.stats.passes += 1
            hosted.stats.last_pass_s = time.perf_counter() - started

    async def _supervise(
        self, what: str, hosted: _Hosted, factory: Callable[[], Awaitable[None]]
    ) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started >= HEALTHY_RUN_S:
                    failures = 0  # it ran fine for a while: a fresh crash, short backoff
                failures += 1
                hosted.stats.failures += 1
                hosted.stats.restarts += 1
                delay = self._backoff.delay(failures)
                log.error(
                    "runner.loop_crashed",
                    extra={"loop": what, "error": repr(exc), "restart_in_s": round(delay, 3)},
                    exc_info=exc if failures == 1 else None,
                )
                await _wait_any(asyncio.Event(), self._stop, delay)


async def _wait_any(event: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
    waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)
