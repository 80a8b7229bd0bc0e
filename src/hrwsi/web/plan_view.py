"""The plan as the database holds it, turned into the planner's data so that
:func:`hrwsi.domain.gantt.render_svg` draws the same picture as ``hrwsi plan --gantt``.

Pure: rows in, ``(Plan, Instance)`` out. Each task's planned minutes count from the pass that
wrote it (its ``created_at``, from ``hrwsi.task_state``); here they are placed on one axis whose
minute 0 is the earliest planned start among the rows, so tasks planned by different passes line
up in time. A row with no time at all (a v1 task without its side row nor a creation date)
cannot be placed and is left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from hrwsi.domain import planning


def _start_end(row: Mapping[str, Any], duration: int) -> tuple[datetime, datetime]:
    created: datetime = row["created_at"]
    start_min = row["planned_start_min"]
    end_min = row["planned_end_min"]
    start = created + timedelta(minutes=int(start_min or 0))
    end = (
        created + timedelta(minutes=int(end_min))
        if end_min is not None
        else start + timedelta(minutes=duration)
    )
    return start, max(end, start + timedelta(minutes=1))


def build(
    rows: Sequence[Mapping[str, Any]],
    routines: Mapping[str, planning.Routine],
    limits: planning.Limits,
) -> tuple[planning.Plan, planning.Instance]:
    """The plan of ``rows`` (console_plan_tasks) with the routines they use."""
    known = dict(routines)
    placed: list[tuple[Mapping[str, Any], datetime, datetime]] = []
    for row in rows:
        if row["created_at"] is None:
            continue
        flavour = str(row["flavour"])
        if flavour not in known:
            known[flavour] = planning.Routine(flavour, 1, 1, 1, 1)
        start, end = _start_end(row, known[flavour].duration)
        placed.append((row, start, end))
    if not placed:
        instance = planning.Instance(limits=limits, routines=known, tasks=())
        return planning.Plan(status="planned"), instance
    origin = min(start for _, start, _ in placed)

    def minute(t: datetime) -> int:
        return int((t - origin).total_seconds() // 60)

    by_vm: dict[str, list[planning.ScheduledTask]] = defaultdict(list)
    flavour_of: dict[str, str] = {}
    tasks: list[planning.Task] = []
    for row, start, end in placed:
        vm = str(row["vm_name"])
        flavour_of[vm] = str(row["flavour"])
        task_id = str(row["id"])
        s, e = minute(start), max(minute(end), minute(start) + 1)
        by_vm[vm].append(planning.ScheduledTask(task_id, s, e))
        tasks.append(planning.Task(task_id, str(row["flavour"])))
    vms = []
    for name, scheduled in by_vm.items():
        scheduled.sort(key=lambda t: (t.start, t.id))
        vms.append(
            planning.VM(
                name=name,
                flavour=flavour_of[name],
                start=scheduled[0].start,
                stop=max(t.end for t in scheduled),
                tasks=tuple(scheduled),
            )
        )
    makespan = max(vm.stop for vm in vms)
    plan = planning.Plan(
        status="planned",
        vms=tuple(vms),
        makespan=makespan,
        vm_minutes=sum(vm.stop - vm.start for vm in vms),
        lower_bound=planning.LowerBound(len(vms), makespan),
    )
    return plan, planning.Instance(limits=limits, routines=known, tasks=tuple(tasks))
