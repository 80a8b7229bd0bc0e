"""The launcher records groups of outcomes in one transaction: once each, in order, raced."""

from __future__ import annotations

import asyncio

import psycopg
from launcher_support import add_chain, config, dispatch_keys, has_ended, rows, statuses

from hrwsi.config import RetryConfig
from hrwsi.executors.base import Outcome, RunState
from hrwsi.executors.fake import FakeExecutor
from hrwsi.services.launcher import LauncherService

STARTED, PROCESSED, INTERNAL = 1, 2, 3


async def test_a_group_records_each_outcome_once_in_order(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Started and processed of several tasks, with repeats, in one group: one row each."""
    a, b = await add_chain(conn, 1, "vm-a"), await add_chain(conn, 1, "vm-b", first=10)
    fake = FakeExecutor(auto=False)
    service = LauncherService(config(), db_url, fake)
    try:
        await service.reconcile()
        ka, kb = f"task-{a[0]}-attempt-1", f"task-{b[0]}-attempt-1"
        group = [
            Outcome(ka, RunState.STARTED, log_path="/logs/a"),
            Outcome(kb, RunState.STARTED),
            Outcome(ka, RunState.STARTED, log_path="/logs/a"),
            Outcome(ka, RunState.PROCESSED, "exit code 0"),
            Outcome(kb, RunState.INTERNAL_ERROR, "exit code 3"),
            Outcome(ka, RunState.INTERNAL_ERROR, "late and contradicting"),
            Outcome("task-999999-attempt-1", RunState.PROCESSED),  # unknown: ignored
        ]
        assert await service.record_outcomes(group)
    finally:
        await service.aclose()
    assert await statuses(conn, a[0]) == [(ka, STARTED), (ka, PROCESSED)]
    assert await statuses(conn, b[0]) == [(kb, STARTED), (kb, INTERNAL)]
    assert await has_ended(conn, a[0]) and not await has_ended(conn, b[0])
    assert await rows(conn, "SELECT count(*) FROM hrwsi.products") == [(1,)]
    assert await rows(
        conn, "SELECT log_path FROM hrwsi.nomad_job_dispatch WHERE nomad_job_dispatch = %s", ka
    ) == [("/logs/a",)]
    assert [k for op, k in fake.calls if op == "forget"] == [ka, kb, ka]


async def test_two_launchers_recording_overlapping_groups_record_once(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Two launchers recording the same outcomes in groups (keys in opposite orders) write once."""
    tasks = [(await add_chain(conn, 1, f"vm-{n}", first=n * 10))[0] for n in range(6)]
    fake = FakeExecutor(auto=False)
    one, two = LauncherService(config(), db_url, fake), LauncherService(config(), db_url, fake)
    try:
        await one.reconcile()
        keys = [f"task-{t}-attempt-1" for t in tasks]
        group = [Outcome(k, RunState.STARTED) for k in keys] + [
            Outcome(k, RunState.PROCESSED) for k in keys
        ]
        other = [Outcome(k, RunState.STARTED) for k in reversed(keys)] + [
            Outcome(k, RunState.PROCESSED) for k in reversed(keys)
        ]
        results = await asyncio.gather(one.record_outcomes(group), two.record_outcomes(other))
        assert all(results)
    finally:
        await one.aclose()
        await two.aclose()
    for task, key in zip(tasks, keys, strict=True):
        assert await statuses(conn, task) == [(key, STARTED), (key, PROCESSED)]
    assert await rows(conn, "SELECT count(*) FROM hrwsi.products") == [(len(tasks),)]


async def test_recording_a_processed_task_dispatches_its_successor_at_once(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """The next task of a chain is dispatched by the recording itself, with no reconcile pass,
    and a failed-for-good predecessor releases its successor the same way."""
    a, b, c = await add_chain(conn, 3)
    fake = FakeExecutor(auto=False)
    cfg = config(retry=RetryConfig(max_attempts_per_task=1, internal_error_retries=0))
    service = LauncherService(cfg, db_url, fake)
    try:
        await service.reconcile()
        ka, kb = f"task-{a}-attempt-1", f"task-{b}-attempt-1"
        assert await service.record_outcomes([Outcome(ka, RunState.PROCESSED)])
        assert await dispatch_keys(conn, b) == [kb]
        assert await dispatch_keys(conn, c) == []
        assert await service.record_outcomes([Outcome(kb, RunState.INTERNAL_ERROR, "exit 1")])
        assert await has_ended(conn, b)
        assert await dispatch_keys(conn, c) == [f"task-{c}-attempt-1"]
    finally:
        await service.aclose()


async def test_a_follow_pass_does_not_resubmit_a_run_recorded_since_it_listed_it(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """A dispatch listed open, then recorded and forgotten by the recorder, is not run again."""
    (a,) = await add_chain(conn, 1)
    fake = FakeExecutor(auto=False)
    service = LauncherService(config(), db_url, fake)
    try:
        await service.reconcile()
        key = f"task-{a}-attempt-1"
        stale = await service.store.open_dispatches()
        assert [r.key for r in stale] == [key]
        fake.emit(key, RunState.PROCESSED, "exit code 0")
        assert await service.record_outcomes([await fake.status(key)])
        assert (await fake.status(key)).state is RunState.UNKNOWN  # forgotten
        await service._follow(stale)
        assert [k for op, k in fake.calls if op == "submit"] == [key]
    finally:
        await service.aclose()
    assert await statuses(conn, a) == [(key, PROCESSED)]
