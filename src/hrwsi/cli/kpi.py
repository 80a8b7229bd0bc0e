"""``hrwsi kpi [--condition C] [--since …] [--json]``: timeliness KPIs of recent products.

For every product made since ``--since`` (``24h``, ``7d``, ``90m``, or an ISO day or time;
default 24 h) the stage timestamps come from one query (``kpi_stage_times``) and
:mod:`hrwsi.domain.kpi` gives, per processing condition and timeliness class, p50/p90/p99 of
each stage (sensing → publication → harvest → planned → dispatched → processed) and of
sensing → product, and the NRT products later than their target (``[kpi]`` configuration;
``--target-minutes`` overrides the default target).

Until tasks carry their class (phase B), every product counts as ``archive``, so no product
is listed late.

``--json`` prints one object: ``since``, ``condition``, ``groups`` (list of ``{condition,
timeliness_class, products, stages: {publication, harvest, planned, dispatched, processed,
total: {count, p50_s, p90_s, p99_s}}}``) and ``late`` (list of ``{product_id, condition,
product_path, sensing, processed, total_s, target_s, late_by_s}``), stable keys.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrwsi import priority_config
from hrwsi.cli import common
from hrwsi.db import connect, queries
from hrwsi.domain import kpi

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, *, now: datetime) -> datetime:
    """``24h`` / ``7d`` / ``90m`` before ``now``, or an ISO day or time (UTC when zone-less)."""
    match = _RELATIVE.match(text)
    if match:
        return now - timedelta(**{_UNITS[match[2]]: float(match[1])})
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"{text!r} is neither a duration (24h, 7d, 90m) nor an ISO day or time"
            ) from None
        stamp = datetime(day.year, day.month, day.day)
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


async def stage_rows(
    db_url: str, *, since: datetime, condition: str | None
) -> list[kpi.StageTimes]:
    conn = await connect.connect(db_url, autocommit=True)
    async with conn:
        rows = await (
            await conn.execute(
                queries.get("kpi_stage_times"), {"since": since, "condition": condition}
            )
        ).fetchall()
    return [kpi.StageTimes(*row) for row in rows]


def _figure(figure: kpi.Figure) -> dict[str, Any]:
    return {
        "count": figure.count,
        "p50_s": figure.p50_s,
        "p90_s": figure.p90_s,
        "p99_s": figure.p99_s,
    }


def report(
    rows: list[kpi.StageTimes], targets: kpi.Targets, *, since: datetime, condition: str | None
) -> dict[str, Any]:
    """The KPI report as plain data (what ``--json`` prints)."""
    return {
        "since": since.isoformat(),
        "condition": condition,
        "groups": [
            {
                "condition": g.condition,
                "timeliness_class": g.timeliness_class,
                "products": g.products,
                "stages": {name: _figure(g.figures[name]) for name in kpi.FIGURES},
            }
            for g in kpi.summarise(rows)
        ],
        "late": [
            {
                "product_id": item.row.product_id,
                "condition": item.row.condition,
                "product_path": item.row.product_path,
                "sensing": item.row.sensing.isoformat(),
                "processed": item.row.processed.isoformat(),
                "total_s": (item.row.processed - item.row.sensing).total_seconds(),
                "target_s": item.target.total_seconds(),
                "late_by_s": item.late_by.total_seconds(),
            }
            for item in kpi.late_products(rows, targets)
        ],
    }


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if abs(seconds) < 120:
        return f"{seconds:.1f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render(data: dict[str, Any], console: Console) -> None:
    if not data["groups"]:
        console.print(f"no product since {data['since']}")
        return
    for group in data["groups"]:
        table = Table(
            title=f"{group['condition']} · {group['timeliness_class']} · "
            f"{group['products']} product(s)",
            title_justify="left",
        )
        for column in ("stage", "n", "p50", "p90", "p99"):
            table.add_column(column, justify="left" if column == "stage" else "right")
        for name in kpi.FIGURES:
            f = group["stages"][name]
            label = "sensing → product" if name == "total" else f"→ {name}"
            table.add_row(
                label, str(f["count"]), _human(f["p50_s"]), _human(f["p90_s"]), _human(f["p99_s"])
            )
        console.print(table)
    late = data["late"]
    if not late:
        console.print("no NRT product later than its target")
        return
    table = Table(title=f"Late NRT products ({len(late)})", title_justify="left")
    for column in ("product", "condition", "sensing → product", "target", "late by", "path"):
        table.add_column(column)
    for item in late:
        table.add_row(
            str(item["product_id"]),
            item["condition"],
            _human(item["total_s"]),
            _human(item["target_s"]),
            _human(item["late_by_s"]),
            item["product_path"],
        )
    console.print(table)


def kpi_command(
    condition: str | None = typer.Option(None, "--condition", help="Only this condition."),
    since: str = typer.Option("24h", "--since", help="24h, 7d, 90m, or an ISO day or time."),
    target_minutes: float | None = typer.Option(
        None, "--target-minutes", min=0.001, help="NRT sensing → product target (default: [kpi])."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object for machines."),
) -> None:
    """p50/p90/p99 of each timeliness stage per condition and class; late NRT products."""
    try:
        start = parse_since(since, now=datetime.now(UTC))
    except ValueError as exc:
        common.fail(f"--since: {exc}")
    cfg = common.load_config()
    targets = priority_config.settings_of(cfg).kpi.target_rule()
    if target_minutes is not None:
        targets = kpi.Targets(timedelta(minutes=target_minutes), targets.per_condition)
    database = common.open_database(cfg, quiet=as_json)
    rows = common.run(stage_rows(database.url, since=start, condition=condition))
    data = report(rows, targets, since=start, condition=condition)
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
    else:
        render(data, Console())


def register(app: typer.Typer) -> None:
    app.command("kpi")(kpi_command)
