"""``single`` and ``fan_out_filtered``: one input, one task (the latter with filters)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from hrwsi.domain.rules import keys
from hrwsi.domain.rules.model import Evaluation, History, Item, RoleInput, Skipped, TaskProposal
from hrwsi.domain.rules.spec import FanOutFiltered, Single, TrackTable


def stale(item: Item, now: datetime, max_days: float | None) -> str | None:
    """Why the item is too old for the rule, or None."""
    if max_days is None:
        return None
    age = now - item.harvested_at
    if age > timedelta(days=max_days):
        return (
            f"harvested {age.total_seconds() / 86400:.1f} days ago, "
            f"more than max_days_since_harvest ({max_days:g})"
        )
    return None


def off_track(item: Item, tracks: TrackTable | None) -> str | None:
    """Why the item's relative orbit is not valid for its tile, or None."""
    if tracks is None or tracks.allows(item.tile, item.relative_orbit):
        return None
    if item.relative_orbit is None:
        return f"has no relative orbit (track table {tracks.name!r} needs one)"
    return (
        f"relative orbit {item.relative_orbit} is not valid for tile {item.tile} "
        f"in track table {tracks.name!r}"
    )


def evaluate(
    rule: Single | FanOutFiltered, candidates: Sequence[Item], history: History, now: datetime
) -> Evaluation:
    proposals: list[TaskProposal] = []
    skipped: list[Skipped] = []
    claimed = history.claimed
    known = set(history.keys)
    tracks = rule.tracks if isinstance(rule, FanOutFiltered) else None
    for item in sorted(set(candidates), key=lambda i: i.order):
        if item.product_type != rule.input_type or item.id in claimed:
            continue
        reason = stale(item, now, rule.max_days_since_harvest) or off_track(item, tracks)
        if reason is not None:
            skipped.append(Skipped(rule.name, item.id, reason))
            continue
        key = keys.instance_key(rule.name, item.tile, item.day, [item.id])
        if key in known:
            continue
        known.add(key)
        proposals.append(
            TaskProposal(
                rule=rule.name,
                condition=rule.condition,
                key=key,
                tile=item.tile,
                day=item.day,
                primary=item.id,
                inputs=(RoleInput(rule.role, item.id),),
            )
        )
    return Evaluation(proposals=tuple(proposals), skipped=tuple(skipped))
