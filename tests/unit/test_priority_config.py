"""Priority, capacity and KPI configuration: the documented example, defaults, named errors."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta

import pytest
from pydantic import ValidationError

from hrwsi import config, priority_config
from hrwsi.domain.timeliness import TimelinessClass as C


def _example() -> dict[str, object]:
    doc = priority_config.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\nEvery model", 1)[0]
    text = "\n".join(line[4:] for line in block.splitlines())
    return tomllib.loads(re.sub(r"\s+#.*", "", text))


def test_documented_example_parses_into_domain_values():
    """The TOML example in the module docstring is valid and means what it says."""
    settings = priority_config.PrioritySettings.model_validate(_example())
    table = settings.priority.table()
    assert table.priority("FSC_PC", C.NRT) == 120
    assert table.priority("MAJA_PC", C.NRT) == 100
    assert settings.priority.aging_rule().seconds_per_point == 60
    assert settings.priority.conditions["FSC_PC"].nrt_limits() == (
        timedelta(hours=12),
        timedelta(hours=6),
    )
    limit = settings.limits()["MAJA"]
    assert (limit.max_concurrent, limit.other_limit) == (10, 7)
    targets = settings.kpi.target_rule()
    assert targets.of("FSC_PC") == timedelta(minutes=240)
    assert targets.of("MAJA_PC") == timedelta(minutes=180)


def test_defaults_and_switched_off():
    """No section: default priorities, no capacity limit; enabled=false means arrival order."""
    settings = priority_config.PrioritySettings()
    assert settings.limits() == {}
    off = priority_config.PriorityConfig(enabled=False).aging_rule()
    assert not off.enabled


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"priority": {"nrt": 5000}}, "priority.nrt"),
        ({"priority": {"aging": {"seconds_per_point": 0}}}, "priority.aging.seconds_per_point"),
        ({"priority": {"conditions": {"FSC_PC": {"nrt": -1}}}}, "priority.conditions.FSC_PC.nrt"),
        ({"priority": {"colour": "red"}}, "priority.colour"),
        ({"capacity": [{"flavour": "MAJA", "max_concurrent": 0}]}, "capacity.0.max_concurrent"),
        (
            {"capacity": [{"flavour": "MAJA", "max_concurrent": 2, "nrt_reserved_share": 1.5}]},
            "capacity.0.nrt_reserved_share",
        ),
        ({"kpi": {"targets": {"FSC_PC": 0}}}, "kpi.targets.FSC_PC"),
    ],
)
def test_bad_values_name_their_key(data, key):
    """Each invalid value is reported at its dotted key (as config.load shows it)."""
    with pytest.raises(ValidationError) as info:
        priority_config.PrioritySettings.model_validate(data)
    locs = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert key in locs


def test_flavour_listed_twice_is_refused():
    """Two [[capacity]] entries for one flavour are refused, naming the entry."""
    entry = {"flavour": "MAJA", "max_concurrent": 2}
    with pytest.raises(ValidationError, match="entry 1: flavour 'MAJA' is listed twice"):
        priority_config.PrioritySettings.model_validate({"capacity": [entry, entry]})


def test_unknown_references_are_named():
    """Unknown flavours and conditions are listed with their keys."""
    settings = priority_config.PrioritySettings.model_validate(_example())
    problems = priority_config.check_references(settings, flavours=["FSC"], conditions=["MAJA_PC"])
    assert problems == [
        ("capacity.0.flavour", "unknown routine 'MAJA'"),
        ("priority.conditions.FSC_PC", "unknown processing condition 'FSC_PC'"),
        ("kpi.targets.FSC_PC", "unknown processing condition 'FSC_PC'"),
    ]


def test_settings_of_a_config_without_the_sections_gives_defaults():
    """Before the sections are wired into Config, settings_of returns the defaults."""
    got = priority_config.settings_of(config.Config())
    assert got == priority_config.PrioritySettings()
