"""``hrwsi campaign create|list|show|release|suspend|resume|cancel``: reprocessing campaigns.

A campaign is an order to re-make a processing condition's products for the inputs measured
from ``--from`` to ``--to`` (days, inclusive), optionally on some ``--tiles``, at a priority
(default: the condition's ``reprocessing`` priority). The state machine is
:mod:`hrwsi.domain.campaign`: created → released → suspended ⇄ released → cancelled / done.

Each transition is ONE transaction: the campaign row is locked (``SELECT … FOR UPDATE``, so
two operators acting at once serialise and the second sees the first's result), the move is
checked against the state machine, the row is moved and stamped, and the transition is logged
(``hrwsi.campaign_transition``: who, when, from, to). A crash or a killed connection before
the commit leaves the campaign in its old state with no log row; after it, in the new state
with its log row; never between.

``show`` gives the scope, the transitions and progress over the inputs in scope (done: has a
product; failed: every task ended without one; left: the rest) with an ETA from the rate
measured since release, counting released time only.

Phase A: release records the state; the tasks of a released campaign (``reprocessing``
class), suspend's launch stop and cancel's task ending are wired in phase B.

``--json`` on each command prints one JSON object (``list``: ``{"campaigns": [...]}``).
Refused transitions and unknown campaigns exit 1 with the reason.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import typer
from psycopg.rows import TupleRow
from rich.console import Console
from rich.table import Table

from hrwsi.cli import common
from hrwsi.db import connect, queries
from hrwsi.domain import campaign, errors

BeforeCommit = Callable[[psycopg.AsyncConnection[TupleRow]], Awaitable[None]]

campaign_app = typer.Typer(
    help="Reprocessing campaigns: create, release, follow.", no_args_is_help=True
)


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


async def create(
    db_url: str, scope: campaign.Scope, *, priority: int | None, actor: str | None
) -> dict[str, Any]:
    """Record a campaign in state ``created`` (one statement, its creation logged)."""
    conn = await connect.connect(db_url, autocommit=True)
    try:
        async with conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                queries.get("campaign_condition_exists"), {"condition": scope.condition}
            )
            exists = await cur.fetchone()
            if not exists or not exists[0]:
                raise campaign.UnknownCondition(scope.condition)
            await cur.execute(
                queries.get("campaign_create"),
                {
                    "condition": scope.condition,
                    "from_day": scope.from_day,
                    "to_day": scope.to_day,
                    "tiles": list(scope.tiles),
                    "priority": priority,
                    "actor": actor,
                },
            )
            row = await cur.fetchone()
            assert row is not None
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"campaign create failed: {exc}") from exc
    return {"id": int(row[0]), "state": campaign.State.CREATED.value, "inputs_in_scope": row[1]}


async def apply(
    db_url: str,
    campaign_id: int,
    action: campaign.Action,
    *,
    actor: str | None,
    reason: str | None = None,
    before_commit: BeforeCommit | None = None,
) -> dict[str, Any]:
    """One transition in one transaction under the campaign's row lock.

    ``before_commit`` (tests only) runs inside the transaction after the writes, to prove
    that a crash there leaves the campaign in its old state.
    """
    conn = await connect.connect(db_url, autocommit=True)
    try:
        async with conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute(queries.get("campaign_lock"), {"id": campaign_id})
            row = await cur.fetchone()
            if row is None:
                raise campaign.CampaignNotFound(campaign_id)
            move = campaign.transition(campaign_id, campaign.State(row[0]), action)
            await cur.execute(
                queries.get("campaign_move"),
                {
                    "id": campaign_id,
                    "from_state": move.source.value,
                    "to_state": move.target.value,
                    "action": action.value,
                    "actor": actor,
                    "reason": reason,
                },
            )
            logged = await cur.fetchone()
            assert logged is not None  # the row is locked in from_state
            if before_commit is not None:
                await before_commit(conn)
    except psycopg.Error as exc:
        raise errors.DatabaseError(
            f"campaign {campaign_id} {action.value} failed (nothing changed): {exc}"
        ) from exc
    return {
        "id": campaign_id,
        "action": action.value,
        "from": move.source.value,
        "to": move.target.value,
        "effect": move.effect.value,
        "at": _iso(logged[1]),
    }


async def list_all(db_url: str) -> list[dict[str, Any]]:
    conn = await connect.connect(db_url, autocommit=True)
    async with conn:
        rows = await (await conn.execute(queries.get("campaign_list"))).fetchall()
    return [
        {
            "id": r[0],
            "condition": r[1],
            "from_day": _iso(r[2]),
            "to_day": _iso(r[3]),
            "tiles": list(r[4]),
            "priority": r[5],
            "state": r[6],
            "created_at": _iso(r[7]),
            "released_at": _iso(r[8]),
            "inputs_in_scope": r[9],
        }
        for r in rows
    ]


async def show(db_url: str, campaign_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Scope, stamps, transitions and progress (with ETA) of one campaign."""
    now = now or datetime.now(UTC)
    conn = await connect.connect(db_url, autocommit=True)
    async with conn:
        row = await (
            await conn.execute(queries.get("campaign_get"), {"id": campaign_id})
        ).fetchone()
        if row is None:
            raise campaign.CampaignNotFound(campaign_id)
        log = await (
            await conn.execute(queries.get("campaign_transitions"), {"id": campaign_id})
        ).fetchall()
        counts = await (
            await conn.execute(queries.get("campaign_progress"), {"id": campaign_id})
        ).fetchone()
    assert counts is not None
    changes = [
        campaign.StateChange(at, campaign.State(src) if src else None, campaign.State(dst))
        for at, _, _, src, dst, _ in log
    ]
    total, done, failed, done_since_release = (int(v) for v in counts)
    progress = campaign.progress(
        total=total,
        done=done,
        failed=failed,
        done_while_active=done_since_release,
        active=campaign.active_time(changes, now),
    )
    keys = [
        "id",
        "condition",
        "from_day",
        "to_day",
        "tiles",
        "priority",
        "state",
        "created_at",
        "created_by",
        "released_at",
        "suspended_at",
        "cancelled_at",
        "done_at",
        "inputs_in_scope",
        "tasks_created",
        "tasks_done",
        "tasks_failed",
    ]
    report: dict[str, Any] = dict(zip(keys, row, strict=True))
    for key in ("from_day", "to_day", "created_at", "released_at", "suspended_at"):
        report[key] = _iso(report[key])
    report["cancelled_at"] = _iso(report["cancelled_at"])
    report["done_at"] = _iso(report["done_at"])
    report["tiles"] = list(report["tiles"])
    report["allowed_actions"] = [a.value for a in campaign.allowed_actions(campaign.State(row[6]))]
    report["transitions"] = [
        {"at": _iso(at), "actor": who, "action": act, "from": src, "to": dst, "reason": why}
        for at, who, act, src, dst, why in log
    ]
    report["progress"] = {
        "total": progress.total,
        "done": progress.done,
        "failed": progress.failed,
        "left": progress.left,
        "active_s": campaign.active_time(changes, now).total_seconds(),
        "rate_per_hour": progress.rate_per_hour,
        "eta_s": progress.eta.total_seconds() if progress.eta is not None else None,
    }
    return report


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        common.fail(f"{option}: {text!r} is not a day (YYYY-MM-DD)")


def _emit(as_json: bool, report: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(report, sort_keys=True) if as_json else text)


JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object for machines.")


@campaign_app.command("create")
def create_command(
    condition: str = typer.Option(..., "--condition", help="Processing condition to re-make."),
    from_day: str = typer.Option(..., "--from", help="First measurement day, YYYY-MM-DD."),
    to_day: str = typer.Option(..., "--to", help="Last measurement day, YYYY-MM-DD."),
    tiles: list[str] = typer.Option([], "--tiles", help="MGRS tiles (repeat or comma-separate)."),
    priority: int | None = typer.Option(
        None, "--priority", min=0, max=1000, help="Default: the reprocessing class priority."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a reprocessing campaign (state created; release it to start)."""
    try:
        scope = campaign.Scope(
            condition,
            _day(from_day, "--from"),
            _day(to_day, "--to"),
            campaign.normalise_tiles([t for item in tiles for t in item.split(",")]),
        )
    except ValueError as exc:
        common.fail(str(exc))
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=as_json)
    report = common.run(create(database.url, scope, priority=priority, actor=_user()))
    _emit(
        as_json,
        report,
        f"campaign {report['id']} created: {report['inputs_in_scope']} input(s) in scope; "
        f"'hrwsi campaign release {report['id']}' starts it",
    )


@campaign_app.command("list")
def list_command(as_json: bool = JSON_OPTION) -> None:
    """Every campaign, newest first."""
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=as_json)
    rows = common.run(list_all(database.url))
    if as_json:
        typer.echo(json.dumps({"campaigns": rows}, sort_keys=True))
        return
    if not rows:
        typer.echo("no campaign")
        return
    table = Table(title="Campaigns", title_justify="left")
    for column in ("id", "condition", "days", "tiles", "priority", "state", "inputs"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["condition"],
            f"{r['from_day']} .. {r['to_day']}",
            ",".join(r["tiles"]) or "all",
            "default" if r["priority"] is None else str(r["priority"]),
            r["state"],
            str(r["inputs_in_scope"]),
        )
    Console().print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (nothing finished since release yet)"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


@campaign_app.command("show")
def show_command(
    campaign_id: int = typer.Argument(..., help="Campaign id."), as_json: bool = JSON_OPTION
) -> None:
    """Scope, state history and progress (done/failed/left, ETA) of a campaign."""
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=as_json)
    r = common.run(show(database.url, campaign_id))
    if as_json:
        typer.echo(json.dumps(r, sort_keys=True))
        return
    p = r["progress"]
    lines = [
        f"campaign {r['id']}: {r['state']}",
        f"  scope     {r['condition']} measured {r['from_day']} .. {r['to_day']}, "
        f"tiles {','.join(r['tiles']) or 'all'}",
        f"  priority  {'default (reprocessing)' if r['priority'] is None else r['priority']}",
        f"  progress  {p['done']} done, {p['failed']} failed, {p['left']} left "
        f"of {p['total']} input(s)",
        f"  eta       {_duration(p['eta_s'])}",
        f"  next      {', '.join(r['allowed_actions']) or 'nothing (final)'}",
        "  history",
    ]
    lines += [
        f"    {t['at']}  {t['action']:<8} {t['from'] or '-':>9} -> {t['to']:<9} {t['actor'] or ''}"
        for t in r["transitions"]
    ]
    typer.echo("\n".join(lines))


def _transition_command(action: campaign.Action, doc: str) -> Callable[..., None]:
    def command(
        campaign_id: int = typer.Argument(..., help="Campaign id."),
        reason: str = typer.Option("", "--reason", help="Why, recorded with the transition."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        cfg = common.load_config()
        database = common.open_database(cfg, quiet=as_json)
        r = common.run(
            apply(database.url, campaign_id, action, actor=_user(), reason=reason or None)
        )
        _emit(as_json, r, f"campaign {r['id']}: {r['from']} -> {r['to']} ({r['effect']})")

    command.__doc__ = doc
    return command


for _action, _doc in (
    (campaign.Action.RELEASE, "Release a created campaign: its inputs get reprocessing tasks."),
    (campaign.Action.SUSPEND, "Suspend a released campaign: no new launches, running work ends."),
    (campaign.Action.RESUME, "Resume a suspended campaign."),
    (campaign.Action.CANCEL, "Cancel a campaign: its open tasks end (final)."),
):
    campaign_app.command(_action.value)(_transition_command(_action, _doc))


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
