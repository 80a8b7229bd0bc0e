"""The launcher: dispatch ready tasks to an executor, record what happens, retry, register products.

``reconcile()`` (called by the runner at start, on ``processing_task_insertion`` and
``processing_tasks_state_processed``, and every ``executor.poll_interval_s``):

1. *Follow open dispatches* (at the first pass, then at most once per interval): each latest
   dispatch of an unfinished task without a terminal status is looked up with
   ``executor.status(key)``. ``UNKNOWN`` (the launcher died between recording and submitting,
   or the executor lost it) → submitted again with the same key, which never starts a second
   run; ``STARTED`` or terminal → recorded as below. This is also how an outcome missed on the
   event stream is caught up.
2. *Dispatch ready tasks*, in batches. A task is ready when it has not ended and either
   - it has no dispatch yet and its chain allows it: no preceding input, or some task of the
     preceding input is processed (v1), or **the preceding input's task on the same VM has
     ended without being processed, or no longer exists** (rule: *skip and continue* — a
     predecessor that failed for good does not hold its VM's chain; the orchestrator may
     re-plan its input elsewhere), or
   - its latest dispatch ended in error, the retry policy kept it open, and its
     ``next_attempt_at`` has come.
   Claim: in one transaction the ready tasks are locked ``FOR UPDATE SKIP LOCKED`` and one
   ``nomad_job_dispatch`` row per task is inserted (one statement for the batch) with the
   attempt key
   (``task-<id>-attempt-<n>``, unique: a second launcher that saw the same task ready inserts
   nothing). After commit each attempt is submitted (idempotent on its key).

``background(stop)`` consumes ``executor.outcomes()``. The observations waiting when the
recorder is free form a *group* (at most ``max_group``), recorded in one transaction — each
observation's state change is complete inside it, so a crash loses either the whole group
(still with the executor, recorded by the next follow pass) or nothing. The transaction locks
the group's dispatches and tasks (in id order) and records, in a few set-based statements:
``started`` once; a terminal state is
recorded once (repeats are ignored) together with, on success, exactly one ``products`` row
(path from :func:`hrwsi.domain.retry.product_path`, the routine's product type; fires
``product_insertion``) and ``has_ended = true``; on error the retry policy
(:mod:`hrwsi.domain.retry`) either ends the task (``has_ended = true``, which fires
``processing_task_ended``) or sets ``next_attempt_at``. Then ``executor.forget(key)``.

``aclose()`` closes the executor too: the launcher owns the executor it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from hrwsi.config import Config
from hrwsi.db import queries
from hrwsi.domain import errors
from hrwsi.domain.retry import (
    AttemptRecord,
    ProductInput,
    RetryPolicy,
    Verdict,
    decide,
    product_path,
)
from hrwsi.domain.statuses import ProcessingStatus
from hrwsi.executors.base import (
    Attempt,
    Executor,
    Outcome,
    RoutineSpec,
    RunState,
    attempt_key,
    parse_key,
)

log = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[DictRow]


def retry_policy(config: Config) -> RetryPolicy:
    """The pure retry policy of ``config.retry``."""
    r = config.retry
    return RetryPolicy(
        max_attempts_per_task=r.max_attempts_per_task,
        external_error_retries=r.external_error_retries,
        internal_error_retries=r.internal_error_retries,
        backoff_initial_s=r.backoff_initial_s,
        backoff_max_s=r.backoff_max_s,
    )


def _utc(value: datetime | None) -> datetime | None:
    """A v1 zone-less timestamp (UTC by convention) as an aware datetime."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class LauncherService:
    """See the module docstring. ``executor`` is any :class:`hrwsi.executors.base.Executor`."""

    name = "launcher"
    channels = ("processing_task_insertion", "processing_tasks_state_processed", "task_cancelled")
    # This launcher dispatches the successors of the tasks it records at once; the
    # notification matters for tasks other launchers record, and can wait ~0.1 s.
    slow_channels = ("processing_tasks_state_processed",)

    def __init__(
        self,
        config: Config,
        db_url: str,
        executor: Executor,
        *,
        batch_size: int = 500,
        max_group: int = 500,
        policy: RetryPolicy | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.db_url = db_url
        self.executor = executor
        self.interval_s = config.executor.poll_interval_s
        self.batch_size = batch_size
        self.max_group = max_group
        self.policy = policy or retry_policy(config)
        self._rand = rand
        self._conns: dict[str, Connection] = {}
        self._lock = asyncio.Lock()
        self._record_lock = asyncio.Lock()
        self._last_follow: float | None = None
        self._wakeup: asyncio.Task[None] | None = None
        self._wakeup_at: float | None = None

    # -- connections ---------------------------------------------------------------------

    async def _conn(self, role: str) -> Connection:
        conn = self._conns.get(role)
        if conn is not None and not conn.closed:
            return conn
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.db_url,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, int(self.config.database.connect_timeout_s)),
                # Short statements run many times a second: JIT compiling the claim query
                # costs more (~25 ms on 10,000 open tasks) than running it.
                options="-c jit=off",
            )
        except psycopg.OperationalError as exc:
            raise errors.DatabaseError(f"launcher cannot connect: {exc}") from exc
        self._conns[role] = conn
        return conn

    async def _drop(self, role: str) -> None:
        conn = self._conns.pop(role, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    # -- reconcile -----------------------------------------------------------------------

    async def reconcile(self) -> None:
        async with self._lock:
            try:
                conn = await self._conn("reconcile")
                now = time.monotonic()
                if self._last_follow is None or now - self._last_follow >= self.interval_s:
                    await self._follow_open(conn)
                    self._last_follow = now
                await self._stop_cancelled(conn)
                await self._dispatch_ready(conn)
                await self._arm_retry_timer(conn)
            except psycopg.Error as exc:
                await self._drop("reconcile")
                raise errors.DatabaseError(f"launcher reconcile failed: {exc}") from exc

    async def follow_open(self) -> None:
        """Look up every open dispatch in the executor now (reconcile does it periodically)."""
        async with self._lock:
            try:
                await self._follow_open(await self._conn("reconcile"))
                self._last_follow = time.monotonic()
            except psycopg.Error as exc:
                await self._drop("reconcile")
                raise errors.DatabaseError(f"launcher follow failed: {exc}") from exc

    def _attempt(self, row: dict[str, Any], attempt_number: int) -> Attempt | None:
        try:
            routine = self.config.routine_of_condition(row["processing_condition_name"])
        except KeyError:
            return None
        spec = RoutineSpec(
            name=routine.name,
            cpu=routine.cpu,
            ram=routine.ram,
            storage=routine.storage,
            duration_minutes=routine.duration,
            docker_image=routine.docker_image,
            command=routine.command,
        )
        path = product_path(self._product_input(row))
        return Attempt(
            task_id=row["task_id"],
            attempt=attempt_number,
            routine=spec,
            vm_name=row["vm_name"],
            input_paths=(row["input_path"],) if row["input_path"] else (),
            product_path=path,
            meta={
                "input_id": str(row["input_id"]),
                "processing_condition": row["processing_condition_name"],
                "tile": row["tile"],
            },
        )

    def _product_input(self, row: dict[str, Any]) -> ProductInput:
        routine = self.config.routine_of_condition(row["processing_condition_name"])
        return ProductInput(
            input_id=row["input_id"],
            processing_condition=row["processing_condition_name"],
            tile=row["tile"],
            sensing_start=row["date"],
            product_data_type=routine.product_data_type,
            product_type_code=routine.product_type_code,
        )

    async def _dispatch_ready(
        self, conn: Connection, successors_of: Sequence[int] | None = None
    ) -> None:
        """Claim and submit ready tasks; with ``successors_of`` (input ids), only the tasks
        chained right after those inputs (an index lookup, not a scan of every open task)."""
        params: dict[str, Any] = {"limit": self.batch_size}
        if successors_of is None:
            claim = queries.get("launcher_claim_ready")
        else:
            claim = queries.get("launcher_claim_successors")
            params["input_ids"] = list(successors_of)
        while True:
            claimed: list[Attempt] = []
            misconfigured: list[tuple[str, str]] = []
            async with conn.transaction():
                cur = await conn.execute(claim, params)
                rows = await cur.fetchall()
                if rows:
                    keys = [attempt_key(r["task_id"], int(r["attempt"])) for r in rows]
                    cur = await conn.execute(
                        queries.get("launcher_insert_dispatches"),
                        {"task_ids": [r["task_id"] for r in rows], "keys": keys},
                    )
                    # A task missing here was dispatched by another launcher.
                    inserted = {r["task_id"] for r in await cur.fetchall()}
                    for row, key in zip(rows, keys, strict=True):
                        if row["task_id"] not in inserted:
                            continue
                        attempt = self._attempt(row, int(row["attempt"]))
                        if attempt is None:
                            misconfigured.append(
                                (
                                    key,
                                    f"no routine configured for processing condition "
                                    f"{row['processing_condition_name']!r}",
                                )
                            )
                        else:
                            claimed.append(attempt)
            if misconfigured:
                await self._record_group(
                    conn,
                    [
                        Outcome(key, RunState.EXTERNAL_ERROR, message)
                        for key, message in misconfigured
                    ],
                )
            for attempt in claimed:
                log.info("launcher.dispatched", extra={"key": attempt.key, "vm": attempt.vm_name})
                await self._submit(conn, attempt)
            if len(rows) < self.batch_size:
                return

    async def _submit(self, conn: Connection, attempt: Attempt) -> None:
        try:
            await self.executor.submit(attempt)
        except errors.ExecutorRejected as exc:
            await self._record(
                conn, Outcome(attempt.key, RunState.EXTERNAL_ERROR, f"rejected: {exc}")
            )
        except errors.ExecutorError as exc:
            # Left open: the next follow pass finds it UNKNOWN and submits it again.
            log.warning("launcher.submit_failed", extra={"key": attempt.key, "error": str(exc)})

    async def _follow_open(self, conn: Connection) -> None:
        cur = await conn.execute(queries.get("launcher_open_dispatches"))
        await self._follow(conn, await cur.fetchall())

    async def _follow(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Catch up dispatches that were open when the follow pass listed them: what the
        executor reports is recorded as one group; a dispatch it does not know is submitted
        again (same key), unless it has been recorded as ended since the list was read."""
        observed: list[Outcome] = []
        unknown: list[dict[str, Any]] = []
        for row in rows:
            try:
                outcome = await self.executor.status(row["key"])
            except errors.ExecutorError as exc:
                log.warning("launcher.status_failed", extra={"key": row["key"], "error": str(exc)})
                continue
            if outcome.state is RunState.UNKNOWN:
                unknown.append(row)
            elif outcome.state is RunState.STARTED and row["started"]:
                continue
            elif outcome.state is not RunState.SUBMITTED:
                observed.append(outcome)
        if observed:
            await self._record_group(conn, observed)
        if not unknown:
            return
        # The recorder may have recorded their end and made the executor forget them since
        # the list was read: then they are not lost, and submitting again would run them twice.
        cur = await conn.execute(
            queries.get("launcher_dispatches_recorded"),
            {"ids": [row["dispatch_id"] for row in unknown]},
        )
        ended = {r["dispatch_id"] for r in await cur.fetchall() if r["has_terminal"]}
        lost: list[Outcome] = []
        for row in unknown:
            if row["dispatch_id"] in ended:
                continue
            key = row["key"]
            parsed = parse_key(key)
            attempt = self._attempt(row, parsed[1]) if parsed else None
            if attempt is None or attempt.key != key:
                lost.append(
                    Outcome(
                        key,
                        RunState.EXTERNAL_ERROR,
                        "the executor has no record of this dispatch and it cannot be rebuilt",
                    )
                )
                continue
            log.info("launcher.resubmitted", extra={"key": key})
            await self._submit(conn, attempt)
        if lost:
            await self._record_group(conn, lost)

    # -- cancelled tasks (the console's cancel action) -----------------------------------

    async def _stop_cancelled(self, conn: Connection) -> None:
        """Stop the open runs of cancelled tasks: each dispatch is locked, the executor asked
        to cancel the run, and the attempt recorded as an external error "cancelled by
        <actor>" in that transaction (so an outcome arriving meanwhile waits for the lock and
        finds the attempt ended). A cancelled task has ended: it is never claimed again."""
        cur = await conn.execute(queries.get("console_launcher_cancelled_open"), {"limit": 100})
        for row in await cur.fetchall():
            try:
                async with conn.transaction():
                    lock = await conn.execute(
                        queries.get("console_launcher_lock_cancelled"),
                        {"dispatch_id": row["dispatch_id"]},
                    )
                    locked = await lock.fetchone()
                    if locked is None or not locked["open"]:
                        continue
                    await self.executor.cancel(row["key"])
                    await conn.execute(
                        queries.get("console_launcher_record_cancelled"),
                        {
                            "dispatch_id": row["dispatch_id"],
                            "message": f"cancelled by {row['cancelled_by']}",
                        },
                    )
            except errors.ExecutorError as exc:
                log.warning("launcher.cancel_failed", extra={"key": row["key"], "error": str(exc)})
                continue
            log.info("launcher.cancelled", extra={"key": row["key"], "by": row["cancelled_by"]})
            with contextlib.suppress(errors.ExecutorError):
                await self.executor.forget(row["key"])

    # -- retry wake-up -------------------------------------------------------------------

    async def _arm_retry_timer(self, conn: Connection) -> None:
        """Reconcile again when the earliest waiting retry becomes due (before the timer)."""
        cur = await conn.execute(queries.get("launcher_next_retry"))
        row = await cur.fetchone()
        at = row["min"] if row else None
        if at is None:
            return
        delay = max(0.0, (at - datetime.now(UTC)).total_seconds())
        if delay >= self.interval_s:
            return
        self._schedule_wakeup(delay)

    def _schedule_wakeup(self, delay: float) -> None:
        due = time.monotonic() + delay
        if self._wakeup is not None and not self._wakeup.done():
            if self._wakeup_at is not None and self._wakeup_at <= due:
                return
            self._wakeup.cancel()
        self._wakeup_at = due
        self._wakeup = asyncio.create_task(self._wake(delay), name="launcher-retry-wakeup")

    async def _wake(self, delay: float) -> None:
        await asyncio.sleep(delay + 0.01)
        self._wakeup_at = None
        self._wakeup = None  # from here on a new wake-up may be scheduled beside this one
        try:
            await self.reconcile()
        except errors.HrwsiError as exc:
            log.warning("launcher.retry_wakeup_failed", extra={"error": str(exc)})

    # -- outcomes ------------------------------------------------------------------------

    async def background(self, stop: asyncio.Event) -> None:
        """Record the executor's outcomes: each group already waiting in one transaction."""
        waiting: asyncio.Queue[Outcome | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for outcome in self.executor.outcomes():
                    waiting.put_nowait(outcome)
            finally:
                waiting.put_nowait(None)

        pumper = asyncio.create_task(pump(), name="launcher-outcomes")
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                nxt = asyncio.ensure_future(waiting.get())
                await asyncio.wait({nxt, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    return
                group = [nxt.result()]
                while not waiting.empty() and len(group) < self.max_group:
                    group.append(waiting.get_nowait())
                ended = None in group
                await self.record_outcomes([o for o in group if o is not None])
                if ended:
                    return
        finally:
            stopper.cancel()
            pumper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumper

    async def record_outcome(self, outcome: Outcome) -> bool:
        """Record one observation (idempotent); False when it could not be recorded now."""
        return await self.record_outcomes([outcome])

    async def record_outcomes(self, outcomes: Sequence[Outcome]) -> bool:
        """Record observations, in order, in one transaction (idempotent); False on failure.

        A failure to record leaves the outcomes with the executor (not forgotten): the next
        follow pass records them from ``executor.status``.
        """
        try:
            async with self._record_lock:  # one transaction at a time on this connection
                ended = await self._record_group(await self._conn("outcomes"), outcomes)
        except (psycopg.Error, errors.DatabaseError) as exc:
            await self._drop("outcomes")
            log.warning(
                "launcher.record_failed",
                extra={"keys": [o.key for o in outcomes][:10], "error": str(exc)},
            )
            return False
        if ended:
            await self._dispatch_successors(ended)
        return True

    async def _dispatch_successors(self, input_ids: Sequence[int]) -> None:
        """Dispatch the tasks chained after inputs whose task just ended, at once.

        The ``processing_tasks_state_processed`` notification would lead there too, but
        through a full claim (a scan of every open task); it is a slow channel of this
        service, kept for what other launchers record.
        """
        async with self._lock:
            try:
                await self._dispatch_ready(await self._conn("reconcile"), successors_of=input_ids)
            except (psycopg.Error, errors.DatabaseError) as exc:
                await self._drop("reconcile")
                log.warning("launcher.successors_failed", extra={"error": str(exc)})

    async def _record(self, conn: Connection, outcome: Outcome) -> bool:
        await self._record_group(conn, [outcome])
        return True

    async def _record_group(self, conn: Connection, outcomes: Sequence[Outcome]) -> list[int]:
        """One transaction: lock the group's dispatches and tasks (id order), then record each
        outcome once — ``started`` once, the first terminal state once with its product or
        retry decision — in a few set-based statements; then forget the terminal ones.
        Returns the input ids of the tasks that reached a terminal state here and have a
        task chained after them (to dispatch at once)."""
        relevant = [o for o in outcomes if o.state is RunState.STARTED or o.state.is_terminal]
        if not relevant:
            return []
        delays: list[float] = []
        forget: list[str] = []
        async with conn.transaction():
            cur = await conn.execute(
                queries.get("launcher_lock_dispatches"),
                {"keys": sorted({o.key for o in relevant})},
            )
            locked = {r["key"]: r for r in await cur.fetchall()}
            # A separate statement: under READ COMMITTED it sees what a launcher that held
            # the locks before us committed (the locking statement's snapshot would not).
            by_id = {r["dispatch_id"]: r for r in locked.values()}
            cur = await conn.execute(
                queries.get("launcher_dispatches_recorded"), {"ids": list(by_id)}
            )
            for recorded in await cur.fetchall():
                by_id[recorded["dispatch_id"]].update(recorded)
            log_paths: dict[int, str] = {}
            statuses: list[tuple[int, int, str | None]] = []
            processed: list[dict[str, Any]] = []
            failed: list[tuple[dict[str, Any], Outcome]] = []
            for outcome in relevant:
                row = locked.get(outcome.key)
                if row is None:
                    log.warning("launcher.unknown_dispatch", extra={"key": outcome.key})
                    continue
                if outcome.log_path and outcome.log_path != row["log_path"]:
                    row["log_path"] = log_paths[row["dispatch_id"]] = outcome.log_path
                if outcome.state is RunState.STARTED:
                    if not row["has_started"] and not row["has_terminal"]:
                        row["has_started"] = True
                        statuses.append(
                            (row["dispatch_id"], int(ProcessingStatus.STARTED), outcome.message)
                        )
                        log.info("launcher.started", extra={"key": outcome.key})
                    continue
                forget.append(outcome.key)
                if row["has_terminal"]:
                    continue
                row["has_terminal"] = True
                status = outcome.state.status
                assert status is not None
                statuses.append((row["dispatch_id"], int(status), outcome.message))
                if outcome.state is RunState.PROCESSED:
                    processed.append(row)
                    log.info("launcher.processed", extra={"key": outcome.key})
                else:
                    failed.append((row, outcome))
            if log_paths:
                await conn.execute(
                    queries.get("launcher_set_log_paths"),
                    {"ids": list(log_paths), "log_paths": list(log_paths.values())},
                )
            if statuses:
                await conn.execute(
                    queries.get("launcher_insert_statuses"),
                    {
                        "ids": [d for d, _, _ in statuses],
                        "statuses": [st for _, st, _ in statuses],
                        "messages": [m or None for _, _, m in statuses],
                    },
                )
            if processed:
                await self._register_products(conn, processed)
                await conn.execute(
                    queries.get("launcher_end_tasks"),
                    {"task_ids": [r["task_id"] for r in processed]},
                )
            for row, outcome in failed:
                delay = await self._apply_policy(conn, row, outcome)
                if delay is not None:
                    delays.append(delay)
        for delay in delays:
            self._schedule_wakeup(delay)
        for key in forget:
            try:
                await self.executor.forget(key)
            except errors.ExecutorError as exc:
                log.warning("launcher.forget_failed", extra={"key": key, "error": str(exc)})
        ended = [*processed, *(r for r, _ in failed)]
        return [r["input_id"] for r in ended if r["has_successor"]]

    async def _register_products(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        wanted: list[tuple[int, str, str, int]] = []
        for row in rows:
            try:
                source = self._product_input(row)
            except KeyError:
                log.error("launcher.product_without_routine", extra={"task_id": row["task_id"]})
                continue
            wanted.append(
                (row["input_id"], product_path(source), source.product_type_code, row["task_id"])
            )
        if not wanted:
            return
        cur = await conn.execute(
            queries.get("launcher_insert_products"),
            {
                "input_ids": [w[0] for w in wanted],
                "product_paths": [w[1] for w in wanted],
                "type_codes": [w[2] for w in wanted],
            },
        )
        inserted = {r["input_fk_id"] for r in await cur.fetchall()}
        for input_id, _, type_code, task_id in wanted:
            if input_id not in inserted:
                log.warning(
                    "launcher.product_not_inserted",
                    extra={"task_id": task_id, "product_type": type_code},
                )

    async def _apply_policy(
        self, conn: Connection, row: dict[str, Any], outcome: Outcome
    ) -> float | None:
        """Decide and store what follows an error; the delay before a retry, if any."""
        cur = await conn.execute(queries.get("launcher_task_history"), {"task_id": row["task_id"]})
        history = [
            AttemptRecord(
                ProcessingStatus(h["processing_status_id"]) if h["processing_status_id"] else None,
                _utc(h["date"]),
            )
            for h in await cur.fetchall()
        ]
        now = datetime.now(UTC)
        decision = decide(
            self.policy,
            history,
            extra_attempts=int(row["extra_attempts"] or 0),
            now=now,
            rand=self._rand(),
        )
        extra = {"key": outcome.key, "state": outcome.state.value, "reason": decision.reason}
        if decision.verdict is Verdict.ENDED:
            await conn.execute(queries.get("launcher_end_task"), {"task_id": row["task_id"]})
            log.warning("launcher.failed_for_good", extra=extra)
            return None
        at = decision.at or now
        await conn.execute(
            queries.get("launcher_schedule_retry"), {"task_id": row["task_id"], "at": at}
        )
        log.info("launcher.retry_scheduled", extra={**extra, "at": at.isoformat()})
        return max(0.0, (at - now).total_seconds())

    async def aclose(self) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wakeup
        await self.executor.aclose()
        for role in list(self._conns):
            await self._drop(role)
