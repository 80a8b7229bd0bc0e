"""Timeliness KPIs: stage latencies of each product and their percentiles (pure).

A product's life, as timestamps (each may be unknown, e.g. a product-made input has no
catalogue publication)::

    sensing ─► publication ─► harvest ─► planned ─► dispatched ─► processed
    (input     (catalogue)    (input     (task      (first        (product
     .date)                   inserted)  created)   attempt)      row)

The stages are the gaps between consecutive known timestamps (``publication``,
``harvest``, ``planned``, ``dispatched``, ``processed``; each named after the event that ends
it) plus ``total`` = sensing → product. When a timestamp is missing, the next stage is
measured from the latest earlier one that is known (a chained input with no publication
measures ``harvest`` from sensing), so the stages always add up to ``total``.

Percentiles interpolate linearly between closest ranks, like PostgreSQL's
``percentile_cont``, so the figures agree with any SQL computing them.

A product of class ``nrt`` is *late* when sensing → product exceeds its condition's target.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

STAGES = ("publication", "harvest", "planned", "dispatched", "processed")
FIGURES = (*STAGES, "total")
PERCENTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True, slots=True)
class StageTimes:
    """One product's timestamps (aware UTC), as the ``kpi_stage_times`` query returns them."""

    product_id: int
    condition: str
    timeliness_class: str
    product_path: str
    sensing: datetime
    publication: datetime | None
    harvest: datetime | None
    planned: datetime | None
    dispatched: datetime | None
    processed: datetime

    def stages(self) -> dict[str, timedelta | None]:
        """Each stage's duration (None when its end is unknown) and ``total``."""
        out: dict[str, timedelta | None] = {}
        previous = self.sensing
        for name in STAGES:
            stamp: datetime | None = getattr(self, name)
            if stamp is None:
                out[name] = None
                continue
            out[name] = stamp - previous
            previous = stamp
        out["total"] = self.processed - self.sensing
        return out


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """``percentile_cont(q)`` of values sorted ascending (ValueError when empty)."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q is a fraction between 0 and 1")
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return sorted_values[low]
    weight = position - low
    return sorted_values[low] * (1 - weight) + sorted_values[high] * weight


@dataclass(frozen=True, slots=True)
class Figure:
    """Percentiles of one stage over a group, in seconds."""

    count: int
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Figure:
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None)
        p50, p90, p99 = (percentile(ordered, q) for q in PERCENTILES)
        return cls(len(ordered), p50, p90, p99)


@dataclass(frozen=True, slots=True)
class GroupSummary:
    condition: str
    timeliness_class: str
    products: int
    figures: Mapping[str, Figure]  # keys: FIGURES


def summarise(rows: Iterable[StageTimes]) -> list[GroupSummary]:
    """Percentiles per (condition, class), sorted by condition then class."""
    samples: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: {name: [] for name in FIGURES}
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        key = (row.condition, row.timeliness_class)
        counts[key] += 1
        for name, value in row.stages().items():
            if value is not None:
                samples[key][name].append(value.total_seconds())
    return [
        GroupSummary(
            condition,
            klass,
            counts[(condition, klass)],
            {name: Figure.of(values) for name, values in samples[(condition, klass)].items()},
        )
        for condition, klass in sorted(samples)
    ]


@dataclass(frozen=True, slots=True)
class Targets:
    """Sensing → product targets for ``nrt`` products, per condition with a default."""

    default: timedelta = timedelta(hours=3)
    per_condition: Mapping[str, timedelta] | None = None

    def of(self, condition: str) -> timedelta:
        if self.per_condition and condition in self.per_condition:
            return self.per_condition[condition]
        return self.default


@dataclass(frozen=True, slots=True)
class Late:
    row: StageTimes
    target: timedelta
    late_by: timedelta


def late_products(rows: Iterable[StageTimes], targets: Targets) -> list[Late]:
    """NRT products whose sensing → product exceeds their target, latest-over first."""
    late: list[Late] = []
    for row in rows:
        if row.timeliness_class != "nrt":
            continue
        target = targets.of(row.condition)
        total = row.processed - row.sensing
        if total > target:
            late.append(Late(row, target, total - target))
    return sorted(late, key=lambda item: (-item.late_by, item.row.product_id))
