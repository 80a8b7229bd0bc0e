"""``hrwsi status`` as a subprocess on a test database the launcher has worked on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))

from launcher_support import add_chain, config, drive, has_ended

from hrwsi.executors.base import RunState
from hrwsi.executors.fake import FakeExecutor
from hrwsi.services.launcher import LauncherService


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
    """Tasks processed, failed for good, waiting for retry, running and pending are all counted."""
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

    done = _status(db_url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tasks"] == {
        "pending": 1,
        "running": 1,
        "waiting_retry": 1,
        "processed": 1,
        "failed": 1,
    }
    assert report["inputs"] == {"MAJA_PC": 5}
    assert report["products"]["S2_MAJA_L2A"] == 1
    assert [r["task_id"] for r in report["running"]] == [running]
    assert {f["message"] for f in report["recent_failures"]} == {"exit code 9"}

    people = _status(db_url)
    assert people.returncode == 0, people.stderr
    assert "waiting retry" in people.stdout and "exit code 9" in people.stdout
