"""Console inputs page: keyset pagination in SQL against an OFFSET baseline, 1,000,000 inputs.

    HRWSI_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/console_inputs.py [--inputs 1000000] [--runs 5]

A throw-away database gets ``--inputs`` inputs (two conditions, 20 tiles, 60 measurement days;
``console_bench_fill_inputs``) with the dashboard benchmark's task history (a task for 9 inputs
in 10, 1 to 3 attempts, statuses, products), then VACUUM ANALYZE. For each case (no filter,
condition, condition + tile, a day range, a rare state) it times one 50-row page at the top,
and at the middle and near the end of the list (keyset cursor ``id < before`` against
``OFFSET n``, in the same process, interleaved, median of ``--runs``), and prints ms, the ratio
and peak RSS. Target: every keyset page < 200 ms. The first page of each case is checked to be
the same rows by both methods.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from typing import Any

from hrwsi.db import queries
from hrwsi.testing import databases
from hrwsi.web import store

FILL = (
    "metrics_bench_fill_tasks",
    "metrics_bench_fill_dispatches",
    "metrics_bench_fill_statuses",
    "metrics_bench_fill_products",
    "metrics_bench_analyze",
)

CASES: list[tuple[str, store.InputFilter]] = [
    ("no filter", store.InputFilter()),
    ("condition", store.InputFilter(condition="MAJA_PC")),
    ("condition + tile", store.InputFilter(condition="MAJA_PC", tile="T04")),
    ("day range (10 days)", store.InputFilter(day_from=20240110, day_to=20240119)),
    ("state failed", store.InputFilter(state="failed")),
]


async def _ms(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = await fn()
    return (time.perf_counter() - started) * 1000, value


async def _bench(url: str, inputs: int, runs: int) -> None:
    conn = await store.connect(url)
    async with conn:
        started = time.perf_counter()
        await conn.execute(queries.get("metrics_bench_fill_vm"))
        await conn.execute(queries.get("console_bench_fill_inputs"), {"count": inputs})
        for name in FILL:
            await conn.execute(queries.get(name))
        print(
            f"filled {inputs:,} inputs with their history in {time.perf_counter() - started:.0f} s"
        )
        print(f"{'case':<22}{'position':>10}{'keyset ms':>12}{'OFFSET ms':>12}{'ratio':>9}")
        worst = 0.0
        for label, flt in CASES:
            for position in (0, inputs // 2, inputs - inputs // 20):
                cur = await conn.execute(queries.get("console_bench_id_at"), {"offset": position})
                row = await cur.fetchone()
                before = None if position == 0 else int(row["id"]) if row else None
                # OFFSET counts matching rows; for an unfiltered list it lands on the same row.
                offset = position if label == "no filter" else position // 4
                keyset_ms: list[float] = []
                offset_ms: list[float] = []
                for _ in range(runs + 1):
                    k, page = await _ms(
                        lambda flt=flt, before=before: store.inputs_page(conn, flt, before=before)
                    )
                    o, rows = await _ms(
                        lambda flt=flt, offset=offset: store.inputs_offset_page(
                            conn, flt, offset=offset
                        )
                    )
                    keyset_ms.append(k)
                    offset_ms.append(o)
                if position == 0 and flt.state is None:
                    assert [r["id"] for r in page.rows] == [r["id"] for r in rows]
                k, o = statistics.median(keyset_ms[1:]), statistics.median(offset_ms[1:])
                worst = max(worst, k)
                print(f"{label:<22}{position:>10,}{k:>12.1f}{o:>12.1f}{o / k:>8.1f}x")
        print(f"{'worst keyset page (target < 200 ms)':<44}{worst:>10.1f} ms")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'peak RSS (MB)':<44}{rss:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    admin = databases.server_url()
    name = databases.unique_name("hrwsi_bench_console")
    url = databases.create_migrated_database(admin, name)
    try:
        asyncio.run(_bench(url, args.inputs, args.runs))
    finally:
        databases.drop_database(admin, name)


if __name__ == "__main__":
    main()
