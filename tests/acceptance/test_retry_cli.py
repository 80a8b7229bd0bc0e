"""``hrwsi retry TASK_ID`` as an operator runs it: a subprocess against a real database."""

from __future__ import annotations

import asyncio
import os
import sys

import psycopg


async def hrwsi(db_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env["HRWSI_DATABASE_URL"] = db_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hrwsi",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def make_task(conn: psycopg.AsyncConnection, path: str, status: int | None) -> int:
    """A task of a new input on a new VM; with a status: one dispatch with it, then ended."""
    cur = await conn.execute(
        "WITH i AS (INSERT INTO hrwsi.input (processing_condition_name, date, tile,"
        "           measurement_day, input_path, mission)"
        "           VALUES ('MAJA_PC', now(), '31TCH', 20240102, %s, 'S2') RETURNING id),"
        " vm AS (INSERT INTO hrwsi.virtual_machine (id, name, flavour)"
        "        VALUES (gen_random_uuid(), 'vm-test', 'MAJA') RETURNING id)"
        " INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date)"
        " SELECT i.id, vm.id, now() FROM i, vm RETURNING id",
        (path,),
    )
    row = await cur.fetchone()
    assert row is not None
    task_id = int(row[0])
    if status is not None:
        await conn.execute(
            "WITH d AS (INSERT INTO hrwsi.nomad_job_dispatch"
            "           (processing_task_fk_id, nomad_job_dispatch, dispatch_date)"
            "           VALUES (%s, 'job/' || %s, now()) RETURNING id)"
            " INSERT INTO hrwsi.processing_status_workflow"
            "   (nomad_job_dispatch_fk_id, processing_status_id, date) SELECT id, %s, now() FROM d",
            (task_id, task_id, status),
        )
        await conn.execute(
            "UPDATE hrwsi.processing_tasks SET has_ended = true WHERE id = %s", (task_id,)
        )
    return task_id


async def test_retry_reopens_a_failed_task_records_it_and_wakes_the_launcher(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """A failed task is reopened with one extra attempt, the action is recorded, the launcher
    is notified; a second retry after another failure grants one more."""
    task_id = await make_task(conn, "/a", status=3)
    await conn.execute("LISTEN processing_task_insertion")
    code, out, err = await hrwsi(db_url, "retry", str(task_id), "--reason", "disk was full")
    assert code == 0, err
    assert f"task {task_id} reopened after 1 dispatch(es): extra_attempts=1" in out
    cur = await conn.execute(
        "SELECT pt.has_ended, ts.extra_attempts FROM hrwsi.processing_tasks pt"
        " JOIN hrwsi.task_state ts ON ts.processing_task_id = pt.id WHERE pt.id = %s",
        (task_id,),
    )
    assert await cur.fetchone() == (False, 1)
    cur = await conn.execute(
        "SELECT reason, dispatches_before, extra_attempts_after FROM hrwsi.task_retry"
        " WHERE processing_task_fk_id = %s",
        (task_id,),
    )
    assert await cur.fetchall() == [("disk was full", 1, 1)]
    note = await anext(conn.notifies(timeout=2))
    assert note.channel == "processing_task_insertion" and f'"min_id" : {task_id}' in note.payload

    await conn.execute(
        "UPDATE hrwsi.processing_tasks SET has_ended = true WHERE id = %s", (task_id,)
    )
    code, out, err = await hrwsi(db_url, "retry", str(task_id))
    assert code == 0, err
    assert "extra_attempts=2" in out


async def test_retry_of_an_unknown_task_fails_clearly(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """An id that names no task exits 1 with a message naming it, and changes nothing."""
    code, _, err = await hrwsi(db_url, "retry", "424242")
    assert code == 1
    assert "processing task 424242 does not exist" in err
    cur = await conn.execute("SELECT count(*) FROM hrwsi.task_retry")
    assert await cur.fetchone() == (0,)


async def test_retry_refuses_tasks_that_did_not_fail_for_good(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """A processed task, a task still live, and a task whose input was re-planned into a live
    task are refused with exit 1 and the reason; none is changed."""
    processed = await make_task(conn, "/p", status=2)
    live = await make_task(conn, "/l", status=None)
    superseded = await make_task(conn, "/s", status=4)
    await conn.execute(
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date)"
        " SELECT input_fk_id, virtual_machine_id, now() FROM hrwsi.processing_tasks"
        " WHERE id = %s",
        (superseded,),
    )
    expected = {
        processed: "processed successfully",
        live: "has not ended",
        superseded: "was re-planned into task",
    }
    for task_id, why in expected.items():
        code, _, err = await hrwsi(db_url, "retry", str(task_id))
        assert code == 1, err
        assert f"processing task {task_id} cannot be retried" in err and why in err
    cur = await conn.execute(
        "SELECT count(*), sum(coalesce(ts.extra_attempts, 0)) FROM hrwsi.processing_tasks pt"
        " LEFT JOIN hrwsi.task_state ts ON ts.processing_task_id = pt.id"
    )
    assert await cur.fetchone() == (4, 0)


async def test_retry_says_what_happens_from_the_launchers_heartbeat(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """No launcher: the task waits for 'hrwsi run'; a stale one is named as gone; a fresh
    heartbeat: a launcher dispatches it. Never 'the launcher dispatches it' on faith."""
    first = await make_task(conn, "/h1", status=3)
    code, out, err = await hrwsi(db_url, "retry", str(first))
    assert code == 0, err
    assert "no launcher is running: it is dispatched when 'hrwsi run' starts" in out

    await conn.execute(
        "INSERT INTO hrwsi.service_heartbeat (process_id, host, pid, services, started_at,"
        " last_seen, version) VALUES ('gone:7:1', 'gone', 7, '{launcher}', now(),"
        " now() - interval '10 minutes', '0')"
    )
    second = await make_task(conn, "/h2", status=3)
    code, out, err = await hrwsi(db_url, "retry", str(second))
    assert code == 0, err
    assert "no launcher is running (the last one, gone pid 7, was seen at" in out

    await conn.execute(
        "INSERT INTO hrwsi.service_heartbeat (process_id, host, pid, services, started_at,"
        " version) VALUES ('here:8:1', 'here', 8, '{orchestrator,launcher}', now(), '0')"
    )
    third = await make_task(conn, "/h3", status=3)
    code, out, err = await hrwsi(db_url, "retry", str(third))
    assert code == 0, err
    assert "a launcher is running (here pid 8, seen " in out
    assert " s ago): it dispatches it" in out and "gone" not in out
