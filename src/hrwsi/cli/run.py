"""``hrwsi run``: the main job — harvester, orchestrator and launcher in one asyncio process."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import typer

from hrwsi import bootstrap, logs
from hrwsi.cli import common
from hrwsi.config import Config

SERVICES = ("harvester", "orchestrator", "launcher")


def _parse_only(only: str | None) -> tuple[str, ...]:
    if not only:
        return SERVICES
    chosen = tuple(part.strip() for part in only.split(",") if part.strip())
    unknown = [name for name in chosen if name not in SERVICES]
    if unknown or not chosen:
        common.fail(f"--only: unknown service {', '.join(unknown)!r}; choose from {SERVICES}")
    return chosen


async def _run(cfg: Config, db_url: str, only: Sequence[str]) -> None:
    app = await bootstrap.build(cfg, db_url, only=only)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.runner.stop)
    try:
        await app.runner.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run(
    only: str | None = typer.Option(
        None, "--only", help="Comma-separated subset: harvester,orchestrator,launcher."
    ),
    log_format: str | None = typer.Option(
        None, "--log-format", help="text (default) or json (one object per line)."
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics.",
    ),
) -> None:
    """Run the services until SIGINT or SIGTERM, then stop gracefully."""
    services = _parse_only(only)
    cfg = common.load_config()
    if log_format is not None:
        if log_format not in ("text", "json"):
            common.fail("--log-format must be text or json")
        logs.configure(cfg.logging.level, log_format)
    database = common.open_database(cfg)
    if metrics_port is not None:
        from hrwsi.web import metrics

        metrics.serve(metrics_port, database.url)
        common.console.print(f"metrics: http://127.0.0.1:{metrics_port}/metrics")
    common.console.print(f"running: {', '.join(services)} (SIGINT/SIGTERM to stop)")
    common.run(_run(cfg, database.url, services))
    common.console.print("stopped cleanly")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
