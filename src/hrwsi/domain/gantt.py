"""Draw a plan as an SVG Gantt chart (pure string building, no plotting library).

Top: one bar per VM (grouped by flavour, ordered by start): the VM's lifetime as a pale band,
its tasks as solid blocks coloured by routine, so idle time inside a VM shows as pale gaps.
Beneath: cpu, ram, storage and VM-count usage over time as step areas stacked by routine,
against the quota (dashed red line). A shared minute axis with gridlines, the horizon ``t_max``
as a dashed line, a legend with each routine's size and share, and a one-line summary on top.
Scales from a handful of VMs (labelled rows) to hundreds (thin rows, one label per flavour).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from xml.sax.saxutils import escape

from hrwsi.domain.planning import VM, Instance, Limits, Plan

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)

WIDTH = 1280
LEFT = 170  # room for VM labels
RIGHT = 30
PANEL_H = 78
PANEL_GAP = 22


def render_svg(plan: Plan, instance: Instance, limits: Limits) -> str:
    """The SVG document (UTF-8 text) for ``plan`` of ``instance`` under ``limits``."""
    first_start: dict[str, int] = {}
    for vm in plan.vms:
        first_start[vm.flavour] = min(first_start.get(vm.flavour, vm.start), vm.start)
    # Routines in pipeline order (first VM start), then those without VMs.
    routines = sorted(instance.routines, key=lambda r: (first_start.get(r, 1 << 62), r))
    colour = {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(sorted(instance.routines))}
    rank = {name: k for k, name in enumerate(routines)}
    vms = sorted(plan.vms, key=lambda vm: (rank.get(vm.flavour, 0), vm.start, _natural(vm.name)))
    horizon = max(limits.t_max, plan.makespan, 1)
    plot_w = WIDTH - LEFT - RIGHT

    def x(minute: float) -> float:
        return LEFT + plot_w * minute / horizon

    n = len(vms)
    row_h = max(0.5, min(22.0, 640.0 / max(n, 1)))  # hundreds of VMs: a dense block per flavour
    labelled = row_h >= 11
    legend_lines = _legend_lines(plan, instance, routines)
    top = 92 + 18 * (len(legend_lines) - 1)
    gantt_h = row_h * n if n else 40
    panels_top = top + gantt_h + 46
    height = int(panels_top + 4 * (PANEL_H + PANEL_GAP) + 70)

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" '
        'font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    out.extend(_header(plan, instance, limits))
    out.extend(_legend(legend_lines, colour, y=62))

    # Time grid across the Gantt and the panels.
    step = _nice_step(horizon)
    grid_bottom = panels_top + 4 * (PANEL_H + PANEL_GAP) - PANEL_GAP
    tick = 0
    while tick <= horizon:
        xt = x(tick)
        out.append(
            f'<line x1="{xt:.1f}" y1="{top - 4}" x2="{xt:.1f}" y2="{grid_bottom:.1f}" '
            'stroke="#e6e6e6"/>'
        )
        out.append(
            f'<text x="{xt:.1f}" y="{grid_bottom + 16:.1f}" text-anchor="middle" '
            f'fill="#555">{tick}</text>'
        )
        tick += step
    out.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{grid_bottom + 34:.1f}" text-anchor="middle" '
        'fill="#555">minutes from the start of the plan</text>'
    )
    xt = x(limits.t_max)
    out.append(
        f'<line x1="{xt:.1f}" y1="{top - 10}" x2="{xt:.1f}" y2="{grid_bottom:.1f}" '
        'stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1.2"/>'
    )
    out.append(
        f'<text x="{xt - 4:.1f}" y="{top - 14}" text-anchor="end" fill="#c0392b">'
        f"t_max {limits.t_max}</text>"
    )

    out.extend(_gantt_rows(vms, colour, x, top, row_h, labelled, instance))
    if not vms:
        message = "no VMs" if plan.feasible else f"not planned: {plan.reason}"
        out.append(f'<text x="{LEFT}" y="{top + 24}" fill="#c0392b">{escape(message[:160])}</text>')

    caps = (
        ("cpu", limits.cpu_max, lambda f: instance.routines[f].cpu),
        ("ram", limits.ram_max, lambda f: instance.routines[f].ram),
        ("storage", limits.storage_max, lambda f: instance.routines[f].storage),
        ("VMs", limits.vm_max, lambda f: 1),
    )
    for k, (label, cap, per) in enumerate(caps):
        y0 = panels_top + k * (PANEL_H + PANEL_GAP)
        out.extend(_usage_panel(vms, routines, colour, x, y0, label, cap, per, instance))
    out.append("</svg>")
    return "\n".join(out)


def _header(plan: Plan, instance: Instance, limits: Limits) -> list[str]:
    n_tasks = len(instance.tasks)
    if plan.feasible:
        lb = plan.lower_bound
        gap = f" (+{len(plan.vms) - lb.vms})" if len(plan.vms) > lb.vms else " (optimal count)"
        line1 = f"{n_tasks} tasks on {len(plan.vms)} VMs — lower bound {lb.vms}{gap}"
        line2 = (
            f"makespan {plan.makespan} min of t_max {limits.t_max} (bound {lb.makespan})   ·   "
            f"{plan.vm_minutes} VM-minutes   ·   quotas cpu {limits.cpu_max}, "
            f"ram {limits.ram_max}, storage {limits.storage_max}, {limits.vm_max} VMs   ·   "
            f"planned in {plan.seconds:.2f} s"
        )
    else:
        line1 = f"{n_tasks} tasks: {plan.status.replace('_', ' ')}"
        line2 = plan.reason[:180]
    return [
        f'<text x="{LEFT}" y="26" font-size="18" font-weight="bold" fill="#222">'
        f"{escape(line1)}</text>",
        f'<text x="{LEFT}" y="46" fill="#555">{escape(line2)}</text>',
    ]


def _legend_lines(
    plan: Plan, instance: Instance, routines: list[str]
) -> list[list[tuple[str, str]]]:
    """Legend entries (routine, text), wrapped into lines that fit the width."""
    tasks_per: dict[str, int] = defaultdict(int)
    for t in instance.tasks:
        tasks_per[t.routine] += 1
    vms_per: dict[str, int] = defaultdict(int)
    for vm in plan.vms:
        vms_per[vm.flavour] += 1
    lines: list[list[tuple[str, str]]] = [[]]
    width = 0.0
    for name in routines:
        r = instance.routines[name]
        text = (
            f"{name} {r.cpu}/{r.ram}/{r.storage}, {r.duration} min — "
            f"{tasks_per[name]} tasks, {vms_per[name]} VMs"
        )
        w = 30 + 6.6 * len(text)
        if lines[-1] and LEFT + width + w > WIDTH - RIGHT:
            lines.append([])
            width = 0.0
        lines[-1].append((name, text))
        width += w
    return lines


def _legend(lines: list[list[tuple[str, str]]], colour: dict[str, str], y: int) -> list[str]:
    out: list[str] = []
    for k, line in enumerate(lines):
        xx = float(LEFT)
        yy = y + 18 * k
        for name, text in line:
            out.append(
                f'<rect x="{xx:.1f}" y="{yy - 10}" width="12" height="12" rx="2" '
                f'fill="{colour[name]}"/>'
            )
            out.append(f'<text x="{xx + 17:.1f}" y="{yy}" fill="#333">{escape(text)}</text>')
            xx += 30 + 6.6 * len(text)
    return out


def _natural(name: str) -> tuple[str, int]:
    """'vm-a-10' after 'vm-a-9'."""
    head, _, tail = name.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


def _gantt_rows(
    vms: list[VM],
    colour: dict[str, str],
    x: Callable[[float], float],
    top: float,
    row_h: float,
    labelled: bool,
    instance: Instance,
) -> list[str]:
    out: list[str] = []
    bar_h = row_h * 0.72 if row_h >= 3 else row_h
    group_start: dict[str, int] = {}
    group_end: dict[str, int] = {}
    for k, vm in enumerate(vms):
        group_start.setdefault(vm.flavour, k)
        group_end[vm.flavour] = k
        y = top + k * row_h + (row_h - bar_h) / 2
        c = colour.get(vm.flavour, "#999")
        x0, x1 = x(vm.start), x(vm.stop)
        busy = sum(t.end - t.start for t in vm.tasks)
        life = max(vm.stop - vm.start, 1)
        title = (
            f"{vm.name}: minutes {vm.start}&#8211;{vm.stop}, {len(vm.tasks)} tasks, "
            f"busy {100 * busy / life:.0f} %"
        )
        out.append(f"<g><title>{escape(title)}</title>")
        out.append(
            f'<rect x="{x0:.2f}" y="{y:.2f}" width="{max(x1 - x0, 0.5):.2f}" height="{bar_h:.2f}" '
            f'fill="{c}" fill-opacity="0.18" stroke="{c}" stroke-width="0.6"/>'
        )
        per_task_px = (x(vm.tasks[0].end) - x(vm.tasks[0].start)) if vm.tasks else 0.0
        if per_task_px >= 3 and row_h >= 8:
            for t in vm.tasks:
                tx0, tx1 = x(t.start), x(t.end)
                out.append(
                    f'<rect x="{tx0:.2f}" y="{y:.2f}" width="{tx1 - tx0:.2f}" height="{bar_h:.2f}" '
                    f'fill="{c}" stroke="#fff" stroke-width="0.8"/>'
                )
        else:
            for a, b in _runs((t.start, t.end) for t in vm.tasks):
                out.append(
                    f'<rect x="{x(a):.2f}" y="{y:.2f}" width="{max(x(b) - x(a), 0.4):.2f}" '
                    f'height="{bar_h:.2f}" fill="{c}"/>'
                )
        out.append("</g>")
        if labelled:
            out.append(
                f'<text x="{LEFT - 8}" y="{y + bar_h / 2 + 4:.2f}" text-anchor="end" fill="#333" '
                f'font-size="{min(12.0, row_h * 0.7):.0f}">{escape(vm.name)}</text>'
            )
    if not labelled:
        for flavour, first in group_start.items():
            last = group_end[flavour]
            y0 = top + first * row_h
            y1 = top + (last + 1) * row_h
            c = colour.get(flavour, "#999")
            count = last - first + 1
            out.append(
                f'<rect x="{LEFT - 10}" y="{y0 + 1:.1f}" width="4" '
                f'height="{max(y1 - y0 - 2, 1):.1f}" fill="{c}"/>'
            )
            out.append(
                f'<text x="{LEFT - 16}" y="{(y0 + y1) / 2 + 4:.1f}" text-anchor="end" fill="#333">'
                f"{escape(flavour)} &#215; {count}</text>"
            )
    return out


def _runs(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge back-to-back intervals into busy runs."""
    runs: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if runs and a <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], b))
        else:
            runs.append((a, b))
    return runs


def _usage_panel(
    vms: list[VM],
    routines: list[str],
    colour: dict[str, str],
    x: Callable[[float], float],
    y0: float,
    label: str,
    cap: int,
    per: Callable[[str], int],
    instance: Instance,
) -> list[str]:
    out: list[str] = []
    # Stacked usage by routine at each breakpoint (VM starts and stops).
    delta: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for vm in vms:
        if vm.flavour not in instance.routines:
            continue
        amount = per(vm.flavour)
        delta[vm.start][vm.flavour] += amount
        delta[vm.stop][vm.flavour] -= amount
    times = sorted(delta)
    current = {name: 0 for name in routines}
    steps: list[tuple[int, dict[str, int]]] = []
    for t in times:
        for name, d in delta[t].items():
            current[name] += d
        steps.append((t, dict(current)))
    peak = max((sum(s.values()) for _, s in steps), default=0)
    scale_max = max(cap, peak, 1)

    def y(v: float) -> float:
        return y0 + PANEL_H - PANEL_H * v / scale_max

    x_left, x_right = LEFT, WIDTH - RIGHT
    out.append(
        f'<rect x="{x_left}" y="{y0:.1f}" width="{x_right - x_left}" height="{PANEL_H}" '
        'fill="none" stroke="#cccccc"/>'
    )
    over = peak > cap
    share = f" ({100 * peak / cap:.0f} %)" if cap else ""
    detail = f"peak {peak}/{cap}" + (" OVER QUOTA" if over else share)
    out.append(
        f'<text x="{LEFT - 8}" y="{y0 + 14:.1f}" text-anchor="end" font-weight="bold" '
        f'fill="{"#c0392b" if over else "#333"}">{escape(label)}</text>'
    )
    out.append(
        f'<text x="{LEFT - 8}" y="{y0 + 30:.1f}" text-anchor="end" fill="#666" '
        f'font-size="11">{escape(detail)}</text>'
    )
    # One stacked step area per routine, bottom to top.
    base = [0] * len(steps)
    for name in routines:
        if not any(s[name] for _, s in steps):
            continue
        upper = [b + s[name] for b, (_, s) in zip(base, steps, strict=True)]
        top_pts = _step_points([t for t, _ in steps], upper, x, y)
        bottom_pts = _step_points([t for t, _ in steps], base, x, y)
        path = "M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in top_pts)
        path += " L" + " L".join(f"{px:.1f},{py:.1f}" for px, py in reversed(bottom_pts)) + " Z"
        out.append(f'<path d="{path}" fill="{colour[name]}" fill-opacity="0.75" stroke="none"/>')
        base = upper
    # Total as a step line on top.
    if steps:
        pts = _step_points([t for t, _ in steps], base, x, y)
        out.append(
            '<path d="M' + " L".join(f"{px:.1f},{py:.1f}" for px, py in pts) + '" fill="none" '
            'stroke="#333" stroke-width="1"/>'
        )
    yc = y(cap)
    out.append(
        f'<line x1="{x_left}" y1="{yc:.1f}" x2="{x_right}" y2="{yc:.1f}" stroke="#c0392b" '
        'stroke-width="1.4" stroke-dasharray="7 4"/>'
    )
    out.append(
        f'<text x="{x_right - 4}" y="{yc - 4:.1f}" text-anchor="end" fill="#c0392b" '
        f'font-size="11">quota {cap}</text>'
    )
    out.append(
        f'<text x="{x_left - 4}" y="{y0 + PANEL_H:.1f}" text-anchor="end" fill="#999" '
        'font-size="10">0</text>'
    )
    return out


def _step_points(
    times: list[int],
    values: list[int],
    x: Callable[[float], float],
    y: Callable[[float], float],
) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    prev = 0
    for t, v in zip(times, values, strict=True):
        pts.append((x(t), y(prev)))
        pts.append((x(t), y(v)))
        prev = v
    return pts


def _nice_step(horizon: int) -> int:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440, 2880, 7200, 14400):
        if horizon / step <= 16:
            return step
    return max(1, horizon // 16)
