"""``hrwsi dashboard [--port N] [--cache-s S]``: serve the read-only web view."""

from __future__ import annotations

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

    from hrwsi.web.dashboard import create_app

    cfg = common.load_config()
    database = common.open_database(cfg)
    common.console.print(f"dashboard: http://{host}:{port}/", highlight=False)
    app = create_app(database.url, cache_s=cache_s)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
