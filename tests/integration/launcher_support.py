"""Helpers for the launcher's integration tests: rows a planner would write, and a driver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import psycopg

from hrwsi.config import Config, RetryConfig, RoutineConfig
from hrwsi.services.launcher import LauncherService

FAST_RETRY = RetryConfig(
    max_attempts_per_task=3,
    external_error_retries=3,
    internal_error_retries=1,
    backoff_initial_s=0,
    backoff_max_s=0,
)


def config(
    retry: RetryConfig = FAST_RETRY, maja_command: tuple[str, ...] = (), **kw: Any
) -> Config:
    """The default configuration with fast retries (and optionally MAJA's local command)."""
    base = Config(retry=retry, **kw)
    if not maja_command:
        return base
    routines = tuple(
        r.model_copy(update={"command": maja_command}) if r.name == "MAJA" else r
        for r in base.routines
    )
    return Config(retry=retry, routines=routines, **kw)


def routine_with(command: tuple[str, ...], duration: int = 1) -> RoutineConfig:
    return RoutineConfig(
        name="MAJA",
        cpu=1,
        ram=1,
        storage=1,
        duration=duration,
        input_type="MSIL1C",
        product_data_type="L2A",
        product_type_code="S2_MAJA_L2A",
        command=command,
    )


async def add_input(conn: psycopg.AsyncConnection, n: int, condition: str = "MAJA_PC") -> int:
    cur = await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) VALUES (%s, %s, '31TCH', 20260304, %s, 'S2') RETURNING id",
        (condition, datetime(2026, 3, 4, 10, 20, n % 60), f"/eodata/S2/L1C/product-{n}.SAFE"),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def add_vm(conn: psycopg.AsyncConnection, name: str = "vm-1") -> uuid.UUID:
    vm = uuid.uuid4()
    await conn.execute(
        "INSERT INTO hrwsi.virtual_machine (id, name, flavour) VALUES (%s, %s, 'MAJA')",
        (vm, name),
    )
    return vm


async def add_chain(
    conn: psycopg.AsyncConnection, length: int, vm_name: str = "vm-1", first: int = 0
) -> list[int]:
    """A VM running ``length`` tasks one after another; returns the task ids in order."""
    vm = await add_vm(conn, vm_name)
    tasks: list[int] = []
    previous: int | None = None
    for n in range(first, first + length):
        input_id = await add_input(conn, n)
        cur = await conn.execute(
            "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
            " preceding_input_id) VALUES (%s, %s, now(), %s) RETURNING id",
            (input_id, vm, previous),
        )
        row = await cur.fetchone()
        assert row is not None
        tasks.append(int(row[0]))
        previous = input_id
    return tasks


async def rows(conn: psycopg.AsyncConnection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    cur = await conn.execute(sql, params)  # type: ignore[arg-type]
    return await cur.fetchall()


async def statuses(conn: psycopg.AsyncConnection, task_id: int) -> list[tuple[str, int]]:
    """(attempt key, status id) of every status row of a task, in order."""
    return [
        (r[0], r[1])
        for r in await rows(
            conn,
            "SELECT d.nomad_job_dispatch, w.processing_status_id"
            " FROM hrwsi.nomad_job_dispatch d"
            " JOIN hrwsi.processing_status_workflow w ON w.nomad_job_dispatch_fk_id = d.id"
            " WHERE d.processing_task_fk_id = %s ORDER BY w.id",
            task_id,
        )
    ]


async def dispatch_keys(conn: psycopg.AsyncConnection, task_id: int | None = None) -> list[str]:
    if task_id is None:
        found = await rows(
            conn, "SELECT nomad_job_dispatch FROM hrwsi.nomad_job_dispatch ORDER BY id"
        )
    else:
        found = await rows(
            conn,
            "SELECT nomad_job_dispatch FROM hrwsi.nomad_job_dispatch"
            " WHERE processing_task_fk_id = %s ORDER BY id",
            task_id,
        )
    return [r[0] for r in found]


async def has_ended(conn: psycopg.AsyncConnection, task_id: int) -> bool:
    found = await rows(conn, "SELECT has_ended FROM hrwsi.processing_tasks WHERE id = %s", task_id)
    return bool(found[0][0])


async def drive(
    service: LauncherService,
    done: Callable[[], Awaitable[bool]],
    timeout: float = 20.0,
    every: float = 0.05,
) -> None:
    """Run the service's background and reconcile it until ``done()`` holds."""
    stop = asyncio.Event()
    background = asyncio.create_task(service.background(stop))

    async def _loop() -> None:
        while True:
            await service.reconcile()
            if await done():
                return
            await asyncio.sleep(every)

    try:
        await asyncio.wait_for(_loop(), timeout)
    finally:
        stop.set()
        await asyncio.wait_for(background, 5)
