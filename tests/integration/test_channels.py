"""The four wake-up channels: one small notification per batch, never an aborted INSERT.

A NOTIFY payload over 8000 bytes makes the INSERT fail, so a trigger that put rows or id
lists in its payload would break big batches: each test inserts 5,000 rows in one statement.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

BATCH = 5000
VM = "c0000000-0000-0000-0000-000000000001"


@pytest.fixture
async def listener(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A second autocommit connection to the test database, listening on the four channels."""
    conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    async with conn:
        for channel in (
            "input_insertion",
            "processing_task_insertion",
            "processing_tasks_state_processed",
            "product_insertion",
        ):
            await conn.execute(f"LISTEN {channel}".encode())
        yield conn


async def received(listener: psycopg.AsyncConnection[Any]) -> list[tuple[str, str]]:
    """Every (channel, payload) that arrives within one second."""
    return [(n.channel, n.payload) async for n in listener.notifies(timeout=1.0)]


async def insert_inputs(conn: psycopg.AsyncConnection[Any], count: int) -> None:
    await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission)"
        " SELECT CASE WHEN g %% 2 = 0 THEN 'MAJA_PC' ELSE 'FSC_PC' END, '2024-01-01', '31TCH',"
        " 20240101, '/eodata/batch/' || g, 'S2' FROM generate_series(1, %s) AS g",
        (count,),
    )


async def insert_tasks(conn: psycopg.AsyncConnection[Any]) -> tuple[int, int]:
    """One task per input in one statement; returns the (min, max) task id."""
    await conn.execute(
        "INSERT INTO hrwsi.virtual_machine (id, name, flavour) VALUES (%s, 'vm', 'MAJA')", (VM,)
    )
    cur = await conn.execute(
        "WITH made AS (INSERT INTO hrwsi.processing_tasks"
        " (input_fk_id, virtual_machine_id, creation_date)"
        " SELECT id, %s, '2024-01-01' FROM hrwsi.input RETURNING id)"
        " SELECT min(id), max(id), count(*) FROM made",
        (VM,),
    )
    row = await cur.fetchone()
    assert row is not None and row[2] == BATCH
    return int(row[0]), int(row[1])


def small(payload: str) -> bool:
    return len(payload.encode()) < 8000


async def test_input_batch_notifies_once_per_condition(
    conn: psycopg.AsyncConnection[Any], listener: psycopg.AsyncConnection[Any]
) -> None:
    """5,000 inputs of two conditions in one INSERT: one notification per condition name."""
    await insert_inputs(conn, BATCH)

    got = await received(listener)
    assert sorted(got) == [("input_insertion", "FSC_PC"), ("input_insertion", "MAJA_PC")]
    cur = await conn.execute("SELECT count(*) FROM hrwsi.input")
    assert await cur.fetchone() == (BATCH,)


async def test_task_batch_notifies_once_with_count_and_id_range(
    conn: psycopg.AsyncConnection[Any], listener: psycopg.AsyncConnection[Any]
) -> None:
    """5,000 tasks in one INSERT: one processing_task_insertion {count, min_id, max_id}."""
    await insert_inputs(conn, BATCH)
    await received(listener)
    low, high = await insert_tasks(conn)

    got = await received(listener)
    assert [channel for channel, _ in got] == ["processing_task_insertion"]
    payload = got[0][1]
    assert small(payload)
    assert json.loads(payload) == {"count": BATCH, "min_id": low, "max_id": high}


async def test_product_batch_notifies_once_with_count_and_id_range(
    conn: psycopg.AsyncConnection[Any], listener: psycopg.AsyncConnection[Any]
) -> None:
    """5,000 products in one INSERT: one product_insertion {count, min_id, max_id}."""
    await insert_inputs(conn, BATCH)
    await received(listener)
    cur = await conn.execute(
        "WITH made AS (INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date,"
        " catalogued_date, product_type_id)"
        " SELECT id, '/products/' || id, '2024-01-02', '2024-01-02', 1 FROM hrwsi.input"
        " RETURNING id) SELECT min(id), max(id) FROM made"
    )
    row = await cur.fetchone()
    assert row is not None

    got = await received(listener)
    assert [channel for channel, _ in got] == ["product_insertion"]
    assert small(got[0][1])
    assert json.loads(got[0][1]) == {"count": BATCH, "min_id": row[0], "max_id": row[1]}


async def test_empty_batches_say_nothing(
    conn: psycopg.AsyncConnection[Any], listener: psycopg.AsyncConnection[Any]
) -> None:
    """An INSERT ... SELECT of no row sends no notification on any channel."""
    await conn.execute(
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date)"
        " SELECT id, NULL, now() FROM hrwsi.input WHERE false"
    )
    await conn.execute(
        "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date, catalogued_date,"
        " product_type_id) SELECT id, 'x', now(), now(), 1 FROM hrwsi.input WHERE false"
    )
    await insert_inputs(conn, 0)
    assert await received(listener) == []


async def test_processed_statuses_notify_their_row_ids(
    conn: psycopg.AsyncConnection[Any], listener: psycopg.AsyncConnection[Any]
) -> None:
    """5,000 status rows, 100 of them 'processed': exactly those 100 row ids are notified."""
    await insert_inputs(conn, BATCH)
    await insert_tasks(conn)
    await conn.execute(
        "INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch,"
        " dispatch_date) SELECT id, 'd' || id, now() FROM hrwsi.processing_tasks"
    )
    await received(listener)
    cur = await conn.execute(
        "INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id,"
        " processing_status_id, date)"
        " SELECT id, CASE WHEN id % 50 = 0 THEN 2 ELSE 1 END, now()"
        " FROM hrwsi.nomad_job_dispatch RETURNING id, processing_status_id"
    )
    processed = sorted(str(i) for i, status in await cur.fetchall() if status == 2)
    assert len(processed) == BATCH // 50

    got = await received(listener)
    assert {channel for channel, _ in got} == {"processing_tasks_state_processed"}
    assert sorted(payload for _, payload in got) == processed
