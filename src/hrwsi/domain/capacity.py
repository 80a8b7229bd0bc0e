"""What capacity is left for a planning pass (pure): the quotas minus what busy VMs hold.

VMs that still have a task not ended hold their flavour's cpu / ram / storage and one VM
slot; workers of a fixed pool hold nothing extra (the pool is sized by the operator) but a
pass never plans more VMs than there are workers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from hrwsi.domain import planning


@dataclass(frozen=True, slots=True)
class BusyVM:
    """A VM with a task not ended yet, and the resources its flavour holds."""

    id: uuid.UUID
    name: str
    flavour: str
    pooled: bool
    cpu: int
    ram: int
    storage: int


def remaining(
    quotas: planning.Limits, busy: Sequence[BusyVM], *, pool_size: int | None = None
) -> planning.Limits:
    """``quotas`` minus what busy elastic VMs hold; with a fixed pool of ``pool_size`` workers,
    at most that many VMs. Values may be zero or negative when busy VMs use a quota up."""
    elastic = [vm for vm in busy if not vm.pooled]
    vm_max = quotas.vm_max - len(elastic)
    if pool_size is not None:
        vm_max = min(vm_max, pool_size)
    return planning.Limits(
        t_max=quotas.t_max,
        cpu_max=quotas.cpu_max - sum(vm.cpu for vm in elastic),
        ram_max=quotas.ram_max - sum(vm.ram for vm in elastic),
        storage_max=quotas.storage_max - sum(vm.storage for vm in elastic),
        vm_max=vm_max,
    )


def exhausted(limits: planning.Limits) -> bool:
    """Whether nothing at all can be planned: some quota (or the VM count) is used up."""
    return min(limits.cpu_max, limits.ram_max, limits.storage_max, limits.vm_max) <= 0


def fits(routine: planning.Routine, limits: planning.Limits) -> bool:
    """Whether one task of ``routine`` alone fits the quotas and the horizon."""
    return (
        routine.cpu <= limits.cpu_max
        and routine.ram <= limits.ram_max
        and routine.storage <= limits.storage_max
        and routine.duration <= limits.t_max
        and limits.vm_max >= 1
    )
