"""The planning service on a real database: inputs become chained tasks on VMs, exactly once."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hrwsi.config import Config, SchedulingConfig, WorkerConfig
from hrwsi.domain import errors, planning
from hrwsi.services import orchestrator
from hrwsi.services.orchestrator import OrchestratorService


def _validator() -> orchestrator.Validator | None:
    """The real plan validator once it exists; until then the service's plan is checked
    against the database rows by these tests (``_chains``)."""
    try:
        from hrwsi.domain import plan_validator
    except ImportError:
        return lambda instance, plan: []
    return plan_validator.validate


def service(db_url: str, config: Config | None = None, **kw: Any) -> OrchestratorService:
    kw.setdefault("validator", _validator())
    return OrchestratorService(config or Config(), db_url, **kw)


def scheduling(**changes: Any) -> Config:
    return Config(scheduling=SchedulingConfig(**changes))


async def insert_inputs(
    conn: psycopg.AsyncConnection, n: int, condition: str = "MAJA_PC", prefix: str = "p"
) -> list[int]:
    cur = await conn.execute(
        "INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day,"
        " input_path, mission)"
        " SELECT %s, now(), '31TCH', 20240102, %s || '/' || %s || '/' || g, 'S2'"
        " FROM generate_series(1, %s) AS g RETURNING id",
        (condition, prefix, condition, n),
    )
    return sorted(r[0] for r in await cur.fetchall())


async def tasks_by_input(conn: psycopg.AsyncConnection) -> dict[int, int]:
    cur = await conn.execute(
        "SELECT input_fk_id, count(*) FROM hrwsi.processing_tasks GROUP BY input_fk_id"
    )
    return {r[0]: r[1] for r in await cur.fetchall()}


async def count(conn: psycopg.AsyncConnection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM hrwsi.{table}")  # test-only table names
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _chains(conn: psycopg.AsyncConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Each VM's tasks in planned order: (input, preceding input, start, end, routine)."""
    cur = await conn.execute(
        "SELECT vm.name, vm.flavour, pt.input_fk_id, pt.preceding_input_id,"
        " ts.planned_start_min, ts.planned_end_min, c.processing_routine_name"
        " FROM hrwsi.processing_tasks pt"
        " JOIN hrwsi.task_state ts ON ts.processing_task_id = pt.id"
        " JOIN hrwsi.virtual_machine vm ON vm.id = pt.virtual_machine_id"
        " JOIN hrwsi.input i ON i.id = pt.input_fk_id"
        " JOIN hrwsi.processing_condition c ON c.name = i.processing_condition_name"
        " ORDER BY vm.name, ts.planned_start_min, pt.id"
    )
    chains: dict[str, list[tuple[Any, ...]]] = {}
    for name, flavour, input_id, preceding, start, end, routine in await cur.fetchall():
        assert flavour == routine, f"{name}: a {flavour} VM runs a {routine} task"
        chains.setdefault(name, []).append((input_id, preceding, start, end))
    return chains


def assert_well_chained(chains: dict[str, list[tuple[Any, ...]]]) -> None:
    for name, tasks in chains.items():
        assert tasks[0][1] is None, f"{name}: the first task has a predecessor"
        for before, after in itertools.pairwise(tasks):
            assert after[1] == before[0], f"{name}: chain broken at input {after[0]}"
            assert after[2] >= before[3], f"{name}: tasks overlap"


async def end_task(conn: psycopg.AsyncConnection, input_id: int, status: int = 3) -> None:
    """End the input's live task as the launcher would: a dispatch, a status row, has_ended."""
    await conn.execute(
        "WITH t AS (SELECT id FROM hrwsi.processing_tasks"
        "           WHERE input_fk_id = %s AND has_ended = false),"
        " d AS (INSERT INTO hrwsi.nomad_job_dispatch"
        "         (processing_task_fk_id, nomad_job_dispatch, dispatch_date)"
        "       SELECT id, 'job/' || id, now() FROM t RETURNING id)"
        " INSERT INTO hrwsi.processing_status_workflow"
        "   (nomad_job_dispatch_fk_id, processing_status_id, date, message)"
        " SELECT id, %s, now(), 'simulated failure' FROM d",
        (input_id, status),
    )
    await conn.execute(
        "UPDATE hrwsi.processing_tasks SET has_ended = true"
        " WHERE input_fk_id = %s AND has_ended = false",
        (input_id,),
    )


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The orchestrator's log records, whatever the hrwsi logger's propagation."""
    logger = logging.getLogger("hrwsi.services.orchestrator")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="hrwsi.services.orchestrator")
    yield caplog
    logger.removeHandler(caplog.handler)


async def test_pending_inputs_become_chained_tasks_and_wake_the_launcher(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """Every input gets one task on a VM of its routine, chained in plan order, and the
    launcher's channel is notified once for the whole plan."""
    maja = await insert_inputs(conn, 30, "MAJA_PC")
    fsc = await insert_inputs(conn, 20, "FSC_PC")
    await conn.execute("LISTEN processing_task_insertion")
    svc = service(db_url, scheduling(t_max_minutes=60))
    try:
        result = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert result.outcome == "written"
    assert result.inputs_by_condition == {"FSC_PC": 20, "MAJA_PC": 30}
    assert await tasks_by_input(conn) == {i: 1 for i in maja + fsc}
    chains = await _chains(conn)
    assert_well_chained(chains)
    assert result.plan is not None
    assert len(chains) == len(result.plan.vms) == result.vms_written
    assert await count(conn, "virtual_machine") == result.vms_written
    assert all(t[3] <= 60 for tasks in chains.values() for t in tasks)
    note = await anext(conn.notifies(timeout=2))
    assert note.channel == "processing_task_insertion"
    assert '"count" : 50' in note.payload


async def test_second_pass_creates_nothing(conn: psycopg.AsyncConnection, db_url: str) -> None:
    """A pass over inputs that all have a live task writes no VM and no task."""
    await insert_inputs(conn, 12)
    svc = service(db_url)
    try:
        first = await svc.plan_pending()
        second = await svc.plan_pending()
        await svc.reconcile()
    finally:
        await svc.aclose()
    assert first.outcome == "written" and first.tasks_written == 12
    assert second.outcome == "nothing_pending"
    assert await count(conn, "processing_tasks") == 12
    assert await count(conn, "virtual_machine") == first.vms_written


async def test_two_orchestrators_at_once_never_duplicate_a_task(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """Two replicas reconciling concurrently, round after round, give each input exactly one
    task, and between them leave nothing pending."""
    a, b = service(db_url), service(db_url)
    outcomes: list[str] = []
    try:
        for round_ in range(15):
            await insert_inputs(conn, 7, prefix=f"r{round_}")
            passes = await asyncio.gather(a.plan_pending(), b.plan_pending())
            outcomes += [r.outcome for r in passes]
            await insert_inputs(conn, 3, prefix=f"s{round_}")
            await asyncio.gather(a.reconcile(), b.reconcile())
            per_input = await tasks_by_input(conn)
            assert len(per_input) == (round_ + 1) * 10
            assert set(per_input.values()) == {1}
    finally:
        await a.aclose()
        await b.aclose()
    assert "written" in outcomes


async def test_a_replica_holding_the_lock_makes_the_other_skip(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """While another session holds the planning lock, a pass writes nothing and says so."""
    await insert_inputs(conn, 3)
    svc = service(db_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (orchestrator.PLANNING_LOCK_KEY,)
            )
            held = await svc.plan_pending()
        after = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert held.outcome == "locked"
    assert after.outcome == "written" and after.tasks_written == 3


async def test_a_pass_failing_after_the_vm_insert_leaves_nothing(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """When the task insert fails after the VMs were inserted, no VM and no task remain, and
    a later pass plans every input."""
    inputs = await insert_inputs(conn, 9)
    await conn.execute(
        "CREATE FUNCTION hrwsi.test_boom() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
    )
    await conn.execute(
        "CREATE TRIGGER test_boom AFTER INSERT ON hrwsi.processing_tasks"
        " FOR EACH STATEMENT EXECUTE FUNCTION hrwsi.test_boom()"
    )
    svc = service(db_url)
    try:
        with pytest.raises(errors.DatabaseError, match="disk full"):
            await svc.reconcile()
        assert await count(conn, "virtual_machine") == 0
        assert await count(conn, "processing_tasks") == 0
        await conn.execute("DROP TRIGGER test_boom ON hrwsi.processing_tasks")
        await svc.reconcile()
    finally:
        await svc.aclose()
    assert await tasks_by_input(conn) == {i: 1 for i in inputs}


async def test_a_pass_cancelled_mid_transaction_leaves_nothing(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """Cancelling a pass while its write is running commits nothing; the next pass plans all."""
    inputs = await insert_inputs(conn, 5)
    await conn.execute(
        "CREATE FUNCTION hrwsi.test_slow() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$"
    )
    await conn.execute(
        "CREATE TRIGGER test_slow AFTER INSERT ON hrwsi.processing_tasks"
        " FOR EACH STATEMENT EXECUTE FUNCTION hrwsi.test_slow()"
    )
    svc = service(db_url)
    try:
        pass_ = asyncio.create_task(svc.reconcile())
        for _ in range(200):
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event = 'PgSleep'"
            )
            if (await cur.fetchone()) == (1,):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the pass never reached its write")
        pass_.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pass_
        for _ in range(300):  # the server ends the cancelled transaction on its own
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND state <> 'idle'"
            )
            if (await cur.fetchone()) == (0,):
                break
            await asyncio.sleep(0.01)
        assert await count(conn, "virtual_machine") == 0
        assert await count(conn, "processing_tasks") == 0
        await conn.execute("DROP TRIGGER test_slow ON hrwsi.processing_tasks")
        await svc.reconcile()
    finally:
        await svc.aclose()
    assert await tasks_by_input(conn) == {i: 1 for i in inputs}


async def test_replanning_after_terminal_failures_stops_at_the_attempt_limit(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """An input whose tasks all ended unprocessed gets a new task until it has had
    retry.max_tasks_per_input tasks; a processed input is never re-planned."""
    failing, done = await insert_inputs(conn, 2)
    svc = service(db_url)  # default: max_tasks_per_input = 2
    assert svc.config.retry.max_tasks_per_input == 2
    try:
        await svc.reconcile()
        await end_task(conn, failing, status=3)
        await end_task(conn, done, status=2)  # a processed status row: this one succeeded
        second = await svc.plan_pending()
        await end_task(conn, failing, status=4)
        third = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert second.outcome == "written" and second.tasks_written == 1
    assert third.outcome == "nothing_pending"
    assert await tasks_by_input(conn) == {failing: 2, done: 1}


async def test_orphans_behind_a_failed_predecessor_are_unchained(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """When a VM's task ends unprocessed, the next task of its chain no longer waits for it."""
    await insert_inputs(conn, 3)
    svc = service(db_url, scheduling(vm_max=1))
    try:
        await svc.reconcile()
        (chain,) = (await _chains(conn)).values()
        first, second, third = (t[0] for t in chain)
        await end_task(conn, first)
        result = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert result.orphans_released == 1
    cur = await conn.execute(
        "SELECT input_fk_id, preceding_input_id FROM hrwsi.processing_tasks"
        " WHERE has_ended = false AND input_fk_id IN (%s, %s) ORDER BY id",
        (second, third),
    )
    assert await cur.fetchall() == [(second, None), (third, second)]


async def test_a_routine_too_large_for_the_quotas_leaves_its_inputs_pending(
    conn: psycopg.AsyncConnection, db_url: str, events: pytest.LogCaptureFixture
) -> None:
    """MAJA (cpu 5) cannot run under cpu_max 4: its inputs stay pending with a logged reason,
    FSC inputs are planned."""
    maja = await insert_inputs(conn, 4, "MAJA_PC")
    fsc = await insert_inputs(conn, 3, "FSC_PC")
    svc = service(db_url, scheduling(cpu_max=4))
    try:
        result = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert result.left_pending == {"routine_does_not_fit": 4}
    assert await tasks_by_input(conn) == {i: 1 for i in fsc}
    assert not set(maja) & set(await tasks_by_input(conn))
    record = next(
        r for r in events.records if r.getMessage() == "orchestrator.routine_does_not_fit"
    )
    assert record.routine == "MAJA" and record.inputs == 4  # type: ignore[attr-defined]


async def test_an_impossible_plan_writes_nothing_and_logs_why(
    conn: psycopg.AsyncConnection, db_url: str, events: pytest.LogCaptureFixture
) -> None:
    """A planner that answers impossible (for every prefix) leaves every input pending and
    logs its reason."""
    await insert_inputs(conn, 4)
    calls: list[int] = []

    def refuse(instance: planning.Instance) -> planning.Plan:
        calls.append(len(instance.tasks))
        return planning.Plan(status="impossible", reason="quota proof: cpu 9000 > 200")

    svc = service(db_url, planner=refuse)
    try:
        result = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert result.outcome == "plan_failed"
    assert result.reason == "quota proof: cpu 9000 > 200"
    assert calls == [4, 2, 1]
    assert await count(conn, "processing_tasks") == 0
    assert await count(conn, "virtual_machine") == 0
    record = next(r for r in events.records if r.getMessage() == "orchestrator.plan_failed")
    assert record.reason == "quota proof: cpu 9000 > 200"  # type: ignore[attr-defined]


async def test_a_backlog_beyond_the_horizon_plans_its_oldest_part(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """With room for 2 MAJA tasks before t_max, the oldest inputs are planned and the rest wait."""
    inputs = await insert_inputs(conn, 5)
    svc = service(db_url, scheduling(t_max_minutes=10, vm_max=1))
    try:
        result = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert result.outcome == "written"
    assert result.left_pending == {"plan_truncated": 3}
    assert sorted(await tasks_by_input(conn)) == inputs[:2]


async def test_busy_vms_count_against_vm_max(conn: psycopg.AsyncConnection, db_url: str) -> None:
    """VMs whose tasks have not all ended hold their slot: new inputs wait until they end."""
    first_inputs = await insert_inputs(conn, 4, prefix="a")
    svc = service(db_url, scheduling(t_max_minutes=10, vm_max=2))
    try:
        first = await svc.plan_pending()
        late = await insert_inputs(conn, 2, prefix="b")
        blocked = await svc.plan_pending()
        for input_id in first_inputs:
            await end_task(conn, input_id, status=2)  # processed: the VMs are free again
        freed = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert first.vms_written == 2
    assert blocked.outcome == "no_capacity"
    assert freed.outcome == "written" and freed.tasks_written == 2
    assert set(late) <= set(await tasks_by_input(conn))


async def test_a_fixed_pool_names_vms_from_its_workers(
    conn: psycopg.AsyncConnection, db_url: str, events: pytest.LogCaptureFixture
) -> None:
    """With a worker pool, tasks run on the configured workers, later passes chain after each
    worker's last live task, and a routine without a worker waits."""
    pool = (
        WorkerConfig(name="node-a", flavour="MAJA"),
        WorkerConfig(name="node-b", flavour="MAJA"),
    )
    config = scheduling(workers=pool)
    await insert_inputs(conn, 6, "MAJA_PC", prefix="a")
    fsc = await insert_inputs(conn, 2, "FSC_PC")
    svc = service(db_url, config)
    try:
        first = await svc.plan_pending()
        await insert_inputs(conn, 4, "MAJA_PC", prefix="b")
        second = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert first.left_pending == {"no_worker_for_flavour": 2}
    assert second.outcome == "written" and second.tasks_written == 4
    cur = await conn.execute(
        "SELECT vm.name, vm.flavour, p.pooled AND p.pooled_name = vm.name"
        " FROM hrwsi.virtual_machine vm"
        " LEFT JOIN hrwsi.vm_plan p ON p.virtual_machine_id = vm.id ORDER BY vm.name"
    )
    assert await cur.fetchall() == [("node-a", "MAJA", True), ("node-b", "MAJA", True)]
    chains = await _chains(conn)
    assert set(chains) <= {"node-a", "node-b"}
    cur = await conn.execute(
        "SELECT vm.name, pt.input_fk_id, pt.preceding_input_id FROM hrwsi.processing_tasks pt"
        " JOIN hrwsi.virtual_machine vm ON vm.id = pt.virtual_machine_id ORDER BY pt.id"
    )
    last: dict[str, int | None] = {}
    for name, input_id, preceding in await cur.fetchall():
        assert preceding == last.get(name), f"{name}: input {input_id} not chained after the tail"
        last[name] = input_id
    assert not set(fsc) & set(await tasks_by_input(conn))
    assert any(r.getMessage() == "orchestrator.no_worker_for_flavour" for r in events.records)


async def test_dry_run_plans_and_writes_nothing(conn: psycopg.AsyncConnection, db_url: str) -> None:
    """A preview reports the inputs by condition and the plan, and leaves the tables alone."""
    await insert_inputs(conn, 6, "MAJA_PC")
    await insert_inputs(conn, 2, "FSC_PC")
    svc = service(db_url)
    try:
        result = await svc.plan_pending(write=False)
    finally:
        await svc.aclose()
    assert result.outcome == "dry_run"
    assert result.inputs_by_condition == {"FSC_PC": 2, "MAJA_PC": 6}
    assert result.plan is not None and sum(result.vms_by_flavour.values()) == len(result.plan.vms)
    assert set(result.vms_by_flavour) == {"FSC", "MAJA"}
    assert await count(conn, "processing_tasks") == 0
    assert await count(conn, "virtual_machine") == 0


async def test_a_burst_of_single_inserts_is_planned_in_one_pass(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """100 inputs committed one by one before a pass are all planned by that one pass."""
    for i in range(100):
        await insert_inputs(conn, 1, prefix=f"one{i}")
    svc = service(db_url)
    try:
        result = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert result.tasks_written == 100
    assert_well_chained(await _chains(conn))


async def test_a_pass_over_the_per_pass_cap_continues_until_done(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """reconcile keeps planning in capped transactions until no input is pending."""
    await insert_inputs(conn, 25)
    svc = service(db_url, scheduling(max_inputs_per_pass=10))
    try:
        await svc.reconcile()
    finally:
        await svc.aclose()
    assert await count(conn, "processing_tasks") == 25


async def test_passes_read_the_backlog_and_the_sweep_finds_what_triggers_missed(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """New inputs reach a pass through the backlog without a sweep; an input missing from the
    backlog waits for the next sweep, which plans it."""
    svc = service(db_url)
    try:
        assert (await svc.plan_pending()).swept
        queued = await insert_inputs(conn, 3, prefix="q")
        via_trigger = await svc.plan_pending()
        (missed,) = await insert_inputs(conn, 1, prefix="m")
        await conn.execute("DELETE FROM hrwsi.orchestrator_backlog WHERE input_id = %s", (missed,))
        unseen = await svc.plan_pending()
        svc.sweep_interval_s = 0
        swept = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert not via_trigger.swept and via_trigger.tasks_written == 3
    assert unseen.outcome == "nothing_pending"
    assert swept.swept and swept.queued_by_sweep == 1 and swept.tasks_written == 1
    assert await tasks_by_input(conn) == {i: 1 for i in [*queued, missed]}
    assert await count(conn, "orchestrator_backlog") == 0


async def test_a_routine_without_resources_leaves_its_inputs_pending_and_logged(
    conn: psycopg.AsyncConnection, db_url: str, events: pytest.LogCaptureFixture
) -> None:
    """A v1 routine row with a NULL duration cannot be planned: its inputs wait, logged, and
    the other routines' inputs are planned."""
    await conn.execute("UPDATE hrwsi.processing_routine SET duration = NULL WHERE name = 'MAJA'")
    await insert_inputs(conn, 2, "MAJA_PC")
    fsc = await insert_inputs(conn, 2, "FSC_PC")
    svc = service(db_url)
    try:
        result = await svc.plan_pending()
    finally:
        await svc.aclose()
    assert result.left_pending == {"routine_unusable": 2}
    assert await tasks_by_input(conn) == {i: 1 for i in fsc}
    assert any(r.getMessage() == "orchestrator.routine_unusable" for r in events.records)


async def test_the_database_refuses_a_second_live_task_for_an_input(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """Whatever happens to the planning lock, an input cannot get two live tasks."""
    await insert_inputs(conn, 1)
    svc = service(db_url)
    try:
        await svc.reconcile()
    finally:
        await svc.aclose()
    duplicate = (
        "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date)"
        " SELECT input_fk_id, virtual_machine_id, now() FROM hrwsi.processing_tasks"
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        await conn.execute(duplicate)
    await conn.execute("UPDATE hrwsi.processing_tasks SET has_ended = true")
    await conn.execute(duplicate)  # once the first has ended, a new task is allowed
    assert await count(conn, "processing_tasks") == 2


async def test_a_replica_that_found_the_lock_taken_plans_what_arrived_meanwhile(
    conn: psycopg.AsyncConnection, db_url: str
) -> None:
    """Inputs committed while another replica holds the lock are planned by the replica
    woken for them, once the lock is released (no wait for the timer)."""
    svc = service(db_url)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as holder:
        try:
            async with holder.transaction():
                await holder.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (orchestrator.PLANNING_LOCK_KEY,)
                )
                inputs = await insert_inputs(conn, 4)
                waiting = asyncio.create_task(svc.reconcile())
                await asyncio.sleep(0.2)
                assert not waiting.done()
                assert await count(conn, "processing_tasks") == 0
            await asyncio.wait_for(waiting, 5)
        finally:
            await svc.aclose()
    assert await tasks_by_input(conn) == {i: 1 for i in inputs}
