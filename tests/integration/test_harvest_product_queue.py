"""Products → inputs through the product queue (migration 0050): O(new products) per pass,
exactly once under concurrency and across commits that race a pass."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import psycopg
import pytest

from hrwsi.catalogue import products_source
from hrwsi.config import Config, HarvesterConfig
from hrwsi.db import migrate, queries
from hrwsi.services import harvester


async def _source_input(conn: psycopg.AsyncConnection) -> int:
    cursor = await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) VALUES ('MAJA_PC', '2025-03-01 10:20:21', '31TCH', 20250301,"
        " '/eodata/l1c', 'S2') RETURNING id"
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def _add_l2a(conn: psycopg.AsyncConnection, source: int, first: int, count: int) -> None:
    """``count`` L2A products /products/L2A_<n> (n from ``first``) in one statement."""
    await conn.execute(
        "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date, catalogued_date,"
        " product_type_id) SELECT %s, '/products/L2A_' || g, now(), now(),"
        " (SELECT id FROM hrwsi.product_type WHERE code = 'S2_MAJA_L2A')"
        " FROM generate_series(%s::int, %s::int) AS g",
        (source, first, first + count - 1),
    )


async def _fsc_paths(conn: psycopg.AsyncConnection) -> list[str]:
    cursor = await conn.execute(
        "SELECT input_path FROM hrwsi.input WHERE processing_condition_name = 'FSC_PC'"
        " ORDER BY input_path"
    )
    return [r[0] for r in await cursor.fetchall()]


async def _queued(conn: psycopg.AsyncConnection) -> int:
    cursor = await conn.execute("SELECT count(*) FROM hrwsi.harvester_product_queue")
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _config(batch_size: int = 1000) -> Config:
    return Config(harvester=HarvesterConfig(batch_size=batch_size))


async def test_a_routine_pass_reads_only_the_queued_products(
    conn: psycopg.AsyncConnection,
) -> None:
    """With 3000 products already handled, a pass over one new product reads one product row
    (index lookups), not the whole products table."""
    source = await _source_input(conn)
    await _add_l2a(conn, source, 1, 3000)
    assert await products_source.queued_products_to_inputs(conn, 5000) == (3000, 3000)
    await _add_l2a(conn, source, 3001, 1)
    await conn.execute("ANALYZE hrwsi.products")
    await conn.execute("ANALYZE hrwsi.input")
    async with conn.transaction(force_rollback=True):
        cursor = await conn.execute(queries.get("harvester_claim_queued_products"), {"limit": 1000})
        ids = [r[0] for r in await cursor.fetchall()]
        assert len(ids) == 1
        cursor = await conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + queries.get("harvester_queued_products_to_inputs"),
            {"ids": ids},
        )
        row = await cursor.fetchone()
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])

    def product_rows(node: dict[str, Any]) -> int:
        read = 0
        if node.get("Relation Name") == "products":
            read += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node[
                "Actual Loops"
            ]
        return read + sum(product_rows(child) for child in node.get("Plans", []))

    assert product_rows(plan[0]["Plan"]) <= 1


async def test_two_harvesters_at_once_create_each_input_once(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """Three services (replicas) draining the queue concurrently in small batches while
    products keep arriving make every FSC input exactly once and leave the queue empty."""
    source = await _source_input(conn)
    services = [harvester.HarvesterService(_config(batch_size=7), db_url) for _ in range(3)]
    try:
        for service in services:
            await service.reconcile()  # first passes: the sweeps are done, the queue remains
        for round_ in range(4):
            await _add_l2a(conn, source, round_ * 50 + 1, 50)
            await asyncio.gather(*(s.reconcile() for s in services))
    finally:
        for service in services:
            await service.aclose()
    paths = await _fsc_paths(conn)
    assert len(paths) == len(set(paths)) == 200
    assert await _queued(conn) == 0


async def test_a_product_committed_while_a_pass_runs_is_not_lost(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """A product inserted before a pass but committed after it (an older id than products the
    pass did handle) becomes an input on the next routine pass, without waiting for a sweep."""
    source = await _source_input(conn)
    service = harvester.HarvesterService(_config(), db_url)
    service.sweep_interval_s = 3600.0
    try:
        await service.reconcile()
        async with await psycopg.AsyncConnection.connect(db_url) as slow:
            await _add_l2a(slow, source, 1, 1)  # uncommitted, the lower id
            await _add_l2a(conn, source, 2, 1)  # committed, the higher id
            await service.reconcile()
            assert await _fsc_paths(conn) == ["/products/L2A_2"]
            await slow.commit()
        await service.reconcile()
    finally:
        await service.aclose()
    assert await _fsc_paths(conn) == ["/products/L2A_1", "/products/L2A_2"]


async def test_a_rolled_back_pass_puts_its_products_back(
    conn: psycopg.AsyncConnection,
) -> None:
    """Ids claimed by a pass whose transaction fails stay queued; the next pass makes them."""
    source = await _source_input(conn)
    await _add_l2a(conn, source, 1, 3)
    async with conn.transaction(force_rollback=True):
        await conn.execute(queries.get("harvester_claim_queued_products"), {"limit": 10})
        assert await _queued(conn) == 0
    assert await _queued(conn) == 3
    assert await products_source.queued_products_to_inputs(conn, 10) == (3, 3)
    assert await _queued(conn) == 0


async def test_the_sweep_catches_what_the_queue_lost(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """A product whose queue row was deleted is made an input by the first pass's sweep;
    re-running the migration (idempotent) queues exactly the products still lacking inputs."""
    source = await _source_input(conn)
    await _add_l2a(conn, source, 1, 2)
    await conn.execute("DELETE FROM hrwsi.harvester_product_queue")
    (migration,) = [m for m in migrate.available() if m.version == 50]
    await conn.execute(migration.sql)
    assert await _queued(conn) == 2
    await conn.execute("DELETE FROM hrwsi.harvester_product_queue")
    service = harvester.HarvesterService(_config(), db_url)
    try:
        await service.reconcile()
    finally:
        await service.aclose()
    assert await _fsc_paths(conn) == ["/products/L2A_1", "/products/L2A_2"]
    await conn.execute(migration.sql)
    assert await _queued(conn) == 0


async def test_a_pass_cancelled_mid_statement_loses_nothing(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """A reconcile cancelled while its insert waits on another transaction rolls back: the
    product stays queued and the next pass (on a fresh connection) makes its input."""
    source = await _source_input(conn)
    service = harvester.HarvesterService(_config(), db_url)
    service.sweep_interval_s = 3600.0
    try:
        await service.reconcile()
        await _add_l2a(conn, source, 1, 1)
        async with await psycopg.AsyncConnection.connect(db_url) as other:
            # An uncommitted input on the same key: the pass's insert waits for it.
            await other.execute(
                "INSERT INTO hrwsi.input (processing_condition_name, date, tile,"
                " measurement_day, input_path, mission) VALUES ('FSC_PC', now(), '31TCH',"
                " 20250301, '/products/L2A_1', 'S2')"
            )
            task = asyncio.create_task(service.reconcile())
            for _ in range(200):
                cursor = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
                row = await cursor.fetchone()
                if row is not None and row[0] > 0:
                    break
                await asyncio.sleep(0.02)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await other.rollback()
        assert await _queued(conn) == 1
        await asyncio.wait_for(service.reconcile(), 10)
    finally:
        await service.aclose()
    assert await _fsc_paths(conn) == ["/products/L2A_1"]
    assert await _queued(conn) == 0


async def test_the_sweep_runs_again_after_its_interval(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """With products_sweep_minutes elapsed, a pass sweeps again and catches a product whose
    queue row was lost; before that, passes read only the queue."""
    source = await _source_input(conn)
    config = Config(harvester=HarvesterConfig(products_sweep_minutes=0.001))
    service = harvester.HarvesterService(config, db_url)
    assert service.sweep_interval_s == pytest.approx(0.06)
    try:
        await service.reconcile()
        await _add_l2a(conn, source, 1, 1)
        await conn.execute("DELETE FROM hrwsi.harvester_product_queue")
        service.sweep_interval_s = 3600.0
        await service.reconcile()
        assert await _fsc_paths(conn) == []
        service.sweep_interval_s = 0.0
        await service.reconcile()
    finally:
        await service.aclose()
    assert await _fsc_paths(conn) == ["/products/L2A_1"]
