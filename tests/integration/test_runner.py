"""The runner: wake-ups reach reconcile, bursts coalesce, crashes restart, stop is clean."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
import pytest

from hrwsi.db.listener import Backoff
from hrwsi.services.runner import Runner


class CountingService:
    """A service whose reconcile counts rows of a table and can be told to crash."""

    def __init__(self, url: str, *, crash_first: int = 0, background_crashes: int = 0) -> None:
        self.name = "counting"
        self.channels = ("input_insertion",)
        self.interval_s = 3600.0
        self.url = url
        self.passes = 0
        self.crash_first = crash_first
        self.background_crashes = background_crashes
        self.background_runs = 0
        self.closed = False
        self.seen = 0
        self.changed = asyncio.Event()

    async def reconcile(self) -> None:
        self.passes += 1
        if self.passes <= self.crash_first:
            raise RuntimeError(f"crash {self.passes}")
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cur = await conn.execute("SELECT count(*) FROM hrwsi.input")
            row = await cur.fetchone()
            assert row is not None
            self.seen = int(row[0])
        self.changed.set()

    async def background(self, stop: asyncio.Event) -> None:
        self.background_runs += 1
        if self.background_runs <= self.background_crashes:
            raise RuntimeError("background crash")
        await stop.wait()

    async def aclose(self) -> None:
        self.closed = True

    async def wait_seen(self, n: int) -> None:
        async def _until() -> None:
            while self.seen < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_until(), 5)


async def _insert_inputs(url: str, count: int, *, one_by_one: bool) -> None:
    sql = (
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) SELECT 'MAJA_PC', now(), '31TCH', 20240102,"
        " '/p/' || g || '/' || %s, 'S2' FROM generate_series(1, %s) AS g"
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        if one_by_one:
            for i in range(count):
                await conn.execute(sql, (f"single-{i}", 1))
        else:
            await conn.execute(sql, ("burst", count))


@contextlib.asynccontextmanager
async def _running(runner: Runner):
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)


async def test_notification_wakes_reconcile(db_url: str) -> None:
    """An input insert commits, the trigger notifies, and reconcile sees the row within 1 s."""
    service = CountingService(db_url)
    runner = Runner(db_url, [service])
    async with _running(runner):
        await asyncio.wait_for(runner.listeners["counting"].connected.wait(), 5)
        await service.wait_seen(0)
        await _insert_inputs(db_url, 1, one_by_one=True)
        await service.wait_seen(1)
    assert service.closed


async def test_burst_is_coalesced(db_url: str) -> None:
    """100 inserts committed back to back cost far fewer passes than notifications."""
    service = CountingService(db_url)
    runner = Runner(db_url, [service], coalesce_s=0.05)
    async with _running(runner):
        await asyncio.wait_for(runner.listeners["counting"].connected.wait(), 5)
        await service.wait_seen(0)
        before = service.passes
        await _insert_inputs(db_url, 100, one_by_one=True)
        await service.wait_seen(100)
        await asyncio.sleep(0.2)
        passes = service.passes - before
    assert runner.stats["counting"].wakeups >= 50
    assert passes < 50


async def test_crashing_reconcile_and_background_are_restarted(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A reconcile that raises twice and a background loop that crashes are restarted."""
    caplog.set_level(logging.ERROR, logger="hrwsi")
    service = CountingService(db_url, crash_first=2, background_crashes=1)
    runner = Runner(db_url, [service], backoff=Backoff(initial_s=0.01, max_s=0.02))
    async with _running(runner):
        await _insert_inputs(db_url, 3, one_by_one=False)
        await service.wait_seen(3)
        for _ in range(100):
            if service.background_runs >= 2:
                break
            await asyncio.sleep(0.01)
    assert service.background_runs == 2
    assert runner.stats["counting"].restarts >= 3
    assert sum(r.getMessage() == "runner.loop_crashed" for r in caplog.records) >= 3


async def test_lost_notification_is_recovered_by_the_timer(db_url: str) -> None:
    """With no notification at all (a channel nobody fires), the safety timer still reconciles."""
    service = CountingService(db_url)
    service.channels = ("nobody_notifies_this",)
    service.interval_s = 0.2
    runner = Runner(db_url, [service])
    async with _running(runner):
        await service.wait_seen(0)
        await _insert_inputs(db_url, 2, one_by_one=False)
        await service.wait_seen(2)


async def test_backoff_starts_over_after_a_healthy_run(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A loop that crashes after running healthily is restarted quickly and logged in full."""
    from hrwsi.services import runner as runner_module

    monkeypatch.setattr(runner_module, "HEALTHY_RUN_S", 0.05)
    caplog.set_level(logging.ERROR, logger="hrwsi")
    service = CountingService(db_url)
    runs = 0

    async def crash_after_a_while(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs <= 4:
            await asyncio.sleep(0.1)  # healthy for longer than HEALTHY_RUN_S
            raise RuntimeError(f"crash {runs}")
        await stop.wait()

    service.background = crash_after_a_while  # type: ignore[method-assign]
    runner = Runner(db_url, [service], backoff=Backoff(initial_s=0.01, max_s=30.0))
    async with _running(runner):
        for _ in range(300):
            if runs >= 5:
                break
            await asyncio.sleep(0.01)
    assert runs == 5  # without the reset, the 4th restart would wait seconds, not ~10 ms
    crashes = [r for r in caplog.records if r.getMessage() == "runner.loop_crashed"]
    assert len(crashes) == 4
    assert all(r.exc_info for r in crashes)  # each is a first crash: logged with its traceback
