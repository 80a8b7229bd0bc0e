"""``hrwsi status [--json]``: what is where — inputs, tasks by state, running work, failures.

Task states (each task is in exactly one):

* ``pending``: not ended, never dispatched (waiting for its turn on its VM);
* ``running``: its latest dispatch has no terminal status (submitted or started);
* ``waiting_retry``: not ended, its latest attempt failed, the launcher will try again;
* ``processed``: some attempt processed it;
* ``failed``: ended without being processed (failed for good; ``hrwsi retry`` reopens it).

``--json`` prints one object with the stable keys ``inputs`` ({condition: count}), ``tasks``
({state: count}, all five states always present), ``running`` and ``recent_failures`` (lists
of objects, newest first) and ``products`` ({product type code: count}).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrwsi.cli import common
from hrwsi.db import connect, queries

TASK_STATES = ("pending", "running", "waiting_retry", "processed", "failed")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def collect(db_url: str, *, limit: int = 20) -> dict[str, Any]:
    """The status report as plain data (what ``--json`` prints)."""
    conn = await connect.connect(db_url, autocommit=True)
    async with conn:
        inputs = await (await conn.execute(queries.get("launcher_status_inputs"))).fetchall()
        tasks = await (await conn.execute(queries.get("launcher_status_tasks"))).fetchall()
        running = await (
            await conn.execute(queries.get("launcher_status_running"), {"limit": limit})
        ).fetchall()
        failures = await (
            await conn.execute(queries.get("launcher_status_failures"), {"limit": limit})
        ).fetchall()
        products = await (await conn.execute(queries.get("launcher_status_products"))).fetchall()
    by_state = dict.fromkeys(TASK_STATES, 0)
    by_state.update({str(state): int(n) for state, n in tasks})
    return {
        "inputs": {str(name): int(n) for name, n in inputs},
        "tasks": by_state,
        "running": [
            {
                "task_id": task_id,
                "dispatch": key,
                "dispatch_date": _iso(date),
                "started": bool(started),
                "log_path": log_path,
            }
            for task_id, key, date, log_path, started in running
        ],
        "recent_failures": [
            {
                "task_id": task_id,
                "dispatch": key,
                "status": status,
                "date": _iso(date),
                "message": message,
            }
            for task_id, key, status, date, message in failures
        ],
        "products": {str(code): int(n) for code, n in products},
    }


def render(report: dict[str, Any], console: Console) -> None:
    """The report as tables for people."""
    counts = Table(title="Inputs and tasks", title_justify="left")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for name, n in report["inputs"].items():
        counts.add_row(f"inputs {name}", str(n))
    for state in TASK_STATES:
        counts.add_row(f"tasks {state.replace('_', ' ')}", str(report["tasks"][state]))
    for code, n in report["products"].items():
        counts.add_row(f"products {code}", str(n))
    console.print(counts)

    running = Table(title="Running dispatches", title_justify="left")
    for column in ("task", "dispatch", "since (UTC)", "started", "log"):
        running.add_column(column)
    for r in report["running"]:
        running.add_row(
            str(r["task_id"]),
            r["dispatch"],
            r["dispatch_date"] or "",
            "yes" if r["started"] else "no",
            r["log_path"] or "",
        )
    console.print(running if report["running"] else "no running dispatch")

    failures = Table(title="Recent failures", title_justify="left")
    for column in ("task", "dispatch", "status", "at (UTC)", "message"):
        failures.add_column(column)
    for f in report["recent_failures"]:
        failures.add_row(
            str(f["task_id"]), f["dispatch"], f["status"], f["date"] or "", f["message"] or ""
        )
    console.print(failures if report["recent_failures"] else "no failure")


def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object for machines."),
    limit: int = typer.Option(20, "--limit", min=1, help="Rows of running and failure lists."),
    watch: bool = typer.Option(False, "--watch", help="Redraw until Ctrl-C (a live view)."),
    every: float = typer.Option(2.0, "--every", min=0.2, help="Seconds between --watch redraws."),
) -> None:
    """Show inputs, tasks by state, running dispatches, recent failures and products."""
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=as_json)
    if watch:
        from hrwsi.cli import watch as watch_module

        def collect_now() -> dict[str, Any]:
            return common.run(collect(database.url, limit=limit))

        watch_module.watch(collect_now, render, every, as_json=as_json)
        return
    report = common.run(collect(database.url, limit=limit))
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
    else:
        render(report, Console())


def register(app: typer.Typer) -> None:
    app.command("status")(status)
