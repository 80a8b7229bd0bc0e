"""Campaign transitions on real PostgreSQL: each one transaction under a row lock, refusals,
a crash (killed connection) mid-transition, concurrent operators, progress."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import psycopg
import pytest

from hrwsi.cli import campaign as campaign_cli
from hrwsi.domain import errors
from hrwsi.domain.campaign import (
    Action,
    CampaignNotFound,
    Scope,
    TransitionRefused,
    UnknownCondition,
)

SCOPE = Scope("MAJA_PC", date(2024, 1, 1), date(2024, 1, 31), ("31TCH",))


async def add_input(conn, day: int, tile: str = "31TCH", condition: str = "MAJA_PC") -> int:
    cur = await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission) VALUES (%s, now(), %s, %s, 'in/' || gen_random_uuid(), 'S2')"
        " RETURNING id",
        (condition, tile, day),
    )
    row = await cur.fetchone()
    return int(row[0])


async def add_product(conn, input_id: int, age: timedelta = timedelta(0)) -> None:
    await conn.execute(
        "INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date, catalogued_date,"
        " product_type_id) SELECT %s, 'p/' || gen_random_uuid(),"
        " (now() - %s::interval) AT TIME ZONE 'UTC', now(), id FROM hrwsi.product_type"
        " WHERE code = 'S2_MAJA_L2A'",
        (input_id, age),
    )


async def state_and_log(conn, campaign_id: int) -> tuple[str, list[tuple[str, str | None, str]]]:
    row = await (
        await conn.execute("SELECT state FROM hrwsi.campaign WHERE id = %s", (campaign_id,))
    ).fetchone()
    log = await (
        await conn.execute(
            "SELECT action, from_state, to_state FROM hrwsi.campaign_transition"
            " WHERE campaign_id = %s ORDER BY id",
            (campaign_id,),
        )
    ).fetchall()
    return row[0], [tuple(r) for r in log]


async def new_campaign(db_url: str, priority: int | None = None) -> int:
    made = await campaign_cli.create(db_url, SCOPE, priority=priority, actor="tester")
    return int(made["id"])


async def test_create_counts_the_inputs_in_scope(db_url, conn):
    """Scope = condition, days inclusive, tiles: other days, tiles and conditions are out."""
    for day in (20240101, 20240115, 20240131):
        await add_input(conn, day)
    await add_input(conn, 20240201)
    await add_input(conn, 20240110, tile="32TLR")
    await add_input(conn, 20240110, condition="FSC_PC")
    made = await campaign_cli.create(db_url, SCOPE, priority=42, actor="tester")
    assert made["inputs_in_scope"] == 3 and made["state"] == "created"
    assert await state_and_log(conn, made["id"]) == ("created", [("create", None, "created")])
    shown = await campaign_cli.show(db_url, made["id"])
    assert shown["priority"] == 42 and shown["tiles"] == ["31TCH"]
    assert shown["allowed_actions"] == ["release", "cancel"]


async def test_unknown_condition_is_refused(db_url, conn):
    """A campaign naming no existing condition is refused and nothing is written."""
    with pytest.raises(UnknownCondition, match="NOPE_PC"):
        await campaign_cli.create(
            db_url, Scope("NOPE_PC", date(2024, 1, 1), date(2024, 1, 2)), priority=None, actor=None
        )
    count = await (await conn.execute("SELECT count(*) FROM hrwsi.campaign")).fetchone()
    assert count[0] == 0


async def test_every_transition_moves_stamps_and_logs(db_url, conn):
    """release, suspend, resume, complete; and cancel from created, released and suspended."""
    cid = await new_campaign(db_url)
    steps = [
        (Action.RELEASE, "created", "released", "create_tasks"),
        (Action.SUSPEND, "released", "suspended", "stop_launches"),
        (Action.RESUME, "suspended", "released", "allow_launches"),
        (Action.COMPLETE, "released", "done", "none"),
    ]
    for action, src, dst, effect in steps:
        got = await campaign_cli.apply(db_url, cid, action, actor="tester")
        assert (got["from"], got["to"], got["effect"]) == (src, dst, effect)
    state, log = await state_and_log(conn, cid)
    assert state == "done"
    assert log[1:] == [(a.value, s, d) for a, s, d, _ in steps]
    stamps = await (
        await conn.execute(
            "SELECT released_at IS NOT NULL, suspended_at IS NOT NULL, done_at IS NOT NULL,"
            " cancelled_at IS NULL FROM hrwsi.campaign WHERE id = %s",
            (cid,),
        )
    ).fetchone()
    assert stamps == (True, True, True, True)

    for path in ([], [Action.RELEASE], [Action.RELEASE, Action.SUSPEND]):
        other = await new_campaign(db_url)
        for action in path:
            await campaign_cli.apply(db_url, other, action, actor="tester")
        got = await campaign_cli.apply(db_url, other, Action.CANCEL, actor="tester", reason="x")
        assert got["to"] == "cancelled"
        assert (await state_and_log(conn, other))[0] == "cancelled"


@pytest.mark.parametrize(
    ("path", "action", "message"),
    [
        ([], Action.RESUME, "not suspended"),
        ([], Action.SUSPEND, "not released"),
        ([Action.RELEASE], Action.RELEASE, "already released"),
        ([Action.CANCEL], Action.RELEASE, "cancelled, which is final"),
        ([Action.RELEASE, Action.COMPLETE], Action.CANCEL, "done, which is final"),
    ],
)
async def test_refused_transitions_change_nothing(db_url, conn, path, action, message):
    """A refused move raises with the reason and leaves state and log as they were."""
    cid = await new_campaign(db_url)
    for step in path:
        await campaign_cli.apply(db_url, cid, step, actor="tester")
    before = await state_and_log(conn, cid)
    with pytest.raises(TransitionRefused, match=message):
        await campaign_cli.apply(db_url, cid, action, actor="tester")
    assert await state_and_log(conn, cid) == before


async def test_unknown_campaign(db_url):
    """Acting on or showing a campaign that does not exist says so."""
    with pytest.raises(CampaignNotFound, match="campaign 999"):
        await campaign_cli.apply(db_url, 999, Action.RELEASE, actor=None)
    with pytest.raises(CampaignNotFound):
        await campaign_cli.show(db_url, 999)


async def test_connection_killed_mid_transition_leaves_the_old_state(db_url, conn):
    """The backend is killed after the writes, before the commit: old state, no log row."""
    cid = await new_campaign(db_url)
    before = await state_and_log(conn, cid)

    async def kill_own_backend(tx_conn: psycopg.AsyncConnection) -> None:
        pid = tx_conn.info.backend_pid
        # The writes are there, inside the transaction, uncommitted.
        row = await (
            await tx_conn.execute("SELECT state FROM hrwsi.campaign WHERE id = %s", (cid,))
        ).fetchone()
        assert row[0] == "released"
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

    with pytest.raises(errors.DatabaseError, match="nothing changed"):
        await campaign_cli.apply(
            db_url, cid, Action.RELEASE, actor="tester", before_commit=kill_own_backend
        )
    assert await state_and_log(conn, cid) == before
    # And the campaign is not stuck: the same move succeeds afterwards.
    done = await campaign_cli.apply(db_url, cid, Action.RELEASE, actor="tester")
    assert done["to"] == "released"


async def test_crash_of_the_caller_mid_transition_rolls_back(db_url, conn):
    """An exception escaping inside the transaction (a crashing process) rolls it back."""
    cid = await new_campaign(db_url)
    await campaign_cli.apply(db_url, cid, Action.RELEASE, actor="tester")
    before = await state_and_log(conn, cid)

    async def crash(_: psycopg.AsyncConnection) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await campaign_cli.apply(db_url, cid, Action.SUSPEND, actor="tester", before_commit=crash)
    assert await state_and_log(conn, cid) == before


async def test_concurrent_operators_serialise_on_the_row_lock(db_url, conn):
    """Two releases at once: the second waits for the first's lock, then is refused."""
    cid = await new_campaign(db_url)
    second: asyncio.Task[dict[str, object]] | None = None

    async def race(_: psycopg.AsyncConnection) -> None:
        nonlocal second
        second = asyncio.create_task(campaign_cli.apply(db_url, cid, Action.RELEASE, actor="other"))
        await asyncio.sleep(0.5)
        assert not second.done()  # blocked on FOR UPDATE while we hold the row

    first = await campaign_cli.apply(db_url, cid, Action.RELEASE, actor="me", before_commit=race)
    assert first["to"] == "released"
    assert second is not None
    with pytest.raises(TransitionRefused, match="already released"):
        await second
    _, log = await state_and_log(conn, cid)
    assert log == [("create", None, "created"), ("release", "created", "released")]


async def test_progress_done_failed_left_and_eta(db_url, conn):
    """Done = a product; failed = all tasks ended without one; the rate counts only
    products made since release; the ETA follows from it."""
    ids = [await add_input(conn, 20240105) for _ in range(6)]
    await add_product(conn, ids[0], age=timedelta(days=30))  # before the campaign
    cid = await new_campaign(db_url)
    await conn.execute(
        "UPDATE hrwsi.campaign SET released_at = now() - interval '2 hours' WHERE id = %s", (cid,)
    )
    await conn.execute(
        "INSERT INTO hrwsi.campaign_transition (campaign_id, at, action, from_state, to_state)"
        " VALUES (%s, now() - interval '2 hours', 'release', 'created', 'released')",
        (cid,),
    )
    await conn.execute("UPDATE hrwsi.campaign SET state = 'released' WHERE id = %s", (cid,))
    await add_product(conn, ids[1], age=timedelta(hours=1))
    await add_product(conn, ids[2], age=timedelta(minutes=30))
    vm = await (
        await conn.execute(
            "INSERT INTO hrwsi.virtual_machine (id, name, flavour)"
            " VALUES (gen_random_uuid(), 'vm', 'MAJA') RETURNING id"
        )
    ).fetchone()
    await conn.execute(
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date,"
        " has_ended) VALUES (%s, %s, now(), true), (%s, %s, now(), false)",
        (ids[3], vm[0], ids[4], vm[0]),
    )
    shown = await campaign_cli.show(db_url, cid)
    p = shown["progress"]
    assert (p["total"], p["done"], p["failed"], p["left"]) == (6, 3, 1, 2)
    assert p["rate_per_hour"] == pytest.approx(1.0, rel=0.01)  # 2 since release / 2 h
    assert p["eta_s"] == pytest.approx(2 * 3600, rel=0.01)
