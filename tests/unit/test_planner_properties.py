"""Property tests: every plan is valid, never beats its bound; no schedulable instance rejected."""

from __future__ import annotations

import dataclasses
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrwsi.domain import instances, plan_validator, planner
from hrwsi.domain.planning import Instance, Limits, Plan, Routine, Task

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def random_instances(draw: st.DrawFn) -> Instance:
    """Small arbitrary instances: up to 4 routines, 25 tasks, a random DAG, random limits."""
    n_routines = draw(st.integers(1, 4))
    routines = {
        f"r{k}": Routine(
            f"r{k}",
            cpu=draw(st.integers(0, 6)),
            ram=draw(st.integers(0, 6)),
            storage=draw(st.integers(0, 6)),
            duration=draw(st.integers(1, 30)),
        )
        for k in range(n_routines)
    }
    n = draw(st.integers(0, 25))
    tasks = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=2)) if i else []
        tasks.append(
            Task(
                f"t{i}",
                draw(st.sampled_from(sorted(routines))),
                tuple(f"t{d}" for d in set(deps)),
            )
        )
    limits = Limits(
        t_max=draw(st.integers(0, 300)),
        cpu_max=draw(st.integers(0, 20)),
        ram_max=draw(st.integers(0, 20)),
        storage_max=draw(st.integers(0, 20)),
        vm_max=draw(st.integers(0, 6)),
    )
    order = draw(st.permutations(range(n)))
    return Instance(limits, routines, tuple(tasks[i] for i in order))


@SETTINGS
@given(random_instances())
def test_every_plan_passes_the_validator(instance: Instance) -> None:
    """Whatever the instance, the answer passes the independent validator (incl. its bound)."""
    plan = planner.plan(instance, time_limit_s=0.05)
    assert plan_validator.validate(instance, plan) == []
    if plan.feasible:
        assert len(plan.vms) >= plan.lower_bound.vms
        assert plan.makespan >= plan.lower_bound.makespan
    else:
        assert plan.reason


@SETTINGS
@given(st.integers(0, 10**9), st.integers(1, 8), st.integers(1, 4), st.integers(0, 10))
def test_instances_with_a_known_schedule_are_planned(
    seed: int, n_vms: int, n_routines: int, slack: int
) -> None:
    """An instance built around a schedule (limits = its peaks) is planned, never rejected."""
    instance, known = instances.from_known_schedule(
        seed, n_vms=n_vms, n_routines=n_routines, slack=slack
    )
    assert plan_validator.validate(instance, known) == []
    plan = planner.plan(instance, time_limit_s=0.2)
    assert plan.status == "planned", plan.reason
    assert plan_validator.validate(instance, plan) == []


@SETTINGS
@given(st.integers(0, 10**9), st.integers(1, 8), st.integers(1, 4))
def test_lower_bound_never_exceeds_a_real_schedule(seed: int, n_vms: int, n_routines: int) -> None:
    """The bounds are sound: a known schedule never uses fewer VMs or ends earlier."""
    instance, known = instances.from_known_schedule(seed, n_vms=n_vms, n_routines=n_routines)
    bound = planner.lower_bound(instance)
    assert bound.vms <= len(known.vms)
    assert bound.makespan <= known.makespan


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 300))
def test_families_plan_near_their_bound(seed: int, n: int) -> None:
    """Family 1 and 2 instances plan within 10 % (or +1) of the VM lower bound."""
    for instance in (instances.maja_fsc(n, seed=seed), instances.five_routines(n, seed=seed)):
        plan = planner.plan(instance, time_limit_s=0.2)
        assert plan.status == "planned"
        assert plan_validator.validate(instance, plan) == []
        lb = plan.lower_bound.vms
        assert len(plan.vms) <= max(lb + 1, int(lb * 1.1))


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10**9), st.integers(1, 5), st.integers(1, 3))
def test_exhaustive_search_finds_every_known_schedule(
    seed: int, n_vms: int, n_routines: int
) -> None:
    """The complete search (used when heuristics fail) plans every schedulable small instance."""
    instance, _ = instances.from_known_schedule(
        seed, n_vms=n_vms, n_routines=n_routines, max_tasks_per_vm=3
    )
    compiled = planner._compile(instance)
    schedule, proven_impossible = planner._exhaustive(compiled, time.perf_counter() + 10)
    assert not proven_impossible
    assert schedule is not None
    plan = Plan(
        "planned",
        vms=planner._vms(compiled, schedule),
        makespan=schedule.makespan,
        vm_minutes=schedule.vm_minutes,
    )
    assert plan_validator.validate(instance, plan) == []


def test_exhaustive_search_proves_what_no_bound_sees() -> None:
    """Three 5-minute tasks that pairwise cannot share the cpu quota need 15 min: 14 is refuted."""
    a = Routine("A", cpu=2, ram=1, storage=1, duration=5)
    b = Routine("B", cpu=2, ram=1, storage=1, duration=5)
    limits = Limits(t_max=14, cpu_max=3, ram_max=9, storage_max=9, vm_max=9)
    tasks = (Task("a", "A"), Task("b", "B"), Task("c", "A", ("a",)))
    instance = Instance(limits, {"A": a, "B": b}, tasks)
    plan = planner.plan(instance)
    assert plan.status == "impossible"
    assert "exhaustive search" in plan.reason
    feasible = Instance(dataclasses.replace(limits, t_max=15), instance.routines, instance.tasks)
    assert planner.plan(feasible).status == "planned"
