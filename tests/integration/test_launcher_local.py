"""The launcher with the local executor: real subprocesses end with the right status and a retry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from launcher_support import add_chain, config, dispatch_keys, drive, has_ended, rows, statuses

from hrwsi.executors.local import LocalExecutor
from hrwsi.services.launcher import LauncherService

STARTED, PROCESSED, INTERNAL, EXTERNAL = 1, 2, 3, 4

# Attempt 1 misbehaves as told by argv[1]; attempt 2 writes its product and exits 0.
ROUTINE = """
import os, pathlib, signal, sys, time
if os.environ["HRWSI_ATTEMPT"] == "1":
    how = sys.argv[1]
    if how == "fail":
        print("cannot read input", file=sys.stderr)
        sys.exit(2)
    if how == "hang":
        time.sleep(120)
    if how == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
out = pathlib.Path(os.environ["HRWSI_DATA_ROOT"]) / os.environ["HRWSI_PRODUCT_PATH"].lstrip("/")
out.mkdir(parents=True)
(out / "product.txt").write_text(os.environ["HRWSI_INPUT_PATH"])
"""


def service(db_url: str, tmp_path: Path, how: str) -> LauncherService:
    cfg = config(maja_command=("{python}", "-c", ROUTINE, how))
    executor = LocalExecutor(
        tmp_path / "runs", tmp_path / "data", timeout_factor=4 / 60, poll_interval_s=0.05
    )
    return LauncherService(cfg, db_url, executor)


@pytest.mark.parametrize(
    ("how", "first_status", "message"),
    [
        ("fail", INTERNAL, "exit code 2"),
        ("hang", EXTERNAL, "timed out"),
        ("killed", EXTERNAL, "SIGKILL"),
        ("ok", PROCESSED, "exit code 0"),
    ],
)
async def test_local_routine_outcome_and_retry(
    db_url: str,
    conn: psycopg.AsyncConnection,
    tmp_path: Path,
    how: str,
    first_status: int,
    message: str,
) -> None:
    """A local routine that fails, hangs or is killed is recorded as such and retried to success."""
    (a,) = await add_chain(conn, 1)
    launcher = service(db_url, tmp_path, how)
    try:
        await drive(launcher, lambda: has_ended(conn, a), timeout=60)
    finally:
        await launcher.aclose()
    found = [s for _, s in await statuses(conn, a)]
    expected = [STARTED, first_status] + ([] if how == "ok" else [STARTED, PROCESSED])
    assert found == expected
    first = await rows(
        conn,
        "SELECT w.message, d.log_path FROM hrwsi.processing_status_workflow w"
        " JOIN hrwsi.nomad_job_dispatch d ON d.id = w.nomad_job_dispatch_fk_id"
        " WHERE d.nomad_job_dispatch = %s AND w.processing_status_id <> 1",
        f"task-{a}-attempt-1",
    )
    assert message in first[0][0]
    assert first[0][1] and os.path.isfile(first[0][1])  # noqa: ASYNC240 - after the runs
    (path,) = (await rows(conn, "SELECT product_path FROM hrwsi.products"))[0]
    written = tmp_path / "data" / path.lstrip("/") / "product.txt"
    with open(written) as product:  # noqa: ASYNC230 - a small file, after the runs
        assert product.read().endswith(".SAFE")
    assert len(await dispatch_keys(conn, a)) == (1 if how == "ok" else 2)


_DYING_LAUNCHER = """
import asyncio, sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from launcher_support import config
from hrwsi.executors.local import LocalExecutor
from hrwsi.services.launcher import LauncherService

async def main():
    db_url, root, code = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    executor = LocalExecutor(root / "runs", root / "data")
    service = LauncherService(config(maja_command=("{python}", "-c", code)), db_url, executor)
    await service.reconcile()
    while not list((root / "runs").glob("*.state.json")):  # the run has started
        await asyncio.sleep(0.01)
    print("dispatched", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _kill_launcher_after_dispatch(db_url: str, root: Path, code: str) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _DYING_LAUNCHER,
            db_url,
            str(root),
            code,
            str(Path(__file__).parent),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "dispatched"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()


async def test_launcher_killed_mid_run_reattaches_and_runs_once(
    db_url: str, conn: psycopg.AsyncConnection, tmp_path: Path
) -> None:
    """A launcher SIGKILLed after submitting: the next one reattaches; the routine ran once."""
    (a,) = await add_chain(conn, 1)
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    code = (
        f"import os, time\nopen({str(runs)!r}, 'a').write('run\\n')\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
    )
    _kill_launcher_after_dispatch(db_url, tmp_path, code)
    assert await statuses(conn, a) == []
    executor = LocalExecutor(tmp_path / "runs", tmp_path / "data", poll_interval_s=0.05)
    launcher = LauncherService(config(maja_command=("{python}", "-c", code)), db_url, executor)
    try:
        await launcher.reconcile()
        assert [s for _, s in await statuses(conn, a)] == [STARTED]
        go.touch()
        await drive(launcher, lambda: has_ended(conn, a), timeout=30)
    finally:
        await launcher.aclose()
    assert [s for _, s in await statuses(conn, a)] == [STARTED, PROCESSED]
    assert await dispatch_keys(conn, a) == [f"task-{a}-attempt-1"]
    with open(runs) as counted:  # noqa: ASYNC230 - a small file, after the runs
        assert counted.read() == "run\n"
