"""Harvest benchmark: 100,000 catalogue records through the stand-in into a database that
already holds 1,000,000 inputs.

    .venv/bin/python bench/harvest.py [--records 100000] [--existing 1000000] [--v1-sample 200]

The stand-in runs in its own process (``python -m hrwsi.testing.catalogue_server``) at the
real limits ($top 1000, $skip ceiling 10,000, so the harvest restarts on PublicationDate
about every 11,000 records); the harvester runs here, so the peak RSS printed is the
harvester's alone. A throw-away database is made with ``hrwsi.testing.databases`` on
``HRWSI_TEST_DATABASE_URL`` (or an embedded server) and dropped at the end.

Printed: records/s of the whole harvest, the dedup+insert rate (rows/s through the
harvester's store stage, ``harvest_search`` over pages already parsed in memory: each page
one transaction, its products staged by binary COPY and moved into ``hrwsi.input`` by one
``INSERT … ON CONFLICT DO NOTHING``, pages on ``harvester.store_connections`` connections,
the default 2) with a 1-connection baseline, a pass where every record is already stored,
peak RSS, and HR-WSI v1's approach on the same data for contrast: each candidate path
compared against a Python list of every stored path (O(n·m)), timed on a sample and
extrapolated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import httpx
import psycopg

from hrwsi.catalogue import filters, odata, records, store
from hrwsi.config import CatalogueConfig, Config, HarvesterConfig, HarvestQuery
from hrwsi.db import queries
from hrwsi.services import harvester
from hrwsi.testing import databases
from hrwsi.testing.catalogue_server import generate_s2_l1c

TARGET_TOTAL_S = 30.0
TARGET_ROWS_PER_S = 50_000
STORE_CONNECTIONS = HarvesterConfig().store_connections  # the harvester's default


def _start_stand_in(records: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hrwsi.testing.catalogue_server",
            "--port",
            "0",
            "--generate",
            str(records),
            "--seed",
            "42",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+/odata/v1)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the stand-in did not start: {line!r}")
    return proc, match[1]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _fill(url: str, existing: int) -> float:
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(queries.get("harvester_bench_fill_inputs"), {"count": existing})
        await conn.execute(queries.get("harvester_bench_analyze"))
    return time.perf_counter() - started


async def _harvest(url: str, config: Config) -> tuple[harvester.HarvestSummary, float]:
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
        httpx.AsyncClient(timeout=httpx.Timeout(120, connect=10)) as http,
    ):
        client = odata.ODataClient.from_config(config.catalogue, http)
        await store.reset_watermark(conn, config.harvester.queries[0].name)
        async with harvester.extra_writers(url, config) as writers:
            started = time.perf_counter()
            summary = await harvester.nrt_pass(conn, client, config, writers=writers)
            return summary, time.perf_counter() - started


class _PagesInMemory:
    """A catalogue client whose pages are already parsed: only the store stage is timed."""

    def __init__(self, pages: list[odata.Page]) -> None:
        self._pages = pages

    async def pages(self, search: filters.Search) -> AsyncIterator[odata.Page]:
        for page in self._pages:
            yield page


def _pages(count: int, seed: int, size: int) -> list[odata.Page]:
    fresh = [
        records.normalise(r)
        for r in generate_s2_l1c(count, seed=seed, published_from=datetime(2026, 1, 1, tzinfo=UTC))
    ]
    return [
        odata.Page(
            url="memory",
            products=fresh[i : i + size],
            skipped=[],
            records=len(fresh[i : i + size]),
            duplicates=0,
            last_publication=fresh[i : i + size][-1].publication_date,
        )
        for i in range(0, count, size)
    ]


async def _store_pages(url: str, pages: list[odata.Page], connections: int) -> tuple[float, int]:
    """Seconds for the harvester's store stage (:func:`harvester.harvest_search`: one
    transaction per page, its batch staged by COPY and inserted by one statement) over
    ``pages``, on ``connections`` connections; and how many inputs were new."""
    config = Config(harvester=HarvesterConfig(store_connections=connections))
    query = HarvestQuery(name="bench-store", processing_condition="MAJA_PC")
    client = cast(odata.ODataClient, _PagesInMemory(pages))
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
        harvester.extra_writers(url, config) as writers,
    ):
        started = time.perf_counter()
        summary = await harvester.harvest_search(
            conn,
            client,
            query,
            filters.from_query(query, published_from=None),
            batch_size=config.harvester.batch_size,
            writers=writers,
        )
        return time.perf_counter() - started, summary.new_inputs


async def _v1_contrast(url: str, sample: int) -> tuple[int, float]:
    """Seconds per candidate of ``path in list_of_every_stored_path`` (v1), and the list size."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(queries.get("harvester_bench_input_paths"))
        stored = [row[0] for row in await cursor.fetchall()]
    candidates = [f"/eodata/Sentinel-2/MSI/L1C/2026/01/01/NEW_{i}.SAFE" for i in range(sample)]
    started = time.perf_counter()
    found = sum(1 for c in candidates if c in stored)
    per_candidate = (time.perf_counter() - started) / sample
    assert found == 0  # new products: each comparison walks the whole list, as in v1
    return len(stored), per_candidate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=1_000_000)
    parser.add_argument("--v1-sample", type=int, default=200)
    args = parser.parse_args()

    admin = databases.server_url(Path(os.environ.get("HRWSI_BENCH_DATA_DIR", "/tmp/hrwsi-bench")))
    name = databases.unique_name("hrwsi_bench")
    url = databases.create_migrated_database(admin, name)
    proc, base_url = _start_stand_in(args.records)
    try:
        fill_s = asyncio.run(_fill(url, args.existing))
        config = Config(
            catalogue=CatalogueConfig(base_url=base_url, page_size=1000),
            harvester=HarvesterConfig(
                queries=(HarvestQuery(name="bench", processing_condition="MAJA_PC"),)
            ),
        )
        first, first_s = asyncio.run(_harvest(url, config))
        second, second_s = asyncio.run(_harvest(url, config))
        harvest_rss = _peak_rss_mb()
        proc.terminate()
        one_s, one_new = asyncio.run(_store_pages(url, _pages(args.records, 7, 1000), 1))
        batches = _pages(args.records, 8, 1000)
        new_s, new_rows = asyncio.run(_store_pages(url, batches, STORE_CONNECTIONS))
        dup_s, dup_new = asyncio.run(_store_pages(url, batches, STORE_CONNECTIONS))
        stored, per_candidate = asyncio.run(_v1_contrast(url, args.v1_sample))
    finally:
        proc.terminate()
        proc.wait(10)
        databases.drop_database(admin, name)

    v1_total_s = per_candidate * args.records
    rate = args.records / new_s
    rate_one = args.records / one_s
    rate_dup = args.records / dup_s
    rows = [
        ("existing inputs (generate_series fill)", f"{args.existing:,}", f"{fill_s:.1f} s"),
        (
            "  server-side insert floor",
            f"{args.existing / fill_s:,.0f} rows/s",
            "one INSERT ... SELECT generate_series, no client (all triggers, indexes)",
        ),
        ("catalogue records harvested", f"{first.records:,}", f"{first.pages} pages"),
        ("keyset restarts at the $skip ceiling", f"{first.restarts}", ""),
        ("new inputs stored", f"{first.new_inputs:,}", ""),
        (
            "whole harvest (stand-in -> inputs)",
            f"{first_s:.1f} s",
            f"target < {TARGET_TOTAL_S:.0f} s",
        ),
        ("  records/s", f"{first.records / first_s:,.0f}", ""),
        (
            "repeat harvest (all already stored)",
            f"{second_s:.1f} s",
            f"{second.records:,} records, {second.new_inputs} new",
        ),
        ("peak RSS (harvester process)", f"{harvest_rss:.0f} MB", "stand-in in its own process"),
        (
            f"dedup+insert, new rows, {STORE_CONNECTIONS} connections",
            f"{rate:,.0f} rows/s",
            f"{new_rows:,} new in {new_s:.1f} s, 1000/page; target >= {TARGET_ROWS_PER_S:,}",
        ),
        (
            "  baseline: 1 connection",
            f"{rate_one:,.0f} rows/s",
            f"{one_new:,} new in {one_s:.1f} s; ratio {rate / rate_one:.2f}x",
        ),
        (
            f"dedup+insert, all duplicates, {STORE_CONNECTIONS} connections",
            f"{rate_dup:,.0f} rows/s",
            f"{args.records:,} rows in {dup_s:.1f} s, {dup_new} new",
        ),
        (
            "v1: path in list(stored paths)",
            f"{per_candidate * 1000:.1f} ms/candidate",
            f"list of {stored:,}; sample {args.v1_sample}",
        ),
        ("  v1 for all records", f"{v1_total_s:,.0f} s", "extrapolated from the sample"),
        ("  ratio v1 / set-based (new rows)", f"{v1_total_s / new_s:,.0f}x", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nharvest benchmark: {args.records:,} records into {args.existing:,} inputs")
    print("-" * (width + 50))
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>22}  {note}")
    ok = first_s < TARGET_TOTAL_S and rate >= TARGET_ROWS_PER_S
    load = os.getloadavg()[0]
    print(
        f"\ntargets {'met' if ok else 'NOT met'}; load average {load:.1f}, {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
