"""An attempt never runs twice on Nomad: lost nodes, and a crash followed by garbage collection.

The launcher on a real PostgreSQL drives the Nomad executor against the stand-in (real HTTP),
which replaces lost allocations like real Nomad and counts executions per job id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from launcher_support import add_chain, config, drive, has_ended, rows, statuses

from hrwsi.config import NomadExecutorConfig
from hrwsi.executors.nomad import NomadExecutor
from hrwsi.services.launcher import LOST_TRACK, LauncherService
from hrwsi.testing.nomad_server import NomadStandIn, Script

STARTED, PROCESSED, INTERNAL, EXTERNAL = 1, 2, 3, 4


def launcher(db_url: str, nomad: NomadStandIn, **kw: Any) -> LauncherService:
    values: dict[str, Any] = {
        "address": nomad.address,
        "sweep_interval_s": 0.5,
        "placement_timeout_s": 5.0,
        "event_silence_s": 2.0,
        "request_timeout_s": 2.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.0,
        "backoff_max_s": 0.0,
    }
    values.update(kw)
    routines = tuple(
        r.model_copy(update={"docker_image": f"reg/{r.name.lower()}:1"}) for r in config().routines
    )
    return LauncherService(
        config(routines=routines), db_url, NomadExecutor(NomadExecutorConfig(**values))
    )


@pytest.fixture
async def nomad() -> AsyncIterator[NomadStandIn]:
    async with NomadStandIn(nodes=["vm-1"], heartbeat_s=0.2) as server:
        yield server


async def acknowledged(conn: psycopg.AsyncConnection, task_id: int) -> list[str]:
    found = await rows(
        conn,
        "SELECT d.nomad_job_dispatch FROM hrwsi.dispatch_ack AS a"
        " JOIN hrwsi.nomad_job_dispatch AS d ON d.id = a.nomad_job_dispatch_id"
        " WHERE d.processing_task_fk_id = %s ORDER BY d.id",
        task_id,
    )
    return [key for (key,) in found]


async def test_crash_then_gc_ends_as_external_error_and_attempt_2_runs(
    db_url: str, conn: psycopg.AsyncConnection, nomad: NomadStandIn
) -> None:
    """Launcher stopped after submitting, the finished job GC'd, launcher restarted: attempt 1
    ends as an external error 'lost track' without running again; attempt 2 runs."""
    (a,) = await add_chain(conn, 1)
    first_key, second_key = f"task-{a}-attempt-1", f"task-{a}-attempt-2"
    first = launcher(db_url, nomad)
    await first.reconcile()  # claims, submits, acknowledges; nobody records the outcome
    await first.aclose()
    assert await acknowledged(conn, a) == [first_key]
    for _ in range(100):  # the run ends while no launcher is up
        job = nomad.job(f"hrwsi-{first_key}")
        if job is not None and job["Status"] == "dead":
            break
        await asyncio.sleep(0.05)
    nomad.gc()  # as after job_gc_threshold, or `nomad system gc`
    assert nomad.job(f"hrwsi-{first_key}") is None
    second = launcher(db_url, nomad)
    try:
        await drive(second, lambda: has_ended(conn, a), timeout=30)
    finally:
        await second.aclose()
    assert await statuses(conn, a) == [
        (first_key, EXTERNAL),
        (second_key, STARTED),
        (second_key, PROCESSED),
    ]
    messages = await rows(
        conn,
        "SELECT message FROM hrwsi.processing_status_workflow WHERE processing_status_id = 4",
    )
    assert messages == [(LOST_TRACK,)]
    assert nomad.executions[f"hrwsi-{first_key}"] == 1
    assert nomad.runs_started == [f"hrwsi-{first_key}", f"hrwsi-{second_key}"]


async def test_a_never_acknowledged_dispatch_is_submitted_again_once(
    db_url: str, conn: psycopg.AsyncConnection, nomad: NomadStandIn
) -> None:
    """A dispatch whose submit never reached Nomad (no acknowledgement) is submitted again,
    once, with the same key, and runs once."""
    (a,) = await add_chain(conn, 1)
    key = f"task-{a}-attempt-1"
    nomad.fail_next(1, status=500, body="rpc error: EOF", path_contains="/v1/jobs")
    first = launcher(db_url, nomad, max_attempts=1)
    await first.reconcile()  # the dispatch row is committed; its submit fails
    await first.aclose()
    assert await acknowledged(conn, a) == []
    assert nomad.received_jobs == []
    second = launcher(db_url, nomad)
    try:
        await drive(second, lambda: has_ended(conn, a), timeout=30)
    finally:
        await second.aclose()
    assert await statuses(conn, a) == [(key, STARTED), (key, PROCESSED)]
    assert await acknowledged(conn, a) == [key]
    assert len(nomad.received_jobs) == 1
    assert nomad.executions[f"hrwsi-{key}"] == 1


@pytest.mark.parametrize("old_nomad", [False, True], ids=["nomad-1.8", "nomad-before-1.7.2"])
async def test_a_lost_node_is_one_execution_then_attempt_2(
    db_url: str, conn: psycopg.AsyncConnection, old_nomad: bool
) -> None:
    """A node lost under attempt 1 gives one execution of attempt 1 (no replacement runs, even
    where Nomad places one), an external error, then attempt 2 within the retry policy."""
    async with NomadStandIn(
        nodes=["vm-1"], heartbeat_s=0.2, replace_lost_always=old_nomad
    ) as nomad:
        (a,) = await add_chain(conn, 1)
        first_key, second_key = f"task-{a}-attempt-1", f"task-{a}-attempt-2"
        nomad.scripts[f"hrwsi-{first_key}"] = Script(
            lost=True, replacement=Script(start_delay_s=1.0, hang=True)
        )
        service = launcher(db_url, nomad)
        try:
            await drive(service, lambda: has_ended(conn, a), timeout=30)
            await asyncio.sleep(1.2)  # a replacement would have started by now
        finally:
            await service.aclose()
        assert await statuses(conn, a) == [
            (first_key, STARTED),
            (first_key, EXTERNAL),
            (second_key, STARTED),
            (second_key, PROCESSED),
        ]
        assert nomad.executions[f"hrwsi-{first_key}"] == 1
        assert nomad.executions[f"hrwsi-{second_key}"] == 1
