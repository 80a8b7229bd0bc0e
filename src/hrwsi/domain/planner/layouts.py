"""Schedules from start times or VM layouts, and the planned VMs of a schedule."""

from __future__ import annotations

from hrwsi.domain.planner.compiled import _Compiled, _Schedule
from hrwsi.domain.planning import VM, ScheduledTask


def _compact(c: _Compiled, start: list[int]) -> _Schedule:
    """Chain tasks of a routine onto shared VMs where the quotas allow the idle gaps."""
    n = c.n
    caps = c.quota
    d = [c.rdur[c.task_routine[i]] for i in range(n)]
    vm_of = list(range(n))
    vm_routine = list(c.task_routine)
    vm_start = list(start)
    vm_stop = [start[i] + d[i] for i in range(n)]
    alive = [True] * n

    def usage_ok(skip: int, a: int, b: int, r: int) -> bool:
        """Can VM ``skip`` of routine ``r`` also hold its quota on [a, b)?"""
        points = {a} | {vm_start[v] for v in range(n) if alive[v] and a < vm_start[v] < b}
        need = (c.cpu[r], c.ram[r], c.storage[r], 1)
        for p in points:
            use = [0, 0, 0, 0]
            for v in range(n):
                if alive[v] and v != skip and vm_start[v] <= p < vm_stop[v]:
                    rv = vm_routine[v]
                    use[0] += c.cpu[rv]
                    use[1] += c.ram[rv]
                    use[2] += c.storage[rv]
                    use[3] += 1
            if any(use[k] + need[k] > caps[k] for k in range(4)):
                return False
        return True

    for i in sorted(range(n), key=lambda x: (start[x], x)):
        r = c.task_routine[i]
        for v in range(n):
            if not alive[v] or v == vm_of[i] or vm_routine[v] != r or vm_stop[v] > start[i]:
                continue
            mine = vm_of[i]
            if vm_start[mine] != start[i] or vm_stop[mine] != start[i] + d[i]:
                break  # the task already leads a merged VM
            # Merge task i's VM into v: v now also holds its quota over the gap.
            alive[mine] = False
            if usage_ok(v, vm_stop[v], start[i], r):
                vm_of[i] = v
                vm_stop[v] = start[i] + d[i]
                break
            alive[mine] = True
    keep = [v for v in range(n) if alive[v] and any(vm_of[i] == v for i in range(n))]
    renumber = {v: k for k, v in enumerate(keep)}
    makespan = max((start[i] + d[i] for i in range(n)), default=0)
    starts = [vm_start[v] for v in keep]
    stops = [vm_stop[v] for v in keep]
    return _Schedule(
        complete=True,
        feasible=True,
        start=list(start),
        vm_of=[renumber[vm_of[i]] for i in range(n)],
        vm_routine=[vm_routine[v] for v in keep],
        vm_start=starts,
        vm_stop=stops,
        grow=[],
        n_vms=len(keep),
        vm_minutes=sum(b - a for a, b in zip(starts, stops, strict=True)),
        makespan=makespan,
    )


def _from_vm_counts(c: _Compiled, layout: tuple[tuple[int, int, int], ...]) -> _Schedule:
    """A schedule from ``(routine, start, task count)`` VMs of independent tasks."""
    pending: list[list[int]] = [[] for _ in c.routine_names]
    for i in range(c.n):
        pending[c.task_routine[i]].append(i)
    start = [0] * c.n
    vm_of = [0] * c.n
    vm_routine: list[int] = []
    vm_start: list[int] = []
    vm_stop: list[int] = []
    for v, (r, first, count) in enumerate(sorted(layout, key=lambda x: (x[1], x[0]))):
        d = c.rdur[r]
        for j in range(count):
            i = pending[r].pop()
            start[i] = first + j * d
            vm_of[i] = v
        vm_routine.append(r)
        vm_start.append(first)
        vm_stop.append(first + count * d)
    return _Schedule(
        complete=True,
        feasible=True,
        start=start,
        vm_of=vm_of,
        vm_routine=vm_routine,
        vm_start=vm_start,
        vm_stop=vm_stop,
        grow=[],
        n_vms=len(vm_routine),
        vm_minutes=sum(b - a for a, b in zip(vm_start, vm_stop, strict=True)),
        makespan=max(vm_stop, default=0),
    )


def _vms(c: _Compiled, s: _Schedule) -> tuple[VM, ...]:
    per_vm: list[list[int]] = [[] for _ in s.vm_routine]
    order = sorted(range(c.n), key=s.start.__getitem__)
    for i in order:
        per_vm[s.vm_of[i]].append(i)
    by_start = sorted(range(len(s.vm_routine)), key=lambda v: (s.vm_start[v], s.vm_routine[v]))
    counters = [0] * len(c.routine_names)
    out: list[VM] = []
    ids, start, rdur = c.ids, s.start, c.rdur
    for v in by_start:
        r = s.vm_routine[v]
        counters[r] += 1
        d = rdur[r]
        mine = per_vm[v]
        flavour = c.routine_names[r]
        out.append(
            VM(
                name=f"vm-{flavour}-{counters[r]}",
                flavour=flavour,
                start=s.vm_start[v],
                stop=s.vm_stop[v],
                tasks=tuple(
                    map(
                        ScheduledTask,
                        [ids[i] for i in mine],
                        (starts := [start[i] for i in mine]),
                        [x + d for x in starts],
                    )
                ),
            )
        )
    return tuple(out)
