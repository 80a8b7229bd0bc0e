"""The launcher's rule for a dispatch the executor no longer knows, with the local executor:
only a dispatch never acknowledged is submitted again; an acknowledged one ends as lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
from launcher_support import add_chain, config, drive, has_ended, rows, statuses

from hrwsi.executors.local import LocalExecutor
from hrwsi.services.launcher import LOST_TRACK, LauncherService

STARTED, PROCESSED, INTERNAL, EXTERNAL = 1, 2, 3, 4

# Attempt 1 runs until killed; attempt 2 writes its product and exits 0.
ROUTINE = """
import os, pathlib, time
if os.environ["HRWSI_ATTEMPT"] == "1":
    time.sleep(120)
out = pathlib.Path(os.environ["HRWSI_DATA_ROOT"]) / os.environ["HRWSI_PRODUCT_PATH"].lstrip("/")
out.mkdir(parents=True)
(out / "product.txt").write_text("ok")
"""


def service(db_url: str, tmp_path: Path) -> LauncherService:
    executor = LocalExecutor(tmp_path / "runs", tmp_path / "data", poll_interval_s=0.05)
    return LauncherService(config(maja_command=("{python}", "-c", ROUTINE)), db_url, executor)


async def test_a_local_run_started_and_no_longer_known_is_not_run_again(
    db_url: str, conn: psycopg.AsyncConnection, tmp_path: Path
) -> None:
    """A local run the executor acknowledged and then lost every trace of (its work files
    gone) ends as an external error and is retried as attempt 2, never run again as 1."""
    (a,) = await add_chain(conn, 1)
    first_key, second_key = f"task-{a}-attempt-1", f"task-{a}-attempt-2"
    first = service(db_url, tmp_path)
    await first.reconcile()  # submitted and acknowledged; its outcome is never recorded
    for _ in range(100):
        if (tmp_path / "runs" / f"{first_key}.state.json").exists():
            break
        await asyncio.sleep(0.05)
    await first.aclose()
    for path in (tmp_path / "runs").glob(f"{first_key}.*"):
        path.unlink()  # e.g. a wiped work directory: the executor knows nothing of it
    second = service(db_url, tmp_path)
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
    assert not (tmp_path / "runs" / f"{first_key}.log").exists()  # attempt 1 never restarted
