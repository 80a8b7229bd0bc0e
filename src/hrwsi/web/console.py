"""``hrwsi dashboard``: the operators' web console (Starlette, server-rendered Jinja2).

Pages: ``/`` overview, ``/inputs``, ``/tasks``, ``/tasks/{id}``, ``/plan``, ``/products``.
Every template is autoescaped; the only unescaped output is the Gantt SVG, built by
:mod:`hrwsi.domain.gantt`, which escapes every name it writes. Live updates: ``/events``
(server-sent events) fed by one LISTEN connection per process (:class:`events.Hub`); the
overview's figures travel inside the events, other pages re-render their main part when told.

Actions (POST only, token + CSRF, see :mod:`hrwsi.web.auth`, recorded in
``hrwsi.operator_action``): ``/tasks/{id}/cancel``, ``/tasks/{id}/retry``,
``/conditions/{name}/pause``, ``/conditions/{name}/resume``. Also ``/healthz``, ``/metrics``
(Prometheus text format), ``/api/overview``, ``/api/tasks/{id}`` and the older ``/api/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from hrwsi.config import Config
from hrwsi.db import queries
from hrwsi.domain import errors, gantt, planning
from hrwsi.web import auth, dashboard, events, plan_view, store
from hrwsi.web import metrics as metrics_module

HEARTBEAT_S = 15.0


def _templates() -> jinja2.Environment:
    folder = resources.files("hrwsi.web") / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.ChainableUndefined,
    )
    return env


def _int(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _text(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def create_console(
    db_url: str,
    config: Config,
    *,
    token: str | None = None,
    cache_s: float = 2.0,
    coalesce_s: float = 0.25,
    page_size: int = 50,
    plan_hours: float = 24.0,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The console over ``db_url``; ``token`` (HRWSI_DASHBOARD_TOKEN) enables actions."""
    env = _templates()
    guard = auth.Guard(token or None)
    state: dict[str, Any] = {}
    opening = asyncio.Lock()

    async def _conn() -> store.Conn:
        async with opening:
            conn = state.get("conn")
            if conn is None or conn.closed:
                conn = await store.connect(db_url)
                state["conn"] = conn
            return conn

    async def _drop() -> None:
        conn = state.pop("conn", None)
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _read(fn: Callable[[store.Conn], Awaitable[Any]]) -> Any:
        try:
            return await fn(await _conn())
        except psycopg.Error as exc:
            await _drop()
            raise errors.DatabaseError(f"console query failed: {exc}") from exc

    overview_cache = dashboard.SnapshotCache(lambda: _read(store.overview), cache_s, clock)

    async def _status() -> dict[str, Any]:
        # The older /api/status reads tuple rows: its own short connection, once per cache_s.
        try:
            conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
            async with conn:
                return await dashboard.snapshot(conn)
        except psycopg.Error as exc:
            raise errors.DatabaseError(f"console query failed: {exc}") from exc

    status_cache = dashboard.SnapshotCache(_status, cache_s, clock)
    hub = events.Hub(db_url, overview_cache.get, coalesce_s=coalesce_s)
    registry = metrics_module.Metrics().registry
    registry.register(metrics_module.DatabaseCollector(db_url))

    # -- rendering --------------------------------------------------------------------------

    def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        nonce = request.cookies.get(auth.CSRF_COOKIE) or guard.new_nonce()
        actor = guard.actor_of(request.cookies.get(auth.SESSION_COOKIE))
        body = env.get_template(template).render(
            guard_enabled=guard.enabled,
            actor=actor,
            csrf=guard.csrf_token(nonce),
            **context,
        )
        response = HTMLResponse(body, status_code=status_code)
        if request.cookies.get(auth.CSRF_COOKIE) != nonce:
            response.set_cookie(auth.CSRF_COOKIE, nonce, httponly=True, samesite="strict")
        return response

    def _message(
        request: Request, status_code: int, heading: str, message: str, back: str | None
    ) -> Response:
        kind = "ok" if status_code < 400 else "bad"
        return _page(
            request,
            "message.html",
            status_code,
            title=heading,
            heading=heading,
            message=message,
            kind=kind,
            back=back,
            live="off",
        )

    def _database_down(request: Request, exc: Exception) -> Response:
        return _message(request, 503, "database unreachable", type(exc).__name__, None)

    # -- pages ------------------------------------------------------------------------------

    async def overview_page(request: Request) -> Response:
        try:
            o = await overview_cache.get()
            actions = await _read(store.recent_actions)
        except errors.DatabaseError as exc:
            return _database_down(request, exc)
        return _page(
            request,
            "overview.html",
            title="overview",
            nav="overview",
            live="overview",
            o=o,
            actions=actions,
            flash=request.query_params.get("flash"),
        )

    async def inputs_page(request: Request) -> Response:
        q = request.query_params
        state_value = _text(q.get("state"))
        flt = store.InputFilter(
            condition=_text(q.get("condition")),
            tile=_text(q.get("tile")),
            day_from=_int(q.get("day_from")),
            day_to=_int(q.get("day_to")),
            state=state_value if state_value in store.INPUT_STATES else None,
        )
        before = _int(q.get("before"))
        try:
            choices = await _read(store.choices)
            page = await _read(lambda c: store.inputs_page(c, flt, before=before, limit=page_size))
        except errors.DatabaseError as exc:
            return _database_down(request, exc)
        params = {k: v for k, v in flt.params().items() if v is not None}
        next_url = (
            "/inputs?" + urlencode({**params, "before": page.next_before})
            if page.next_before
            else None
        )
        return _page(
            request,
            "inputs.html",
            title="inputs",
            nav="inputs",
            f=flt,
            page=page,
            choices=choices,
            states=store.INPUT_STATES,
            next_url=next_url,
            limit=page_size,
        )

    async def tasks_page(request: Request) -> Response:
        q = request.query_params
        state_value = _text(q.get("state"))
        f = {
            "state": state_value if state_value in store.TASK_STATES else None,
            "condition": _text(q.get("condition")),
            "tile": _text(q.get("tile")),
        }
        before = _int(q.get("before"))
        try:
            choices = await _read(store.choices)
            rows = await _read(
                lambda c: store.tasks_page(
                    c,
                    state=f["state"],
                    condition=f["condition"],
                    tile=f["tile"],
                    before=before,
                    limit=page_size,
                )
            )
        except errors.DatabaseError as exc:
            return _database_down(request, exc)
        next_url = None
        if len(rows) == page_size:
            params = {k: v for k, v in f.items() if v is not None}
            next_url = "/tasks?" + urlencode({**params, "before": rows[-1]["id"]})
        return _page(
            request,
            "tasks.html",
            title="tasks",
            nav="tasks",
            f=f,
            rows=rows,
            choices=choices,
            states=store.TASK_STATES,
            next_url=next_url,
        )

    async def task_page(request: Request) -> Response:
        task_id = int(request.path_params["task_id"])
        try:
            d = await _read(lambda c: store.task(c, task_id))
        except errors.DatabaseError as exc:
            return _database_down(request, exc)
        if d is None:
            return _message(request, 404, "no such task", f"task {task_id} does not exist", "/")
        return _page(
            request,
            "task.html",
            title=f"task {task_id}",
            nav="tasks",
            d=d,
            tail_kib=store.LOG_TAIL_BYTES // 1024,
            flash=request.query_params.get("flash"),
        )

    async def plan_page(request: Request) -> Response:
        since = datetime.now(UTC) - timedelta(hours=plan_hours)
        try:
            rows = await _read(
                lambda c: _all(c, "console_plan_tasks", {"since": since, "limit": 5000})
            )
            routine_rows = await _read(lambda c: _all(c, "console_routines", {}))
        except errors.DatabaseError as exc:
            return _database_down(request, exc)
        routines = {
            str(r["name"]): planning.Routine(
                str(r["name"]),
                int(r["cpu"]),
                int(r["ram"]),
                int(r["storage"]),
                max(1, int(r["duration"])),
            )
            for r in routine_rows
        }
        s = config.scheduling
        limits = planning.Limits(s.t_max_minutes, s.cpu_max, s.ram_max, s.storage_max, s.vm_max)
        plan, instance = plan_view.build(rows, routines, limits)
        svg = gantt.render_svg(plan, instance, limits)
        return _page(
            request,
            "plan.html",
            title="plan",
            nav="plan",
            svg=svg,
            hours=plan_hours,
            n_tasks=len(rows),
            n_vms=len(plan.vms),
        )

    async def products_page(request: Request) -> Response:
        q = request.query_params
        f: dict[str, Any] = {
            "product_type": _text(q.get("type")),
            "tile": _text(q.get("tile")),
            "day": _int(q.get("day")),
        }
        before = _int(q.get("before"))
        try:
            choices = await _read(store.choices)
            page = await _read(
                lambda c: store.products_page(c, **f, before=before, limit=page_size)
            )
        except errors.DatabaseError as exc:
            return _database_down(request, exc)
        next_url = None
        if page.next_before:
            params = {
                "type": f["product_type"],
                "tile": f["tile"],
                "day": f["day"],
                "before": page.next_before,
            }
            next_url = "/products?" + urlencode({k: v for k, v in params.items() if v})
        return _page(
            request,
            "products.html",
            title="products",
            nav="products",
            f=f,
            page=page,
            choices=choices,
            next_url=next_url,
        )

    # -- sign-in and actions ----------------------------------------------------------------

    async def login_page(request: Request) -> Response:
        return _page(
            request,
            "login.html",
            title="sign in",
            next=request.query_params.get("next", "/"),
            live="off",
        )

    def _safe_next(value: Any) -> str:
        text = str(value or "/")
        return text if text.startswith("/") and not text.startswith("//") else "/"

    async def login(request: Request) -> Response:
        form = await request.form()
        if not guard.enabled:
            return _message(request, 403, "read-only", "HRWSI_DASHBOARD_TOKEN is not set", "/")
        if not guard.csrf_ok(request.cookies.get(auth.CSRF_COOKIE), str(form.get("csrf", ""))):
            return _message(request, 403, "refused", "missing or invalid CSRF token", "/login")
        if not guard.token_matches(str(form.get("token", ""))):
            return _message(request, 401, "refused", "wrong token", "/login")
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        response.set_cookie(
            auth.SESSION_COOKIE,
            guard.session_value(str(form.get("actor", ""))),
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        if guard.csrf_ok(request.cookies.get(auth.CSRF_COOKIE), str(form.get("csrf", ""))):
            response = RedirectResponse("/", status_code=303)
            response.delete_cookie(auth.SESSION_COOKIE)
            return response
        return _message(request, 403, "refused", "missing or invalid CSRF token", "/")

    async def _authorised(request: Request) -> tuple[str | None, Response | None, Any]:
        """The actor, or the refusal to send; and the form."""
        form = await request.form()
        back = request.headers.get("referer")
        if not guard.enabled:
            return (
                None,
                _message(
                    request,
                    403,
                    "refused",
                    "read-only console: HRWSI_DASHBOARD_TOKEN is not set",
                    back,
                ),
                form,
            )
        actor = guard.actor_of(
            request.cookies.get(auth.SESSION_COOKIE), request.headers.get("authorization")
        )
        if actor is None:
            return (
                None,
                _message(request, 401, "refused", "sign in with the token to act", "/login"),
                form,
            )
        if actor != "api" and not guard.csrf_ok(
            request.cookies.get(auth.CSRF_COOKIE), str(form.get("csrf", ""))
        ):
            return (
                None,
                _message(request, 403, "refused", "missing or invalid CSRF token", back),
                form,
            )
        return f"console:{actor}", None, form

    async def _act(
        request: Request, run: Callable[[str, str | None], Awaitable[str]], back: str
    ) -> Response:
        actor, refusal, form = await _authorised(request)
        if refusal is not None:
            return refusal
        assert actor is not None
        reason = _text(str(form.get("reason", ""))) if form.get("reason") else None
        try:
            done = await run(actor, reason)
        except (errors.TaskNotFound, errors.TaskNotRetryable, store.ActionRefused) as exc:
            return _message(request, 409, "refused", str(exc), back)
        except errors.DatabaseError as exc:
            return _database_down(request, exc)
        if request.headers.get("authorization"):
            return JSONResponse({"ok": True, "message": done})
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}flash={quote(done)}", status_code=303)

    async def cancel_action(request: Request) -> Response:
        task_id = int(request.path_params["task_id"])

        async def run(actor: str, reason: str | None) -> str:
            done = await store.cancel(db_url, task_id, actor=actor, reason=reason)
            return f"task {task_id} cancelled (was {done['was']})"

        return await _act(request, run, f"/tasks/{task_id}")

    async def retry_action(request: Request) -> Response:
        task_id = int(request.path_params["task_id"])

        async def run(actor: str, reason: str | None) -> str:
            done = await store.retry(db_url, task_id, actor=actor, reason=reason)
            return f"task {task_id} reopened after {done['dispatches_before']} dispatch(es)"

        return await _act(request, run, f"/tasks/{task_id}")

    async def pause_action(request: Request) -> Response:
        name = str(request.path_params["name"])

        async def run(actor: str, reason: str | None) -> str:
            added = await store.pause(db_url, name, actor=actor, reason=reason)
            return f"{name} paused" if added else f"{name} was already paused"

        return await _act(request, run, "/")

    async def resume_action(request: Request) -> Response:
        name = str(request.path_params["name"])

        async def run(actor: str, reason: str | None) -> str:
            removed = await store.resume(db_url, name, actor=actor)
            return f"{name} resumed" if removed else f"{name} was not paused"

        return await _act(request, run, "/")

    # -- machine endpoints ------------------------------------------------------------------

    async def events_stream(request: Request) -> Response:
        queue = hub.subscribe()

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n: connected\n\n"
                while True:
                    try:
                        batch = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                    except TimeoutError:
                        yield b": heartbeat\n\n"
                        continue
                    data = json.dumps(batch, separators=(",", ":"))
                    yield f"event: change\ndata: {data}\n\n".encode()
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def api_overview(request: Request) -> Response:
        try:
            return JSONResponse(await overview_cache.get())
        except errors.DatabaseError as exc:
            return JSONResponse({"error": f"database: {type(exc).__name__}"}, status_code=503)

    async def api_task(request: Request) -> Response:
        task_id = int(request.path_params["task_id"])
        try:
            d = await _read(lambda c: store.task(c, task_id))
        except errors.DatabaseError as exc:
            return JSONResponse({"error": f"database: {type(exc).__name__}"}, status_code=503)
        if d is None:
            return JSONResponse({"error": f"no task {task_id}"}, status_code=404)
        return JSONResponse(d)

    async def api_status(request: Request) -> Response:
        try:
            return JSONResponse(await status_cache.get())
        except errors.DatabaseError as exc:
            return JSONResponse({"error": f"database: {type(exc).__name__}"}, status_code=503)

    async def health(request: Request) -> Response:
        try:
            await _read(lambda c: c.execute(queries.get("console_conditions")))
        except errors.DatabaseError:
            return Response("database unreachable\n", status_code=503, media_type="text/plain")
        return Response("ok\n", media_type="text/plain")

    async def metrics_endpoint(request: Request) -> Response:
        from prometheus_client.exposition import generate_latest

        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=metrics_module.CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.start()
        app.state.hub = hub
        yield
        await hub.aclose()
        await overview_cache.aclose()
        await status_cache.aclose()
        await _drop()

    return Starlette(
        routes=[
            Route("/", overview_page),
            Route("/inputs", inputs_page),
            Route("/tasks", tasks_page),
            Route("/tasks/{task_id:int}", task_page),
            Route("/tasks/{task_id:int}/cancel", cancel_action, methods=["POST"]),
            Route("/tasks/{task_id:int}/retry", retry_action, methods=["POST"]),
            Route("/conditions/{name}/pause", pause_action, methods=["POST"]),
            Route("/conditions/{name}/resume", resume_action, methods=["POST"]),
            Route("/plan", plan_page),
            Route("/products", products_page),
            Route("/login", login_page),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/events", events_stream),
            Route("/api/overview", api_overview),
            Route("/api/tasks/{task_id:int}", api_task),
            Route("/api/status", api_status),
            Route("/healthz", health),
            Route("/metrics", metrics_endpoint),
        ],
        lifespan=lifespan,
    )


async def _all(conn: store.Conn, name: str, params: dict[str, Any]) -> list[Any]:
    cur = await conn.execute(queries.get(name), params)
    return await cur.fetchall()
