"""The dashboard holds one database connection however many requests arrive at once."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from hrwsi.web.dashboard import create_app


async def _backends(conn: psycopg.AsyncConnection) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_burst_of_first_requests_opens_one_connection(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Eight simultaneous first requests share one connection, closed at shutdown (before:
    each opened its own and all but one were left open, unreferenced)."""
    app = create_app(db_url)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        before = await _backends(conn)
        replies = await asyncio.gather(
            *(client.get("/healthz" if i % 2 else "/api/status") for i in range(8))
        )
        assert [r.status_code for r in replies] == [200] * 8
        assert await _backends(conn) == before + 1
    for _ in range(100):
        if await _backends(conn) == before:
            break
        await asyncio.sleep(0.02)
    assert await _backends(conn) == before


async def test_a_broken_connection_is_closed_and_replaced(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """After the dashboard's backend is killed, one request answers 503, the next reconnects."""
    app = create_app(db_url)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        before = await _backends(conn)
        assert (await client.get("/healthz")).status_code == 200
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert (await client.get("/healthz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200
        assert await _backends(conn) == before + 1
