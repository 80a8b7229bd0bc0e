"""The campaign state machine, its refusals, scope and progress."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrwsi.domain.campaign import (
    Action,
    Effect,
    Scope,
    State,
    StateChange,
    TransitionRefused,
    active_time,
    allowed_actions,
    normalise_tiles,
    progress,
    transition,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "action", "target", "effect"),
    [
        (State.CREATED, Action.RELEASE, State.RELEASED, Effect.CREATE_TASKS),
        (State.RELEASED, Action.SUSPEND, State.SUSPENDED, Effect.STOP_LAUNCHES),
        (State.SUSPENDED, Action.RESUME, State.RELEASED, Effect.ALLOW_LAUNCHES),
        (State.CREATED, Action.CANCEL, State.CANCELLED, Effect.NONE),
        (State.RELEASED, Action.CANCEL, State.CANCELLED, Effect.END_OPEN_TASKS),
        (State.SUSPENDED, Action.CANCEL, State.CANCELLED, Effect.END_OPEN_TASKS),
        (State.RELEASED, Action.COMPLETE, State.DONE, Effect.NONE),
    ],
)
def test_allowed_transitions(state, action, target, effect):
    """Each allowed move lands in its target state with its effect."""
    move = transition(1, state, action)
    assert (move.source, move.target, move.effect) == (state, target, effect)


@pytest.mark.parametrize(
    ("state", "action", "message"),
    [
        (State.RELEASED, Action.RELEASE, "already released"),
        (State.SUSPENDED, Action.RELEASE, "already suspended"),
        (State.CREATED, Action.SUSPEND, "not released (release it first)"),
        (State.SUSPENDED, Action.SUSPEND, "already suspended"),
        (State.CREATED, Action.RESUME, "not suspended (release it instead)"),
        (State.RELEASED, Action.RESUME, "released, not suspended"),
        (State.CANCELLED, Action.RESUME, "cancelled, which is final"),
        (State.DONE, Action.CANCEL, "done, which is final"),
        (State.CANCELLED, Action.CANCEL, "cancelled, which is final"),
        (State.SUSPENDED, Action.COMPLETE, "only a released campaign completes"),
    ],
)
def test_refused_transitions_say_why(state, action, message):
    """A refused move names the campaign, the action and the reason."""
    with pytest.raises(TransitionRefused, match=re.escape(message)) as info:
        transition(7, state, action)
    assert f"cannot {action.value} campaign 7" in str(info.value)
    assert info.value.state is state


@given(st.sampled_from(list(State)), st.sampled_from(list(Action)))
def test_every_pair_is_either_a_move_or_a_refusal(state, action):
    """The machine is total: any (state, action) moves or refuses; finals never move."""
    try:
        move = transition(1, state, action)
    except TransitionRefused:
        assert action not in allowed_actions(state) or action is Action.COMPLETE
    else:
        assert not state.is_final and move.target is not State.CREATED
    if state.is_final:
        assert allowed_actions(state) == ()


def test_scope_days_and_tiles():
    """Scope days map to v1 measurement_day integers; tiles are normalised; bad ones refused."""
    scope = Scope("MAJA_PC", date(2024, 1, 1), date(2024, 1, 31), ("31TCH",))
    assert (scope.from_measurement_day, scope.to_measurement_day) == (20240101, 20240131)
    assert normalise_tiles(["t32tlr", "31TCH", "32TLR", " "]) == ("31TCH", "32TLR")
    with pytest.raises(ValueError, match="MGRS"):
        normalise_tiles(["nope"])
    with pytest.raises(ValueError, match="after"):
        Scope("MAJA_PC", date(2024, 2, 1), date(2024, 1, 1))


def test_active_time_excludes_suspensions():
    """Released 2 h, suspended 5 h, released again 1 h: 3 h of active time."""
    log = [
        StateChange(T0, None, State.CREATED),
        StateChange(T0 + timedelta(hours=1), State.CREATED, State.RELEASED),
        StateChange(T0 + timedelta(hours=3), State.RELEASED, State.SUSPENDED),
        StateChange(T0 + timedelta(hours=8), State.SUSPENDED, State.RELEASED),
    ]
    assert active_time(log, T0 + timedelta(hours=9)) == timedelta(hours=3)
    assert active_time(log[:1], T0 + timedelta(hours=9)) == timedelta(0)


def test_progress_eta_from_the_measured_rate():
    """30 done in 3 active hours (10/h), 50 left: ETA 5 h; nothing measured yet: no ETA."""
    p = progress(total=100, done=40, failed=10, done_while_active=30, active=timedelta(hours=3))
    assert (p.left, p.rate_per_hour, p.eta) == (50, 10.0, timedelta(hours=5))
    assert p.fraction_done == 0.5
    fresh = progress(total=10, done=0, failed=0, done_while_active=0, active=timedelta(0))
    assert fresh.eta is None and fresh.rate_per_hour is None
    finished = progress(total=3, done=2, failed=1, done_while_active=0, active=timedelta(0))
    assert finished.eta == timedelta(0)
    with pytest.raises(ValueError, match="negative"):
        progress(total=-1, done=0, failed=0, done_while_active=0, active=timedelta(0))


@given(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(1, 10_000),
    st.integers(1, 10**6),
)
def test_progress_left_and_eta_are_consistent(total, done, failed, active_done, seconds):
    """left never negative; ETA = left / rate whenever a rate was measured."""
    p = progress(
        total=total,
        done=done,
        failed=failed,
        done_while_active=active_done,
        active=timedelta(seconds=seconds),
    )
    assert p.left == max(total - done - failed, 0)
    assert p.rate_per_hour is not None and p.eta is not None
    if p.left:
        assert abs(p.eta.total_seconds() - p.left / p.rate_per_hour * 3600) < 1e-3 * max(
            1, p.eta.total_seconds()
        )
