"""The harvester's edge on PostgreSQL: inputs stored in batches, watermarks, archive cursors.

A batch of inputs is staged by binary COPY and stored by one statement; deduplication is the
unique key ``(processing_condition_name, input_path)`` with ``ON CONFLICT DO NOTHING``, never a
Python-side comparison with stored rows. The v1 statement-level trigger therefore sends one
``input_insertion`` notification per batch (per condition).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
from psycopg.rows import TupleRow

from hrwsi.db import queries
from hrwsi.domain import errors, products

Connection = psycopg.AsyncConnection[TupleRow]


# The staging table's columns, in COPY order, as PostgreSQL types (binary COPY needs them).
_STAGE_TYPES = ("timestamp", "text", "int8", "text", "text", "text", "text", "timestamptz")


def stage_row(p: products.CatalogueProduct) -> tuple[object, ...]:
    """One product as a row of the staging table (``input.date`` is a zone-less UTC time)."""
    return (
        p.sensing_start.astimezone(UTC).replace(tzinfo=None),
        p.location,
        p.measurement_day,
        p.s3_path,
        p.mission,
        p.id,
        p.name,
        p.publication_date,
    )


async def store_inputs(
    conn: Connection, condition: str, batch: Sequence[products.CatalogueProduct]
) -> int:
    """Insert the batch as inputs of ``condition``; how many were new.

    The batch is loaded by binary COPY into a session temporary table, then moved into
    ``hrwsi.input`` by one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` that also empties
    the stage. COPY costs the client and the server a fraction of building, sending and
    parsing one JSON document or thousands of parameters; the insert stays one statement,
    so the statement-level triggers fire (and notify) once per batch. Runs in the caller's
    transaction, or in its own when there is none (the stage is emptied at every commit).
    """
    if not batch:
        return 0
    try:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            async with conn.transaction():
                return await _stage_and_store(conn, condition, batch)
        return await _stage_and_store(conn, condition, batch)
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"storing {len(batch)} inputs failed: {exc}") from exc


async def _stage_and_store(
    conn: Connection, condition: str, batch: Sequence[products.CatalogueProduct]
) -> int:
    await conn.execute(queries.get("harvester_create_input_stage"))
    async with conn.cursor().copy(queries.get("harvester_copy_input_stage")) as copy:
        copy.set_types(_STAGE_TYPES)
        for product in batch:
            await copy.write_row(stage_row(product))
    cursor = await conn.execute(queries.get("harvester_store_inputs"), {"condition": condition})
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def set_lock_timeout(conn: Connection, seconds: float) -> None:
    """Bound the lock waits of the current transaction to ``seconds``."""
    try:
        await conn.execute(
            queries.get("harvester_set_lock_timeout"), {"timeout": f"{int(seconds * 1000)}ms"}
        )
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"setting the lock timeout failed: {exc}") from exc


async def try_query_lock(conn: Connection, query: str) -> bool:
    """Take the session lock under which one harvester at a time runs ``query``'s passes."""
    try:
        cursor = await conn.execute(queries.get("harvester_try_query_lock"), {"query": query})
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"locking harvest query {query!r} failed: {exc}") from exc
    return bool(row and row[0])


async def release_query_lock(conn: Connection, query: str) -> None:
    try:
        await conn.execute(queries.get("harvester_release_query_lock"), {"query": query})
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"unlocking harvest query {query!r} failed: {exc}") from exc


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
