"""The plan validator catches each kind of broken plan, and accepts a correct one."""

from __future__ import annotations

import dataclasses

import pytest

from hrwsi.domain import plan_validator
from hrwsi.domain.planning import (
    VM,
    Instance,
    Limits,
    LowerBound,
    Plan,
    Routine,
    ScheduledTask,
    Task,
)

A = Routine("A", cpu=2, ram=2, storage=2, duration=10)
B = Routine("B", cpu=1, ram=1, storage=1, duration=5)
INSTANCE = Instance(
    Limits(t_max=60, cpu_max=3, ram_max=3, storage_max=3, vm_max=2),
    {"A": A, "B": B},
    (Task("a1", "A"), Task("a2", "A"), Task("b1", "B", ("a1",)), Task("b2", "B")),
)


def good_plan() -> Plan:
    """a1, a2 on one A VM (0-20); b2 then b1 on one B VM (5-15)."""
    vm_a = VM("vm-A-1", "A", 0, 20, (ScheduledTask("a1", 0, 10), ScheduledTask("a2", 10, 20)))
    vm_b = VM("vm-B-1", "B", 5, 15, (ScheduledTask("b2", 5, 10), ScheduledTask("b1", 10, 15)))
    return Plan(
        "planned", vms=(vm_a, vm_b), makespan=20, vm_minutes=30, lower_bound=LowerBound(2, 15)
    )


def with_vm(plan: Plan, k: int, **changes: object) -> Plan:
    vms = list(plan.vms)
    vms[k] = dataclasses.replace(vms[k], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(plan, vms=tuple(vms))


def test_a_correct_plan_is_valid() -> None:
    """The hand-made plan breaks no rule."""
    assert plan_validator.validate(INSTANCE, good_plan()) == []


def test_missing_task() -> None:
    """A task left out is reported."""
    plan = with_vm(good_plan(), 1, tasks=(ScheduledTask("b2", 5, 10),), stop=10)
    assert "task 'b1' is not planned" in plan_validator.validate(INSTANCE, plan)


def test_task_planned_twice() -> None:
    """The same task on two VMs is reported."""
    g = good_plan()
    extra = VM("vm-A-2", "A", 30, 40, (ScheduledTask("a1", 30, 40),))
    plan = dataclasses.replace(g, vms=(*g.vms, extra), vm_minutes=40, makespan=40)
    assert "task 'a1' is planned more than once" in plan_validator.validate(INSTANCE, plan)


def test_wrong_flavour() -> None:
    """A task on a VM of another routine's flavour is reported."""
    bad = with_vm(good_plan(), 1, flavour="A")
    problems = plan_validator.validate(INSTANCE, bad)
    assert any("of routine 'B' runs on 'A' VM" in p for p in problems)


def test_wrong_duration() -> None:
    """A task shorter than its routine is reported."""
    plan = with_vm(
        good_plan(), 0, tasks=(ScheduledTask("a1", 0, 10), ScheduledTask("a2", 10, 19)), stop=19
    )
    assert "task 'a2' lasts 9 min, its routine 10" in plan_validator.validate(INSTANCE, plan)


def test_overlap_on_one_vm() -> None:
    """Two tasks at once on one VM are reported."""
    plan = with_vm(
        good_plan(), 0, tasks=(ScheduledTask("a1", 0, 10), ScheduledTask("a2", 5, 15)), stop=15
    )
    problems = plan_validator.validate(INSTANCE, plan)
    assert any("task 'a2' starts at 5 before the previous task ends at 10" in p for p in problems)


def test_dependency_not_respected() -> None:
    """A task starting before its dependency ended is reported."""
    plan = with_vm(good_plan(), 1, tasks=(ScheduledTask("b1", 5, 10), ScheduledTask("b2", 10, 15)))
    problems = plan_validator.validate(INSTANCE, plan)
    assert "task 'b1' starts at 5 before its dependency 'a1' ends at 10" in problems


def test_beyond_t_max() -> None:
    """A task ending after the horizon is reported."""
    g = good_plan()
    late = VM("vm-A-1", "A", 45, 65, (ScheduledTask("a1", 45, 55), ScheduledTask("a2", 55, 65)))
    plan = dataclasses.replace(g, vms=(late, g.vms[1]), makespan=65)
    problems = plan_validator.validate(INSTANCE, plan)
    assert "task 'a2' ends at 65 > t_max 60" in problems


def test_quota_exceeded_counting_idle_time() -> None:
    """Idle time inside a VM still holds its quota: a third overlapping VM breaks cpu and count."""
    g = good_plan()
    third = VM("vm-B-2", "B", 12, 13 + 5, (ScheduledTask("b2", 13, 18),))
    vm_b = dataclasses.replace(g.vms[1], tasks=(ScheduledTask("b1", 10, 15),), start=10)
    plan = dataclasses.replace(g, vms=(g.vms[0], vm_b, third))
    problems = plan_validator.validate(INSTANCE, plan)
    assert "vm-B-2: starts at 12, its first task at 13" in problems
    assert "cpu 4 exceeds its quota 3 at minute 12" in problems
    assert "VM count 3 exceeds its quota 2 at minute 12" in problems


def test_back_to_back_vms_do_not_overlap() -> None:
    """A VM stopping at minute t and another starting at t are never counted together."""
    instance = dataclasses.replace(INSTANCE, limits=dataclasses.replace(INSTANCE.limits, vm_max=1))
    vm_a = VM("vm-A-1", "A", 0, 20, (ScheduledTask("a1", 0, 10), ScheduledTask("a2", 10, 20)))
    vm_b = VM("vm-B-1", "B", 20, 30, (ScheduledTask("b1", 20, 25), ScheduledTask("b2", 25, 30)))
    plan = Plan("planned", vms=(vm_a, vm_b), makespan=30, vm_minutes=30)
    assert plan_validator.validate(instance, plan) == []


def test_vm_stop_must_be_its_last_task_end() -> None:
    """A VM kept alive after its last task is reported (the quota would be misjudged)."""
    plan = with_vm(good_plan(), 0, stop=25)
    problems = plan_validator.validate(INSTANCE, dataclasses.replace(plan, vm_minutes=35))
    assert "vm-A-1: stops at 25, its last task ends at 20" in problems


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"makespan": 19}, "makespan says 19, the tasks end at 20"),
        ({"vm_minutes": 29}, "vm_minutes says 29, the VMs add up to 30"),
        ({"lower_bound": LowerBound(3, 0)}, "2 VMs beat the lower bound of 3"),
        ({"lower_bound": LowerBound(0, 21)}, "makespan 20 beats the lower bound of 21"),
    ],
)
def test_totals_and_bounds(changes: dict[str, object], words: str) -> None:
    """Wrong makespan or VM-minutes, or a plan better than its own bound, is reported."""
    plan = dataclasses.replace(good_plan(), **changes)  # type: ignore[arg-type]
    assert words in plan_validator.validate(INSTANCE, plan)


def test_unplanned_answers_hold_no_vm_and_give_a_reason() -> None:
    """An impossible answer with VMs, or without a reason, is reported."""
    bad = Plan("impossible", vms=good_plan().vms)
    problems = plan_validator.validate(INSTANCE, bad)
    assert "a plan with status 'impossible' holds VMs" in problems
    assert "a plan with status 'impossible' gives no reason" in problems
    assert plan_validator.validate(INSTANCE, Plan("search_failed", reason="tight")) == []
