"""The rules wired into hrwsi.config: validated against the conditions, the chain applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrwsi import config, rules_config


def test_default_config_has_no_rules_every_condition_single() -> None:
    cfg = config.Config()
    assert cfg.rules == ()
    assert cfg.rules_config.to_domain() == ()


def test_rules_in_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "hrwsi.toml"
    path.write_text(
        "[[rules]]\n"
        'condition = "FSC_PC"\nkind = "fan_out_filtered"\ninput_type = "S2_MAJA_L2A"\n'
        "max_days_since_harvest = 3\n",
        encoding="utf-8",
    )
    cfg = config.load(path, env={})
    (rule,) = cfg.rules_config.to_domain()
    assert rule.kind == "fan_out_filtered" and rule.condition == "FSC_PC"


@pytest.mark.parametrize(
    ("rule", "key", "message"),
    [
        ({"kind": "single", "condition": "NOPE", "input_type": "A"}, "rules.0.condition", "NOPE"),
        (
            {
                "kind": "fan_out_filtered",
                "condition": "FSC_PC",
                "input_type": "A",
                "track_table": "zz",
            },
            "rules.0.track_table",
            "zz",
        ),
        (
            {
                "kind": "composite_with_gate",
                "condition": "FSC_PC",
                "inputs": {"A": "a"},
                "gate_conditions": ["GONE"],
            },
            "rules.0.gate_conditions.0",
            "GONE",
        ),
    ],
)
def test_bad_rule_references_name_the_key(
    tmp_path: Path, rule: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        config.Config(rules=(rule,))  # type: ignore[arg-type]
    assert key in str(caught.value) and message in str(caught.value)


def test_two_rules_for_one_condition_are_refused() -> None:
    rule = {"kind": "single", "condition": "FSC_PC", "input_type": "A"}
    with pytest.raises(ValueError, match="already has a rule"):
        config.Config(rules=(rule, {**rule, "name": "other"}))  # type: ignore[arg-type]


def test_the_chain_applied_gives_its_own_limits_and_every_routine_fits() -> None:
    cfg = rules_config.load_chain().apply()
    assert {r.name for r in cfg.routines} >= {"CC", "SIG0", "GFSC", "WICS1S2"}
    assert len(cfg.rules) == 9 and len(cfg.product_types) == 12
    assert config.setting_problems(cfg) == []  # ram in MB fits the chain's ram_max
    assert cfg.routine("CC").flavour == "hma.large"


def test_chain_without_its_limits_would_not_fit() -> None:
    chain = rules_config.load_chain()
    small = chain.model_copy(update={"scheduling": None}).apply()
    assert any("ram" in key for key, _ in config.setting_problems(small))
