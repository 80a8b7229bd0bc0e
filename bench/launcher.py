"""Launcher benchmark: the ready-task claim on a large history, and dispatch-to-record throughput.

    .venv/bin/python bench/launcher.py [--history 200000] [--vms 200] [--chain 10]

A throw-away database (``hrwsi.testing.databases`` on ``HRWSI_TEST_DATABASE_URL`` or an
embedded server) gets ``--history`` ended tasks with one processed dispatch each (the past),
then ``--vms`` chains of ``--chain`` pending tasks. Printed:

* the claim query (``launcher_claim_ready``) against HR-WSI v1's
  ``get_ids_of_processing_tasks_ready_to_be_launched()`` on the same data (median of 20 runs,
  ms, and the ratio v1 / ours);
* the launcher with the in-memory fake executor taking every pending task through dispatch,
  started and processed (products registered, chains advanced): tasks/s for batch sizes 100
  and 1 (the baseline: one task per claim transaction);
* peak RSS of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
import uuid

import psycopg

from hrwsi.config import Config
from hrwsi.db import queries
from hrwsi.executors.fake import FakeExecutor
from hrwsi.services.launcher import LauncherService
from hrwsi.testing import databases


async def _fill(url: str, history: int, vms: int, chain: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        old_vm = uuid.uuid4()
        await conn.execute(
            "INSERT INTO hrwsi.virtual_machine (id, name, flavour) VALUES (%s, 'old', 'MAJA')",
            (old_vm,),
        )
        await conn.execute(
            "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
            " input_path) SELECT 'MAJA_PC', now(), '31TCH', 20260101, 'old-' || g"
            " FROM generate_series(1, %s) g",
            (history,),
        )
        await conn.execute(
            "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
            " has_ended) SELECT id, %s, now(), true FROM hrwsi.input",
            (old_vm,),
        )
        await conn.execute(
            "INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch,"
            " dispatch_date) SELECT id, 'task-' || id || '-attempt-1', now()"
            " FROM hrwsi.processing_tasks"
        )
        await conn.execute(
            "INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id,"
            " processing_status_id, date) SELECT id, 2, now() FROM hrwsi.nomad_job_dispatch"
        )
        for v in range(vms):
            vm = uuid.uuid4()
            await conn.execute(
                "INSERT INTO hrwsi.virtual_machine (id, name, flavour) VALUES (%s, %s, 'MAJA')",
                (vm, f"vm-{v}"),
            )
            previous = None
            for n in range(chain):
                cur = await conn.execute(
                    "INSERT INTO hrwsi.input (processing_condition_name, date, tile,"
                    " measurement_day, input_path) VALUES ('MAJA_PC', now(), '31TCH', 20260102,"
                    " %s) RETURNING id",
                    (f"new-{v}-{n}",),
                )
                row = await cur.fetchone()
                assert row is not None
                await conn.execute(
                    "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id,"
                    " creation_date, preceding_input_id) VALUES (%s, %s, now(), %s)",
                    (row[0], vm, previous),
                )
                previous = row[0]
        await conn.execute("ANALYZE")


async def _median_ms(url: str, sql: str, params: dict[str, int] | None) -> float:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        times = []
        for _ in range(20):
            start = time.perf_counter()
            await (await conn.execute(sql, params)).fetchall()  # type: ignore[arg-type]
            times.append((time.perf_counter() - start) * 1000)
            await conn.rollback()
        return statistics.median(times)


async def _throughput(url: str, batch_size: int, pending: int) -> float:
    fake = FakeExecutor()
    service = LauncherService(Config(), url, fake, batch_size=batch_size)
    stop = asyncio.Event()
    background = asyncio.create_task(service.background(stop))
    start = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            await service.reconcile()
            # as the runner would: reconcile again once the outcomes have been recorded
            # (their processed statuses notify processing_tasks_state_processed)
            for _ in range(100_000):
                if not fake.backlog:
                    break
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.005)
            cur = await conn.execute(
                "SELECT count(*) FROM hrwsi.processing_tasks WHERE has_ended = false"
            )
            row = await cur.fetchone()
            if row is not None and row[0] == 0:
                break
    elapsed = time.perf_counter() - start
    stop.set()
    await background
    await service.aclose()
    return pending / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--chain", type=int, default=10)
    args = parser.parse_args()
    admin = databases.server_url()
    template = databases.unique_name("hrwsi_bench_launcher")
    databases.create_migrated_database(admin, template)
    copies: list[str] = []
    try:
        asyncio.run(_bench(args, admin, template, copies))
    finally:
        for name in copies:
            databases.drop_database(admin, name)
        databases.drop_database(admin, template)


async def _bench(args: argparse.Namespace, admin: str, template: str, copies: list[str]) -> None:
    url = databases.with_database(admin, template)
    start = time.perf_counter()
    await _fill(url, args.history, args.vms, args.chain)
    print(
        f"filled {args.history} ended + {args.vms * args.chain} pending tasks "
        f"in {time.perf_counter() - start:.1f}s"
    )
    ours = await _median_ms(url, queries.get("launcher_claim_ready"), {"limit": 100})
    v1 = await _median_ms(
        url, "SELECT * FROM hrwsi.get_ids_of_processing_tasks_ready_to_be_launched()", None
    )
    pending = args.vms * args.chain
    results = {}
    for batch in (100, 1):
        name = databases.unique_name("hrwsi_bench_launcher_run")
        copies.append(name)
        copy_url = databases.create_database(admin, name, template=template)
        results[batch] = await _throughput(copy_url, batch, pending)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"{'measure':<44}{'value':>12}{'ratio':>10}")
    print(f"{'ready query, v1 function (ms, median)':<44}{v1:>12.2f}{'1.00':>10}")
    print(f"{'ready claim, launcher_claim_ready (ms)':<44}{ours:>12.2f}{v1 / ours:>10.1f}x")
    print(f"{'tasks/s, batch 1 (baseline)':<44}{results[1]:>12.0f}{'1.00':>10}")
    ratio = results[100] / results[1]
    print(f"{'tasks/s, batch 100':<44}{results[100]:>12.0f}{ratio:>10.1f}x")
    print(f"{'peak RSS (MB)':<44}{rss_mb:>12.0f}")


if __name__ == "__main__":
    main()
