"""Exact planning of independent tasks with OR-Tools CP-SAT (optional extra ``exact``).

Without dependencies the tasks of a routine are interchangeable, so a plan is fully described
by its VMs: a routine, a start, and a number ``m`` of tasks run back to back (an idle gap would
only hold the quota longer). That gives a small model, whatever the number of tasks: per
routine a handful of optional intervals of length ``m * duration``, their task counts summing
to the routine's tasks, and one cumulative constraint per quota (cpu, ram, storage, VM count)
over all of them. Minimising the VMs present, then the makespan, is exact for this model, so
"infeasible" is a proof and "optimal" is the fewest VMs possible.

The planner calls :func:`solve_independent` when its heuristics stay above the lower bound or
find nothing, with the remaining half of its time limit; it is skipped when ``ortools`` is not
installed (``pip install hrwsi[exact]``) or when the limit cannot cover its first import
(about 1 s: numpy and pandas come with it) — a long-running process calls :func:`warm_up` once.
Pure computation: no I/O.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
from dataclasses import dataclass
from typing import Literal

MAX_CANDIDATE_VMS = 400
"""Models with more candidate VMs than this are not attempted (answer ``unknown``)."""


@dataclass(frozen=True, slots=True)
class Load:
    """One routine's share of an instance."""

    count: int  # tasks
    duration: int
    cpu: int
    ram: int
    storage: int
    floor: int  # proven lower bound on this routine's VMs


@dataclass(frozen=True, slots=True)
class Answer:
    """``found`` (with VMs as ``(routine index, start, tasks)``), ``infeasible`` or ``unknown``."""

    status: Literal["found", "infeasible", "unknown"]
    vms: tuple[tuple[int, int, int], ...] = ()
    optimal: bool = False  # found: no plan has fewer VMs


IMPORT_SECONDS = 2.0
"""Allowance for the first import of OR-Tools (it loads numpy and pandas: about 1 s)."""


def available() -> bool:
    """True when OR-Tools is installed."""
    return importlib.util.find_spec("ortools") is not None


def loaded() -> bool:
    """True when OR-Tools' CP-SAT module is already imported in this process."""
    return "ortools.sat.python.cp_model" in sys.modules


def warm_up() -> bool:
    """Import OR-Tools now (a long-running process does it once, off the clock).

    Returns whether it is available.
    """
    if not available():
        return False
    importlib.import_module("ortools.sat.python.cp_model")
    return True


def affordable(seconds: float) -> bool:
    """Whether an exact solve fits in ``seconds``, counting the first import if still due."""
    return available() and seconds >= 0.05 + (0.0 if loaded() else IMPORT_SECONDS)


def solve_independent(
    loads: list[Load],
    quota: tuple[int, int, int, int],
    t_max: int,
    *,
    max_vms: int | None,
    seconds: float,
) -> Answer:
    """Fewest VMs (then earliest makespan) for independent tasks; at most ``max_vms`` VMs.

    ``infeasible`` proves that no plan with at most ``max_vms`` VMs exists (``None``: none at
    all). ``seconds`` bounds the solver's wall time.
    """
    from ortools.sat.python import cp_model

    floors = sum(ld.floor for ld in loads if ld.count)
    bounds: list[int] = []
    for ld in loads:
        if not ld.count:
            bounds.append(0)
            continue
        most = ld.count if max_vms is None else min(ld.count, max_vms - (floors - ld.floor))
        if most < max(ld.floor, 1):
            return Answer("infeasible")
        bounds.append(most)
    if sum(bounds) > MAX_CANDIDATE_VMS:
        return Answer("unknown")

    model = cp_model.CpModel()
    intervals: list[cp_model.IntervalVar] = []
    demands: list[list[int]] = [[], [], [], []]
    present: list[cp_model.IntVar] = []
    lengths: list[cp_model.IntVar] = []
    makespan = model.new_int_var(0, t_max, "makespan")
    per_routine: list[list[tuple[cp_model.IntVar, cp_model.IntVar, cp_model.IntVar]]] = []
    for r, ld in enumerate(loads):
        vms: list[tuple[cp_model.IntVar, cp_model.IntVar, cp_model.IntVar]] = []
        cap = min(t_max // ld.duration, ld.count)
        for v in range(bounds[r]):
            tasks = model.new_int_var(0, cap, f"m{r}_{v}")
            used = model.new_bool_var(f"p{r}_{v}")
            model.add(tasks >= 1).only_enforce_if(used)
            model.add(tasks == 0).only_enforce_if(~used)
            start = model.new_int_var(0, t_max, f"s{r}_{v}")
            end = model.new_int_var(0, t_max, f"e{r}_{v}")
            length = model.new_int_var(0, cap * ld.duration, f"l{r}_{v}")
            model.add(length == ld.duration * tasks)
            lengths.append(length)
            intervals.append(model.new_optional_interval_var(start, length, end, used, f"i{r}_{v}"))
            for k, amount in enumerate((ld.cpu, ld.ram, ld.storage, 1)):
                demands[k].append(amount)
            model.add(makespan >= end).only_enforce_if(used)
            present.append(used)
            vms.append((tasks, used, start))
        for (a, _, _), (b, _, _) in itertools.pairwise(vms):
            model.add(a >= b)  # VMs of a routine are interchangeable: order them
        if vms:
            model.add(sum(tasks for tasks, _, _ in vms) == ld.count)
        per_routine.append(vms)
    for k in range(4):
        model.add_cumulative(intervals, demands[k], quota[k])
    # Redundant but strong: VMs taking more than half of some quota never overlap each other,
    # so their lengths add up within the horizon.
    wide = [v for v in range(len(intervals)) if any(2 * demands[k][v] > quota[k] for k in range(4))]
    if len(wide) > 1:
        model.add_no_overlap([intervals[v] for v in wide])
        model.add(sum(lengths[v] for v in wide) <= t_max)
    if max_vms is not None:
        model.add(sum(present) <= max_vms)
    model.minimize(sum(present) * (t_max + 1) + makespan)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, seconds)
    solver.parameters.num_workers = 2
    status = solver.solve(model)
    if status == cp_model.INFEASIBLE:
        return Answer("infeasible")
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Answer("unknown")
    found: list[tuple[int, int, int]] = []
    for r, vms in enumerate(per_routine):
        for tasks, used, start in vms:
            if solver.value(used):
                found.append((r, int(solver.value(start)), int(solver.value(tasks))))
    return Answer("found", tuple(found), optimal=status == cp_model.OPTIMAL)
