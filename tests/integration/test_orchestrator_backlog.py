"""The orchestrator backlog is a cache: ids of inputs that are gone never block a pass."""

from __future__ import annotations

import psycopg
from test_orchestrator import count, insert_inputs, service, tasks_by_input


async def test_backlog_ids_of_deleted_inputs_are_dropped(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """An input deleted after it was queued leaves the backlog; the others are planned."""
    ids = await insert_inputs(conn, 3)
    await conn.execute("DELETE FROM hrwsi.input WHERE id = %s", (ids[0],))
    cur = await conn.execute("SELECT input_id FROM hrwsi.orchestrator_backlog ORDER BY input_id")
    assert [r[0] for r in await cur.fetchall()] == ids  # no foreign key: the id stays queued
    orchestrator = service(db_url)
    try:
        await orchestrator.reconcile()
    finally:
        await orchestrator.aclose()
    assert await count(conn, "orchestrator_backlog") == 0
    assert await tasks_by_input(conn) == {ids[1]: 1, ids[2]: 1}
