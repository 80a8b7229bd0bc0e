"""Triggering rules end to end through the orchestrator, on real PostgreSQL.

The HR-WSI chain file is seeded, inputs are written by hand (as the harvester would: an
``input`` row and its ``input_meta``), passes run with a fixed clock, and the tables say
what happened: tasks, their inputs and params, rule instances, the backlog, the watermark.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from hrwsi import rules_config
from hrwsi.config import Config
from hrwsi.db import seed
from hrwsi.services import rules_step
from hrwsi.services.orchestrator import OrchestratorService

DAY = date(2024, 6, 4)
NOW = datetime(2024, 6, 4, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def chain_config(**rule_changes: Any) -> Config:
    cfg = rules_config.load_chain().apply()
    if rule_changes:
        rules = tuple(r.model_copy(update=rule_changes.get(r.condition, {})) for r in cfg.rules)
        cfg = cfg.model_copy(update={"rules": rules})
    return cfg


def service(db_url: str, cfg: Config, clock: Clock) -> OrchestratorService:
    step = rules_step.from_config(cfg)
    step._clock = clock
    return OrchestratorService(cfg, db_url, rules=step)


async def seeded(conn: psycopg.AsyncConnection, cfg: Config) -> None:
    await seed.seed(conn, cfg)


async def add_input(
    conn: psycopg.AsyncConnection,
    condition: str,
    name: str,
    *,
    tile: str = "32TLR",
    day: date = DAY,
    sensed: datetime | None = None,
    type_code: str | None = None,
    harvested: datetime | None = None,
) -> int:
    """An input row (+ input_meta; a source product row when ``type_code`` is given)."""
    sensed = sensed or datetime.combine(day, datetime.min.time()) + timedelta(hours=10)
    cur = await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) VALUES (%s, %s, %s, %s, %s, 'S2') RETURNING id",
        (condition, sensed.replace(tzinfo=None), tile, int(day.strftime("%Y%m%d")), "/d/" + name),
    )
    row = await cur.fetchone()
    assert row is not None
    input_id = int(row[0])
    product_id = None
    if type_code is not None:
        cur = await conn.execute(
            "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date,"
            " catalogued_date, product_type_id)"
            " SELECT %s, %s, now(), now(), id FROM hrwsi.product_type WHERE code = %s"
            " RETURNING id",
            (input_id, f"/p/{condition}/{name}", type_code),
        )
        prow = await cur.fetchone()
        assert prow is not None
        product_id = int(prow[0])
        await conn.execute("DELETE FROM hrwsi.harvester_product_queue")
    await conn.execute(
        "INSERT INTO hrwsi.input_meta (input_id, product_name, source_product_id, inserted_at)"
        " VALUES (%s, %s, %s, %s)",
        (input_id, name, product_id, harvested or NOW),
    )
    return input_id


async def rule_tasks(conn: psycopg.AsyncConnection, rule: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT ri.key, pt.id, pt.input_fk_id, pt.has_ended,"
        " (SELECT array_agg(ti.input_id ORDER BY ti.input_id) FROM hrwsi.task_input ti"
        "   WHERE ti.processing_task_id = pt.id),"
        " (SELECT json_object_agg(ti.input_id, ti.role) FROM hrwsi.task_input ti"
        "   WHERE ti.processing_task_id = pt.id),"
        " coalesce((SELECT params FROM hrwsi.task_params tp WHERE tp.processing_task_id = pt.id),"
        "   '{}')"
        " FROM hrwsi.rule_instance ri JOIN hrwsi.processing_tasks pt"
        "   ON pt.id = ri.processing_task_id WHERE ri.rule = %s ORDER BY pt.id",
        (rule,),
    )
    return [
        {
            "key": r[0],
            "task": r[1],
            "primary": r[2],
            "ended": r[3],
            "inputs": list(r[4] or []),
            "roles": {int(k): v for k, v in (r[5] or {}).items()},
            "params": r[6],
        }
        for r in await cur.fetchall()
    ]


async def backlog(conn: psycopg.AsyncConnection) -> set[int]:
    cur = await conn.execute("SELECT input_id FROM hrwsi.orchestrator_backlog")
    return {int(r[0]) for r in await cur.fetchall()}


async def end_task(conn: psycopg.AsyncConnection, task_id: int, status: int = 2) -> None:
    await conn.execute(
        "WITH d AS (INSERT INTO hrwsi.nomad_job_dispatch"
        "   (processing_task_fk_id, nomad_job_dispatch, dispatch_date)"
        "   VALUES (%s, 'job/' || %s, now()) RETURNING id)"
        " INSERT INTO hrwsi.processing_status_workflow"
        "   (nomad_job_dispatch_fk_id, processing_status_id, date, message)"
        " SELECT id, %s, now(), 'test' FROM d",
        (task_id, task_id, status),
    )
    await conn.execute(
        "UPDATE hrwsi.processing_tasks SET has_ended = true WHERE id = %s", (task_id,)
    )


async def run_pass(db_url: str, cfg: Config, clock: Clock) -> None:
    orchestrator = service(db_url, cfg, clock)
    try:
        await orchestrator.reconcile()
    finally:
        await orchestrator.aclose()


def l1c(n: int, tile: str = "32TLR", day: date = DAY) -> str:
    return f"S2A_MSIL1C_{day:%Y%m%d}T10{n:02d}00_N0510_R065_T{tile}_{day:%Y%m%d}T120000.SAFE"


def grd(start: str, stop: str, orbit: int = 54172) -> str:
    return f"S1A_IW_GRDH_1SDV_{start}_{stop}_{orbit:06d}_069690_E33E.SAFE"


# serial_per_tile -------------------------------------------------------------------------


async def test_serial_one_live_task_per_tile_oldest_first_then_nominal(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    cfg = chain_config()
    await seeded(conn, cfg)
    clock = Clock(NOW)
    # Out of order: the newer L1C is harvested first.
    newer = await add_input(conn, "CC_TC", l1c(2), day=DAY, sensed=datetime(2024, 6, 4, 10, 2))
    older = await add_input(conn, "CC_TC", l1c(1), day=DAY - timedelta(days=1))
    await run_pass(db_url, cfg, clock)
    tasks = await rule_tasks(conn, "CC_TC")
    assert [t["primary"] for t in tasks] == [older]
    assert tasks[0]["params"] == {"mode": "L2INIT"} and tasks[0]["roles"] == {older: "l1c"}
    assert newer in await backlog(conn)  # queued behind the live task of its tile
    await run_pass(db_url, cfg, clock)  # re-evaluation: still one task
    assert len(await rule_tasks(conn, "CC_TC")) == 1
    # The task ends and its L2A becomes an input of CC_TC: the next one runs nominal.
    await end_task(conn, tasks[0]["task"])
    l2a = await add_input(
        conn, "CC_TC", "L2A_T32TLR_1", day=DAY - timedelta(days=1), type_code="S2_MAJA_L2A"
    )
    await run_pass(db_url, cfg, clock)
    tasks = await rule_tasks(conn, "CC_TC")
    assert [t["primary"] for t in tasks] == [older, newer]
    assert tasks[1]["params"] == {"mode": "L2NOMINAL"}
    assert tasks[1]["roles"] == {newer: "l1c", l2a: "previous_l2a"}
    assert await backlog(conn) == set()


# pair_slices ------------------------------------------------------------------------------


async def test_pairs_touching_slices_one_task_orphan_after_deadline_late_partner_dropped(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    cfg = chain_config()
    await seeded(conn, cfg)
    clock = Clock(NOW)
    cond = "Backscatter_10m_TC"
    a = await add_input(conn, cond, grd("20240604T110100", "20240604T110125"))
    b = await add_input(conn, cond, grd("20240604T110126", "20240604T110151"))
    lone = await add_input(conn, cond, grd("20240604T113000", "20240604T113025"))
    await run_pass(db_url, cfg, clock)
    tasks = await rule_tasks(conn, cond)
    assert [t["inputs"] for t in tasks] == [[a, b]]
    assert lone in await backlog(conn)  # waits for a partner until its orphan deadline
    clock.now = NOW + timedelta(hours=2, minutes=1)
    await run_pass(db_url, cfg, clock)
    tasks = await rule_tasks(conn, cond)
    assert [t["inputs"] for t in tasks] == [[a, b], [lone]]
    # A partner touching the processed pair arrives late: dropped, never a second task.
    late = await add_input(conn, cond, grd("20240604T110152", "20240604T110200"))
    await run_pass(db_url, cfg, clock)
    assert len(await rule_tasks(conn, cond)) == 2
    cur = await conn.execute("SELECT rule FROM hrwsi.rule_skip WHERE input_id = %s", (late,))
    assert await cur.fetchone() == (cond,)
    assert await backlog(conn) == set()


# join_same_tile_day ------------------------------------------------------------------------


async def test_join_second_arrival_triggers_and_per_partner_pairs_late_partner(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    cfg = chain_config()
    await seeded(conn, cfg)
    clock = Clock(NOW)
    w1 = await add_input(conn, "WICS1S2_TC", "w1", type_code="S1_WICS1_L2B")
    await run_pass(db_url, cfg, clock)
    assert await rule_tasks(conn, "WICS1S2_TC") == []  # waits for a WICS2
    w2a = await add_input(conn, "WICS1S2_TC", "w2a", type_code="S2_WICS2_L2B")
    await run_pass(db_url, cfg, clock)
    tasks = await rule_tasks(conn, "WICS1S2_TC")
    assert [t["roles"] for t in tasks] == [{w1: "wics1", w2a: "wics2"}]
    w2b = await add_input(conn, "WICS1S2_TC", "w2b", type_code="S2_WICS2_L2B")
    await run_pass(db_url, cfg, clock)
    tasks = await rule_tasks(conn, "WICS1S2_TC")
    assert [sorted(t["inputs"]) for t in tasks] == [sorted([w1, w2a]), sorted([w1, w2b])]
    # Two live tasks never share a primary (the v1 guard): the second got the WICS2.
    assert len({t["primary"] for t in tasks}) == 2


# composite_with_gate -----------------------------------------------------------------------


async def test_composite_waits_for_the_gate_then_composites_once_and_advances(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    cfg = chain_config()
    await seeded(conn, cfg)
    clock = Clock(datetime(2024, 6, 5, 7, 0, tzinfo=UTC))  # day D closed (6 h after its end)
    fsc = await add_input(conn, "GFSC_TC", "fsc1", type_code="S2_FSC_L2B")
    sws = await add_input(conn, "GFSC_TC", "sws1", type_code="S1_SWS_L2B")
    cc = await add_input(conn, "CC_TC", l1c(5))
    await run_pass(db_url, cfg, clock)  # plans the CC task of day D: the gate is shut
    assert await rule_tasks(conn, "GFSC_TC") == []
    cur = await conn.execute("SELECT day FROM hrwsi.rule_watermark WHERE rule = 'GFSC_TC'")
    assert await cur.fetchone() is None
    (cc_task,) = await rule_tasks(conn, "CC_TC")
    await end_task(conn, cc_task["task"])
    await run_pass(db_url, cfg, clock)
    (gfsc,) = await rule_tasks(conn, "GFSC_TC")
    assert gfsc["roles"] == {fsc: "fsc", sws: "sws"}
    assert gfsc["params"]["date"] == DAY.isoformat()
    cur = await conn.execute("SELECT day FROM hrwsi.rule_watermark WHERE rule = 'GFSC_TC'")
    assert await cur.fetchone() == (DAY,)
    await run_pass(db_url, cfg, clock)
    assert len(await rule_tasks(conn, "GFSC_TC")) == 1
    del cc


# crash, replicas, restart -------------------------------------------------------------------


async def test_crash_between_evaluation_and_insert_leaves_nothing(
    conn: psycopg.AsyncConnection, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = chain_config()
    await seeded(conn, cfg)
    clock = Clock(NOW)
    a = await add_input(conn, "CC_TC", l1c(1))

    async def crash(self: Any, conn: Any, result: Any) -> int:
        raise RuntimeError("killed between evaluation and insert")

    monkeypatch.setattr(rules_step.RulesStep, "record", crash)
    with pytest.raises(RuntimeError):
        await run_pass(db_url, cfg, clock)
    cur = await conn.execute("SELECT count(*) FROM hrwsi.processing_tasks")
    assert await cur.fetchone() == (0,)
    assert await backlog(conn) == {a}
    monkeypatch.undo()
    await run_pass(db_url, cfg, clock)  # the restart does it, once
    assert [t["primary"] for t in await rule_tasks(conn, "CC_TC")] == [a]


async def test_two_replicas_and_restarts_never_duplicate_an_instance(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    cfg = chain_config()
    await seeded(conn, cfg)
    clock = Clock(NOW + timedelta(hours=3))
    ids = []
    for n in range(4):
        tile = f"3{n}TLR"
        ids.append(await add_input(conn, "CC_TC", l1c(n, tile=tile), tile=tile))
        ids.append(await add_input(conn, "SWS_TC", f"SIG0_{n}", type_code="S1_NRB_L2A"))
    replicas = [service(db_url, cfg, clock) for _ in range(2)]
    try:
        await asyncio.gather(*(r.reconcile() for r in replicas))
        await asyncio.gather(*(r.reconcile() for r in replicas))
    finally:
        for r in replicas:
            await r.aclose()
    await run_pass(db_url, cfg, clock)  # a restarted process
    cur = await conn.execute(
        "SELECT count(*), count(DISTINCT key), count(DISTINCT processing_task_id)"
        " FROM hrwsi.rule_instance"
    )
    total, keys, tasks = await cur.fetchone() or (0, 0, 0)
    assert total == keys == tasks == 4  # four CC (one per tile); SIG0 off the sws track
    cur = await conn.execute("SELECT count(*) FROM hrwsi.processing_tasks")
    assert await cur.fetchone() == (4,)
