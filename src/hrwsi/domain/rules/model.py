"""The plain values declarative triggering rules work on.

A rule never reads a table: the database side hands it *facts* (frozen dataclasses built at
the repository edge by set-based queries) and gets back *proposals* (tasks to create, each
with a deterministic instance key) and *waits* (why a rule has not fired yet). Everything a
rule needs is bounded by tile and day, never "the whole history".

Ids are the v1 ``hrwsi.input.id`` values: a task's inputs (``hrwsi.task_input``) and its
primary input (``processing_tasks.input_fk_id``) are input ids, so every fact a rule may
put into a task is an :class:`Item` (an input row of the rule's processing condition).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NewType

InputId = NewType("InputId", int)
TaskId = NewType("TaskId", int)


@dataclass(frozen=True)
class Item:
    """One input row as a rule sees it (``hrwsi.input`` + ``hrwsi.input_meta``).

    ``product_type`` is the product type code (``S2MSI1C``, ``IW_GRDH_1S``,
    ``S2_FSC_L2B``...). ``tile`` is the MGRS tile without its ``T``; ``day`` the measurement
    day. ``sensing_stop`` and ``relative_orbit`` are set for Sentinel-1 items.
    ``harvested_at`` is when the input row was inserted (orphan and freshness clocks).
    """

    id: InputId
    product_type: str
    tile: str
    day: date
    sensing_start: datetime
    harvested_at: datetime
    sensing_stop: datetime | None = None
    relative_orbit: int | None = None
    name: str = ""

    @property
    def order(self) -> tuple[datetime, int]:
        """Oldest first, ties broken by id: the one order every rule uses."""
        return (self.sensing_start, self.id)


@dataclass(frozen=True)
class RoleInput:
    """One input of a proposed task with its role (``l1c``, ``previous_l2a``, ``fsc``...)."""

    role: str
    input_id: InputId


@dataclass(frozen=True)
class TaskProposal:
    """A task a rule wants created, keyed so that proposing it twice creates it once.

    ``inputs`` holds the primary input first; ``params`` reach the routine (for example
    ``mode = L2INIT``). ``key`` goes into ``hrwsi.rule_instance`` (primary key).
    """

    rule: str
    condition: str
    key: str
    tile: str
    day: date
    primary: InputId
    inputs: tuple[RoleInput, ...]
    params: tuple[tuple[str, str], ...] = ()

    @property
    def input_ids(self) -> frozenset[InputId]:
        return frozenset(i.input_id for i in self.inputs)

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)


@dataclass(frozen=True)
class Waiting:
    """Why a rule has not fired yet for a tile and day, in words an operator reads.

    ``inputs`` are the items the wait is about (for ``explain``); ``until`` is set when the
    wait ends by itself at a known time (an orphan slice's deadline).
    """

    rule: str
    tile: str
    day: date
    reason: str
    inputs: frozenset[InputId] = frozenset()
    until: datetime | None = None

    def __str__(self) -> str:
        tile = self.tile or "*"
        return f"{self.rule} {tile} {self.day.isoformat()}: {self.reason}"


@dataclass(frozen=True)
class Skipped:
    """An item a rule looked at and will never use, with the reason (not a wait)."""

    rule: str
    input_id: InputId
    reason: str


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation of one rule decided.

    ``watermark`` is set by ``composite_with_gate`` only: the last day whose gate passed
    (store it in the same transaction as the proposals).
    """

    proposals: tuple[TaskProposal, ...] = ()
    waiting: tuple[Waiting, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    watermark: date | None = None


@dataclass(frozen=True)
class Instance:
    """An existing rule instance (``hrwsi.rule_instance`` joined to ``hrwsi.task_input``)."""

    key: str
    tile: str
    day: date
    inputs: frozenset[InputId]


@dataclass(frozen=True)
class History:
    """What the rule already did around the candidates: its instances there.

    The query: instances of this rule whose (tile, day) is one of the candidates' (or,
    for ``composite_with_gate``, one of the days evaluated). ``claimed`` is every input id
    any of them uses.
    """

    instances: tuple[Instance, ...] = ()

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(i.key for i in self.instances)

    @property
    def claimed(self) -> frozenset[InputId]:
        return frozenset(x for i in self.instances for x in i.inputs)

    def has_tile_day(self, tile: str, day: date) -> bool:
        return any(i.tile == tile and i.day == day for i in self.instances)

    def with_proposals(self, proposals: Iterable[TaskProposal]) -> History:
        """The history once the proposals are committed (what a re-evaluation sees)."""
        extra = tuple(Instance(p.key, p.tile, p.day, p.input_ids) for p in proposals)
        return History(self.instances + extra)


@dataclass(frozen=True)
class SerialContext:
    """``serial_per_tile`` facts, per tile of the candidates.

    ``live_tasks``: tile → ids of this rule's tasks that have not ended. ``previous``: per
    tile, the items of the previous-product type (L2A) measured within ``init_after_days``
    before the newest candidate (a bounded window; the rule picks the latest before each
    L1C).
    """

    history: History = History()
    live_tasks: Mapping[str, tuple[TaskId, ...]] = field(default_factory=dict)
    previous: Mapping[str, tuple[Item, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupContext:
    """``pair_slices`` and ``join_same_tile_day`` facts: every item of the rule's types on
    the candidates' (tile, day) pairs, claimed or not (the candidates may be among them)."""

    history: History = History()
    same_tile_day: tuple[Item, ...] = ()


@dataclass(frozen=True)
class DayGate:
    """How many tasks of each gating condition, measured on ``day``, have not ended."""

    day: date
    unfinished: Mapping[str, int] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return all(n == 0 for n in self.unfinished.values())


@dataclass(frozen=True)
class CompositeContext:
    """``composite_with_gate`` facts for the days after the watermark.

    ``watermark``: the last day already composited (None: the rule starts at ``start_day``).
    ``gates``: one per day evaluated (a missing day counts as open: no task that day).
    ``window``: the items of the input types measured in [first day - window_days, last
    day evaluated], every tile.
    """

    watermark: date | None
    start_day: date
    history: History = History()
    gates: Mapping[date, DayGate] = field(default_factory=dict)
    window: tuple[Item, ...] = ()


Context = SerialContext | GroupContext | CompositeContext | History
