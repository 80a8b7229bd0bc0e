"""``hrwsi status [--json]``: what is where — inputs, tasks by state, running work, failures.

Task states (each task is in exactly one; the SQL function ``hrwsi.task_state_of`` is the one
definition the console, ``hrwsi tasks`` and this command share):

* ``pending``: not ended, never dispatched (waiting for its turn on its VM);
* ``running``: its latest dispatch has no terminal status (submitted or started);
* ``waiting_retry``: not ended, its latest attempt failed, the launcher will try again;
* ``processed``: some attempt processed it;
* ``failed``: ended without being processed (failed for good; ``hrwsi retry`` reopens it);
* ``cancelled``: ended by an operator (``hrwsi cancel``); never retried nor re-planned
  automatically (``hrwsi retry`` reopens it).

``failed_inputs`` counts inputs rather than tasks: an input whose every task ended
unprocessed (re-planned twice: one failed input, three failed tasks) and none cancelled.

Failures are told apart by what became of their task: ``failed_for_good`` lists tasks that
ended unprocessed and not cancelled (their last failure, attempts, log path);
``recent_failures`` lists failed attempts, each with its ``outcome`` — ``retried_ok`` (a later
attempt processed the task), ``retrying``, ``cancelled`` or ``failed_for_good``. The tables show
the last lines of each failure's log when it is a readable local file.

``--json`` prints one object with the stable keys ``inputs`` ({condition: count}), ``tasks``
({state: count}, all six states always present), ``failed_inputs`` (count), ``running``,
``failed_for_good`` and ``recent_failures`` (lists of objects, newest first) and ``products``
({product type code: count}). Times are ISO 8601 with their offset (v1 timestamps are UTC);
tables print them to the second.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrwsi.cli import common
from hrwsi.db import connect, queries

TASK_STATES = ("pending", "running", "waiting_retry", "processed", "failed", "cancelled")


TAIL_LINES = 3


def _aware(value: datetime | None) -> datetime | None:
    """v1 timestamp columns hold UTC without a zone: say so."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    aware = _aware(value)
    return aware.isoformat() if aware is not None else None


def _short(text: str | None) -> str:
    """An ISO time from the report, to the second, offset kept (for tables)."""
    if not text:
        return ""
    return datetime.fromisoformat(text).replace(microsecond=0).isoformat()


def log_tail(path: str | None, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a local log file; nothing when it cannot be read here."""
    if not path:
        return []
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


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
            await conn.execute(queries.get("status_failed_attempts"), {"limit": limit})
        ).fetchall()
        for_good = await (
            await conn.execute(queries.get("status_failed_for_good"), {"limit": limit})
        ).fetchall()
        failed_inputs = await (await conn.execute(queries.get("status_failed_inputs"))).fetchone()
        products = await (await conn.execute(queries.get("launcher_status_products"))).fetchall()
    by_state = dict.fromkeys(TASK_STATES, 0)
    by_state.update({str(state): int(n) for state, n in tasks})
    return {
        "inputs": {str(name): int(n) for name, n in inputs},
        "tasks": by_state,
        "failed_inputs": int(failed_inputs[0]) if failed_inputs else 0,
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
        "failed_for_good": [
            {
                "task_id": task_id,
                "input_id": input_id,
                "condition": condition,
                "input_path": input_path,
                "attempts": int(attempts),
                "dispatch": key,
                "status": status,
                "date": _iso(date),
                "message": message,
                "log_path": log_path,
            }
            for (
                task_id,
                input_id,
                condition,
                input_path,
                attempts,
                key,
                status,
                date,
                message,
                log_path,
            ) in for_good
        ],
        "recent_failures": [
            {
                "task_id": task_id,
                "dispatch": key,
                "status": status,
                "date": _iso(date),
                "message": message,
                "log_path": log_path,
                "outcome": outcome,
            }
            for task_id, key, status, date, message, log_path, outcome in failures
        ],
        "products": {str(code): int(n) for code, n in products},
    }


def _why(message: str | None, log_path: str | None) -> str:
    """The failure's message, then the last lines of its log (or its path if unreadable)."""
    parts = [message or ""]
    tail = log_tail(log_path)
    if tail:
        parts += [f"| {line}" for line in tail]
    if log_path:
        parts.append(f"log: {log_path}")
    return "\n".join(part for part in parts if part)


_OUTCOMES = {
    "retried_ok": "retried, then processed",
    "retrying": "retry pending",
    "failed_for_good": "failed for good",
}


def render(report: dict[str, Any], console: Console) -> None:
    """The report as tables for people."""
    counts = Table(title="Inputs and tasks", title_justify="left")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for name, n in report["inputs"].items():
        counts.add_row(f"inputs {name}", str(n))
    counts.add_row("inputs failed for good", str(report["failed_inputs"]))
    for state in TASK_STATES:
        label = "tasks failed for good" if state == "failed" else f"tasks {state.replace('_', ' ')}"
        counts.add_row(label, str(report["tasks"][state]))
    for code, n in report["products"].items():
        counts.add_row(f"products {code}", str(n))
    console.print(counts)

    running = Table(title="Running dispatches", title_justify="left")
    for column in ("task", "dispatch", "since", "started", "log"):
        running.add_column(column)
    for r in report["running"]:
        running.add_row(
            str(r["task_id"]),
            r["dispatch"],
            _short(r["dispatch_date"]),
            "yes" if r["started"] else "no",
            r["log_path"] or "",
        )
    console.print(running if report["running"] else "no running dispatch")

    for_good = Table(title="Tasks failed for good", title_justify="left")
    for column in ("task", "input", "attempts", "last status", "at", "why"):
        for_good.add_column(column)
    for f in report["failed_for_good"]:
        for_good.add_row(
            str(f["task_id"]),
            f"{f['condition']} {f['input_path']}",
            str(f["attempts"]),
            f["status"] or "",
            _short(f["date"]),
            _why(f["message"], f["log_path"]),
        )
    console.print(for_good if report["failed_for_good"] else "no task failed for good")

    retried = [f for f in report["recent_failures"] if f["outcome"] in ("retried_ok", "retrying")]
    attempts = Table(title="Failed attempts of tasks retried", title_justify="left")
    for column in ("task", "dispatch", "status", "at", "then", "why"):
        attempts.add_column(column)
    for f in retried:
        attempts.add_row(
            str(f["task_id"]),
            f["dispatch"],
            f["status"],
            _short(f["date"]),
            _OUTCOMES[f["outcome"]],
            _why(f["message"], f["log_path"]),
        )
    console.print(attempts if retried else "no failed attempt of a retried task")


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
