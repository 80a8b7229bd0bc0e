"""The dashboard serves its page and a JSON snapshot that reflects the tables."""

from __future__ import annotations

import httpx
import psycopg

from hrwsi.web.dashboard import create_app


async def test_status_reflects_inputs_and_page_is_served(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Inputs inserted in the database show up in /api/status; / and /healthz answer."""
    await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) SELECT 'MAJA_PC', now(), '31TCH', 20240102, '/p/' || g, 'S2'"
        " FROM generate_series(1, 3) AS g"
    )
    app = create_app(db_url, title="<test>")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        page = await client.get("/")
        assert page.status_code == 200
        assert "&lt;test&gt;" in page.text  # the title is escaped
        status = (await client.get("/api/status")).json()
        assert status["conditions"] == [
            {
                "condition": "MAJA_PC",
                "inputs": 3,
                "tasks": 0,
                "attempts": 0,
                "failed_attempts": 0,
                "inputs_with_product": 0,
                "tasks_ended": 0,
            }
        ]
        assert (await client.get("/healthz")).text == "ok\n"


async def test_unreachable_database_answers_503() -> None:
    """With the database gone, /healthz and /api/status answer 503 instead of crashing."""
    app = create_app("postgresql://nobody@127.0.0.1:1/none")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dash") as client:
        assert (await client.get("/healthz")).status_code == 503


async def test_failed_for_good_is_the_newest_twenty(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Of 25 tasks that ended unprocessed, the dashboard lists the 20 newest, newest first."""
    await conn.execute(
        "INSERT INTO hrwsi.virtual_machine (id, name, flavour)"
        " VALUES ('00000000-0000-0000-0000-000000000001', 'vm', 'MAJA');"
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) SELECT 'MAJA_PC', now(), '31TCH', 20240102, '/f/' || g, 'S2'"
        " FROM generate_series(1, 25) AS g;"
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
        " has_ended) SELECT id, '00000000-0000-0000-0000-000000000001', now(), true"
        " FROM hrwsi.input ORDER BY id;"
        "INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch,"
        " dispatch_date) SELECT id, 'task-' || id || '-attempt-1', now()"
        " FROM hrwsi.processing_tasks;"
        "INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id,"
        " processing_status_id, date, message) SELECT id, 3, now(), 'exit code 1'"
        " FROM hrwsi.nomad_job_dispatch"
    )
    cur = await conn.execute("SELECT id FROM hrwsi.processing_tasks ORDER BY id DESC LIMIT 20")
    newest = [r[0] for r in await cur.fetchall()]
    app = create_app(db_url)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        failed = (await client.get("/api/status")).json()["failed_for_good"]
    assert [f["task_id"] for f in failed] == newest
    assert {f["last_message"] for f in failed} == {"exit code 1"}
