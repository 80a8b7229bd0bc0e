"""Timeliness classes of inputs: campaign, inheritance, backfill, the S1 attribute, the window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrwsi.catalogue import records
from hrwsi.domain.timeliness import (
    S1_TIMELINESS_ATTRIBUTE,
    HarvestMode,
    InputFacts,
    NrtWindow,
    TimelinessClass,
    classify,
    s1_is_fast,
)

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
WINDOW = NrtWindow.of_days(30, 7)
FIXTURES = Path(__file__).parents[2] / "src" / "hrwsi" / "testing" / "fixtures" / "odata"


def facts(**kw: object) -> InputFacts:
    base: dict[str, object] = {
        "sensing": NOW - timedelta(hours=2),
        "publication": NOW - timedelta(hours=1),
        "mode": HarvestMode.NEAR_REAL_TIME,
    }
    base.update(kw)
    return InputFacts(**base)  # type: ignore[arg-type]


def test_fresh_input_of_a_near_real_time_pass_is_nrt():
    """Sensed and published within the query's window, found by an NRT pass: nrt."""
    assert classify(facts(), WINDOW, now=NOW) is TimelinessClass.NRT


def test_backfill_is_archive_even_when_fresh():
    """hrwsi harvest --from/--to makes archive inputs, whatever their age."""
    assert classify(facts(mode=HarvestMode.BACKFILL), WINDOW, now=NOW) is TimelinessClass.ARCHIVE


def test_campaign_wins_over_everything():
    """An input selected by a campaign is reprocessing, even if fresh or inherited nrt."""
    got = classify(facts(campaign_id=3, inherited=TimelinessClass.NRT), WINDOW, now=NOW)
    assert got is TimelinessClass.REPROCESSING


@pytest.mark.parametrize("klass", list(TimelinessClass))
def test_chained_input_inherits_its_source_class(klass: TimelinessClass):
    """An FSC input made from an L2A product takes the class of the task that made it."""
    got = classify(facts(mode=HarvestMode.CHAINED, inherited=klass), WINDOW, now=NOW)
    assert got is klass


def test_chained_input_without_a_known_source_class_is_archive():
    """A product-made input whose source class is unknown is not promoted to nrt."""
    assert classify(facts(mode=HarvestMode.CHAINED), WINDOW, now=NOW) is TimelinessClass.ARCHIVE


def test_old_sensing_or_old_publication_is_archive():
    """Outside either threshold of the window: archive."""
    old_sensing = facts(sensing=NOW - timedelta(days=31))
    old_publication = facts(publication=NOW - timedelta(days=8))
    assert classify(old_sensing, WINDOW, now=NOW) is TimelinessClass.ARCHIVE
    assert classify(old_publication, WINDOW, now=NOW) is TimelinessClass.ARCHIVE


def test_tightened_window_never_widens():
    """A per-condition limit narrows the query's window and never widens it."""
    narrow = WINDOW.tightened(timedelta(hours=6), timedelta(days=30))
    assert narrow.max_since_sensing == timedelta(hours=6)
    assert narrow.max_since_publication == timedelta(days=7)
    assert classify(facts(sensing=NOW - timedelta(hours=7)), narrow, now=NOW) is (
        TimelinessClass.ARCHIVE
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("NRT-3h", TimelinessClass.NRT),
        ("NRT-10m", TimelinessClass.NRT),
        ("Fast-24h", TimelinessClass.NRT),
        ("Reprocessing", TimelinessClass.ARCHIVE),
        ("Off-line", TimelinessClass.ARCHIVE),
        (None, TimelinessClass.NRT),
    ],
)
def test_s1_timeliness_attribute(value: str | None, expected: TimelinessClass):
    """For S1 the catalogue's timeliness attribute says whether a fresh product is NRT."""
    got = classify(facts(mission="S1", s1_timeliness=value), WINDOW, now=NOW)
    assert got is expected


def test_s1_fast_product_outside_the_window_is_still_archive():
    """An NRT-3h product harvested a month after sensing is archive work by then."""
    old = facts(mission="S1", s1_timeliness="NRT-3h", sensing=NOW - timedelta(days=40))
    assert classify(old, WINDOW, now=NOW) is TimelinessClass.ARCHIVE


def test_the_attribute_name_matches_the_recorded_s1_records():
    """The recorded CDSE S1 GRD entity carries 'timeliness' = 'Fast-24h', which counts as fast."""
    body = json.loads((FIXTURES / "cdsedocs_s1_grdh_entity_expand_attributes_us6.json").read_text())
    value = records.attribute(body, S1_TIMELINESS_ATTRIBUTE)
    assert value == "Fast-24h"
    assert s1_is_fast(value) is True
    assert s1_is_fast(42) is None and s1_is_fast("  ") is None


@given(
    sensing_ago=st.integers(min_value=0, max_value=60 * 86400),
    publication_ago=st.integers(min_value=0, max_value=60 * 86400),
)
def test_nrt_exactly_when_inside_both_thresholds(sensing_ago: int, publication_ago: int):
    """For any ages, an NRT pass classifies nrt iff both ages are within the window."""
    f = facts(
        sensing=NOW - timedelta(seconds=sensing_ago),
        publication=NOW - timedelta(seconds=publication_ago),
    )
    inside = sensing_ago <= 30 * 86400 and publication_ago <= 7 * 86400
    assert (classify(f, WINDOW, now=NOW) is TimelinessClass.NRT) == inside


def test_window_must_be_positive():
    """A zero window is a configuration mistake, refused."""
    with pytest.raises(ValueError, match="positive"):
        NrtWindow(timedelta(0), timedelta(days=1))
