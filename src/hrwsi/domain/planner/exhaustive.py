"""Complete search for small instances."""

from __future__ import annotations

import time

from hrwsi.domain.planner.compiled import _Compiled, _Schedule
from hrwsi.domain.planner.layouts import _compact

EXHAUSTIVE_MAX_TASKS = 16
"""Up to this many tasks, an instance the heuristics cannot plan is searched exhaustively
(within the time limit, at least :data:`EXHAUSTIVE_MIN_SECONDS`)."""
EXHAUSTIVE_MIN_SECONDS = 0.25

_EXHAUSTIVE_NODES = 300_000


def _exhaustive(c: _Compiled, deadline: float) -> tuple[_Schedule | None, bool]:
    """Complete search for small instances: ``(schedule, proven_impossible)``.

    Every task on its own VM is the most permissive layout (a VM shared by several tasks
    holds its quota at least as long), so the instance has a plan iff the tasks alone can be
    scheduled with each holding its flavour only while it runs. That is resource-constrained
    project scheduling; some optimal schedule is *active*, and the serial schedule generation
    scheme (each task at its earliest feasible start, in some precedence-respecting order)
    generates every active schedule. Depth-first search over those orders, identical tasks
    taken in a fixed order, is therefore complete. A found schedule is then compacted: tasks
    of a routine are chained onto one VM wherever the quotas allow its idle gaps.
    """
    n = c.n
    preds: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for s in c.succ[i]:
            preds[s].append(i)
    signature: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}
    twin_before = [-1] * n
    for i in range(n):
        sig = (c.task_routine[i], tuple(sorted(preds[i])), tuple(sorted(c.succ[i])))
        twin_before[i] = signature.get(sig, -1)
        signature[sig] = i
    caps = c.quota
    res = [(c.cpu[r], c.ram[r], c.storage[r], 1) for r in (c.task_routine[i] for i in range(n))]
    dur = [c.rdur[c.task_routine[i]] for i in range(n)]
    start = [-1] * n
    placed: list[int] = []
    nodes = 0

    def fits(i: int, t: int, end: int) -> bool:
        points = [t] + [start[j] for j in placed if t < start[j] < end]
        for p in points:
            use = [0, 0, 0, 0]
            for j in placed:
                if start[j] <= p < start[j] + dur[j]:
                    for k in range(4):
                        use[k] += res[j][k]
            if any(use[k] + res[i][k] > caps[k] for k in range(4)):
                return False
        return True

    def earliest(i: int) -> int:
        release = max((start[j] + dur[j] for j in preds[i]), default=0)
        candidates = sorted({release, *(start[j] + dur[j] for j in placed)})
        for t in candidates:
            if t < release:
                continue
            if t + dur[i] > c.t_max:
                return -1
            if fits(i, t, t + dur[i]):
                return t
        return -1

    def dfs() -> bool | None:
        nonlocal nodes
        if len(placed) == n:
            return True
        nodes += 1
        if nodes > _EXHAUSTIVE_NODES or (nodes % 256 == 0 and time.perf_counter() > deadline):
            return None
        eligible = [
            i
            for i in range(n)
            if start[i] < 0
            and all(start[j] >= 0 for j in preds[i])
            and (twin_before[i] < 0 or start[twin_before[i]] >= 0)
        ]
        options = []
        for i in eligible:
            t = earliest(i)
            if t < 0:
                return False  # later placements only add load: it never fits in this branch
            options.append((t, i))
        unknown = False
        for t, i in sorted(options):
            start[i] = t
            placed.append(i)
            found = dfs()
            if found:
                return True
            placed.pop()
            start[i] = -1
            if found is None:
                unknown = True
                break
        return None if unknown else False

    outcome = dfs()
    if outcome is None:
        return None, False
    if not outcome:
        return None, True
    return _compact(c, start), False
