"""Rank times: priority, aging (no starvation), sensing order within a step, switched off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrwsi.domain.priority import (
    Aging,
    ClaimKey,
    PriorityTable,
    effective_priority,
    floor_to_step,
    overtake_after,
    rank_at,
)
from hrwsi.domain.timeliness import TimelinessClass as C

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
AGING = Aging(seconds_per_point=60, step_s=60)


def test_default_priorities_put_nrt_first():
    """nrt > reprocessing > archive by default."""
    table = PriorityTable()
    nrt, rep, arc = (table.priority("MAJA_PC", k) for k in (C.NRT, C.REPROCESSING, C.ARCHIVE))
    assert nrt > rep > arc


def test_condition_override_and_campaign_priority():
    """A per-condition override replaces one class; a campaign's own priority wins for its tasks."""
    table = PriorityTable(per_condition={"FSC_PC": {C.NRT: 300}})
    assert table.priority("FSC_PC", C.NRT) == 300
    assert table.priority("FSC_PC", C.ARCHIVE) == 10
    assert table.priority("MAJA_PC", C.NRT) == 100
    assert table.priority("MAJA_PC", C.REPROCESSING, campaign_priority=55) == 55
    assert table.priority("MAJA_PC", C.ARCHIVE, campaign_priority=55) == 10


def test_priority_table_refuses_out_of_range_and_missing_classes():
    """Priorities are 0..1000 and every class has a default."""
    with pytest.raises(ValueError, match="within"):
        PriorityTable(per_condition={"X": {C.NRT: 5000}})
    with pytest.raises(ValueError, match="no default"):
        PriorityTable(default={C.NRT: 1})


def test_fresh_nrt_goes_before_older_archive_until_the_aging_bound():
    """Archive that waited less than (100-10) minutes goes after new NRT; longer, before."""
    nrt_now = rank_at(T0, 100, AGING)
    assert rank_at(T0 - timedelta(minutes=89), 10, AGING) > nrt_now
    assert rank_at(T0 - timedelta(minutes=91), 10, AGING) < nrt_now


def test_switched_off_is_arrival_order():
    """With aging disabled the rank time is the (floored) enqueue time: FIFO, today's order."""
    off = Aging(enabled=False)
    assert rank_at(T0, 100, off) == rank_at(T0, 0, off) == T0
    assert effective_priority(100, timedelta(hours=1), off) == 0.0


def test_within_a_step_sensing_decides():
    """Same priority, same step: the older sensing is claimed first."""
    a = ClaimKey(rank_at(T0 + timedelta(seconds=50), 10, AGING), T0 - timedelta(days=9), 2)
    b = ClaimKey(rank_at(T0 + timedelta(seconds=5), 10, AGING), T0 - timedelta(days=3), 1)
    assert sorted([b, a]) == [a, b]


def test_floor_to_step_needs_aware_times():
    """Naive datetimes are refused (v1 timestamps must be read as UTC first)."""
    with pytest.raises(ValueError, match="aware"):
        floor_to_step(datetime(2026, 1, 1), 60)


stamps = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
priorities = st.integers(min_value=0, max_value=1000)
agings = st.builds(
    Aging,
    seconds_per_point=st.floats(min_value=0.001, max_value=1e5),
    step_s=st.floats(min_value=0.001, max_value=3600),
)


@given(stamps, stamps, priorities, priorities, agings)
def test_no_starvation_bound(t_low, t_high, p_low, p_high, aging):
    """A task waits behind newer work at most overtake_after(...) (the aging bound)."""
    if t_high - t_low > overtake_after(p_high, p_low, aging) + timedelta(milliseconds=1):
        assert rank_at(t_low, p_low, aging) <= rank_at(t_high, p_high, aging)


@given(stamps, stamps, priorities, priorities, agings, stamps)
def test_rank_time_orders_like_effective_priority(t1, t2, p1, p2, aging, now_base):
    """Ordering by rank time ascending equals ordering by effective priority at any later now
    (up to the step quantisation)."""
    now = max(t1, t2, now_base)
    e1 = effective_priority(p1, now - floor_to_step(t1, aging.step_s), aging)
    e2 = effective_priority(p2, now - floor_to_step(t2, aging.step_s), aging)
    r1, r2 = rank_at(t1, p1, aging), rank_at(t2, p2, aging)
    tolerance = 1e-6 * max(1.0, abs(e1), abs(e2))
    if e1 > e2 + tolerance:
        assert r1 <= r2
    elif e2 > e1 + tolerance:
        assert r2 <= r1


@given(stamps, priorities, priorities, agings)
def test_higher_priority_same_time_never_later(t, p1, p2, aging):
    """Enqueued together, the higher priority ranks first (or equal)."""
    if p1 >= p2:
        assert rank_at(t, p1, aging) <= rank_at(t, p2, aging)


def test_aging_limits():
    """Aging values out of range are refused with the key named."""
    with pytest.raises(ValueError, match="seconds_per_point"):
        Aging(seconds_per_point=0)
    with pytest.raises(ValueError, match="step_s"):
        Aging(step_s=0)
