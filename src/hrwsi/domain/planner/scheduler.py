"""The list scheduler: one run with a VM budget per routine and a strategy."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence

from hrwsi.domain.planner.compiled import (
    _RULE_AREA,
    _RULE_URGENCY,
    _RULE_WORK,
    _Compiled,
    _Schedule,
    _Strategy,
)

# --------------------------------------------------------------------------------------------
# The list scheduler.


def _simulate(
    c: _Compiled,
    budget: Sequence[int],
    strategy: _Strategy,
) -> _Schedule:
    """Run the event-driven list scheduler once with ``budget[r]`` VMs at most per routine."""
    rule, hold, round_robin = strategy.rule, strategy.hold, strategy.round_robin
    lazy = strategy.lazy
    noise: list[int] | None = None
    if strategy.seed is not None:
        rng = random.Random(strategy.seed)
        spread = max(1, c.t_max // 4)
        noise = [rng.randrange(spread) for _ in range(c.n)]
    n = c.n
    nr = len(c.routine_names)
    cpu, ram, sto, rdur = c.cpu, c.ram, c.storage, c.rdur
    cpu_max, ram_max, sto_max, vm_max = c.quota
    task_routine, succ = c.task_routine, c.succ
    npred = c.npred[:]
    # Priority key: latest start (earlier = more urgent), then index; packed in one int.
    prio = (
        c.latest_start
        if noise is None
        else [a + b for a, b in zip(c.latest_start, noise, strict=True)]
    )
    shift = min(prio) if n else 0
    prio_key = [(p - shift) * n + i for i, p in enumerate(prio)]
    ready: list[list[int]] = [[] for _ in range(nr)]
    for i in range(n):
        if npred[i] == 0:
            ready[task_routine[i]].append(prio_key[i])
    for q in ready:
        heapq.heapify(q)
    ready_at = [0] * n
    unassigned = c.count[:]
    opened = [0] * nr
    idle: list[list[int]] = [[] for _ in range(nr)]
    u_cpu = u_ram = u_sto = u_vm = 0
    vm_routine: list[int] = []
    vm_start: list[int] = []
    vm_stop: list[int] = []
    start = [0] * n
    vm_of = [0] * n
    events: dict[int, list[int]] = {}
    times: list[int] = []
    first_start = [-1] * nr
    area = [rdur[r] * (cpu[r] + ram[r] + sto[r] + 1) for r in range(nr)]
    open_now = [0] * nr
    last_due = [0] * nr
    for i in range(n):
        due = c.latest_start[i] + rdur[task_routine[i]]
        if due > last_due[task_routine[i]]:
            last_due[task_routine[i]] = due
    t = 0
    completed: list[int] = []

    while True:
        # 1. Completions at t: release successors, VMs become idle.
        for task in completed:
            for s in succ[task]:
                npred[s] -= 1
                if npred[s] == 0:
                    heapq.heappush(ready[task_routine[s]], prio_key[s])
                    ready_at[s] = t
            idle[task_routine[task]].append(vm_of[task])
        # 2. Lazy: idle VMs that the routine's other open VMs can do without close now.
        if lazy:
            for r in range(nr):
                free = idle[r]
                while free and unassigned[r] <= (open_now[r] - 1) * _per_vm(
                    last_due[r], t, rdur[r]
                ):
                    free.pop()
                    u_cpu -= cpu[r]
                    u_ram -= ram[r]
                    u_sto -= sto[r]
                    u_vm -= 1
                    open_now[r] -= 1
        # 3. Ready tasks to idle VMs, then close the VMs no longer needed.
        for r in range(nr):
            q = ready[r]
            free = idle[r]
            while q and free:
                vm = free.pop()
                task = heapq.heappop(q) % n
                start[task] = t
                vm_of[task] = vm
                end = t + rdur[r]
                vm_stop[vm] = end
                unassigned[r] -= 1
                bucket = events.get(end)
                if bucket is None:
                    events[end] = [task]
                    heapq.heappush(times, end)
                else:
                    bucket.append(task)
            if free and (not hold or unassigned[r] == 0):
                k = len(free)
                u_cpu -= cpu[r] * k
                u_ram -= ram[r] * k
                u_sto -= sto[r] * k
                u_vm -= k
                open_now[r] -= k
                free.clear()
        # 4. Open new VMs while the budget and the quotas allow, the most critical routine
        # first (re-ranked after each opening; round-robin: fewest opened at this time first).
        opened_now = [0] * nr
        while True:
            chosen = -1
            chosen_key: tuple[int, float] = (0, 0.0)
            for r in range(nr):
                if (
                    not ready[r]
                    or opened[r] >= budget[r]
                    or u_cpu + cpu[r] > cpu_max
                    or u_ram + ram[r] > ram_max
                    or u_sto + sto[r] > sto_max
                    or u_vm >= vm_max
                ):
                    continue
                if lazy and unassigned[r] <= open_now[r] * _per_vm(last_due[r], t, rdur[r]):
                    continue
                if rule == _RULE_URGENCY:
                    score = float(ready[r][0])
                elif rule == _RULE_WORK:
                    score = -unassigned[r] * rdur[r] / (budget[r] - opened[r])
                elif rule == _RULE_AREA:
                    score = -float(area[r] * unassigned[r])
                else:
                    score = -unassigned[r] * rdur[r] / ((open_now[r] + 1) * max(last_due[r] - t, 1))
                key = (opened_now[r] if round_robin else 0, score)
                if chosen < 0 or key < chosen_key:
                    chosen, chosen_key = r, key
            if chosen < 0:
                break
            r = chosen
            opened_now[r] += 1
            u_cpu += cpu[r]
            u_ram += ram[r]
            u_sto += sto[r]
            u_vm += 1
            opened[r] += 1
            open_now[r] += 1
            vm = len(vm_routine)
            vm_routine.append(r)
            vm_start.append(t)
            vm_stop.append(t)
            if first_start[r] < 0:
                first_start[r] = t
            task = heapq.heappop(ready[r]) % n
            start[task] = t
            vm_of[task] = vm
            end = t + rdur[r]
            vm_stop[vm] = end
            unassigned[r] -= 1
            bucket = events.get(end)
            if bucket is None:
                events[end] = [task]
                heapq.heappush(times, end)
            else:
                bucket.append(task)
        if not times:
            break
        t = heapq.heappop(times)
        completed = events.pop(t)

    complete = not any(unassigned)
    makespan = max(vm_stop) if vm_stop else 0
    feasible = complete and makespan <= c.t_max
    grow = list(budget)
    if not feasible:
        grow = _grow(c, budget, opened, start, ready_at, first_start, complete, unassigned)
    return _Schedule(
        complete=complete,
        feasible=feasible,
        start=start,
        vm_of=vm_of,
        vm_routine=vm_routine,
        vm_start=vm_start,
        vm_stop=vm_stop,
        grow=grow,
        n_vms=len(vm_routine),
        vm_minutes=sum(b - a for a, b in zip(vm_start, vm_stop, strict=True)),
        makespan=makespan,
    )


def _per_vm(due: int, t: int, d: int) -> int:
    """Tasks of duration ``d`` one VM can still surely run by ``due`` (busy up to ``d`` now)."""
    return max(0, (due - t) // d - 1)


def _grow(
    c: _Compiled,
    budget: Sequence[int],
    opened: list[int],
    start: list[int],
    ready_at: list[int],
    first_start: list[int],
    complete: bool,
    unassigned: list[int],
) -> list[int]:
    """A larger budget for the routines whose budget made their own tasks late."""
    nr = len(c.routine_names)
    last_end = [0] * nr
    deadline = [0] * nr
    waited_late = [False] * nr
    for i in range(c.n):
        r = c.task_routine[i]
        d = c.rdur[r]
        due = c.latest_start[i] + d
        if due > deadline[r]:
            deadline[r] = due
        if unassigned[r]:
            continue
        end = start[i] + d
        if end > last_end[r]:
            last_end[r] = end
        if end > due and start[i] > ready_at[i]:
            waited_late[r] = True
    grow = list(budget)
    for r in range(nr):
        if opened[r] < budget[r]:
            continue  # the budget did not bind: quotas or dependencies held it back
        k = budget[r]
        if unassigned[r] and not complete:
            grow[r] = k + 1
        elif waited_late[r]:
            s = max(first_start[r], 0)
            room = deadline[r] - s
            want = k + 1
            if room > 0:
                want = max(want, math.ceil(k * (last_end[r] - s) / room))
            grow[r] = min(want, c.count[r])
    return grow
