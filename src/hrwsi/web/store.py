"""What the console shows and does, over the database: plain dicts in, plain dicts out.

Read functions take an autocommit connection with a ``dict_row`` factory; every query is a
named one from ``console.sql``. Actions (:func:`cancel`, :func:`pause`, :func:`resume`,
:func:`retry`) open their own connection and run in one transaction each, with the action
recorded in ``hrwsi.operator_action`` in that same transaction. The web console and the
terminal commands (``hrwsi tasks``, ``hrwsi task``, ``hrwsi cancel``, ``hrwsi pause``,
``hrwsi resume``) share them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from hrwsi.db import queries
from hrwsi.domain import errors

Conn = psycopg.AsyncConnection[DictRow]

TASK_STATES = ("pending", "running", "waiting_retry", "processed", "failed", "cancelled")
INPUT_STATES = ("new", *TASK_STATES)
SCAN_ROWS = 10_000  # candidate rows one filtered page reads at most (bounds its time)
LOG_TAIL_BYTES = 64 * 1024


async def connect(db_url: str) -> Conn:
    """An autocommit connection for the console: dict rows, never server-side prepared (each
    filtered query is planned with its values, so ``%(x)s IS NULL OR …`` folds away)."""
    try:
        return await psycopg.AsyncConnection.connect(
            db_url, autocommit=True, row_factory=dict_row, prepare_threshold=None
        )
    except psycopg.OperationalError as exc:
        raise errors.DatabaseError(f"console cannot connect: {exc}") from exc


async def _all(conn: Conn, name: str, params: dict[str, Any] | None = None) -> list[DictRow]:
    try:
        cur = await conn.execute(queries.get(name), params or {})
        return await cur.fetchall()
    except psycopg.errors.UndefinedTable as exc:
        raise errors.DatabaseError(f"{exc} (run `hrwsi db migrate`)") from exc


async def _one(conn: Conn, name: str, params: dict[str, Any] | None = None) -> DictRow | None:
    try:
        cur = await conn.execute(queries.get(name), params or {})
        return await cur.fetchone()
    except psycopg.errors.UndefinedTable as exc:
        raise errors.DatabaseError(f"{exc} (run `hrwsi db migrate`)") from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """Rows as JSON-able data (times as ISO 8601 strings)."""
    return _jsonable(value)


def _jdict(value: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _jsonable(value)
    return result


def _jlist(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _jsonable(value)
    return result


# -- reads -----------------------------------------------------------------------------


async def overview(conn: Conn, *, heartbeat_stale_s: float = 60.0) -> dict[str, Any]:
    """The funnel per condition, rates over the last hour and day, VMs in use, liveness."""
    funnel = await _all(conn, "console_funnel")
    rates = await _one(conn, "console_rates") or {}
    vms = await _all(conn, "console_vms_in_use")
    beats = await _all(conn, "console_heartbeats", {"limit": 50})
    services = []
    for b in beats:
        age = float(b["age_s"]) if b["age_s"] is not None else None
        services.append({**b, "age_s": age, "alive": age is not None and age <= heartbeat_stale_s})
    totals = {key: sum(int(r[key]) for r in funnel) for key in ("inputs", "planned", *TASK_STATES)}
    return _jdict(
        {
            "funnel": [dict(r) for r in funnel],
            "byc": {str(r["condition"]): dict(r) for r in funnel},
            "totals": totals,
            "rates": dict(rates),
            "vms": {str(r["flavour"]): int(r["vms"]) for r in vms},
            "vms_total": sum(int(r["vms"]) for r in vms),
            "services": services,
            "time": datetime.now().astimezone().isoformat(),
        }
    )


@dataclass(frozen=True, slots=True)
class InputFilter:
    condition: str | None = None
    tile: str | None = None
    day_from: int | None = None
    day_to: int | None = None
    state: str | None = None

    def params(self) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "tile": self.tile,
            "day_from": self.day_from,
            "day_to": self.day_to,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of one page and the cursor of the next (None: the last page)."""

    rows: list[dict[str, Any]]
    next_before: int | None
    scanned: int


async def inputs_page(
    conn: Conn, flt: InputFilter, *, before: int | None, limit: int = 50, scan: int = SCAN_ROWS
) -> Page:
    """Inputs newest first with ``id < before`` (keyset); reads at most ``scan`` candidates."""
    params = {**flt.params(), "before": before, "limit": limit, "scan": max(scan, limit)}
    rows = [dict(r) for r in await _all(conn, "console_inputs_page", params)]
    if len(rows) == limit:
        return Page(rows, int(rows[-1]["id"]), limit)
    end = await _one(conn, "console_inputs_window_end", params)
    scanned = int(end["scanned"]) if end else 0
    # The window was read to its end: more may match below it, unless it was not full.
    more = end is not None and end["last_id"] is not None and scanned >= params["scan"]
    return Page(rows, int(end["last_id"]) if more and end else None, scanned)


async def inputs_offset_page(
    conn: Conn, flt: InputFilter, *, offset: int, limit: int = 50
) -> list[dict[str, Any]]:
    """The OFFSET baseline of :func:`inputs_page` (benchmarks only)."""
    params = {**flt.params(), "offset": offset, "limit": limit}
    return [dict(r) for r in await _all(conn, "console_inputs_offset_page", params)]


async def tasks_page(
    conn: Conn,
    *,
    state: str | None = None,
    condition: str | None = None,
    tile: str | None = None,
    before: int | None = None,
    limit: int = 50,
    scan: int = SCAN_ROWS,
) -> list[dict[str, Any]]:
    params = {
        "state": state,
        "condition": condition,
        "tile": tile,
        "before": before,
        "limit": limit,
        "scan": max(scan, limit),
    }
    return [dict(r) for r in await _all(conn, "console_tasks_page", params)]


def log_tail(path: str | None, max_bytes: int = LOG_TAIL_BYTES) -> str | None:
    """The last ``max_bytes`` of a local run's log (whole lines), never the whole file."""
    if not path:
        return None
    p = Path(path)
    try:
        if not p.is_file():
            return None
        with p.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            f.seek(start)
            data = f.read(max_bytes)
    except OSError:
        return None
    if start > 0:
        cut = data.find(b"\n")
        data = data[cut + 1 :] if cut >= 0 else data
    return data.decode("utf-8", errors="replace")


async def task(conn: Conn, task_id: int, *, chain_limit: int = 500) -> dict[str, Any] | None:
    """Everything about one task: input, VM and chain, attempts with statuses, log, products."""
    row = await _one(conn, "console_task", {"task_id": task_id})
    if row is None:
        return None
    chain = [
        dict(r)
        for r in await _all(
            conn, "console_task_chain", {"vm_id": row["vm_id"], "limit": chain_limit}
        )
    ]
    position = next((k for k, r in enumerate(chain) if r["id"] == task_id), None)
    attempts: list[dict[str, Any]] = []
    for r in await _all(conn, "console_task_attempts", {"task_id": task_id}):
        if not attempts or attempts[-1]["dispatch_id"] != r["dispatch_id"]:
            attempts.append(
                {
                    "dispatch_id": r["dispatch_id"],
                    "key": r["key"],
                    "dispatch_date": r["dispatch_date"],
                    "dispatched_at": r["dispatched_at"],
                    "log_path": r["log_path"],
                    "statuses": [],
                }
            )
        if r["status_row_id"] is not None:
            attempts[-1]["statuses"].append(
                {"status": r["status"], "date": r["status_date"], "message": r["message"]}
            )
    for a in attempts:
        a["outcome"] = a["statuses"][-1]["status"] if a["statuses"] else "submitted"
    last_log = attempts[-1]["log_path"] if attempts else None
    products = [
        dict(r) for r in await _all(conn, "console_task_products", {"input_id": row["input_id"]})
    ]
    return _jdict(
        {
            "task": dict(row),
            "inputs": [
                {
                    "id": row["input_id"],
                    "role": "primary",
                    "condition": row["processing_condition_name"],
                    "tile": row["tile"],
                    "measurement_day": row["measurement_day"],
                    "date": row["date"],
                    "input_path": row["input_path"],
                }
            ],
            "vm": {"id": row["vm_id"], "name": row["vm_name"], "flavour": row["flavour"]},
            "chain": chain,
            "position": None if position is None else position + 1,
            "attempts": attempts,
            "log_path": last_log,
            "log_tail": log_tail(last_log),
            "products": products,
        }
    )


async def products_page(
    conn: Conn,
    *,
    product_type: str | None,
    tile: str | None,
    day: int | None,
    before: int | None,
    limit: int = 50,
    scan: int = SCAN_ROWS,
) -> Page:
    window = max(scan, limit)
    params: dict[str, Any] = {
        "product_type": product_type,
        "tile": tile,
        "day": day,
        "before": before,
        "limit": limit,
        "scan": window,
    }
    rows = [dict(r) for r in await _all(conn, "console_products_page", params)]
    if len(rows) == limit:
        return Page(rows, int(rows[-1]["id"]), limit)
    end = await _one(conn, "console_products_window_end", params)
    scanned = int(end["scanned"]) if end else 0
    more = end is not None and end["last_id"] is not None and scanned >= window
    return Page(rows, int(end["last_id"]) if more and end else None, scanned)


async def choices(conn: Conn) -> dict[str, list[str]]:
    return {
        "conditions": [r["name"] for r in await _all(conn, "console_conditions")],
        "product_types": [r["code"] for r in await _all(conn, "console_product_types")],
    }


async def recent_actions(conn: Conn, limit: int = 20) -> list[dict[str, Any]]:
    return _jlist([dict(r) for r in await _all(conn, "console_recent_actions", {"limit": limit})])


async def paused(conn: Conn) -> list[dict[str, Any]]:
    return _jlist([dict(r) for r in await _all(conn, "console_paused_conditions")])


# -- actions ---------------------------------------------------------------------------


class ActionRefused(errors.HrwsiError):
    """An operator action that does not apply (unknown target, wrong state)."""


async def _record(conn: Conn, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
    await conn.execute(
        queries.get("console_record_action"),
        {"actor": actor, "action": action, "target": target, "detail": json.dumps(detail)},
    )


async def cancel(
    db_url: str, task_id: int, *, actor: str, reason: str | None = None
) -> dict[str, Any]:
    """Cancel a pending, running or waiting task: it ends as cancelled (never retried or
    re-planned automatically) and the launchers stop its run (``task_cancelled``)."""
    conn = await connect(db_url)
    try:
        async with conn, conn.transaction():
            row = await _one(conn, "console_cancel_lock_task", {"task_id": task_id})
            if row is None:
                raise errors.TaskNotFound(task_id)
            if row["has_ended"]:
                raise ActionRefused(f"task {task_id} cannot be cancelled: it is {row['state']}")
            done = await _one(
                conn,
                "console_cancel_task",
                {"task_id": task_id, "actor": actor, "reason": reason},
            )
            assert done is not None
            await _record(
                conn, actor, "cancel", f"task:{task_id}", {"was": row["state"], "reason": reason}
            )
            return _jdict({"task_id": task_id, "was": row["state"], **dict(done)})
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"cancel of task {task_id} failed: {exc}") from exc


async def pause(db_url: str, condition: str, *, actor: str, reason: str | None = None) -> bool:
    """Pause a condition; False when it was paused already."""
    conn = await connect(db_url)
    try:
        async with conn, conn.transaction():
            row = await _one(
                conn,
                "console_pause_condition",
                {"condition": condition, "actor": actor, "reason": reason},
            )
            assert row is not None
            if not row["known"]:
                raise ActionRefused(f"no processing condition named {condition!r}")
            if row["added"]:
                await _record(conn, actor, "pause", f"condition:{condition}", {"reason": reason})
            return bool(row["added"])
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"pause of {condition!r} failed: {exc}") from exc


async def resume(db_url: str, condition: str, *, actor: str) -> bool:
    """Resume a paused condition (its waiting inputs get planned); False when it was not paused."""
    conn = await connect(db_url)
    try:
        async with conn, conn.transaction():
            row = await _one(conn, "console_resume_condition", {"condition": condition})
            assert row is not None
            if not row["known"]:
                raise ActionRefused(f"no processing condition named {condition!r}")
            if row["removed"]:
                await _record(conn, actor, "resume", f"condition:{condition}", {})
            return bool(row["removed"])
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"resume of {condition!r} failed: {exc}") from exc


async def retry(
    db_url: str, task_id: int, *, actor: str, reason: str | None = None
) -> dict[str, Any]:
    """``hrwsi retry``'s reopening of a task, recorded as an operator action in its transaction."""
    from hrwsi.cli import retry as retry_command  # the CLI package imports this module

    conn = await connect(db_url)
    try:
        async with conn, conn.transaction(), conn.cursor() as cur:
            done = await retry_command.retry_in(cur, task_id, requested_by=actor, reason=reason)
            await _record(
                conn,
                actor,
                "retry",
                f"task:{task_id}",
                {"reason": reason, "dispatches_before": done.dispatches_before},
            )
            return {
                "task_id": done.task_id,
                "dispatches_before": done.dispatches_before,
                "extra_attempts": done.extra_attempts,
            }
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"retry of task {task_id} failed: {exc}") from exc
