"""The console over HTTP (ASGI, real database): read-only without a token, CSRF, metrics."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from launcher_support import add_chain
from prometheus_client.parser import text_string_to_metric_families

from hrwsi.config import Config
from hrwsi.web import store
from hrwsi.web.console import create_console

TOKEN = "s3cret-token"


async def _client(db_url: str, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_console(db_url, Config(), token=token, cache_s=0)
    transport = httpx.ASGITransport(app=app)
    # The transport does not run the lifespan: run it, so the console closes its connections.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://console") as client,
    ):
        yield client


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(db_url, TOKEN):
        yield c


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]*)"', html)
    assert match is not None
    return match[1]


async def test_read_only_console_refuses_every_action(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Without HRWSI_DASHBOARD_TOKEN an action is refused (403) and changes nothing."""
    (task,) = await add_chain(conn, 1)
    async for c in _client(db_url, None):
        page = await c.get(f"/tasks/{task}")
        assert page.status_code == 200 and "read-only" in page.text
        refused = await c.post(f"/tasks/{task}/cancel", data={"csrf": "x"})
        assert refused.status_code == 403
    rows = await (await conn.execute("SELECT count(*) FROM hrwsi.task_cancel")).fetchone()
    assert rows == (0,)


async def test_action_needs_session_and_csrf(
    client: httpx.AsyncClient, conn: psycopg.AsyncConnection
) -> None:
    """Signed in but without the CSRF value, or with a forged one, the POST is refused."""
    (task,) = await add_chain(conn, 1)
    page = await client.get("/login")
    csrf = _csrf(page.text)
    assert (await client.post(f"/tasks/{task}/cancel")).status_code == 401
    signed = await client.post(
        "/login", data={"csrf": csrf, "token": TOKEN, "actor": "eve<script>"}
    )
    assert signed.status_code == 303
    assert (
        await client.post(f"/tasks/{task}/cancel", data={"csrf": "forged.x"})
    ).status_code == 403
    nonce = csrf.split(".")[0]
    forged = f"{nonce}.{'0' * 64}"
    assert (await client.post(f"/tasks/{task}/cancel", data={"csrf": forged})).status_code == 403
    done = await client.post(f"/tasks/{task}/cancel", data={"csrf": csrf})
    assert done.status_code == 303
    actor = await (await conn.execute("SELECT actor FROM hrwsi.operator_action")).fetchone()
    assert actor == ("console:evescript",)


async def test_bearer_token_for_scripts(
    client: httpx.AsyncClient, conn: psycopg.AsyncConnection
) -> None:
    """A script may act with Authorization: Bearer <token> (compared in constant time)."""
    wrong = await client.post("/conditions/MAJA_PC/pause", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = await client.post(
        "/conditions/MAJA_PC/pause", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert ok.status_code == 200 and ok.json()["ok"] is True
    paused = await (await conn.execute("SELECT paused_by FROM hrwsi.condition_pause")).fetchall()
    assert paused == [("console:api",)]


async def test_metrics_scrape_cleanly_and_healthz(
    client: httpx.AsyncClient, conn: psycopg.AsyncConnection
) -> None:
    """/metrics parses with prometheus_client's parser and counts the tables' tasks."""
    await add_chain(conn, 2)
    response = await client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["hrwsi_database_up"].samples[0].value == 1
    depth = {
        (s.labels["state"], s.labels["condition"]): s.value
        for s in families["hrwsi_queue_depth"].samples
    }
    assert depth[("pending", "MAJA_PC")] == 2
    for name in (
        "hrwsi_planner_pass_seconds",
        "hrwsi_notification_to_action_seconds",
        "hrwsi_catalogue_request_errors",
        "hrwsi_nomad_request_errors",
        "hrwsi_inputs_harvested",
        "hrwsi_tasks_planned",
        "hrwsi_attempts",
    ):
        assert name in families, name
    assert (await client.get("/healthz")).text == "ok\n"


async def test_inputs_keyset_pages_cover_every_match_once(
    db_url: str, conn: psycopg.AsyncConnection
) -> None:
    """Walking the filtered pages (with a small scan window) yields exactly the matching ids,
    newest first, each once — the same as a plain filter over the table."""
    await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path) SELECT CASE WHEN mod(g, 3) = 0 THEN 'FSC_PC' ELSE 'MAJA_PC' END, now(),"
        " CASE WHEN mod(g, 4) = 0 THEN '32TLR' ELSE '31TCH' END, 20260301 + mod(g, 7),"
        " '/p/' || g FROM generate_series(1, 500) AS g"
    )
    flt = store.InputFilter(condition="MAJA_PC", tile="32TLR", day_from=20260302, day_to=20260305)
    expected = [
        r[0]
        for r in await (
            await conn.execute(
                "SELECT id FROM hrwsi.input WHERE processing_condition_name = 'MAJA_PC'"
                " AND tile = '32TLR' AND measurement_day BETWEEN 20260302 AND 20260305"
                " ORDER BY id DESC"
            )
        ).fetchall()
    ]
    c = await store.connect(db_url)
    seen: list[int] = []
    async with c:
        before = None
        for _ in range(100):
            page = await store.inputs_page(c, flt, before=before, limit=7, scan=40)
            seen += [r["id"] for r in page.rows]
            if page.next_before is None:
                break
            before = page.next_before
    assert seen == expected and len(expected) > 7
