"""The services' heartbeat: one row per running process, fresh while it runs, gone on stop."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import psycopg

from hrwsi.db import heartbeat
from hrwsi.services.runner import Runner


async def _rows(conn: psycopg.AsyncConnection) -> list[tuple[object, ...]]:
    cur = await conn.execute(
        "SELECT process_id, pid, services, last_seen FROM hrwsi.service_heartbeat"
    )
    return await cur.fetchall()


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_runner_beats_while_running_and_forgets_on_stop(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Hooked into a runner: the row appears, last_seen moves on, and stop deletes it."""
    beat = heartbeat.Heartbeat(db_url, ["launcher"], interval_s=0.05)
    runner = Runner(db_url, [], heartbeat=beat.run)
    running = asyncio.create_task(runner.run())
    try:
        await _until(lambda: _rows_nonempty(conn))
        (first,) = await _rows(conn)
        assert first[0] == beat.process_id and first[1] == os.getpid()
        assert first[2] == ["launcher"]

        async def refreshed() -> bool:
            rows = await _rows(conn)
            return bool(rows) and rows[0][3] > first[3]

        await _until(refreshed)
        (seen,) = await heartbeat.seen(conn, "launcher")
        assert seen.alive(interval_s=0.05)
        assert await heartbeat.seen(conn, "harvester") == []
    finally:
        runner.stop()
        await asyncio.wait_for(running, 10)
    assert await _rows(conn) == []


async def _rows_nonempty(conn: psycopg.AsyncConnection) -> bool:
    return bool(await _rows(conn))


async def test_a_heartbeat_not_refreshed_goes_stale(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """A process that died without stopping is still listed, but no longer alive."""
    await conn.execute(
        "INSERT INTO hrwsi.service_heartbeat (process_id, host, pid, services, started_at,"
        " last_seen, version) VALUES ('h:1:1', 'h', 1, '{launcher}', now() - interval '1 hour',"
        " now() - interval '1 minute', 'x')"
    )
    (seen,) = await heartbeat.seen(conn, "launcher")
    assert seen.age_s >= 59
    assert not seen.alive()


async def test_a_database_outage_does_not_stop_the_heartbeat_loop(db_url: str) -> None:
    """Beats that fail (here: no such database) are logged; the loop still stops on request."""
    beat = heartbeat.Heartbeat(db_url + "_missing", ["launcher"], interval_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(beat.run(stop))
    await asyncio.sleep(0.1)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)
