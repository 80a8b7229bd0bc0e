"""The schema: init is idempotent, and every v1 object exists with our extensions."""

from __future__ import annotations

import psycopg

from hrwsi.config import Config
from hrwsi.db import migrate, seed


async def test_init_twice_on_empty_database_changes_nothing(empty_db_url: str) -> None:
    """A second init applies no migration and seeds no row."""
    async with await psycopg.AsyncConnection.connect(empty_db_url, autocommit=True) as conn:
        first = await migrate.migrate(conn)
        assert [m.version for m in first.applied] == [m.version for m in migrate.available()]
        await seed.seed(conn, Config())
        second = await migrate.migrate(conn)
        assert second.applied == []
        assert await seed.seed(conn, Config()) == 0


async def test_input_is_unique_per_condition_and_path(conn: psycopg.AsyncConnection) -> None:
    """Inserting the same (condition, path) twice keeps one row."""
    insert = (
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) VALUES ('MAJA_PC', now(), '31TCH', 20240102, '/p', 'S2')"
        " ON CONFLICT DO NOTHING"
    )
    await conn.execute(insert)
    await conn.execute(insert)
    cur = await conn.execute("SELECT count(*) FROM hrwsi.input")
    assert (await cur.fetchone()) == (1,)
