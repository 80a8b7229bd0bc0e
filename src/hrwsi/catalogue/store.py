"""The harvester's edge on PostgreSQL: inputs stored in batches, watermarks, archive cursors.

Every write is one statement; deduplication is the unique key
``(processing_condition_name, input_path)`` with ``ON CONFLICT DO NOTHING``, never a Python-side
comparison with stored rows. The v1 statement-level trigger therefore sends one
``input_insertion`` notification per batch (per condition).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from hrwsi.db import queries
from hrwsi.domain import errors, products

Connection = psycopg.AsyncConnection[TupleRow]


def batch_parameters(condition: str, batch: Sequence[products.CatalogueProduct]) -> dict[str, Any]:
    """The parameters of ``harvester_store_inputs`` for one batch.

    The rows travel as one JSON text read by ``json_to_recordset``: psycopg adapts a list
    element by element (about 10 µs each here), the json module does a whole batch in a
    fraction of that, and it stays a single statement with a single parameter.
    """
    rows = [
        {
            # input.date is a timestamp without time zone holding UTC.
            "date": p.sensing_start.astimezone(UTC).replace(tzinfo=None).isoformat(),
            "tile": p.location,
            "measurement_day": p.measurement_day,
            "input_path": p.s3_path,
            "mission": p.mission,
            "catalogue_id": p.id,
            "product_name": p.name,
            "publication_date": p.publication_date.isoformat(),
        }
        for p in batch
    ]
    return {"condition": condition, "rows": json.dumps(rows, separators=(",", ":"))}


async def store_inputs(
    conn: Connection, condition: str, batch: Sequence[products.CatalogueProduct]
) -> int:
    """Insert the batch as inputs of ``condition`` in one statement; how many were new."""
    if not batch:
        return 0
    try:
        cursor = await conn.execute(
            queries.get("harvester_store_inputs"), batch_parameters(condition, batch)
        )
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"storing {len(batch)} inputs failed: {exc}") from exc
    return int(row[0]) if row else 0


async def watermark(conn: Connection, query: str) -> datetime | None:
    try:
        cursor = await conn.execute(queries.get("harvester_get_watermark"), {"query": query})
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"reading the watermark of {query!r} failed: {exc}") from exc
    return row[0] if row else None


async def advance_watermark(conn: Connection, query: str, publication: datetime) -> None:
    try:
        await conn.execute(
            queries.get("harvester_advance_watermark"),
            {"query": query, "publication_date": publication},
        )
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"moving the watermark of {query!r} failed: {exc}") from exc


async def reset_watermark(conn: Connection, query: str) -> None:
    """Forget the watermark: the next pass reaches back to the query's max-days limit."""
    try:
        await conn.execute(queries.get("harvester_delete_watermark"), {"query": query})
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"resetting the watermark of {query!r} failed: {exc}") from exc


@dataclass(frozen=True)
class ArchiveCursor:
    """Where an archive run stands: the day being walked and the last PublicationDate stored."""

    query: str
    from_day: date
    to_day: date
    day: date
    resume_from: datetime | None = None
    pages: int = 0
    records: int = 0
    new_inputs: int = 0


async def archive_cursor(
    conn: Connection, query: str, from_day: date, to_day: date
) -> ArchiveCursor | None:
    params = {"query": query, "from_day": from_day, "to_day": to_day}
    try:
        cursor = await conn.execute(queries.get("harvester_get_archive_cursor"), params)
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"reading the archive cursor failed: {exc}") from exc
    if row is None:
        return None
    return ArchiveCursor(query, from_day, to_day, row[0], row[1], row[2], row[3], row[4])


async def save_archive_cursor(conn: Connection, cursor: ArchiveCursor) -> None:
    try:
        await conn.execute(
            queries.get("harvester_save_archive_cursor"),
            {
                "query": cursor.query,
                "from_day": cursor.from_day,
                "to_day": cursor.to_day,
                "day": cursor.day,
                "resume_from": cursor.resume_from,
                "pages": cursor.pages,
                "records": cursor.records,
                "new_inputs": cursor.new_inputs,
            },
        )
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"saving the archive cursor failed: {exc}") from exc


async def delete_archive_cursor(conn: Connection, query: str, from_day: date, to_day: date) -> None:
    try:
        await conn.execute(
            queries.get("harvester_delete_archive_cursor"),
            {"query": query, "from_day": from_day, "to_day": to_day},
        )
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"deleting the archive cursor failed: {exc}") from exc
