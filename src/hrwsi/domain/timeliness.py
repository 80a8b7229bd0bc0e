"""Timeliness classes: how urgently an input (and so each task made from it) is wanted.

Three classes, one per way an input reaches hrwsi:

* ``nrt`` — near real time: found by a near-real-time harvest pass, sensed and published
  recently (within the :class:`NrtWindow`, by default the harvest query's own
  ``max_days_since_measurement`` / ``max_days_since_publication``, optionally tightened per
  condition). For Sentinel-1 the catalogue says it itself: the ``timeliness`` attribute
  (``"NRT-3h"``, ``"NRT-10m"``, ``"Fast-24h"`` are near-real-time products; any other value,
  such as ``"Reprocessing"`` or ``"Off-line"``, is not);
* ``archive`` — a backfill (``hrwsi harvest --from … --to …``), or anything outside the window;
* ``reprocessing`` — selected by a released campaign (see :mod:`hrwsi.domain.campaign`).

An input made from one of our products (L2A → FSC) inherits the class of the task that made
the product: a fresh L2A gives a fresh FSC input, a campaign's L2A a campaign FSC input.

:func:`classify` applies the rules in this order: campaign, inherited, backfill, the S1
attribute, the window. It is pure: the caller passes ``now`` (the harvest time).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class TimelinessClass(enum.StrEnum):
    NRT = "nrt"
    ARCHIVE = "archive"
    REPROCESSING = "reprocessing"


class HarvestMode(enum.StrEnum):
    """How the input was found."""

    NEAR_REAL_TIME = "near_real_time"  # a periodic pass from the query's watermark
    BACKFILL = "backfill"  # hrwsi harvest --from --to
    CHAINED = "chained"  # made from one of our products (products -> inputs)


# The S1 catalogue attribute holding the timeliness category (see the recorded CDSE bodies in
# hrwsi/testing/fixtures/odata/cdsedocs_s1_grdh_entity_expand_attributes_*.json).
S1_TIMELINESS_ATTRIBUTE = "timeliness"
_S1_FAST_PREFIXES = ("NRT-", "Fast-")


@dataclass(frozen=True, slots=True)
class NrtWindow:
    """An input is fresh when sensed within ``max_since_sensing`` and published within
    ``max_since_publication`` of the harvest time."""

    max_since_sensing: timedelta
    max_since_publication: timedelta

    def __post_init__(self) -> None:
        if self.max_since_sensing <= timedelta(0) or self.max_since_publication <= timedelta(0):
            raise ValueError("the near-real-time window must be positive")

    @classmethod
    def of_days(cls, since_measurement: float, since_publication: float) -> NrtWindow:
        """The window of a harvest query (``max_days_since_*``)."""
        return cls(timedelta(days=since_measurement), timedelta(days=since_publication))

    def tightened(
        self, max_since_sensing: timedelta | None, max_since_publication: timedelta | None
    ) -> NrtWindow:
        """This window narrowed by optional per-condition limits (never widened)."""
        sensing = self.max_since_sensing
        publication = self.max_since_publication
        if max_since_sensing is not None:
            sensing = min(sensing, max_since_sensing)
        if max_since_publication is not None:
            publication = min(publication, max_since_publication)
        return NrtWindow(sensing, publication)

    def contains(self, *, sensing: datetime, publication: datetime | None, now: datetime) -> bool:
        """Whether sensing (and publication, when known) are recent enough at ``now``."""
        if now - sensing > self.max_since_sensing:
            return False
        return publication is None or now - publication <= self.max_since_publication


def s1_is_fast(attribute_value: object) -> bool | None:
    """What the S1 ``timeliness`` attribute says: True for NRT/Fast products, False for other
    values, None when absent or not a string (then the window decides)."""
    if not isinstance(attribute_value, str) or not attribute_value.strip():
        return None
    return attribute_value.strip().startswith(_S1_FAST_PREFIXES)


@dataclass(frozen=True, slots=True)
class InputFacts:
    """What the class of one input depends on."""

    sensing: datetime
    publication: datetime | None
    mode: HarvestMode
    mission: str | None = None
    s1_timeliness: str | None = None  # the catalogue attribute, S1 only
    campaign_id: int | None = None
    inherited: TimelinessClass | None = None  # the class of the task that made the source


def classify(facts: InputFacts, window: NrtWindow, *, now: datetime) -> TimelinessClass:
    """The timeliness class of an input harvested at ``now`` (rules in the module docstring)."""
    if facts.campaign_id is not None:
        return TimelinessClass.REPROCESSING
    if facts.inherited is not None:
        return facts.inherited
    if facts.mode is HarvestMode.BACKFILL:
        return TimelinessClass.ARCHIVE
    if facts.mode is HarvestMode.CHAINED:
        # A product-made input whose source class is unknown (made before classes existed).
        return TimelinessClass.ARCHIVE
    fresh = window.contains(sensing=facts.sensing, publication=facts.publication, now=now)
    if facts.mission == "S1" and s1_is_fast(facts.s1_timeliness) is False:
        return TimelinessClass.ARCHIVE
    return TimelinessClass.NRT if fresh else TimelinessClass.ARCHIVE
