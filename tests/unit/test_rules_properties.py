"""Property tests: across any arrival order and any re-evaluation, no rule instance gets
two tasks, no exclusive input feeds two instances, and every eligible set gets its task."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import T0, commit, item

from hrwsi.domain.rules import engine, model, spec
from hrwsi.domain.rules.model import TaskId

SIG0 = spec.PairSlices("SIG0", "B", "IW_GRDH_1S", late_partner="alone")
CC = spec.SerialPerTile("CC", "CC", "S2MSI1C", "S2_MAJA_L2A")
WICS1S2 = spec.JoinSameTileDay("W", "W", "S1_WICS1_L2B", "S2_WICS2_L2B", "w1", "w2", True)
WDS = spec.JoinSameTileDay("D", "D", "S1_NRB_L2A", "S2_FSC_L2B", "sig0", "fsc")

# Slices on one tile/day/orbit, each 25 s long, starting at a slot of 25 s (touching when
# consecutive) or with a gap; harvested at various times.
slices = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 300)),
    min_size=1,
    max_size=8,
    unique_by=lambda t: t[0],
)


def _run(rule: spec.Rule, arrivals: list[model.Item], steps: list[int], ctx_of) -> model.History:
    """Arrive items in order, evaluating after each arrival (and again, ``steps`` times)."""
    history = model.History()
    seen: list[model.Item] = []
    now = T0
    for i, new in enumerate(arrivals):
        seen.append(new)
        now = max(now, new.harvested_at)
        for _ in range(1 + steps[i % len(steps)]):
            result = engine.evaluate(rule, [new], ctx_of(history, seen), now)
            history = commit(history, result)
    # the sweep, long after: orphans' clocks have run out
    late = now + timedelta(hours=5)
    for _ in range(3):
        history = commit(history, engine.evaluate(rule, seen, ctx_of(history, seen), late))
    return history


@settings(max_examples=150, deadline=None)
@given(slices, st.randoms(use_true_random=False), st.lists(st.integers(0, 2), min_size=1))
def test_pair_slices_every_slice_in_exactly_one_task(spec_, rng, steps) -> None:
    """Each slice ends in exactly one task; touching slices present together share one."""
    items = [
        item(
            slot,
            "IW_GRDH_1S",
            minute=slot * 25 / 60,
            orbit=66,
            harvested=T0 + timedelta(minutes=delay),
        )
        for slot, delay in spec_
    ]
    arrivals = sorted(items, key=lambda i: i.harvested_at)
    rng.shuffle(arrivals)
    history = _run(SIG0, arrivals, steps, lambda h, s: model.GroupContext(h, tuple(s)))
    used = [i for inst in history.instances for i in inst.inputs]
    assert sorted(used) == sorted(i.id for i in items)
    assert len(history.keys) == len(history.instances)
    for inst in history.instances:
        members = sorted((i for i in items if i.id in inst.inputs), key=lambda i: i.order)
        for a, b in itertools.pairwise(members):
            assert b.sensing_start - a.sensing_stop <= SIG0.touch_tolerance


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["S1_WICS1_L2B", "S2_WICS2_L2B"]), min_size=1, max_size=8),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 2), min_size=1),
)
def test_wics1s2_every_pair_once(types, rng, steps) -> None:
    """Every (WICS1, WICS2) pair of the tile/day gets exactly one task, whatever the order."""
    items = [item(i, t, minute=i) for i, t in enumerate(types)]
    rng.shuffle(items)
    history = _run(WICS1S2, items, steps, lambda h, s: model.GroupContext(h, tuple(s)))
    w1 = {i.id for i in items if i.product_type == "S1_WICS1_L2B"}
    w2 = {i.id for i in items if i.product_type == "S2_WICS2_L2B"}
    made = [inst.inputs for inst in history.instances]
    assert len(made) == len(set(made))
    assert set(made) == {frozenset({a, b}) for a in w1 for b in w2}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["S1_NRB_L2A", "S2_FSC_L2B"]), min_size=1, max_size=8),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 2), min_size=1),
)
def test_wds_each_sig0_once_when_a_partner_exists(types, rng, steps) -> None:
    """Each SIG0 gets one WDS task iff some FSC of its tile/day exists."""
    items = [item(i, t, minute=i) for i, t in enumerate(types)]
    rng.shuffle(items)
    history = _run(WDS, items, steps, lambda h, s: model.GroupContext(h, tuple(s)))
    anchors = [i.id for i in items if i.product_type == "S1_NRB_L2A"]
    has_fsc = any(i.product_type == "S2_FSC_L2B" for i in items)
    primaries = sorted(
        min(inst.inputs, key=lambda x: x not in anchors) for inst in history.instances
    )
    assert primaries == (sorted(anchors) if has_fsc else [])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["32TLR", "31TCH"]), st.integers(0, 20)), min_size=1, max_size=8
    ),
    st.randoms(use_true_random=False),
)
def test_serial_one_live_task_per_tile_and_all_l1c_processed(spec_, rng) -> None:
    """Per tile never two live CC tasks; every L1C eventually gets exactly one."""
    items = [item(i, "S2MSI1C", tile=t, minute=m) for i, (t, m) in enumerate(spec_)]
    arrivals = list(items)
    rng.shuffle(arrivals)
    history = model.History()
    live: dict[str, tuple[TaskId, ...]] = {}
    seen: list[model.Item] = []
    for step in range(4 * len(items) + 4):
        if arrivals:
            seen.append(arrivals.pop())
        result = engine.evaluate(CC, seen, model.SerialContext(history, live), T0)
        for p in result.proposals:
            assert not live.get(p.tile), "a second live task on the tile"
            live = {**live, p.tile: (TaskId(step),)}
        history = commit(history, result)
        if step % 2:  # tasks end now and then
            live = {}
    l1c = sorted(inst for i in history.instances for inst in i.inputs)
    assert l1c == sorted(i.id for i in items)
