"""Each rule kind on hand-made histories: late arrivals, orphans, out of order, re-runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from rules_helpers import DAY, T0, commit, item

from hrwsi.domain.rules import engine, keys, model, spec
from hrwsi.domain.rules.model import InputId, TaskId

NOW = T0 + timedelta(hours=3)


# ------------------------------------------------------------------ keys


def test_key_is_deterministic_and_order_free() -> None:
    """Same rule, tile, day and input set give one key whatever the order."""
    ids = [InputId(3), InputId(1), InputId(2)]
    assert keys.instance_key("R", "32TLR", DAY, ids) == keys.instance_key(
        "R", "32TLR", DAY, sorted(ids)
    )
    assert keys.instance_key("R", "32TLR", DAY, ids) == "R:32TLR:20240307:1+2+3"
    assert keys.instance_key("R", "32TLR", DAY, ids) != keys.instance_key(
        "R", "32TLR", DAY, ids[:2]
    )
    many = [InputId(i) for i in range(40)]
    assert keys.instance_key("R", "T", DAY, many) == keys.instance_key("R", "T", DAY, many[::-1])
    assert keys.instance_key("R", "T", DAY, many) != keys.instance_key("R", "T", DAY, many[1:])


# ------------------------------------------------------------------ single / fan-out

FSC = spec.FanOutFiltered("FSC_TC", "FSC_TC", "S2_MAJA_L2A", "l2a", 7.0)
TRACKS = spec.TrackTable("sws", {"32TLR": frozenset({15, 66})})
SWS = spec.FanOutFiltered("SWS_TC", "SWS_TC", "S1_NRB_L2A", "sig0", 7.0, TRACKS)


def test_single_one_task_per_input_and_idempotent() -> None:
    """Every input gets one task; a second evaluation proposes nothing new."""
    rule = spec.Single("MAJA_PC", "MAJA_PC", "S2MSI1C")
    items = [item(i, "S2MSI1C", minute=i) for i in (1, 2)]
    first = engine.evaluate(rule, items, model.History(), NOW)
    assert [p.primary for p in first.proposals] == [1, 2]
    assert first.proposals[0].inputs == (model.RoleInput("input", InputId(1)),)
    again = engine.evaluate(rule, items, commit(model.History(), first), NOW)
    assert again.proposals == ()


def test_fan_out_filters_freshness() -> None:
    """An L2A harvested more than max_days_since_harvest ago is skipped with the reason."""
    fresh = item(1, "S2_MAJA_L2A")
    old = item(2, "S2_MAJA_L2A", harvested=NOW - timedelta(days=8))
    result = engine.evaluate(FSC, [fresh, old], model.History(), NOW)
    assert [p.primary for p in result.proposals] == [1]
    assert [s.input_id for s in result.skipped] == [2]
    assert "max_days_since_harvest (7)" in result.skipped[0].reason


def test_fan_out_track_table() -> None:
    """A SIG0 feeds SWS only on a relative orbit valid for its tile."""
    ok = item(1, "S1_NRB_L2A", orbit=66)
    wrong_orbit = item(2, "S1_NRB_L2A", orbit=117)
    wrong_tile = item(3, "S1_NRB_L2A", orbit=66, tile="31TCH")
    result = engine.evaluate(SWS, [ok, wrong_orbit, wrong_tile], model.History(), NOW)
    assert [p.primary for p in result.proposals] == [1]
    assert {s.input_id for s in result.skipped} == {2, 3}
    assert "relative orbit 117 is not valid for tile 32TLR" in result.skipped[0].reason


def test_wrong_context_type_is_an_error() -> None:
    """A rule given another kind's context fails loudly rather than guessing."""
    with pytest.raises(TypeError, match="GroupContext"):
        engine.evaluate(spec.PairSlices("S", "S", "GRD"), [], model.History(), NOW)
    with pytest.raises(ValueError, match="timezone"):
        engine.evaluate(FSC, [], model.History(), NOW.replace(tzinfo=None))


# ------------------------------------------------------------------ serial_per_tile

CC = spec.SerialPerTile("CC_TC", "CC_TC", "S2MSI1C", "S2_MAJA_L2A", init_after_days=90)


def test_serial_init_then_nominal_oldest_first() -> None:
    """No L2A within 90 days: L2INIT on [L1C]; oldest L1C first, one per tile."""
    l1c = [item(i, "S2MSI1C", day=DAY + timedelta(days=i)) for i in (3, 1, 2)]
    ctx = model.SerialContext()
    first = engine.evaluate(CC, l1c, ctx, NOW)
    (proposal,) = first.proposals
    assert proposal.primary == 1
    assert proposal.param("mode") == "L2INIT"
    assert [r.role for r in proposal.inputs] == ["l1c"]
    (wait,) = first.waiting
    assert wait.inputs == {2, 3}
    # The task is live: nothing more for the tile, and the wait names it.
    live = model.SerialContext(commit(ctx.history, first), {"32TLR": (TaskId(40),)})
    blocked = engine.evaluate(CC, l1c, live, NOW)
    assert blocked.proposals == ()
    assert "task 40" in blocked.waiting[0].reason
    # The task ended and left its L2A: the next L1C runs nominal with that L2A.
    l2a = item(100, "S2_MAJA_L2A", day=DAY + timedelta(days=1), minute=1)
    done = model.SerialContext(live.history, {}, {"32TLR": (l2a,)})
    second = engine.evaluate(CC, l1c, done, NOW)
    (nominal,) = second.proposals
    assert nominal.primary == 2
    assert nominal.param("mode") == "L2NOMINAL"
    assert nominal.inputs == (
        model.RoleInput("l1c", InputId(2)),
        model.RoleInput("previous_l2a", InputId(100)),
    )


def test_serial_l2a_too_old_or_newer_is_not_previous() -> None:
    """An L2A older than init_after_days, or sensed after the L1C, gives L2INIT."""
    l1c = item(1, "S2MSI1C", day=DAY)
    too_old = item(10, "S2_MAJA_L2A", day=DAY - timedelta(days=91))
    newer = item(11, "S2_MAJA_L2A", day=DAY + timedelta(days=2))  # out of order
    in_range = item(12, "S2_MAJA_L2A", day=DAY - timedelta(days=90))
    ctx = model.SerialContext(previous={"32TLR": (too_old, newer)})
    assert engine.evaluate(CC, [l1c], ctx, NOW).proposals[0].param("mode") == "L2INIT"
    ctx = model.SerialContext(previous={"32TLR": (too_old, newer, in_range)})
    proposal = engine.evaluate(CC, [l1c], ctx, NOW).proposals[0]
    assert proposal.param("mode") == "L2NOMINAL"
    assert proposal.inputs[1].input_id == 12


def test_serial_key_ignores_the_previous_l2a() -> None:
    """A newer L2A between two evaluations does not make a second key for the same L1C."""
    l1c = item(5, "S2MSI1C", day=DAY)
    a = engine.evaluate(CC, [l1c], model.SerialContext(), NOW)
    l2a = item(9, "S2_MAJA_L2A", day=DAY - timedelta(days=1))
    b = engine.evaluate(CC, [l1c], model.SerialContext(previous={"32TLR": (l2a,)}), NOW)
    assert a.proposals[0].key == b.proposals[0].key
    # and once committed the L1C is never proposed again
    ctx = model.SerialContext(commit(model.History(), a), {}, {"32TLR": (l2a,)})
    assert engine.evaluate(CC, [l1c], ctx, NOW).proposals == ()


def test_serial_tiles_are_independent() -> None:
    """A live task on one tile does not hold another tile."""
    a = item(1, "S2MSI1C", tile="32TLR")
    b = item(2, "S2MSI1C", tile="31TCH")
    ctx = model.SerialContext(live_tasks={"32TLR": (TaskId(1),)})
    result = engine.evaluate(CC, [a, b], ctx, NOW)
    assert [p.tile for p in result.proposals] == ["31TCH"]


# ------------------------------------------------------------------ pair_slices

SIG0 = spec.PairSlices(
    "SIG0",
    "Backscatter_10m_TC",
    "IW_GRDH_1S",
    "grd",
    touch_tolerance=timedelta(seconds=2),
    orphan_after=timedelta(hours=2),
)


def grd(
    id: int, minute: float, *, orbit: int = 66, harvested: datetime = T0, **kw: object
) -> model.Item:
    return item(
        id, "IW_GRDH_1S", minute=minute, orbit=orbit, harvested=harvested, length_s=25, **kw
    )


def pairs_eval(items: list[model.Item], history: model.History, now: datetime) -> model.Evaluation:
    return engine.evaluate(SIG0, items[-1:], model.GroupContext(history, tuple(items)), now)


def test_pair_touching_slices_make_one_task() -> None:
    """Two slices whose times touch (stop = next start) make one task of both."""
    a, b = grd(1, 0), grd(2, 25 / 60)
    result = pairs_eval([a, b], model.History(), T0 + timedelta(minutes=1))
    (p,) = result.proposals
    assert p.input_ids == {1, 2} and p.primary == 1
    assert result.waiting == ()


def test_pair_tolerance_and_orbit_separate_groups() -> None:
    """A gap above the tolerance, another orbit or another day keep slices apart."""
    a = grd(1, 0)
    gap = grd(2, 25 / 60 + 3 / 60)  # starts 3 s after a stops
    other_orbit = grd(3, 25 / 60, orbit=88)
    other_day = grd(4, 25 / 60, day=DAY + timedelta(days=1))
    result = pairs_eval([a, gap, other_orbit, other_day], model.History(), T0)
    assert result.proposals == ()
    assert len(result.waiting) == 4


def test_pair_group_of_three_is_one_task() -> None:
    """Three chained slices are one task, not a pair and an orphan."""
    slices = [grd(i, i * 25 / 60) for i in (0, 1, 2)]
    (p,) = pairs_eval(slices, model.History(), T0).proposals
    assert p.input_ids == {0, 1, 2}


def test_pair_orphan_waits_then_goes_alone() -> None:
    """A lone slice waits orphan_after since harvest, then gets its own task."""
    a = grd(1, 0, harvested=T0)
    early = pairs_eval([a], model.History(), T0 + timedelta(hours=1, minutes=59))
    assert early.proposals == ()
    assert early.waiting[0].until == T0 + timedelta(hours=2)
    assert "relative orbit 66" in early.waiting[0].reason
    late = pairs_eval([a], model.History(), T0 + timedelta(hours=2))
    assert [p.input_ids for p in late.proposals] == [{1}]


def test_pair_late_partner_never_duplicates_the_orphan() -> None:
    """A partner arriving after its orphan's task neither re-creates it nor pairs up."""
    a = grd(1, 0, harvested=T0)
    history = commit(model.History(), pairs_eval([a], model.History(), T0 + timedelta(hours=3)))
    b = grd(2, 25 / 60, harvested=T0 + timedelta(hours=4))
    result = pairs_eval([a, b], history, T0 + timedelta(hours=7))
    assert result.proposals == ()
    assert [s.input_id for s in result.skipped] == [2]
    alone = replace(SIG0, late_partner="alone")
    ctx = model.GroupContext(history, (a, b))
    early = engine.evaluate(alone, [b], ctx, T0 + timedelta(hours=5))
    assert early.proposals == ()  # waits like an orphan
    later = engine.evaluate(alone, [b], ctx, T0 + timedelta(hours=7))
    assert [p.input_ids for p in later.proposals] == [{2}]


def test_pair_out_of_order_arrival_and_rerun() -> None:
    """Slices arriving in reverse order pair the same; re-evaluation adds nothing."""
    a, b = grd(1, 0), grd(2, 25 / 60)
    forward = pairs_eval([a, b], model.History(), T0)
    backward = pairs_eval([b, a], model.History(), T0)
    assert forward.proposals == backward.proposals
    history = commit(model.History(), forward)
    assert pairs_eval([a, b], history, T0 + timedelta(hours=5)).proposals == ()


# ------------------------------------------------------------------ join_same_tile_day

WDS = spec.JoinSameTileDay(
    "WDS_TC",
    "WDS_TC",
    "S1_NRB_L2A",
    "S2_FSC_L2B",
    "sig0",
    "fsc",
    tracks=spec.TrackTable("wds", {"32TLR": frozenset({66})}),
)
WICS1S2 = spec.JoinSameTileDay(
    "WICS1S2_TC", "WICS1S2_TC", "S1_WICS1_L2B", "S2_WICS2_L2B", "wics1", "wics2", per_partner=True
)


def join_eval(
    rule: spec.JoinSameTileDay,
    new: list[model.Item],
    known: list[model.Item],
    history: model.History,
) -> model.Evaluation:
    return engine.evaluate(rule, new, model.GroupContext(history, tuple(known)), NOW)


@pytest.mark.parametrize("sig0_first", [True, False])
def test_wds_whichever_arrives_second_triggers(sig0_first: bool) -> None:
    """WDS fires when the second of SIG0 and FSC arrives, whatever the order."""
    sig0 = item(1, "S1_NRB_L2A", orbit=66)
    fsc = item(2, "S2_FSC_L2B", minute=30)
    first, second = (sig0, fsc) if sig0_first else (fsc, sig0)
    alone = join_eval(WDS, [first], [first], model.History())
    assert alone.proposals == ()
    assert "waiting for a" in alone.waiting[0].reason
    both = join_eval(WDS, [second], [first, second], model.History())
    (p,) = both.proposals
    assert p.primary == 1 and p.inputs[1] == model.RoleInput("fsc", InputId(2))


def test_wds_one_task_per_sig0_even_with_a_later_fsc() -> None:
    """A second FSC of the day does not make a second WDS for the same SIG0."""
    sig0 = item(1, "S1_NRB_L2A", orbit=66)
    fsc1 = item(2, "S2_FSC_L2B")
    history = commit(model.History(), join_eval(WDS, [fsc1], [sig0, fsc1], model.History()))
    fsc2 = item(3, "S2_FSC_L2B", minute=60)
    assert join_eval(WDS, [fsc2], [sig0, fsc1, fsc2], history).proposals == ()


def test_wds_other_day_or_orbit_does_not_join() -> None:
    """An FSC of another day, or a SIG0 on an invalid orbit, makes no WDS."""
    sig0 = item(1, "S1_NRB_L2A", orbit=66)
    fsc_other_day = item(2, "S2_FSC_L2B", day=DAY + timedelta(days=1))
    assert join_eval(WDS, [fsc_other_day], [sig0, fsc_other_day], model.History()).proposals == ()
    bad = item(3, "S1_NRB_L2A", orbit=117)
    fsc = item(4, "S2_FSC_L2B")
    result = join_eval(WDS, [bad], [bad, fsc], model.History())
    assert result.proposals == () and result.skipped[0].input_id == 3


def test_wics1s2_pairs_each_wics1_with_every_wics2_including_late() -> None:
    """Each (WICS1, WICS2) of a tile and day is one task; a late WICS2 adds its own."""
    w1a, w1b = item(1, "S1_WICS1_L2B"), item(2, "S1_WICS1_L2B", minute=400)
    w2a = item(3, "S2_WICS2_L2B")
    first = join_eval(WICS1S2, [w2a], [w1a, w1b, w2a], model.History())
    assert {p.input_ids for p in first.proposals} == {frozenset({1, 3}), frozenset({2, 3})}
    history = commit(model.History(), first)
    w2b = item(4, "S2_WICS2_L2B", minute=10)
    late = join_eval(WICS1S2, [w2b], [w1a, w1b, w2a, w2b], history)
    assert {p.input_ids for p in late.proposals} == {frozenset({1, 4}), frozenset({2, 4})}
    history = commit(history, late)
    assert join_eval(WICS1S2, [w2b], [w1a, w1b, w2a, w2b], history).proposals == ()


# ------------------------------------------------------------------ composite_with_gate

GFSC = spec.CompositeWithGate(
    "GFSC_TC",
    "GFSC_TC",
    (("S1_SWS_L2B", "sws"), ("S2_FSC_L2B", "fsc")),
    gate_conditions=("CC_TC", "Backscatter_10m_TC", "FSC_TC", "SWS_TC"),
    window_days=7,
    day_closes_after=timedelta(hours=6),
    gate_labels=(("FSC_TC", "FSC"), ("CC_TC", "CC")),
)
LATER = datetime(2024, 3, 20, tzinfo=UTC)


def composite(ctx: model.CompositeContext, now: datetime = LATER) -> model.Evaluation:
    return engine.evaluate(GFSC, [], ctx, now)


def test_gfsc_window_and_gate() -> None:
    """GFSC of D takes FSC and SWS of [D-7, D] of its tile, not D-8 nor D+1."""
    d = DAY
    window = (
        item(1, "S2_FSC_L2B", day=d),
        item(2, "S1_SWS_L2B", day=d - timedelta(days=7)),
        item(3, "S2_FSC_L2B", day=d - timedelta(days=8)),
        item(4, "S2_FSC_L2B", day=d + timedelta(days=1)),
        item(5, "S2_FSC_L2B", day=d, tile="31TCH"),
        item(6, "S2_MAJA_L2A", day=d),
    )
    ctx = model.CompositeContext(d - timedelta(days=1), d, window=window)
    result = engine.evaluate(replace(GFSC, max_catch_up_days=1), [], ctx, LATER)
    by_tile = {p.tile: p for p in result.proposals}
    assert by_tile["32TLR"].input_ids == {1, 2}
    assert by_tile["31TCH"].input_ids == {5}
    assert {r.role for r in by_tile["32TLR"].inputs} == {"fsc", "sws"}
    assert result.watermark == d


def test_gfsc_watermark_holds_at_first_shut_gate() -> None:
    """A day with unfinished tasks holds the watermark and names what it waits for."""
    d = DAY
    window = tuple(item(i, "S2_FSC_L2B", day=d + timedelta(days=i)) for i in range(3))
    gates = {d + timedelta(days=1): model.DayGate(d + timedelta(days=1), {"FSC_TC": 3, "CC_TC": 0})}
    ctx = model.CompositeContext(d - timedelta(days=1), d, gates=gates, window=window)
    result = composite(ctx)
    assert [p.day for p in result.proposals] == [d]
    assert result.watermark == d
    (wait,) = result.waiting
    assert str(wait) == "GFSC_TC * 2024-03-08: waiting for 3 FSC tasks of that day"
    # The gate opens: the watermark moves on, day by day, and D is never redone.
    history = commit(model.History(), result)
    reopened = model.CompositeContext(result.watermark, d, history, {}, window)
    nxt = composite(reopened)
    assert [p.day for p in nxt.proposals][:2] == [d + timedelta(days=1), d + timedelta(days=2)]
    assert d not in [p.day for p in nxt.proposals]


def test_gfsc_waits_for_the_day_to_close_and_never_duplicates() -> None:
    """Today is not composited before it closes; re-running after a crash adds nothing."""
    d = DAY
    window = (item(1, "S2_FSC_L2B", day=d),)
    ctx = model.CompositeContext(d - timedelta(days=1), d, window=window)
    before = composite(ctx, datetime.combine(d + timedelta(days=1), T0.timetz()).replace(hour=5))
    assert before.proposals == () and "close" in before.waiting[0].reason
    after = composite(ctx, datetime(2024, 3, 8, 6, tzinfo=UTC))
    assert len(after.proposals) == 1
    # crash before the watermark was stored: same context, the instance exists
    crashed = replace(ctx, history=commit(model.History(), after))
    assert composite(crashed, datetime(2024, 3, 8, 6, tzinfo=UTC)).proposals == ()


# ------------------------------------------------------------------ explain


def test_explain_names_the_wait() -> None:
    """explain says what a waiting GFSC waits for, with the input's tile."""
    fsc = item(1, "S2_FSC_L2B", day=DAY)
    gates = {DAY: model.DayGate(DAY, {"FSC_TC": 3})}
    ctx = model.CompositeContext(DAY - timedelta(days=1), DAY, gates=gates, window=(fsc,))
    evaluation = composite(ctx)
    findings = engine.explain(fsc, [GFSC, FSC, CC], {"GFSC_TC": evaluation}, {})
    assert [f.rule for f in findings] == ["GFSC_TC"]
    assert findings[0].text == "GFSC_TC 32TLR 2024-03-07: waiting for 3 FSC tasks of that day"
    assert findings[0].as_json()["status"] == "waiting"


def test_explain_feeds_and_skips() -> None:
    """explain lists the instances an input feeds and why a rule skipped it."""
    l2a = item(7, "S2_MAJA_L2A", harvested=NOW - timedelta(days=9))
    history = model.History((model.Instance("CC:x", "32TLR", DAY, frozenset({InputId(7)})),))
    evaluation = engine.evaluate(FSC, [l2a], model.History(), NOW)
    findings = engine.explain(l2a, [CC, FSC], {"FSC_TC": evaluation}, {"CC_TC": history})
    statuses = {(f.rule, f.status) for f in findings}
    assert statuses == {("CC_TC", "feeds"), ("FSC_TC", "skipped")}


def test_trigger_types() -> None:
    """Each kind says which product types wake it."""
    assert spec.trigger_types(WDS) == {"S1_NRB_L2A", "S2_FSC_L2B"}
    assert spec.trigger_types(GFSC) == {"S1_SWS_L2B", "S2_FSC_L2B"}
    assert spec.trigger_types(CC) == {"S2MSI1C"}


def test_day_gate_open() -> None:
    assert model.DayGate(date(2024, 1, 1), {"A": 0}).open
    assert not model.DayGate(date(2024, 1, 1), {"A": 0, "B": 1}).open
