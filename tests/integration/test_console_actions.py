"""Console actions on a real database: cancel, pause / resume, retry, and what they record."""

from __future__ import annotations

import psycopg
import pytest
from launcher_support import add_chain, config, dispatch_keys, drive, rows

from hrwsi.db import queries
from hrwsi.executors.base import RunState
from hrwsi.executors.fake import FakeExecutor
from hrwsi.services.launcher import LauncherService
from hrwsi.web import store

EXTERNAL_ERROR = 4


def launcher(db_url: str, executor: FakeExecutor) -> LauncherService:
    return LauncherService(config(), db_url, executor)


async def _state(conn: psycopg.AsyncConnection, task_id: int) -> str:
    found = await rows(
        conn,
        "SELECT hrwsi.task_state_of(id, has_ended) FROM hrwsi.processing_tasks WHERE id = %s",
        task_id,
    )
    return str(found[0][0])


async def test_cancel_running_task_stops_its_run_and_never_runs_again(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """A running task cancelled: the executor is asked to stop the run, the attempt is an
    external error 'cancelled by <actor>', the task is cancelled, never dispatched again and
    its input is not queued for re-planning."""
    (task,) = await add_chain(conn, 1)
    await conn.execute("DELETE FROM hrwsi.orchestrator_backlog")  # as a planning pass leaves it
    fake = FakeExecutor(auto=False)
    service = launcher(db_url, fake)
    try:
        await service.reconcile()
        key = f"task-{task}-attempt-1"
        fake.advance(key)  # started
        await drive(service, lambda: _is(conn, task, "running"))
        done = await store.cancel(db_url, task, actor="console:alice", reason="wrong input")
        assert done["was"] == "running"
        await service.reconcile()
        assert ("cancel", key) in fake.calls
        status = await rows(
            conn,
            "SELECT w.processing_status_id, w.message FROM hrwsi.processing_status_workflow w"
            " JOIN hrwsi.nomad_job_dispatch d ON d.id = w.nomad_job_dispatch_fk_id"
            " WHERE d.processing_task_fk_id = %s ORDER BY w.id DESC LIMIT 1",
            task,
        )
        assert status == [(EXTERNAL_ERROR, "cancelled by console:alice")]
        # The executor's own "cancelled" event arrives later and changes nothing.
        await drive(service, lambda: _no_backlog(fake))
        assert await _state(conn, task) == "cancelled"
        for _ in range(3):
            await service.reconcile()
        assert await dispatch_keys(conn, task) == [key]
        backlog = await rows(
            conn,
            "SELECT b.input_id FROM hrwsi.orchestrator_backlog b"
            " JOIN hrwsi.processing_tasks pt ON pt.input_fk_id = b.input_id WHERE pt.id = %s",
            task,
        )
        assert backlog == []
        recorded = await rows(conn, "SELECT actor, action, target FROM hrwsi.operator_action")
        assert recorded == [("console:alice", "cancel", f"task:{task}")]
    finally:
        await service.aclose()


async def test_cancelled_task_is_not_replanned_even_by_a_sweep(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """The orchestrator's candidate check drops an input whose task was cancelled."""
    (task,) = await add_chain(conn, 1)
    await store.cancel(db_url, task, actor="t")
    (input_id,) = (
        r[0]
        for r in await rows(
            conn, "SELECT input_fk_id FROM hrwsi.processing_tasks WHERE id = %s", task
        )
    )
    await conn.execute(
        "INSERT INTO hrwsi.orchestrator_backlog (input_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (input_id,),
    )
    cur = await conn.execute(
        queries.get("orchestrator_pending_inputs"), {"ids": [input_id], "max_tasks_per_input": 5}
    )
    assert await cur.fetchall() == []


async def test_cancel_refuses_ended_and_unknown_tasks(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Only live tasks can be cancelled; the refusal says why."""
    (task,) = await add_chain(conn, 1)
    await store.cancel(db_url, task, actor="t")
    with pytest.raises(store.ActionRefused, match="cancelled"):
        await store.cancel(db_url, task, actor="t")
    with pytest.raises(Exception, match="999999"):
        await store.cancel(db_url, 999_999, actor="t")


async def test_retry_by_hand_reopens_a_cancelled_task(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """A cancelled task runs again only when retried by hand; it is then no longer cancelled."""
    (task,) = await add_chain(conn, 1)
    await store.cancel(db_url, task, actor="t")
    done = await store.retry(db_url, task, actor="console:bob", reason="fixed")
    assert done["extra_attempts"] == 1
    assert await _state(conn, task) == "pending"
    assert await rows(conn, "SELECT * FROM hrwsi.task_cancel") == []
    fake = FakeExecutor()
    service = launcher(db_url, fake)
    try:
        await drive(service, lambda: _is(conn, task, "processed"))
    finally:
        await service.aclose()
    actions = await rows(conn, "SELECT action FROM hrwsi.operator_action ORDER BY id")
    assert actions == [("cancel",), ("retry",)]


async def test_pause_stops_launching_and_resume_lets_it_go(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Nothing is launched for a paused condition; after resume its tasks run."""
    (task,) = await add_chain(conn, 1)
    assert await store.pause(db_url, "MAJA_PC", actor="t", reason="maintenance") is True
    assert await store.pause(db_url, "MAJA_PC", actor="t") is False
    fake = FakeExecutor()
    service = launcher(db_url, fake)
    try:
        await service.reconcile()
        assert await dispatch_keys(conn, task) == []
        assert await store.resume(db_url, "MAJA_PC", actor="t") is True
        assert await store.resume(db_url, "MAJA_PC", actor="t") is False
        await drive(service, lambda: _is(conn, task, "processed"))
    finally:
        await service.aclose()
    with pytest.raises(store.ActionRefused):
        await store.pause(db_url, "NO_SUCH_PC", actor="t")
    actions = await rows(conn, "SELECT action, target FROM hrwsi.operator_action ORDER BY id")
    assert actions == [("pause", "condition:MAJA_PC"), ("resume", "condition:MAJA_PC")]


async def test_paused_condition_is_not_planned(db_url: str, conn: psycopg.AsyncConnection) -> None:
    """Backlog candidates of a paused condition are not read by a planning pass."""
    await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path) VALUES ('MAJA_PC', now(), '31TCH', 20260304, '/x/1'),"
        " ('FSC_PC', now(), '31TCH', 20260304, '/x/2')"
    )
    await store.pause(db_url, "MAJA_PC", actor="t")
    cur = await conn.execute(queries.get("orchestrator_backlog_ids"), {"limit": 10})
    ids = [r[0] for r in await cur.fetchall()]
    conditions = await rows(
        conn, "SELECT processing_condition_name FROM hrwsi.input WHERE id = ANY(%s)", ids
    )
    assert conditions == [("FSC_PC",)]


async def _is(conn: psycopg.AsyncConnection, task_id: int, state: str) -> bool:
    return await _state(conn, task_id) == state


async def _no_backlog(fake: FakeExecutor) -> bool:
    return fake.backlog == 0


async def test_task_details_show_every_attempt(db_url: str, conn: psycopg.AsyncConnection) -> None:
    """The task view lists each attempt with its status history and message, and the chain."""
    a, b = await add_chain(conn, 2)
    fake = FakeExecutor(auto=False)
    fake.script(f"task-{a}-attempt-1", RunState.STARTED, (RunState.EXTERNAL_ERROR, "node lost"))
    service = launcher(db_url, fake)
    try:
        await service.reconcile()
        fake.advance(f"task-{a}-attempt-1")
        fake.advance(f"task-{a}-attempt-1")
        await drive(service, lambda: _has_two(conn, a, fake))
    finally:
        await service.aclose()
    c = await store.connect(db_url)
    async with c:
        d = await store.task(c, a)
    assert d is not None
    assert [x["key"] for x in d["attempts"]][:2] == [f"task-{a}-attempt-1", f"task-{a}-attempt-2"]
    first = d["attempts"][0]
    assert [s["status"] for s in first["statuses"]] == ["started", "external_error"]
    assert first["statuses"][-1]["message"] == "node lost"
    assert [t["id"] for t in d["chain"]] == [a, b]
    assert d["position"] == 1


async def _has_two(conn: psycopg.AsyncConnection, task: int, fake: FakeExecutor) -> bool:
    for key in list(fake.attempts):
        fake.advance(key)
    return len(await dispatch_keys(conn, task)) >= 2


async def test_cancel_drops_a_waiting_retry_and_counts_as_cancelled_not_failed(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """A task waiting for its retry, cancelled: its task_state.next_attempt_at goes, and the
    status counts (hrwsi status), the failed-for-good lists (status and dashboard) and the
    failed-input count see it as cancelled, not failed; another ended task still fails."""
    cancelled, failed = await add_chain(conn, 2)
    await conn.execute(
        "INSERT INTO hrwsi.task_state (processing_task_id, next_attempt_at)"
        " VALUES (%s, now() + interval '1 hour')",
        (cancelled,),
    )
    await store.cancel(db_url, cancelled, actor="t", reason="bad input")
    ended = "UPDATE hrwsi.processing_tasks SET has_ended = true WHERE id = %s"
    await conn.execute(ended, (failed,))
    waiting = "SELECT next_attempt_at FROM hrwsi.task_state WHERE processing_task_id = %s"
    assert await rows(conn, waiting, cancelled) == [(None,)]
    by_state = dict(await rows(conn, queries.get("launcher_status_tasks")))
    assert by_state == {"cancelled": 1, "failed": 1}
    for name in ("status_failed_for_good", "metrics_failed_for_good"):
        cur = await conn.execute(queries.get(name), {"limit": 10})
        assert [r[0] for r in await cur.fetchall()] == [failed], name
    assert await rows(conn, queries.get("status_failed_inputs")) == [(1,)]
