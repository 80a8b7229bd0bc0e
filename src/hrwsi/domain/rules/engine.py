"""Evaluate any rule, and explain what the rules make of one input.

``evaluate(rule, candidates, context, now)`` is the one entry point the orchestrator calls,
once per rule and transaction: ``candidates`` are the new inputs of the rule's condition
(from NOTIFY or the sweep), ``context`` the bounded facts its kind needs:

==========================  ======================  =========================================
kind                        context                 what the database must supply
==========================  ======================  =========================================
``single``                  :class:`History`        instances on the candidates' (tile, day)
``fan_out_filtered``        :class:`History`        idem
``serial_per_tile``         :class:`SerialContext`  + live tasks per tile, previous products
``pair_slices``             :class:`GroupContext`   + every slice of the (tile, day)s
``join_same_tile_day``      :class:`GroupContext`   + every anchor/partner of the (tile, day)s
``composite_with_gate``     :class:`CompositeContext`  watermark, gates and window per day
==========================  ======================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from hrwsi.domain.rules import composite, join, pairs, serial, simple
from hrwsi.domain.rules.model import (
    CompositeContext,
    Context,
    Evaluation,
    GroupContext,
    History,
    Item,
    SerialContext,
)
from hrwsi.domain.rules.spec import (
    CompositeWithGate,
    FanOutFiltered,
    JoinSameTileDay,
    PairSlices,
    Rule,
    SerialPerTile,
    Single,
    trigger_types,
)

_C = TypeVar("_C")


def _expect(rule: Rule, context: Context, kind: type[_C]) -> _C:
    if not isinstance(context, kind):
        raise TypeError(
            f"rule {rule.name!r} ({rule.kind}) needs a {kind.__name__}, "
            f"got {type(context).__name__}"
        )
    return context


def evaluate(rule: Rule, candidates: Sequence[Item], context: Context, now: datetime) -> Evaluation:
    """What the rule wants created now; pure, so evaluating twice proposes the same keys."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    match rule:
        case Single() | FanOutFiltered():
            return simple.evaluate(rule, candidates, _expect(rule, context, History), now)
        case SerialPerTile():
            return serial.evaluate(rule, candidates, _expect(rule, context, SerialContext), now)
        case PairSlices():
            return pairs.evaluate(rule, candidates, _expect(rule, context, GroupContext), now)
        case JoinSameTileDay():
            return join.evaluate(rule, candidates, _expect(rule, context, GroupContext), now)
        case CompositeWithGate():
            return composite.evaluate(rule, _expect(rule, context, CompositeContext), now)


def history_of(context: Context) -> History:
    return context if isinstance(context, History) else context.history


Status = Literal["feeds", "proposed", "waiting", "skipped", "matched"]


@dataclass(frozen=True)
class Finding:
    """What one rule makes of the input."""

    rule: str
    status: Status
    text: str
    keys: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "status": self.status,
            "text": self.text,
            "keys": list(self.keys),
        }


def explain(
    item: Item,
    rules: Sequence[Rule],
    evaluations: Mapping[str, Evaluation],
    histories: Mapping[str, History],
) -> tuple[Finding, ...]:
    """Which rules match the input, which instances it feeds, what a waiting rule waits for.

    ``evaluations``: the result of evaluating each matching rule with the input among its
    candidates (a dry run); ``histories``: each rule's instances around the input.
    """
    findings: list[Finding] = []
    for rule in rules:
        previous = isinstance(rule, SerialPerTile) and item.product_type == rule.previous_type
        if item.product_type not in trigger_types(rule) and not previous:
            continue
        history = histories.get(rule.name, History())
        fed = tuple(i.key for i in history.instances if item.id in i.inputs)
        if fed:
            text = f"{rule.name}: feeds {len(fed)} task{'s' if len(fed) != 1 else ''}"
            findings.append(Finding(rule.name, "feeds", text, fed))
        result = evaluations.get(rule.name, Evaluation())
        mine = tuple(p.key for p in result.proposals if item.id in p.input_ids)
        if mine:
            text = f"{rule.name} {item.tile} {item.day.isoformat()}: ready, task to create"
            findings.append(Finding(rule.name, "proposed", text, mine))
        for wait in result.waiting:
            concerns = item.id in wait.inputs or (
                not wait.inputs and item.day <= wait.day <= item.day + _window(rule)
            )
            if concerns:
                tile = wait.tile or item.tile
                text = f"{rule.name} {tile} {wait.day.isoformat()}: {wait.reason}"
                findings.append(Finding(rule.name, "waiting", text))
        for skip in result.skipped:
            if skip.input_id == item.id:
                text = f"{rule.name}: not used: {skip.reason}"
                findings.append(Finding(rule.name, "skipped", text))
        if not any(f.rule == rule.name for f in findings):
            text = f"{rule.name}: matches {item.product_type}; nothing to do"
            if previous:
                text = f"{rule.name}: previous product for the next input of tile {item.tile}"
            findings.append(Finding(rule.name, "matched", text))
    return tuple(findings)


def _window(rule: Rule) -> timedelta:
    """How many days after its own an item may still feed the rule (composites)."""
    return timedelta(days=rule.window_days if isinstance(rule, CompositeWithGate) else 0)
