"""Builders shared by the rule tests: items, histories, commits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hrwsi.domain.rules import model
from hrwsi.domain.rules.model import InputId, Item

DAY = date(2024, 3, 7)
T0 = datetime(2024, 3, 7, 10, 0, tzinfo=UTC)


def item(
    id: int,
    product_type: str,
    *,
    tile: str = "32TLR",
    day: date = DAY,
    minute: float = 0.0,
    length_s: float = 25.0,
    orbit: int | None = None,
    harvested: datetime | None = None,
) -> Item:
    start = datetime.combine(day, T0.timetz()) + timedelta(minutes=minute)
    return Item(
        id=InputId(id),
        product_type=product_type,
        tile=tile,
        day=day,
        sensing_start=start,
        sensing_stop=start + timedelta(seconds=length_s),
        relative_orbit=orbit,
        harvested_at=harvested or start + timedelta(hours=1),
    )


def commit(history: model.History, result: model.Evaluation) -> model.History:
    """What hrwsi.rule_instance would hold after the proposals (one row per key)."""
    known = history.keys
    fresh = [p for p in result.proposals if p.key not in known]
    assert len({p.key for p in fresh}) == len(fresh), "two proposals share a key"
    return history.with_proposals(fresh)
