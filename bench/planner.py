"""Planner benchmark: seeded instance families, one row each, against two baselines.

    .venv/bin/python bench/planner.py            # all families (about half a minute)
    .venv/bin/python bench/planner.py --quick    # skip N = 100,000 and the in-process baseline

Columns: family, N, status, VMs, lower bound, gap, VM-minutes, makespan, seconds; then
``v1``: the HR-WSI v1 MatrixScheduler figures quoted in issue 4 (measured on this kind of
machine) with the VM ratio (ours / v1) and speed-up; and ``ff``: a naive first-fit minute-matrix
scheduler run in this process (a stand-in for v1's approach: each task to the first VM of its
flavour that can take it, else a new VM at the first minute the quotas allow; "fail" when it
misses t_max) with the VM ratio ours / ff. Every plan is checked by the independent
validator. Peak RSS is printed at the end (whole process). The planner's default search limit
(1.5 s) applies: instances above their bound use it all, and the machine's load changes both
the seconds and, through the number of restarts, sometimes the VM count.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from hrwsi.domain import instances, plan_validator, planner, planner_exact
from hrwsi.domain.planning import Instance


@dataclass(frozen=True)
class V1:
    vms: int | None  # None: v1 rejected the instance
    seconds: float | None


# Figures of issue 4 (HR-WSI v1 MatrixScheduler on this kind of machine).
V1_FIGURES = {
    ("maja_fsc", 1_000): V1(12, 0.55),
    ("maja_fsc", 10_000): V1(113, 4.5),
    ("five", 2_000): V1(195, None),
    ("five_tight", 200): V1(None, None),
}


def first_fit(instance: Instance) -> tuple[int, float] | None:
    """Naive baseline: (VMs, seconds), or None when it finds no schedule by t_max."""
    began = time.perf_counter()
    lim = instance.limits
    horizon = lim.t_max
    caps = (lim.cpu_max, lim.ram_max, lim.storage_max, lim.vm_max)
    usage = [[0] * (horizon + 1) for _ in range(4)]
    by_id = {t.id: t for t in instance.tasks}
    end: dict[str, int] = {}
    vms: list[list[int]] = []  # [routine index, stop]
    names = sorted(instance.routines)
    pending = sorted(instance.tasks, key=lambda t: len(t.depends_on))
    order: list[str] = []
    seen: set[str] = set()

    def visit(tid: str) -> None:
        stack = [tid]
        while stack:
            cur = stack[-1]
            deps = [d for d in by_id[cur].depends_on if d not in seen]
            if deps:
                stack.extend(deps)
                continue
            stack.pop()
            if cur not in seen:
                seen.add(cur)
                order.append(cur)

    for t in pending:
        visit(t.id)

    def fits(res: tuple[int, int, int, int], a: int, b: int) -> bool:
        return all(usage[k][m] + res[k] <= caps[k] for m in range(a, b) for k in range(4) if res[k])

    def take(res: tuple[int, int, int, int], a: int, b: int) -> None:
        for k in range(4):
            if res[k]:
                row = usage[k]
                for m in range(a, b):
                    row[m] += res[k]

    for tid in order:
        task = by_id[tid]
        r = instance.routines[task.routine]
        res = (r.cpu, r.ram, r.storage, 1)
        ready = max((end[d] for d in task.depends_on), default=0)
        placed = False
        for vm in vms:
            if names[vm[0]] != task.routine:
                continue
            s = max(vm[1], ready)
            if s + r.duration <= horizon and fits(res, vm[1], s + r.duration):
                take(res, vm[1], s + r.duration)
                vm[1] = s + r.duration
                end[tid] = vm[1]
                placed = True
                break
        if not placed:
            for s in range(ready, horizon - r.duration + 1):
                if fits(res, s, s + r.duration):
                    take(res, s, s + r.duration)
                    vms.append([names.index(task.routine), s + r.duration])
                    end[tid] = s + r.duration
                    placed = True
                    break
        if not placed:
            return None
    return len(vms), time.perf_counter() - began


FAMILIES: list[tuple[str, int, Callable[[], Instance]]] = [
    ("maja_fsc", 1_000, lambda: instances.maja_fsc(1_000, seed=1)),
    ("maja_fsc", 10_000, lambda: instances.maja_fsc(10_000, seed=1)),
    ("maja_fsc", 100_000, lambda: instances.maja_fsc(100_000, seed=1)),
    (
        "maja_fsc x10 quotas",
        100_000,
        lambda: instances.maja_fsc(100_000, seed=1, quota=2_000, vm_max=1_000),
    ),
    ("five", 2_000, lambda: instances.five_routines(2_000, seed=1)),
    ("five", 100_000, lambda: instances.five_routines(100_000, seed=1, quota=10_000, vm_max=5_000)),
    ("five_tight", 200, lambda: instances.five_routines(200, seed=1, quota=20, vm_max=10)),
    *[
        (
            f"five_tight s{k}",
            200,
            lambda k=k: instances.five_routines(200, seed=k, quota=20, vm_max=10),
        )
        for k in (2, 3, 4, 5)
    ],
    ("tight q60 (80% ram)", 650, lambda: instances.five_routines(650, seed=1, quota=60, vm_max=20)),
    ("tight q60 (92% ram)", 750, lambda: instances.five_routines(750, seed=1, quota=60, vm_max=20)),
    ("chains", 2_000, lambda: instances.chains(2_000, seed=1, quota=70, vm_max=25)),
    ("chains tight", 2_000, lambda: instances.chains(2_000, seed=0)),
    ("huge s1", 1_000, lambda: instances.huge_routine(1_000, seed=1)),
    ("huge s2", 1_000, lambda: instances.huge_routine(1_000, seed=2)),
    ("huge", 600, lambda: instances.huge_routine(600, seed=1)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest instances")
    args = parser.parse_args()

    header = (
        f"{'family':<20} {'N':>7} {'status':<13} {'VMs':>5} {'LB':>5} {'gap':>6} "
        f"{'VM-min':>8} {'mksp':>5} {'sec':>6} | {'v1 VMs':>6} {'ratio':>6} {'speedup':>7} "
        f"| {'ff VMs':>6} {'ratio':>6} {'ff sec':>6}"
    )
    began = time.perf_counter()
    if planner_exact.warm_up():
        print(f"exact mode: OR-Tools loaded in {time.perf_counter() - began:.1f} s (off the clock)")
    else:
        print("exact mode: OR-Tools not installed (pip install hrwsi[exact]); heuristics only")
    print(header)
    print("-" * len(header))
    invalid = 0
    for family, n, make in FAMILIES:
        if args.quick and n > 10_000:
            continue
        instance = make()
        plan = planner.plan(instance)
        problems = plan_validator.validate(instance, plan)
        invalid += bool(problems)
        lb = plan.lower_bound.vms
        gap = instances.gap(plan)
        v1 = V1_FIGURES.get((family, n))
        v1_vms = "-" if v1 is None else ("reject" if v1.vms is None else str(v1.vms))
        ratio = (
            f"{len(plan.vms) / v1.vms:.2f}"
            if v1 is not None and v1.vms is not None and plan.feasible
            else "-"
        )
        speedup = (
            f"{v1.seconds / plan.seconds:.0f}x"
            if v1 is not None and v1.seconds is not None and plan.feasible
            else "-"
        )
        ff = first_fit(instance) if (not args.quick and n <= 10_000 and plan.feasible) else None
        ff_vms, ff_s = ("-", "-") if ff is None else (str(ff[0]), f"{ff[1]:.2f}")
        ff_ratio = "-" if ff is None else f"{len(plan.vms) / ff[0]:.2f}"
        if ff is None and not args.quick and n <= 10_000 and plan.feasible:
            ff_vms = "fail"
        status = plan.status + ("!" if problems else "")
        print(
            f"{family:<20} {n:>7} {status:<13} {len(plan.vms):>5} {lb:>5} "
            f"{'-' if gap is None else f'{100 * gap:.0f}%':>6} {plan.vm_minutes:>8} "
            f"{plan.makespan:>5} {plan.seconds:>6.3f} | {v1_vms:>6} {ratio:>6} {speedup:>7} "
            f"| {ff_vms:>6} {ff_ratio:>6} {ff_s:>6}",
            flush=True,
        )
        if plan.status != "planned":
            print(f"{'':<20}   reason: {plan.reason[:110]}")
        for p in problems[:3]:
            print(f"{'':<20}   INVALID: {p}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MB; {invalid} invalid plans")
    sys.exit(1 if invalid else 0)


if __name__ == "__main__":
    main()
