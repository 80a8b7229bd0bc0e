"""Read-only figures over the tables: latency percentiles and the chain summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from hrwsi.db import queries


@dataclass(frozen=True)
class Latency:
    inputs: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class ConditionSummary:
    condition: str
    inputs: int
    tasks: int
    attempts: int
    failed_attempts: int
    inputs_with_product: int
    tasks_ended: int


@dataclass(frozen=True)
class FailedTask:
    task_id: int
    condition: str
    input_path: str | None
    last_message: str | None


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


async def dispatch_latency(conn: psycopg.AsyncConnection[TupleRow], since: datetime) -> Latency:
    """Percentiles of input commit → first dispatch for inputs inserted since ``since``."""
    cur = await conn.execute(queries.get("metrics_dispatch_latency"), {"since": since})
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    return Latency(int(row[0]), _float(row[1]), _float(row[2]), _float(row[3]))


async def chain_summary(conn: psycopg.AsyncConnection[TupleRow]) -> list[ConditionSummary]:
    cur = await conn.execute(queries.get("metrics_chain_summary"))
    return [ConditionSummary(*(r[0],), *(int(v) for v in r[1:])) for r in await cur.fetchall()]


async def products_by_type(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, int]:
    cur = await conn.execute(queries.get("metrics_products_by_type"))
    return {str(code): int(count) for code, count in await cur.fetchall()}


async def failed_for_good(
    conn: psycopg.AsyncConnection[TupleRow], limit: int = 20
) -> list[FailedTask]:
    """The ``limit`` latest tasks that ended unprocessed, newest first (never the whole history)."""
    cur = await conn.execute(queries.get("metrics_failed_for_good"), {"limit": limit})
    return [FailedTask(int(r[0]), str(r[1]), r[2], r[3]) for r in await cur.fetchall()]
