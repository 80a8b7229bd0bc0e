"""Upgrading a filled hrwsi database of the schema before 0060: every fact kept, v1 rows unchanged.

The database is built with the migrations of main at 894dc18 (copied to
tests/fixtures/hrwsi_0050_migrations/, recorded in schema_migrations as `hrwsi db init` did)
and filled with tests/fixtures/hrwsi_0050_data.sql, where every column we had added to a v1
table holds a fact. Then it is migrated and seeded as `hrwsi db migrate` does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from test_v1_upgrade import schema_of

from hrwsi.config import Config
from hrwsi.db import migrate, queries, seed

FIXTURES = Path(__file__).parent.parent / "fixtures"
OLD_MIGRATIONS = FIXTURES / "hrwsi_0050_migrations"

V1_TABLES = (
    "processing_routine", "processing_condition", "processing_status", "product_type",
    "indexation_failure_type", "indexation_file_type", "log_levels", "input", "virtual_machine",
    "processing_tasks", "nomad_job_dispatch", "processing_status_workflow", "products",
    "indexation_json", "indexation_workflow",
)  # fmt: skip
# Tables of ours that 0060 does not touch.
OUR_OTHER_TABLES = (
    "harvest_watermark", "harvest_archive_cursor", "task_retry", "orchestrator_backlog",
    "harvester_product_queue",
)  # fmt: skip
# The event-time columns 0040 added, with the v1 column (UTC) that keeps the same instant.
EVENT_TIMES = {
    "nomad_job_dispatch": "dispatch_date",
    "products": "creation_date",
    "processing_status_workflow": "date",
}

# The v1 tables 0060 takes columns from.
MOVED = ("input", "processing_tasks", "virtual_machine", *EVENT_TIMES)

Rows = dict[str, list[dict[str, Any]]]


async def _columns(conn: psycopg.AsyncConnection[Any], table: str) -> list[str]:
    cur = await conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'hrwsi' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    )
    return [str(r[0]) for r in await cur.fetchall()]


async def _apply_old_migrations(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """Build the pre-0060 schema exactly as `hrwsi db init` of 894dc18 left it."""
    versions = []
    async with conn.transaction():
        await conn.execute(queries.get("migrations_create_table"))
        for path in sorted(OLD_MIGRATIONS.glob("*.sql")):
            version, name = path.stem.split("_", 1)
            text = path.read_text(encoding="utf-8")
            await conn.execute(text.encode())
            old = migrate.Migration(int(version), name, text)
            await conn.execute(
                queries.get("migrations_record"), (old.version, old.name, old.checksum)
            )
            versions.append(old.version)
    await seed.seed(conn, Config())
    return versions


async def _rows(conn: psycopg.AsyncConnection[Any], tables: tuple[str, ...]) -> Rows:
    found: Rows = {}
    async with conn.cursor(row_factory=dict_row) as cur:
        for table in tables:
            await cur.execute(f"SELECT * FROM hrwsi.{table}".encode())
            found[table] = sorted(await cur.fetchall(), key=repr)
    return found


@pytest.fixture
async def old(empty_db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection to a filled database of the pre-0060 schema."""
    conn = await psycopg.AsyncConnection.connect(empty_db_url, autocommit=True)
    async with conn:
        versions = await _apply_old_migrations(conn)
        assert versions[-1] == 50 and len(versions) == 11
        await conn.execute((FIXTURES / "hrwsi_0050_data.sql").read_text(encoding="utf-8").encode())
        yield conn


async def _upgrade(conn: psycopg.AsyncConnection[Any]) -> migrate.MigrationReport:
    report = await migrate.migrate(conn)
    await seed.seed(conn, Config())
    return report


def _expected_facts(before: Rows) -> Rows:
    """The side-table rows the facts of the old columns must become."""
    meta = [
        {
            "input_id": r["id"],
            **{
                k: r[k]
                for k in (
                    "catalogue_id", "product_name", "publication_date", "source_product_id",
                    "inserted_at",
                )
            },
        }
        for r in before["input"]
    ]  # fmt: skip
    state = [
        {
            "processing_task_id": r["id"],
            **{
                k: r[k]
                for k in (
                    "created_at", "planned_start_min", "planned_end_min", "extra_attempts",
                    "next_attempt_at",
                )
            },
        }
        for r in before["processing_tasks"]
    ]  # fmt: skip
    plan = [
        {
            "virtual_machine_id": r["id"],
            **{k: r[k] for k in ("created_at", "planned_start_min", "planned_stop_min", "pooled")},
            "pooled_name": r["name"] if r["pooled"] else None,
        }
        for r in before["virtual_machine"]
    ]
    return {
        "input_meta": sorted(meta, key=repr),
        "task_state": sorted(state, key=repr),
        "vm_plan": sorted(plan, key=repr),
    }


async def test_upgrade_moves_every_fact_and_keeps_every_v1_row(
    old: psycopg.AsyncConnection[Any],
) -> None:
    """0060 on a filled pre-0060 database: facts in the side tables, v1 rows as they were."""
    before = await _rows(old, V1_TABLES + OUR_OTHER_TABLES)
    assert {t: len(before[t]) for t in ("input", "processing_tasks", "virtual_machine")} == {
        "input": 5,
        "processing_tasks": 4,
        "virtual_machine": 3,
    }

    report = await _upgrade(old)

    assert [m.version for m in report.applied] == [
        m.version for m in migrate.available() if m.version > 50
    ]
    after = await _rows(old, V1_TABLES + OUR_OTHER_TABLES + ("input_meta", "task_state", "vm_plan"))
    for table in V1_TABLES:
        columns = await _columns(old, table)
        kept = sorted(({c: r[c] for c in columns} for r in before[table]), key=repr)
        assert after[table] == kept, f"hrwsi.{table}: v1 rows changed"
        if before[table]:
            dropped = set(before[table][0]) - set(columns)
            assert bool(dropped) == (table in MOVED), f"hrwsi.{table} lost or kept {dropped}"
    for table in OUR_OTHER_TABLES:
        assert after[table] == before[table], f"hrwsi.{table} changed"
    expected = _expected_facts(before)
    for table, rows in expected.items():
        assert after[table] == rows, f"hrwsi.{table} misses facts"
    # The event times dropped with created_at are the v1 columns' instants (UTC), to the
    # length of the writing transaction.
    for table, column in EVENT_TIMES.items():
        for row in before[table]:
            v1_instant = row[column].replace(tzinfo=dt.UTC)
            assert dt.timedelta(0) <= row["created_at"] - v1_instant < dt.timedelta(seconds=1)


async def test_the_queries_read_the_moved_facts(old: psycopg.AsyncConnection[Any]) -> None:
    """After the upgrade the services' queries see the retry, the plan and the pool as before."""
    await _upgrade(old)
    cur = await old.execute(queries.get("launcher_next_retry"))
    assert await cur.fetchone() == (dt.datetime(2030, 1, 1, tzinfo=dt.UTC),)
    names = {"names": ["node-a", "node-b"]}
    cur = await old.execute(queries.get("orchestrator_pool_workers"), names)
    assert sorted((name, tail) for _, name, _, tail in await cur.fetchall()) == [
        ("node-a", None),
        ("node-b", 3),
    ]
    cur = await old.execute(queries.get("orchestrator_retry_lock_task"), {"task_id": 3})
    row = await cur.fetchone()
    assert row is not None and row[3] == 1  # extra_attempts
    cur = await old.execute(queries.get("orchestrator_busy_vms"))
    assert sorted((r[1], r[3]) for r in await cur.fetchall()) == [
        ("hrwsi-vm-1", False),
        ("node-b", True),
    ]


async def test_upgraded_schema_equals_fresh_install(
    old: psycopg.AsyncConnection[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """A migrated pre-0060 database has exactly the schema of `hrwsi db init`."""
    await _upgrade(old)
    expected, upgraded = await schema_of(conn), await schema_of(old)
    for kind, rows in expected.items():
        missing = [row for row in rows if row not in upgraded[kind]]
        extra = [row for row in upgraded[kind] if row not in rows]
        assert (missing, extra) == ([], []), f"{kind} differ"


async def test_0060_is_idempotent(old: psycopg.AsyncConnection[Any]) -> None:
    """Running 0060 again on the upgraded database changes no row and no schema object."""
    await _upgrade(old)
    tables = V1_TABLES + OUR_OTHER_TABLES + ("input_meta", "task_state", "vm_plan")
    rows, schema = await _rows(old, tables), await schema_of(old)
    text = (resources.files("hrwsi.db") / "migrations" / "0060_v1_exact_rows.sql").read_text(
        encoding="utf-8"
    )
    await old.execute(text.encode())
    assert await _rows(old, tables) == rows
    assert await schema_of(old) == schema
    assert (await migrate.migrate(old)).applied == []
