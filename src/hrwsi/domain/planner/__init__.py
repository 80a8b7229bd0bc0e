"""Plan tasks on the fewest VMs within a horizon and quotas (pure, no I/O).

The package follows the sections of the method: :mod:`.compiled` (the flat model),
:mod:`.bounds`, :mod:`.scheduler` (the list scheduler), :mod:`.search`, :mod:`.exhaustive`
and :mod:`.layouts` (schedules to planned VMs); this module is the entry point.

The model (see :mod:`hrwsi.domain.planning`): a VM has the flavour of one routine and runs that
routine's tasks one after another; it holds its flavour's cpu, ram, storage and one VM slot from
its first task's start to its last task's end; a task starts once all its dependencies ended.
Objective, in order: every task ends by ``t_max`` with no quota exceeded at any minute; fewest
VMs; fewest VM-minutes; earliest makespan.

How it plans:

1. **Bounds and proofs.** Critical-path heads and tails give every task a window
   ``[head, t_max - tail_after]``. A VM of a routine of duration ``d`` runs at most
   ``(b - a) // d`` tasks inside ``[a, b]``, which bounds each routine's VM count from below
   (tightened over every release / deadline threshold); the per-routine bounds add up because a
   VM has one flavour; forced concurrency (``k`` VMs with work ``W`` in a window ``L`` are all
   alive together ``W - (k - 1) * L`` minutes) can add VMs (see :func:`_vm_floor`). The
   makespan is bounded by the critical path, by resource-time area over
   each quota (``sum(cpu * d) / cpu_max`` ...), and per routine by how many of its tasks can run
   at once under the quotas. An instance is *impossible* only when such a bound exceeds ``t_max``
   or a routine does not fit the quotas at all.
2. **Search.** An event-driven list scheduler runs with a VM budget per routine: at each event
   time it hands ready tasks (most urgent latest-start first) to idle VMs of their routine and
   opens new VMs while the budget and the quotas *at that instant* allow, the most critical
   routine first. Usage only drops between two openings, so checking at the opening is exact:
   the quota profile is event based, never a per-minute array. The budget starts at the lower
   bound and grows in proportion to the lateness of routines whose budget held their tasks
   back. Several strategies (routine priority rules, round-robin or greedy opening, VMs kept
   while their routine has work or opened/closed lazily to free quota for others) are tried in
   turn, then a reduction pass tries one VM fewer per routine, then random restarts, all
   within the time limit. The first strategy (and an unlimited-VM relaxation if it fails)
   always runs in full, so a short limit costs quality, never the answer.
3. **Exact model for independent tasks** (no dependencies, OR-Tools installed, time left):
   CP-SAT over VM layouts (see :mod:`hrwsi.domain.planner_exact`), bottom-up from the lower
   bound, with half the time limit; each infeasible count raises the bound, so what it finds
   uses the fewest VMs possible.
4. **Complete search for small instances** (at most :data:`EXHAUSTIVE_MAX_TASKS` tasks) that
   the heuristics could not plan: depth-first over all active schedules, each task on its own
   VM; it finds a plan or proves there is none (see :func:`_exhaustive`).
5. **Answer.** ``planned`` with the best schedule; ``impossible`` with the proof; or
   ``search_failed`` when no schedule was found although none of the proofs applies.

The run time is dominated by a few linear passes: 100,000 tasks plan in about 0.7 s on an idle
core of this machine when the first budget works.
"""

from __future__ import annotations

import gc
import time

from hrwsi.domain import planner_exact
from hrwsi.domain.planner.bounds import _bounds, _vm_floor
from hrwsi.domain.planner.compiled import _compile as _compile
from hrwsi.domain.planner.exhaustive import (
    EXHAUSTIVE_MAX_TASKS,
    EXHAUSTIVE_MIN_SECONDS,
)
from hrwsi.domain.planner.exhaustive import _exhaustive as _exhaustive
from hrwsi.domain.planner.layouts import _from_vm_counts
from hrwsi.domain.planner.layouts import _vms as _vms
from hrwsi.domain.planner.search import _Search
from hrwsi.domain.planning import Instance, LowerBound, Plan

DEFAULT_TIME_LIMIT_S = 1.5
"""Search time when the caller gives none; the first schedule is always computed in full."""


def plan(instance: Instance, *, time_limit_s: float | None = None) -> Plan:
    """Plan ``instance``; raises :class:`errors.PlanningError` if it is malformed.

    ``time_limit_s`` bounds the search after the first schedule (``None``: a default of
    :data:`DEFAULT_TIME_LIMIT_S`); a larger limit can only improve the answer.
    """
    # The planner allocates millions of small objects and creates no reference cycles: the
    # cyclic collector would only rescan them (it doubled the time at 100,000 tasks).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan(instance, time_limit_s)
    finally:
        if collecting:
            gc.enable()


def _plan(instance: Instance, time_limit_s: float | None) -> Plan:
    began = time.perf_counter()
    c = _compile(instance)
    bound, reason = _bounds(c)
    if reason:
        return Plan(
            status="impossible",
            reason=reason,
            lower_bound=bound,
            seconds=time.perf_counter() - began,
        )
    if c.n == 0:
        return Plan(status="planned", lower_bound=bound, seconds=time.perf_counter() - began)
    limit = DEFAULT_TIME_LIMIT_S if time_limit_s is None else max(0.0, time_limit_s)
    floor, total = _vm_floor(c)
    exact = not any(c.npred) and planner_exact.affordable(limit / 2)
    # With the exact model at hand, the heuristics get half the time and CP-SAT the rest.
    best = _Search(c, floor, total, began + (limit / 2 if exact else limit)).search()
    remaining = began + limit - time.perf_counter()
    if exact and (best is None or best.n_vms > total) and planner_exact.affordable(remaining):
        loads = [
            planner_exact.Load(c.count[r], c.rdur[r], c.cpu[r], c.ram[r], c.storage[r], floor[r])
            for r in range(len(c.routine_names))
        ]
        if best is None:
            # No plan yet: the whole model either finds one or proves there is none.
            answer = planner_exact.solve_independent(
                loads, c.quota, c.t_max, max_vms=None, seconds=remaining
            )
            if answer.status == "infeasible":
                return Plan(
                    status="impossible",
                    reason=(
                        "no schedule exists: the exact model of these independent tasks "
                        "(CP-SAT over every VM layout) has no solution by t_max within the "
                        "quotas"
                    ),
                    lower_bound=bound,
                    seconds=time.perf_counter() - began,
                )
            if answer.status == "found":
                best = _from_vm_counts(c, answer.vms)
        else:
            # Bottom-up from the lower bound: each "infeasible" proves one more VM is needed,
            # so the first layout found uses the fewest VMs possible.
            target = total
            while target < best.n_vms:
                remaining = began + limit - time.perf_counter()
                if not planner_exact.affordable(remaining):
                    break
                answer = planner_exact.solve_independent(
                    loads, c.quota, c.t_max, max_vms=target, seconds=remaining
                )
                if answer.status == "found":
                    best = _from_vm_counts(c, answer.vms)
                    break
                if answer.status != "infeasible":
                    break
                target += 1
            bound = LowerBound(vms=max(bound.vms, target), makespan=bound.makespan)
    if best is None and c.n <= EXHAUSTIVE_MAX_TASKS:
        best, proven = _exhaustive(c, began + max(limit, EXHAUSTIVE_MIN_SECONDS))
        if proven:
            return Plan(
                status="impossible",
                reason=(
                    f"no schedule exists: an exhaustive search over every active schedule of "
                    f"the {c.n} tasks, each on its own VM (the most permissive layout), "
                    f"finds none that ends by t_max {c.t_max} within the quotas"
                ),
                lower_bound=bound,
                seconds=time.perf_counter() - began,
            )
    if best is None:
        return Plan(
            status="search_failed",
            reason=(
                "no schedule found within the search limits, although no bound proves the "
                "instance impossible (quotas or the horizon are probably tight)"
            ),
            lower_bound=bound,
            seconds=time.perf_counter() - began,
        )
    vms = _vms(c, best)
    return Plan(
        status="planned",
        vms=vms,
        makespan=best.makespan,
        vm_minutes=best.vm_minutes,
        lower_bound=bound,
        seconds=time.perf_counter() - began,
    )


def lower_bound(instance: Instance) -> LowerBound:
    """Lower bounds on the VM count and makespan of any schedule of ``instance``."""
    return _bounds(_compile(instance))[0]
