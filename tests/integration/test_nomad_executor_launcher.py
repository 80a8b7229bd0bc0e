"""The launcher on a real database driving the Nomad executor against the stand-in, end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from launcher_support import add_chain, config, dispatch_keys, drive, has_ended, rows, statuses

from hrwsi.config import NomadExecutorConfig
from hrwsi.executors.nomad import NomadExecutor
from hrwsi.services.launcher import LauncherService
from hrwsi.testing.nomad_server import NomadStandIn, Script

STARTED, PROCESSED, INTERNAL, EXTERNAL = 1, 2, 3, 4


@pytest.fixture
async def nomad() -> AsyncIterator[NomadStandIn]:
    async with NomadStandIn(nodes=["vm-1", "vm-2"], heartbeat_s=0.2) as server:
        yield server


def executor(nomad: NomadStandIn, **kw: Any) -> NomadExecutor:
    values: dict[str, Any] = {
        "address": nomad.address,
        "sweep_interval_s": 0.5,
        "placement_timeout_s": 0.8,
        "event_silence_s": 2.0,
        "request_timeout_s": 2.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.0,
        "backoff_max_s": 0.0,
    }
    values.update(kw)
    return NomadExecutor(NomadExecutorConfig(**values))


def launcher(db_url: str, nomad: NomadStandIn, **kw: Any) -> LauncherService:
    """The launcher with the default routines, each given a docker image."""
    routines = tuple(
        r.model_copy(update={"docker_image": f"reg/{r.name.lower()}:1"}) for r in config().routines
    )
    return LauncherService(config(routines=routines), db_url, executor(nomad, **kw))


async def test_chain_runs_on_nomad_and_jobs_are_purged_after_recording(
    db_url: str, conn: psycopg.AsyncConnection, nomad: NomadStandIn
) -> None:
    """A VM chain of two tasks runs on Nomad once each; products registered; jobs purged."""
    a, b = await add_chain(conn, 2, vm_name="vm-2")
    service = launcher(db_url, nomad)
    try:
        await drive(service, lambda: has_ended(conn, b), timeout=30)
    finally:
        await service.aclose()
    for task in (a, b):
        assert [s for _, s in await statuses(conn, task)] == [STARTED, PROCESSED]
    assert nomad.runs_started == [f"hrwsi-task-{a}-attempt-1", f"hrwsi-task-{b}-attempt-1"]
    pins = {c["RTarget"] for body in nomad.received_jobs for c in body["Job"]["Constraints"]}
    assert pins == {"vm-2"}
    images = {b["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["image"] for b in nomad.received_jobs}
    assert images == {"reg/maja:1"}
    assert len(await rows(conn, "SELECT 1 FROM hrwsi.products")) == 2
    for _ in range(40):
        if all(nomad.job(j) is None for j in nomad.runs_started):
            break
        await asyncio.sleep(0.05)
    assert [nomad.job(j) for j in nomad.runs_started] == [None, None]


async def test_launcher_killed_after_submit_runs_once_on_nomad(
    db_url: str, conn: psycopg.AsyncConnection, nomad: NomadStandIn
) -> None:
    """Submitted to Nomad, the launcher dies before recording: the next one records, no rerun."""
    (a,) = await add_chain(conn, 1)
    key = f"task-{a}-attempt-1"
    nomad.scripts[f"hrwsi-{key}"] = Script(run_s=0.5)
    first = launcher(db_url, nomad)
    await first.reconcile()  # claims and submits; nobody consumes the outcomes
    await first.aclose()
    assert await statuses(conn, a) == []
    second = launcher(db_url, nomad)
    try:
        await drive(second, lambda: has_ended(conn, a), timeout=30)
    finally:
        await second.aclose()
    assert nomad.runs_started == [f"hrwsi-{key}"]
    assert await dispatch_keys(conn, a) == [key]
    assert PROCESSED in [s for _, s in await statuses(conn, a)]
    assert len(await rows(conn, "SELECT 1 FROM hrwsi.products")) == 1


async def test_internal_error_then_retry_succeeds_on_nomad(
    db_url: str, conn: psycopg.AsyncConnection, nomad: NomadStandIn
) -> None:
    """A first attempt exiting 3 is recorded as internal_error; the retry attempt succeeds."""
    (a,) = await add_chain(conn, 1)
    nomad.scripts[f"hrwsi-task-{a}-attempt-1"] = Script(exit_code=3)
    service = launcher(db_url, nomad)
    try:
        await drive(service, lambda: has_ended(conn, a), timeout=30)
    finally:
        await service.aclose()
    assert await statuses(conn, a) == [
        (f"task-{a}-attempt-1", STARTED),
        (f"task-{a}-attempt-1", INTERNAL),
        (f"task-{a}-attempt-2", STARTED),
        (f"task-{a}-attempt-2", PROCESSED),
    ]
    message = await rows(
        conn,
        "SELECT message FROM hrwsi.processing_status_workflow WHERE processing_status_id = 3",
    )
    assert message == [("exit code 3",)]


async def test_unplaceable_vm_is_external_error_on_nomad(
    db_url: str, conn: psycopg.AsyncConnection, nomad: NomadStandIn
) -> None:
    """A task planned on a VM Nomad does not have fails as placement (external) until it ends."""
    (a,) = await add_chain(conn, 1, vm_name="vm-missing")
    service = launcher(db_url, nomad)
    try:
        await drive(service, lambda: has_ended(conn, a), timeout=40)
    finally:
        await service.aclose()
    found = [s for _, s in await statuses(conn, a)]
    assert found and set(found) == {EXTERNAL}
    messages = await rows(conn, "SELECT DISTINCT message FROM hrwsi.processing_status_workflow")
    assert all("placement" in m for (m,) in messages)
    assert nomad.runs_started == []
