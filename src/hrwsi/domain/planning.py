"""Plain data for planning: an instance (tasks, routines, limits) and a plan (VMs and tasks).

Times are whole minutes from 0. A VM has the flavour of one routine and runs that routine's
tasks one after another; it holds its flavour's cpu, ram, storage and one VM slot from its
first task's start to its last task's end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

PlanStatus = Literal["planned", "impossible", "search_failed"]


@dataclass(frozen=True, slots=True)
class Routine:
    name: str
    cpu: int
    ram: int
    storage: int
    duration: int


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    routine: str
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    t_max: int
    cpu_max: int
    ram_max: int
    storage_max: int
    vm_max: int


@dataclass(frozen=True, slots=True)
class Instance:
    limits: Limits
    routines: Mapping[str, Routine]
    tasks: tuple[Task, ...]


@dataclass(frozen=True, slots=True)
class ScheduledTask:
    id: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class VM:
    name: str
    flavour: str
    start: int
    stop: int
    tasks: tuple[ScheduledTask, ...]


@dataclass(frozen=True, slots=True)
class LowerBound:
    vms: int
    makespan: int


@dataclass(frozen=True, slots=True)
class Plan:
    """A planner's answer. ``status`` says whether it planned, proved impossibility, or gave up."""

    status: PlanStatus
    reason: str = ""
    vms: tuple[VM, ...] = ()
    makespan: int = 0
    vm_minutes: int = 0
    lower_bound: LowerBound = field(default_factory=lambda: LowerBound(0, 0))
    seconds: float = 0.0

    @property
    def feasible(self) -> bool:
        return self.status == "planned"
