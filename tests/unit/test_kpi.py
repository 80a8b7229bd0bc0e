"""KPI stage maths: stages add up, percentiles match percentile_cont, late NRT products."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrwsi.domain.kpi import (
    FIGURES,
    STAGES,
    Figure,
    StageTimes,
    Targets,
    late_products,
    percentile,
    summarise,
)

T0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def row(pid: int = 1, klass: str = "nrt", condition: str = "MAJA_PC", **minutes: float | None):
    offsets = {"publication": 30, "harvest": 35, "planned": 36, "dispatched": 37, "processed": 50}
    offsets.update(minutes)  # type: ignore[arg-type]
    stamp = {k: None if v is None else T0 + timedelta(minutes=v) for k, v in offsets.items()}
    return StageTimes(pid, condition, klass, f"/p/{pid}", T0, **stamp)  # type: ignore[arg-type]


def test_stages_of_one_product():
    """Each stage is the gap to the previous event; total is sensing to product."""
    got = row().stages()
    assert got["publication"] == timedelta(minutes=30)
    assert got["harvest"] == timedelta(minutes=5)
    assert got["processed"] == timedelta(minutes=13)
    assert got["total"] == timedelta(minutes=50)


def test_missing_publication_measures_harvest_from_sensing():
    """A product-made input has no publication: harvest is measured from sensing."""
    got = row(publication=None).stages()
    assert got["publication"] is None and got["harvest"] == timedelta(minutes=35)


def test_percentile_matches_percentile_cont():
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0.5) == 2.5
    assert percentile(values, 0.9) == pytest.approx(3.7)
    assert percentile([5.0], 0.99) == 5.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_summary_per_condition_and_class():
    """Groups are (condition, class), sorted; a figure with no sample is empty."""
    rows = [row(1), row(2, processed=70), row(3, klass="archive", publication=None)]
    groups = summarise(rows)
    assert [(g.condition, g.timeliness_class, g.products) for g in groups] == [
        ("MAJA_PC", "archive", 1),
        ("MAJA_PC", "nrt", 2),
    ]
    nrt = groups[1].figures["total"]
    assert nrt.count == 2 and nrt.p50_s == pytest.approx(60 * 60)
    assert groups[0].figures["publication"] == Figure(0, None, None, None)
    assert set(groups[0].figures) == set(FIGURES)


def test_late_nrt_products_only_and_per_condition_targets():
    """Only nrt products over their condition's target are late, latest first."""
    targets = Targets(timedelta(hours=3), {"FSC_PC": timedelta(minutes=30)})
    rows = [
        row(1, processed=200),  # 3 h 20 > 3 h: late by 20 min
        row(2, processed=100),  # on time
        row(3, condition="FSC_PC", processed=100),  # > 30 min: late by 70 min
        row(4, klass="archive", processed=10_000),  # archive: never late
    ]
    late = late_products(rows, targets)
    assert [(x.row.product_id, x.late_by) for x in late] == [
        (3, timedelta(minutes=70)),
        (1, timedelta(minutes=20)),
    ]


offsets = st.lists(st.one_of(st.none(), st.integers(0, 10_000)), min_size=4, max_size=4)


@given(offsets, st.integers(0, 10_000))
def test_known_stages_add_up_to_total(parts, last):
    """Whatever is missing, the known stages sum to sensing -> product (events in order)."""
    stamps: list[float | None] = []
    clock = 0
    for p in parts:
        if p is None:
            stamps.append(None)
        else:
            clock += p
            stamps.append(clock)
    got = row(**dict(zip(STAGES[:-1], stamps, strict=True)), processed=clock + last).stages()
    known = [v for k, v in got.items() if k != "total" and v is not None]
    assert sum(known, timedelta(0)) == got["total"]


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(0, 1))
def test_percentile_is_within_range_and_monotone(values, q):
    """A percentile lies within the values and never decreases with q."""
    ordered = sorted(values)
    p = percentile(ordered, q)
    assert ordered[0] - 1e-6 <= p <= ordered[-1] + 1e-6
    assert percentile(ordered, min(q + 0.1, 1.0)) >= p - 1e-6
