"""Planning-service passes on a real database: a big backlog, small passes, no-op passes.

Usage: ``HRWSI_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres
.venv/bin/python bench/orchestrator.py [--backlog 10000] [--history 100000]``
(without the variable an embedded PostgreSQL is started).

Prints one row per scenario: inputs planned, VMs, wall time of the pass, and the ratio to the
baseline (the no-op pass on an empty history, same process), then peak RSS.

* ``backlog``: one pass planning N pending inputs (half MAJA, half FSC) in one transaction;
* ``noop@H``: a pass finding nothing to do over H inputs whose tasks were all processed;
* ``one-new@H``: one input arrives, one pass plans it (the input → task latency path), x50.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time

import psycopg

from hrwsi.config import Config, SchedulingConfig
from hrwsi.services.orchestrator import OrchestratorService
from hrwsi.testing import databases


async def insert(conn: psycopg.AsyncConnection, n: int, prefix: str) -> None:
    await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission)"
        " SELECT CASE WHEN g %% 2 = 0 THEN 'MAJA_PC' ELSE 'FSC_PC' END, now(), '31TCH',"
        " 20240102, %s || g, 'S2' FROM generate_series(1, %s) AS g",
        (prefix, n),
    )


async def finish_all(conn: psycopg.AsyncConnection) -> None:
    """Every live task processed and ended, as after a day of production."""
    await conn.execute(
        "WITH d AS (INSERT INTO hrwsi.nomad_job_dispatch"
        "           (processing_task_fk_id, nomad_job_dispatch, dispatch_date)"
        "           SELECT id, 'job/' || id, now() FROM hrwsi.processing_tasks"
        "           WHERE has_ended = false RETURNING id)"
        " INSERT INTO hrwsi.processing_status_workflow"
        "   (nomad_job_dispatch_fk_id, processing_status_id, date) SELECT id, 2, now() FROM d"
    )
    # Fresh statistics, as autovacuum would give: the per-row "was it processed?" checks of
    # the has_ended triggers otherwise scan the dispatch tables for each of the 100k rows.
    await conn.execute("ANALYZE hrwsi.nomad_job_dispatch")
    await conn.execute("ANALYZE hrwsi.processing_status_workflow")
    await conn.execute("UPDATE hrwsi.processing_tasks SET has_ended = true WHERE has_ended = false")


async def timed_pass(svc: OrchestratorService) -> tuple[float, int, int]:
    began = time.perf_counter()
    result = await svc.plan_pending()
    return time.perf_counter() - began, result.tasks_written, result.vms_written


async def run(url: str, backlog: int, history: int) -> list[tuple[str, int, int, float]]:
    # Wide quotas: the bench measures the database side, not the planner under tight limits.
    config = Config(
        scheduling=SchedulingConfig(
            t_max_minutes=100_000,
            cpu_max=100_000,
            ram_max=100_000,
            storage_max=100_000,
            vm_max=10_000,
        )
    )
    rows: list[tuple[str, int, int, float]] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        svc = OrchestratorService(config, url)
        try:
            seconds, _, _ = await timed_pass(svc)
            rows.append(("noop@0", 0, 0, seconds))
            await insert(conn, backlog, "/backlog/")
            seconds, tasks, vms = await timed_pass(svc)
            rows.append((f"backlog {backlog}", tasks, vms, seconds))
            await insert(conn, max(0, history - backlog), "/history/")
            await svc.plan_pending()
            await finish_all(conn)
            await conn.execute("VACUUM ANALYZE hrwsi.input")
            await conn.execute("VACUUM ANALYZE hrwsi.processing_tasks")
            noop = [(await timed_pass(svc))[0] for _ in range(5)]
            rows.append((f"noop@{history}", 0, 0, statistics.median(noop)))
            one: list[float] = []
            for i in range(50):
                await insert(conn, 1, f"/one/{i}/")
                seconds, tasks, _ = await timed_pass(svc)
                assert tasks == 1
                one.append(seconds)
            one.sort()
            rows.append((f"one-new@{history} p50", 1, 1, one[len(one) // 2]))
            rows.append((f"one-new@{history} max", 1, 1, one[-1]))
        finally:
            await svc.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=100_000)
    args = parser.parse_args()
    admin = databases.server_url()
    name = databases.unique_name("hrwsi_bench")
    url = databases.create_migrated_database(admin, name)
    try:
        rows = asyncio.run(run(url, args.backlog, args.history))
    finally:
        databases.drop_database(admin, name)
    base = rows[0][3]
    print(f"{'scenario':<26} {'tasks':>7} {'vms':>6} {'ms':>9} {'x noop@0':>9}")
    for scenario, tasks, vms, seconds in rows:
        print(f"{scenario:<26} {tasks:>7} {vms:>6} {seconds * 1000:>9.1f} {seconds / base:>9.1f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
