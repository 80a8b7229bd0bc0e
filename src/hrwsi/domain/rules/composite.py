"""``composite_with_gate`` (GFSC): per tile and day D, the FSC and SWS products of
[D - 7, D], once every CC, SIG0, FSC and SWS task measured on D has ended.

A per-rule watermark (the last day composited) advances one day at a time and holds at
the first day whose gate is shut, so a day is composited once, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from hrwsi.domain.rules import keys
from hrwsi.domain.rules.model import (
    CompositeContext,
    Evaluation,
    Item,
    RoleInput,
    TaskProposal,
    Waiting,
)
from hrwsi.domain.rules.spec import CompositeWithGate


def closes_at(rule: CompositeWithGate, day: date) -> datetime:
    """When day D counts as over: its end plus ``day_closes_after`` (late harvests)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC) + rule.day_closes_after


def gate_reason(unfinished: Mapping[str, int], labels: Mapping[str, str]) -> str:
    parts = [
        f"{n} {labels.get(cond, cond)} task{'s' if n != 1 else ''}"
        for cond, n in sorted(unfinished.items())
        if n > 0
    ]
    return "waiting for " + ", ".join(parts) + " of that day"


def days_to_evaluate(rule: CompositeWithGate, context: CompositeContext) -> tuple[date, date]:
    """The first and last day an evaluation may look at (the context queries' bounds)."""
    first = context.watermark + timedelta(days=1) if context.watermark else context.start_day
    return first, first + timedelta(days=rule.max_catch_up_days - 1)


def evaluate(
    rule: CompositeWithGate,
    context: CompositeContext,
    now: datetime,
) -> Evaluation:
    labels = dict(rule.gate_labels)
    day, last = days_to_evaluate(rule, context)
    watermark = context.watermark
    by_day: dict[date, list[Item]] = defaultdict(list)
    for item in context.window:
        if item.product_type in rule.input_types:
            by_day[item.day].append(item)
    proposals: list[TaskProposal] = []
    waiting: list[Waiting] = []
    while day <= last:
        closes = closes_at(rule, day)
        if now < closes:
            reason = f"waiting for the day to close at {closes:%Y-%m-%d %H:%M} UTC"
            waiting.append(Waiting(rule.name, "", day, reason))
            break
        gate = context.gates.get(day)
        if gate is not None and not gate.open:
            waiting.append(Waiting(rule.name, "", day, gate_reason(gate.unfinished, labels)))
            break
        per_tile: dict[str, list[Item]] = defaultdict(list)
        for offset in range(rule.window_days + 1):
            for item in by_day.get(day - timedelta(days=offset), ()):
                per_tile[item.tile].append(item)
        for tile in sorted(per_tile):
            if context.history.has_tile_day(tile, day):
                continue
            items = sorted(set(per_tile[tile]), key=lambda i: i.order)
            primary = items[-1]  # the newest product of the window
            inputs = tuple(
                RoleInput(rule.role_of(i.product_type), i.id) for i in [primary, *items[:-1]]
            )
            proposals.append(
                TaskProposal(
                    rule=rule.name,
                    condition=rule.condition,
                    key=keys.instance_key(rule.name, tile, day, [i.id for i in items]),
                    tile=tile,
                    day=day,
                    primary=primary.id,
                    inputs=inputs,
                    params=(("date", day.isoformat()), ("window_days", str(rule.window_days))),
                )
            )
        watermark = day
        day += timedelta(days=1)
    known = context.history.keys
    return Evaluation(
        proposals=tuple(p for p in proposals if p.key not in known),
        waiting=tuple(waiting),
        watermark=watermark,
    )
