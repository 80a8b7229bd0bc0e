"""Capacity per flavour and class: how many tasks of each class may start now.

Per flavour (VM type) a :class:`FlavourLimit` holds ``max_concurrent`` runs, of which a share
is reserved for ``nrt`` work: ``archive`` and ``reprocessing`` together may hold at most
``other_limit = floor((1 - nrt_reserved_share) * max_concurrent)`` runs (70 % with a share of
0.3). NRT work may use every slot. Two modes:

* strict (default): the reserved slots stay free even when no NRT work waits, so a fresh
  input starts at once instead of waiting for an archive run to end — what keeps NRT input →
  dispatch in milliseconds while a backfill fills the cluster;
* ``lend_idle_reserve``: while no NRT work waits, other classes may borrow the reserved slots
  (better throughput; arriving NRT work then waits for runs to end, never for new ones,
  because from then on other classes are held to ``other_limit`` again).

:func:`admit` is the whole rule, for one flavour, given what runs and what waits::

    free      = max_concurrent - running(all classes)
    nrt       = min(waiting nrt, free)
    cap       = max_concurrent if lending and no nrt waits, else other_limit
    other     = min(waiting other, free - nrt, cap - running other)   (never below 0)

``other`` is one budget shared by archive and reprocessing: the claim takes them in rank-time
order (:mod:`hrwsi.domain.priority`), which already mixes them fairly by priority and age.
:func:`split_other` splits it per class in a given order when a caller needs the numbers.
A flavour without a limit admits everything that waits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hrwsi.domain.timeliness import TimelinessClass

OTHER_CLASSES = (TimelinessClass.REPROCESSING, TimelinessClass.ARCHIVE)


@dataclass(frozen=True, slots=True)
class FlavourLimit:
    max_concurrent: int
    nrt_reserved_share: float = 0.0
    lend_idle_reserve: bool = False

    def __post_init__(self) -> None:
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if not 0.0 <= self.nrt_reserved_share <= 1.0:
            raise ValueError("nrt_reserved_share is a fraction between 0 and 1")

    @property
    def other_limit(self) -> int:
        """Runs archive and reprocessing may hold together while the reserve applies."""
        # round() first: (1 - 0.3) * 10 is 6.999999999999999 in binary floating point.
        return math.floor(round((1.0 - self.nrt_reserved_share) * self.max_concurrent, 9))

    @property
    def reserved(self) -> int:
        return self.max_concurrent - self.other_limit


@dataclass(frozen=True, slots=True)
class Counts:
    """Runs (or waiting tasks) of one flavour by class."""

    nrt: int = 0
    archive: int = 0
    reprocessing: int = 0

    def __post_init__(self) -> None:
        if min(self.nrt, self.archive, self.reprocessing) < 0:
            raise ValueError("counts cannot be negative")

    @property
    def other(self) -> int:
        return self.archive + self.reprocessing

    @property
    def total(self) -> int:
        return self.nrt + self.other

    def of(self, klass: TimelinessClass) -> int:
        return int(getattr(self, klass.value))

    @classmethod
    def from_mapping(cls, counts: Mapping[TimelinessClass, int]) -> Counts:
        return cls(**{k.value: int(v) for k, v in counts.items()})


@dataclass(frozen=True, slots=True)
class Admission:
    """How many tasks may start now on one flavour: ``nrt`` and ``other`` (shared budget)."""

    nrt: int
    other: int

    @property
    def total(self) -> int:
        return self.nrt + self.other


def admit(limit: FlavourLimit | None, running: Counts, waiting: Counts) -> Admission:
    """How many waiting tasks of each kind may start now (rule in the module docstring)."""
    if limit is None:
        return Admission(waiting.nrt, waiting.other)
    free = max(limit.max_concurrent - running.total, 0)
    nrt = min(waiting.nrt, free)
    lending = limit.lend_idle_reserve and waiting.nrt == 0
    cap = limit.max_concurrent if lending else limit.other_limit
    other = max(min(waiting.other, free - nrt, cap - running.other), 0)
    return Admission(nrt, other)


def split_other(
    budget: int, waiting: Counts, order: Sequence[TimelinessClass] = OTHER_CLASSES
) -> dict[TimelinessClass, int]:
    """The shared ``other`` budget per class, filling classes in ``order``."""
    left = max(budget, 0)
    split: dict[TimelinessClass, int] = {}
    for klass in order:
        if klass is TimelinessClass.NRT:
            raise ValueError("nrt has its own budget")
        split[klass] = min(waiting.of(klass), left)
        left -= split[klass]
    return split


def admit_all(
    limits: Mapping[str, FlavourLimit],
    running: Mapping[str, Counts],
    waiting: Mapping[str, Counts],
) -> dict[str, Admission]:
    """:func:`admit` for every flavour with waiting work."""
    return {
        flavour: admit(limits.get(flavour), running.get(flavour, Counts()), counts)
        for flavour, counts in waiting.items()
    }
