"""The dashboard on a database error: the page says what is wrong in words and keeps polling."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import httpx
import psycopg
import pytest

from hrwsi.web.dashboard import create_app

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"

# The page's script run by node with a stub DOM and a scripted fetch: it prints what the
# "updated" line says after each refresh, and whether a periodic refresh was scheduled.
HARNESS = r"""
const replies = JSON.parse(process.argv[1]);
const elements = {};
function element() {
  return { className: "", textContent: "", replaceChildren() {}, appendChild() {} };
}
globalThis.document = {
  getElementById: (id) => (elements[id] = elements[id] || element()),
  createElement: () => element(),
};
globalThis.location = { search: "" };
let scheduled = 0;
globalThis.setInterval = () => { scheduled += 1; };
let call = 0;
globalThis.fetch = async () => {
  const r = replies[Math.min(call++, replies.length - 1)];
  return { ok: r.status === 200, status: r.status, json: async () => r.body };
};
const seen = [];
(async () => {
  eval(require("fs").readFileSync(0, "utf8"));
  for (let i = 0; i < replies.length; i++) {
    await new Promise((done) => setTimeout(done, 20));
    seen.push({ text: elements.updated.textContent, cls: elements.updated.className });
    if (i + 1 < replies.length) refresh();
  }
  console.log(JSON.stringify({ seen, scheduled }));
})();
"""


def _script(page: str) -> str:
    return page.split("<script>", 1)[1].split("</script>", 1)[0]


async def _page() -> str:
    app = create_app(UNREACHABLE, refresh_s=3)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        return (await client.get("/")).text


async def test_a_database_error_is_answered_in_words() -> None:
    """/api/status says what failed (which database, why), not an exception class name."""
    app = create_app(UNREACHABLE)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        answer = await client.get("/api/status")
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error.startswith("database unavailable: cannot connect to postgresql://nobody@")
    assert "DatabaseError" not in error


async def test_a_missing_schema_names_the_fix(empty_db_url: str) -> None:
    """On a database without the hrwsi tables the error says to run 'hrwsi db migrate'."""
    app = create_app(empty_db_url)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        answer = await client.get("/api/status")
    assert answer.status_code == 503
    assert "run 'hrwsi db migrate'" in answer.json()["error"]
    assert "LINE" not in answer.json()["error"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the page's script")
async def test_the_page_shows_the_error_and_recovers() -> None:
    """The page shows the server's sentence (no TypeError), keeps polling, and clears the
    error once a snapshot arrives."""
    good = {
        "time": "2026-03-04T10:00:00+00:00",
        "conditions": [],
        "products": {},
        "failed_for_good": [],
        "latency_24h": {"inputs": 0, "p50_ms": None, "p99_ms": None, "max_ms": None},
    }
    replies = [
        {"status": 503, "body": {"error": "database unavailable: cannot connect to X"}},
        {"status": 200, "body": good},
    ]
    script = _script(await _page())
    run = await asyncio.to_thread(
        subprocess.run,
        ["node", "-e", HARNESS, json.dumps(replies)],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    first, second = result["seen"]
    assert first["text"] == "database unavailable: cannot connect to X (retrying every 3 s)"
    assert first["cls"] == "bad" and "TypeError" not in first["text"]
    assert second == {"text": "updated 2026-03-04T10:00:00+00:00", "cls": ""}
    assert result["scheduled"] == 1


async def test_a_token_is_required_when_set(db_url: str, conn: psycopg.AsyncConnection) -> None:
    """With a token, the page and the API answer 401 without it and 200 with it."""
    app = create_app(db_url, token="s3cret")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://dash") as client,
    ):
        assert (await client.get("/")).status_code == 401
        assert (await client.get("/api/status?token=nope")).status_code == 401
        assert (await client.get("/api/status?token=s3cret")).status_code == 200
        bearer = {"Authorization": "Bearer s3cret"}
        assert (await client.get("/", headers=bearer)).status_code == 200
