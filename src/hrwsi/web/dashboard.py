"""``hrwsi dashboard``: a read-only web view of what is where.

``GET /`` is one page that refreshes itself from ``GET /api/status`` (JSON) every few
seconds; ``GET /healthz`` answers 200 when the database answers. Nothing here writes.

Every open tab polls ``/api/status``, so the snapshot is computed at most once per ``cache_s``
seconds and shared by all of them (:class:`SnapshotCache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from hrwsi.db import metrics
from hrwsi.db.holder import ConnectionHolder
from hrwsi.domain import errors


async def snapshot(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data."""
    since = datetime.now(UTC) - timedelta(hours=24)
    latency = await metrics.dispatch_latency(conn, since)
    return {
        "time": datetime.now(UTC).isoformat(),
        "conditions": [s.__dict__ for s in await metrics.chain_summary(conn)],
        "products": await metrics.products_by_type(conn),
        "failed_for_good": [f.__dict__ for f in await metrics.failed_for_good(conn, limit=20)],
        "latency_24h": latency.__dict__,
    }


T = TypeVar("T")


def database_problem(exc: Exception) -> str:
    """A database error in words for the page: what failed and, for a schema, the fix."""
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    if isinstance(
        cause,
        psycopg.errors.UndefinedTable
        | psycopg.errors.UndefinedColumn
        | psycopg.errors.InvalidSchemaName,
    ):
        return (
            "the database schema does not match this version of hrwsi "
            f"({cause.diag.message_primary}): run 'hrwsi db migrate'"
        )
    if isinstance(exc, errors.DatabaseError):
        return "database unavailable: " + str(exc).split("\n", 1)[0]
    if isinstance(exc, psycopg.OperationalError):
        return "the connection to the database was lost; reconnecting"
    primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
    return f"database error: {primary or type(exc).__name__}"


class SnapshotCache(Generic[T]):
    """The latest value of ``compute()``, shared by every caller, recomputed at most once per
    ``max_age_s`` seconds.

    Single flight: callers arriving while a value is being computed wait for that computation
    instead of starting their own. The age counts from when a computation *finished*, so the
    database rests at least ``max_age_s`` between two computations however many tabs poll. A
    computation that fails is not kept: everyone waiting on it gets the error, the next call
    tries again. A caller that goes away (a closed tab) does not cancel the computation the
    others wait for.
    """

    def __init__(
        self,
        compute: Callable[[], Awaitable[T]],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age_s < 0:
            raise ValueError(f"max_age_s must be >= 0, not {max_age_s}")
        self._compute = compute
        self._max_age_s = max_age_s
        self._clock = clock
        self._latest: tuple[float, T] | None = None  # (clock when computed, value)
        self._flight: asyncio.Task[T] | None = None

    async def get(self) -> T:
        latest = self._latest
        if latest is not None and self._clock() - latest[0] < self._max_age_s:
            return latest[1]
        if self._flight is None:
            self._flight = asyncio.create_task(self._refresh())
            # Retrieve the outcome even if every waiter went away (no "never retrieved" log).
            self._flight.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(self._flight)

    async def _refresh(self) -> T:
        try:
            value = await self._compute()
            self._latest = (self._clock(), value)
            return value
        finally:
            self._flight = None

    async def aclose(self) -> None:
        """Cancel a computation still running (at shutdown)."""
        flight = self._flight
        if flight is not None:
            flight.cancel()
            await asyncio.wait([flight])  # never raises: the outcome is retrieved above


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hrwsi — {title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 20px; }} table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} .bad {{ color: #b00; }}
#updated {{ color: #888; }}
</style></head><body>
<h1>hrwsi — {title}</h1><p id="updated">loading…</p>
<h2>Chain</h2><table id="conditions"></table>
<h2>Products</h2><table id="products"></table>
<h2>Input → dispatch latency (24 h)</h2><table id="latency"></table>
<h2>Failed for good</h2><table id="failed"></table>
<script>
function row(cells, tag) {{
  const tr = document.createElement("tr");
  for (const c of cells) {{ const td = document.createElement(tag || "td");
    td.textContent = c === null ? "-" : c; tr.appendChild(td); }}
  return tr;
}}
function fill(id, head, rows) {{
  const t = document.getElementById(id); t.replaceChildren(row(head, "th"));
  for (const r of rows) t.appendChild(row(r));
}}
const updated = document.getElementById("updated");
function problem(text) {{
  updated.className = "bad";
  updated.textContent = text + " (retrying every {refresh_s} s)";
}}
async function refresh() {{
  let response;
  try {{
    response = await fetch("api/status" + location.search);
  }} catch (e) {{
    problem("cannot reach the hrwsi dashboard server");
    return;
  }}
  let s;
  try {{
    s = await response.json();
  }} catch (e) {{
    s = {{}};
  }}
  if (!response.ok || s.error) {{
    problem(s.error || ("the dashboard answered HTTP " + response.status));
    return;
  }}
  try {{
    fill("conditions", ["condition", "inputs", "tasks", "attempts", "failed attempts",
      "with product"], s.conditions.map(c => [c.condition, c.inputs, c.tasks, c.attempts,
      c.failed_attempts, c.inputs_with_product]));
    fill("products", ["type", "count"], Object.entries(s.products));
    const l = s.latency_24h;
    fill("latency", ["inputs", "p50 ms", "p99 ms", "max ms"], [[l.inputs,
      l.p50_ms && l.p50_ms.toFixed(1), l.p99_ms && l.p99_ms.toFixed(1),
      l.max_ms && l.max_ms.toFixed(1)]]);
    fill("failed", ["task", "condition", "input", "last message"], s.failed_for_good.map(
      f => [f.task_id, f.condition, f.input_path, f.last_message]));
    updated.className = "";
    updated.textContent = "updated " + s.time;
  }} catch (e) {{
    problem("the dashboard sent a status this page cannot show");
  }}
}}
refresh(); setInterval(refresh, {refresh_ms});
</script></body></html>"""


def create_app(
    db_url: str,
    *,
    title: str = "dashboard",
    refresh_s: float = 3.0,
    cache_s: float = 2.0,
    take_snapshot: Callable[[psycopg.AsyncConnection[Any]], Awaitable[dict[str, Any]]] = snapshot,
    clock: Callable[[], float] = time.monotonic,
    token: str | None = None,
) -> Starlette:
    """The dashboard application over the database at ``db_url``.

    ``/api/status`` serves one snapshot (``take_snapshot``, :func:`snapshot` unless a test
    injects another) to every request for ``cache_s`` seconds (``clock`` measures them). On a
    database error it answers 503 with ``{"error": "<what went wrong, in words>"}``; the page
    shows that sentence and keeps polling. With ``token`` every route but ``/healthz`` needs
    it, as ``?token=`` (the page passes its own on) or ``Authorization: Bearer``.
    """
    # One connection shared by every request (psycopg serialises its queries): the shared
    # holder makes the first requests of a burst open one connection, not one each.
    holder = ConnectionHolder(db_url, name="dashboard")
    _conn = holder.get
    _drop = holder.drop

    async def _compute() -> dict[str, Any]:
        try:
            return await take_snapshot(await _conn())
        except (psycopg.Error, errors.DatabaseError):
            await _drop()
            raise

    cache = SnapshotCache(_compute, cache_s, clock)

    def allowed(request: Request) -> bool:
        if token is None:
            return True
        given = request.query_params.get("token") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        return hmac.compare_digest(given.encode(), token.encode())

    def refused() -> Response:
        return JSONResponse(
            {"error": "this dashboard needs its token (?token=… or Authorization: Bearer)"},
            status_code=401,
        )

    async def page(request: Request) -> Response:
        if not allowed(request):
            return refused()
        body = PAGE.format(
            title=html.escape(title), refresh_ms=int(refresh_s * 1000), refresh_s=f"{refresh_s:g}"
        )
        return HTMLResponse(body)

    async def status(request: Request) -> Response:
        if not allowed(request):
            return refused()
        try:
            return JSONResponse(await cache.get())
        except (psycopg.Error, errors.DatabaseError) as exc:
            return JSONResponse({"error": database_problem(exc)}, status_code=503)

    async def health(request: Request) -> Response:
        try:
            await (await _conn()).execute("SELECT 1")
        except (psycopg.Error, errors.DatabaseError):
            await _drop()
            return Response("database unreachable\n", status_code=503, media_type="text/plain")
        return Response("ok\n", media_type="text/plain")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await cache.aclose()
        await _drop()

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/status", status),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
