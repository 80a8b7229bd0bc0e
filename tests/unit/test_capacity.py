"""What capacity is left for a planning pass, without a database."""

from __future__ import annotations

import uuid

from hrwsi.domain import capacity, planning

QUOTAS = planning.Limits(t_max=100, cpu_max=10, ram_max=20, storage_max=30, vm_max=4)


def vm(pooled: bool = False, cpu: int = 2, ram: int = 3, storage: int = 4) -> capacity.BusyVM:
    return capacity.BusyVM(uuid.uuid4(), "vm", "MAJA", pooled, cpu, ram, storage)


def test_busy_elastic_vms_hold_their_flavour_and_a_slot() -> None:
    """Two busy elastic VMs take 2x their resources and two VM slots; pool workers nothing."""
    left = capacity.remaining(QUOTAS, [vm(), vm(), vm(pooled=True)])
    assert left == planning.Limits(t_max=100, cpu_max=6, ram_max=14, storage_max=22, vm_max=2)
    assert not capacity.exhausted(left)


def test_a_fixed_pool_bounds_the_vm_count() -> None:
    """With three workers, a pass plans at most three VMs whatever the quota."""
    assert capacity.remaining(QUOTAS, [], pool_size=3).vm_max == 3


def test_a_used_up_quota_leaves_nothing() -> None:
    """Busy VMs using all the cpu leave no capacity (and may go below zero)."""
    left = capacity.remaining(QUOTAS, [vm(cpu=6), vm(cpu=6)])
    assert left.cpu_max == -2
    assert capacity.exhausted(left)


def test_a_routine_fits_only_within_every_quota_and_the_horizon() -> None:
    """Each of cpu, ram, storage, duration and the VM slot can rule a routine out."""
    left = capacity.remaining(QUOTAS, [vm()])
    assert capacity.fits(planning.Routine("R", 8, 17, 26, 100), left)
    for too_big in (
        planning.Routine("R", 9, 1, 1, 1),
        planning.Routine("R", 1, 18, 1, 1),
        planning.Routine("R", 1, 1, 27, 1),
        planning.Routine("R", 1, 1, 1, 101),
    ):
        assert not capacity.fits(too_big, left)
    assert not capacity.fits(
        planning.Routine("R", 1, 1, 1, 1), capacity.remaining(QUOTAS, [vm()] * 4)
    )
