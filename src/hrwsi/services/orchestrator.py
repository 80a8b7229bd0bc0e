"""The planning service: pending inputs become VMs and chained processing tasks.

One pass (:meth:`OrchestratorService.reconcile`) runs in ONE transaction:

1. ``pg_try_advisory_xact_lock``: a single planner across replicas; a pass never waits on
   the lock inside the database. The holder's pass may miss an input committed while it runs,
   and the replica woken for that input found the lock taken: so :meth:`reconcile` tries the
   lock again (backoff 10 ms doubling to 0.5 s, for at most ``interval_s``) and makes its own
   pass once the holder is done; a pass with nothing queued costs about a millisecond.
2. Unchain *orphans*: a task waiting behind a VM predecessor whose input ended unprocessed
   could never become ready (v1 readiness wants that predecessor processed); its
   ``preceding_input_id`` is set to NULL so it can start, and the launcher is woken. Such
   predecessors are found through the backlog (step 3), and all of them by the sweep.
3. Collect the inputs that need a task, oldest first, at most
   ``scheduling.max_inputs_per_pass``: inputs with no task, and inputs whose tasks all ended
   unprocessed while they have had fewer than ``retry.max_tasks_per_input`` tasks. They are
   read from ``hrwsi.orchestrator_backlog`` (0022), a candidate queue that triggers fill in the
   transaction that inserts an input or ends a task unprocessed; the pass re-checks every
   candidate against the tables and drops those that need nothing. So a pass over a few new
   inputs reads a few rows however large the history. The backlog is only a cache: the first
   pass of a service, then one pass every ``sweep_interval_s`` (ten timer intervals), first
   *sweeps* — runs the full query over ``input`` and ``processing_tasks`` and queues whatever
   the triggers missed (rows written by hand, a v1 database, a deleted task).
4. Build a planning instance: one task per input, the routine of its processing condition
   read from the ``processing_condition`` / ``processing_routine`` rows (seeded from config).
5. Plan (the pure planner; in a thread when the pass has over ``INLINE_PLAN_TASKS`` inputs),
   check the plan with the independent validator, and
   write the ``virtual_machine`` rows and ``processing_tasks`` in one set-based statement
   (``INSERT ... SELECT FROM unnest(...)``): ``preceding_input_id`` chains each VM's tasks in
   plan order (NULL for a VM's first task); planned minutes go to ``planned_start_min`` /
   ``planned_end_min``. The 0003 statement trigger then notifies ``processing_task_insertion``.

A crash or cancellation anywhere leaves the transaction uncommitted: nothing half-written.
A unique index (0020) also forbids two live tasks for one input, whatever the lock does.

**Capacity.** VMs that still have a task not ended hold their flavour's cpu / ram / storage
and one VM slot: an elastic pass plans the new VMs within the quotas *left* by those busy VMs
(``vm_max`` minus busy VMs, and so on). When nothing is left, the inputs stay pending and the
next pass (woken when a task ends, processed or not, or by the timer) tries again. Each
pass plans its inputs on new VMs, never at the tail of a busy VM's chain: a new input's task
heads a chain and can be dispatched at once (input → dispatch latency), while the quotas
bound how many VMs are alive together.

**VM names: elastic or a fixed pool.** With ``scheduling.workers`` empty (the default) the pool
is *elastic*: each planned VM becomes a new ``virtual_machine`` row named
``vm-<flavour>-<n>-<8 hex of its uuid>``, with its planned start/stop minutes. With workers
configured the pool is *fixed*: each worker is one ``virtual_machine`` row (``pooled``, found
again by name on every pass); the planner's VMs of a flavour are dealt round-robin to the
workers of that flavour, their chains appended after the worker's last live task (so a worker
runs one task at a time across passes) and their planned minutes pushed back to follow each
other. Inputs whose routine has no worker stay pending (``orchestrator.no_worker_for_flavour``).

**When planning fails.** Inputs whose routine alone exceeds a quota or the horizon are left
pending with ``orchestrator.routine_does_not_fit``. If the planner answers ``impossible`` or
``search_failed`` for the rest, a bisection finds the largest oldest-first prefix that plans
(within 1/16): it is written (``orchestrator.plan_truncated``) and the others wait for the
next pass; when not even one input plans, ``orchestrator.plan_failed`` gives the
planner's reason and nothing is written. A plan the validator rejects is never written
(``orchestrator.plan_invalid``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg.rows import TupleRow

from hrwsi.config import Config
from hrwsi.db import queries
from hrwsi.db.holder import ConnectionHolder
from hrwsi.domain import capacity, errors, planning
from hrwsi.domain.capacity import BusyVM, fits
from hrwsi.services import rules_step

log = logging.getLogger(__name__)

# The planning lock ("hrwsi-orchestrator"): one key shared by every replica.
PLANNING_LOCK_KEY = 0x6872_7773_6F72_6368
# Passes over at most this many inputs plan and validate on the event loop, not in a thread.
INLINE_PLAN_TASKS = 32

Planner = Callable[[planning.Instance], planning.Plan]
Validator = Callable[[planning.Instance, planning.Plan], list[str]]

Outcome = Literal[
    "written",  # tasks were written
    "dry_run",  # a plan was made and nothing written (preview)
    "nothing_pending",  # no input needs a task
    "locked",  # another replica holds the planning lock
    "no_capacity",  # busy VMs use up a quota: wait for them to end
    "plan_failed",  # the planner found no plan, even for one input
    "plan_invalid",  # the validator rejected the plan
]


@dataclass(frozen=True, slots=True)
class PendingInput:
    """An input that needs a task, with the routine of its processing condition."""

    id: int
    condition: str
    routine: str


@dataclass(frozen=True, slots=True)
class PoolWorker:
    """A worker of the fixed pool: its VM row and the input of its last live task."""

    vm_id: uuid.UUID
    name: str
    flavour: str
    tail_input_id: int | None


@dataclass(frozen=True, slots=True)
class PlanRows:
    """Column arrays for ``orchestrator_write_plan``: new VMs, then tasks in chain order."""

    vm_ids: list[uuid.UUID] = field(default_factory=list)
    vm_names: list[str] = field(default_factory=list)
    vm_flavours: list[str] = field(default_factory=list)
    vm_starts: list[int] = field(default_factory=list)
    vm_stops: list[int] = field(default_factory=list)
    task_inputs: list[int] = field(default_factory=list)
    task_vms: list[uuid.UUID] = field(default_factory=list)
    task_preceding: list[int | None] = field(default_factory=list)
    task_starts: list[int] = field(default_factory=list)
    task_ends: list[int] = field(default_factory=list)
    oversubscribed_workers: int = 0

    def params(self) -> dict[str, Any]:
        return {
            "vm_ids": self.vm_ids,
            "vm_names": self.vm_names,
            "vm_flavours": self.vm_flavours,
            "vm_starts": self.vm_starts,
            "vm_stops": self.vm_stops,
            "task_inputs": self.task_inputs,
            "task_vms": self.task_vms,
            "task_preceding": self.task_preceding,
            "task_starts": self.task_starts,
            "task_ends": self.task_ends,
        }


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one pass found, planned and wrote (``hrwsi plan`` prints it)."""

    outcome: Outcome
    inputs_by_condition: dict[str, int] = field(default_factory=dict)
    left_pending: dict[str, int] = field(default_factory=dict)
    instance: planning.Instance | None = None
    plan: planning.Plan | None = None
    vms_written: int = 0
    tasks_written: int = 0
    orphans_released: int = 0
    swept: bool = False
    queued_by_sweep: int = 0
    reason: str = ""
    seconds: float = 0.0

    @property
    def inputs_planned(self) -> int:
        return len(self.instance.tasks) if self.instance is not None else 0

    @property
    def vms_by_flavour(self) -> dict[str, int]:
        if self.plan is None:
            return {}
        return dict(sorted(Counter(vm.flavour for vm in self.plan.vms).items()))


# Pure steps -----------------------------------------------------------------------------


def remaining_limits(config: Config, busy: Sequence[BusyVM]) -> planning.Limits:
    """The configured quotas minus what busy elastic VMs hold (see :mod:`hrwsi.domain.capacity`)."""
    s = config.scheduling
    quotas = planning.Limits(
        t_max=s.t_max_minutes,
        cpu_max=s.cpu_max,
        ram_max=s.ram_max,
        storage_max=s.storage_max,
        vm_max=s.vm_max,
    )
    return capacity.remaining(quotas, busy)


def build_instance(
    pending: Sequence[PendingInput],
    routines: dict[str, planning.Routine],
    limits: planning.Limits,
) -> planning.Instance:
    """One task per input (its id as a string), with only the routines those tasks use."""
    used = {p.routine for p in pending}
    return planning.Instance(
        limits=limits,
        routines={name: routines[name] for name in sorted(used)},
        tasks=tuple(planning.Task(id=str(p.id), routine=p.routine) for p in pending),
    )


def elastic_rows(plan: planning.Plan) -> PlanRows:
    """Rows for a plan on new VMs: one VM row per planned VM, its tasks chained in order."""
    rows = PlanRows()
    for vm in plan.vms:
        vm_id = uuid.uuid4()
        rows.vm_ids.append(vm_id)
        rows.vm_names.append(f"{vm.name}-{vm_id.hex[:8]}")
        rows.vm_flavours.append(vm.flavour)
        rows.vm_starts.append(vm.start)
        rows.vm_stops.append(vm.stop)
        preceding: int | None = None
        for task in vm.tasks:
            rows.task_inputs.append(int(task.id))
            rows.task_vms.append(vm_id)
            rows.task_preceding.append(preceding)
            rows.task_starts.append(task.start)
            rows.task_ends.append(task.end)
            preceding = int(task.id)
    return rows


def pool_rows(plan: planning.Plan, workers: Sequence[PoolWorker]) -> PlanRows:
    """Rows for a plan on the fixed pool: planned VMs dealt round-robin to workers of their
    flavour, each chain appended after the worker's last live task, minutes pushed back so a
    worker's chains follow each other. Every flavour of the plan must have a worker.
    """
    by_flavour: dict[str, list[PoolWorker]] = {}
    for worker in sorted(workers, key=lambda w: w.name):
        by_flavour.setdefault(worker.flavour, []).append(worker)
    tail: dict[uuid.UUID, int | None] = {w.vm_id: w.tail_input_id for w in workers}
    free_at: dict[uuid.UUID, int] = {w.vm_id: 0 for w in workers}
    segments: Counter[uuid.UUID] = Counter()
    dealt: Counter[str] = Counter()
    rows = PlanRows()
    for vm in sorted(plan.vms, key=lambda v: (v.start, v.name)):
        candidates = by_flavour[vm.flavour]
        worker = candidates[dealt[vm.flavour] % len(candidates)]
        dealt[vm.flavour] += 1
        segments[worker.vm_id] += 1
        for task in vm.tasks:
            start = max(task.start, free_at[worker.vm_id])
            end = start + (task.end - task.start)
            rows.task_inputs.append(int(task.id))
            rows.task_vms.append(worker.vm_id)
            rows.task_preceding.append(tail[worker.vm_id])
            rows.task_starts.append(start)
            rows.task_ends.append(end)
            tail[worker.vm_id] = int(task.id)
            free_at[worker.vm_id] = end
    oversubscribed = sum(1 for n in segments.values() if n > 1)
    return PlanRows(
        task_inputs=rows.task_inputs,
        task_vms=rows.task_vms,
        task_preceding=rows.task_preceding,
        task_starts=rows.task_starts,
        task_ends=rows.task_ends,
        oversubscribed_workers=oversubscribed,
    )


def plan_largest_prefix(
    instance: planning.Instance, planner: Planner
) -> tuple[planning.Instance, planning.Plan]:
    """Plan the instance or, when that fails, the largest oldest-first prefix that plans.

    The prefix is found by bisection: at most log2(n) planner calls, stopping once the
    prefix found is within 1/16 of the best (exact for small prefixes). Returns the instance
    of the plan returned; when not even one task plans, the whole instance with the
    planner's (failed) answer for it.
    """
    plan = planner(instance)
    if plan.feasible:
        return instance, plan
    best: tuple[planning.Instance, planning.Plan] | None = None
    lo, hi = 0, len(instance.tasks)  # a prefix of lo tasks plans, one of hi does not
    while hi - lo > max(1, lo // 16):
        mid = (lo + hi) // 2
        tried = dataclasses.replace(instance, tasks=instance.tasks[:mid])
        answer = planner(tried)
        if answer.feasible:
            lo, best = mid, (tried, answer)
        else:
            hi = mid
    return best if best is not None else (instance, plan)


def search_time_limit(tasks: int) -> float:
    """Seconds the planner may search beyond its first schedule: a pass over a few new inputs
    must stay within milliseconds (latency), a backlog of thousands may take over a second.
    """
    return min(1.5, 0.02 + tasks * 1e-4)


def _default_planner() -> Planner:
    from hrwsi.domain import planner

    def plan(instance: planning.Instance) -> planning.Plan:
        return planner.plan(instance, time_limit_s=search_time_limit(len(instance.tasks)))

    return plan


def _default_validator() -> Validator:
    from hrwsi.domain import plan_validator

    return plan_validator.validate


# The service ----------------------------------------------------------------------------


class OrchestratorService:
    """Plans pending inputs onto VMs; see the module docstring for the rules of a pass."""

    name = "orchestrator"
    # input_insertion: new work. processing_task_ended: an input to re-plan.
    # processing_tasks_state_processed: a VM may be free, so inputs waiting for capacity can
    # go now rather than at the next timer pass (a pass with nothing queued costs ~1 ms).
    channels: tuple[str, ...] = (
        "input_insertion",
        "processing_task_ended",
        "processing_tasks_state_processed",
    )
    # ... but capacity freed is a hint: the runner coalesces those wake-ups (~0.1 s), so a
    # stream of processed tasks costs a few passes a second, not one pass per task.
    slow_channels: tuple[str, ...] = ("processing_tasks_state_processed",)

    def __init__(
        self,
        config: Config,
        db_url: str,
        *,
        planner: Planner | None = None,
        validator: Validator | None = None,
        rules: rules_step.RulesStep | None = None,
    ) -> None:
        self.config = config
        # Triggering rules (issue 10): conditions with a non-single rule.
        self._rules = rules if rules is not None else rules_step.from_config(config)
        self._ruled: rules_step.RulesPass | None = None
        self.interval_s = config.scheduling.pass_interval_s
        self._db_url = db_url
        self._planner = planner or _default_planner()
        self._validator = validator or _default_validator()
        self._holder = ConnectionHolder(
            db_url,
            name="orchestrator",
            timeout_s=config.database.connect_timeout_s,
            setup=queries.get("orchestrator_session"),
        )
        self._pool = tuple(config.scheduling.workers)
        self.sweep_interval_s = 10 * self.interval_s
        self._swept_at: float | None = None

    async def reconcile(self) -> None:
        """Plan and write every pending input (several transactions if over the per-pass cap);
        when another replica holds the planning lock, wait for it to finish, then pass."""
        delay, waited = 0.01, 0.0
        while True:
            result = await self.plan_pending(write=True)
            if result.outcome == "locked":
                if waited >= self.interval_s:
                    log.info("orchestrator.lock_wait_gave_up", extra={"waited_s": waited})
                    return
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 0.5)
                continue
            full = result.inputs_planned >= self.config.scheduling.max_inputs_per_pass
            if result.outcome != "written" or not full:
                return

    async def background(self, stop: asyncio.Event) -> None:
        """Nothing outside reconcile: planning is driven by the tables."""
        return

    async def aclose(self) -> None:
        await self._holder.aclose()

    async def plan_pending(self, *, write: bool = True) -> PassResult:
        """One pass. ``write=False`` plans what is pending now and writes nothing (no lock)."""
        started = time.perf_counter()
        conn = await self._connection()
        try:
            async with conn.transaction(force_rollback=not write):
                self._ruled = None
                result = await self._pass(conn, write=write)
                # Rules (issue 10): instances of the tasks just written, in this transaction.
                if write and self._ruled is not None:
                    await self._rules.record(conn, self._ruled)
        except psycopg.OperationalError as exc:
            await self._drop()
            raise errors.DatabaseError(f"orchestrator pass failed: {exc}") from exc
        except psycopg.Error as exc:
            raise errors.DatabaseError(f"orchestrator pass failed: {exc}") from exc
        except asyncio.CancelledError:
            # The server rolls back when the connection goes; a half-cancelled query must
            # not leave this connection in an unknown state for the next pass.
            await self._drop()
            raise
        seconds = time.perf_counter() - started
        if result.swept and write:
            self._swept_at = started
        if result.outcome == "written":
            plan = result.plan
            log.info(
                "orchestrator.planned",
                extra={
                    "inputs": result.inputs_planned,
                    "vms": result.vms_written,
                    "tasks": result.tasks_written,
                    "makespan": plan.makespan if plan else 0,
                    "lower_bound_vms": plan.lower_bound.vms if plan else 0,
                    "planner_s": round(plan.seconds, 4) if plan else 0,
                    "pass_ms": round(seconds * 1000, 2),
                },
            )
        return _with(result, seconds=seconds)

    # internals ------------------------------------------------------------------------

    async def _connection(self) -> psycopg.AsyncConnection[TupleRow]:
        return await self._holder.get()

    async def _drop(self) -> None:
        await self._holder.drop()

    def _sweep_due(self, *, write: bool) -> bool:
        if not write or self._swept_at is None:
            return True
        return time.perf_counter() - self._swept_at >= self.sweep_interval_s

    async def _pass(self, conn: psycopg.AsyncConnection[TupleRow], *, write: bool) -> PassResult:
        released = 0
        swept = self._sweep_due(write=write)
        queued = 0
        async with conn.cursor() as cur:
            if write:
                await cur.execute(queries.get("orchestrator_try_lock"), {"key": PLANNING_LOCK_KEY})
                row = await cur.fetchone()
                if row is None or not row[0]:
                    log.debug("orchestrator.lock_held_elsewhere")
                    return PassResult(outcome="locked")
            if swept:
                await cur.execute(
                    queries.get("orchestrator_sweep_backlog"),
                    {"max_tasks_per_input": self.config.retry.max_tasks_per_input},
                )
                row = await cur.fetchone()
                queued = int(row[0]) if row else 0
                if queued and write:
                    log.info("orchestrator.backlog_swept", extra={"queued": queued})
            # Candidate ids first: every later statement gets them as an array whose size the
            # planner sees, so a queue table's stale statistics cannot turn a pass over three
            # inputs into a scan of the whole history.
            await cur.execute(
                queries.get("orchestrator_backlog_ids"),
                {"limit": self.config.scheduling.max_inputs_per_pass},
            )
            ids = [int(r[0]) for r in await cur.fetchall()]
            # -- rules (issue 10): candidates of ruled conditions become proposals here and
            # leave the v1 path; their primaries are planned below like any other input.
            ruled = rules_step.RulesPass()
            if self._rules:
                ruled = await self._rules.evaluate(conn, ids, timer=swept or not ids)
                self._ruled = ruled
            v1_ids = [i for i in ids if i not in ruled.handled]
            # -- end rules
            if swept or not ids:
                released = await self._release_orphans(cur, ids, swept=swept, write=write)
            pending: list[PendingInput] = []
            routine_rows: list[TupleRow] = []
            busy_rows: list[TupleRow] = []
            if ids or ruled.chosen:
                # One round trip for the rest of the reads (pipeline): under load every await
                # is a turn of a busy event loop, and this is on the input → dispatch path.
                async with conn.pipeline():
                    release = conn.cursor() if write and not swept else None
                    if release is not None:
                        await release.execute(
                            queries.get("orchestrator_release_orphans"), {"ids": ids}
                        )
                    pend = conn.cursor()
                    await pend.execute(
                        queries.get("orchestrator_pending_inputs"),
                        {
                            "ids": v1_ids,
                            "max_tasks_per_input": self.config.retry.max_tasks_per_input,
                        },
                    )
                    routine_cur = conn.cursor()
                    await routine_cur.execute(queries.get("orchestrator_routines"))
                    busy_cur = conn.cursor()
                    await busy_cur.execute(queries.get("orchestrator_busy_vms"))
                if release is not None:
                    row = await release.fetchone()
                    released = int(row[0]) if row else 0
                    if released:
                        log.info("orchestrator.orphans_released", extra={"tasks": released})
                pending = [
                    PendingInput(int(r[0]), str(r[1]), str(r[2])) for r in await pend.fetchall()
                ]
                pending += [PendingInput(*p) for p in ruled.pending()]  # rules (issue 10)
                pending.sort(key=lambda p: p.id)
                routine_rows = await routine_cur.fetchall()
                busy_rows = await busy_cur.fetchall()
            if not pending:
                return PassResult(
                    outcome="nothing_pending",
                    orphans_released=released,
                    swept=swept,
                    queued_by_sweep=queued,
                )
            by_condition = dict(sorted(Counter(p.condition for p in pending).items()))
            routines = {
                str(r[0]): planning.Routine(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]))
                for r in routine_rows
            }
            busy = [
                BusyVM(r[0], str(r[1]), str(r[2]), bool(r[3]), int(r[4]), int(r[5]), int(r[6]))
                for r in busy_rows
            ]
        limits = remaining_limits(self.config, busy)
        if self._pool:
            limits = dataclasses.replace(limits, vm_max=min(limits.vm_max, len(self._pool)))
        base = PassResult(
            outcome="nothing_pending",
            inputs_by_condition=by_condition,
            orphans_released=released,
            swept=swept,
            queued_by_sweep=queued,
        )
        if capacity.exhausted(limits):
            log.info(
                "orchestrator.no_capacity",
                extra={"pending": len(pending), "busy_vms": len(busy)},
            )
            return _with(base, outcome="no_capacity", left_pending={"no_capacity": len(pending)})
        plannable, left = self._plannable(pending, routines, limits)
        if not plannable:
            return _with(base, outcome="plan_failed", left_pending=left, reason="no input fits")
        instance = build_instance(plannable, routines, limits)
        # A small pass plans on the event loop: a thread hop would cost more than the plan
        # (about a millisecond for a few inputs) and delay the dispatch under load.
        inline = len(instance.tasks) <= INLINE_PLAN_TASKS
        if inline:
            tried, plan = plan_largest_prefix(instance, self._planner)
        else:
            tried, plan = await asyncio.to_thread(plan_largest_prefix, instance, self._planner)
        if not plan.feasible:
            log.warning(
                "orchestrator.plan_failed",
                extra={"status": plan.status, "reason": plan.reason, "inputs": len(plannable)},
            )
            left["plan_" + plan.status] = len(plannable)
            return _with(
                base,
                outcome="plan_failed",
                instance=instance,
                plan=plan,
                left_pending=left,
                reason=plan.reason,
            )
        if len(tried.tasks) < len(instance.tasks):
            left["plan_truncated"] = len(instance.tasks) - len(tried.tasks)
            log.warning(
                "orchestrator.plan_truncated",
                extra={"planned": len(tried.tasks), "left": left["plan_truncated"]},
            )
        if inline:
            problems = self._validator(tried, plan)
        else:
            problems = await asyncio.to_thread(self._validator, tried, plan)
        if problems:
            log.error(
                "orchestrator.plan_invalid",
                extra={"problems": len(problems), "first": problems[0]},
            )
            return _with(
                base,
                outcome="plan_invalid",
                instance=tried,
                plan=plan,
                left_pending=left,
                reason=problems[0],
            )
        if not write:
            return _with(base, outcome="dry_run", instance=tried, plan=plan, left_pending=left)
        vms, tasks = await self._write(conn, plan)
        return _with(
            base,
            outcome="written",
            instance=tried,
            plan=plan,
            left_pending=left,
            vms_written=vms,
            tasks_written=tasks,
        )

    async def _release_orphans(
        self, cur: psycopg.AsyncCursor[TupleRow], ids: list[int], *, swept: bool, write: bool
    ) -> int:
        """Unchain orphans behind ``ids`` (all of them after a sweep); how many were released."""
        if not write or not (swept or ids):
            return 0
        if swept:
            await cur.execute(queries.get("orchestrator_release_all_orphans"))
        else:
            await cur.execute(queries.get("orchestrator_release_orphans"), {"ids": ids})
        row = await cur.fetchone()
        released = int(row[0]) if row else 0
        if released:
            log.info("orchestrator.orphans_released", extra={"tasks": released})
        return released

    def _plannable(
        self,
        pending: Sequence[PendingInput],
        routines: dict[str, planning.Routine],
        limits: planning.Limits,
    ) -> tuple[list[PendingInput], dict[str, int]]:
        """The inputs that can go to the planner; the others are counted by reason and logged."""
        pooled = {w.flavour for w in self._pool}
        keep: list[PendingInput] = []
        unroutable: Counter[str] = Counter()
        no_worker: Counter[str] = Counter()
        too_big: Counter[str] = Counter()
        for p in pending:
            routine = routines.get(p.routine)
            if routine is None:
                unroutable[p.routine] += 1
            elif self._pool and p.routine not in pooled:
                no_worker[p.routine] += 1
            elif not fits(routine, limits):
                too_big[p.routine] += 1
            else:
                keep.append(p)
        for flavour, n in no_worker.items():
            log.warning(
                "orchestrator.no_worker_for_flavour", extra={"flavour": flavour, "inputs": n}
            )
        for name, n in too_big.items():
            r = routines[name]
            log.warning(
                "orchestrator.routine_does_not_fit",
                extra={
                    "routine": name,
                    "inputs": n,
                    "needs": f"cpu {r.cpu} ram {r.ram} storage {r.storage} {r.duration} min",
                    "left": f"cpu {limits.cpu_max} ram {limits.ram_max} "
                    f"storage {limits.storage_max} t_max {limits.t_max}",
                },
            )
        for name, n in unroutable.items():
            log.error(
                "orchestrator.routine_unusable",
                extra={
                    "routine": name,
                    "inputs": n,
                    "why": "no positive cpu, ram, storage_space or duration in processing_routine",
                },
            )
        left: dict[str, int] = {}
        if no_worker:
            left["no_worker_for_flavour"] = sum(no_worker.values())
        if too_big:
            left["routine_does_not_fit"] = sum(too_big.values())
        if unroutable:
            left["routine_unusable"] = sum(unroutable.values())
        return keep, left

    async def _write(
        self, conn: psycopg.AsyncConnection[TupleRow], plan: planning.Plan
    ) -> tuple[int, int]:
        async with conn.cursor() as cur:
            if self._pool:
                names = [w.name for w in self._pool]
                await cur.execute(
                    queries.get("orchestrator_ensure_pool"),
                    {"names": names, "flavours": [w.flavour for w in self._pool]},
                )
                await cur.execute(queries.get("orchestrator_pool_workers"), {"names": names})
                workers = [
                    PoolWorker(r[0], str(r[1]), str(r[2]), None if r[3] is None else int(r[3]))
                    for r in await cur.fetchall()
                ]
                rows = pool_rows(plan, workers)
                if rows.oversubscribed_workers:
                    log.warning(
                        "orchestrator.pool_oversubscribed",
                        extra={
                            "workers": rows.oversubscribed_workers,
                            "planned_vms": len(plan.vms),
                        },
                    )
            else:
                rows = elastic_rows(plan)
            await cur.execute(queries.get("orchestrator_write_plan"), rows.params())
            row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def _with(result: PassResult, **changes: Any) -> PassResult:
    return dataclasses.replace(result, **changes)
