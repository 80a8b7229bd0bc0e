"""``serial_per_tile`` (CC, the MAJA cloud mask): one live task per tile, oldest first.

MAJA's nominal mode needs the tile's previous L2A, so the L1Cs of a tile are processed one
after the other: the next task is proposed only once the tile has no live task left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from hrwsi.domain.rules import keys
from hrwsi.domain.rules.model import (
    Evaluation,
    Item,
    RoleInput,
    SerialContext,
    TaskProposal,
    Waiting,
)
from hrwsi.domain.rules.spec import SerialPerTile


def previous_for(rule: SerialPerTile, item: Item, previous: Sequence[Item]) -> Item | None:
    """The latest previous product of the item's tile sensed before it, within
    ``init_after_days`` of its measurement day; None means the task starts in init mode."""
    best: Item | None = None
    for prev in previous:
        if prev.product_type != rule.previous_type or prev.tile != item.tile:
            continue
        if prev.order >= item.order or (item.day - prev.day).days > rule.init_after_days:
            continue
        if best is None or prev.order > best.order:
            best = prev
    return best


def evaluate(
    rule: SerialPerTile, candidates: Sequence[Item], context: SerialContext, now: datetime
) -> Evaluation:
    del now  # the rule has no clock: order and live tasks decide
    claimed = context.history.claimed
    pending: dict[str, list[Item]] = defaultdict(list)
    for item in set(candidates):
        if item.product_type == rule.input_type and item.id not in claimed:
            pending[item.tile].append(item)
    proposals: list[TaskProposal] = []
    waiting: list[Waiting] = []
    for tile in sorted(pending):
        queue = sorted(pending[tile], key=lambda i: i.order)
        live = context.live_tasks.get(tile, ())
        free = max(rule.max_live_per_tile - len(live), 0)
        for item in queue[:free]:
            prev = previous_for(rule, item, context.previous.get(tile, ()))
            inputs = [RoleInput(rule.role, item.id)]
            if prev is None:
                mode = rule.init_mode
            else:
                mode = rule.nominal_mode
                inputs.append(RoleInput(rule.previous_role, prev.id))
            proposals.append(
                TaskProposal(
                    rule=rule.name,
                    condition=rule.condition,
                    # The L1C alone identifies the instance: a newer L2A arriving between
                    # two evaluations must not make a second task for the same L1C.
                    key=keys.instance_key(rule.name, tile, item.day, [item.id]),
                    tile=tile,
                    day=item.day,
                    primary=item.id,
                    inputs=tuple(inputs),
                    params=((rule.mode_param, mode),),
                )
            )
        rest = queue[free:]
        if not rest:
            continue
        if live:
            ids = ", ".join(str(t) for t in live)
            reason = (
                f"waiting for the live {rule.name} task of the tile to end (task {ids}); "
                f"{len(rest)} input{'s' if len(rest) != 1 else ''} queued, oldest first"
            )
        else:
            reason = f"queued behind an older input of the tile ({len(rest)} waiting)"
        waiting.append(Waiting(rule.name, tile, rest[0].day, reason, frozenset(i.id for i in rest)))
    return Evaluation(proposals=tuple(proposals), waiting=tuple(waiting))
