"""``pair_slices`` (SIG0 from Sentinel-1 GRD): touching slices of one tile, day and
relative orbit make one task; a lone slice gets its own once ``orphan_after`` has passed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from hrwsi.domain.rules import keys
from hrwsi.domain.rules.model import (
    Evaluation,
    GroupContext,
    InputId,
    Item,
    RoleInput,
    Skipped,
    TaskProposal,
    Waiting,
)
from hrwsi.domain.rules.spec import PairSlices


def stop_of(item: Item) -> datetime:
    return item.sensing_stop or item.sensing_start


def touching_groups(items: Sequence[Item], tolerance: timedelta) -> list[list[Item]]:
    """Chains of slices, each starting at most ``tolerance`` after the chain so far stops
    (overlapping slices touch). Oldest first, within and across groups."""
    groups: list[list[Item]] = []
    group_stop: datetime | None = None
    for item in sorted(items, key=lambda i: i.order):
        if group_stop is not None and item.sensing_start - group_stop <= tolerance:
            groups[-1].append(item)
            group_stop = max(group_stop, stop_of(item))
        else:
            groups.append([item])
            group_stop = stop_of(item)
    return groups


def _propose(rule: PairSlices, tile: str, day: date, members: Sequence[Item]) -> TaskProposal:
    ids = [m.id for m in members]
    return TaskProposal(
        rule=rule.name,
        condition=rule.condition,
        key=keys.instance_key(rule.name, tile, day, ids),
        tile=tile,
        day=day,
        primary=members[0].id,
        inputs=tuple(RoleInput(rule.role, i) for i in ids),
    )


def evaluate(
    rule: PairSlices, candidates: Sequence[Item], context: GroupContext, now: datetime
) -> Evaluation:
    claimed = context.history.claimed
    known = context.history.keys
    pool: dict[InputId, Item] = {}
    skipped: list[Skipped] = []
    for item in (*context.same_tile_day, *candidates):
        if item.product_type != rule.input_type:
            continue
        if item.relative_orbit is None:
            if item.id not in claimed:
                skipped.append(Skipped(rule.name, item.id, "has no relative orbit"))
            continue
        pool[item.id] = item
    by_pass: dict[tuple[str, date, int], list[Item]] = defaultdict(list)
    for item in pool.values():
        assert item.relative_orbit is not None
        by_pass[(item.tile, item.day, item.relative_orbit)].append(item)
    proposals: list[TaskProposal] = []
    waiting: list[Waiting] = []
    for (tile, day, orbit), items in sorted(by_pass.items()):
        todo: list[list[Item]] = []
        for whole in touching_groups(items, rule.touch_tolerance):
            free = [m for m in whole if m.id not in claimed]
            if len(free) == len(whole):
                todo.append(whole)
            elif free and rule.late_partner == "drop":
                # A slice touching slices that already have a task: never re-create theirs.
                reason = (
                    f"touches slices of relative orbit {orbit} already processed by an "
                    "earlier task; not processed again (late_partner = drop)"
                )
                skipped.extend(Skipped(rule.name, m.id, reason) for m in free)
            elif free:
                # "alone": the unclaimed slices, regrouped among themselves (a claimed
                # slice between two of them splits them).
                todo.extend(touching_groups(free, rule.touch_tolerance))
        for group in todo:
            if len(group) == 1:
                deadline = group[0].harvested_at + rule.orphan_after
                if now < deadline:
                    waiting.append(
                        Waiting(
                            rule.name,
                            tile,
                            day,
                            f"waiting for a touching slice of relative orbit {orbit} until "
                            f"{deadline:%Y-%m-%d %H:%M} UTC, then processed alone",
                            frozenset({group[0].id}),
                            until=deadline,
                        )
                    )
                    continue
            proposal = _propose(rule, tile, day, group)
            if proposal.key not in known:
                proposals.append(proposal)
    return Evaluation(proposals=tuple(proposals), waiting=tuple(waiting), skipped=tuple(skipped))
