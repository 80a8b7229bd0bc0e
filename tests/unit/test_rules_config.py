"""Rule configuration: the shipped chain, validation messages naming the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from hrwsi import config, rules_config
from hrwsi.domain import errors
from hrwsi.domain.rules import spec


def test_shipped_chain_loads_with_issue_sizes() -> None:
    """The HR-WSI chain has every routine with its HR-WSI size and one rule per kind."""
    chain = rules_config.load_chain()
    sizes = {r.name: (r.cpu, r.ram, r.storage, r.duration) for r in chain.routines}
    assert sizes == {
        "CC": (4, 29879, 32, 13),
        "FSC": (4, 29879, 16, 10),
        "WICS2": (4, 29879, 16, 10),
        "SIG0": (4, 29879, 32, 10),
        "SWS": (2, 7383, 2, 2),
        "WDS": (2, 7383, 2, 2),
        "WICS1": (2, 7383, 2, 2),
        "GFSC": (2, 7383, 2, 2),
        "WICS1S2": (2, 7383, 32, 10),
    }
    rules = {r.name: r for r in chain.domain_rules()}
    assert {r.kind for r in rules.values()} == {
        "serial_per_tile",
        "fan_out_filtered",
        "pair_slices",
        "join_same_tile_day",
        "composite_with_gate",
    }
    cc = rules["CC_TC"]
    assert isinstance(cc, spec.SerialPerTile) and cc.init_after_days == 90
    sig0 = rules["Backscatter_10m_TC"]
    assert isinstance(sig0, spec.PairSlices) and sig0.orphan_after == timedelta(hours=2)
    gfsc = rules["GFSC_TC"]
    assert isinstance(gfsc, spec.CompositeWithGate)
    assert dict(gfsc.gate_labels)["FSC_TC"] == "FSC"
    sws = rules["SWS_TC"]
    assert isinstance(sws, spec.FanOutFiltered) and sws.tracks is not None
    assert sws.tracks.allows("33UUU", 25) and not sws.tracks.allows("33UUU", 26)


def test_chain_routines_and_conditions_fit_config() -> None:
    """Routines and conditions have hrwsi.config's shape (flavour aside), so they merge."""
    chain = rules_config.load_chain()
    for routine in chain.routines:
        config.RoutineConfig.model_validate(routine.model_dump(exclude={"flavour"}))
    names = {c.routine for c in chain.processing_conditions}
    assert names == {r.name for r in chain.routines}


def _chain_with(**rule: object) -> dict[str, object]:
    base = {"condition": "C", **rule}
    return {
        "routines": [
            {
                "name": "R",
                "cpu": 1,
                "ram": 1,
                "storage": 1,
                "duration": 1,
                "input_type": "X",
                "product_data_type": "L2B",
                "product_type_code": "P",
            }
        ],
        "processing_conditions": [{"name": "C", "routine": "R"}],
        "rules": [base],
    }


@pytest.mark.parametrize(
    ("rule", "key", "message"),
    [
        (
            {"kind": "serial_per_tile", "init_after_days": 0},
            "rules.0.init_after_days",
            "greater than 0",
        ),
        ({"kind": "nope"}, "rules.0", "kind"),
        (
            {"kind": "fan_out_filtered", "input_type": "A", "track_table": "x"},
            "rules.0.track_table",
            "unknown track table 'x'",
        ),
        (
            {
                "kind": "join_same_tile_day",
                "anchor_type": "A",
                "partner_type": "A",
                "anchor_role": "a",
                "partner_role": "b",
            },
            "rules.0.partner_type",
            "must differ",
        ),
        (
            {"kind": "composite_with_gate", "inputs": {"A": "a"}, "gate_conditions": ["Z"]},
            "rules.0.gate_conditions.0",
            "unknown processing condition 'Z'",
        ),
        (
            {"kind": "pair_slices", "orphan_after_hours": -1},
            "rules.0.orphan_after_hours",
            "greater",
        ),
    ],
)
def test_bad_rules_name_the_key(rule: dict[str, object], key: str, message: str) -> None:
    """A bad rule raises ConfigError naming the key and saying what is wrong."""
    with pytest.raises(errors.ConfigError) as caught:
        rules_config.parse_chain(_chain_with(**rule), "test.toml")
    assert caught.value.key == key
    assert message in str(caught.value)


def test_unknown_rule_condition_and_duplicates() -> None:
    """A rule for an unknown condition, or two rules for one condition, are rejected."""
    data = _chain_with(kind="single", input_type="A")
    data["rules"] = [
        *data["rules"],
        {"condition": "C", "kind": "single", "input_type": "B", "name": "other"},
    ]
    with pytest.raises(errors.ConfigError, match="already has a rule"):
        rules_config.parse_chain(data)
    bad = _chain_with(kind="single", input_type="A", condition="ZZ")
    with pytest.raises(errors.ConfigError) as caught:
        rules_config.parse_chain(bad)
    assert caught.value.key == "rules.0.condition"


def test_track_table_file_and_inline(tmp_path: Path) -> None:
    """A track table reads its CSV rows and adds inline tiles; bad rows name the line."""
    csv_file = tmp_path / "tracks.csv"
    csv_file.write_text("table,tile,relative_orbits\nsws,T32TLR,15 66\nwds,32TLR,88\n")
    cfg = rules_config.parse_rules(
        {"track_tables": {"sws": {"file": "tracks.csv", "tiles": {"31TCH": [8]}}}}
    )
    table = cfg.load_tracks(tmp_path)["sws"]
    assert table.orbits == {"32TLR": frozenset({15, 66}), "31TCH": frozenset({8})}
    csv_file.write_text("table,tile,relative_orbits\nsws,32TLR,15 x\n")
    with pytest.raises(errors.ConfigError, match="line 2"):
        cfg.load_tracks(tmp_path)
    with pytest.raises(errors.ConfigError) as caught:
        rules_config.parse_rules({"track_tables": {"sws": {}}})
    assert caught.value.key == "track_tables.sws.file"
