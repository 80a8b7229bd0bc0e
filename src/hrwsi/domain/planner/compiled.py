"""The planner's flat model: strategies, the compiled instance, a schedule; compilation."""

from __future__ import annotations

from dataclasses import dataclass

from hrwsi.domain import errors
from hrwsi.domain.planning import Instance

_RULE_URGENCY = 0  # routine whose most urgent ready task has the earliest latest-start first
_RULE_WORK = 1  # routine with the most remaining work per VM it may still open first
_RULE_AREA = 2  # routine with the largest remaining resource-time first
_RULE_PRESSURE = 3  # routine whose remaining work most overloads its open VMs (+1) first
_RULES = (_RULE_URGENCY, _RULE_WORK, _RULE_AREA, _RULE_PRESSURE)


@dataclass(frozen=True, slots=True)
class _Strategy:
    """How the list scheduler decides; the search tries several."""

    rule: int = _RULE_URGENCY
    hold: bool = True  # an idle VM stays open while its routine has unassigned tasks
    round_robin: bool = True  # open one VM per routine per round (else fill the first routine)
    lazy: bool = False  # open a VM only when the open ones cannot finish; close spare idle ones
    seed: int | None = None  # random priority offsets on tasks (restarts)


@dataclass(slots=True)
class _Compiled:
    """The instance as flat integer arrays (index-based, fast to simulate)."""

    n: int
    ids: list[str]
    routine_names: list[str]
    cpu: list[int]
    ram: list[int]
    storage: list[int]
    rdur: list[int]
    count: list[int]  # tasks per routine
    task_routine: list[int]
    succ: list[list[int]]
    npred: list[int]
    head: list[int]  # earliest start from the critical path
    latest_start: list[int]  # t_max minus the critical path from the task's start to the end
    t_max: int
    quota: tuple[int, int, int, int]
    floor: tuple[list[int], int] | None = None  # _vm_floor's answer, computed once


@dataclass(slots=True)
class _Schedule:
    """One run of the list scheduler."""

    complete: bool  # every task was assigned
    feasible: bool  # complete and every task ends by t_max
    start: list[int]
    vm_of: list[int]
    vm_routine: list[int]
    vm_start: list[int]
    vm_stop: list[int]
    grow: list[int]  # per routine: suggested VM budget when its budget made tasks late
    n_vms: int
    vm_minutes: int
    makespan: int

    def key(self) -> tuple[int, int, int]:
        return (self.n_vms, self.vm_minutes, self.makespan)


# --------------------------------------------------------------------------------------------
# Compilation: validate and flatten.


def _compile(instance: Instance) -> _Compiled:
    limits = instance.limits
    for field_name in ("t_max", "cpu_max", "ram_max", "storage_max", "vm_max"):
        value = getattr(limits, field_name)
        if not isinstance(value, int) or value < 0:
            raise errors.PlanningError(
                f"limits.{field_name} must be an integer >= 0, got {value!r}"
            )
    routine_names = sorted(instance.routines)
    rindex = {name: i for i, name in enumerate(routine_names)}
    cpu: list[int] = []
    ram: list[int] = []
    storage: list[int] = []
    rdur: list[int] = []
    for name in routine_names:
        spec = instance.routines[name]
        for field_name in ("cpu", "ram", "storage"):
            value = getattr(spec, field_name)
            if not isinstance(value, int) or value < 0:
                raise errors.PlanningError(
                    f"routine {name!r}: {field_name} must be an integer >= 0, got {value!r}"
                )
        if not isinstance(spec.duration, int) or spec.duration < 1:
            raise errors.PlanningError(
                f"routine {name!r}: duration must be an integer >= 1 minute, got {spec.duration!r}"
            )
        cpu.append(spec.cpu)
        ram.append(spec.ram)
        storage.append(spec.storage)
        rdur.append(spec.duration)

    tasks = instance.tasks
    n = len(tasks)
    ids = [t.id for t in tasks]
    index: dict[str, int] = {}
    for i, tid in enumerate(ids):
        if tid in index:
            raise errors.PlanningError(f"task id {tid!r} appears twice")
        index[tid] = i
    task_routine = [0] * n
    count = [0] * len(routine_names)
    succ: list[list[int]] = [[] for _ in range(n)]
    npred = [0] * n
    for i, t in enumerate(tasks):
        r = rindex.get(t.routine)
        if r is None:
            raise errors.PlanningError(f"task {t.id!r}: unknown routine {t.routine!r}")
        task_routine[i] = r
        count[r] += 1
        if t.depends_on:
            for dep in set(t.depends_on):
                j = index.get(dep)
                if j is None:
                    raise errors.PlanningError(f"task {t.id!r}: depends on unknown task {dep!r}")
                if j == i:
                    raise errors.PlanningError(f"task {t.id!r} depends on itself")
                succ[j].append(i)
                npred[i] += 1

    order = _topological_order(succ, npred, ids)
    dur = [rdur[r] for r in task_routine]
    head = [0] * n
    for i in order:
        end = head[i] + dur[i]
        for s in succ[i]:
            if head[s] < end:
                head[s] = end
    tail = dur[:]  # longest path from the task's start to the end, the task included
    for i in reversed(order):
        best = 0
        for s in succ[i]:
            if tail[s] > best:
                best = tail[s]
        tail[i] += best
    t_max = limits.t_max
    return _Compiled(
        n=n,
        ids=ids,
        routine_names=routine_names,
        cpu=cpu,
        ram=ram,
        storage=storage,
        rdur=rdur,
        count=count,
        task_routine=task_routine,
        succ=succ,
        npred=npred,
        head=head,
        latest_start=[t_max - x for x in tail],
        t_max=t_max,
        quota=(limits.cpu_max, limits.ram_max, limits.storage_max, limits.vm_max),
    )


def _topological_order(succ: list[list[int]], npred: list[int], ids: list[str]) -> list[int]:
    remaining = npred[:]
    order = [i for i, k in enumerate(remaining) if k == 0]
    pos = 0
    while pos < len(order):
        for s in succ[order[pos]]:
            remaining[s] -= 1
            if remaining[s] == 0:
                order.append(s)
        pos += 1
    if len(order) < len(ids):
        cyclic = sorted(ids[i] for i, k in enumerate(remaining) if k > 0)
        shown = ", ".join(repr(x) for x in cyclic[:5])
        more = f" and {len(cyclic) - 5} more" if len(cyclic) > 5 else ""
        raise errors.PlanningError(f"dependency cycle among tasks {shown}{more}")
    return order
