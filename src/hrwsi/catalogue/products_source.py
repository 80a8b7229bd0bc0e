"""Products as inputs: what one routine makes, another takes (an L2A product → an FSC input).

A product whose type's ``data_type`` equals a routine's ``input_type`` becomes an input of
every processing condition using that routine, exactly once: the unique key
``(processing_condition_name, input_path)`` with ``ON CONFLICT DO NOTHING`` makes every pass
safe to repeat and to run from several replicas at once. The chained input keeps the source
input's sensing date, tile, measurement day and mission; its ``input_path`` is the product
path and ``source_product_id`` the product.

Two passes (migration 0050):

* :func:`queued_products_to_inputs` — the routine pass, O(new products): a trigger queues
  each new product id in the inserting transaction; the pass takes a batch of ids off the
  queue (``DELETE … RETURNING``, rows held by another replica skipped) and inserts their
  inputs in the same transaction, so a crash or a rollback puts the ids back.
* :func:`products_to_inputs` — the full sweep over every product, the safety net (a
  condition added after its products were made, a queue row deleted by hand).
"""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from hrwsi.db import queries
from hrwsi.domain import errors

Connection = psycopg.AsyncConnection[TupleRow]


async def products_to_inputs(conn: Connection) -> int:
    """The full sweep: turn every product not yet an input into inputs; how many were new."""
    try:
        cursor = await conn.execute(queries.get("harvester_products_to_inputs"))
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"products-to-inputs sweep failed: {exc}") from exc
    return int(row[0]) if row else 0


async def queued_products_to_inputs(conn: Connection, limit: int) -> tuple[int, int]:
    """Take up to ``limit`` queued products and make their inputs, in one transaction.

    Returns ``(claimed, new_inputs)``; ``claimed < limit`` means the queue held no more
    rows this pass could take. The claimed ids reach the insert as an array, so its plan is
    index lookups of those products whatever the size of the products table.
    """
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                queries.get("harvester_claim_queued_products"), {"limit": limit}
            )
            ids = [int(r[0]) for r in await cursor.fetchall()]
            if not ids:
                return 0, 0
            cursor = await conn.execute(
                queries.get("harvester_queued_products_to_inputs"), {"ids": ids}
            )
            row = await cursor.fetchone()
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"products-to-inputs pass failed: {exc}") from exc
    return len(ids), int(row[0]) if row else 0
