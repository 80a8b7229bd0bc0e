"""``hrwsi tasks`` and ``hrwsi task ID``: find tasks, and everything about one (the console's
task page in the terminal). ``--json`` prints the same data for machines."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrwsi.cli import common
from hrwsi.web import store


async def _tasks(db_url: str, **filters: Any) -> list[dict[str, Any]]:
    conn = await store.connect(db_url)
    async with conn:
        return store.jsonable(await store.tasks_page(conn, **filters))  # type: ignore[no-any-return]


async def _task(db_url: str, task_id: int) -> dict[str, Any] | None:
    conn = await store.connect(db_url)
    async with conn:
        return await store.task(conn, task_id)


def tasks(
    state: str | None = typer.Option(
        None, "--state", help=f"One of {', '.join(store.TASK_STATES)}."
    ),
    condition: str | None = typer.Option(None, "--condition", help="Processing condition."),
    tile: str | None = typer.Option(None, "--tile", help="Tile, e.g. 31TCH."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="Rows at most."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list for machines."),
) -> None:
    """List tasks newest first, filtered by state, condition and tile."""
    if state is not None and state not in store.TASK_STATES:
        common.fail(f"--state must be one of {', '.join(store.TASK_STATES)}")
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=as_json)
    rows = common.run(
        _tasks(database.url, state=state, condition=condition, tile=tile, limit=limit)
    )
    if as_json:
        typer.echo(json.dumps(rows, sort_keys=True))
        return
    table = Table(title=f"Tasks ({len(rows)})", title_justify="left")
    for column in ("task", "state", "condition", "tile", "input", "VM", "attempts", "created"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["state"],
            r["processing_condition_name"],
            r["tile"],
            str(r["input_id"]),
            r["vm_name"],
            str(r["attempts"]),
            str(r["created_at"] or ""),
        )
    Console().print(table)


def render_task(d: dict[str, Any], console: Console) -> None:
    t = d["task"]
    console.print(
        f"[bold]task {t['id']}[/] — {t['state']} — {t['processing_condition_name']} "
        f"tile {t['tile']} — VM {d['vm']['name']} ({d['vm']['flavour']}), place "
        f"{d['position']} of {len(d['chain'])} in its chain",
        highlight=False,
    )
    if t["cancelled_at"]:
        console.print(f"cancelled at {t['cancelled_at']} by {t['cancelled_by']}", highlight=False)
    inputs = Table(title="Inputs", title_justify="left")
    for column in ("input", "role", "tile", "day", "path"):
        inputs.add_column(column)
    for i in d["inputs"]:
        inputs.add_row(
            str(i["id"]), i["role"], i["tile"], str(i["measurement_day"]), i["input_path"] or ""
        )
    console.print(inputs)
    attempts = Table(title="Attempts", title_justify="left")
    for column in ("attempt", "dispatched", "status", "at", "message"):
        attempts.add_column(column)
    for a in d["attempts"]:
        history = a["statuses"] or [{"status": "submitted", "date": "", "message": ""}]
        for k, s in enumerate(history):
            attempts.add_row(
                a["key"] if k == 0 else "",
                str(a["dispatch_date"]) if k == 0 else "",
                s["status"],
                str(s["date"] or ""),
                s["message"] or "",
            )
    console.print(attempts if d["attempts"] else "not dispatched yet")
    for p in d["products"]:
        console.print(f"product {p['product_type']}: {p['product_path']}", highlight=False)
    if d["log_tail"] is not None:
        console.print(f"[bold]log[/] {d['log_path']} (tail)", highlight=False)
        console.print(d["log_tail"], markup=False, highlight=False)


def task(
    task_id: int = typer.Argument(..., help="processing_tasks.id"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object for machines."),
) -> None:
    """Everything about one task: inputs, VM and chain, attempts and statuses, log, product."""
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=as_json)
    d = common.run(_task(database.url, task_id))
    if d is None:
        common.fail(f"no task {task_id}", code=1)
    if as_json:
        typer.echo(json.dumps(d, sort_keys=True))
    else:
        render_task(d, Console())


def register(app: typer.Typer) -> None:
    app.command("tasks")(tasks)
    app.command("task")(task)
