"""The LauncherStore contract, run against the in-memory fake and PostgreSQL alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from launcher_support import add_input

from hrwsi.db.stores.launcher import (
    FakeLauncherStore,
    LauncherStore,
    NewProduct,
    PostgresLauncherStore,
)
from hrwsi.domain.outcomes import LockedDispatch, Observation
from hrwsi.domain.retry import AttemptRecord, Decision, Verdict
from hrwsi.domain.statuses import ProcessingStatus

STARTED, PROCESSED = ProcessingStatus.STARTED, ProcessingStatus.PROCESSED
INTERNAL = ProcessingStatus.INTERNAL_ERROR


class Harness:
    """A store plus a way to add tasks; ``chain(n)`` adds n tasks chained on one VM."""

    store: LauncherStore

    async def chain(self, length: int) -> list[tuple[int, int]]:
        raise NotImplementedError


class FakeHarness(Harness):
    def __init__(self) -> None:
        self.fake = FakeLauncherStore()
        self.store = self.fake
        self._inputs = 0

    async def chain(self, length: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        previous: int | None = None
        vm = f"vm-{uuid.uuid4().hex[:6]}"
        for _ in range(length):
            self._inputs += 1
            task = self.fake.add_task(self._inputs, vm_name=vm, preceding_input_id=previous)
            out.append((task, self._inputs))
            previous = self._inputs
        return out


class PostgresHarness(Harness):
    def __init__(self, db_url: str, conn: psycopg.AsyncConnection) -> None:
        self.store = PostgresLauncherStore(db_url)
        self.conn = conn
        self._n = 0

    async def chain(self, length: int) -> list[tuple[int, int]]:
        vm = uuid.uuid4()
        await self.conn.execute(
            "INSERT INTO hrwsi.virtual_machine (id, name, flavour) VALUES (%s, %s, 'MAJA')",
            (vm, f"vm-{vm.hex[:6]}"),
        )
        out: list[tuple[int, int]] = []
        previous: int | None = None
        for _ in range(length):
            self._n += 1
            input_id = await add_input(self.conn, self._n)
            cur = await self.conn.execute(
                "INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id,"
                " creation_date, preceding_input_id) VALUES (%s, %s, now(), %s) RETURNING id",
                (input_id, vm, previous),
            )
            row = await cur.fetchone()
            assert row is not None
            out.append((int(row[0]), input_id))
            previous = input_id
        return out


@pytest.fixture(params=["fake", "postgres"])
async def harness(request: pytest.FixtureRequest, db_url: str) -> AsyncIterator[Harness]:
    if request.param == "fake":
        h: Harness = FakeHarness()
        try:
            yield h
        finally:
            await h.store.aclose()
        return
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        h = PostgresHarness(db_url, conn)
        try:
            yield h
        finally:
            await h.store.aclose()


def product_of(d: LockedDispatch) -> NewProduct:
    return NewProduct(
        d.input_id, f"/HRWSI/L2A/{d.input_id}-{uuid.uuid4().hex}", "S2_MAJA_L2A", d.task_id
    )


def retry_in(seconds: float):
    seen: list[Sequence[AttemptRecord]] = []

    def decide(d: LockedDispatch, history: Sequence[AttemptRecord]) -> Decision:
        seen.append(history)
        if seconds < 0:
            return Decision(Verdict.ENDED, reason="no more")
        return Decision(Verdict.RETRY_AT, datetime.now(UTC) + timedelta(seconds=seconds))

    decide.seen = seen  # type: ignore[attr-defined]
    return decide


async def test_a_chain_head_is_claimed_once_and_its_successor_waits(harness: Harness) -> None:
    """Only the head of a chain is ready; a second claim finds nothing new."""
    (a, _), (_b, _) = await harness.chain(2)
    claim = await harness.store.claim(10)
    assert [t.task_id for t in claim.dispatched] == [a]
    assert claim.dispatched[0].key == f"task-{a}-attempt-1"
    again = await harness.store.claim(10)
    assert again.dispatched == ()
    assert [d.task.task_id for d in await harness.store.open_dispatches()] == [a]


async def test_processed_ends_the_task_registers_a_product_and_frees_the_successor(
    harness: Harness,
) -> None:
    """started then processed: recorded once each; the successor becomes claimable."""
    (_a, input_a), (b, _) = await harness.chain(2)
    (task,) = (await harness.store.claim(10)).dispatched
    obs = [Observation(task.key, STARTED), Observation(task.key, PROCESSED, "exit 0")]
    recorded = await harness.store.record(obs, product_of=product_of, decide=retry_in(0))
    assert [s.status for s in recorded.changes.statuses] == [STARTED, PROCESSED]
    assert recorded.changes.forget == (task.key,)
    assert recorded.changes.successors_of() == [input_a]
    repeat = await harness.store.record(obs, product_of=product_of, decide=retry_in(0))
    assert repeat.changes.statuses == ()
    assert await harness.store.open_dispatches() == []
    successors = await harness.store.claim(10, successors_of=[input_a])
    assert [t.task_id for t in successors.dispatched] == [b]


async def test_an_error_asks_the_policy_and_stores_its_retry_time(harness: Harness) -> None:
    """An internal error: the decision sees the history; the retry time is the next retry."""
    ((a, _),) = await harness.chain(1)
    (task,) = (await harness.store.claim(10)).dispatched
    decide = retry_in(60)
    recorded = await harness.store.record(
        [Observation(task.key, INTERNAL, "exit 4")], product_of=product_of, decide=decide
    )
    assert [d.task_id for d, _ in recorded.decisions] == [a]
    (history,) = decide.seen  # type: ignore[attr-defined]
    assert [h.status for h in history] == [INTERNAL]
    at = await harness.store.next_retry()
    assert at is not None and at > datetime.now(UTC)
    assert (await harness.store.claim(10)).dispatched == ()  # not due yet


async def test_an_error_the_policy_ends_leaves_nothing_open(harness: Harness) -> None:
    """A failure for good ends the task: no retry time, nothing to claim or follow."""
    await harness.chain(1)
    (task,) = (await harness.store.claim(10)).dispatched
    recorded = await harness.store.record(
        [Observation(task.key, INTERNAL)], product_of=product_of, decide=retry_in(-1)
    )
    (dispatch, decision) = recorded.decisions[0]
    assert decision.verdict is Verdict.ENDED
    assert await harness.store.next_retry() is None
    assert await harness.store.open_dispatches() == []
    assert await harness.store.ended_dispatches([dispatch.dispatch_id]) == {dispatch.dispatch_id}


async def test_an_unknown_key_changes_nothing(harness: Harness) -> None:
    """An observation of a dispatch that does not exist is reported as unknown."""
    recorded = await harness.store.record(
        [Observation("task-999999-attempt-1", PROCESSED)],
        product_of=product_of,
        decide=retry_in(0),
    )
    assert recorded.changes.unknown == ("task-999999-attempt-1",)
    assert recorded.changes.statuses == ()
