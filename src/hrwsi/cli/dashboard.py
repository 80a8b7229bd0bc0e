"""``hrwsi dashboard [--port N] [--host H] [--cache-s S]``: serve the operators' web console
(read-only unless ``HRWSI_DASHBOARD_TOKEN`` is set: then actions need the token).

Binding beyond loopback (``--host 0.0.0.0``) without ``HRWSI_DASHBOARD_TOKEN`` serves the
read-only console to anyone who can reach the port: the command warns and serves (it does not
refuse).
"""

from __future__ import annotations

import ipaddress

import typer

from hrwsi.cli import common


def dashboard(
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port to listen on."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to bind (loopback by default; any other warns unless"
        " HRWSI_DASHBOARD_TOKEN is set, which every request must then carry).",
    ),
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
    token = cfg.dashboard.token.get_secret_value() if cfg.dashboard.token else None
    if token is None and not _loopback(host):
        common.console.print(
            f"[bold yellow]warning:[/] --host {host} serves the console's pages beyond this"
            " machine to anyone who can reach it (read-only: HRWSI_DASHBOARD_TOKEN is unset)",
            highlight=False,
        )
    database = common.open_database(cfg)
    mode = "actions need the token" if token else "read-only (HRWSI_DASHBOARD_TOKEN unset)"
    common.console.print(f"dashboard: http://{host}:{port}/ — {mode}", highlight=False)
    app = create_console(database.url, cfg, token=token, cache_s=cache_s)
    # Open event streams never end by themselves: give them 2 s at shutdown, then close them.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
