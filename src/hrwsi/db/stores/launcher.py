"""The launcher's store: claim ready tasks, follow open dispatches, record observations.

Every method is one transaction (or one statement) on one of two connections — ``reconcile``
(claims, follow passes) and ``outcomes`` (the recorder of the event stream) — so the two
never wait on each other's client-side turn. A ``psycopg`` error drops the connection it
happened on and becomes :class:`hrwsi.domain.errors.DatabaseError`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import psycopg
from psycopg.rows import dict_row

from hrwsi.db import queries
from hrwsi.db.holder import ConnectionHolder
from hrwsi.domain import errors, outcomes
from hrwsi.domain.retry import AttemptRecord, Decision, Verdict
from hrwsi.domain.statuses import ProcessingStatus

log = logging.getLogger(__name__)

Role = Literal["reconcile", "outcomes"]


def attempt_key(task_id: int, attempt: int) -> str:
    """The executor's idempotency key of an attempt (``task-<id>-attempt-<n>``)."""
    from hrwsi.executors.base import attempt_key as key

    return key(task_id, attempt)


@dataclass(frozen=True, slots=True)
class ReadyTask:
    """A task as claimed (or found open): what an attempt of it needs."""

    task_id: int
    attempt: int
    input_id: int
    processing_condition: str
    tile: str
    sensing_start: datetime
    input_path: str | None
    vm_name: str
    # Rules (issue 10): a multi-input task's inputs as (role, path), the primary first, and
    # its params (e.g. mode = L2INIT); empty for a single-input task.
    inputs: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return attempt_key(self.task_id, self.attempt)


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim: how many ready tasks were locked, and those whose dispatch row this
    launcher inserted (the others were dispatched by another launcher)."""

    locked: int
    dispatched: tuple[ReadyTask, ...]


@dataclass(frozen=True, slots=True)
class OpenDispatch:
    """The latest dispatch of an unfinished task with no terminal status yet."""

    dispatch_id: int
    key: str
    task: ReadyTask  # its ``attempt`` is the dispatch's, parsed from the key (0 if unparsable)
    started: bool


@dataclass(frozen=True, slots=True)
class CancelledRun:
    """The open (no terminal status) latest dispatch of a task an operator cancelled."""

    dispatch_id: int
    key: str
    task_id: int
    cancelled_by: str


@dataclass(frozen=True, slots=True)
class NewProduct:
    """The product a processed task registers."""

    input_id: int
    path: str
    type_code: str
    task_id: int


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a recording transaction committed."""

    changes: outcomes.GroupChanges
    decisions: tuple[tuple[outcomes.LockedDispatch, Decision], ...] = ()
    products_not_inserted: tuple[NewProduct, ...] = ()
    without_routine: tuple[int, ...] = ()  # task ids processed whose routine is unknown


ProductOf = Callable[[outcomes.LockedDispatch], NewProduct | None]
Decide = Callable[[outcomes.LockedDispatch, Sequence[AttemptRecord]], Decision]


class LauncherStore(Protocol):
    async def claim(self, limit: int, successors_of: Sequence[int] | None = None) -> Claim:
        """Lock up to ``limit`` ready tasks (all, or those chained after ``successors_of``
        input ids) and insert one dispatch per task with its next attempt key."""
        ...

    async def open_dispatches(self) -> list[OpenDispatch]: ...

    async def ended_dispatches(self, dispatch_ids: Sequence[int]) -> set[int]:
        """Those of ``dispatch_ids`` with a terminal status recorded."""
        ...

    async def next_retry(self) -> datetime | None:
        """The earliest future retry time of an unfinished task."""
        ...

    async def cancelled_runs(self, limit: int) -> list[CancelledRun]:
        """Open dispatches of cancelled tasks: runs to stop."""
        ...

    async def stop_cancelled(self, run: CancelledRun, stop: Callable[[], Awaitable[None]]) -> bool:
        """One transaction: lock the dispatch; if it is still open, call ``stop`` (the
        executor's cancel) and record the attempt as an external error "cancelled by
        <actor>". False when it had ended meanwhile. An exception from ``stop`` rolls back."""
        ...

    async def acknowledge(self, keys: Sequence[str]) -> None:
        """Record (idempotently, one transaction) that the executor acknowledged the
        submits of these attempt keys: only unacknowledged dispatches may be submitted again."""
        ...

    async def acknowledged_dispatches(self, dispatch_ids: Sequence[int]) -> set[int]:
        """Those of ``dispatch_ids`` whose submit the executor acknowledged."""
        ...

    async def record(
        self,
        observations: Sequence[outcomes.Observation],
        *,
        product_of: ProductOf,
        decide: Decide,
        role: Role = "outcomes",
    ) -> Recorded:
        """One transaction: lock the observations' dispatches and tasks, apply
        :func:`hrwsi.domain.outcomes.changes`, register products, ask ``decide`` about
        each failure (with the task's attempt history) and store its verdict."""
        ...

    async def aclose(self) -> None: ...


def _utc(value: datetime | None) -> datetime | None:
    """A v1 zone-less timestamp (UTC by convention) as an aware datetime."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _ready(row: dict[str, Any], attempt: int) -> ReadyTask:
    return ReadyTask(
        task_id=row["task_id"],
        attempt=attempt,
        input_id=row["input_id"],
        processing_condition=row["processing_condition_name"],
        tile=row["tile"],
        sensing_start=row["date"],
        input_path=row["input_path"],
        vm_name=row["vm_name"],
    )


async def _with_rule_extras(cur: Any, tasks: list[ReadyTask]) -> list[ReadyTask]:
    """The tasks with their inputs by role and params (rules, issue 10): one query."""
    if not tasks:
        return tasks
    await cur.execute(queries.get("rules_task_extras"), {"ids": [t.task_id for t in tasks]})
    extras: dict[int, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {}
    for r in await cur.fetchall():
        inputs = tuple((str(i["role"]), str(i["path"] or "")) for i in r["inputs"] or ())
        params = tuple(sorted((str(k), str(v)) for k, v in (r["params"] or {}).items()))
        extras[int(r["task_id"])] = (inputs, params)
    return [
        dataclasses.replace(t, inputs=extras[t.task_id][0], params=extras[t.task_id][1])
        if t.task_id in extras
        else t
        for t in tasks
    ]


def _parse_attempt(key: str) -> int:
    from hrwsi.executors.base import parse_key

    parsed = parse_key(key)
    return parsed[1] if parsed else 0


class PostgresLauncherStore:
    """:class:`LauncherStore` on PostgreSQL (queries in ``db/queries/launcher.sql``)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        # Short statements run many times a second: JIT compiling the claim query costs
        # more (~25 ms on 10,000 open tasks) than running it.
        self._holders = {
            role: ConnectionHolder(
                url, name=f"launcher {role}", timeout_s=timeout_s, options="-c jit=off"
            )
            for role in ("reconcile", "outcomes")
        }

    async def _fail(self, role: Role, what: str, exc: psycopg.Error) -> errors.DatabaseError:
        await self._holders[role].drop()
        return errors.DatabaseError(f"launcher {what} failed: {exc}")

    async def claim(self, limit: int, successors_of: Sequence[int] | None = None) -> Claim:
        params: dict[str, Any] = {"limit": limit}
        if successors_of is None:
            sql = queries.get("launcher_claim_ready")
        else:
            sql = queries.get("launcher_claim_successors")
            params["input_ids"] = list(successors_of)
        conn = await self._holders["reconcile"].get()
        try:
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(sql, params)
                rows = await cur.fetchall()
                if not rows:
                    return Claim(0, ())
                tasks = [_ready(r, int(r["attempt"])) for r in rows]
                await cur.execute(
                    queries.get("launcher_insert_dispatches"),
                    {"task_ids": [t.task_id for t in tasks], "keys": [t.key for t in tasks]},
                )
                inserted = {r["task_id"] for r in await cur.fetchall()}
                tasks = await _with_rule_extras(cur, [t for t in tasks if t.task_id in inserted])
        except psycopg.Error as exc:
            raise await self._fail("reconcile", "claim", exc) from exc
        return Claim(len(rows), tuple(tasks))

    async def open_dispatches(self) -> list[OpenDispatch]:
        conn = await self._holders["reconcile"].get()
        try:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(queries.get("launcher_open_dispatches"))
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise await self._fail("reconcile", "follow", exc) from exc
        return [
            OpenDispatch(
                dispatch_id=r["dispatch_id"],
                key=r["key"],
                task=_ready(r, _parse_attempt(r["key"])),
                started=bool(r["started"]),
            )
            for r in rows
        ]

    async def ended_dispatches(self, dispatch_ids: Sequence[int]) -> set[int]:
        conn = await self._holders["reconcile"].get()
        try:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    queries.get("launcher_dispatches_recorded"), {"ids": list(dispatch_ids)}
                )
                return {r["dispatch_id"] for r in await cur.fetchall() if r["has_terminal"]}
        except psycopg.Error as exc:
            raise await self._fail("reconcile", "follow", exc) from exc

    async def cancelled_runs(self, limit: int) -> list[CancelledRun]:
        conn = await self._holders["reconcile"].get()
        try:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(queries.get("console_launcher_cancelled_open"), {"limit": limit})
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise await self._fail("reconcile", "cancel", exc) from exc
        return [
            CancelledRun(r["dispatch_id"], r["key"], r["task_id"], r["cancelled_by"]) for r in rows
        ]

    async def stop_cancelled(self, run: CancelledRun, stop: Callable[[], Awaitable[None]]) -> bool:
        conn = await self._holders["reconcile"].get()
        try:
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    queries.get("console_launcher_lock_cancelled"),
                    {"dispatch_id": run.dispatch_id},
                )
                locked = await cur.fetchone()
                if locked is None or not locked["open"]:
                    return False
                await stop()
                await cur.execute(
                    queries.get("console_launcher_record_cancelled"),
                    {"dispatch_id": run.dispatch_id, "message": f"cancelled by {run.cancelled_by}"},
                )
                return True
        except psycopg.Error as exc:
            raise await self._fail("reconcile", "cancel", exc) from exc

    async def acknowledge(self, keys: Sequence[str]) -> None:
        conn = await self._holders["reconcile"].get()
        try:
            await conn.execute(queries.get("launcher_acknowledge_dispatches"), {"keys": list(keys)})
        except psycopg.Error as exc:
            raise await self._fail("reconcile", "acknowledge", exc) from exc

    async def acknowledged_dispatches(self, dispatch_ids: Sequence[int]) -> set[int]:
        conn = await self._holders["reconcile"].get()
        try:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    queries.get("launcher_dispatches_acknowledged"), {"ids": list(dispatch_ids)}
                )
                return {r["dispatch_id"] for r in await cur.fetchall()}
        except psycopg.Error as exc:
            raise await self._fail("reconcile", "follow", exc) from exc

    async def next_retry(self) -> datetime | None:
        conn = await self._holders["reconcile"].get()
        try:
            cur = await conn.execute(queries.get("launcher_next_retry"))
            row = await cur.fetchone()
        except psycopg.Error as exc:
            raise await self._fail("reconcile", "reconcile", exc) from exc
        return _utc(row[0]) if row else None

    async def record(
        self,
        observations: Sequence[outcomes.Observation],
        *,
        product_of: ProductOf,
        decide: Decide,
        role: Role = "outcomes",
    ) -> Recorded:
        conn = await self._holders[role].get()
        try:
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                return await self._record(cur, observations, product_of, decide)
        except psycopg.Error as exc:
            raise await self._fail(role, "record", exc) from exc

    async def _record(
        self,
        cur: psycopg.AsyncCursor[Any],
        observations: Sequence[outcomes.Observation],
        product_of: ProductOf,
        decide: Decide,
    ) -> Recorded:
        await cur.execute(
            queries.get("launcher_lock_dispatches"),
            {"keys": sorted({o.key for o in observations})},
        )
        locked_rows = await cur.fetchall()
        # A separate statement: under READ COMMITTED it sees what a launcher that held the
        # locks before us committed (the locking statement's snapshot would not).
        await cur.execute(
            queries.get("launcher_dispatches_recorded"),
            {"ids": [r["dispatch_id"] for r in locked_rows]},
        )
        recorded = {r["dispatch_id"]: r for r in await cur.fetchall()}
        locked = {
            r["key"]: outcomes.LockedDispatch(
                dispatch_id=r["dispatch_id"],
                key=r["key"],
                log_path=r["log_path"],
                task_id=r["task_id"],
                input_id=r["input_id"],
                processing_condition=r["processing_condition_name"],
                tile=r["tile"],
                sensing_start=r["date"],
                extra_attempts=int(r["extra_attempts"] or 0),
                has_successor=bool(r["has_successor"]),
                has_started=bool(recorded[r["dispatch_id"]]["has_started"]),
                has_terminal=bool(recorded[r["dispatch_id"]]["has_terminal"]),
            )
            for r in locked_rows
        }
        ch = outcomes.changes(locked, observations)
        if ch.log_paths:
            await cur.execute(
                queries.get("launcher_set_log_paths"),
                {"ids": list(ch.log_paths), "log_paths": list(ch.log_paths.values())},
            )
        if ch.statuses:
            await cur.execute(
                queries.get("launcher_insert_statuses"),
                {
                    "ids": [s.dispatch_id for s in ch.statuses],
                    "statuses": [int(s.status) for s in ch.statuses],
                    "messages": [s.message or None for s in ch.statuses],
                },
            )
        missing: tuple[NewProduct, ...] = ()
        without: list[int] = []
        if ch.processed:
            wanted: list[NewProduct] = []
            for d in ch.processed:
                product = product_of(d)
                if product is None:
                    without.append(d.task_id)
                else:
                    wanted.append(product)
            if wanted:
                await cur.execute(
                    queries.get("launcher_insert_products"),
                    {
                        "input_ids": [w.input_id for w in wanted],
                        "product_paths": [w.path for w in wanted],
                        "type_codes": [w.type_code for w in wanted],
                    },
                )
                inserted = {r["input_fk_id"] for r in await cur.fetchall()}
                missing = tuple(w for w in wanted if w.input_id not in inserted)
            await cur.execute(
                queries.get("launcher_end_tasks"),
                {"task_ids": [d.task_id for d in ch.processed]},
            )
        decisions: list[tuple[outcomes.LockedDispatch, Decision]] = []
        for d, _ in ch.failed:
            await cur.execute(queries.get("launcher_task_history"), {"task_id": d.task_id})
            history = [
                AttemptRecord(
                    ProcessingStatus(h["processing_status_id"])
                    if h["processing_status_id"]
                    else None,
                    _utc(h["date"]),
                )
                for h in await cur.fetchall()
            ]
            decision = decide(d, history)
            if decision.verdict is Verdict.ENDED:
                await cur.execute(queries.get("launcher_end_task"), {"task_id": d.task_id})
            else:
                await cur.execute(
                    queries.get("launcher_schedule_retry"),
                    {"task_id": d.task_id, "at": decision.at},
                )
            decisions.append((d, decision))
        return Recorded(ch, tuple(decisions), missing, tuple(without))

    async def aclose(self) -> None:
        for holder in self._holders.values():
            await holder.aclose()


# -- the in-memory fake -------------------------------------------------------------------


@dataclass
class _Task:
    id: int
    input_id: int
    condition: str
    tile: str
    sensing_start: datetime
    input_path: str | None
    vm_name: str
    preceding_input_id: int | None
    has_ended: bool = False
    extra_attempts: int = 0
    next_attempt_at: datetime | None = None


@dataclass
class _Dispatch:
    id: int
    task_id: int
    key: str
    log_path: str | None = None
    acknowledged: bool = False
    statuses: list[tuple[ProcessingStatus, datetime, str | None]] = field(default_factory=list)

    @property
    def terminal(self) -> tuple[ProcessingStatus, datetime] | None:
        for status, at, _ in self.statuses:
            if status is not ProcessingStatus.STARTED:
                return status, at
        return None


class FakeLauncherStore:
    """:class:`LauncherStore` in memory, with the readiness rules of the SQL claim; tests add
    tasks with :meth:`add_task` and read what was recorded. ``calls`` logs every method."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self.tasks: dict[int, _Task] = {}
        self.dispatches: dict[int, _Dispatch] = {}
        self.products: dict[str, NewProduct] = {}
        self.calls: list[str] = []
        self.cancelled: dict[int, str] = {}  # task id -> who cancelled it

    def add_task(
        self,
        input_id: int,
        *,
        condition: str = "MAJA_PC",
        vm_name: str = "vm-1",
        preceding_input_id: int | None = None,
        tile: str = "31TCH",
        sensing_start: datetime | None = None,
        input_path: str | None = None,
    ) -> int:
        task = _Task(
            id=next(self._ids),
            input_id=input_id,
            condition=condition,
            tile=tile,
            sensing_start=sensing_start or datetime(2026, 3, 4, 10, 20),
            input_path=input_path or f"/eodata/{input_id}.SAFE",
            vm_name=vm_name,
            preceding_input_id=preceding_input_id,
        )
        self.tasks[task.id] = task
        return task.id

    def _of_task(self, task_id: int) -> list[_Dispatch]:
        return sorted(
            (d for d in self.dispatches.values() if d.task_id == task_id), key=lambda d: d.id
        )

    def _chain_allows(self, task: _Task) -> bool:
        if task.preceding_input_id is None:
            return True
        before = [t for t in self.tasks.values() if t.input_id == task.preceding_input_id]
        if any(
            (d.terminal or (None, None))[0] is ProcessingStatus.PROCESSED
            for t in before
            for d in self._of_task(t.id)
        ):
            return True
        same_vm = [t for t in before if t.vm_name == task.vm_name]
        return not same_vm or all(t.has_ended for t in same_vm)

    def _is_ready(self, task: _Task) -> bool:
        if task.has_ended:
            return False
        mine = self._of_task(task.id)
        if not mine:
            return self._chain_allows(task)
        terminal = mine[-1].terminal
        return (
            terminal is not None
            and terminal[0] is not ProcessingStatus.PROCESSED
            and task.next_attempt_at is not None
            and task.next_attempt_at <= self._clock()
        )

    def _ready(self, task: _Task, attempt: int) -> ReadyTask:
        return ReadyTask(
            task.id,
            attempt,
            task.input_id,
            task.condition,
            task.tile,
            task.sensing_start,
            task.input_path,
            task.vm_name,
        )

    async def claim(self, limit: int, successors_of: Sequence[int] | None = None) -> Claim:
        self.calls.append("claim")
        candidates = sorted(self.tasks.values(), key=lambda t: t.id)
        if successors_of is not None:
            chained = set(successors_of)
            candidates = [
                t for t in candidates if t.preceding_input_id in chained and not self._of_task(t.id)
            ]
        ready = [t for t in candidates if self._is_ready(t)][:limit]
        claimed: list[ReadyTask] = []
        for task in ready:
            r = self._ready(task, len(self._of_task(task.id)) + 1)
            if any(d.key == r.key for d in self.dispatches.values()):
                continue
            d = _Dispatch(next(self._ids), task.id, r.key)
            self.dispatches[d.id] = d
            claimed.append(r)
        return Claim(len(ready), tuple(claimed))

    async def open_dispatches(self) -> list[OpenDispatch]:
        self.calls.append("open_dispatches")
        found: list[OpenDispatch] = []
        for task in sorted(self.tasks.values(), key=lambda t: t.id):
            mine = self._of_task(task.id)
            if task.has_ended or not mine or mine[-1].terminal is not None:
                continue
            last = mine[-1]
            started = any(s is ProcessingStatus.STARTED for s, _, _ in last.statuses)
            found.append(
                OpenDispatch(
                    last.id, last.key, self._ready(task, _parse_attempt(last.key)), started
                )
            )
        return found

    async def ended_dispatches(self, dispatch_ids: Sequence[int]) -> set[int]:
        self.calls.append("ended_dispatches")
        return {i for i in dispatch_ids if i in self.dispatches and self.dispatches[i].terminal}

    def cancel_task(self, task_id: int, actor: str) -> None:
        """What the console's cancel does to the tables: the task ends, marked cancelled."""
        self.cancelled[task_id] = actor
        self.tasks[task_id].has_ended = True

    async def cancelled_runs(self, limit: int) -> list[CancelledRun]:
        self.calls.append("cancelled_runs")
        runs: list[CancelledRun] = []
        for task_id, actor in sorted(self.cancelled.items()):
            of_task = self._of_task(task_id)
            if of_task and of_task[-1].terminal is None:
                d = of_task[-1]
                runs.append(CancelledRun(d.id, d.key, task_id, actor))
        return runs[:limit]

    async def stop_cancelled(self, run: CancelledRun, stop: Callable[[], Awaitable[None]]) -> bool:
        self.calls.append("stop_cancelled")
        d = self.dispatches.get(run.dispatch_id)
        if d is None or d.terminal is not None:
            return False
        await stop()
        d.statuses.append(
            (ProcessingStatus.EXTERNAL_ERROR, self._clock(), f"cancelled by {run.cancelled_by}")
        )
        return True

    async def acknowledge(self, keys: Sequence[str]) -> None:
        self.calls.append("acknowledge")
        wanted = set(keys)
        for d in self.dispatches.values():
            if d.key in wanted:
                d.acknowledged = True

    async def acknowledged_dispatches(self, dispatch_ids: Sequence[int]) -> set[int]:
        self.calls.append("acknowledged_dispatches")
        return {i for i in dispatch_ids if i in self.dispatches and self.dispatches[i].acknowledged}

    async def next_retry(self) -> datetime | None:
        self.calls.append("next_retry")
        now = self._clock()
        times = [
            t.next_attempt_at
            for t in self.tasks.values()
            if not t.has_ended and t.next_attempt_at is not None and t.next_attempt_at > now
        ]
        return min(times, default=None)

    async def record(
        self,
        observations: Sequence[outcomes.Observation],
        *,
        product_of: ProductOf,
        decide: Decide,
        role: Role = "outcomes",
    ) -> Recorded:
        self.calls.append("record")
        by_key = {d.key: d for d in self.dispatches.values()}
        locked: dict[str, outcomes.LockedDispatch] = {}
        for key in sorted({o.key for o in observations}):
            found = by_key.get(key)
            if found is None:
                continue
            task = self.tasks[found.task_id]
            locked[key] = outcomes.LockedDispatch(
                dispatch_id=found.id,
                key=key,
                log_path=found.log_path,
                task_id=task.id,
                input_id=task.input_id,
                processing_condition=task.condition,
                tile=task.tile,
                sensing_start=task.sensing_start,
                extra_attempts=task.extra_attempts,
                has_successor=any(
                    t.preceding_input_id == task.input_id and not t.has_ended
                    for t in self.tasks.values()
                ),
                has_started=any(s is ProcessingStatus.STARTED for s, _, _ in found.statuses),
                has_terminal=found.terminal is not None,
            )
        ch = outcomes.changes(locked, observations)
        now = self._clock()
        for dispatch_id, path in ch.log_paths.items():
            self.dispatches[dispatch_id].log_path = path
        for s in ch.statuses:
            self.dispatches[s.dispatch_id].statuses.append((s.status, now, s.message or None))
        missing: list[NewProduct] = []
        without: list[int] = []
        for d in ch.processed:
            product = product_of(d)
            if product is None:
                without.append(d.task_id)
            elif product.path in self.products:
                missing.append(product)
            else:
                self.products[product.path] = product
            self._end(d.task_id)
        decisions: list[tuple[outcomes.LockedDispatch, Decision]] = []
        for d, _ in ch.failed:
            history = [
                AttemptRecord(*(x.terminal or (None, None))) for x in self._of_task(d.task_id)
            ]
            decision = decide(d, history)
            if decision.verdict is Verdict.ENDED:
                self._end(d.task_id)
            else:
                self.tasks[d.task_id].next_attempt_at = decision.at
            decisions.append((d, decision))
        return Recorded(ch, tuple(decisions), tuple(missing), tuple(without))

    def _end(self, task_id: int) -> None:
        task = self.tasks[task_id]
        self.tasks[task_id] = dataclasses.replace(task, has_ended=True, next_attempt_at=None)

    def statuses(self, task_id: int) -> list[tuple[str, ProcessingStatus]]:
        """(attempt key, status) of every status of a task, in order."""
        return [(d.key, s) for d in self._of_task(task_id) for s, _, _ in d.statuses]

    async def aclose(self) -> None:
        self.calls.append("aclose")
