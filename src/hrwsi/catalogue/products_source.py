"""Products as inputs: what one routine makes, another takes (an L2A product → an FSC input).

A product whose type's ``data_type`` equals a routine's ``input_type`` becomes an input of
every processing condition using that routine, exactly once: one set-based
``INSERT … SELECT … ON CONFLICT DO NOTHING`` over the tables, safe to repeat and to run from
several replicas at once. The chained input keeps the source input's sensing date, tile,
measurement day and mission; its ``input_path`` is the product path and
``source_product_id`` the product.
"""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from hrwsi.db import queries
from hrwsi.domain import errors


async def products_to_inputs(conn: psycopg.AsyncConnection[TupleRow]) -> int:
    """Turn every product not yet an input into inputs; how many inputs were new."""
    try:
        cursor = await conn.execute(queries.get("harvester_products_to_inputs"))
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"products-to-inputs pass failed: {exc}") from exc
    return int(row[0]) if row else 0
