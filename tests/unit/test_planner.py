"""The planner: valid plans on the issue's families, proofs of impossibility, malformed input."""

from __future__ import annotations

import pytest

from hrwsi.domain import errors, instances, plan_validator, planner
from hrwsi.domain.planning import Instance, Limits, Plan, Routine, Task


def planned(instance: Instance, **kwargs: float) -> Plan:
    """Plan ``instance``, assert it planned and that the validator accepts the plan."""
    plan = planner.plan(instance, **kwargs)
    assert plan.status == "planned", plan.reason
    assert plan_validator.validate(instance, plan) == []
    return plan


def limits(t_max: int = 900, quota: int = 200, vm_max: int = 100) -> Limits:
    return Limits(t_max=t_max, cpu_max=quota, ram_max=quota, storage_max=quota, vm_max=vm_max)


A = Routine("A", cpu=2, ram=2, storage=2, duration=10)
B = Routine("B", cpu=1, ram=3, storage=1, duration=4)


def test_maja_fsc_family_uses_the_lower_bound_of_vms() -> None:
    """Family 1 at N=1,000 (v1: 12 VMs) plans on the 5 VMs of its lower bound."""
    plan = planned(instances.maja_fsc(1000, seed=3))
    assert plan.lower_bound.vms == 5
    assert len(plan.vms) == 5


def test_five_routines_family_within_ten_percent_of_the_bound() -> None:
    """Family 2 (N=600, loose quotas) stays within 10 % (or +1) of the VM lower bound."""
    plan = planned(instances.five_routines(600, seed=1))
    lb = plan.lower_bound.vms
    assert len(plan.vms) <= max(lb + 1, int(lb * 1.1))


def test_tight_quota_family_that_v1_rejected_is_planned() -> None:
    """Family 3 (quotas 20, vm_max 10, N=200), rejected by HR-WSI v1, is planned by t_max."""
    for seed in range(5):
        instance = instances.five_routines(200, seed=seed, quota=20, vm_max=10)
        plan = planned(instance)
        assert plan.makespan <= 900
        assert len(plan.vms) <= plan.lower_bound.vms + 1


def test_one_huge_routine_among_small_ones() -> None:
    """A routine holding most of the quota runs alone in turns while small ones fill the rest."""
    plan = planned(instances.huge_routine(400, seed=2))
    huge_vms = [vm for vm in plan.vms if vm.flavour == "HUGE"]
    assert huge_vms
    assert sum(len(vm.tasks) for vm in huge_vms) == 2


def test_dependency_chains_respect_order() -> None:
    """Chains across four routines plan and every link starts after its predecessor ended."""
    instance = instances.chains(200, seed=4)
    plan = planned(instance)
    assert plan.makespan >= plan.lower_bound.makespan


def test_single_chain_makespan_is_its_length() -> None:
    """A lone chain A -> B -> A runs back to back: makespan = sum of durations."""
    tasks = (Task("1", "A"), Task("2", "B", ("1",)), Task("3", "A", ("2",)))
    instance = Instance(limits(), {"A": A, "B": B}, tasks)
    plan = planned(instance)
    assert plan.makespan == 24
    assert plan.lower_bound.makespan == 24


def test_tasks_share_a_vm_instead_of_opening_new_ones() -> None:
    """Ten independent 10-minute tasks with a 100-minute horizon fit on one VM."""
    instance = Instance(limits(t_max=100), {"A": A}, tuple(Task(str(i), "A") for i in range(10)))
    plan = planned(instance)
    assert len(plan.vms) == 1
    assert plan.vm_minutes == 100


def test_tight_horizon_forces_parallel_vms() -> None:
    """Eleven 10-minute tasks in 100 minutes need two VMs, and the bound says so."""
    instance = Instance(limits(t_max=100), {"A": A}, tuple(Task(str(i), "A") for i in range(11)))
    plan = planned(instance)
    assert len(plan.vms) == plan.lower_bound.vms == 2


def test_vm_quota_staggers_vms_in_time() -> None:
    """With vm_max 1 two flavours take turns: never two VMs alive at once."""
    tasks = tuple(Task(f"a{i}", "A") for i in range(3)) + tuple(
        Task(f"b{i}", "B") for i in range(3)
    )
    instance = Instance(limits(t_max=42, vm_max=1), {"A": A, "B": B}, tasks)
    plan = planned(instance)
    assert len(plan.vms) == 2
    first, second = sorted(plan.vms, key=lambda vm: vm.start)
    assert first.stop <= second.start


def test_empty_instance_plans_no_vm() -> None:
    """No task: planned, no VM, makespan 0."""
    plan = planned(Instance(limits(), {"A": A}, ()))
    assert plan.vms == () and plan.makespan == 0


@pytest.mark.parametrize(
    "instance",
    [
        instances.five_routines(300, seed=9),
        instances.five_routines(200, seed=1, quota=20, vm_max=10),
        instances.chains(400, seed=2, quota=70, vm_max=25),
    ],
)
def test_zero_time_limit_still_answers(instance: Instance) -> None:
    """time_limit_s=0 costs quality, never the answer: even tight instances are planned."""
    planned(instance, time_limit_s=0.0)


def test_lower_bound_function_matches_the_plan() -> None:
    """lower_bound(instance) is the bound the plan reports."""
    instance = instances.maja_fsc(400, seed=5)
    assert planner.lower_bound(instance) == planner.plan(instance).lower_bound


@pytest.mark.parametrize(
    ("instance", "words"),
    [
        (
            Instance(limits(quota=1), {"A": A}, (Task("1", "A"),)),
            "does not fit the quotas: cpu 2 > cpu_max 1",
        ),
        (
            Instance(limits(vm_max=0), {"A": A}, (Task("1", "A"),)),
            "vm_max is 0",
        ),
        (
            Instance(
                limits(t_max=25),
                {"A": A},
                (Task("1", "A"), Task("2", "A", ("1",)), Task("3", "A", ("2",))),
            ),
            "longest dependency chain takes 30 min > t_max 25",
        ),
        (
            Instance(
                limits(t_max=100, quota=4), {"A": A}, tuple(Task(str(i), "A") for i in range(21))
            ),
            "cpu-minutes needed 420 > cpu_max 4 x t_max 100",
        ),
        (
            Instance(
                Limits(t_max=100, cpu_max=100, ram_max=3, storage_max=100, vm_max=100),
                {"A": A},
                tuple(Task(str(i), "A") for i in range(11)),
            ),
            "at most 1 of its 11 tasks run at once",
        ),
    ],
)
def test_impossible_only_with_a_proof(instance: Instance, words: str) -> None:
    """Each kind of proof gives status impossible, no VMs and the reason in words."""
    plan = planner.plan(instance)
    assert plan.status == "impossible"
    assert words in plan.reason
    assert plan_validator.validate(instance, plan) == []


@pytest.mark.parametrize(
    ("tasks", "words"),
    [
        ((Task("1", "A", ("2",)), Task("2", "A", ("1",))), "dependency cycle among tasks '1', '2'"),
        ((Task("1", "A", ("1",)),), "depends on itself"),
        ((Task("1", "Z"),), "unknown routine 'Z'"),
        ((Task("1", "A", ("9",)),), "depends on unknown task '9'"),
        ((Task("1", "A"), Task("1", "A")), "task id '1' appears twice"),
    ],
)
def test_malformed_instances_raise_planning_error(tasks: tuple[Task, ...], words: str) -> None:
    """A cycle, an unknown routine or task, or a duplicate id is a PlanningError, not a plan."""
    with pytest.raises(errors.PlanningError, match=words):
        planner.plan(Instance(limits(), {"A": A}, tasks))


def test_non_positive_duration_is_malformed() -> None:
    """A routine of 0 minutes is rejected as malformed."""
    bad = Routine("A", 1, 1, 1, 0)
    with pytest.raises(errors.PlanningError, match="duration must be an integer >= 1"):
        planner.plan(Instance(limits(), {"A": bad}, (Task("1", "A"),)))


def test_vm_names_follow_flavour_and_number() -> None:
    """VMs are named vm-<flavour>-<n>, numbered from 1 per flavour in order of start."""
    plan = planned(instances.maja_fsc(200, seed=0))
    names = [vm.name for vm in plan.vms if vm.flavour == "MAJA"]
    assert names == [f"vm-MAJA-{k}" for k in range(1, len(names) + 1)]


def test_unproven_failure_is_search_failed_not_impossible() -> None:
    """Beyond the complete search's size, a failure without proof says search_failed."""
    a = Routine("A", cpu=2, ram=1, storage=1, duration=5)
    b = Routine("B", cpu=2, ram=1, storage=1, duration=5)
    # One dependency keeps the exact model for independent tasks out of the picture.
    tasks = tuple(Task(f"a{i}", "A") for i in range(10)) + tuple(
        Task(f"b{i}", "B", ("a0",) if i == 0 else ()) for i in range(10)
    )
    instance = Instance(
        Limits(t_max=99, cpu_max=3, ram_max=50, storage_max=50, vm_max=50),
        {"A": a, "B": b},
        tasks,
    )
    assert len(tasks) > planner.EXHAUSTIVE_MAX_TASKS
    plan = planner.plan(instance, time_limit_s=0.1)
    assert plan.status == "search_failed"
    assert "no schedule found" in plan.reason
    assert plan_validator.validate(instance, plan) == []
