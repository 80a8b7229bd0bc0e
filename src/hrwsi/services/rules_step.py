"""The rules step of an orchestrator pass: backlog inputs of ruled conditions become tasks.

For every processing condition with a non-``single`` rule (``Config.rules``), the pass hands
its backlog ids here before the v1 path sees them (:meth:`RulesStep.evaluate`):

1. the candidates of ruled conditions are read with their facts (type, tile, day, sensing
   times, relative orbit: from the products table or the product name);
2. per rule, under ``pg_advisory_xact_lock(hashtext('hrwsi.rule'), hashtext(rule))``, the
   bounded context of its kind is read by set-based queries (``rules.sql``) and the pure
   engine (:func:`hrwsi.domain.rules.engine.evaluate`) decides;
3. each proposal gets a *primary* input: the first of its inputs (in the rule's order) that
   is not the primary of a live task nor of another proposal of the pass (the v1 guard: one
   live task per input, see migration 0100); a proposal with none waits for the next pass;
4. the proposals join the pass's pending inputs (``PendingInput`` of their primary) and the
   existing planner plans them like any other task.

After the write, in the same transaction, :meth:`RulesStep.record` adds, for each proposal
whose primary got its task, the ``rule_instance`` row (its key is the primary key: a second
evaluation never makes a second task), the ``task_input`` rows, the ``task_params`` row and
the composite watermark; it takes the candidates off the backlog. Inputs a rule skipped go to
``rule_skip`` and leave the backlog; inputs no proposal took leave it too, except those a
serial or pair rule holds *waiting* (a queued L1C, an orphan slice before its deadline), which
stay and are evaluated again on every pass. The orchestrator's sweep queues again every input
of a ruled condition without a task or task_input row (joins waiting for a partner).
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from hrwsi.db import queries
from hrwsi.domain import errors, wsi_names
from hrwsi.domain.rules import composite, engine, model, spec
from hrwsi.domain.rules.model import InputId, Item, TaskId

log = logging.getLogger(__name__)

Cursor = psycopg.AsyncCursor[TupleRow]


@dataclass(frozen=True, slots=True)
class Chosen:
    """A proposal with the primary input its task gets."""

    proposal: model.TaskProposal
    primary: InputId
    routine: str


@dataclass
class RulesPass:
    """What the rules step decided in one pass (recorded after the plan is written)."""

    handled: set[int] = field(default_factory=set)  # backlog ids the v1 path must not see
    chosen: list[Chosen] = field(default_factory=list)
    deferred: list[model.TaskProposal] = field(default_factory=list)
    waiting: list[model.Waiting] = field(default_factory=list)
    skipped: list[model.Skipped] = field(default_factory=list)
    watermarks: dict[str, date] = field(default_factory=dict)
    unqueue: set[int] = field(default_factory=set)

    def pending(self) -> list[tuple[int, str, str]]:
        """(primary input id, condition, routine) of each chosen proposal."""
        return [(c.primary, c.proposal.condition, c.routine) for c in self.chosen]


def day_number(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def day_of(number: int) -> date:
    return date(number // 10000, number // 100 % 100, number % 100)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def item_of(row: Sequence[Any]) -> Item:
    """An input row (``rules_*`` column order) as a rule sees it."""
    input_id, _cond, _routine, tile, mday, sensed, path, product_name, type_code, harvested = row
    name = product_name or posixpath.basename(str(path or "").rstrip("/"))
    product_type = str(type_code or "")
    start = _aware(sensed)
    stop: datetime | None = None
    orbit: int | None = None
    if name.startswith("S1") and "_GRD" in name:
        product_type = product_type or "IW_GRDH_1S"
        try:
            grd = wsi_names.grd_slice(name, str(tile))
            start, stop, orbit = grd.sensing_start, grd.sensing_stop, grd.relative_orbit
        except errors.HrwsiError:
            pass
    elif "_MSIL1C_" in name:
        product_type = product_type or "S2MSI1C"
    else:
        try:
            parsed = wsi_names.parse(name)
        except errors.HrwsiError:
            parsed = None
        if parsed is not None:
            product_type = product_type or parsed.product_type
            orbit, stop = parsed.relative_orbit, parsed.sensing_stop
    return Item(
        id=InputId(int(input_id)),
        product_type=product_type,
        tile=str(tile).upper().removeprefix("T"),
        day=day_of(int(mday)),
        sensing_start=start,
        harvested_at=_aware(harvested),
        sensing_stop=stop,
        relative_orbit=orbit,
        name=name,
    )


def choose_primaries(
    proposals: Iterable[model.TaskProposal], live: set[int]
) -> tuple[list[tuple[model.TaskProposal, InputId]], list[model.TaskProposal]]:
    """Give each proposal the first of its inputs not already a live or chosen primary."""
    taken = set(live)
    chosen: list[tuple[model.TaskProposal, InputId]] = []
    deferred: list[model.TaskProposal] = []
    for proposal in proposals:
        order = [proposal.primary, *(i.input_id for i in proposal.inputs)]
        free = next((i for i in order if i not in taken), None)
        if free is None:
            deferred.append(proposal)
            continue
        taken.add(free)
        chosen.append((proposal, free))
    return chosen, deferred


def _history(rows: Iterable[Sequence[Any]]) -> model.History:
    return model.History(
        tuple(
            model.Instance(str(r[0]), str(r[1]), r[2], frozenset(InputId(int(x)) for x in r[3]))
            for r in rows
        )
    )


def from_config(config: Any) -> RulesStep:
    """The step for ``config.rules`` (gate conditions named by their routine in waits)."""
    labels = {c.name: c.routine for c in config.processing_conditions}
    return RulesStep(config.rules_config.to_domain(labels=labels))


class RulesStep:
    """Evaluates the configured non-single rules inside an orchestrator pass."""

    def __init__(self, rules: Sequence[spec.Rule], *, clock: Any = None) -> None:
        self.rules = {r.condition: r for r in rules if not isinstance(r, spec.Single)}
        self._clock = clock or (lambda: datetime.now(UTC))

    def __bool__(self) -> bool:
        return bool(self.rules)

    async def evaluate(
        self, conn: psycopg.AsyncConnection[TupleRow], ids: Sequence[int], *, timer: bool
    ) -> RulesPass:
        """Decide for the ruled candidates among ``ids``; ``timer``: also evaluate the
        composite rules that have no candidate (a sweep or a timer pass)."""
        now = self._clock()
        result = RulesPass()
        async with conn.cursor() as cur:
            await cur.execute(
                queries.get("rules_candidates"),
                {"ids": list(ids), "conditions": list(self.rules)},
            )
            rows = await cur.fetchall()
            by_condition: dict[str, list[Item]] = defaultdict(list)
            routine_of: dict[str, str] = {}
            for row in rows:
                by_condition[str(row[1])].append(item_of(row))
                routine_of[str(row[1])] = str(row[2])
                result.handled.add(int(row[0]))
            proposals: list[model.TaskProposal] = []
            keep: set[int] = set()
            for condition, rule in sorted(self.rules.items()):
                candidates = by_condition.get(condition, [])
                if not candidates and not (timer and isinstance(rule, spec.CompositeWithGate)):
                    continue
                await cur.execute(queries.get("rules_lock"), {"rule": rule.name})
                evaluation = await self._evaluate_rule(cur, rule, candidates, now)
                if evaluation is None:
                    continue
                proposals.extend(evaluation.proposals)
                result.waiting.extend(evaluation.waiting)
                result.skipped.extend(evaluation.skipped)
                if evaluation.watermark is not None:
                    result.watermarks[rule.name] = evaluation.watermark
                if isinstance(rule, spec.SerialPerTile | spec.PairSlices):
                    for wait in evaluation.waiting:
                        keep.update(wait.inputs)
                if condition not in routine_of:
                    routine_of[condition] = await self._routine(cur, condition)
            all_inputs = sorted({i for p in proposals for i in p.input_ids})
            live: set[int] = set()
            if all_inputs:
                await cur.execute(queries.get("rules_live_primaries"), {"ids": all_inputs})
                live = {int(r[0]) for r in await cur.fetchall()}
            chosen, result.deferred = choose_primaries(proposals, live)
            result.chosen = [Chosen(p, primary, routine_of[p.condition]) for p, primary in chosen]
            in_proposal = {i for p in proposals for i in p.input_ids}
            for p in result.deferred:
                keep.update(p.input_ids)
                self._hold_watermark(result, p)
            if result.skipped:
                await cur.execute(
                    queries.get("rules_skip"),
                    {
                        "ids": [s.input_id for s in result.skipped],
                        "rules": [s.rule for s in result.skipped],
                        "reasons": [s.reason for s in result.skipped],
                    },
                )
            # Candidates no proposal took and no serial/pair wait holds leave the backlog now;
            # those of proposals leave it once their task is written (record).
            done = sorted(result.handled - keep - in_proposal)
            if done:
                await cur.execute(queries.get("rules_unqueue"), {"ids": done})
            result.unqueue = (result.handled & in_proposal) - keep
        if proposals or result.skipped:
            log.info(
                "orchestrator.rules_evaluated",
                extra={
                    "candidates": len(result.handled),
                    "proposals": len(proposals),
                    "deferred": len(result.deferred),
                    "waiting": len(result.waiting),
                    "skipped": len(result.skipped),
                },
            )
        return result

    @staticmethod
    def _hold_watermark(result: RulesPass, proposal: model.TaskProposal) -> None:
        mark = result.watermarks.get(proposal.rule)
        if mark is not None and proposal.day <= mark:
            result.watermarks[proposal.rule] = proposal.day - timedelta(days=1)

    async def record(self, conn: psycopg.AsyncConnection[TupleRow], result: RulesPass) -> int:
        """Write the instances of the proposals whose primary got a task in this pass (and
        the composite watermarks, held before any proposal left unwritten)."""
        written: set[str] = set()
        async with conn.cursor() as cur:
            if result.chosen:
                props = [c.proposal for c in result.chosen]
                await cur.execute(
                    queries.get("rules_record"),
                    {
                        "keys": [p.key for p in props],
                        "rules": [p.rule for p in props],
                        "tiles": [p.tile for p in props],
                        "days": [p.day for p in props],
                        "primaries": [c.primary for c in result.chosen],
                        "params": [json.dumps(dict(p.params)) for p in props],
                        "link_keys": [p.key for p in props for _ in p.inputs],
                        "link_inputs": [i.input_id for p in props for i in p.inputs],
                        "link_roles": [i.role for p in props for i in p.inputs],
                    },
                )
                row = await cur.fetchone()
                assert row is not None
                instances, matched, keys = int(row[0]), int(row[1]), row[2]
                if instances != matched:
                    # A task was written for an instance that already exists: roll it all back.
                    raise errors.DatabaseError(
                        f"rules: {matched - instances} task(s) for existing rule instances"
                    )
                written = set(keys)
                left = [c.proposal for c in result.chosen if c.proposal.key not in written]
                for proposal in left:
                    self._hold_watermark(result, proposal)
                done = sorted(
                    {
                        i
                        for c in result.chosen
                        if c.proposal.key in written
                        for i in c.proposal.input_ids
                    }
                    & result.unqueue
                )
                if done:
                    await cur.execute(queries.get("rules_unqueue"), {"ids": done})
            for rule, day in sorted(result.watermarks.items()):
                await cur.execute(
                    queries.get("rules_advance_watermark"), {"rule": rule, "day": day}
                )
        if written:
            log.info("orchestrator.rule_instances", extra={"instances": len(written)})
        return len(written)

    # contexts --------------------------------------------------------------------------

    async def _routine(self, cur: Cursor, condition: str) -> str:
        await cur.execute(queries.get("rules_routine"), {"condition": condition})
        row = await cur.fetchone()
        return str(row[0]) if row else ""

    async def _evaluate_rule(
        self, cur: Cursor, rule: spec.Rule, candidates: list[Item], now: datetime
    ) -> model.Evaluation | None:
        context = await self.context(cur, rule, candidates, now)
        if context is None:
            return None
        return engine.evaluate(rule, candidates, context, now)

    async def context(
        self, cur: Cursor, rule: spec.Rule, candidates: Sequence[Item], now: datetime
    ) -> model.Context | None:
        """The bounded facts the rule's kind needs (None: nothing to evaluate yet)."""
        pairs = sorted({(i.tile, i.day) for i in candidates})
        match rule:
            case spec.CompositeWithGate():
                return await self._composite(cur, rule, candidates, now)
            case spec.Single() | spec.FanOutFiltered():
                return await self._history_tile_day(cur, rule.name, pairs)
            case spec.SerialPerTile():
                history = await self._history_tile_day(cur, rule.name, pairs)
                tiles = sorted({t for t, _ in pairs})
                await cur.execute(
                    queries.get("rules_live_tasks"), {"condition": rule.condition, "tiles": tiles}
                )
                live: dict[str, list[TaskId]] = defaultdict(list)
                for tile, task_id in await cur.fetchall():
                    live[str(tile).upper().removeprefix("T")].append(TaskId(int(task_id)))
                first = min(d for _, d in pairs) - timedelta(days=rule.init_after_days)
                last = max(d for _, d in pairs)
                items = await self._items_days(cur, rule.condition, first, last, tiles)
                previous: dict[str, list[Item]] = defaultdict(list)
                for item in items:
                    if item.product_type == rule.previous_type:
                        previous[item.tile].append(item)
                return model.SerialContext(
                    history,
                    {t: tuple(v) for t, v in live.items()},
                    {t: tuple(v) for t, v in previous.items()},
                )
            case spec.PairSlices() | spec.JoinSameTileDay():
                history = await self._history_tile_day(cur, rule.name, pairs)
                await cur.execute(
                    queries.get("rules_items_tile_day"),
                    {
                        "condition": rule.condition,
                        "tiles": [t for t, _ in pairs],
                        "days": [day_number(d) for _, d in pairs],
                    },
                )
                same = tuple(item_of(r) for r in await cur.fetchall())
                return model.GroupContext(history, same)

    async def _history_tile_day(
        self, cur: Cursor, rule: str, pairs: Sequence[tuple[str, date]]
    ) -> model.History:
        await cur.execute(
            queries.get("rules_history_tile_day"),
            {"rule": rule, "tiles": [t for t, _ in pairs], "days": [d for _, d in pairs]},
        )
        return _history(await cur.fetchall())

    async def _items_days(
        self, cur: Cursor, condition: str, first: date, last: date, tiles: Sequence[str] | None
    ) -> list[Item]:
        await cur.execute(
            queries.get("rules_items_days"),
            {
                "condition": condition,
                "first": day_number(first),
                "last": day_number(last),
                "tiles": list(tiles) if tiles is not None else None,
            },
        )
        return [item_of(r) for r in await cur.fetchall()]

    async def _composite(
        self,
        cur: Cursor,
        rule: spec.CompositeWithGate,
        candidates: Sequence[Item],
        now: datetime,
    ) -> model.CompositeContext | None:
        await cur.execute(queries.get("rules_watermark"), {"rule": rule.name})
        row = await cur.fetchone()
        watermark: date | None = row[0] if row else None
        start = min((i.day for i in candidates), default=None)
        if watermark is None and start is None:
            await cur.execute(queries.get("rules_first_day"), {"condition": rule.condition})
            first_row = await cur.fetchone()
            if first_row is None or first_row[0] is None:
                return None
            start = day_of(int(first_row[0]))
        probe = model.CompositeContext(watermark, start or date.min)
        first, last = composite.days_to_evaluate(rule, probe)
        if now < composite.closes_at(rule, first):
            return probe  # the first day is not over: the engine says so, no query needed
        last = min(last, now.date())
        await cur.execute(
            queries.get("rules_gates"),
            {
                "conditions": list(rule.gate_conditions),
                "first": day_number(first),
                "last": day_number(last),
            },
        )
        unfinished: dict[date, dict[str, int]] = defaultdict(dict)
        for mday, condition, n in await cur.fetchall():
            unfinished[day_of(int(mday))][str(condition)] = int(n)
        gates = {d: model.DayGate(d, u) for d, u in unfinished.items()}
        await cur.execute(
            queries.get("rules_history_days"), {"rule": rule.name, "first": first, "last": last}
        )
        history = _history(await cur.fetchall())
        window = await self._items_days(
            cur, rule.condition, first - timedelta(days=rule.window_days), last, None
        )
        return model.CompositeContext(watermark, start or first, history, gates, tuple(window))
