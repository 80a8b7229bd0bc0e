"""Capacity per flavour and class: the NRT reserve, lending, the shared archive budget."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrwsi.domain.admission import Admission, Counts, FlavourLimit, admit, admit_all, split_other
from hrwsi.domain.timeliness import TimelinessClass as C

TEN = FlavourLimit(max_concurrent=10, nrt_reserved_share=0.3)


def test_other_classes_hold_at_most_seventy_percent():
    """With a 30 % reserve, archive fills 7 of 10 slots and the other 3 stay free."""
    assert TEN.other_limit == 7 and TEN.reserved == 3
    assert admit(TEN, Counts(), Counts(archive=100)) == Admission(nrt=0, other=7)
    assert admit(TEN, Counts(archive=7), Counts(archive=100)) == Admission(0, 0)


def test_nrt_takes_the_reserve_and_any_free_slot():
    """NRT work may use every free slot, the reserved ones included."""
    assert admit(TEN, Counts(archive=7), Counts(nrt=5, archive=100)) == Admission(3, 0)
    assert admit(TEN, Counts(), Counts(nrt=12, archive=100)) == Admission(10, 0)


def test_nrt_first_then_other_in_what_is_left():
    """NRT is admitted first; other classes get what is left under their limit."""
    assert admit(TEN, Counts(nrt=1), Counts(nrt=2, archive=100)) == Admission(2, 7)
    assert admit(TEN, Counts(nrt=4), Counts(nrt=0, archive=100)) == Admission(0, 6)


def test_lending_mode_lends_the_reserve_only_while_no_nrt_waits():
    """lend_idle_reserve: archive may fill all slots while no NRT waits, and only then."""
    lend = FlavourLimit(10, 0.3, lend_idle_reserve=True)
    assert admit(lend, Counts(), Counts(archive=100)) == Admission(0, 10)
    assert admit(lend, Counts(archive=9), Counts(nrt=3, archive=100)) == Admission(1, 0)
    assert admit(lend, Counts(archive=5), Counts(nrt=1, archive=100)) == Admission(1, 2)


def test_no_limit_admits_everything_and_one_slot_flavour_keeps_its_reserve():
    """An unconfigured flavour admits all; a one-slot flavour with a reserve runs only NRT."""
    assert admit(None, Counts(archive=50), Counts(nrt=2, archive=3)) == Admission(2, 3)
    one = FlavourLimit(1, 0.3)
    assert one.other_limit == 0
    assert admit(one, Counts(), Counts(archive=5)) == Admission(0, 0)


def test_split_other_fills_classes_in_order():
    """The shared budget goes to the classes in the given order."""
    waiting = Counts(archive=5, reprocessing=2)
    assert split_other(4, waiting) == {C.REPROCESSING: 2, C.ARCHIVE: 2}
    assert split_other(4, waiting, (C.ARCHIVE, C.REPROCESSING)) == {
        C.ARCHIVE: 4,
        C.REPROCESSING: 0,
    }
    with pytest.raises(ValueError, match="own budget"):
        split_other(1, waiting, (C.NRT,))


def test_admit_all_per_flavour():
    """Each flavour is admitted against its own limit."""
    got = admit_all(
        {"MAJA": TEN},
        {"MAJA": Counts(archive=7)},
        {"MAJA": Counts(nrt=1, archive=9), "FSC": Counts(archive=4)},
    )
    assert got == {"MAJA": Admission(1, 0), "FSC": Admission(0, 4)}


def test_limits_are_checked():
    """Bad limits are refused."""
    with pytest.raises(ValueError, match="max_concurrent"):
        FlavourLimit(0)
    with pytest.raises(ValueError, match="fraction"):
        FlavourLimit(3, 1.5)
    with pytest.raises(ValueError, match="negative"):
        Counts(nrt=-1)


counts = st.builds(
    Counts,
    nrt=st.integers(0, 40),
    archive=st.integers(0, 40),
    reprocessing=st.integers(0, 40),
)
limits = st.builds(
    FlavourLimit,
    max_concurrent=st.integers(1, 40),
    nrt_reserved_share=st.floats(0, 1),
    lend_idle_reserve=st.booleans(),
)


@given(limits, counts, counts)
def test_admission_invariants(limit, running, waiting):
    """Never over the flavour's slots, never more than waits, the reserve held while NRT waits
    (or always in strict mode), and work-conserving within those rules."""
    got = admit(limit, running, waiting)
    assert 0 <= got.nrt <= waiting.nrt and 0 <= got.other <= waiting.other
    free = max(limit.max_concurrent - running.total, 0)
    assert got.total <= free
    assert got.nrt == min(waiting.nrt, free)  # NRT is never held back by other work
    if not limit.lend_idle_reserve or waiting.nrt > 0:
        assert got.other == 0 or running.other + got.other <= limit.other_limit
    cap = (
        limit.max_concurrent if limit.lend_idle_reserve and waiting.nrt == 0 else limit.other_limit
    )
    if got.other < waiting.other:  # something held back: a rule must be binding
        assert got.total == free or running.other + got.other >= cap
