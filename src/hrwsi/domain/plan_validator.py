"""An independent checker for plans: it shares no code with the planner.

``validate(instance, plan)`` lists every rule a plan breaks (an empty list means valid). A
``planned`` plan must run every task exactly once on a VM of its routine's flavour, for the
routine's duration, one task at a time per VM, after all its dependencies ended, by ``t_max``;
each VM starts with its first task and stops with its last; cpu, ram, storage and the VM count
stay within the quotas at every minute, a VM counting from its start (included) to its stop
(excluded); makespan and VM-minutes are what the VMs say; and the plan never beats the lower
bound it reports. A plan that is not ``planned`` must hold no VMs and give a reason.
"""

from __future__ import annotations

from collections import defaultdict

from hrwsi.domain.planning import Instance, Plan, ScheduledTask


def validate(instance: Instance, plan: Plan) -> list[str]:
    """Every rule ``plan`` breaks for ``instance``, as readable sentences (empty: valid)."""
    problems: list[str] = []
    if plan.status != "planned":
        if plan.vms:
            problems.append(f"a plan with status {plan.status!r} holds VMs")
        if not plan.reason:
            problems.append(f"a plan with status {plan.status!r} gives no reason")
        return problems

    limits = instance.limits
    tasks = {t.id: t for t in instance.tasks}
    placed: dict[str, ScheduledTask] = {}
    names: set[str] = set()
    for vm in plan.vms:
        if vm.name in names:
            problems.append(f"VM name {vm.name!r} is used twice")
        names.add(vm.name)
        routine = instance.routines.get(vm.flavour)
        if routine is None:
            problems.append(f"{vm.name}: unknown flavour {vm.flavour!r}")
            continue
        if not vm.tasks:
            problems.append(f"{vm.name}: runs no task")
            continue
        if vm.start != vm.tasks[0].start:
            problems.append(
                f"{vm.name}: starts at {vm.start}, its first task at {vm.tasks[0].start}"
            )
        last_end = max(st.end for st in vm.tasks)
        if vm.stop != last_end:
            problems.append(f"{vm.name}: stops at {vm.stop}, its last task ends at {last_end}")
        previous_end: int | None = None
        for st in vm.tasks:
            task = tasks.get(st.id)
            if task is None:
                problems.append(f"{vm.name}: runs unknown task {st.id!r}")
                continue
            if st.id in placed:
                problems.append(f"task {st.id!r} is planned more than once")
            placed[st.id] = st
            if task.routine != vm.flavour:
                problems.append(
                    f"task {st.id!r} of routine {task.routine!r} runs on "
                    f"{vm.flavour!r} VM {vm.name}"
                )
            else:
                if st.end - st.start != routine.duration:
                    problems.append(
                        f"task {st.id!r} lasts {st.end - st.start} min, "
                        f"its routine {routine.duration}"
                    )
            if st.start < 0:
                problems.append(f"task {st.id!r} starts before minute 0")
            if st.end > limits.t_max:
                problems.append(f"task {st.id!r} ends at {st.end} > t_max {limits.t_max}")
            if previous_end is not None and st.start < previous_end:
                problems.append(
                    f"{vm.name}: task {st.id!r} starts at {st.start} before the previous task "
                    f"ends at {previous_end}"
                )
            previous_end = st.end if previous_end is None else max(previous_end, st.end)

    for task in instance.tasks:
        mine = placed.get(task.id)
        if mine is None:
            problems.append(f"task {task.id!r} is not planned")
            continue
        for dep in task.depends_on:
            pred = placed.get(dep)
            if pred is not None and mine.start < pred.end:
                problems.append(
                    f"task {task.id!r} starts at {mine.start} before its dependency {dep!r} "
                    f"ends at {pred.end}"
                )

    problems.extend(_quota_problems(instance, plan))

    ends = [st.end for st in placed.values()]
    makespan = max(ends) if ends else 0
    if plan.makespan != makespan:
        problems.append(f"makespan says {plan.makespan}, the tasks end at {makespan}")
    vm_minutes = sum(vm.stop - vm.start for vm in plan.vms)
    if plan.vm_minutes != vm_minutes:
        problems.append(f"vm_minutes says {plan.vm_minutes}, the VMs add up to {vm_minutes}")
    if len(plan.vms) < plan.lower_bound.vms:
        problems.append(f"{len(plan.vms)} VMs beat the lower bound of {plan.lower_bound.vms}")
    if makespan < plan.lower_bound.makespan:
        problems.append(f"makespan {makespan} beats the lower bound of {plan.lower_bound.makespan}")
    return problems


def _quota_problems(instance: Instance, plan: Plan) -> list[str]:
    """Sweep VM starts and stops; report the first minute each quota is exceeded."""
    limits = instance.limits
    delta: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for vm in plan.vms:
        routine = instance.routines.get(vm.flavour)
        if routine is None or vm.stop <= vm.start:
            continue
        for minute, sign in ((vm.start, 1), (vm.stop, -1)):
            d = delta[minute]
            d[0] += sign * routine.cpu
            d[1] += sign * routine.ram
            d[2] += sign * routine.storage
            d[3] += sign
    usage = [0, 0, 0, 0]
    caps = (limits.cpu_max, limits.ram_max, limits.storage_max, limits.vm_max)
    labels = ("cpu", "ram", "storage", "VM count")
    reported = [False] * 4
    problems: list[str] = []
    for minute in sorted(delta):
        for k in range(4):
            usage[k] += delta[minute][k]
            if usage[k] > caps[k] and not reported[k]:
                reported[k] = True
                problems.append(
                    f"{labels[k]} {usage[k]} exceeds its quota {caps[k]} at minute {minute}"
                )
    return problems
