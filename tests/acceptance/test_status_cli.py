"""``hrwsi status`` as a subprocess on a test database the launcher has worked on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))

from launcher_support import add_chain, config, drive, has_ended

from hrwsi.executors.base import RunState
from hrwsi.executors.fake import FakeExecutor
from hrwsi.services.launcher import LauncherService
from hrwsi.web import store


def _status(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env["HRWSI_DATABASE_URL"] = db_url
    return subprocess.run(
        [sys.executable, "-m", "hrwsi", "status", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_status_reports_every_state(db_url: str, conn: psycopg.AsyncConnection) -> None:
    """Tasks processed, failed for good, cancelled, waiting for retry, running and pending are
    all counted, a cancelled one as cancelled (not failed for good)."""
    ok, failed = await add_chain(conn, 2, vm_name="vm-a")
    (running,) = await add_chain(conn, 1, vm_name="vm-b", first=10)
    first, pending = await add_chain(conn, 2, vm_name="vm-c", first=20)
    fake = FakeExecutor(default=(RunState.STARTED, (RunState.INTERNAL_ERROR, "exit code 9")))
    fake.script(f"task-{ok}-attempt-1", RunState.STARTED, RunState.PROCESSED)
    fake.script(f"task-{running}-attempt-1", RunState.STARTED)
    service = LauncherService(config(), db_url, fake)
    try:
        await drive(service, lambda: has_ended(conn, failed))
    finally:
        await service.aclose()
    # first of vm-c: one internal error, its retry not yet dispatched (make it wait)
    await conn.execute(
        "WITH reopened AS (UPDATE hrwsi.processing_tasks SET has_ended = false WHERE id = %s"
        " RETURNING id) INSERT INTO hrwsi.task_state (processing_task_id, next_attempt_at)"
        " SELECT id, now() + interval '1 hour' FROM reopened ON CONFLICT (processing_task_id)"
        " DO UPDATE SET next_attempt_at = EXCLUDED.next_attempt_at",
        (first,),
    )
    await conn.execute(
        "DELETE FROM hrwsi.nomad_job_dispatch WHERE processing_task_fk_id = %s"
        " AND nomad_job_dispatch <> %s",
        (first, f"task-{first}-attempt-1"),
    )
    await conn.execute(
        "DELETE FROM hrwsi.nomad_job_dispatch WHERE processing_task_fk_id = %s", (pending,)
    )
    await conn.execute(
        "UPDATE hrwsi.processing_tasks SET has_ended = false WHERE id = %s", (pending,)
    )
    (cancelled,) = await add_chain(conn, 1, vm_name="vm-d", first=30)
    await store.cancel(db_url, cancelled, actor="t")

    done = _status(db_url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tasks"] == {
        "pending": 1,
        "running": 1,
        "waiting_retry": 1,
        "processed": 1,
        "failed": 1,
        "cancelled": 1,
    }
    assert [f["task_id"] for f in report["failed_for_good"]] == [failed]
    assert report["inputs"] == {"MAJA_PC": 6}
    assert report["products"]["S2_MAJA_L2A"] == 1
    assert [r["task_id"] for r in report["running"]] == [running]
    assert {f["message"] for f in report["recent_failures"]} == {"exit code 9"}

    people = _status(db_url)
    assert people.returncode == 0, people.stderr
    assert "waiting retry" in people.stdout and "exit code 9" in people.stdout


async def _attempt(
    conn: psycopg.AsyncConnection,
    task_id: int,
    key: str,
    status_id: int,
    message: str | None = None,
    log_path: str | None = None,
) -> None:
    """One dispatch of a task with one terminal status row (v1 tables only)."""
    cur = await conn.execute(
        "INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch,"
        " dispatch_date, log_path) VALUES (%s, %s, '2026-03-04 10:20:30.123456', %s)"
        " RETURNING id",
        (task_id, key, log_path),
    )
    row = await cur.fetchone()
    assert row is not None
    await conn.execute(
        "INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id,"
        " processing_status_id, date, message) VALUES (%s, %s, '2026-03-04 10:21:40.654321', %s)",
        (row[0], status_id, message),
    )


async def test_status_separates_retried_attempts_from_tasks_failed_for_good(
    db_url: str, conn: psycopg.AsyncConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure retried into a product is not listed as failed for good; a re-planned input
    whose two tasks failed is one failed input; each failure shows its log's last lines;
    times carry their offset, without microseconds in the tables."""
    recovered, first_try = await add_chain(conn, 2)
    await _attempt(conn, recovered, f"task-{recovered}-attempt-1", 3, "boom once")
    await _attempt(conn, recovered, f"task-{recovered}-attempt-2", 2)
    # first_try failed for good; its input was re-planned into a second task that failed too
    log = tmp_path / "second.log"
    log.write_text("starting\nreading input\nTraceback: disk full on /data\n", encoding="utf-8")
    await _attempt(conn, first_try, f"task-{first_try}-attempt-1", 3, "exit code 2")
    cur = await conn.execute(
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
        " has_ended) SELECT input_fk_id, virtual_machine_id, now(), true"
        " FROM hrwsi.processing_tasks WHERE id = %s RETURNING id",
        (first_try,),
    )
    row = await cur.fetchone()
    assert row is not None
    second_try = int(row[0])
    await _attempt(conn, second_try, f"task-{second_try}-attempt-1", 3, "exit code 3", str(log))
    await conn.execute(
        "UPDATE hrwsi.processing_tasks SET has_ended = true WHERE id = ANY(%s)",
        ([recovered, first_try],),
    )

    done = _status(db_url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tasks"]["failed"] == 2 and report["tasks"]["processed"] == 1
    assert report["failed_inputs"] == 1
    assert [f["task_id"] for f in report["failed_for_good"]] == [second_try, first_try]
    assert report["failed_for_good"][0]["log_path"] == str(log)
    outcomes = {f["task_id"]: f["outcome"] for f in report["recent_failures"]}
    assert outcomes == {
        recovered: "retried_ok",
        first_try: "failed_for_good",
        second_try: "failed_for_good",
    }
    assert report["recent_failures"][0]["date"] == "2026-03-04T10:21:40.654321+00:00"

    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns without a terminal
    people = _status(db_url)
    assert people.returncode == 0, people.stderr
    out = people.stdout
    for_good, _, retried = out.partition("Failed attempts of tasks retried")
    assert "Tasks failed for good" in for_good
    assert "disk full on /data" in for_good and "boom once" not in for_good
    assert "boom once" in retried and "retried, then processed" in retried
    assert "2026-03-04T10:21:40+00:00" in out and ".654321" not in out
    assert "inputs failed for good" in out
