"""The launcher on a real database with the fake executor: ready rule, claims, crashes, retries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest
from launcher_support import (
    add_chain,
    config,
    dispatch_keys,
    drive,
    has_ended,
    rows,
    statuses,
)

from hrwsi.config import RetryConfig
from hrwsi.db import queries
from hrwsi.domain.retry import ProductInput, product_path
from hrwsi.executors.base import Attempt, RunState
from hrwsi.executors.fake import FakeExecutor
from hrwsi.services.launcher import LauncherService

STARTED, PROCESSED, INTERNAL, EXTERNAL = 1, 2, 3, 4


def launcher(db_url: str, executor: FakeExecutor, **kw: Any) -> LauncherService:
    return LauncherService(kw.pop("cfg", None) or config(), db_url, executor, **kw)


async def test_chain_runs_in_order(db_url: str, conn: psycopg.AsyncConnection) -> None:
    """Only a VM's first task is ready; the next one becomes ready when it is processed."""
    a, b, c = await add_chain(conn, 3)
    fake = FakeExecutor(auto=False)
    service = launcher(db_url, fake)
    try:
        await service.reconcile()
        assert [k for _, k in fake.calls if _ == "submit"] == [f"task-{a}-attempt-1"]
        fake.advance(f"task-{a}-attempt-1")  # started
        fake.advance(f"task-{a}-attempt-1")  # processed
        await drive(service, lambda: _has_dispatch(conn, b))
        assert await dispatch_keys(conn, c) == []
        assert await statuses(conn, a) == [
            (f"task-{a}-attempt-1", STARTED),
            (f"task-{a}-attempt-1", PROCESSED),
        ]
    finally:
        await service.aclose()


async def _has_dispatch(conn: psycopg.AsyncConnection, task_id: int) -> bool:
    return bool(await dispatch_keys(conn, task_id))


async def test_failed_for_good_predecessor_does_not_block_the_chain(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """A task failed for good is skipped: the next task of its VM runs; ended is notified."""
    a, b = await add_chain(conn, 2)
    await conn.execute("LISTEN processing_task_ended")
    fake = FakeExecutor(default=(RunState.STARTED, RunState.INTERNAL_ERROR))
    fake.script(f"task-{b}-attempt-1", RunState.STARTED, RunState.PROCESSED)
    service = launcher(db_url, fake)
    try:
        await drive(service, lambda: has_ended(conn, b))
    finally:
        await service.aclose()
    # internal_error_retries=1: two internal errors, then ended for good
    assert await dispatch_keys(conn, a) == [f"task-{a}-attempt-1", f"task-{a}-attempt-2"]
    assert [s for _, s in await statuses(conn, a)] == [STARTED, INTERNAL, STARTED, INTERNAL]
    assert await has_ended(conn, a)
    assert [s for _, s in await statuses(conn, b)] == [STARTED, PROCESSED]
    note = await anext(conn.notifies(timeout=2))
    assert (note.channel, note.payload) == ("processing_task_ended", str(a))
    # the processed task does not notify processing_task_ended
    assert [n async for n in conn.notifies(timeout=0.3)] == []


async def test_two_launchers_racing_dispatch_each_attempt_once(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Two launchers claiming at the same time never dispatch the same attempt twice.

    Each launcher has its own executor here, so any attempt both claimed would show as a
    submit in both call logs (their periodic follow pass, which resubmits unknown keys to a
    shared platform, has already run before the tasks exist).
    """
    fakes = [FakeExecutor(auto=False), FakeExecutor(auto=False)]
    services = [launcher(db_url, f, batch_size=3) for f in fakes]
    for s in services:
        await s.follow_open()
    tasks: list[int] = []
    for vm in range(12):
        tasks += await add_chain(conn, 1, vm_name=f"vm-{vm}", first=vm)
    try:
        for _ in range(3):
            await asyncio.gather(*(s.reconcile() for s in services))
    finally:
        for s in services:
            await s.aclose()
    submitted = [k for f in fakes for m, k in f.calls if m == "submit"]
    assert sorted(submitted) == sorted(f"task-{t}-attempt-1" for t in tasks)
    assert len(await dispatch_keys(conn)) == len(tasks)
    assert all(f.runs_started > 0 for f in fakes)  # both really competed


async def test_two_launchers_on_one_platform_start_each_run_once(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Two launchers sharing a platform (as with Nomad), with follow passes, start each run once."""
    tasks: list[int] = []
    for vm in range(10):
        tasks += await add_chain(conn, 1, vm_name=f"vm-{vm}", first=vm)
    platform = FakeExecutor(auto=False)
    services = [launcher(db_url, platform, batch_size=2) for _ in range(2)]
    try:
        for _ in range(3):
            await asyncio.gather(*(s.reconcile() for s in services), services[0].follow_open())
    finally:
        for s in services:
            await s.aclose()
    assert platform.runs_started == len(tasks)
    assert len(await dispatch_keys(conn)) == len(tasks)


class BlockingSubmit(FakeExecutor):
    """A fake whose submit hangs: the launcher can be killed in the middle of it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()

    async def submit(self, attempt: Attempt) -> str:
        self.calls.append(("submit", attempt.key))
        self.entered.set()
        await asyncio.Event().wait()
        return attempt.key


async def test_launcher_killed_before_submit_runs_the_attempt_once(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Killed between recording the dispatch and submitting: a new launcher submits it, once."""
    (a,) = await add_chain(conn, 1)
    dying = BlockingSubmit()
    first = launcher(db_url, dying)
    crash = asyncio.create_task(first.reconcile())
    await asyncio.wait_for(dying.entered.wait(), 10)
    crash.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crash
    await first.aclose()
    assert await dispatch_keys(conn, a) == [f"task-{a}-attempt-1"]
    assert await statuses(conn, a) == []

    fake = FakeExecutor()
    second = launcher(db_url, fake)
    try:
        await drive(second, lambda: has_ended(conn, a))
    finally:
        await second.aclose()
    assert fake.runs_started == 1
    assert await dispatch_keys(conn, a) == [f"task-{a}-attempt-1"]
    assert [s for _, s in await statuses(conn, a)] == [STARTED, PROCESSED]


async def test_launcher_killed_after_submit_records_the_run_without_rerunning(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Submitted, then the launcher died before recording: the next records, runs nothing."""
    (a,) = await add_chain(conn, 1)
    fake = FakeExecutor()  # the platform: it keeps running after the launcher dies
    first = launcher(db_url, fake)
    await first.reconcile()  # dispatch + submit; the outcomes are never consumed
    assert fake.runs_started == 1 and await statuses(conn, a) == []
    first.executor = FakeExecutor()  # it dies: its connections go, the platform stays
    await first.aclose()
    second = launcher(db_url, fake)
    try:
        await second.reconcile()  # follows open dispatches at its first pass
    finally:
        await second.aclose()
    assert fake.runs_started == 1
    assert [s for _, s in await statuses(conn, a)] == [PROCESSED]
    assert await has_ended(conn, a)
    assert len(await rows(conn, "SELECT 1 FROM hrwsi.products")) == 1


async def test_repeated_outcomes_are_recorded_once(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Outcomes repeated, raced by two launchers or stale give one row each and one product."""
    (a,) = await add_chain(conn, 1)
    key = f"task-{a}-attempt-1"
    fake = FakeExecutor(auto=False)
    service, other = launcher(db_url, fake), launcher(db_url, fake)
    try:
        await service.reconcile()
        fake.emit(key, RunState.STARTED)
        started = await fake.status(key)
        fake.emit(key, RunState.PROCESSED, "exit code 0")
        processed = await fake.status(key)
        await asyncio.gather(service.record_outcome(started), other.record_outcome(started))
        await asyncio.gather(service.record_outcome(processed), other.record_outcome(processed))
        for late in (started, processed, started):
            await service.record_outcome(late)
        fake.emit(key, RunState.INTERNAL_ERROR)  # a contradicting late event is ignored
        await other.record_outcome(await fake.status(key))
    finally:
        await service.aclose()
        await other.aclose()
    assert await statuses(conn, a) == [(key, STARTED), (key, PROCESSED)]
    assert len(await rows(conn, "SELECT 1 FROM hrwsi.products")) == 1
    assert await has_ended(conn, a)


async def test_retries_until_the_limit_then_ends(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """External errors are retried until max_attempts_per_task, then the task has ended."""
    (a,) = await add_chain(conn, 1)
    fake = FakeExecutor(default=(RunState.STARTED, (RunState.EXTERNAL_ERROR, "node lost")))
    service = launcher(db_url, fake)
    try:
        await drive(service, lambda: has_ended(conn, a))
        await service.reconcile()
    finally:
        await service.aclose()
    assert await dispatch_keys(conn, a) == [f"task-{a}-attempt-{n}" for n in (1, 2, 3)]
    assert [s for _, s in await statuses(conn, a)] == [STARTED, EXTERNAL] * 3
    messages = await rows(
        conn,
        "SELECT DISTINCT message FROM hrwsi.processing_status_workflow"
        " WHERE processing_status_id = 4",
    )
    assert messages == [("node lost",)]
    assert fake.runs_started == 3


async def test_backoff_delays_the_retry(db_url: str, conn: psycopg.AsyncConnection) -> None:
    """After an error the retry waits for next_attempt_at; reconciling earlier does nothing."""
    (a,) = await add_chain(conn, 1)
    slow = RetryConfig(max_attempts_per_task=3, backoff_initial_s=3600, backoff_max_s=3600)
    fake = FakeExecutor(default=(RunState.EXTERNAL_ERROR,))
    service = launcher(db_url, fake, cfg=config(retry=slow))
    try:
        await drive(service, lambda: _has_status(conn, a, EXTERNAL))
        for _ in range(3):
            await service.reconcile()
    finally:
        await service.aclose()
    assert len(await dispatch_keys(conn, a)) == 1
    wait = await rows(
        conn,
        "SELECT ts.next_attempt_at > now() + interval '20 minutes', pt.has_ended"
        " FROM hrwsi.processing_tasks pt"
        " JOIN hrwsi.task_state ts ON ts.processing_task_id = pt.id WHERE pt.id = %s",
        a,
    )
    assert wait == [(True, False)]


async def _has_status(conn: psycopg.AsyncConnection, task_id: int, status: int) -> bool:
    return status in [s for _, s in await statuses(conn, task_id)]


async def test_operator_retry_reopens_a_task_ended_for_good(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """extra_attempts + 1 and has_ended = false (hrwsi retry) gives exactly one more attempt."""
    (a,) = await add_chain(conn, 1)
    once = RetryConfig(max_attempts_per_task=1, backoff_initial_s=3600, backoff_max_s=3600)
    fake = FakeExecutor(default=(RunState.EXTERNAL_ERROR,))
    service = launcher(db_url, fake, cfg=config(retry=once))
    try:
        await drive(service, lambda: has_ended(conn, a))
        assert fake.runs_started == 1
        await conn.execute(
            "WITH reopened AS (UPDATE hrwsi.processing_tasks SET has_ended = false"
            " WHERE id = %s RETURNING id)"
            " INSERT INTO hrwsi.task_state AS ts (processing_task_id, extra_attempts)"
            " SELECT id, 1 FROM reopened ON CONFLICT (processing_task_id)"
            " DO UPDATE SET extra_attempts = ts.extra_attempts + 1",
            (a,),
        )
        await drive(service, lambda: has_ended(conn, a))
        for _ in range(3):
            await service.reconcile()
    finally:
        await service.aclose()
    assert await dispatch_keys(conn, a) == [f"task-{a}-attempt-1", f"task-{a}-attempt-2"]
    assert fake.runs_started == 2


async def _dispatches_are(conn: psycopg.AsyncConnection, task_id: int, n: int) -> bool:
    return len(await dispatch_keys(conn, task_id)) == n


async def test_success_registers_one_product_and_notifies(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """A processed task gets one products row at the template path, and product_insertion fires."""
    (a,) = await add_chain(conn, 1)
    await conn.execute("LISTEN product_insertion")
    fake = FakeExecutor()
    service = launcher(db_url, fake)
    try:
        await drive(service, lambda: has_ended(conn, a))
        await service.follow_open()
        await service.reconcile()
    finally:
        await service.aclose()
    found = await rows(
        conn,
        "SELECT p.input_fk_id, p.product_path, t.code, i.date FROM hrwsi.products p"
        " JOIN hrwsi.product_type t ON t.id = p.product_type_id"
        " JOIN hrwsi.input i ON i.id = p.input_fk_id",
    )
    assert len(found) == 1
    input_id, path, code, date = found[0]
    assert code == "S2_MAJA_L2A"
    assert path == product_path(ProductInput(input_id, "MAJA_PC", "31TCH", date, "L2A", code))
    assert fake.attempts[f"task-{a}-attempt-1"].product_path == path
    note = await anext(conn.notifies(timeout=2))
    assert note.channel == "product_insertion" and json.loads(note.payload)["count"] == 1


async def test_rejected_submit_is_an_external_error_and_retried(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """An executor that refuses a submission for good gives external_error and a retry."""
    from hrwsi.domain import errors

    (a,) = await add_chain(conn, 1)

    class Refusing(FakeExecutor):
        async def submit(self, attempt: Attempt) -> str:
            if attempt.attempt == 1:
                raise errors.ExecutorRejected("bad job spec", status_code=400)
            return await super().submit(attempt)

    fake = Refusing()
    service = launcher(db_url, fake)
    try:
        await drive(service, lambda: has_ended(conn, a))
    finally:
        await service.aclose()
    assert [s for _, s in await statuses(conn, a)] == [EXTERNAL, STARTED, PROCESSED]


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _plan_nodes(child)
    return found


async def test_ready_query_uses_indexes_on_a_large_table(conn: psycopg.AsyncConnection) -> None:
    """The claim query reads processing_tasks and dispatches by index, never by a seq scan."""
    vm = (
        await (
            await conn.execute(
                "INSERT INTO hrwsi.virtual_machine (id, name, flavour)"
                " VALUES (gen_random_uuid(), 'vm', 'MAJA') RETURNING id"
            )
        ).fetchone()
    )[0]  # type: ignore[index]
    await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path) SELECT 'MAJA_PC', now(), '31TCH', 20260101, 'p' || g"
        " FROM generate_series(1, 20000) g"
    )
    await conn.execute(
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
        " has_ended) SELECT id, %s, now(), id > 50 FROM hrwsi.input",
        (vm,),
    )
    await conn.execute(
        "INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch,"
        " dispatch_date) SELECT id, 'task-' || id || '-attempt-1', now()"
        " FROM hrwsi.processing_tasks WHERE has_ended"
    )
    await conn.execute("ANALYZE")
    sql = "EXPLAIN (FORMAT JSON) " + queries.get("launcher_claim_ready")
    async with conn.transaction():
        plan = (await (await conn.execute(sql, {"limit": 100})).fetchone())[0]  # type: ignore[index]
    nodes = _plan_nodes(plan[0]["Plan"])
    seq = [n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"]
    assert "processing_tasks" not in seq, seq
    assert "nomad_job_dispatch" not in seq, seq
    assert any(
        n.get("Relation Name") == "processing_tasks" and "Index" in n["Node Type"] for n in nodes
    )
