"""``hrwsi dashboard [--port N]``: serve the read-only web view."""

from __future__ import annotations

import typer

from hrwsi.cli import common


def dashboard(
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
) -> None:
    """Serve the web view of inputs, tasks, products, failures and latency."""
    import uvicorn

    from hrwsi.web.dashboard import create_app

    cfg = common.load_config()
    database = common.open_database(cfg)
    common.console.print(f"dashboard: http://{host}:{port}/", highlight=False)
    uvicorn.run(create_app(database.url), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
