"""``hrwsi dashboard [--port N] [--cache-s S]``: serve the operators' web console
(read-only unless ``HRWSI_DASHBOARD_TOKEN`` is set)."""

from __future__ import annotations

import os

import typer

from hrwsi.cli import common


def dashboard(
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    cache_s: float = typer.Option(
        2.0,
        "--cache-s",
        min=0.0,
        help="Compute the status snapshot at most once per this many seconds, shared by every"
        " open page (0: once per request, concurrent requests still share one).",
    ),
) -> None:
    """Serve the web view of inputs, tasks, products, failures and latency."""
    import uvicorn

    from hrwsi.web.console import create_console

    cfg = common.load_config()
    database = common.open_database(cfg)
    token = os.environ.get("HRWSI_DASHBOARD_TOKEN") or None
    mode = "actions need the token" if token else "read-only (HRWSI_DASHBOARD_TOKEN unset)"
    common.console.print(f"dashboard: http://{host}:{port}/ — {mode}", highlight=False)
    app = create_console(database.url, cfg, token=token, cache_s=cache_s)
    # Open event streams never end by themselves: give them 2 s at shutdown, then close them.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
