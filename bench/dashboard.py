"""Dashboard benchmark: the chain summary on a long history, fan-out join against per-table.

    HRWSI_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/dashboard.py [--inputs 200000] [--runs 7]

A throw-away database (``hrwsi.testing.databases`` on ``HRWSI_TEST_DATABASE_URL`` or an
embedded server) gets ``--inputs`` inputs (half MAJA_PC, half FSC_PC) with a set-based history
(the ``metrics_bench_fill_*`` queries): a task for 9 inputs in 10 and an older one for 1 in 5,
1 to 3 dispatches per task, a started row per dispatch plus a failed (3/4) or processed (2)
one, a product per processed dispatch and a second one for 1 input in 4; then VACUUM ANALYZE.

Printed: the table sizes; the old ``metrics_chain_summary`` (one fan-out join with
count(DISTINCT ...), kept below as reference text) against the current one (median of
``--runs`` runs each, interleaved, after one warm-up each; ms and ratio), the temporary files
each writes (EXPLAIN ANALYZE), the whole dashboard snapshot; peak RSS of this process. The two
queries' rows are checked equal first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from typing import Any, LiteralString

import psycopg

from hrwsi.db import queries
from hrwsi.testing import databases
from hrwsi.web import dashboard

OLD_CHAIN_SUMMARY = queries.get("metrics_bench_chain_summary_fan_out")  # the reference

FILL = (
    "metrics_bench_fill_tasks",
    "metrics_bench_fill_dispatches",
    "metrics_bench_fill_statuses",
    "metrics_bench_fill_products",
    "metrics_bench_analyze",
)


async def _fill(conn: psycopg.AsyncConnection[Any], inputs: int) -> float:
    started = time.perf_counter()
    await conn.execute(queries.get("metrics_bench_fill_vm"))
    await conn.execute(queries.get("metrics_bench_fill_inputs"), {"count": inputs})
    for name in FILL:
        await conn.execute(queries.get(name))
    return time.perf_counter() - started


async def _rows(conn: psycopg.AsyncConnection[Any], query: LiteralString) -> list[Any]:
    return await (await conn.execute(query)).fetchall()


async def _ms(conn: psycopg.AsyncConnection[Any], query: LiteralString) -> float:
    started = time.perf_counter()
    await _rows(conn, query)
    return (time.perf_counter() - started) * 1000


async def _temp_written_mb(conn: psycopg.AsyncConnection[Any], query: LiteralString) -> float:
    """Temporary files the query writes (sorts and hashes spilled past work_mem), in MB."""
    cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query)
    row = await cur.fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return float(plan[0]["Plan"].get("Temp Written Blocks", 0)) * 8 / 1024


async def _bench(url: str, inputs: int, runs: int) -> None:
    new_query = queries.get("metrics_chain_summary")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        fill_s = await _fill(conn, inputs)
        sizes = (await _rows(conn, queries.get("metrics_bench_table_sizes")))[0]
        print(
            f"filled in {fill_s:.1f} s: {sizes[0]:,} inputs, {sizes[1]:,} tasks,"
            f" {sizes[2]:,} dispatches, {sizes[3]:,} status rows, {sizes[4]:,} products"
        )
        old_rows = await _rows(conn, OLD_CHAIN_SUMMARY)  # also the warm-up runs
        new_rows = await _rows(conn, new_query)
        assert old_rows == new_rows, (old_rows, new_rows)
        old_ms: list[float] = []
        new_ms: list[float] = []
        for _ in range(runs):
            old_ms.append(await _ms(conn, OLD_CHAIN_SUMMARY))
            new_ms.append(await _ms(conn, new_query))
        old_temp = await _temp_written_mb(conn, OLD_CHAIN_SUMMARY)
        new_temp = await _temp_written_mb(conn, new_query)
        snapshot_ms: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            await dashboard.snapshot(conn)
            snapshot_ms.append((time.perf_counter() - started) * 1000)
    old, new = statistics.median(old_ms), statistics.median(new_ms)
    print()
    print(f"{'measure':<52}{'value':>10}{'ratio':>10}")
    print(f"{'chain summary, old fan-out join (ms, median)':<52}{old:>10.1f}{'1.00':>10}")
    print(f"{'chain summary, per-table aggregates (ms, median)':<52}{new:>10.1f}{old / new:>9.1f}x")
    print(f"{'  temp files written, old / new (MB)':<52}{old_temp:>10.1f}{new_temp:>10.1f}")
    snapshot = statistics.median(snapshot_ms)
    print(f"{'whole /api/status snapshot (ms, median)':<52}{snapshot:>10.1f}")
    print(
        f"{'peak RSS (MB)':<52}{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>10.0f}"
    )
    print(
        f"(runs: {runs} each, old {[round(t) for t in old_ms]}, new {[round(t) for t in new_ms]})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    admin = databases.server_url()
    name = databases.unique_name("hrwsi_bench_dashboard")
    url = databases.create_migrated_database(admin, name)
    try:
        asyncio.run(_bench(url, args.inputs, args.runs))
    finally:
        databases.drop_database(admin, name)


if __name__ == "__main__":
    main()
