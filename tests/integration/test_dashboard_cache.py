"""Every tab polls /api/status: the dashboard computes one snapshot per window for all of them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg

from hrwsi.web import dashboard


class CountingSnapshot:
    """The real snapshot, counted; each computation waits for ``gate`` before querying."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()

    async def __call__(self, conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        self.calls += 1
        await self.gate.wait()
        return await dashboard.snapshot(conn)


async def _add_inputs(conn: psycopg.AsyncConnection, prefix: str, n: int) -> None:
    await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) SELECT 'MAJA_PC', now(), '31TCH', 20240102, %s || g, 'S2'"
        " FROM generate_series(1, %s) AS g",
        (prefix, n),
    )


def _inputs(body: dict[str, Any]) -> int:
    return sum(c["inputs"] for c in body["conditions"])


async def test_concurrent_requests_share_one_snapshot_per_window(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Eight requests arriving while a snapshot is computed get that one snapshot (one database
    computation); requests within cache_s reuse it; the first after cache_s takes a new one."""
    await _add_inputs(conn, "/a/", 3)
    now = [100.0]
    counting = CountingSnapshot()
    app = dashboard.create_app(db_url, cache_s=2.0, take_snapshot=counting, clock=lambda: now[0])
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        burst = [asyncio.create_task(client.get("/api/status")) for _ in range(8)]
        for _ in range(200):  # until the first request is computing and the rest wait
            if counting.calls:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        counting.gate.set()
        replies = await asyncio.gather(*burst)
        assert [r.status_code for r in replies] == [200] * 8
        assert counting.calls == 1
        first = replies[0].json()
        assert all(r.json() == first for r in replies)
        assert _inputs(first) == 3

        # Within the window: new rows are not seen, nothing is computed.
        await _add_inputs(conn, "/b/", 4)
        now[0] += 1.9
        assert (await client.get("/api/status")).json() == first
        assert counting.calls == 1

        # After it: one new snapshot, which sees them.
        now[0] += 0.2
        later = (await client.get("/api/status")).json()
        assert counting.calls == 2
        assert _inputs(later) == 7
        assert later["time"] != first["time"]
        assert (await client.get("/api/status")).json() == later
        assert counting.calls == 2


async def test_a_failed_snapshot_is_not_served_again(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """A snapshot that failed on a dead connection answers 503 once; the next request
    reconnects and computes, cache window or not."""
    counting = CountingSnapshot()
    counting.gate.set()
    app = dashboard.create_app(db_url, cache_s=60.0, take_snapshot=counting)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        assert (await client.get("/healthz")).status_code == 200  # opens the connection
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert (await client.get("/api/status")).status_code == 503
        reply = await client.get("/api/status")
        assert reply.status_code == 200
        assert counting.calls == 2
        assert (await client.get("/api/status")).json() == reply.json()
        assert counting.calls == 2
