"""Harvesting through the catalogue stand-in into a real PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote_plus

import httpx
import psycopg
import pytest

from hrwsi.catalogue import odata, store
from hrwsi.config import CatalogueConfig, Config, HarvesterConfig, HarvestQuery
from hrwsi.domain import errors
from hrwsi.services import harvester
from hrwsi.testing.catalogue_server import CatalogueStandIn, Fault, generate_s2_l1c

QUERY = HarvestQuery(name="s2_l1c", processing_condition="MAJA_PC")


def _config(base_url: str, *queries: HarvestQuery, page_size: int = 10) -> Config:
    return Config(
        catalogue=CatalogueConfig(
            base_url=base_url, page_size=page_size, backoff_initial_s=0, max_attempts=3
        ),
        harvester=HarvesterConfig(queries=queries or (QUERY,), overlap_minutes=10),
    )


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5, connect=2)) as client:
        yield client


def _client(config: Config, http: httpx.AsyncClient) -> odata.ODataClient:
    return odata.ODataClient.from_config(config.catalogue, http, sleep=_no_sleep)


async def _inputs(conn: psycopg.AsyncConnection) -> list[tuple]:
    cursor = await conn.execute(
        "SELECT processing_condition_name, date, tile, measurement_day, input_path, mission,"
        " m.catalogue_id, m.product_name, m.publication_date"
        " FROM hrwsi.input JOIN hrwsi.input_meta m ON m.input_id = id ORDER BY id"
    )
    return await cursor.fetchall()


async def test_multi_page_harvest_stores_each_product_once(
    conn: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    """57 records over 6 pages become 57 inputs with every v1 and extension column filled."""
    recs = generate_s2_l1c(57, seed=1)
    async with CatalogueStandIn(products=recs) as server:
        config = _config(server.base_url)
        summary = await harvester.nrt_pass(conn, _client(config, http), config)
    rows = await _inputs(conn)
    assert summary.pages == 6 and summary.records == 57 and summary.new_inputs == 57
    assert len(rows) == 57 and len({r[4] for r in rows}) == 57
    by_path = {r["S3Path"]: r for r in recs}
    for cond, when, tile, day, path, mission, cat_id, name, published in rows:
        record = by_path[path]
        assert cond == "MAJA_PC" and mission == "S2" and cat_id == record["Id"]
        assert name == record["Name"] and tile == record["Name"].split("_")[5][1:]
        assert when == datetime.fromisoformat(record["ContentDate"]["Start"][:-1])
        assert day == int(when.strftime("%Y%m%d"))
        assert published == datetime.fromisoformat(record["PublicationDate"][:-1] + "+00:00")


async def test_repeating_a_pass_inserts_nothing_and_starts_at_the_watermark(
    conn: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    """A second pass stores nothing new and asks only from the watermark less the overlap."""
    recs = generate_s2_l1c(30, seed=2)
    last = max(r["PublicationDate"] for r in recs)
    async with CatalogueStandIn(products=recs) as server:
        config = _config(server.base_url)
        first = await harvester.nrt_pass(conn, _client(config, http), config)
        mark = await store.watermark(conn, QUERY.name)
        server.requests.clear()
        second = await harvester.nrt_pass(conn, _client(config, http), config)
    assert first.new_inputs == 30 and second.new_inputs == 0 and second.existing > 0
    assert mark == datetime.fromisoformat(last[:-1] + "+00:00")
    since = (mark - timedelta(minutes=10)).strftime("%Y-%m-%dT%H%%3A%M%%3A%S")
    assert since in server.requests[0]
    assert len(await _inputs(conn)) == 30


async def test_window_never_reaches_past_the_max_days(
    conn: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    """Products published or sensed before the query's max-days limits are not harvested,
    even with an older watermark."""
    now = datetime.now(UTC)
    old_pub = generate_s2_l1c(5, seed=3, published_from=now - timedelta(days=9))
    old_sensing = generate_s2_l1c(
        5, seed=4, published_from=now - timedelta(days=1), sensing_lag=timedelta(days=40)
    )
    fresh = generate_s2_l1c(7, seed=5, published_from=now - timedelta(hours=5))
    await store.advance_watermark(conn, QUERY.name, now - timedelta(days=20))
    async with CatalogueStandIn(products=old_pub + old_sensing + fresh) as server:
        config = _config(server.base_url)
        summary = await harvester.nrt_pass(conn, _client(config, http), config, now=now)
    assert summary.new_inputs == 7
    assert {r[6] for r in await _inputs(conn)} == {r["Id"] for r in fresh}


async def test_injected_faults_lose_nothing_else(
    conn: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    """Timeout, 429 storm, 500, truncated JSON and a bad-name record spread over a harvest:
    every good product is stored once, the bad record is counted as skipped."""
    recs = generate_s2_l1c(44, seed=6)
    bad = dict(recs[3], Id="bad", Name="S2A_MSIL1C_not-a-date.SAFE", S3Path="/x/bad")
    async with CatalogueStandIn(products=recs) as server:
        server.inject(
            Fault.timeout(1.0),
            Fault.none(),
            Fault.too_many_requests(times=2, retry_after="0"),
            Fault.none(),
            Fault.server_error(500),
            Fault.truncated(),
            Fault.bad_record(bad),
        )
        config = _config(server.base_url)
        summary = await harvester.nrt_pass(conn, _client(config, http), config)
        assert server.pending_faults == 0
    rows = await _inputs(conn)
    assert sorted(r[6] for r in rows) == sorted(r["Id"] for r in recs)
    assert summary.skipped == {"bad_name": 1} and summary.new_inputs == 44


async def test_one_notification_per_batch(
    conn: psycopg.AsyncConnection, db_url: str, http: httpx.AsyncClient
) -> None:
    """Each stored page wakes the orchestrator once (input_insertion); a page storing
    nothing new sends nothing."""
    recs = generate_s2_l1c(25, seed=7)
    listener = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    async with listener:
        await listener.execute("LISTEN input_insertion")
        async with CatalogueStandIn(products=recs) as server:
            config = _config(server.base_url)
            await harvester.nrt_pass(conn, _client(config, http), config)
            await harvester.nrt_pass(conn, _client(config, http), config)
        payloads = []
        gen = listener.notifies(timeout=0.5)
        async for note in gen:
            payloads.append(note.payload)
    assert payloads == ["MAJA_PC"] * 3


async def test_tile_list_keeps_only_those_tiles(
    conn: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    """A query with a tile list stores only products of those tiles and counts the rest."""
    recs = generate_s2_l1c(40, seed=8, tiles=["31TCH", "32ULV", "33UUU"])
    query = HarvestQuery(name="tiles", processing_condition="MAJA_PC", tiles=("T31TCH", "33UUU"))
    async with CatalogueStandIn(products=recs) as server:
        config = _config(server.base_url, query)
        summary = await harvester.nrt_pass(conn, _client(config, http), config)
    tiles = {r[2] for r in await _inputs(conn)}
    wanted = [r for r in recs if "_T32ULV_" not in r["Name"]]
    assert tiles == {"31TCH", "33UUU"}
    assert summary.new_inputs == len(wanted) and summary.filtered == 40 - len(wanted)


async def test_more_results_than_the_ceiling_stored_once(
    conn: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    """With the stand-in's ceiling lowered to 30, 173 results (ties included) are stored once."""
    recs = generate_s2_l1c(173, seed=9, ties=3)
    async with CatalogueStandIn(products=recs, skip_ceiling=30) as server:
        config = _config(server.base_url)
        summary = await harvester.nrt_pass(conn, _client(config, http), config)
    assert summary.new_inputs == 173 and summary.restarts >= 4
    assert len(await _inputs(conn)) == 173


async def _product_type_id(conn: psycopg.AsyncConnection, code: str) -> int:
    cursor = await conn.execute("SELECT id FROM hrwsi.product_type WHERE code = %s", (code,))
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_products_become_inputs_exactly_once(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """An L2A product becomes one FSC_PC input (the source's date, tile, day and mission);
    an L2B product becomes none; a second reconcile adds nothing."""
    cursor = await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) VALUES ('MAJA_PC', '2025-03-01 10:20:21', '31TCH', 20250301,"
        " '/eodata/l1c', 'S2') RETURNING id"
    )
    source = (await cursor.fetchone())[0]
    l2a = await _product_type_id(conn, "S2_MAJA_L2A")
    l2b = await _product_type_id(conn, "S2_FSC_L2B")
    await conn.execute(
        "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date, catalogued_date,"
        " product_type_id) VALUES (%s, '/products/L2A_31TCH', now(), now(), %s),"
        " (%s, '/products/L2B_31TCH', now(), now(), %s)",
        (source, l2a, source, l2b),
    )
    service = harvester.HarvesterService(Config(), db_url)
    try:
        await service.reconcile()
        await service.reconcile()
    finally:
        await service.aclose()
    cursor = await conn.execute(
        "SELECT processing_condition_name, date, tile, measurement_day, input_path, mission,"
        " m.product_name, m.source_product_id IS NOT NULL"
        " FROM hrwsi.input JOIN hrwsi.input_meta m ON m.input_id = id WHERE id <> %s",
        (source,),
    )
    assert await cursor.fetchall() == [
        (
            "FSC_PC",
            datetime(2025, 3, 1, 10, 20, 21),
            "31TCH",
            20250301,
            "/products/L2A_31TCH",
            "S2",
            "L2A_31TCH",
            True,
        )
    ]


async def test_archive_walks_days_and_resumes_after_a_failure(
    conn: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    """An archive run that dies mid-way leaves a cursor; the rerun resumes there (fewer
    requests than a full run) and every product of the range is stored once."""
    start = datetime(2024, 5, 1, tzinfo=UTC)
    recs = generate_s2_l1c(90, seed=10, published_from=start, spacing=timedelta(hours=1))
    recs += generate_s2_l1c(3, seed=11, published_from=start + timedelta(days=3))
    in_range = [r for r in recs if r["PublicationDate"] < "2024-05-04"]
    first_day, last_day = date(2024, 5, 1), date(2024, 5, 3)
    async with CatalogueStandIn(products=recs) as server:
        config = _config(server.base_url, page_size=5)
        server.inject(Fault.none(times=7), Fault.server_error(503, times=3))
        with pytest.raises(errors.CatalogueTransient):
            await harvester.archive(conn, _client(config, http), config, first_day, last_day)
        cursor = await store.archive_cursor(conn, QUERY.name, first_day, last_day)
        assert cursor is not None and cursor.day == date(2024, 5, 2)
        assert cursor.resume_from is not None and cursor.pages == 7
        server.requests.clear()
        summary = await harvester.archive(conn, _client(config, http), config, first_day, last_day)
        assert len(server.requests) < 90 // 5
        assert "PublicationDate ge 2024-05-02T09:00:00" in unquote_plus(server.requests[0])
    rows = await _inputs(conn)
    assert sorted(r[6] for r in rows) == sorted(r["Id"] for r in in_range)
    assert summary.new_inputs + cursor.new_inputs == len(in_range) == 72
    assert await store.archive_cursor(conn, QUERY.name, first_day, last_day) is None


async def test_service_background_harvests_until_stopped(
    conn: psycopg.AsyncConnection, db_url: str, http: httpx.AsyncClient
) -> None:
    """background(stop) runs a pass at once, then waits for its interval until stop is set."""
    recs = generate_s2_l1c(12, seed=12)
    async with CatalogueStandIn(products=recs) as server:
        service = harvester.HarvesterService(_config(server.base_url), db_url, http=http)
        stop = asyncio.Event()
        task = asyncio.create_task(service.background(stop))
        for _ in range(200):
            if len(await _inputs(conn)) == 12:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
        await service.aclose()
    assert len(await _inputs(conn)) == 12
    idle = harvester.HarvesterService(Config(), db_url)
    await asyncio.wait_for(idle.background(asyncio.Event()), 1)
    await idle.aclose()


async def test_service_reconnects_after_losing_its_connection(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """A reconcile whose connection was killed raises DatabaseError; the next one reconnects."""
    service = harvester.HarvesterService(Config(), db_url)
    try:
        await service.reconcile()
        assert service._reconcile_conn is not None
        pid = service._reconcile_conn.info.backend_pid
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(errors.DatabaseError):
            await service.reconcile()
        await service.reconcile()
        assert service._reconcile_conn.info.backend_pid != pid
    finally:
        await service.aclose()
