"""Planning instances: the JSON form read by ``hrwsi plan`` and seeded generators.

The generators build the benchmark families of issue 4 (reused by the tests and
``bench/planner.py``); the same seed always gives the same instance.

JSON instance::

    {"limits": {"t_max", "cpu_max", "ram_max", "storage_max", "vm_max"},
     "routines": {NAME: {"cpu", "ram", "storage", "duration"}},
     "tasks": [{"id", "routine", "depends_on": [ids]}]}
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from hrwsi.domain import errors
from hrwsi.domain.planning import VM, Instance, Limits, Plan, Routine, ScheduledTask, Task

# --------------------------------------------------------------------------------------------
# JSON


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.PlanningError(f"{where} must be an integer, got {value!r}")
    if value < 0:
        raise errors.PlanningError(f"{where} must be >= 0, got {value}")
    return value


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise errors.PlanningError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _field(obj: Mapping[str, Any], key: str, where: str) -> object:
    if key not in obj:
        raise errors.PlanningError(f"{where} has no {key!r}")
    return obj[key]


def instance_from_json(data: object) -> Instance:
    """Parse the JSON form; a malformed document raises PlanningError naming the culprit."""
    root = _object(data, "the instance")
    lim = _object(_field(root, "limits", "the instance"), "limits")
    limits = Limits(
        **{
            k: _int(_field(lim, k, "limits"), f"limits.{k}")
            for k in ("t_max", "cpu_max", "ram_max", "storage_max", "vm_max")
        }
    )
    routines: dict[str, Routine] = {}
    for name, spec in _object(_field(root, "routines", "the instance"), "routines").items():
        where = f"routines.{name}"
        obj = _object(spec, where)
        values = {
            k: _int(_field(obj, k, where), f"{where}.{k}")
            for k in ("cpu", "ram", "storage", "duration")
        }
        if values["duration"] < 1:
            raise errors.PlanningError(f"{where}.duration must be >= 1 minute")
        routines[str(name)] = Routine(name=str(name), **values)
    raw_tasks = _field(root, "tasks", "the instance")
    if not isinstance(raw_tasks, list):
        raise errors.PlanningError("tasks must be a list")
    tasks: list[Task] = []
    for k, raw in enumerate(raw_tasks):
        where = f"tasks[{k}]"
        obj = _object(raw, where)
        tid = _field(obj, "id", where)
        if not isinstance(tid, (str, int)) or isinstance(tid, bool):
            raise errors.PlanningError(f"{where}.id must be a string or an integer")
        routine = _field(obj, "routine", where)
        if not isinstance(routine, str):
            raise errors.PlanningError(f"{where}.routine must be a string")
        if routine not in routines:
            raise errors.PlanningError(f"{where}.routine: unknown routine {routine!r}")
        deps = obj.get("depends_on", [])
        if not isinstance(deps, list) or not all(
            isinstance(d, (str, int)) and not isinstance(d, bool) for d in deps
        ):
            raise errors.PlanningError(f"{where}.depends_on must be a list of task ids")
        tasks.append(Task(id=str(tid), routine=routine, depends_on=tuple(str(d) for d in deps)))
    return Instance(limits=limits, routines=routines, tasks=tuple(tasks))


def instance_to_json(instance: Instance) -> dict[str, Any]:
    lim = instance.limits
    return {
        "limits": {
            "t_max": lim.t_max,
            "cpu_max": lim.cpu_max,
            "ram_max": lim.ram_max,
            "storage_max": lim.storage_max,
            "vm_max": lim.vm_max,
        },
        "routines": {
            name: {"cpu": r.cpu, "ram": r.ram, "storage": r.storage, "duration": r.duration}
            for name, r in instance.routines.items()
        },
        "tasks": [
            {"id": t.id, "routine": t.routine, "depends_on": list(t.depends_on)}
            for t in instance.tasks
        ],
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The ``hrwsi plan --json`` document."""
    return {
        "feasible": plan.feasible,
        "status": plan.status,
        "reason": plan.reason,
        "vms": [
            {
                "name": vm.name,
                "flavour": vm.flavour,
                "start": vm.start,
                "stop": vm.stop,
                "tasks": [{"id": t.id, "start": t.start, "end": t.end} for t in vm.tasks],
            }
            for vm in plan.vms
        ],
        "makespan": plan.makespan,
        "vm_minutes": plan.vm_minutes,
        "lower_bound": {"vms": plan.lower_bound.vms, "makespan": plan.lower_bound.makespan},
        "gap": gap(plan),
        "seconds": round(plan.seconds, 4),
    }


def gap(plan: Plan) -> float | None:
    """Relative excess of VMs over the lower bound (0.1 = 10 % more), None when not planned."""
    if not plan.feasible:
        return None
    lb = plan.lower_bound.vms
    return round((len(plan.vms) - lb) / lb, 4) if lb else 0.0


# --------------------------------------------------------------------------------------------
# Generators


def _limits(t_max: int, quota: int, vm_max: int) -> Limits:
    return Limits(t_max=t_max, cpu_max=quota, ram_max=quota, storage_max=quota, vm_max=vm_max)


MAJA = Routine("MAJA", cpu=5, ram=5, storage=5, duration=5)
FSC = Routine("FSC", cpu=2, ram=2, storage=2, duration=2)
FIVE = (
    Routine("R1", 1, 1, 1, 3),
    Routine("R2", 2, 3, 1, 6),
    Routine("R3", 3, 2, 4, 10),
    Routine("R4", 4, 6, 2, 15),
    Routine("R5", 8, 8, 8, 25),
)


def maja_fsc(
    n: int, *, seed: int = 0, t_max: int = 900, quota: int = 200, vm_max: int = 100
) -> Instance:
    """Family 1: n/2 MAJA (5,5,5, 5 min) and n/2 FSC (2,2,2, 2 min), each FSC after one MAJA."""
    half = n // 2
    tasks = [Task(f"maja-{i}", "MAJA") for i in range(n - half)]
    tasks += [Task(f"fsc-{i}", "FSC", (f"maja-{i}",)) for i in range(half)]
    random.Random(seed).shuffle(tasks)
    return Instance(_limits(t_max, quota, vm_max), {"MAJA": MAJA, "FSC": FSC}, tuple(tasks))


def five_routines(
    n: int, *, seed: int = 0, t_max: int = 900, quota: int = 200, vm_max: int = 100
) -> Instance:
    """Families 2 and 3: R1..R5 chosen at random, no dependencies."""
    rng = random.Random(seed)
    tasks = tuple(Task(f"t{i}", rng.choice(FIVE).name) for i in range(n))
    return Instance(_limits(t_max, quota, vm_max), {r.name: r for r in FIVE}, tasks)


def chains(
    n: int, *, seed: int = 0, length: int = 4, t_max: int = 900, quota: int = 60, vm_max: int = 20
) -> Instance:
    """Dependency chains: each chain walks the routines L1 -> L2 -> ... (random durations)."""
    rng = random.Random(seed)
    routines = {
        f"L{k}": Routine(
            f"L{k}", rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 4), rng.randint(2, 12)
        )
        for k in range(1, length + 1)
    }
    tasks: list[Task] = []
    for c in range(max(1, n // length)):
        prev: tuple[str, ...] = ()
        for k in range(1, length + 1):
            tid = f"c{c}-{k}"
            tasks.append(Task(tid, f"L{k}", prev))
            prev = (tid,)
    return Instance(_limits(t_max, quota, vm_max), routines, tuple(tasks))


def huge_routine(
    n: int, *, seed: int = 0, t_max: int = 900, quota: int = 40, vm_max: int = 12
) -> Instance:
    """One huge routine (most of the quota, long) among small ones."""
    rng = random.Random(seed)
    small = FIVE[:3]
    big = Routine(
        "HUGE", cpu=quota * 3 // 5, ram=quota * 3 // 5, storage=quota * 2 // 5, duration=120
    )
    tasks = [Task(f"h{i}", "HUGE") for i in range(max(1, n // 200))]
    tasks += [Task(f"s{i}", rng.choice(small).name) for i in range(n - len(tasks))]
    rng.shuffle(tasks)
    routines = {r.name: r for r in (*small, big)}
    return Instance(_limits(t_max, quota, vm_max), routines, tuple(tasks))


def from_known_schedule(
    seed: int, *, n_vms: int = 4, n_routines: int = 3, max_tasks_per_vm: int = 5, slack: int = 0
) -> tuple[Instance, Plan]:
    """A random instance built around a schedule that it certainly admits, and that schedule.

    VMs are laid out at random; each runs consecutive tasks of its routine, some depending on
    tasks that ended earlier. The limits are the schedule's peak usage and its makespan plus
    ``slack`` minutes, so the instance is feasible by construction (often tightly).
    """
    rng = random.Random(seed)
    routines = {
        f"r{k}": Routine(
            f"r{k}", rng.randint(0, 5), rng.randint(1, 5), rng.randint(0, 5), rng.randint(1, 9)
        )
        for k in range(n_routines)
    }
    names = sorted(routines)
    vms: list[VM] = []
    tasks: list[Task] = []
    ends: list[tuple[str, int]] = []
    for v in range(n_vms):
        flavour = rng.choice(names)
        d = routines[flavour].duration
        # Staggered starts: later VMs often begin when earlier ones end (tight quotas).
        latest = max((vm.stop for vm in vms), default=0)
        t = rng.randint(0, latest) if rng.random() < 0.6 else rng.randint(0, 20)
        start = t
        scheduled: list[ScheduledTask] = []
        for k in range(rng.randint(1, max_tasks_per_vm)):
            t += rng.choice((0, 0, 0, rng.randint(1, 5)))
            if k == 0:
                start = t
            tid = f"v{v}t{k}"
            earlier = [tid2 for tid2, end in ends if end <= t]
            deps = tuple(rng.sample(earlier, min(len(earlier), rng.randint(0, 2))))
            tasks.append(Task(tid, flavour, deps))
            scheduled.append(ScheduledTask(tid, t, t + d))
            t += d
        for st in scheduled:
            ends.append((st.id, st.end))
        vms.append(VM(f"known-{v}", flavour, start, t, tuple(scheduled)))
    peak = [0, 0, 0, 0]
    for minute in sorted({vm.start for vm in vms}):
        alive = [vm for vm in vms if vm.start <= minute < vm.stop]
        peak[0] = max(peak[0], sum(routines[vm.flavour].cpu for vm in alive))
        peak[1] = max(peak[1], sum(routines[vm.flavour].ram for vm in alive))
        peak[2] = max(peak[2], sum(routines[vm.flavour].storage for vm in alive))
        peak[3] = max(peak[3], len(alive))
    makespan = max(vm.stop for vm in vms)
    limits = Limits(makespan + slack, peak[0], peak[1], peak[2], peak[3])
    rng.shuffle(tasks)
    known = Plan(
        status="planned",
        vms=tuple(vms),
        makespan=makespan,
        vm_minutes=sum(vm.stop - vm.start for vm in vms),
    )
    return Instance(limits, routines, tuple(tasks)), known
