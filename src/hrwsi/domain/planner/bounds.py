"""Lower bounds and proofs of impossibility."""

from __future__ import annotations

from hrwsi.domain.planner.compiled import _Compiled
from hrwsi.domain.planning import LowerBound

# --------------------------------------------------------------------------------------------
# Lower bounds and proofs of impossibility.


def _routine_bounds(c: _Compiled) -> list[int]:
    """Per routine, the fewest VMs that can run its tasks inside their time windows."""
    nr = len(c.routine_names)
    releases: list[list[int]] = [[] for _ in range(nr)]
    deadlines: list[list[int]] = [[] for _ in range(nr)]
    for i in range(c.n):
        r = c.task_routine[i]
        releases[r].append(c.head[i])
        deadlines[r].append(c.latest_start[i] + c.rdur[r])
    out = [0] * nr
    for r in range(nr):
        if not releases[r]:
            continue
        d = c.rdur[r]
        rel = sorted(releases[r])
        dl = sorted(deadlines[r])
        lo, hi = rel[0], dl[-1]
        need = 1
        # Tasks released at or after rel[k] must all run inside [rel[k], hi].
        m = len(rel)
        for k in range(m):
            if k and rel[k] == rel[k - 1]:
                continue
            per_vm = (hi - rel[k]) // d
            if per_vm <= 0:
                return _unbounded(nr)
            need = max(need, -(-(m - k) // per_vm))
        # Tasks due at or before dl[k] must all run inside [lo, dl[k]].
        for k in range(m - 1, -1, -1):
            if k < m - 1 and dl[k] == dl[k + 1]:
                continue
            per_vm = (dl[k] - lo) // d
            if per_vm <= 0:
                return _unbounded(nr)
            need = max(need, -(-(k + 1) // per_vm))
        out[r] = need
    return out


def _unbounded(nr: int) -> list[int]:
    return [-1] * nr


def _bounds(c: _Compiled) -> tuple[LowerBound, str]:
    """The lower bound and, when one proves the instance impossible, the reason."""
    cpu_max, ram_max, storage_max, vm_max = c.quota
    nr = len(c.routine_names)
    reasons: list[str] = []
    makespan = 0
    for r in range(nr):
        if not c.count[r]:
            continue
        name = c.routine_names[r]
        too_big = [
            f"{label} {need} > {label}_max {cap}"
            for label, need, cap in (
                ("cpu", c.cpu[r], cpu_max),
                ("ram", c.ram[r], ram_max),
                ("storage", c.storage[r], storage_max),
            )
            if need > cap
        ]
        if vm_max < 1:
            too_big.append("vm_max is 0")
        if too_big:
            reasons.append(f"routine {name!r} does not fit the quotas: {', '.join(too_big)}")
    if c.n:
        path = max(c.t_max - ls for ls in c.latest_start)
        makespan = path
        if path > c.t_max:
            reasons.append(f"the longest dependency chain takes {path} min > t_max {c.t_max}")
    if reasons:
        return LowerBound(vms=_vm_bound_or_zero(c), makespan=makespan), "; ".join(reasons)

    # Resource-time area: every quota is held at least for the work that uses it.
    work = [c.count[r] * c.rdur[r] for r in range(nr)]
    for label, per, cap in (
        ("cpu", c.cpu, cpu_max),
        ("ram", c.ram, ram_max),
        ("storage", c.storage, storage_max),
        ("vm", [1] * nr, vm_max),
    ):
        area = sum(per[r] * work[r] for r in range(nr))
        if area and cap:
            needed = -(-area // cap)
            makespan = max(makespan, needed)
            if needed > c.t_max:
                reasons.append(
                    f"{label}-minutes needed {area} > {label}_max {cap} x t_max {c.t_max}"
                )
    # Per routine: at most k of its tasks run at once under the quotas.
    first_head = [c.t_max] * nr
    min_after = [c.t_max] * nr
    for i in range(c.n):
        r = c.task_routine[i]
        if c.head[i] < first_head[r]:
            first_head[r] = c.head[i]
        after = c.t_max - c.latest_start[i] - c.rdur[r]
        if after < min_after[r]:
            min_after[r] = after
    for r in range(nr):
        if not c.count[r]:
            continue
        k = vm_max
        for per, cap in ((c.cpu, cpu_max), (c.ram, ram_max), (c.storage, storage_max)):
            if per[r]:
                k = min(k, cap // per[r])
        span = first_head[r] + -(-c.count[r] // k) * c.rdur[r] + min_after[r]
        makespan = max(makespan, span)
        if span > c.t_max:
            reasons.append(
                f"routine {c.routine_names[r]!r}: at most {k} of its {c.count[r]} tasks run at "
                f"once under the quotas, so they need until minute {span} > t_max {c.t_max}"
            )
    per_routine, vms = _vm_floor(c)
    if any(x < 0 for x in per_routine):
        reasons.append("a routine's tasks do not fit inside their time windows")
    return LowerBound(vms=vms, makespan=makespan), "; ".join(reasons)


def _vm_floor(c: _Compiled) -> tuple[list[int], int]:
    """Per-routine VM floors and a bound on the total, refined by forced concurrency.

    ``k`` VMs of a routine with work ``W`` inside a window of length ``L`` are all alive
    together for at least ``W - (k - 1) * L`` minutes (each lives inside the window and they
    are alive at least ``W`` VM-minutes). If ``k`` of them at once exceed a quota, ``k`` VMs
    cannot do. With every routine at its floor, the forced periods of a set of routines
    overlap for at least the sum of their lengths minus the rest of their common span; if
    their usage together exceeds a quota, or another routine cannot run beside them and so
    loses that time, the floors are contradictory: some routine needs one more VM (+1 on the
    total). If one more VM on any single routine still leaves a contradiction: +2.
    """
    if c.floor is None:
        c.floor = _compute_vm_floor(c)
    return c.floor


_FORCED_SET_MAX = 10  # routines with a forced period considered in subsets (2**10 subsets)


def _compute_vm_floor(c: _Compiled) -> tuple[list[int], int]:
    per_routine = _routine_bounds(c)
    if any(x < 0 for x in per_routine):
        return per_routine, 0
    nr = len(c.routine_names)
    cpu_max, ram_max, sto_max, vm_max = c.quota
    lo = [c.t_max] * nr
    hi = [0] * nr
    for i in range(c.n):
        r = c.task_routine[i]
        if c.head[i] < lo[r]:
            lo[r] = c.head[i]
        due = c.latest_start[i] + c.rdur[r]
        if due > hi[r]:
            hi[r] = due
    work = [c.count[r] * c.rdur[r] for r in range(nr)]
    k = list(per_routine)
    for r in range(nr):
        if not c.count[r]:
            continue
        span = hi[r] - lo[r]
        while work[r] - (k[r] - 1) * span > 0 and (
            k[r] * c.cpu[r] > cpu_max
            or k[r] * c.ram[r] > ram_max
            or k[r] * c.storage[r] > sto_max
            or k[r] > vm_max
        ):
            k[r] += 1
    extra = 0
    if _contradiction(c, k, lo, hi, work):
        extra = 1
        bumped = []
        for r in range(nr):
            if c.count[r]:
                k[r] += 1
                bumped.append(_contradiction(c, k, lo, hi, work))
                k[r] -= 1
        if bumped and all(bumped):
            extra = 2
    return k, sum(k) + extra


def _contradiction(
    c: _Compiled, k: list[int], lo: list[int], hi: list[int], work: list[int]
) -> bool:
    """True when no schedule uses exactly ``k[r]`` VMs for every routine ``r``."""
    cpu_max, ram_max, sto_max, vm_max = c.quota
    nr = len(k)
    forced = [
        max(0, work[r] - (k[r] - 1) * (hi[r] - lo[r])) if c.count[r] else 0 for r in range(nr)
    ]
    holders = sorted((r for r in range(nr) if forced[r]), key=lambda r: -forced[r])
    holders = holders[:_FORCED_SET_MAX]
    for mask in range(1, 1 << len(holders)):
        group = [holders[b] for b in range(len(holders)) if mask >> b & 1]
        g_lo = min(lo[r] for r in group)
        g_hi = max(hi[r] for r in group)
        together = sum(forced[r] for r in group) - (len(group) - 1) * (g_hi - g_lo)
        if together <= 0:
            continue
        use = (
            sum(k[r] * c.cpu[r] for r in group),
            sum(k[r] * c.ram[r] for r in group),
            sum(k[r] * c.storage[r] for r in group),
            sum(k[r] for r in group),
        )
        if use[0] > cpu_max or use[1] > ram_max or use[2] > sto_max or use[3] > vm_max:
            return True
        for s in range(nr):
            if s in group or not c.count[s]:
                continue
            if (
                use[0] + c.cpu[s] <= cpu_max
                and use[1] + c.ram[s] <= ram_max
                and use[2] + c.storage[s] <= sto_max
                and use[3] + 1 <= vm_max
            ):
                continue
            overlap = max(0, min(g_hi, hi[s]) - max(g_lo, lo[s]))
            lost = together - (g_hi - g_lo - overlap)
            if lost <= 0:
                continue
            per_vm = (hi[s] - lo[s] - lost) // c.rdur[s]
            if per_vm <= 0 or c.count[s] > k[s] * per_vm:
                return True
    return False


def _vm_bound_or_zero(c: _Compiled) -> int:
    per_routine, total = _vm_floor(c)
    return 0 if any(x < 0 for x in per_routine) else total
