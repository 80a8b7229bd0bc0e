"""EXPLAIN guards: the hot access paths use indexes, and every foreign key has one.

One database per module is filled with generate_series (50k inputs with their input_meta
rows, 50k tasks with their task_state rows, 100k dispatches and status rows, 20k products and
indexation rows), analysed, then each hot query is planned with a literal argument. The v1
functions are planned through their bodies (PREPARE of the function's SQL with its argument
types, EXECUTE with a value), so a scalar function that PostgreSQL does not inline is checked
too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from hrwsi.db import queries
from hrwsi.testing import databases

BIG_TABLES = {
    "input",
    "input_meta",
    "task_state",
    "processing_tasks",
    "nomad_job_dispatch",
    "processing_status_workflow",
    "products",
    "indexation_json",
    "indexation_workflow",
}

FILL = """
INSERT INTO hrwsi.virtual_machine (id, name, flavour)
SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'vm-' || g,
       CASE WHEN g % 2 = 0 THEN 'MAJA' ELSE 'FSC' END
FROM generate_series(1, 600) AS g;

INSERT INTO hrwsi.input (id, processing_condition_name, date, tile, measurement_day, input_path,
                         mission)
SELECT g, CASE WHEN g % 2 = 0 THEN 'MAJA_PC' ELSE 'FSC_PC' END,
       timestamp '2024-01-01' + g * interval '1 minute', '31T' || chr(65 + g % 26) || 'H',
       20240101 + g % 300, '/eodata/p/' || g, CASE WHEN g % 50 = 0 THEN 'S1' ELSE 'S2' END
FROM generate_series(1, 50000) AS g;

INSERT INTO hrwsi.input_meta (input_id, catalogue_id, product_name, publication_date,
                              inserted_at)
SELECT g, md5(g::text), 'p' || g, timestamptz '2024-01-01' + g * interval '1 minute',
       timestamptz '2024-01-01' + g * interval '1 minute'
FROM generate_series(1, 50000) AS g;

INSERT INTO hrwsi.vm_plan (virtual_machine_id, pooled, pooled_name)
SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, g <= 20,
       CASE WHEN g <= 20 THEN 'vm-' || g END
FROM generate_series(1, 600) AS g;

INSERT INTO hrwsi.processing_tasks (id, input_fk_id, virtual_machine_id, creation_date,
                                    preceding_input_id, has_ended)
SELECT g, g, ('00000000-0000-0000-0000-' || lpad((g % 600 + 1)::text, 12, '0'))::uuid,
       timestamp '2024-01-01' + g * interval '1 minute',
       CASE WHEN g > 600 THEN g - 600 END, g <= 49900
FROM generate_series(1, 50000) AS g;

-- Every task has its plan; 1 in 10 of the live ones waits for a retry.
INSERT INTO hrwsi.task_state (processing_task_id, created_at, planned_start_min, planned_end_min,
                              next_attempt_at)
SELECT g, timestamptz '2024-01-01' + g * interval '1 minute', 0, 20,
       CASE WHEN g > 49900 AND g % 10 = 0 THEN now() + interval '1 hour' END
FROM generate_series(1, 50000) AS g;

INSERT INTO hrwsi.nomad_job_dispatch (id, processing_task_fk_id, nomad_job_dispatch,
                                      dispatch_date)
SELECT g, (g + 1) / 2, 'dispatch-' || g, timestamp '2024-01-01' + g * interval '30 seconds'
FROM generate_series(1, 100000) AS g;

INSERT INTO hrwsi.processing_status_workflow (id, nomad_job_dispatch_fk_id,
                                              processing_status_id, date)
SELECT g, g, CASE WHEN g % 2 = 0 THEN 2 ELSE 4 END,
       timestamp '2024-01-01' + g * interval '30 seconds'
FROM generate_series(1, 100000) AS g;

INSERT INTO hrwsi.products (id, input_fk_id, product_path, creation_date, catalogued_date,
                            product_type_id)
SELECT g, g * 2, '/products/' || g, timestamp '2024-02-01', timestamp '2024-02-01', 1
FROM generate_series(1, 20000) AS g;

INSERT INTO hrwsi.indexation_json (id, product_fk_id, indexation_file_type_id, path)
SELECT g, g, 1, '/index/' || g FROM generate_series(1, 20000) AS g;

INSERT INTO hrwsi.indexation_workflow (id, product_fk_id, publication_date, indexation_date)
SELECT g, g, timestamp '2024-02-02', timestamp '2024-02-03' FROM generate_series(1, 20000) AS g;
"""


@pytest.fixture(scope="module")
def big(pg_admin_url: str, template_database: str) -> Iterator[psycopg.Connection[Any]]:
    """A migrated database filled with large-ish tables, analysed, for the whole module."""
    name = databases.unique_name("hrwsi_explain")
    url = databases.create_database(pg_admin_url, name, template=template_database)
    try:
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            with conn.transaction():
                # The rows are consistent by construction: skip the per-row FK checks and
                # notification triggers, which would make the fill several times slower.
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute(FILL.encode())
            conn.execute("ANALYZE")
            conn.execute("SET plan_cache_mode = force_custom_plan")
            yield conn
    finally:
        databases.drop_database(pg_admin_url, name)


def scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every node of a JSON plan."""
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found.extend(scans(child))
    return found


def plan_of(conn: psycopg.Connection[Any], statement: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {statement}".encode(), params).fetchone()
    assert row is not None
    return row[0][0]["Plan"]


def function_body_plan(conn: psycopg.Connection[Any], function: str, args: tuple[Any, ...]) -> Any:
    """The plan of a hrwsi function's SQL body for these arguments."""
    row = conn.execute(
        "SELECT prosrc, array(SELECT format_type(t, NULL) FROM unnest(proargtypes) AS t)"
        " FROM pg_proc WHERE pronamespace = 'hrwsi'::regnamespace AND proname = %s",
        (function,),
    ).fetchone()
    assert row is not None, function
    body, types = row
    signature = f"({', '.join(types)})" if types else ""
    name = f"body_{function}"
    conn.execute(f"PREPARE {name}{signature} AS {body}".encode())
    try:
        # EXPLAIN cannot take bind parameters: the values go in as literals.
        values = sql.SQL(", ").join(sql.Literal(a) for a in args)
        execute = sql.SQL("EXECUTE {}({})" if args else "EXECUTE {}").format(
            sql.Identifier(name), values
        )
        return plan_of(conn, execute.as_string(conn))
    finally:
        conn.execute(f"DEALLOCATE {name}".encode())


def seq_scans_on_big_tables(plan: Any) -> list[str]:
    return [rel for node, rel in scans(plan) if node == "Seq Scan" and rel in BIG_TABLES]


VM = "00000000-0000-0000-0000-000000000007"
HOT_FUNCTIONS = [
    ("get_input_by_input_path", ("/eodata/p/4242",)),
    ("get_input_by_measurement_day", (20240142,)),
    ("get_input_by_mission", ("S1",)),
    ("get_number_of_error_statuses_by_processing_task", (4242,)),
    ("is_processing_task_processed", (4242,)),
    ("get_processing_tasks_not_finished", ()),
    ("get_status_history_by_processing_task_id", (4242,)),
    ("get_nomad_job_dispatch_list_by_processing_task_id", (4242,)),
    ("get_current_nomad_job_dispatch_by_processing_task_id", (4242,)),
    ("are_all_processing_tasks_in_vm_processed", (VM,)),
    ("get_preceding_processing_task", (4242,)),
    ("is_preceding_processing_task_processed", (4242,)),
    ("is_one_processing_task_processed_for_an_input", (4242,)),
    ("are_all_processing_tasks_ended_for_an_input", (4242,)),
    ("get_product_data_type_of_processing_tasks_not_ended", ()),
    ("get_id_of_unprocessed_inputs_with_all_pt_ended", ("2024-02-04",)),
    ("is_product_indexed", (4242,)),
    ("is_product_indexation_currently_failed", (4242,)),
    ("get_indexation_file_path_by_type_name_by_product_id", ("INSPIRE", 4242)),
]


def test_fill_is_large_enough(big: psycopg.Connection[Any]) -> None:
    """The planner sees big tables, so an index is the only way to avoid a Seq Scan."""
    row = big.execute(
        "SELECT relname, reltuples FROM pg_class WHERE relnamespace = 'hrwsi'::regnamespace"
        " AND relname IN ('input', 'nomad_job_dispatch')"
    ).fetchall()
    assert {name: tuples >= 50_000 for name, tuples in row} == {
        "input": True,
        "nomad_job_dispatch": True,
    }
    # A query that must read the whole table does show up as a Seq Scan: the check can fail.
    plan = plan_of(big, "SELECT count(*) FROM hrwsi.input WHERE tile LIKE '%%H'")
    assert seq_scans_on_big_tables(plan) == ["input"]


@pytest.mark.parametrize(("function", "args"), HOT_FUNCTIONS, ids=[f for f, _ in HOT_FUNCTIONS])
def test_hot_function_uses_indexes(
    big: psycopg.Connection[Any], function: str, args: tuple[Any, ...]
) -> None:
    """The function's body reads the big tables through indexes only."""
    assert seq_scans_on_big_tables(function_body_plan(big, function, args)) == []


def test_inlined_input_lookup_uses_the_index(big: psycopg.Connection[Any]) -> None:
    """Called the way operators call it, get_input_by_input_path is an index lookup."""
    plan = plan_of(big, "SELECT * FROM hrwsi.get_input_by_input_path('/eodata/p/4242')")
    assert seq_scans_on_big_tables(plan) == []
    assert "Function Scan" not in {node for node, _ in scans(plan)}  # inlined


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM hrwsi.processing_tasks WHERE input_fk_id = 4242",
        "SELECT * FROM hrwsi.nomad_job_dispatch WHERE processing_task_fk_id = 4242",
        "SELECT * FROM hrwsi.processing_status_workflow WHERE nomad_job_dispatch_fk_id = 4242",
        "SELECT * FROM hrwsi.products WHERE input_fk_id = 4242",
        "SELECT * FROM hrwsi.input WHERE processing_condition_name = 'MAJA_PC'"
        " AND input_path = '/eodata/p/4242'",
    ],
)
def test_hot_lookup_uses_an_index(big: psycopg.Connection[Any], statement: str) -> None:
    """Tasks by input, dispatches by task, statuses by dispatch, products by input."""
    assert seq_scans_on_big_tables(plan_of(big, statement)) == []


UNINDEXED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname
FROM pg_constraint AS c
WHERE c.contype = 'f' AND c.connamespace = 'hrwsi'::regnamespace
  AND NOT EXISTS (
      SELECT 1 FROM pg_index AS i
      WHERE i.indrelid = c.conrelid
        AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)]
            @> c.conkey
        AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)]
            <@ c.conkey
  )
ORDER BY 1, 2
"""


async def test_every_foreign_key_has_a_leading_index(conn: psycopg.AsyncConnection[Any]) -> None:
    """No foreign key of schema hrwsi lacks an index whose leading columns are its columns."""
    cur = await conn.execute(UNINDEXED_FOREIGN_KEYS)
    assert await cur.fetchall() == []
    cur = await conn.execute(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
        " AND connamespace = 'hrwsi'::regnamespace"
    )
    row = await cur.fetchone()
    assert row is not None and row[0] >= 13  # the v1 foreign keys at least


async def test_foreign_key_check_detects_a_missing_index(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    """Dropping one FK index makes the generic check name that foreign key."""
    await conn.execute("DROP INDEX hrwsi.products_input_idx")
    cur = await conn.execute(UNINDEXED_FOREIGN_KEYS)
    assert await cur.fetchall() == [("hrwsi.products", "products_input_fk_id_fkey")]


# The services' hot queries (named, from the .sql files) that read our side tables.
HOT_QUERIES = [
    ("launcher_claim_ready", {"limit": 100}),
    ("launcher_next_retry", {}),
    ("launcher_lock_dispatches", {"keys": ["dispatch-99999", "dispatch-100000"]}),
    ("orchestrator_retry_lock_task", {"task_id": 4242}),
    ("orchestrator_pool_workers", {"names": ["vm-1", "vm-2"]}),
]


@pytest.mark.parametrize(("name", "params"), HOT_QUERIES, ids=[n for n, _ in HOT_QUERIES])
def test_hot_query_uses_indexes(
    big: psycopg.Connection[Any], name: str, params: dict[str, Any]
) -> None:
    """The query reads the big tables, input_meta and task_state included, through indexes."""
    # EXPLAIN takes no bind parameters: bind them client-side.
    statement = psycopg.ClientCursor(big).mogrify(queries.get(name), params)
    assert seq_scans_on_big_tables(plan_of(big, statement.replace("%", "%%"))) == []


def test_next_retry_reads_the_partial_index(big: psycopg.Connection[Any]) -> None:
    """The launcher's next wake-up is a range read of task_state_next_attempt_idx."""
    plan = plan_of(big, queries.get("launcher_next_retry"))
    assert "task_state_next_attempt_idx" in str(plan)
