"""Reprocessing campaigns as orders: their state machine, scope and progress (pure).

::

    created ──release──► released ──suspend──► suspended
       │                  │   ▲                   │
       │                  │   └──────resume───────┘
       │                  └──complete──► done
       └──────────── cancel (from created, released or suspended) ──► cancelled

What each transition does (the effects are carried out by the adapters, in the same
transaction as the state change):

* ``release`` — the campaign's inputs get ``reprocessing`` tasks (phase B: the orchestrator
  plans them at the campaign's priority); ``released_at`` is set.
* ``suspend`` — no new launch for the campaign's tasks; running work finishes.
* ``resume`` — launches resume.
* ``cancel`` — the campaign's open tasks end as cancelled (``hrwsi.task_cancel``); ended ones stay.
* ``complete`` — set by the system when nothing is left (every input done or failed).

``done`` and ``cancelled`` are final. Any other move is refused with a message that says
where the campaign is and what can be done instead (:class:`TransitionRefused`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from hrwsi.domain import errors


class State(enum.StrEnum):
    CREATED = "created"
    RELEASED = "released"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    DONE = "done"

    @property
    def is_final(self) -> bool:
        return self in (State.CANCELLED, State.DONE)


class Action(enum.StrEnum):
    RELEASE = "release"
    SUSPEND = "suspend"
    RESUME = "resume"
    CANCEL = "cancel"
    COMPLETE = "complete"


class Effect(enum.StrEnum):
    CREATE_TASKS = "create_tasks"
    STOP_LAUNCHES = "stop_launches"
    ALLOW_LAUNCHES = "allow_launches"
    END_OPEN_TASKS = "end_open_tasks"
    NONE = "none"


_TABLE: dict[tuple[State, Action], tuple[State, Effect]] = {
    (State.CREATED, Action.RELEASE): (State.RELEASED, Effect.CREATE_TASKS),
    (State.RELEASED, Action.SUSPEND): (State.SUSPENDED, Effect.STOP_LAUNCHES),
    (State.SUSPENDED, Action.RESUME): (State.RELEASED, Effect.ALLOW_LAUNCHES),
    (State.CREATED, Action.CANCEL): (State.CANCELLED, Effect.NONE),
    (State.RELEASED, Action.CANCEL): (State.CANCELLED, Effect.END_OPEN_TASKS),
    (State.SUSPENDED, Action.CANCEL): (State.CANCELLED, Effect.END_OPEN_TASKS),
    (State.RELEASED, Action.COMPLETE): (State.DONE, Effect.NONE),
}

# The timestamp column each target state sets (hrwsi.campaign).
STAMP_OF: dict[State, str] = {
    State.RELEASED: "released_at",
    State.SUSPENDED: "suspended_at",
    State.CANCELLED: "cancelled_at",
    State.DONE: "done_at",
}


class CampaignNotFound(errors.HrwsiError):
    def __init__(self, campaign_id: int) -> None:
        self.campaign_id = campaign_id
        super().__init__(f"campaign {campaign_id} does not exist")


class UnknownCondition(errors.HrwsiError):
    def __init__(self, condition: str) -> None:
        self.condition = condition
        super().__init__(f"unknown processing condition {condition!r}")


class TransitionRefused(errors.HrwsiError):
    """An operator asked for a move the state machine does not allow."""

    def __init__(self, campaign_id: int, state: State, action: Action, why: str) -> None:
        self.campaign_id = campaign_id
        self.state = state
        self.action = action
        super().__init__(f"cannot {action.value} campaign {campaign_id}: {why}")


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    source: State
    target: State
    effect: Effect


def _why_not(state: State, action: Action) -> str:
    if state.is_final:
        return f"it is {state.value}, which is final"
    if action is Action.RELEASE:
        return f"it is already {state.value} (release applies to a created campaign)"
    if action is Action.SUSPEND:
        if state is State.SUSPENDED:
            return "it is already suspended"
        return f"it is {state.value}, not released (release it first)"
    if action is Action.RESUME:
        if state is State.RELEASED:
            return "it is released, not suspended"
        return f"it is {state.value}, not suspended (release it instead)"
    if action is Action.COMPLETE:
        return f"it is {state.value}; only a released campaign completes"
    return f"it is {state.value}"  # pragma: no cover - every refused pair is named above


def transition(campaign_id: int, state: State, action: Action) -> Transition:
    """The move ``action`` makes from ``state``; :class:`TransitionRefused` if none."""
    found = _TABLE.get((state, action))
    if found is None:
        raise TransitionRefused(campaign_id, state, action, _why_not(state, action))
    target, effect = found
    return Transition(action, state, target, effect)


def allowed_actions(state: State) -> tuple[Action, ...]:
    """The actions an operator may take from ``state`` (``complete`` is the system's)."""
    return tuple(a for (s, a) in _TABLE if s is state and a is not Action.COMPLETE)


# Scope -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """What a campaign selects: a condition's inputs measured in [from_day, to_day], on the
    listed tiles (empty: every tile)."""

    condition: str
    from_day: date
    to_day: date
    tiles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.from_day > self.to_day:
            raise ValueError(f"from_day {self.from_day} is after to_day {self.to_day}")
        if not self.condition:
            raise ValueError("a campaign needs a processing condition")

    @property
    def from_measurement_day(self) -> int:
        """``from_day`` as the v1 ``input.measurement_day`` integer (YYYYMMDD)."""
        return _day_int(self.from_day)

    @property
    def to_measurement_day(self) -> int:
        return _day_int(self.to_day)


def _day_int(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def normalise_tiles(tiles: Sequence[str]) -> tuple[str, ...]:
    """Tiles as stored on inputs (upper case, no ``T`` prefix), sorted, each once."""
    cleaned = {t.strip().upper().removeprefix("T") for t in tiles if t.strip()}
    for tile in cleaned:
        if len(tile) != 5 or not tile[:2].isdigit() or not tile[2:].isalpha():
            raise ValueError(f"{tile!r} is not an MGRS tile such as 31TCH")
    return tuple(sorted(cleaned))


# Progress ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChange:
    """One row of the transitions log."""

    at: datetime
    source: State | None
    target: State


def active_time(log: Sequence[StateChange], now: datetime) -> timedelta:
    """How long the campaign has been ``released`` (suspended time does not count)."""
    total = timedelta(0)
    since: datetime | None = None
    for change in sorted(log, key=lambda c: c.at):
        if change.target is State.RELEASED and since is None:
            since = change.at
        elif change.target is not State.RELEASED and since is not None:
            total += change.at - since
            since = None
    if since is not None:
        total += max(now - since, timedelta(0))
    return total


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    done: int
    failed: int
    left: int
    rate_per_hour: float | None  # done per hour of active time, None before any
    eta: timedelta | None  # None when nothing was measured yet, or nothing is left

    @property
    def fraction_done(self) -> float:
        return (self.done + self.failed) / self.total if self.total else 1.0


def progress(
    *, total: int, done: int, failed: int, done_while_active: int, active: timedelta
) -> Progress:
    """Counts and an ETA from the rate measured over the campaign's active time.

    ``done_while_active`` counts the inputs finished since release (earlier products of the
    same inputs do not make the campaign look fast).
    """
    if min(total, done, failed, done_while_active) < 0:
        raise ValueError("counts cannot be negative")
    left = max(total - done - failed, 0)
    hours = active.total_seconds() / 3600
    rate = done_while_active / hours if hours > 0 and done_while_active > 0 else None
    eta: timedelta | None = None
    if left == 0:
        eta = timedelta(0)
    elif rate is not None:
        eta = timedelta(hours=left / rate)
    return Progress(total, done, failed, left, rate, eta)
