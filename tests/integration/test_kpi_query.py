"""hrwsi kpi on real PostgreSQL: stage timestamps per product, percentiles, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hrwsi.cli import kpi as kpi_cli
from hrwsi.domain import kpi

SENSING = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


async def make_product(
    conn,
    n: int,
    *,
    condition: str = "MAJA_PC",
    publication_min: float | None = 30,
    minutes: tuple[float, float, float, float] = (35, 36, 37, 50),
    processed_ok: bool = True,
) -> int:
    """An input sensed at SENSING with its task, one dispatch, a status and a product, the
    events `minutes` after sensing (harvest, planned, dispatched, product)."""
    harvest, planned, dispatched, made = (SENSING + timedelta(minutes=m) for m in minutes)
    publication = None if publication_min is None else SENSING + timedelta(minutes=publication_min)
    cur = await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission)"
        " VALUES (%s, %s AT TIME ZONE 'UTC', '31TCH', 20260304, %s, 'S2') RETURNING id",
        (condition, SENSING, f"/in/{n}"),
    )
    input_id = (await cur.fetchone())[0]
    await conn.execute(
        "INSERT INTO hrwsi.input_meta (input_id, publication_date, inserted_at)"
        " VALUES (%s, %s, %s)",
        (input_id, publication, harvest),
    )
    cur = await conn.execute(
        "WITH vm AS (INSERT INTO hrwsi.virtual_machine (id, name, flavour)"
        "            VALUES (gen_random_uuid(), 'vm', 'MAJA') RETURNING id)"
        " INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
        " has_ended) SELECT %s, vm.id, %s AT TIME ZONE 'UTC', true FROM vm RETURNING id",
        (input_id, planned),
    )
    task_id = (await cur.fetchone())[0]
    await conn.execute(
        "WITH d AS (INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id,"
        "           nomad_job_dispatch, dispatch_date)"
        "           VALUES (%s, 'task-' || %s || '-attempt-1', %s AT TIME ZONE 'UTC') RETURNING id)"
        " INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id,"
        " processing_status_id, date) SELECT id, %s, now() FROM d",
        (task_id, task_id, dispatched, 2 if processed_ok else 3),
    )
    cur = await conn.execute(
        "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date, catalogued_date,"
        " product_type_id) SELECT %s, %s, %s AT TIME ZONE 'UTC', now(), id"
        " FROM hrwsi.product_type WHERE code = 'S2_MAJA_L2A' RETURNING id",
        (input_id, f"/p/{n}", made),
    )
    return int((await cur.fetchone())[0])


async def test_stage_times_of_a_product(db_url, conn):
    """The query returns the product's event times, each stage measured between them."""
    pid = await make_product(conn, 1)
    rows = await kpi_cli.stage_rows(db_url, since=SENSING, condition=None)
    assert [r.product_id for r in rows] == [pid]
    row = rows[0]
    assert (row.condition, row.timeliness_class, row.product_path) == ("MAJA_PC", "archive", "/p/1")
    stages = row.stages()
    expected = {"publication": 30, "harvest": 5, "planned": 1, "dispatched": 1, "processed": 13}
    assert {k: stages[k] for k in expected} == {
        k: timedelta(minutes=v) for k, v in expected.items()
    }
    assert stages["total"] == timedelta(minutes=50)


async def test_filters_by_time_and_condition(db_url, conn):
    """--since keeps products made since then; --condition keeps one condition."""
    await make_product(conn, 1)
    late_one = await make_product(conn, 2, minutes=(35, 36, 37, 500))
    fsc = await make_product(conn, 3, condition="FSC_PC", publication_min=None)
    since = SENSING + timedelta(minutes=100)
    assert [
        r.product_id for r in await kpi_cli.stage_rows(db_url, since=since, condition=None)
    ] == [late_one]
    only_fsc = await kpi_cli.stage_rows(db_url, since=SENSING, condition="FSC_PC")
    assert [r.product_id for r in only_fsc] == [fsc]
    assert only_fsc[0].publication is None
    assert only_fsc[0].stages()["harvest"] == timedelta(minutes=35)


async def test_percentiles_agree_with_percentile_cont(db_url, conn):
    """The Python figures equal PostgreSQL's percentile_cont over the same product times."""
    for n, made in enumerate((40, 45, 52, 70, 90, 200, 51), start=1):
        await make_product(conn, n, minutes=(35, 36, 37, made))
    rows = await kpi_cli.stage_rows(db_url, since=SENSING, condition=None)
    group = kpi.summarise(rows)[0]
    sql = await (
        await conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch"
            " FROM (p.creation_date - i.date)))"
            " FROM hrwsi.products AS p JOIN hrwsi.input AS i ON i.id = p.input_fk_id"
        )
    ).fetchone()
    total = group.figures["total"]
    assert [total.p50_s, total.p90_s, total.p99_s] == pytest.approx(sql[0])
    assert total.count == 7


async def test_report_prefers_the_processed_task_and_lists_no_late_archive(db_url, conn):
    """An input's processed task gives its times; archive products are never listed late."""
    pid = await make_product(conn, 1, minutes=(35, 36, 37, 900))
    # A later task of the same input that failed does not replace the processed one.
    await conn.execute(
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
        " has_ended) SELECT p.input_fk_id, pt.virtual_machine_id, now(), true"
        " FROM hrwsi.products AS p JOIN hrwsi.processing_tasks AS pt"
        " ON pt.input_fk_id = p.input_fk_id WHERE p.id = %s",
        (pid,),
    )
    rows = await kpi_cli.stage_rows(db_url, since=SENSING, condition=None)
    assert rows[0].planned == SENSING + timedelta(minutes=36)
    data = kpi_cli.report(rows, kpi.Targets(timedelta(minutes=60)), since=SENSING, condition=None)
    assert data["late"] == []
    assert data["groups"][0]["stages"]["total"]["p50_s"] == 900 * 60


def test_parse_since():
    """Durations and ISO days/times are understood; anything else is refused."""
    now = datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert kpi_cli.parse_since("24h", now=now) == now - timedelta(hours=24)
    assert kpi_cli.parse_since("7d", now=now) == now - timedelta(days=7)
    assert kpi_cli.parse_since("2026-03-01", now=now) == datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither"):
        kpi_cli.parse_since("yesterday", now=now)
