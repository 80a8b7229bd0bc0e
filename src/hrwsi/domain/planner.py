"""Plan tasks on the fewest VMs within a horizon and quotas (pure, no I/O).

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
import heapq
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hrwsi.domain import errors, planner_exact
from hrwsi.domain.planning import VM, Instance, LowerBound, Plan, ScheduledTask

DEFAULT_TIME_LIMIT_S = 1.5
"""Search time when the caller gives none; the first schedule is always computed in full."""

_RULE_URGENCY = 0  # routine whose most urgent ready task has the earliest latest-start first
_RULE_WORK = 1  # routine with the most remaining work per VM it may still open first
_RULE_AREA = 2  # routine with the largest remaining resource-time first
_RULE_PRESSURE = 3  # routine whose remaining work most overloads its open VMs (+1) first
_RULES = (_RULE_URGENCY, _RULE_WORK, _RULE_AREA, _RULE_PRESSURE)


@dataclass(frozen=True, slots=True)
class _Strategy:
    """How the list scheduler decides; the search tries several."""

    rule: int = _RULE_URGENCY
    hold: bool = True  # an idle VM stays open while its routine has unassigned tasks
    round_robin: bool = True  # open one VM per routine per round (else fill the first routine)
    lazy: bool = False  # open a VM only when the open ones cannot finish; close spare idle ones
    seed: int | None = None  # random priority offsets on tasks (restarts)


@dataclass(slots=True)
class _Compiled:
    """The instance as flat integer arrays (index-based, fast to simulate)."""

    n: int
    ids: list[str]
    routine_names: list[str]
    cpu: list[int]
    ram: list[int]
    storage: list[int]
    rdur: list[int]
    count: list[int]  # tasks per routine
    task_routine: list[int]
    succ: list[list[int]]
    npred: list[int]
    head: list[int]  # earliest start from the critical path
    latest_start: list[int]  # t_max minus the critical path from the task's start to the end
    t_max: int
    quota: tuple[int, int, int, int]
    floor: tuple[list[int], int] | None = None  # _vm_floor's answer, computed once


@dataclass(slots=True)
class _Schedule:
    """One run of the list scheduler."""

    complete: bool  # every task was assigned
    feasible: bool  # complete and every task ends by t_max
    start: list[int]
    vm_of: list[int]
    vm_routine: list[int]
    vm_start: list[int]
    vm_stop: list[int]
    grow: list[int]  # per routine: suggested VM budget when its budget made tasks late
    n_vms: int
    vm_minutes: int
    makespan: int

    def key(self) -> tuple[int, int, int]:
        return (self.n_vms, self.vm_minutes, self.makespan)


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


# --------------------------------------------------------------------------------------------
# Compilation: validate and flatten.


def _compile(instance: Instance) -> _Compiled:
    limits = instance.limits
    for field_name in ("t_max", "cpu_max", "ram_max", "storage_max", "vm_max"):
        value = getattr(limits, field_name)
        if not isinstance(value, int) or value < 0:
            raise errors.PlanningError(
                f"limits.{field_name} must be an integer >= 0, got {value!r}"
            )
    routine_names = sorted(instance.routines)
    rindex = {name: i for i, name in enumerate(routine_names)}
    cpu: list[int] = []
    ram: list[int] = []
    storage: list[int] = []
    rdur: list[int] = []
    for name in routine_names:
        spec = instance.routines[name]
        for field_name in ("cpu", "ram", "storage"):
            value = getattr(spec, field_name)
            if not isinstance(value, int) or value < 0:
                raise errors.PlanningError(
                    f"routine {name!r}: {field_name} must be an integer >= 0, got {value!r}"
                )
        if not isinstance(spec.duration, int) or spec.duration < 1:
            raise errors.PlanningError(
                f"routine {name!r}: duration must be an integer >= 1 minute, got {spec.duration!r}"
            )
        cpu.append(spec.cpu)
        ram.append(spec.ram)
        storage.append(spec.storage)
        rdur.append(spec.duration)

    tasks = instance.tasks
    n = len(tasks)
    ids = [t.id for t in tasks]
    index: dict[str, int] = {}
    for i, tid in enumerate(ids):
        if tid in index:
            raise errors.PlanningError(f"task id {tid!r} appears twice")
        index[tid] = i
    task_routine = [0] * n
    count = [0] * len(routine_names)
    succ: list[list[int]] = [[] for _ in range(n)]
    npred = [0] * n
    for i, t in enumerate(tasks):
        r = rindex.get(t.routine)
        if r is None:
            raise errors.PlanningError(f"task {t.id!r}: unknown routine {t.routine!r}")
        task_routine[i] = r
        count[r] += 1
        if t.depends_on:
            for dep in set(t.depends_on):
                j = index.get(dep)
                if j is None:
                    raise errors.PlanningError(f"task {t.id!r}: depends on unknown task {dep!r}")
                if j == i:
                    raise errors.PlanningError(f"task {t.id!r} depends on itself")
                succ[j].append(i)
                npred[i] += 1

    order = _topological_order(succ, npred, ids)
    dur = [rdur[r] for r in task_routine]
    head = [0] * n
    for i in order:
        end = head[i] + dur[i]
        for s in succ[i]:
            if head[s] < end:
                head[s] = end
    tail = dur[:]  # longest path from the task's start to the end, the task included
    for i in reversed(order):
        best = 0
        for s in succ[i]:
            if tail[s] > best:
                best = tail[s]
        tail[i] += best
    t_max = limits.t_max
    return _Compiled(
        n=n,
        ids=ids,
        routine_names=routine_names,
        cpu=cpu,
        ram=ram,
        storage=storage,
        rdur=rdur,
        count=count,
        task_routine=task_routine,
        succ=succ,
        npred=npred,
        head=head,
        latest_start=[t_max - x for x in tail],
        t_max=t_max,
        quota=(limits.cpu_max, limits.ram_max, limits.storage_max, limits.vm_max),
    )


def _topological_order(succ: list[list[int]], npred: list[int], ids: list[str]) -> list[int]:
    remaining = npred[:]
    order = [i for i, k in enumerate(remaining) if k == 0]
    pos = 0
    while pos < len(order):
        for s in succ[order[pos]]:
            remaining[s] -= 1
            if remaining[s] == 0:
                order.append(s)
        pos += 1
    if len(order) < len(ids):
        cyclic = sorted(ids[i] for i, k in enumerate(remaining) if k > 0)
        shown = ", ".join(repr(x) for x in cyclic[:5])
        more = f" and {len(cyclic) - 5} more" if len(cyclic) > 5 else ""
        raise errors.PlanningError(f"dependency cycle among tasks {shown}{more}")
    return order


# --------------------------------------------------------------------------------------------
# Lower bounds and proofs of impossibility.


def _routine_bounds(c: _Compiled) -> list[int]:
    """Per routine, the fewest VMs that can run its tasks inside their time windows."""
    nr = len(c.routine_names)
    releases: list[list[int]] = [[] for _ in range(nr)]
    deadlines: list[list[int]] = [[] for _ in range(nr)]
    for i in range(c.n):
        r = c.task_routine[i]
        releases[r].append(c.head[i])
        deadlines[r].append(c.latest_start[i] + c.rdur[r])
    out = [0] * nr
    for r in range(nr):
        if not releases[r]:
            continue
        d = c.rdur[r]
        rel = sorted(releases[r])
        dl = sorted(deadlines[r])
        lo, hi = rel[0], dl[-1]
        need = 1
        # Tasks released at or after rel[k] must all run inside [rel[k], hi].
        m = len(rel)
        for k in range(m):
            if k and rel[k] == rel[k - 1]:
                continue
            per_vm = (hi - rel[k]) // d
            if per_vm <= 0:
                return _unbounded(nr)
            need = max(need, -(-(m - k) // per_vm))
        # Tasks due at or before dl[k] must all run inside [lo, dl[k]].
        for k in range(m - 1, -1, -1):
            if k < m - 1 and dl[k] == dl[k + 1]:
                continue
            per_vm = (dl[k] - lo) // d
            if per_vm <= 0:
                return _unbounded(nr)
            need = max(need, -(-(k + 1) // per_vm))
        out[r] = need
    return out


def _unbounded(nr: int) -> list[int]:
    return [-1] * nr


def _bounds(c: _Compiled) -> tuple[LowerBound, str]:
    """The lower bound and, when one proves the instance impossible, the reason."""
    cpu_max, ram_max, storage_max, vm_max = c.quota
    nr = len(c.routine_names)
    reasons: list[str] = []
    makespan = 0
    for r in range(nr):
        if not c.count[r]:
            continue
        name = c.routine_names[r]
        too_big = [
            f"{label} {need} > {label}_max {cap}"
            for label, need, cap in (
                ("cpu", c.cpu[r], cpu_max),
                ("ram", c.ram[r], ram_max),
                ("storage", c.storage[r], storage_max),
            )
            if need > cap
        ]
        if vm_max < 1:
            too_big.append("vm_max is 0")
        if too_big:
            reasons.append(f"routine {name!r} does not fit the quotas: {', '.join(too_big)}")
    if c.n:
        path = max(c.t_max - ls for ls in c.latest_start)
        makespan = path
        if path > c.t_max:
            reasons.append(f"the longest dependency chain takes {path} min > t_max {c.t_max}")
    if reasons:
        return LowerBound(vms=_vm_bound_or_zero(c), makespan=makespan), "; ".join(reasons)

    # Resource-time area: every quota is held at least for the work that uses it.
    work = [c.count[r] * c.rdur[r] for r in range(nr)]
    for label, per, cap in (
        ("cpu", c.cpu, cpu_max),
        ("ram", c.ram, ram_max),
        ("storage", c.storage, storage_max),
        ("vm", [1] * nr, vm_max),
    ):
        area = sum(per[r] * work[r] for r in range(nr))
        if area and cap:
            needed = -(-area // cap)
            makespan = max(makespan, needed)
            if needed > c.t_max:
                reasons.append(
                    f"{label}-minutes needed {area} > {label}_max {cap} x t_max {c.t_max}"
                )
    # Per routine: at most k of its tasks run at once under the quotas.
    first_head = [c.t_max] * nr
    min_after = [c.t_max] * nr
    for i in range(c.n):
        r = c.task_routine[i]
        if c.head[i] < first_head[r]:
            first_head[r] = c.head[i]
        after = c.t_max - c.latest_start[i] - c.rdur[r]
        if after < min_after[r]:
            min_after[r] = after
    for r in range(nr):
        if not c.count[r]:
            continue
        k = vm_max
        for per, cap in ((c.cpu, cpu_max), (c.ram, ram_max), (c.storage, storage_max)):
            if per[r]:
                k = min(k, cap // per[r])
        span = first_head[r] + -(-c.count[r] // k) * c.rdur[r] + min_after[r]
        makespan = max(makespan, span)
        if span > c.t_max:
            reasons.append(
                f"routine {c.routine_names[r]!r}: at most {k} of its {c.count[r]} tasks run at "
                f"once under the quotas, so they need until minute {span} > t_max {c.t_max}"
            )
    per_routine, vms = _vm_floor(c)
    if any(x < 0 for x in per_routine):
        reasons.append("a routine's tasks do not fit inside their time windows")
    return LowerBound(vms=vms, makespan=makespan), "; ".join(reasons)


def _vm_floor(c: _Compiled) -> tuple[list[int], int]:
    """Per-routine VM floors and a bound on the total, refined by forced concurrency.

    ``k`` VMs of a routine with work ``W`` inside a window of length ``L`` are all alive
    together for at least ``W - (k - 1) * L`` minutes (each lives inside the window and they
    are alive at least ``W`` VM-minutes). If ``k`` of them at once exceed a quota, ``k`` VMs
    cannot do. With every routine at its floor, the forced periods of a set of routines
    overlap for at least the sum of their lengths minus the rest of their common span; if
    their usage together exceeds a quota, or another routine cannot run beside them and so
    loses that time, the floors are contradictory: some routine needs one more VM (+1 on the
    total). If one more VM on any single routine still leaves a contradiction: +2.
    """
    if c.floor is None:
        c.floor = _compute_vm_floor(c)
    return c.floor


_FORCED_SET_MAX = 10  # routines with a forced period considered in subsets (2**10 subsets)


def _compute_vm_floor(c: _Compiled) -> tuple[list[int], int]:
    per_routine = _routine_bounds(c)
    if any(x < 0 for x in per_routine):
        return per_routine, 0
    nr = len(c.routine_names)
    cpu_max, ram_max, sto_max, vm_max = c.quota
    lo = [c.t_max] * nr
    hi = [0] * nr
    for i in range(c.n):
        r = c.task_routine[i]
        if c.head[i] < lo[r]:
            lo[r] = c.head[i]
        due = c.latest_start[i] + c.rdur[r]
        if due > hi[r]:
            hi[r] = due
    work = [c.count[r] * c.rdur[r] for r in range(nr)]
    k = list(per_routine)
    for r in range(nr):
        if not c.count[r]:
            continue
        span = hi[r] - lo[r]
        while work[r] - (k[r] - 1) * span > 0 and (
            k[r] * c.cpu[r] > cpu_max
            or k[r] * c.ram[r] > ram_max
            or k[r] * c.storage[r] > sto_max
            or k[r] > vm_max
        ):
            k[r] += 1
    extra = 0
    if _contradiction(c, k, lo, hi, work):
        extra = 1
        bumped = []
        for r in range(nr):
            if c.count[r]:
                k[r] += 1
                bumped.append(_contradiction(c, k, lo, hi, work))
                k[r] -= 1
        if bumped and all(bumped):
            extra = 2
    return k, sum(k) + extra


def _contradiction(
    c: _Compiled, k: list[int], lo: list[int], hi: list[int], work: list[int]
) -> bool:
    """True when no schedule uses exactly ``k[r]`` VMs for every routine ``r``."""
    cpu_max, ram_max, sto_max, vm_max = c.quota
    nr = len(k)
    forced = [
        max(0, work[r] - (k[r] - 1) * (hi[r] - lo[r])) if c.count[r] else 0 for r in range(nr)
    ]
    holders = sorted((r for r in range(nr) if forced[r]), key=lambda r: -forced[r])
    holders = holders[:_FORCED_SET_MAX]
    for mask in range(1, 1 << len(holders)):
        group = [holders[b] for b in range(len(holders)) if mask >> b & 1]
        g_lo = min(lo[r] for r in group)
        g_hi = max(hi[r] for r in group)
        together = sum(forced[r] for r in group) - (len(group) - 1) * (g_hi - g_lo)
        if together <= 0:
            continue
        use = (
            sum(k[r] * c.cpu[r] for r in group),
            sum(k[r] * c.ram[r] for r in group),
            sum(k[r] * c.storage[r] for r in group),
            sum(k[r] for r in group),
        )
        if use[0] > cpu_max or use[1] > ram_max or use[2] > sto_max or use[3] > vm_max:
            return True
        for s in range(nr):
            if s in group or not c.count[s]:
                continue
            if (
                use[0] + c.cpu[s] <= cpu_max
                and use[1] + c.ram[s] <= ram_max
                and use[2] + c.storage[s] <= sto_max
                and use[3] + 1 <= vm_max
            ):
                continue
            overlap = max(0, min(g_hi, hi[s]) - max(g_lo, lo[s]))
            lost = together - (g_hi - g_lo - overlap)
            if lost <= 0:
                continue
            per_vm = (hi[s] - lo[s] - lost) // c.rdur[s]
            if per_vm <= 0 or c.count[s] > k[s] * per_vm:
                return True
    return False


def _vm_bound_or_zero(c: _Compiled) -> int:
    per_routine, total = _vm_floor(c)
    return 0 if any(x < 0 for x in per_routine) else total


# --------------------------------------------------------------------------------------------
# The list scheduler.


def _simulate(
    c: _Compiled,
    budget: Sequence[int],
    strategy: _Strategy,
) -> _Schedule:
    """Run the event-driven list scheduler once with ``budget[r]`` VMs at most per routine."""
    rule, hold, round_robin = strategy.rule, strategy.hold, strategy.round_robin
    lazy = strategy.lazy
    noise: list[int] | None = None
    if strategy.seed is not None:
        rng = random.Random(strategy.seed)
        spread = max(1, c.t_max // 4)
        noise = [rng.randrange(spread) for _ in range(c.n)]
    n = c.n
    nr = len(c.routine_names)
    cpu, ram, sto, rdur = c.cpu, c.ram, c.storage, c.rdur
    cpu_max, ram_max, sto_max, vm_max = c.quota
    task_routine, succ = c.task_routine, c.succ
    npred = c.npred[:]
    # Priority key: latest start (earlier = more urgent), then index; packed in one int.
    prio = (
        c.latest_start
        if noise is None
        else [a + b for a, b in zip(c.latest_start, noise, strict=True)]
    )
    shift = min(prio) if n else 0
    prio_key = [(p - shift) * n + i for i, p in enumerate(prio)]
    ready: list[list[int]] = [[] for _ in range(nr)]
    for i in range(n):
        if npred[i] == 0:
            ready[task_routine[i]].append(prio_key[i])
    for q in ready:
        heapq.heapify(q)
    ready_at = [0] * n
    unassigned = c.count[:]
    opened = [0] * nr
    idle: list[list[int]] = [[] for _ in range(nr)]
    u_cpu = u_ram = u_sto = u_vm = 0
    vm_routine: list[int] = []
    vm_start: list[int] = []
    vm_stop: list[int] = []
    start = [0] * n
    vm_of = [0] * n
    events: dict[int, list[int]] = {}
    times: list[int] = []
    first_start = [-1] * nr
    area = [rdur[r] * (cpu[r] + ram[r] + sto[r] + 1) for r in range(nr)]
    open_now = [0] * nr
    last_due = [0] * nr
    for i in range(n):
        due = c.latest_start[i] + rdur[task_routine[i]]
        if due > last_due[task_routine[i]]:
            last_due[task_routine[i]] = due
    t = 0
    completed: list[int] = []

    while True:
        # 1. Completions at t: release successors, VMs become idle.
        for task in completed:
            for s in succ[task]:
                npred[s] -= 1
                if npred[s] == 0:
                    heapq.heappush(ready[task_routine[s]], prio_key[s])
                    ready_at[s] = t
            idle[task_routine[task]].append(vm_of[task])
        # 2. Lazy: idle VMs that the routine's other open VMs can do without close now.
        if lazy:
            for r in range(nr):
                free = idle[r]
                while free and unassigned[r] <= (open_now[r] - 1) * _per_vm(
                    last_due[r], t, rdur[r]
                ):
                    free.pop()
                    u_cpu -= cpu[r]
                    u_ram -= ram[r]
                    u_sto -= sto[r]
                    u_vm -= 1
                    open_now[r] -= 1
        # 3. Ready tasks to idle VMs, then close the VMs no longer needed.
        for r in range(nr):
            q = ready[r]
            free = idle[r]
            while q and free:
                vm = free.pop()
                task = heapq.heappop(q) % n
                start[task] = t
                vm_of[task] = vm
                end = t + rdur[r]
                vm_stop[vm] = end
                unassigned[r] -= 1
                bucket = events.get(end)
                if bucket is None:
                    events[end] = [task]
                    heapq.heappush(times, end)
                else:
                    bucket.append(task)
            if free and (not hold or unassigned[r] == 0):
                k = len(free)
                u_cpu -= cpu[r] * k
                u_ram -= ram[r] * k
                u_sto -= sto[r] * k
                u_vm -= k
                open_now[r] -= k
                free.clear()
        # 4. Open new VMs while the budget and the quotas allow, the most critical routine
        # first (re-ranked after each opening; round-robin: fewest opened at this time first).
        opened_now = [0] * nr
        while True:
            chosen = -1
            chosen_key: tuple[int, float] = (0, 0.0)
            for r in range(nr):
                if (
                    not ready[r]
                    or opened[r] >= budget[r]
                    or u_cpu + cpu[r] > cpu_max
                    or u_ram + ram[r] > ram_max
                    or u_sto + sto[r] > sto_max
                    or u_vm >= vm_max
                ):
                    continue
                if lazy and unassigned[r] <= open_now[r] * _per_vm(last_due[r], t, rdur[r]):
                    continue
                if rule == _RULE_URGENCY:
                    score = float(ready[r][0])
                elif rule == _RULE_WORK:
                    score = -unassigned[r] * rdur[r] / (budget[r] - opened[r])
                elif rule == _RULE_AREA:
                    score = -float(area[r] * unassigned[r])
                else:
                    score = -unassigned[r] * rdur[r] / ((open_now[r] + 1) * max(last_due[r] - t, 1))
                key = (opened_now[r] if round_robin else 0, score)
                if chosen < 0 or key < chosen_key:
                    chosen, chosen_key = r, key
            if chosen < 0:
                break
            r = chosen
            opened_now[r] += 1
            u_cpu += cpu[r]
            u_ram += ram[r]
            u_sto += sto[r]
            u_vm += 1
            opened[r] += 1
            open_now[r] += 1
            vm = len(vm_routine)
            vm_routine.append(r)
            vm_start.append(t)
            vm_stop.append(t)
            if first_start[r] < 0:
                first_start[r] = t
            task = heapq.heappop(ready[r]) % n
            start[task] = t
            vm_of[task] = vm
            end = t + rdur[r]
            vm_stop[vm] = end
            unassigned[r] -= 1
            bucket = events.get(end)
            if bucket is None:
                events[end] = [task]
                heapq.heappush(times, end)
            else:
                bucket.append(task)
        if not times:
            break
        t = heapq.heappop(times)
        completed = events.pop(t)

    complete = not any(unassigned)
    makespan = max(vm_stop) if vm_stop else 0
    feasible = complete and makespan <= c.t_max
    grow = list(budget)
    if not feasible:
        grow = _grow(c, budget, opened, start, ready_at, first_start, complete, unassigned)
    return _Schedule(
        complete=complete,
        feasible=feasible,
        start=start,
        vm_of=vm_of,
        vm_routine=vm_routine,
        vm_start=vm_start,
        vm_stop=vm_stop,
        grow=grow,
        n_vms=len(vm_routine),
        vm_minutes=sum(b - a for a, b in zip(vm_start, vm_stop, strict=True)),
        makespan=makespan,
    )


def _per_vm(due: int, t: int, d: int) -> int:
    """Tasks of duration ``d`` one VM can still surely run by ``due`` (busy up to ``d`` now)."""
    return max(0, (due - t) // d - 1)


def _grow(
    c: _Compiled,
    budget: Sequence[int],
    opened: list[int],
    start: list[int],
    ready_at: list[int],
    first_start: list[int],
    complete: bool,
    unassigned: list[int],
) -> list[int]:
    """A larger budget for the routines whose budget made their own tasks late."""
    nr = len(c.routine_names)
    last_end = [0] * nr
    deadline = [0] * nr
    waited_late = [False] * nr
    for i in range(c.n):
        r = c.task_routine[i]
        d = c.rdur[r]
        due = c.latest_start[i] + d
        if due > deadline[r]:
            deadline[r] = due
        if unassigned[r]:
            continue
        end = start[i] + d
        if end > last_end[r]:
            last_end[r] = end
        if end > due and start[i] > ready_at[i]:
            waited_late[r] = True
    grow = list(budget)
    for r in range(nr):
        if opened[r] < budget[r]:
            continue  # the budget did not bind: quotas or dependencies held it back
        k = budget[r]
        if unassigned[r] and not complete:
            grow[r] = k + 1
        elif waited_late[r]:
            s = max(first_start[r], 0)
            room = deadline[r] - s
            want = k + 1
            if room > 0:
                want = max(want, math.ceil(k * (last_end[r] - s) / room))
            grow[r] = min(want, c.count[r])
    return grow


# --------------------------------------------------------------------------------------------
# The search over VM budgets and strategies.


_STRATEGIES = (
    _Strategy(_RULE_URGENCY, hold=True, round_robin=True),
    _Strategy(_RULE_PRESSURE, hold=True, round_robin=True),
    _Strategy(_RULE_PRESSURE, hold=True, round_robin=True, lazy=True),
    _Strategy(_RULE_URGENCY, hold=True, round_robin=True, lazy=True),
    _Strategy(_RULE_WORK, hold=True, round_robin=True),
    _Strategy(_RULE_AREA, hold=True, round_robin=True),
    _Strategy(_RULE_PRESSURE, hold=True, round_robin=False),
    _Strategy(_RULE_URGENCY, hold=True, round_robin=False),
    _Strategy(_RULE_URGENCY, hold=True, round_robin=False, lazy=True),
    _Strategy(_RULE_URGENCY, hold=False, round_robin=True),
    _Strategy(_RULE_PRESSURE, hold=False, round_robin=True),
)
_RESTARTS_WITHOUT_PROGRESS = 200


class _Search:
    """Budget growth under several strategies, reduction, then random restarts, in time."""

    def __init__(self, c: _Compiled, floor: list[int], target: int, deadline: float) -> None:
        self.c = c
        self.floor = floor
        self.deadline = deadline
        self.start_budget = [max(1, x) if c.count[r] else 0 for r, x in enumerate(floor)]
        self.target = max(target, sum(self.start_budget))
        self.best: _Schedule | None = None
        self.best_strategy = _STRATEGIES[0]
        self.pass_seconds = 0.0

    def out_of_time(self) -> bool:
        return time.perf_counter() + self.pass_seconds > self.deadline

    def done(self) -> bool:
        return self.best is not None and self.best.n_vms <= self.target

    def run(self, budget: list[int], strategy: _Strategy) -> _Schedule:
        began = time.perf_counter()
        s = _simulate(self.c, budget, strategy)
        self.pass_seconds = max(self.pass_seconds, time.perf_counter() - began)
        if s.feasible and (self.best is None or s.key() < self.best.key()):
            self.best, self.best_strategy = s, strategy
        return s

    def grow(self, strategy: _Strategy, steps: int = 64, *, force: int = 0) -> None:
        """From the lower bound, grow the budgets of the routines made late by them.

        The first ``force`` steps run whatever the time limit.
        """
        budget = list(self.start_budget)
        for step in range(steps):
            s = self.run(budget, strategy)
            if s.feasible or s.grow == budget or (step >= force and self.out_of_time()):
                return
            budget = s.grow

    def used(self) -> list[int]:
        used = [0] * len(self.c.routine_names)
        if self.best is not None:
            for r in self.best.vm_routine:
                used[r] += 1
        return used

    def reduce(self) -> None:
        """One VM fewer for a routine, under any strategy, while that still plans."""
        improved = True
        while improved and not self.done():
            improved = False
            used = self.used()
            for r in range(len(used)):
                if used[r] <= max(self.floor[r], 1):
                    continue
                budget = list(used)
                budget[r] -= 1
                before = self.best
                others = [x for x in _STRATEGIES if x != self.best_strategy]
                for strategy in (self.best_strategy, *others):
                    if self.out_of_time():
                        return
                    self.run(budget, strategy)
                    if self.best is not before:
                        improved = True
                        break
                if improved:
                    break

    def search(self) -> _Schedule | None:
        # The first strategy and the relaxed run answer whatever the time limit, so that a
        # short limit costs quality, not an answer.
        for k, strategy in enumerate(_STRATEGIES):
            if (k and self.out_of_time()) or self.done():
                break
            self.grow(strategy, force=0 if k else 8)
        if self.best is None:
            # Relaxed: unlimited VMs that close when idle (pure resource-constrained scheduling).
            self.run(list(self.c.count), _Strategy(_RULE_URGENCY, hold=False))
        self.reduce()
        rng = random.Random(self.c.n * 7919 + self.c.t_max)
        stale = 0
        while not self.done() and not self.out_of_time() and stale < _RESTARTS_WITHOUT_PROGRESS:
            strategy = _Strategy(
                rule=rng.choice(_RULES),
                hold=rng.random() < 0.75,
                round_robin=rng.random() < 0.6,
                lazy=rng.random() < 0.5,
                seed=rng.randrange(1 << 30),
            )
            before = self.best
            used = self.used()
            above = [r for r, u in enumerate(used) if u > max(self.floor[r], 1)]
            if self.best is None and rng.random() < 0.3:
                self.run(list(self.c.count), strategy)
            elif above and rng.random() < 0.5:
                # Local move: one VM fewer for a random routine, under a random strategy.
                budget = list(used)
                budget[rng.choice(above)] -= 1
                self.run(budget, strategy)
            else:
                self.grow(strategy, steps=16)
            if self.best is not before:
                stale = 0
                self.reduce()
            else:
                stale += 1
        return self.best


EXHAUSTIVE_MAX_TASKS = 16
"""Up to this many tasks, an instance the heuristics cannot plan is searched exhaustively
(within the time limit, at least :data:`EXHAUSTIVE_MIN_SECONDS`)."""
EXHAUSTIVE_MIN_SECONDS = 0.25

_EXHAUSTIVE_NODES = 300_000


def _exhaustive(c: _Compiled, deadline: float) -> tuple[_Schedule | None, bool]:
    """Complete search for small instances: ``(schedule, proven_impossible)``.

    Every task on its own VM is the most permissive layout (a VM shared by several tasks
    holds its quota at least as long), so the instance has a plan iff the tasks alone can be
    scheduled with each holding its flavour only while it runs. That is resource-constrained
    project scheduling; some optimal schedule is *active*, and the serial schedule generation
    scheme (each task at its earliest feasible start, in some precedence-respecting order)
    generates every active schedule. Depth-first search over those orders, identical tasks
    taken in a fixed order, is therefore complete. A found schedule is then compacted: tasks
    of a routine are chained onto one VM wherever the quotas allow its idle gaps.
    """
    n = c.n
    preds: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for s in c.succ[i]:
            preds[s].append(i)
    signature: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}
    twin_before = [-1] * n
    for i in range(n):
        sig = (c.task_routine[i], tuple(sorted(preds[i])), tuple(sorted(c.succ[i])))
        twin_before[i] = signature.get(sig, -1)
        signature[sig] = i
    caps = c.quota
    res = [(c.cpu[r], c.ram[r], c.storage[r], 1) for r in (c.task_routine[i] for i in range(n))]
    dur = [c.rdur[c.task_routine[i]] for i in range(n)]
    start = [-1] * n
    placed: list[int] = []
    nodes = 0

    def fits(i: int, t: int, end: int) -> bool:
        points = [t] + [start[j] for j in placed if t < start[j] < end]
        for p in points:
            use = [0, 0, 0, 0]
            for j in placed:
                if start[j] <= p < start[j] + dur[j]:
                    for k in range(4):
                        use[k] += res[j][k]
            if any(use[k] + res[i][k] > caps[k] for k in range(4)):
                return False
        return True

    def earliest(i: int) -> int:
        release = max((start[j] + dur[j] for j in preds[i]), default=0)
        candidates = sorted({release, *(start[j] + dur[j] for j in placed)})
        for t in candidates:
            if t < release:
                continue
            if t + dur[i] > c.t_max:
                return -1
            if fits(i, t, t + dur[i]):
                return t
        return -1

    def dfs() -> bool | None:
        nonlocal nodes
        if len(placed) == n:
            return True
        nodes += 1
        if nodes > _EXHAUSTIVE_NODES or (nodes % 256 == 0 and time.perf_counter() > deadline):
            return None
        eligible = [
            i
            for i in range(n)
            if start[i] < 0
            and all(start[j] >= 0 for j in preds[i])
            and (twin_before[i] < 0 or start[twin_before[i]] >= 0)
        ]
        options = []
        for i in eligible:
            t = earliest(i)
            if t < 0:
                return False  # later placements only add load: it never fits in this branch
            options.append((t, i))
        unknown = False
        for t, i in sorted(options):
            start[i] = t
            placed.append(i)
            found = dfs()
            if found:
                return True
            placed.pop()
            start[i] = -1
            if found is None:
                unknown = True
                break
        return None if unknown else False

    outcome = dfs()
    if outcome is None:
        return None, False
    if not outcome:
        return None, True
    return _compact(c, start), False


def _compact(c: _Compiled, start: list[int]) -> _Schedule:
    """Chain tasks of a routine onto shared VMs where the quotas allow the idle gaps."""
    n = c.n
    caps = c.quota
    d = [c.rdur[c.task_routine[i]] for i in range(n)]
    vm_of = list(range(n))
    vm_routine = list(c.task_routine)
    vm_start = list(start)
    vm_stop = [start[i] + d[i] for i in range(n)]
    alive = [True] * n

    def usage_ok(skip: int, a: int, b: int, r: int) -> bool:
        """Can VM ``skip`` of routine ``r`` also hold its quota on [a, b)?"""
        points = {a} | {vm_start[v] for v in range(n) if alive[v] and a < vm_start[v] < b}
        need = (c.cpu[r], c.ram[r], c.storage[r], 1)
        for p in points:
            use = [0, 0, 0, 0]
            for v in range(n):
                if alive[v] and v != skip and vm_start[v] <= p < vm_stop[v]:
                    rv = vm_routine[v]
                    use[0] += c.cpu[rv]
                    use[1] += c.ram[rv]
                    use[2] += c.storage[rv]
                    use[3] += 1
            if any(use[k] + need[k] > caps[k] for k in range(4)):
                return False
        return True

    for i in sorted(range(n), key=lambda x: (start[x], x)):
        r = c.task_routine[i]
        for v in range(n):
            if not alive[v] or v == vm_of[i] or vm_routine[v] != r or vm_stop[v] > start[i]:
                continue
            mine = vm_of[i]
            if vm_start[mine] != start[i] or vm_stop[mine] != start[i] + d[i]:
                break  # the task already leads a merged VM
            # Merge task i's VM into v: v now also holds its quota over the gap.
            alive[mine] = False
            if usage_ok(v, vm_stop[v], start[i], r):
                vm_of[i] = v
                vm_stop[v] = start[i] + d[i]
                break
            alive[mine] = True
    keep = [v for v in range(n) if alive[v] and any(vm_of[i] == v for i in range(n))]
    renumber = {v: k for k, v in enumerate(keep)}
    makespan = max((start[i] + d[i] for i in range(n)), default=0)
    starts = [vm_start[v] for v in keep]
    stops = [vm_stop[v] for v in keep]
    return _Schedule(
        complete=True,
        feasible=True,
        start=list(start),
        vm_of=[renumber[vm_of[i]] for i in range(n)],
        vm_routine=[vm_routine[v] for v in keep],
        vm_start=starts,
        vm_stop=stops,
        grow=[],
        n_vms=len(keep),
        vm_minutes=sum(b - a for a, b in zip(starts, stops, strict=True)),
        makespan=makespan,
    )


def _from_vm_counts(c: _Compiled, layout: tuple[tuple[int, int, int], ...]) -> _Schedule:
    """A schedule from ``(routine, start, task count)`` VMs of independent tasks."""
    pending: list[list[int]] = [[] for _ in c.routine_names]
    for i in range(c.n):
        pending[c.task_routine[i]].append(i)
    start = [0] * c.n
    vm_of = [0] * c.n
    vm_routine: list[int] = []
    vm_start: list[int] = []
    vm_stop: list[int] = []
    for v, (r, first, count) in enumerate(sorted(layout, key=lambda x: (x[1], x[0]))):
        d = c.rdur[r]
        for j in range(count):
            i = pending[r].pop()
            start[i] = first + j * d
            vm_of[i] = v
        vm_routine.append(r)
        vm_start.append(first)
        vm_stop.append(first + count * d)
    return _Schedule(
        complete=True,
        feasible=True,
        start=start,
        vm_of=vm_of,
        vm_routine=vm_routine,
        vm_start=vm_start,
        vm_stop=vm_stop,
        grow=[],
        n_vms=len(vm_routine),
        vm_minutes=sum(b - a for a, b in zip(vm_start, vm_stop, strict=True)),
        makespan=max(vm_stop, default=0),
    )


def _vms(c: _Compiled, s: _Schedule) -> tuple[VM, ...]:
    per_vm: list[list[int]] = [[] for _ in s.vm_routine]
    order = sorted(range(c.n), key=s.start.__getitem__)
    for i in order:
        per_vm[s.vm_of[i]].append(i)
    by_start = sorted(range(len(s.vm_routine)), key=lambda v: (s.vm_start[v], s.vm_routine[v]))
    counters = [0] * len(c.routine_names)
    out: list[VM] = []
    ids, start, rdur = c.ids, s.start, c.rdur
    for v in by_start:
        r = s.vm_routine[v]
        counters[r] += 1
        d = rdur[r]
        mine = per_vm[v]
        flavour = c.routine_names[r]
        out.append(
            VM(
                name=f"vm-{flavour}-{counters[r]}",
                flavour=flavour,
                start=s.vm_start[v],
                stop=s.vm_stop[v],
                tasks=tuple(
                    map(
                        ScheduledTask,
                        [ids[i] for i in mine],
                        (starts := [start[i] for i in mine]),
                        [x + d for x in starts],
                    )
                ),
            )
        )
    return tuple(out)
