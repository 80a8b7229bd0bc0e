"""``join_same_tile_day``: an anchor and the partners of the same tile and day.

WDS: a SIG0 (anchor) with the FSC products (partners) of its tile and day, one task per
SIG0. WICS1S2 (``per_partner``): one task per (WICS1, WICS2) pair of a tile and day, so a
WICS2 arriving late gets its own. Either side may arrive first: the second triggers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime

from hrwsi.domain.rules import keys, simple
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
from hrwsi.domain.rules.spec import JoinSameTileDay


def _proposal(
    rule: JoinSameTileDay, anchor: Item, partners: Sequence[Item], key_ids: Sequence[InputId]
) -> TaskProposal:
    inputs = (
        RoleInput(rule.anchor_role, anchor.id),
        *(RoleInput(rule.partner_role, p.id) for p in partners),
    )
    return TaskProposal(
        rule=rule.name,
        condition=rule.condition,
        key=keys.instance_key(rule.name, anchor.tile, anchor.day, key_ids),
        tile=anchor.tile,
        day=anchor.day,
        primary=anchor.id,
        inputs=inputs,
    )


def evaluate(
    rule: JoinSameTileDay, candidates: Sequence[Item], context: GroupContext, now: datetime
) -> Evaluation:
    history = context.history
    claimed = history.claimed
    # The pairs already made (per_partner) or the anchors already used (one task each).
    made = {frozenset(i.inputs) for i in history.instances}
    groups: dict[tuple[str, date], dict[InputId, Item]] = defaultdict(dict)
    for item in (*context.same_tile_day, *candidates):
        if item.product_type in (rule.anchor_type, rule.partner_type):
            groups[(item.tile, item.day)][item.id] = item
    proposals: list[TaskProposal] = []
    waiting: list[Waiting] = []
    skipped: list[Skipped] = []
    for (tile, day), members in sorted(groups.items()):
        anchors: list[Item] = []
        partners: list[Item] = []
        for item in sorted(members.values(), key=lambda i: i.order):
            is_anchor = item.product_type == rule.anchor_type
            reason = simple.stale(item, now, rule.max_days_since_harvest)
            if reason is None and is_anchor:
                reason = simple.off_track(item, rule.tracks)
            if reason is not None:
                if item.id not in claimed:
                    skipped.append(Skipped(rule.name, item.id, reason))
                continue
            (anchors if is_anchor else partners).append(item)
        for anchor in anchors:
            if rule.per_partner:
                for partner in partners:
                    if frozenset({anchor.id, partner.id}) in made:
                        continue
                    proposals.append(_proposal(rule, anchor, [partner], [anchor.id, partner.id]))
            elif partners and anchor.id not in claimed:
                # The anchor alone identifies the task: a second partner arriving later
                # does not make a second task for the same anchor.
                proposals.append(_proposal(rule, anchor, partners, [anchor.id]))
        if anchors and not partners:
            unused = frozenset(a.id for a in anchors if a.id not in claimed)
            if unused:
                waiting.append(
                    Waiting(
                        rule.name,
                        tile,
                        day,
                        f"waiting for a {rule.partner_type} of the same tile and day",
                        unused,
                    )
                )
        if partners and not anchors:
            waiting.append(
                Waiting(
                    rule.name,
                    tile,
                    day,
                    f"waiting for a {rule.anchor_type} of the same tile and day",
                    frozenset(p.id for p in partners),
                )
            )
    known = history.keys
    return Evaluation(
        proposals=tuple(p for p in proposals if p.key not in known),
        waiting=tuple(waiting),
        skipped=tuple(skipped),
    )
