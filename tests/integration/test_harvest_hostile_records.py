"""A record PostgreSQL cannot store is skipped; it does not block its page nor the watermark."""

from __future__ import annotations

import httpx
import psycopg

from hrwsi.catalogue import odata, store
from hrwsi.config import CatalogueConfig, Config, HarvesterConfig, HarvestQuery
from hrwsi.services import harvester
from hrwsi.testing.catalogue_server import CatalogueStandIn, Fault, generate_s2_l1c

QUERY = HarvestQuery(name="s2_l1c", processing_condition="MAJA_PC")


async def _no_sleep(seconds: float) -> None:
    return None


async def test_a_nul_in_a_record_skips_that_record_only(conn: psycopg.AsyncConnection) -> None:
    """A record whose S3Path holds a NUL is counted bad_text; the 11 others are stored and the
    watermark moves past it (before: the page's insert failed on every pass, for ever)."""
    recs = generate_s2_l1c(11, seed=41)
    bad = dict(generate_s2_l1c(1, seed=42)[0], Id="poison", S3Path="/eodata/p\x00.SAFE")
    config = Config(
        catalogue=CatalogueConfig(base_url="http://x", page_size=5, backoff_initial_s=0),
        harvester=HarvesterConfig(queries=(QUERY,)),
    )
    async with (
        CatalogueStandIn(products=recs) as server,
        httpx.AsyncClient(timeout=httpx.Timeout(2, connect=2)) as http,
    ):
        server.inject(Fault.none(), Fault.bad_record(bad))
        config = config.model_copy(
            update={"catalogue": config.catalogue.model_copy(update={"base_url": server.base_url})}
        )
        client = odata.ODataClient.from_config(config.catalogue, http, sleep=_no_sleep)
        summary = await harvester.nrt_pass(conn, client, config)
    cursor = await conn.execute("SELECT catalogue_id FROM hrwsi.input_meta")
    assert sorted(r[0] for r in await cursor.fetchall()) == sorted(r["Id"] for r in recs)
    assert summary.skipped == {"bad_text": 1}
    assert await store.watermark(conn, QUERY.name) is not None
