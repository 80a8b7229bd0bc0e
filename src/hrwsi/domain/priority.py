"""Priorities and aging as one immutable timestamp per task: the *rank time*.

Every task has an integer priority (higher is more urgent), from its timeliness class and
processing condition (:class:`PriorityTable`), or the campaign's own for ``reprocessing``.
Waiting makes a task more urgent (aging), so lower classes never starve. The usual way to say
this is an *effective priority* that grows with the wait::

    effective(now) = priority + (now - enqueued_at) / seconds_per_point

Ordering by ``effective(now)`` descending depends on ``now``, which no index can serve. But
``now`` is the same for every row, so the order is exactly that of::

    rank_at = enqueued_at - priority * seconds_per_point          (ascending)

a timestamp fixed when the task is enqueued. It is a *priority deadline*: the task is served
as if it had arrived ``priority * seconds_per_point`` earlier. Stored in a column, the claim is
``ORDER BY rank_at, sensing, id LIMIT n FOR UPDATE SKIP LOCKED`` over a partial btree index on
``(rank_at, sensing, id) WHERE NOT has_ended``: the read stops after ``n`` index entries
whatever the backlog (O(tasks returned), not O(backlog)), and nothing needs recomputing as
time passes.

``seconds_per_point`` is the aging rate: a task of priority ``p`` enqueued at ``t`` goes before
a task of priority ``q > p`` enqueued after ``t + (q - p) * seconds_per_point`` (plus one
``step_s``): with ``nrt = 100``, ``archive = 10`` and 60 s per point, archive work that has
waited 90 minutes goes before newly arrived NRT work. No task waits behind newer work for
longer than that bound, so nothing starves.

``step_s`` quantises the enqueue time (floored to a multiple of ``step_s`` since the epoch)
before the boost: tasks of one priority enqueued within the same step share a rank time, and
among them the oldest *sensing* goes first (the second index column) — "priority, then
sensing time, oldest first within a class", at a resolution of ``step_s``.

With priorities switched off (:attr:`Aging.enabled` false) the rank time is the enqueue time:
plain arrival order, today's behaviour, the benchmark's baseline.

In SQL (phase B computes it where tasks are inserted, same result as :func:`rank_at`)::

    to_timestamp(floor(extract(epoch FROM enqueued_at) / step_s) * step_s)
        - make_interval(secs => priority * seconds_per_point)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hrwsi.domain.timeliness import TimelinessClass

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_PRIORITY = 1000
MAX_SECONDS_PER_POINT = 10_000_000.0  # ~115 days a point: 1000 points stay within 317 years

DEFAULT_PRIORITIES: Mapping[TimelinessClass, int] = {
    TimelinessClass.NRT: 100,
    TimelinessClass.REPROCESSING: 20,
    TimelinessClass.ARCHIVE: 10,
}


@dataclass(frozen=True, slots=True)
class PriorityTable:
    """Priority per class, with per-condition overrides of any class."""

    default: Mapping[TimelinessClass, int] = field(default_factory=lambda: DEFAULT_PRIORITIES)
    per_condition: Mapping[str, Mapping[TimelinessClass, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = set(TimelinessClass) - set(self.default)
        if missing:
            raise ValueError(f"no default priority for {', '.join(sorted(missing))}")
        tables = [self.default, *self.per_condition.values()]
        for table in tables:
            for value in table.values():
                if not 0 <= value <= MAX_PRIORITY:
                    raise ValueError(f"priority {value} is not within 0..{MAX_PRIORITY}")

    def priority(
        self, condition: str, klass: TimelinessClass, *, campaign_priority: int | None = None
    ) -> int:
        """The priority of a task; a campaign's own priority wins for its tasks."""
        if klass is TimelinessClass.REPROCESSING and campaign_priority is not None:
            return campaign_priority
        override = self.per_condition.get(condition, {})
        return override.get(klass, self.default[klass])


@dataclass(frozen=True, slots=True)
class Aging:
    """How waiting raises urgency: one priority point per ``seconds_per_point`` waited."""

    seconds_per_point: float = 60.0
    step_s: float = 60.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.seconds_per_point <= MAX_SECONDS_PER_POINT:
            raise ValueError(f"seconds_per_point must be in (0, {MAX_SECONDS_PER_POINT:g}]")
        if not 0 < self.step_s <= 86_400:
            raise ValueError("step_s must be in (0, 86400]")


def floor_to_step(stamp: datetime, step_s: float) -> datetime:
    """``stamp`` floored to a multiple of ``step_s`` seconds since the epoch (UTC)."""
    if stamp.tzinfo is None:
        raise ValueError("rank times need aware datetimes")
    elapsed = (stamp - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=math.floor(elapsed / step_s) * step_s)


def rank_at(enqueued_at: datetime, priority: int, aging: Aging) -> datetime:
    """The task's rank time (ascending = served first); see the module docstring."""
    base = floor_to_step(enqueued_at, aging.step_s)
    if not aging.enabled:
        return base
    return base - timedelta(seconds=priority * aging.seconds_per_point)


def effective_priority(priority: int, waited: timedelta, aging: Aging) -> float:
    """The priority a waiting task has now (for display; orders like :func:`rank_at`)."""
    if not aging.enabled:
        return 0.0
    return priority + max(waited.total_seconds(), 0.0) / aging.seconds_per_point


def overtake_after(higher: int, lower: int, aging: Aging) -> timedelta:
    """How long a task of priority ``lower`` waits at most behind newer ``higher`` work."""
    points = max(higher - lower, 0) if aging.enabled else 0
    return timedelta(seconds=points * aging.seconds_per_point + aging.step_s)


@dataclass(frozen=True, slots=True, order=True)
class ClaimKey:
    """The claim order of a task: rank time, then sensing time, then id (all ascending)."""

    rank_at: datetime
    sensing: datetime
    task_id: int
