"""The launcher: dispatch ready tasks to an executor, record what happens, retry, register products.

``reconcile()`` (called by the runner at start, on ``processing_task_insertion`` and
``processing_tasks_state_processed``, and every ``executor.poll_interval_s``):

1. *Follow open dispatches* (at the first pass, then at most once per interval): each latest
   dispatch of an unfinished task without a terminal status is looked up with
   ``executor.status(key)``. ``UNKNOWN`` → submitted again with the same key only if the
   executor never acknowledged its submit (no ``hrwsi.dispatch_ack`` row: the launcher died
   between recording and submitting, or the submit failed); an acknowledged dispatch the
   executor no longer knows may have run (Nomad garbage-collected it) and ends as an
   external error ("lost track"), which the retry policy turns into the next attempt.
   ``STARTED`` or terminal → recorded as below. This is also how an outcome missed on the
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
   nothing). After commit each attempt is submitted (idempotent on its key) and, once the
   executor has acknowledged it, a ``dispatch_ack`` row is committed.

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
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from hrwsi.config import Config
from hrwsi.db.stores.launcher import (
    LauncherStore,
    NewProduct,
    OpenDispatch,
    PostgresLauncherStore,
    ReadyTask,
    Recorded,
    Role,
)
from hrwsi.domain import errors, outcomes
from hrwsi.domain.retry import (
    AttemptRecord,
    Decision,
    ProductInput,
    RetryPolicy,
    Verdict,
    decide,
    product_path,
)
from hrwsi.executors.base import (
    Attempt,
    Executor,
    Outcome,
    RoutineSpec,
    RunState,
)

log = logging.getLogger(__name__)

LOST_TRACK = "lost track: garbage-collected before its outcome was recorded"


def _input_paths(task: ReadyTask) -> tuple[str, ...]:
    """Every input of the task, the primary first (rules, issue 10)."""
    if task.inputs:
        return tuple(path for _, path in task.inputs)
    return (task.input_path,) if task.input_path else ()


def _rule_meta(task: ReadyTask) -> dict[str, str]:
    """A rule task's params (``HRWSI_META_MODE`` = L2INIT...) and its inputs by role
    (``HRWSI_META_INPUTS``: a JSON object role -> list of paths)."""
    if not task.inputs and not task.params:
        return {}
    by_role: dict[str, list[str]] = {}
    for role, path in task.inputs:
        by_role.setdefault(role, []).append(path)
    return {**dict(task.params), "inputs": json.dumps(by_role, sort_keys=True)}


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


def observation(outcome: Outcome) -> outcomes.Observation | None:
    """An executor's outcome as the recorder sees it (``None``: nothing to record)."""
    status = outcome.state.status
    if status is None:
        return None
    return outcomes.Observation(outcome.key, status, outcome.message, outcome.log_path)


class LauncherService:
    """See the module docstring. ``executor`` is any :class:`hrwsi.executors.base.Executor`;
    ``store`` the launcher's store (default: PostgreSQL at ``db_url``)."""

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
        store: LauncherStore | None = None,
        batch_size: int = 500,
        max_group: int = 500,
        policy: RetryPolicy | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.db_url = db_url
        self.executor = executor
        self.store: LauncherStore = store or PostgresLauncherStore(
            db_url, timeout_s=config.database.connect_timeout_s
        )
        self.interval_s = config.executor.poll_interval_s
        self.batch_size = batch_size
        self.max_group = max_group
        self.policy = policy or retry_policy(config)
        self._rand = rand
        self._lock = asyncio.Lock()
        self._record_lock = asyncio.Lock()
        self._last_follow: float | None = None
        self._wakeup: asyncio.Task[None] | None = None
        self._wakeup_at: float | None = None

    # -- reconcile -----------------------------------------------------------------------

    async def reconcile(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._last_follow is None or now - self._last_follow >= self.interval_s:
                await self._follow_open()
                self._last_follow = now
            await self._stop_cancelled()
            await self._dispatch_ready()
            await self._arm_retry_timer()

    async def follow_open(self) -> None:
        """Look up every open dispatch in the executor now (reconcile does it periodically)."""
        async with self._lock:
            await self._follow_open()
            self._last_follow = time.monotonic()

    def _attempt(self, task: ReadyTask, attempt_number: int) -> Attempt | None:
        try:
            routine = self.config.routine_of_condition(task.processing_condition)
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
        path = product_path(
            self._product_input(
                task.input_id, task.processing_condition, task.tile, task.sensing_start
            )
        )
        return Attempt(
            task_id=task.task_id,
            attempt=attempt_number,
            routine=spec,
            vm_name=task.vm_name,
            input_paths=_input_paths(task),
            product_path=path,
            meta={
                "input_id": str(task.input_id),
                "processing_condition": task.processing_condition,
                "tile": task.tile,
                **_rule_meta(task),
            },
        )

    def _product_input(
        self, input_id: int, condition: str, tile: str, sensing_start: datetime
    ) -> ProductInput:
        routine = self.config.routine_of_condition(condition)
        return ProductInput(
            input_id=input_id,
            processing_condition=condition,
            tile=tile,
            sensing_start=sensing_start,
            product_data_type=routine.product_data_type,
            product_type_code=routine.product_type_code,
        )

    def _product_of(self, d: outcomes.LockedDispatch) -> NewProduct | None:
        try:
            source = self._product_input(
                d.input_id, d.processing_condition, d.tile, d.sensing_start
            )
        except KeyError:
            return None
        return NewProduct(d.input_id, product_path(source), source.product_type_code, d.task_id)

    def _decide(self, d: outcomes.LockedDispatch, history: Sequence[AttemptRecord]) -> Decision:
        now = datetime.now(UTC)
        decision = decide(
            self.policy,
            list(history),
            extra_attempts=d.extra_attempts,
            now=now,
            rand=self._rand(),
        )
        if decision.verdict is Verdict.RETRY_AT and decision.at is None:
            return Decision(decision.verdict, now, decision.reason)
        return decision

    async def _dispatch_ready(self, successors_of: Sequence[int] | None = None) -> None:
        """Claim and submit ready tasks; with ``successors_of`` (input ids), only the tasks
        chained right after those inputs (an index lookup, not a scan of every open task)."""
        while True:
            claim = await self.store.claim(self.batch_size, successors_of)
            claimed: list[Attempt] = []
            misconfigured: list[Outcome] = []
            for task in claim.dispatched:
                attempt = self._attempt(task, task.attempt)
                if attempt is None:
                    misconfigured.append(
                        Outcome(
                            task.key,
                            RunState.EXTERNAL_ERROR,
                            f"no routine configured for processing condition "
                            f"{task.processing_condition!r}",
                        )
                    )
                else:
                    claimed.append(attempt)
            if misconfigured:
                await self._record_group(misconfigured, role="reconcile")
            for attempt in claimed:
                log.info("launcher.dispatched", extra={"key": attempt.key, "vm": attempt.vm_name})
                await self._submit(attempt)
            if claim.locked < self.batch_size:
                return

    async def _submit(self, attempt: Attempt) -> None:
        try:
            await self.executor.submit(attempt)
            # Its own transaction (autocommit), right after the executor acknowledged it.
            await self.store.acknowledge([attempt.key])
        except errors.ExecutorRejected as exc:
            await self._record_group(
                [Outcome(attempt.key, RunState.EXTERNAL_ERROR, f"rejected: {exc}")],
                role="reconcile",
            )
        except errors.ExecutorError as exc:
            # Left open: the next follow pass finds it UNKNOWN and submits it again.
            log.warning("launcher.submit_failed", extra={"key": attempt.key, "error": str(exc)})

    async def _follow_open(self) -> None:
        await self._follow(await self.store.open_dispatches())

    async def _follow(self, rows: Sequence[OpenDispatch]) -> None:
        """Catch up dispatches that were open when the follow pass listed them: what the
        executor reports is recorded as one group; a dispatch it does not know is submitted
        again (same key), unless it has been recorded as ended since the list was read."""
        observed: list[Outcome] = []
        unknown: list[OpenDispatch] = []
        known: list[str] = []
        for row in rows:
            try:
                outcome = await self.executor.status(row.key)
            except errors.ExecutorError as exc:
                log.warning("launcher.status_failed", extra={"key": row.key, "error": str(exc)})
                continue
            if outcome.state is not RunState.UNKNOWN:
                known.append(row.key)  # the executor has it: acknowledged (after a crash)
            if outcome.state is RunState.UNKNOWN:
                unknown.append(row)
            elif outcome.state is RunState.STARTED and row.started:
                continue
            elif outcome.state is not RunState.SUBMITTED:
                observed.append(outcome)
        if known:
            await self.store.acknowledge(known)
        if observed:
            await self._record_group(observed, role="reconcile")
        if not unknown:
            return
        # The recorder may have recorded their end and made the executor forget them since
        # the list was read: then they are not lost, and submitting again would run them twice.
        ended = await self.store.ended_dispatches([row.dispatch_id for row in unknown])
        acknowledged = await self.store.acknowledged_dispatches(
            [row.dispatch_id for row in unknown]
        )
        lost: list[Outcome] = []
        for row in unknown:
            if row.dispatch_id in ended:
                continue
            key = row.key
            if row.dispatch_id in acknowledged:
                # Submitted, and the executor forgot it (GC'd): it may have run; never again.
                log.warning("launcher.lost_track", extra={"key": key})
                lost.append(Outcome(key, RunState.EXTERNAL_ERROR, LOST_TRACK))
                continue
            attempt = self._attempt(row.task, row.task.attempt) if row.task.attempt else None
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
            await self._submit(attempt)
        if lost:
            await self._record_group(lost, role="reconcile")

    # -- cancelled tasks (the console's cancel action) -----------------------------------

    def _canceller(self, key: str) -> Callable[[], Awaitable[None]]:
        async def stop() -> None:
            await self.executor.cancel(key)

        return stop

    async def _stop_cancelled(self) -> None:
        """Stop the open runs of cancelled tasks: each dispatch is locked, the executor asked
        to cancel the run, and the attempt recorded as an external error "cancelled by
        <actor>" in that transaction (so an outcome arriving meanwhile waits for the lock and
        finds the attempt ended). A cancelled task has ended: it is never claimed again."""
        for run in await self.store.cancelled_runs(100):
            try:
                stopped = await self.store.stop_cancelled(run, self._canceller(run.key))
            except errors.ExecutorError as exc:
                log.warning("launcher.cancel_failed", extra={"key": run.key, "error": str(exc)})
                continue
            if not stopped:
                continue
            log.info("launcher.cancelled", extra={"key": run.key, "by": run.cancelled_by})
            with contextlib.suppress(errors.ExecutorError):
                await self.executor.forget(run.key)

    # -- retry wake-up -------------------------------------------------------------------

    async def _arm_retry_timer(self) -> None:
        """Reconcile again when the earliest waiting retry becomes due (before the timer)."""
        at = await self.store.next_retry()
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
                ended = await self._record_group(outcomes, role="outcomes")
        except errors.DatabaseError as exc:
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
                await self._dispatch_ready(successors_of=input_ids)
            except errors.DatabaseError as exc:
                log.warning("launcher.successors_failed", extra={"error": str(exc)})

    async def _record_group(self, group: Sequence[Outcome], *, role: Role) -> list[int]:
        """Record the group in one transaction of the store (see
        :func:`hrwsi.domain.outcomes.changes`), log it, schedule retry wake-ups and make the
        executor forget the runs that ended. Returns the input ids of the tasks that reached
        a terminal state here and have a task chained after them (to dispatch at once)."""
        observations = [o for o in map(observation, group) if o is not None]
        if not observations:
            return []
        recorded = await self.store.record(
            observations, product_of=self._product_of, decide=self._decide, role=role
        )
        self._log(recorded)
        now = datetime.now(UTC)
        for _, decision in recorded.decisions:
            if decision.verdict is not Verdict.ENDED and decision.at is not None:
                self._schedule_wakeup(max(0.0, (decision.at - now).total_seconds()))
        for key in recorded.changes.forget:
            try:
                await self.executor.forget(key)
            except errors.ExecutorError as exc:
                log.warning("launcher.forget_failed", extra={"key": key, "error": str(exc)})
        return recorded.changes.successors_of()

    @staticmethod
    def _log(recorded: Recorded) -> None:
        ch = recorded.changes
        for key in ch.unknown:
            log.warning("launcher.unknown_dispatch", extra={"key": key})
        for key in ch.started:
            log.info("launcher.started", extra={"key": key})
        for d in ch.processed:
            log.info("launcher.processed", extra={"key": d.key})
        for task_id in recorded.without_routine:
            log.error("launcher.product_without_routine", extra={"task_id": task_id})
        for p in recorded.products_not_inserted:
            log.warning(
                "launcher.product_not_inserted",
                extra={"task_id": p.task_id, "product_type": p.type_code},
            )
        failures = {d.key: obs for d, obs in ch.failed}
        for d, decision in recorded.decisions:
            obs = failures[d.key]
            extra = {"key": d.key, "state": obs.status.label, "reason": decision.reason}
            if decision.verdict is Verdict.ENDED:
                log.warning("launcher.failed_for_good", extra=extra)
            else:
                at = decision.at.isoformat() if decision.at else None
                log.info("launcher.retry_scheduled", extra={**extra, "at": at})

    async def aclose(self) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wakeup
        await self.executor.aclose()
        await self.store.aclose()
