"""Upgrading a filled HR-WSI v1 database in place: nothing lost, same function results.

The v1 database is built from tests/fixtures/v1_schema.sql (a v1 DDL written from the model
page, plpgsql functions with per-row calls, no schema_migrations table) and filled with
tests/fixtures/v1_data.sql, then migrated and seeded exactly as ``hrwsi db init`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hrwsi.config import Config
from hrwsi.db import migrate, seed
from hrwsi.domain import errors
from hrwsi.testing import databases

FIXTURES = Path(__file__).parent.parent / "fixtures"

# Every v1 table with its v1 columns (the model page); extension columns are not compared.
V1_COLUMNS: dict[str, tuple[str, ...]] = {
    "processing_routine": (
        "name", "cpu", "ram", "storage_space", "duration", "docker_image", "input_type",
        "product_data_type", "product_type_code",
    ),
    "processing_condition": ("name", "processing_routine_name", "description"),
    "processing_status": ("id", "code", "name", "description"),
    "product_type": ("id", "code", "name", "data_type", "description"),
    "indexation_failure_type": ("id", "code", "name", "description"),
    "indexation_file_type": ("id", "name", "description"),
    "log_levels": ("id", "name"),
    "input": (
        "id", "processing_condition_name", "date", "tile", "measurement_day", "input_path",
        "mission",
    ),
    "virtual_machine": ("id", "name", "flavour"),
    "processing_tasks": (
        "id", "input_fk_id", "virtual_machine_id", "creation_date", "preceding_input_id",
        "nomad_job_id", "has_ended", "intermediate_files_path",
    ),
    "nomad_job_dispatch": (
        "id", "processing_task_fk_id", "nomad_job_dispatch", "dispatch_date", "log_path",
    ),
    "processing_status_workflow": (
        "id", "nomad_job_dispatch_fk_id", "processing_status_id", "date", "message",
    ),
    "products": (
        "id", "input_fk_id", "product_path", "creation_date", "catalogued_date",
        "kpi_file_path", "product_type_id",
    ),
    "indexation_json": ("id", "product_fk_id", "indexation_file_type_id", "path"),
    "indexation_workflow": (
        "id", "product_fk_id", "publication_date", "indexation_date", "failure_date",
        "indexation_failure_type_id",
    ),
}  # fmt: skip
CORE_TABLES = (
    "input", "virtual_machine", "processing_tasks", "nomad_job_dispatch",
    "processing_status_workflow", "products", "indexation_json", "indexation_workflow",
)  # fmt: skip

V1_FUNCTIONS = (
    "get_input_by_input_path", "get_input_by_measurement_day", "get_input_by_mission",
    "get_input_by_input_type", "get_input_without_processing_task",
    "get_number_of_error_statuses_by_processing_task", "is_processing_task_processed",
    "get_processing_tasks_not_finished", "get_status_history_by_processing_task_id",
    "get_nomad_job_dispatch_list_by_processing_task_id",
    "get_current_nomad_job_dispatch_by_processing_task_id",
    "are_all_processing_tasks_in_vm_processed", "get_preceding_processing_task",
    "is_preceding_processing_task_processed", "is_one_processing_task_processed_for_an_input",
    "are_all_processing_tasks_ended_for_an_input",
    "get_ids_of_processing_tasks_ready_to_be_launched",
    "get_product_data_type_of_processing_tasks_not_ended",
    "get_id_of_unprocessed_inputs_with_all_pt_ended", "is_product_indexed",
    "is_product_indexation_currently_failed",
    "get_indexation_file_path_by_type_name_by_product_id",
)  # fmt: skip

_INPUT = ", ".join(V1_COLUMNS["input"])
_TASK = ", ".join(V1_COLUMNS["processing_tasks"])
TASK_IDS = [*range(1, 16), 999]
INPUT_IDS = [*range(1, 13), 999]
PRODUCT_IDS = [1, 2, 3, 4, 999]
VM_IDS = [f"a0000000-0000-0000-0000-00000000000{c}" for c in "abcdef"] + [
    "ffffffff-0000-0000-0000-000000000000"
]
DATES = ["2020-01-01", "2024-01-01", "2024-01-02 11:00:00", "2024-01-05 12:00", "2030-01-01"]


def _calls() -> list[tuple[str, str, tuple[Any, ...]]]:
    """(function, SQL selecting its v1 columns, arguments) covering every v1 function."""
    calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def add(function: str, select: str, args: list[tuple[Any, ...]]) -> None:
        calls.extend((function, select.format(f=f"hrwsi.{function}"), a) for a in args)

    paths = ["/eodata/S2/L1C/A.SAFE", "/products/L2A/B", "/nope", None]
    add("get_input_by_input_path", f"SELECT {_INPUT} FROM {{f}}(%s)", [(p,) for p in paths])
    days = [20240102, 20240105, 20240101]
    add("get_input_by_measurement_day", f"SELECT {_INPUT} FROM {{f}}(%s)", [(d,) for d in days])
    missions = ["S1", "S2", "S3"]
    add("get_input_by_mission", f"SELECT {_INPUT} FROM {{f}}(%s)", [(m,) for m in missions])
    types = ["MSIL1C", "L2A", "L2B"]
    add("get_input_by_input_type", f"SELECT {_INPUT} FROM {{f}}(%s)", [(t,) for t in types])
    add("get_input_without_processing_task", f"SELECT {_INPUT} FROM {{f}}()", [()])
    tasks = [(t,) for t in TASK_IDS]
    add("get_number_of_error_statuses_by_processing_task", "SELECT {f}(%s)", tasks)
    add("is_processing_task_processed", "SELECT {f}(%s)", tasks)
    add("get_processing_tasks_not_finished", f"SELECT {_TASK} FROM {{f}}()", [()])
    add("get_status_history_by_processing_task_id", "SELECT * FROM {f}(%s)", tasks)
    add("get_nomad_job_dispatch_list_by_processing_task_id", "SELECT * FROM {f}(%s)", tasks)
    add("get_current_nomad_job_dispatch_by_processing_task_id", "SELECT * FROM {f}(%s)", tasks)
    vms = [(v,) for v in VM_IDS]
    add("are_all_processing_tasks_in_vm_processed", "SELECT * FROM {f}(%s::uuid)", vms)
    add("get_preceding_processing_task", f"SELECT {_TASK} FROM {{f}}(%s)", tasks)
    add("is_preceding_processing_task_processed", "SELECT * FROM {f}(%s)", tasks)
    inputs = [(i,) for i in INPUT_IDS]
    add("is_one_processing_task_processed_for_an_input", "SELECT * FROM {f}(%s)", inputs)
    add("are_all_processing_tasks_ended_for_an_input", "SELECT {f}(%s)", inputs)
    add("get_ids_of_processing_tasks_ready_to_be_launched", "SELECT * FROM {f}()", [()])
    add("get_product_data_type_of_processing_tasks_not_ended", "SELECT * FROM {f}()", [()])
    dates = [(d,) for d in DATES]
    add("get_id_of_unprocessed_inputs_with_all_pt_ended", "SELECT * FROM {f}(%s::timestamp)", dates)
    products = [(p,) for p in PRODUCT_IDS]
    add("is_product_indexed", "SELECT {f}(%s)", products)
    add("is_product_indexation_currently_failed", "SELECT {f}(%s)", products)
    file_args = [(t, p) for t in ("INSPIRE", "STAC", "NONE") for p in PRODUCT_IDS]
    add("get_indexation_file_path_by_type_name_by_product_id", "SELECT {f}(%s, %s)", file_args)
    return calls


def _multiset(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


async def _load(conn: psycopg.AsyncConnection[Any], *names: str) -> None:
    for name in names:
        await conn.execute((FIXTURES / name).read_text(encoding="utf-8").encode())


async def _rows(conn: psycopg.AsyncConnection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for table, columns in V1_COLUMNS.items():
        cur = await conn.execute(f"SELECT {', '.join(columns)} FROM hrwsi.{table}".encode())
        found[table] = _multiset(await cur.fetchall())
    return found


async def _results(conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, Any, Any]]:
    out = []
    for function, select, args in _calls():
        cur = await conn.execute(select.encode(), args)
        out.append((function, args, _multiset(await cur.fetchall())))
    return out


async def _languages(conn: psycopg.AsyncConnection[Any]) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT p.proname, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
        " WHERE p.pronamespace = 'hrwsi'::regnamespace AND p.proname = ANY(%s)",
        (list(V1_FUNCTIONS),),
    )
    return {str(name): str(lang) for name, lang in await cur.fetchall()}


async def _upgrade(conn: psycopg.AsyncConnection[Any]) -> migrate.MigrationReport:
    report = await migrate.migrate(conn)
    await seed.seed(conn, Config())
    return report


@pytest.fixture
async def v1(empty_db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection to a filled HR-WSI v1 database."""
    conn = await psycopg.AsyncConnection.connect(empty_db_url, autocommit=True)
    async with conn:
        await _load(conn, "v1_schema.sql", "v1_data.sql")
        yield conn


async def test_the_calls_cover_all_22_functions() -> None:
    """The comparison below exercises every v1 function of the model page."""
    assert {function for function, _, _ in _calls()} == set(V1_FUNCTIONS)
    assert len(V1_FUNCTIONS) == 22


async def test_upgrade_keeps_every_row_and_every_function_result(
    v1: psycopg.AsyncConnection[Any],
) -> None:
    """migrate + seed on a filled v1 database keeps all v1 rows and all 22 function results."""
    assert set((await _languages(v1)).values()) == {"plpgsql"}
    rows_before = await _rows(v1)
    results_before = await _results(v1)
    assert sum(len(r) for _, _, r in results_before) > 100  # the calls do return data

    report = await _upgrade(v1)

    assert [m.version for m in report.applied] == [m.version for m in migrate.available()]
    rows_after = await _rows(v1)
    for table, before in rows_before.items():
        after = list(rows_after[table])
        for row in before:
            assert row in after, f"hrwsi.{table} lost or changed {row}"
            after.remove(row)
        if table in CORE_TABLES:
            assert after == [], f"hrwsi.{table} gained rows {after}"
    results_after = await _results(v1)
    for before, after in zip(results_before, results_after, strict=True):
        assert before == after, f"{before[0]}{before[1]}: v1 gave {before[2]}, now {after[2]}"


async def test_upgraded_functions_are_set_based_sql(v1: psycopg.AsyncConnection[Any]) -> None:
    """After the upgrade all 22 functions are LANGUAGE sql (no plpgsql loops), and STABLE."""
    await _upgrade(v1)
    assert await _languages(v1) == dict.fromkeys(V1_FUNCTIONS, "sql")
    cur = await v1.execute(
        "SELECT count(*) FROM pg_proc WHERE pronamespace = 'hrwsi'::regnamespace"
        " AND proname = ANY(%s) AND provolatile = 's'",
        (list(V1_FUNCTIONS),),
    )
    assert await cur.fetchone() == (22,)


async def test_upgraded_database_keeps_named_notation(v1: psycopg.AsyncConnection[Any]) -> None:
    """Operators' calls with v1 parameter names (path => ...) still work after the upgrade."""
    await _upgrade(v1)
    cur = await v1.execute(
        "SELECT id FROM hrwsi.get_input_by_input_path(path => '/products/L2A/B')"
        " UNION ALL SELECT hrwsi.get_number_of_error_statuses_by_processing_task("
        "processing_task_id => 3)"
    )
    assert await cur.fetchall() == [(9,), (2,)]


async def _next_notify(listener: psycopg.AsyncConnection[Any]) -> psycopg.Notify:
    async for notify in listener.notifies():
        return notify
    raise AssertionError("notifies() ended")


async def test_v1_triggers_still_fire_after_upgrade(
    v1: psycopg.AsyncConnection[Any], empty_db_url: str
) -> None:
    """input_insertion and processing_tasks_state_processed still notify after the upgrade."""
    await _upgrade(v1)
    listener = await psycopg.AsyncConnection.connect(empty_db_url, autocommit=True)
    async with listener:
        await listener.execute("LISTEN input_insertion")
        await listener.execute("LISTEN processing_tasks_state_processed")
        await v1.execute(
            "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
            " input_path, mission) VALUES ('FSC_PC', '2024-02-01', '31TCH', 20240201,"
            " '/products/L2A/new', 'S2')"
        )
        notify = await asyncio.wait_for(_next_notify(listener), 1)
        assert (notify.channel, notify.payload) == ("input_insertion", "FSC_PC")
        # A "started" row (status 1) says nothing; the "processed" row (2) names its id.
        await v1.execute(
            "INSERT INTO hrwsi.processing_status_workflow"
            " (nomad_job_dispatch_fk_id, processing_status_id, date) VALUES (11, 1, now())"
        )
        cur = await v1.execute(
            "INSERT INTO hrwsi.processing_status_workflow"
            " (nomad_job_dispatch_fk_id, processing_status_id, date) VALUES (11, 2, now())"
            " RETURNING id"
        )
        processed = await cur.fetchone()
        assert processed is not None
        notify = await asyncio.wait_for(_next_notify(listener), 1)
        assert (notify.channel, notify.payload) == (
            "processing_tasks_state_processed",
            str(processed[0]),
        )


async def test_duplicate_inputs_stop_the_upgrade_and_change_nothing(
    v1: psycopg.AsyncConnection[Any],
) -> None:
    """A v1 database holding a (condition, path) twice is refused, with nothing changed."""
    await v1.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) SELECT processing_condition_name, date, tile, measurement_day,"
        " input_path, mission FROM hrwsi.input WHERE id = 7"
    )
    rows_before = await _rows(v1)
    results_before = await _results(v1)

    with pytest.raises(errors.MigrationError) as failure:
        await migrate.migrate(v1)

    message = str(failure.value)
    assert "(processing_condition_name, input_path)" in message
    assert "('MAJA_PC', '/eodata/S2/L1C/D.SAFE')" in message  # names an offending pair
    assert message.count("nothing was changed") == 1
    assert await _rows(v1) == rows_before
    assert await _results(v1) == results_before
    assert set((await _languages(v1)).values()) == {"plpgsql"}
    cur = await v1.execute(
        "SELECT to_regclass('hrwsi.schema_migrations'), count(*) FROM information_schema.columns"
        " WHERE table_schema = 'hrwsi' AND column_name IN ('inserted_at', 'created_at')"
    )
    assert await cur.fetchone() == (None, 0)


# The schema as the catalog sees it: tables, columns, constraints, indexes, functions,
# triggers, composite types and sequences of schema hrwsi.
SCHEMA_QUERIES = {
    "columns": "SELECT table_name, ordinal_position, column_name, data_type, is_nullable,"
    " column_default FROM information_schema.columns WHERE table_schema = 'hrwsi'",
    "constraints": "SELECT conrelid::regclass::text, conname, contype,"
    " pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'hrwsi'::regnamespace",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'hrwsi'",
    "functions": "SELECT p.proname, pg_get_function_arguments(p.oid),"
    " pg_get_function_result(p.oid), l.lanname, p.provolatile, p.prosrc FROM pg_proc p"
    " JOIN pg_language l ON l.oid = p.prolang WHERE p.pronamespace = 'hrwsi'::regnamespace",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger"
    " WHERE NOT tgisinternal AND tgrelid IN"
    " (SELECT oid FROM pg_class WHERE relnamespace = 'hrwsi'::regnamespace)",
    "types": "SELECT t.typname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)"
    " FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid JOIN pg_attribute a"
    " ON a.attrelid = c.oid WHERE t.typnamespace = 'hrwsi'::regnamespace AND c.relkind = 'c'",
    "sequences": "SELECT sequence_name, data_type FROM information_schema.sequences"
    " WHERE sequence_schema = 'hrwsi'",
}


async def schema_of(conn: psycopg.AsyncConnection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every schema object of hrwsi, as sorted catalog rows."""
    found = {}
    for kind, query in SCHEMA_QUERIES.items():
        cur = await conn.execute(query.encode())
        found[kind] = _multiset(await cur.fetchall())
    return found


@pytest.fixture
def fresh_url(pg_admin_url: str) -> Iterator[str]:
    """A second empty database, for a fresh install next to the upgraded one."""
    name = databases.unique_name("hrwsi_fresh")
    url = databases.create_database(pg_admin_url, name)
    yield url
    databases.drop_database(pg_admin_url, name)


async def test_upgraded_v1_schema_equals_fresh_install(
    v1: psycopg.AsyncConnection[Any], fresh_url: str
) -> None:
    """A migrated v1 database has exactly the schema of a fresh install."""
    await _upgrade(v1)
    async with await psycopg.AsyncConnection.connect(fresh_url, autocommit=True) as fresh:
        await _upgrade(fresh)
        expected = await schema_of(fresh)
    upgraded = await schema_of(v1)
    for kind in SCHEMA_QUERIES:
        missing = [row for row in expected[kind] if row not in upgraded[kind]]
        extra = [row for row in upgraded[kind] if row not in expected[kind]]
        assert (missing, extra) == ([], []), f"{kind} differ"
    assert len(expected["functions"]) >= 24
