"""Products → inputs benchmark: one new product on top of a large history.

    .venv/bin/python bench/products_to_inputs.py [--history 200000] [--passes 20]

A throw-away database (``HRWSI_TEST_DATABASE_URL`` or an embedded server) gets ``--history``
L2A products already turned into FSC inputs; then, ``--passes`` times, one new L2A product is
inserted and made an input, by

* the full sweep (``harvester_products_to_inputs``: the anti-join over every product, what
  every pass cost before migration 0050), and
* the queued pass (``queued_products_to_inputs``: the ids the trigger queued).

Printed: milliseconds per pass (median and max) for each, the ratio, and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import time
from pathlib import Path

import psycopg

from hrwsi.catalogue import products_source
from hrwsi.testing import databases

ADD = (
    "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date, catalogued_date,"
    " product_type_id) SELECT %s, '/products/L2A_' || g, now(), now(),"
    " (SELECT id FROM hrwsi.product_type WHERE code = 'S2_MAJA_L2A')"
    " FROM generate_series(%s::bigint, %s::bigint) AS g"
)


async def _run(url: str, history: int, passes: int) -> dict[str, list[float]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
            " input_path, mission) VALUES ('MAJA_PC', now(), '31TCH', 20250301, '/l1c', 'S2')"
            " RETURNING id"
        )
        row = await cur.fetchone()
        assert row is not None
        source = row[0]
        await conn.execute(ADD, (source, 1, history))
        await products_source.queued_products_to_inputs(conn, history + 1)
        await conn.execute("VACUUM ANALYZE hrwsi.products")
        await conn.execute("VACUUM ANALYZE hrwsi.input")
        times: dict[str, list[float]] = {"full sweep": [], "queued pass": []}
        n = history
        for _ in range(passes):
            for name in times:
                n += 1
                await conn.execute(ADD, (source, n, n))
                started = time.perf_counter()
                if name == "full sweep":
                    new = await products_source.products_to_inputs(conn)
                    await conn.execute("DELETE FROM hrwsi.harvester_product_queue")
                else:
                    _, new = await products_source.queued_products_to_inputs(conn, 1000)
                times[name].append((time.perf_counter() - started) * 1000)
                assert new == 1, (name, new)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--passes", type=int, default=20)
    args = parser.parse_args()
    admin = databases.server_url(Path(os.environ.get("HRWSI_BENCH_DATA_DIR", "/tmp/hrwsi-bench")))
    name = databases.unique_name("hrwsi_bench")
    url = databases.create_migrated_database(admin, name)
    try:
        times = asyncio.run(_run(url, args.history, args.passes))
    finally:
        databases.drop_database(admin, name)
    print(f"products already made inputs: {args.history:,}; one new product a pass")
    print(f"{'pass':<14}{'median ms':>12}{'max ms':>10}")
    for label, values in times.items():
        print(f"{label:<14}{statistics.median(values):>12.2f}{max(values):>10.2f}")
    ratio = statistics.median(times["full sweep"]) / statistics.median(times["queued pass"])
    print(f"queued pass is {ratio:.0f}x cheaper than the full sweep (median)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
