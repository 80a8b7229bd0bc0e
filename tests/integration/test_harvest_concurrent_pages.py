"""Pages stored on several connections at once: everything once, commits in page order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import psycopg
import pytest

from hrwsi.catalogue import filters, odata, records, store
from hrwsi.config import CatalogueConfig, Config, HarvesterConfig, HarvestQuery
from hrwsi.domain import errors
from hrwsi.services import harvester
from hrwsi.testing.catalogue_server import CatalogueStandIn, generate_s2_l1c

QUERY = HarvestQuery(name="s2_l1c", processing_condition="MAJA_PC")
PAGE = 10


def _config(base_url: str) -> Config:
    return Config(
        catalogue=CatalogueConfig(base_url=base_url, page_size=PAGE, backoff_initial_s=0),
        harvester=HarvesterConfig(queries=(QUERY,), store_connections=2),
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, connect=2)) as client:
        yield client


@pytest.fixture
async def writer(db_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        yield conn


def _published(record: dict) -> datetime:
    return datetime.fromisoformat(record["PublicationDate"].replace("Z", "+00:00"))


async def _stored(conn: psycopg.AsyncConnection) -> set[str]:
    cur = await conn.execute("SELECT catalogue_id FROM hrwsi.input_meta")
    return {r[0] for r in await cur.fetchall()}


async def test_two_writers_store_every_product_once_and_leave_the_last_watermark(
    conn: psycopg.AsyncConnection, writer: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    recs = generate_s2_l1c(57, seed=21)
    async with CatalogueStandIn(products=recs) as server:
        config = _config(server.base_url)
        client = odata.ODataClient.from_config(config.catalogue, http)
        summary = await harvester.nrt_pass(conn, client, config, writers=[writer])
        again = await harvester.nrt_pass(conn, client, config, writers=[writer])
    cur = await conn.execute("SELECT count(*), count(DISTINCT input_path) FROM hrwsi.input")
    assert await cur.fetchone() == (57, 57)
    assert summary.pages == 6 and summary.new_inputs == 57
    assert again.new_inputs == 0
    assert await store.watermark(conn, QUERY.name) == max(_published(r) for r in recs)


async def test_a_page_commits_only_after_the_pages_before_it(
    conn: psycopg.AsyncConnection,
    writer: psycopg.AsyncConnection,
    http: httpx.AsyncClient,
    db_url: str,
) -> None:
    """Page 2 is held by a lock (another session inserting one of its paths); page 3, on the
    other connection, has stored its rows but must not commit, nor move the watermark."""
    recs = sorted(generate_s2_l1c(30, seed=22), key=lambda r: (r["PublicationDate"], r["Id"]))
    held = recs[PAGE + 5]
    async with (
        await psycopg.AsyncConnection.connect(db_url) as blocker,
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) as observer,
        CatalogueStandIn(products=recs) as server,
    ):
        await blocker.execute(
            "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
            " input_path) VALUES ('MAJA_PC', now(), 'X', 20260101, %s)",
            (held["S3Path"],),
        )
        config = _config(server.base_url)
        client = odata.ODataClient.from_config(config.catalogue, http)
        harvest = asyncio.create_task(harvester.nrt_pass(conn, client, config, writers=[writer]))
        # Wait until one writer waits on the lock and the other sits in its transaction.
        for _ in range(200):
            cur = await observer.execute(
                "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),"
                " count(*) FILTER (WHERE state = 'idle in transaction')"
                " FROM pg_stat_activity WHERE datname = current_database()"
            )
            waiting, idle_in_tx = await cur.fetchone()  # type: ignore[misc]
            if waiting == 1 and idle_in_tx == 2:  # the blocker and page 3
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("page 3 never reached its commit while page 2 was held")
        assert await _stored(observer) == {r["Id"] for r in recs[:PAGE]}
        assert await store.watermark(observer, QUERY.name) == _published(recs[PAGE - 1])
        await blocker.rollback()
        summary = await asyncio.wait_for(harvest, 10)
    assert summary.new_inputs == 30
    assert await _stored(conn) == {r["Id"] for r in recs}
    assert await store.watermark(conn, QUERY.name) == _published(recs[-1])


async def test_a_failed_page_rolls_back_the_pages_after_it(
    conn: psycopg.AsyncConnection, writer: psycopg.AsyncConnection, http: httpx.AsyncClient
) -> None:
    """Page 2's checkpoint fails after page 3 has stored its rows on the other connection:
    page 3 rolls back with it, page 1 stays, and the harvest raises page 2's error."""
    recs = sorted(generate_s2_l1c(40, seed=23), key=lambda r: (r["PublicationDate"], r["Id"]))
    calls: list[int] = []

    async def checkpoint(_: psycopg.AsyncConnection, page: odata.Page, __: object) -> None:
        calls.append(len(calls) + 1)
        if len(calls) == 2:
            await asyncio.sleep(0.3)  # page 3 inserts meanwhile, then waits for this one
            raise RuntimeError("page 2 failed")

    async with CatalogueStandIn(products=recs) as server:
        config = _config(server.base_url)
        client = odata.ODataClient.from_config(config.catalogue, http)
        with pytest.raises(RuntimeError, match="page 2 failed"):
            await harvester.harvest_search(
                conn,
                client,
                QUERY,
                filters.from_query(QUERY, published_from=None),
                checkpoint=checkpoint,
                writers=[writer],
            )
    assert calls == [1, 2]  # page 3 never reached its checkpoint
    assert await _stored(conn) == {r["Id"] for r in recs[:PAGE]}
    assert writer.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_store_inputs_counts_new_rows_in_or_out_of_a_transaction(
    conn: psycopg.AsyncConnection,
) -> None:
    """The staged batch is moved, not copied: a second batch in the same transaction counts
    only its own rows, and a batch outside any transaction commits on its own."""

    products = [records.normalise(r) for r in generate_s2_l1c(30, seed=24)]
    async with conn.transaction():
        assert await store.store_inputs(conn, "MAJA_PC", products[:10]) == 10
        assert await store.store_inputs(conn, "MAJA_PC", products[5:20]) == 10
        cur = await conn.execute("SELECT count(*) FROM harvester_input_stage")
        assert await cur.fetchone() == (0,)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert await store.store_inputs(conn, "MAJA_PC", products) == 10
    assert await store.store_inputs(conn, "MAJA_PC", products) == 0
    assert len(await _stored(conn)) == 30


async def test_a_query_another_harvester_is_running_is_skipped(
    conn: psycopg.AsyncConnection,
    writer: psycopg.AsyncConnection,
    http: httpx.AsyncClient,
    db_url: str,
) -> None:
    """Replicas cooperate: while one session holds a query's lock, a pass skips that query
    (and says so); once released, the next pass harvests it."""
    recs = generate_s2_l1c(12, seed=25)
    async with (
        await psycopg.AsyncConnection.connect(db_url, autocommit=True) as other,
        CatalogueStandIn(products=recs) as server,
    ):
        config = _config(server.base_url)
        client = odata.ODataClient.from_config(config.catalogue, http)
        assert await store.try_query_lock(other, QUERY.name)
        skipped = await harvester.nrt_pass(conn, client, config, writers=[writer])
        assert skipped.busy_queries == [QUERY.name] and skipped.pages == 0
        assert any("another harvester" in line for line in skipped.lines())
        assert await _stored(conn) == set()
        await store.release_query_lock(other, QUERY.name)
        done = await harvester.nrt_pass(conn, client, config, writers=[writer])
    assert done.busy_queries == [] and done.new_inputs == 12
    # The pass released its own lock: another session can take it now.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as later:
        assert await store.try_query_lock(later, QUERY.name)


async def test_a_page_waiting_too_long_on_another_session_fails_instead_of_hanging(
    conn: psycopg.AsyncConnection,
    writer: psycopg.AsyncConnection,
    http: httpx.AsyncClient,
    db_url: str,
) -> None:
    """A lock wait longer than ``lock_timeout_s`` (the way out of a wait cycle PostgreSQL
    cannot see) fails the page and the ones after it; the pages before it and the watermark
    stay, and the next pass, once the other session is gone, stores the rest."""
    recs = sorted(generate_s2_l1c(30, seed=26), key=lambda r: (r["PublicationDate"], r["Id"]))
    async with (
        await psycopg.AsyncConnection.connect(db_url) as blocker,
        CatalogueStandIn(products=recs) as server,
    ):
        await blocker.execute(
            "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
            " input_path) VALUES ('MAJA_PC', now(), 'X', 20260101, %s)",
            (recs[PAGE + 3]["S3Path"],),
        )
        config = _config(server.base_url)
        config = config.model_copy(
            update={"harvester": config.harvester.model_copy(update={"lock_timeout_s": 0.3})}
        )
        client = odata.ODataClient.from_config(config.catalogue, http)
        with pytest.raises(errors.DatabaseError, match="lock timeout"):
            await asyncio.wait_for(harvester.nrt_pass(conn, client, config, writers=[writer]), 10)
        assert await _stored(conn) == {r["Id"] for r in recs[:PAGE]}
        assert await store.watermark(conn, QUERY.name) == _published(recs[PAGE - 1])
        await blocker.rollback()
        again = await harvester.nrt_pass(conn, client, config, writers=[writer])
    assert again.new_inputs == 20
    assert await _stored(conn) == {r["Id"] for r in recs}
