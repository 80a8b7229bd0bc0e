"""The rule kinds, as plain frozen values built from the configuration.

Each kind is one dataclass; :data:`Rule` is their union. The pydantic models that read them
from TOML live in :mod:`hrwsi.rules_config`, outside the domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal


@dataclass(frozen=True)
class TrackTable:
    """Which Sentinel-1 relative orbits are valid for each tile (tile without its ``T``)."""

    name: str
    orbits: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def allows(self, tile: str, relative_orbit: int | None) -> bool:
        if relative_orbit is None:
            return False
        return relative_orbit in self.orbits.get(tile, frozenset())


@dataclass(frozen=True)
class Single:
    """One input → one task (the v1 behaviour)."""

    name: str
    condition: str
    input_type: str
    role: str = "input"
    max_days_since_harvest: float | None = None
    kind: Literal["single"] = "single"


@dataclass(frozen=True)
class FanOutFiltered:
    """One input → one task, if fresh enough and (with a track table) on a valid orbit.

    One rule per target condition: an L2A feeds the FSC rule and the WICS2 rule, a SIG0 the
    SWS rule and the WICS1 rule.
    """

    name: str
    condition: str
    input_type: str
    role: str = "input"
    max_days_since_harvest: float | None = 7.0
    tracks: TrackTable | None = None
    kind: Literal["fan_out_filtered"] = "fan_out_filtered"


@dataclass(frozen=True)
class SerialPerTile:
    """CC (MAJA): at most ``max_live_per_tile`` live tasks per tile, oldest input first.

    With no previous product of the tile measured within ``init_after_days`` before the
    input the task runs in ``init_mode`` on [input]; else in ``nominal_mode`` on
    [input, latest previous product].
    """

    name: str
    condition: str
    input_type: str
    previous_type: str
    init_after_days: int = 90
    role: str = "l1c"
    previous_role: str = "previous_l2a"
    mode_param: str = "mode"
    init_mode: str = "L2INIT"
    nominal_mode: str = "L2NOMINAL"
    max_live_per_tile: int = 1
    kind: Literal["serial_per_tile"] = "serial_per_tile"


@dataclass(frozen=True)
class PairSlices:
    """SIG0: touching slices of one tile, day and relative orbit make one task.

    Slices touch when the next one starts at most ``touch_tolerance`` after the previous
    one stops (overlaps touch); chains of any length are one group. A lone slice older
    than ``orphan_after`` (since harvest) gets a task of its own. A slice touching slices
    that already have a task is dropped (``late_partner = "drop"``, as HR-WSI does) or gets
    a task of its own (``"alone"``); it never re-creates theirs.
    """

    name: str
    condition: str
    input_type: str
    role: str = "grd"
    touch_tolerance: timedelta = timedelta(seconds=2)
    orphan_after: timedelta = timedelta(hours=2)
    late_partner: Literal["drop", "alone"] = "drop"
    kind: Literal["pair_slices"] = "pair_slices"


@dataclass(frozen=True)
class JoinSameTileDay:
    """A task from an anchor and the partners of the same tile and day; whichever arrives
    second triggers it.

    ``per_partner = False`` (WDS): one task per anchor with every partner present when it
    fires. ``per_partner = True`` (WICS1S2): one task per (anchor, partner) pair, so a late
    partner gets its own task.
    """

    name: str
    condition: str
    anchor_type: str
    partner_type: str
    anchor_role: str
    partner_role: str
    per_partner: bool = False
    max_days_since_harvest: float | None = None
    tracks: TrackTable | None = None
    kind: Literal["join_same_tile_day"] = "join_same_tile_day"


@dataclass(frozen=True)
class CompositeWithGate:
    """GFSC: per tile and day D, the items of ``input_roles`` types measured in
    [D - window_days, D], once every task of ``gate_conditions`` measured on D has ended.

    Days are taken in order after the watermark; the first day whose gate is shut (or
    that has not closed yet: ``day_closes_after`` past its end) holds the watermark. At most
    ``max_catch_up_days`` days per evaluation.
    """

    name: str
    condition: str
    input_roles: tuple[tuple[str, str], ...]
    gate_conditions: tuple[str, ...]
    window_days: int = 7
    day_closes_after: timedelta = timedelta(hours=6)
    max_catch_up_days: int = 31
    # How a gating condition is named in a wait ("3 FSC tasks"); default: its name.
    gate_labels: tuple[tuple[str, str], ...] = ()
    kind: Literal["composite_with_gate"] = "composite_with_gate"

    @property
    def input_types(self) -> frozenset[str]:
        return frozenset(t for t, _ in self.input_roles)

    def role_of(self, product_type: str) -> str:
        return dict(self.input_roles)[product_type]


Rule = Single | FanOutFiltered | SerialPerTile | PairSlices | JoinSameTileDay | CompositeWithGate


def trigger_types(rule: Rule) -> frozenset[str]:
    """The product types whose arrival makes the rule worth evaluating."""
    match rule:
        case Single() | FanOutFiltered() | SerialPerTile() | PairSlices():
            return frozenset({rule.input_type})
        case JoinSameTileDay():
            return frozenset({rule.anchor_type, rule.partner_type})
        case CompositeWithGate():
            return rule.input_types
