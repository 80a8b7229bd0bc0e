"""``metrics_chain_summary`` without the fan-out join gives the rows the fan-out join gave."""

from __future__ import annotations

import psycopg

from hrwsi.db import metrics, queries

OLD_CHAIN_SUMMARY = queries.get("metrics_bench_chain_summary_fan_out")  # the reference

VM = "00000000-0000-0000-0000-0000000000b1"  # the bench fill's machine


async def _old_rows(conn: psycopg.AsyncConnection) -> list[metrics.ConditionSummary]:
    cur = await conn.execute(OLD_CHAIN_SUMMARY)
    return [metrics.ConditionSummary(r[0], *(int(v) for v in r[1:])) for r in await cur.fetchall()]


async def _one(conn: psycopg.AsyncConnection, sql: str, params: tuple[object, ...]) -> int:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _input(conn: psycopg.AsyncConnection, condition: str, path: str) -> int:
    return await _one(
        conn,
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) VALUES (%s, now(), '31TCH', 20240102, %s, 'S2') RETURNING id",
        (condition, path),
    )


async def _task(conn: psycopg.AsyncConnection, input_id: int, has_ended: bool | None) -> int:
    return await _one(
        conn,
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
        " has_ended) VALUES (%s, %s, now(), %s) RETURNING id",
        (input_id, VM, has_ended),
    )


async def _attempt(conn: psycopg.AsyncConnection, task_id: int, *statuses: int) -> int:
    """A dispatch of the task with these status rows, in order."""
    cur = await conn.execute(
        "SELECT count(*) FROM hrwsi.nomad_job_dispatch WHERE processing_task_fk_id = %s",
        (task_id,),
    )
    row = await cur.fetchone()
    assert row is not None
    dispatch = await _one(
        conn,
        "INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch,"
        " dispatch_date) VALUES (%s, %s, now()) RETURNING id",
        (task_id, f"task-{task_id}-attempt-{row[0] + 1}"),
    )
    for status in statuses:
        await conn.execute(
            "INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id,"
            " processing_status_id, date) VALUES (%s, %s, now())",
            (dispatch, status),
        )
    return dispatch


async def _product(conn: psycopg.AsyncConnection, input_id: int, type_id: int) -> None:
    await conn.execute(
        "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date,"
        " catalogued_date, product_type_id) VALUES (%s, %s, now(), now(), %s)",
        (input_id, f"/hand/products/{input_id}/{type_id}", type_id),
    )


async def _bench_history(conn: psycopg.AsyncConnection, inputs: int) -> None:
    """The benchmark's set-based history (MAJA_PC and FSC_PC), at test size."""
    await conn.execute(queries.get("metrics_bench_fill_vm"))
    await conn.execute(queries.get("metrics_bench_fill_inputs"), {"count": inputs})
    for name in (
        "metrics_bench_fill_tasks",
        "metrics_bench_fill_dispatches",
        "metrics_bench_fill_statuses",
        "metrics_bench_fill_products",
        "metrics_bench_analyze",
    ):
        await conn.execute(queries.get(name))


async def _hand_history(conn: psycopg.AsyncConnection) -> None:
    """HAND_PC: five inputs whose figures are worked out by hand in the test; IDLE_PC: three
    inputs and nothing else; EMPTY_PC: no input at all."""
    await conn.execute(
        "INSERT INTO hrwsi.processing_condition (name, processing_routine_name)"
        " VALUES ('HAND_PC', 'MAJA'), ('IDLE_PC', 'FSC'), ('EMPTY_PC', 'FSC')"
    )
    # h1: no task, no product.
    await _input(conn, "HAND_PC", "/hand/1")
    # h2: one ended task, three attempts (internal error, external error, processed); two
    # products.
    h2 = await _input(conn, "HAND_PC", "/hand/2")
    t2 = await _task(conn, h2, True)
    await _attempt(conn, t2, 1, 3)
    await _attempt(conn, t2, 1, 4)
    await _attempt(conn, t2, 1, 2)
    await _product(conn, h2, 1)
    await _product(conn, h2, 2)
    # h3: a task failed for good (two attempts, the second with BOTH a 3 and a 4 row), then a
    # live task re-planned for it, running; no product.
    h3 = await _input(conn, "HAND_PC", "/hand/3")
    t3 = await _task(conn, h3, True)
    await _attempt(conn, t3, 1, 3)
    await _attempt(conn, t3, 1, 3, 4)
    t3b = await _task(conn, h3, False)
    await _attempt(conn, t3b, 1)
    # h4: a task never dispatched, has_ended NULL as HR-WSI v1 wrote it (not "ended").
    h4 = await _input(conn, "HAND_PC", "/hand/4")
    await _task(conn, h4, None)
    # h5: one ended task, processed at the first attempt; one product.
    h5 = await _input(conn, "HAND_PC", "/hand/5")
    t5 = await _task(conn, h5, True)
    await _attempt(conn, t5, 1, 2)
    await _product(conn, h5, 1)
    for n in range(3):
        await _input(conn, "IDLE_PC", f"/idle/{n}")


async def test_chain_summary_equals_the_fan_out_query(conn: psycopg.AsyncConnection) -> None:
    """On a varied history (bench fill plus hand-made edge cases) the rewritten query returns
    exactly the old fan-out query's rows, and the hand-worked figures."""
    await _bench_history(conn, 600)
    await _hand_history(conn)

    new = await metrics.chain_summary(conn)

    assert new == await _old_rows(conn)
    by_condition = {s.condition: s for s in new}
    assert [s.condition for s in new] == ["FSC_PC", "HAND_PC", "IDLE_PC", "MAJA_PC"]
    # tasks: t2, t3, t3b, h4's, t5 (ended: t2, t3, t5); attempts: 3 + 2 + 1 + 0 + 1;
    # failed status rows: h2 3 and 4, h3 3 then 3 and 4; with a product: h2 and h5.
    assert by_condition["HAND_PC"] == metrics.ConditionSummary(
        condition="HAND_PC",
        inputs=5,
        tasks=5,
        attempts=7,
        failed_attempts=5,
        inputs_with_product=2,
        tasks_ended=3,
    )
    assert by_condition["IDLE_PC"] == metrics.ConditionSummary("IDLE_PC", 3, 0, 0, 0, 0, 0)
    # The bench fill is varied too: every column moves, none equals another.
    for name in ("MAJA_PC", "FSC_PC"):
        s = by_condition[name]
        assert s.inputs == 300
        assert 0 < s.inputs_with_product < s.inputs
        assert 0 < s.tasks_ended < s.tasks < s.attempts
        assert 0 < s.failed_attempts < s.attempts


async def test_chain_summary_of_an_empty_database(conn: psycopg.AsyncConnection) -> None:
    """No inputs: no rows, as before (conditions without inputs are not listed)."""
    assert await metrics.chain_summary(conn) == []
    assert await _old_rows(conn) == []
