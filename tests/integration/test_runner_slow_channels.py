"""The runner's slow channels: a stream of hints costs a few passes, other channels stay fast."""

from __future__ import annotations

import asyncio
import time

import psycopg

from hrwsi.services.runner import Runner


class HintedService:
    """Woken by 'hrwsi_test_fast' at once and by 'hrwsi_test_hint' (slow) in coalesced batches."""

    name = "hinted"
    channels = ("hrwsi_test_fast", "hrwsi_test_hint")
    slow_channels = ("hrwsi_test_hint",)
    interval_s = 3600.0

    def __init__(self) -> None:
        self.pass_times: list[float] = []
        self.passed = asyncio.Event()

    async def reconcile(self) -> None:
        self.pass_times.append(time.monotonic())
        self.passed.set()

    async def background(self, stop: asyncio.Event) -> None:
        return

    async def aclose(self) -> None:
        return


async def _next_pass(service: HintedService) -> float:
    service.passed.clear()
    await asyncio.wait_for(service.passed.wait(), 5)
    return service.pass_times[-1]


async def test_slow_channel_hints_are_coalesced_and_fast_channels_are_not(db_url: str) -> None:
    """50 hints in a burst give one or two passes after the slow window; a fast one is prompt."""
    service = HintedService()
    runner = Runner(db_url, [service], coalesce_s=0.001, slow_coalesce_s=0.3)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.listeners["hinted"].connected.wait(), 5)
        await _next_pass(service)  # the pass at start
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            before = len(service.pass_times)
            sent = time.monotonic()
            for _ in range(50):
                await conn.execute("SELECT pg_notify('hrwsi_test_hint', '')")
            first = await _next_pass(service)
            assert first - sent >= 0.25  # waited for the slow window
            await asyncio.sleep(0.5)
            assert len(service.pass_times) - before <= 2
            sent = time.monotonic()
            await conn.execute("SELECT pg_notify('hrwsi_test_fast', '')")
            assert await _next_pass(service) - sent < 0.25
        assert runner.stats["hinted"].wakeups == 51
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)
