"""A fresh install has exactly the v1 row types: every v1 table, composite type and function.

The reference is a database built from tests/fixtures/v1_schema.sql (the v1 DDL). Compared,
for every table and composite type of that database: its columns (name, type, in order); for
every function: its arguments and declared result, and the columns (name, type) of the rows a
call returns. Our own facts live in tables of our own (input_meta, task_state, vm_plan, ...),
so a column added to a v1 table fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

FIXTURES = Path(__file__).parent.parent / "fixtures"

# Relations (tables and composite types) of schema hrwsi with their live columns, in order.
COLUMNS = """
SELECT c.relname, c.relkind::text, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_class AS c
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'hrwsi'::regnamespace AND c.relkind IN ('r', 'c')
ORDER BY c.relname, a.attnum
"""

FUNCTIONS = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
       array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t)
FROM pg_proc AS p
WHERE p.pronamespace = 'hrwsi'::regnamespace AND p.prokind = 'f'
  AND p.prorettype <> 'trigger'::regtype
ORDER BY p.proname
"""

Shape = dict[str, list[tuple[str, str]]]


async def relation_shapes(conn: psycopg.AsyncConnection[Any]) -> Shape:
    """Each table / composite type of hrwsi: [(column, type), ...] in column order."""
    cur = await conn.execute(COLUMNS)
    shapes: Shape = {}
    for relname, kind, column, type_ in await cur.fetchall():
        shapes.setdefault(f"{kind}:{relname}", []).append((column, type_))
    return shapes


async def function_shapes(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
    """Each function of hrwsi: its signature and the (column, type) of the rows a call returns."""
    cur = await conn.execute(FUNCTIONS)
    shapes: dict[str, Any] = {}
    for name, arguments, result, types in await cur.fetchall():
        nulls = sql.SQL(", ").join(sql.SQL("NULL::{}").format(sql.SQL(t)) for t in types)
        call = sql.SQL("SELECT * FROM hrwsi.{}({})").format(sql.Identifier(name), nulls)
        async with conn.transaction(force_rollback=True):
            described = await conn.execute(call)
            assert described.description is not None
            row = [(c.name, c.type_code) for c in described.description]
        shapes[name] = (arguments, result, row)
    return shapes


@pytest.fixture
async def v1(empty_db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection to an empty database of the v1 DDL."""
    conn = await psycopg.AsyncConnection.connect(empty_db_url, autocommit=True)
    async with conn:
        await conn.execute((FIXTURES / "v1_schema.sql").read_text(encoding="utf-8").encode())
        yield conn


def differences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What of ``expected`` is missing from or different in ``found``."""
    return [
        f"{key}: v1 {want}, ours {found.get(key, 'missing')}"
        for key, want in expected.items()
        if found.get(key) != want
    ]


async def test_every_v1_table_and_type_has_exactly_its_v1_columns(
    v1: psycopg.AsyncConnection[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """Each v1 table and composite type of `hrwsi db init` has v1's columns, types and order."""
    expected = await relation_shapes(v1)
    assert len([k for k in expected if k.startswith("r:")]) == 15
    assert len([k for k in expected if k.startswith("c:")]) == 2
    assert differences(expected, await relation_shapes(conn)) == []


async def test_every_v1_function_returns_v1_rows(
    v1: psycopg.AsyncConnection[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """Each v1 function of `hrwsi db init` has v1's arguments, result type and row columns."""
    expected = await function_shapes(v1)
    assert len(expected) == 22
    assert differences(expected, await function_shapes(conn)) == []


async def test_a_column_added_to_a_v1_table_is_caught(
    v1: psycopg.AsyncConnection[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """The comparison fails on an extra column: the table and the functions returning it."""
    await conn.execute("ALTER TABLE hrwsi.processing_tasks ADD COLUMN planned_start_min integer")
    tables = differences(await relation_shapes(v1), await relation_shapes(conn))
    functions = differences(await function_shapes(v1), await function_shapes(conn))
    assert [d.split(":")[1] for d in tables] == ["processing_tasks"]
    assert sorted(d.split(":")[0] for d in functions) == [
        "get_preceding_processing_task",
        "get_processing_tasks_not_finished",
    ]


async def test_not_finished_tasks_come_as_v1_s_eight_columns(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    """SELECT * FROM get_processing_tasks_not_finished() on `hrwsi db init`: v1's 8 columns."""
    await conn.execute(
        "INSERT INTO hrwsi.virtual_machine (id, name, flavour)"
        " VALUES ('00000000-0000-0000-0000-000000000001', 'vm-1', 'MAJA');"
        "INSERT INTO hrwsi.input (id, processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) VALUES (1, 'MAJA_PC', '2024-01-01', '31TCH', 20240101, '/a', 'S2');"
        "INSERT INTO hrwsi.processing_tasks (id, input_fk_id, virtual_machine_id, creation_date)"
        " VALUES (7, 1, '00000000-0000-0000-0000-000000000001', '2024-01-01');"
        "INSERT INTO hrwsi.task_state (processing_task_id, planned_start_min, planned_end_min,"
        " extra_attempts) VALUES (7, 0, 20, 2)"
    )
    cur = await conn.execute("SELECT * FROM hrwsi.get_processing_tasks_not_finished()")
    rows = await cur.fetchall()
    assert cur.description is not None
    assert [c.name for c in cur.description] == [
        "id", "input_fk_id", "virtual_machine_id", "creation_date", "preceding_input_id",
        "nomad_job_id", "has_ended", "intermediate_files_path",
    ]  # fmt: skip
    assert [len(r) for r in rows] == [8]
    assert rows[0][0] == 7
