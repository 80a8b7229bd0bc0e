"""The exact mode (OR-Tools CP-SAT) for independent tasks: plans and proofs beyond heuristics."""

from __future__ import annotations

import pytest

from hrwsi.domain import instances, plan_validator, planner, planner_exact
from hrwsi.domain.planning import Instance, Limits, Routine, Task

pytest.importorskip("ortools.sat.python.cp_model")

# Ninety-odd percent of the ram quota over the horizon: the heuristics stop at 9 VMs.
TIGHT = instances.five_routines(240, seed=0, quota=20, vm_max=10)


@pytest.fixture(autouse=True)
def _ortools_loaded() -> None:
    planner_exact.warm_up()


def test_exact_mode_reaches_the_bound_where_heuristics_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a tight independent instance CP-SAT plans on the lower bound, below the heuristics."""
    exact = planner.plan(TIGHT, time_limit_s=4.0)
    assert exact.status == "planned"
    assert plan_validator.validate(TIGHT, exact) == []
    assert len(exact.vms) == exact.lower_bound.vms == 7

    monkeypatch.setattr(planner_exact, "affordable", lambda seconds: False)
    heuristic = planner.plan(TIGHT, time_limit_s=0.5)
    assert plan_validator.validate(TIGHT, heuristic) == []
    assert len(heuristic.vms) > len(exact.vms)


def test_exact_mode_proves_impossibility_no_bound_sees() -> None:
    """Twenty independent tasks that cannot share the cpu quota need 100 min: t_max 99 refuted."""
    a = Routine("A", cpu=2, ram=1, storage=1, duration=5)
    b = Routine("B", cpu=2, ram=1, storage=1, duration=5)
    tasks = tuple(Task(f"a{i}", "A") for i in range(10)) + tuple(
        Task(f"b{i}", "B") for i in range(10)
    )
    instance = Instance(
        Limits(t_max=99, cpu_max=3, ram_max=50, storage_max=50, vm_max=50),
        {"A": a, "B": b},
        tasks,
    )
    assert len(tasks) > planner.EXHAUSTIVE_MAX_TASKS
    plan = planner.plan(instance, time_limit_s=2.0)
    assert plan.status == "impossible"
    assert "CP-SAT" in plan.reason


def test_bound_raised_by_exact_proof_never_exceeds_the_plan() -> None:
    """When CP-SAT proves counts infeasible the reported bound rises, never above the plan."""
    instance = instances.huge_routine(1000, seed=1)
    plan = planner.plan(instance, time_limit_s=3.0)
    assert plan_validator.validate(instance, plan) == []
    assert planner.lower_bound(instance).vms <= plan.lower_bound.vms <= len(plan.vms)
