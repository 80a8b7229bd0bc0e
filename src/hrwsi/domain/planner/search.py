"""The search over VM budgets and strategies."""

from __future__ import annotations

import random
import time

from hrwsi.domain.planner.compiled import (
    _RULE_AREA,
    _RULE_PRESSURE,
    _RULE_URGENCY,
    _RULE_WORK,
    _RULES,
    _Compiled,
    _Schedule,
    _Strategy,
)
from hrwsi.domain.planner.scheduler import _simulate

# --------------------------------------------------------------------------------------------
# The search over VM budgets and strategies.


_STRATEGIES = (
    _Strategy(_RULE_URGENCY, hold=True, round_robin=True),
    _Strategy(_RULE_PRESSURE, hold=True, round_robin=True),
    _Strategy(_RULE_PRESSURE, hold=True, round_robin=True, lazy=True),
    _Strategy(_RULE_URGENCY, hold=True, round_robin=True, lazy=True),
    _Strategy(_RULE_WORK, hold=True, round_robin=True),
    _Strategy(_RULE_AREA, hold=True, round_robin=True),
    _Strategy(_RULE_PRESSURE, hold=True, round_robin=False),
    _Strategy(_RULE_URGENCY, hold=True, round_robin=False),
    _Strategy(_RULE_URGENCY, hold=True, round_robin=False, lazy=True),
    _Strategy(_RULE_URGENCY, hold=False, round_robin=True),
    _Strategy(_RULE_PRESSURE, hold=False, round_robin=True),
)
_RESTARTS_WITHOUT_PROGRESS = 200


class _Search:
    """Budget growth under several strategies, reduction, then random restarts, in time."""

    def __init__(self, c: _Compiled, floor: list[int], target: int, deadline: float) -> None:
        self.c = c
        self.floor = floor
        self.deadline = deadline
        self.start_budget = [max(1, x) if c.count[r] else 0 for r, x in enumerate(floor)]
        self.target = max(target, sum(self.start_budget))
        self.best: _Schedule | None = None
        self.best_strategy = _STRATEGIES[0]
        self.pass_seconds = 0.0

    def out_of_time(self) -> bool:
        return time.perf_counter() + self.pass_seconds > self.deadline

    def done(self) -> bool:
        return self.best is not None and self.best.n_vms <= self.target

    def run(self, budget: list[int], strategy: _Strategy) -> _Schedule:
        began = time.perf_counter()
        s = _simulate(self.c, budget, strategy)
        self.pass_seconds = max(self.pass_seconds, time.perf_counter() - began)
        if s.feasible and (self.best is None or s.key() < self.best.key()):
            self.best, self.best_strategy = s, strategy
        return s

    def grow(self, strategy: _Strategy, steps: int = 64, *, force: int = 0) -> None:
        """From the lower bound, grow the budgets of the routines made late by them.

        The first ``force`` steps run whatever the time limit.
        """
        budget = list(self.start_budget)
        for step in range(steps):
            s = self.run(budget, strategy)
            if s.feasible or s.grow == budget or (step >= force and self.out_of_time()):
                return
            budget = s.grow

    def used(self) -> list[int]:
        used = [0] * len(self.c.routine_names)
        if self.best is not None:
            for r in self.best.vm_routine:
                used[r] += 1
        return used

    def reduce(self) -> None:
        """One VM fewer for a routine, under any strategy, while that still plans."""
        improved = True
        while improved and not self.done():
            improved = False
            used = self.used()
            for r in range(len(used)):
                if used[r] <= max(self.floor[r], 1):
                    continue
                budget = list(used)
                budget[r] -= 1
                before = self.best
                others = [x for x in _STRATEGIES if x != self.best_strategy]
                for strategy in (self.best_strategy, *others):
                    if self.out_of_time():
                        return
                    self.run(budget, strategy)
                    if self.best is not before:
                        improved = True
                        break
                if improved:
                    break

    def search(self) -> _Schedule | None:
        # The first strategy and the relaxed run answer whatever the time limit, so that a
        # short limit costs quality, not an answer.
        for k, strategy in enumerate(_STRATEGIES):
            if (k and self.out_of_time()) or self.done():
                break
            self.grow(strategy, force=0 if k else 8)
        if self.best is None:
            # Relaxed: unlimited VMs that close when idle (pure resource-constrained scheduling).
            self.run(list(self.c.count), _Strategy(_RULE_URGENCY, hold=False))
        self.reduce()
        rng = random.Random(self.c.n * 7919 + self.c.t_max)
        stale = 0
        while not self.done() and not self.out_of_time() and stale < _RESTARTS_WITHOUT_PROGRESS:
            strategy = _Strategy(
                rule=rng.choice(_RULES),
                hold=rng.random() < 0.75,
                round_robin=rng.random() < 0.6,
                lazy=rng.random() < 0.5,
                seed=rng.randrange(1 << 30),
            )
            before = self.best
            used = self.used()
            above = [r for r, u in enumerate(used) if u > max(self.floor[r], 1)]
            if self.best is None and rng.random() < 0.3:
                self.run(list(self.c.count), strategy)
            elif above and rng.random() < 0.5:
                # Local move: one VM fewer for a random routine, under a random strategy.
                budget = list(used)
                budget[rng.choice(above)] -= 1
                self.run(budget, strategy)
            else:
                self.grow(strategy, steps=16)
            if self.best is not before:
                stale = 0
                self.reduce()
            else:
                stale += 1
        return self.best
