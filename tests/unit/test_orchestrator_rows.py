"""The orchestrator's pure steps: plans become rows, quotas left, the largest plannable prefix."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from hrwsi.config import Config, SchedulingConfig
from hrwsi.domain import planner, planning
from hrwsi.services import orchestrator

MAJA = planning.Routine("MAJA", 5, 5, 5, 5)


def vm(name: str, start: int, inputs: list[int], duration: int = 5) -> planning.VM:
    tasks = tuple(
        planning.ScheduledTask(str(i), start + k * duration, start + (k + 1) * duration)
        for k, i in enumerate(inputs)
    )
    return planning.VM(name, "MAJA", start, tasks[-1].end, tasks)


def test_elastic_rows_chain_each_vm_in_plan_order() -> None:
    """Each planned VM is a new row; its first task has no predecessor, the others the one
    before."""
    plan = planning.Plan(
        status="planned", vms=(vm("vm-MAJA-1", 0, [7, 3]), vm("vm-MAJA-2", 0, [9]))
    )
    rows = orchestrator.elastic_rows(plan)
    assert len(set(rows.vm_ids)) == 2
    assert [n.rsplit("-", 1)[0] for n in rows.vm_names] == ["vm-MAJA-1", "vm-MAJA-2"]
    assert rows.task_inputs == [7, 3, 9]
    assert rows.task_preceding == [None, 7, None]
    assert rows.task_vms == [rows.vm_ids[0], rows.vm_ids[0], rows.vm_ids[1]]


def test_pool_rows_append_after_each_worker_and_push_back_shared_workers() -> None:
    """Two planned VMs on one worker run one after the other, after its last live task."""
    worker = orchestrator.PoolWorker(uuid.uuid4(), "node-a", "MAJA", tail_input_id=100)
    plan = planning.Plan(
        status="planned", vms=(vm("vm-MAJA-1", 0, [1, 2]), vm("vm-MAJA-2", 0, [3]))
    )
    rows = orchestrator.pool_rows(plan, [worker])
    assert rows.vm_ids == []
    assert rows.task_inputs == [1, 2, 3]
    assert rows.task_preceding == [100, 1, 2]
    assert rows.task_starts == [0, 5, 10] and rows.task_ends == [5, 10, 15]
    assert rows.oversubscribed_workers == 1


def test_busy_elastic_vms_use_up_the_quotas_and_pool_workers_do_not() -> None:
    """Busy elastic VMs are subtracted from every quota; busy pool workers are not."""
    config = Config(scheduling=SchedulingConfig(cpu_max=20, ram_max=30, storage_max=40, vm_max=3))
    busy = [
        orchestrator.BusyVM(uuid.uuid4(), "a", "MAJA", False, 5, 6, 7),
        orchestrator.BusyVM(uuid.uuid4(), "b", "MAJA", True, 5, 6, 7),
    ]
    limits = orchestrator.remaining_limits(config, busy)
    assert (limits.cpu_max, limits.ram_max, limits.storage_max, limits.vm_max) == (15, 24, 33, 2)
    assert orchestrator.fits(MAJA, limits)
    assert not orchestrator.fits(planning.Routine("BIG", 16, 1, 1, 1), limits)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), per_vm=st.integers(1, 6), vm_max=st.integers(1, 4))
def test_largest_prefix_is_oldest_first_and_plans(n: int, per_vm: int, vm_max: int) -> None:
    """With room for per_vm * vm_max tasks, the prefix planned is the oldest inputs, fits,
    and is within 1/16 of the largest prefix that fits."""
    limits = planning.Limits(
        t_max=5 * per_vm, cpu_max=100, ram_max=100, storage_max=100, vm_max=vm_max
    )
    instance = planning.Instance(
        limits, {"MAJA": MAJA}, tuple(planning.Task(str(i), "MAJA") for i in range(n))
    )
    tried, plan = orchestrator.plan_largest_prefix(
        instance, lambda inst: planner.plan(inst, time_limit_s=0.01)
    )
    assert plan.feasible
    assert tried.tasks == instance.tasks[: len(tried.tasks)]
    best = min(n, per_vm * vm_max)
    assert best - max(1, best // 16) < len(tried.tasks) <= best
