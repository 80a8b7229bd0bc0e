"""Configuration of timeliness classes, priorities, aging, capacity and KPI targets.

Three top-level sections of the TOML file (the lead wires them into :class:`hrwsi.config.Config`
as the fields ``priority``, ``capacity`` and ``kpi``; until then :func:`settings_of` gives the
defaults)::

    [priority]
    enabled = true                      # false: plain arrival order (today's behaviour)
    nrt = 100                           # priority per timeliness class, 0..1000, higher first
    reprocessing = 20                   # a campaign's --priority replaces this for its tasks
    archive = 10

    [priority.aging]
    seconds_per_point = 60              # one priority point per minute waited: archive work
                                        # goes before new NRT work after (100-10) min
    step_s = 60                         # within a step, older sensing first

    [priority.conditions.FSC_PC]        # per-condition overrides of any class
    nrt = 120
    nrt_max_hours_since_sensing = 12    # optional: tighter than the harvest query's window
    nrt_max_hours_since_publication = 6

    [[capacity]]                        # per flavour (routine name = VM type)
    flavour = "MAJA"
    max_concurrent = 10
    nrt_reserved_share = 0.3            # archive + reprocessing use at most 70 % of the slots
    lend_idle_reserve = false           # true: they may borrow the reserve while no NRT waits

    [kpi]
    nrt_target_minutes = 180            # an NRT product later than this after sensing is late

    [kpi.targets]                       # per-condition targets, minutes
    FSC_PC = 240

Every model turns into the plain domain values (:mod:`hrwsi.domain.priority`,
:mod:`hrwsi.domain.capacity`, :mod:`hrwsi.domain.kpi`) with a ``to_domain``-style method, and
:func:`check_references` names unknown flavours and conditions by key.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hrwsi.domain import admission as capacity_rules
from hrwsi.domain import kpi as kpi_rules
from hrwsi.domain import priority
from hrwsi.domain.timeliness import TimelinessClass

Priority = Annotated[int, Field(ge=0, le=priority.MAX_PRIORITY)]
PositiveFloat = Annotated[float, Field(gt=0)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgingConfig(_Section):
    """One priority point per ``seconds_per_point`` of waiting (see domain.priority)."""

    seconds_per_point: Annotated[float, Field(gt=0, le=priority.MAX_SECONDS_PER_POINT)] = 60.0
    step_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0


class ConditionPriorityConfig(_Section):
    """Per-condition overrides: any class's priority, a tighter near-real-time window."""

    nrt: Priority | None = None
    reprocessing: Priority | None = None
    archive: Priority | None = None
    nrt_max_hours_since_sensing: PositiveFloat | None = None
    nrt_max_hours_since_publication: PositiveFloat | None = None

    def priorities(self) -> dict[TimelinessClass, int]:
        values = {
            TimelinessClass.NRT: self.nrt,
            TimelinessClass.REPROCESSING: self.reprocessing,
            TimelinessClass.ARCHIVE: self.archive,
        }
        return {k: v for k, v in values.items() if v is not None}

    def nrt_limits(self) -> tuple[timedelta | None, timedelta | None]:
        """(since sensing, since publication) for ``NrtWindow.tightened``."""
        return (
            _hours(self.nrt_max_hours_since_sensing),
            _hours(self.nrt_max_hours_since_publication),
        )


def _hours(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(hours=value)


class PriorityConfig(_Section):
    enabled: bool = True
    nrt: Priority = priority.DEFAULT_PRIORITIES[TimelinessClass.NRT]
    reprocessing: Priority = priority.DEFAULT_PRIORITIES[TimelinessClass.REPROCESSING]
    archive: Priority = priority.DEFAULT_PRIORITIES[TimelinessClass.ARCHIVE]
    aging: AgingConfig = AgingConfig()
    conditions: dict[Name, ConditionPriorityConfig] = Field(default_factory=dict)

    def table(self) -> priority.PriorityTable:
        return priority.PriorityTable(
            default={
                TimelinessClass.NRT: self.nrt,
                TimelinessClass.REPROCESSING: self.reprocessing,
                TimelinessClass.ARCHIVE: self.archive,
            },
            per_condition={name: c.priorities() for name, c in self.conditions.items()},
        )

    def aging_rule(self) -> priority.Aging:
        return priority.Aging(
            seconds_per_point=self.aging.seconds_per_point,
            step_s=self.aging.step_s,
            enabled=self.enabled,
        )


class CapacityConfig(_Section):
    """Concurrent runs of one flavour, with a share reserved for NRT work."""

    flavour: Name
    max_concurrent: Annotated[int, Field(gt=0)]
    nrt_reserved_share: Annotated[float, Field(ge=0, le=1)] = 0.0
    lend_idle_reserve: bool = False

    def limit(self) -> capacity_rules.FlavourLimit:
        return capacity_rules.FlavourLimit(
            self.max_concurrent, self.nrt_reserved_share, self.lend_idle_reserve
        )


class KpiConfig(_Section):
    """Sensing → product targets of NRT products, in minutes."""

    nrt_target_minutes: PositiveFloat = 180.0
    targets: dict[Name, PositiveFloat] = Field(default_factory=dict)

    def target_rule(self) -> kpi_rules.Targets:
        return kpi_rules.Targets(
            timedelta(minutes=self.nrt_target_minutes),
            {name: timedelta(minutes=m) for name, m in self.targets.items()},
        )


class PrioritySettings(_Section):
    """The three sections together (what :func:`settings_of` returns)."""

    priority: PriorityConfig = PriorityConfig()
    capacity: tuple[CapacityConfig, ...] = ()
    kpi: KpiConfig = KpiConfig()

    @field_validator("capacity")
    @classmethod
    def _one_entry_per_flavour(
        cls, value: tuple[CapacityConfig, ...]
    ) -> tuple[CapacityConfig, ...]:
        seen: set[str] = set()
        for i, entry in enumerate(value):
            if entry.flavour in seen:
                raise ValueError(f"entry {i}: flavour {entry.flavour!r} is listed twice")
            seen.add(entry.flavour)
        return value

    def limits(self) -> dict[str, capacity_rules.FlavourLimit]:
        return {entry.flavour: entry.limit() for entry in self.capacity}


def check_references(
    settings: PrioritySettings, *, flavours: Iterable[str], conditions: Iterable[str]
) -> list[tuple[str, str]]:
    """(key, message) for every flavour or condition the sections name that does not exist
    (the lead's ``Config`` validator raises the first, like the other reference checks)."""
    known_flavours = set(flavours)
    known_conditions = set(conditions)
    problems: list[tuple[str, str]] = []
    for i, entry in enumerate(settings.capacity):
        if entry.flavour not in known_flavours:
            problems.append((f"capacity.{i}.flavour", f"unknown routine {entry.flavour!r}"))
    for name in settings.priority.conditions:
        if name not in known_conditions:
            problems.append(
                (f"priority.conditions.{name}", f"unknown processing condition {name!r}")
            )
    for name in settings.kpi.targets:
        if name not in known_conditions:
            problems.append((f"kpi.targets.{name}", f"unknown processing condition {name!r}"))
    return problems


def settings_of(cfg: object) -> PrioritySettings:
    """The priority settings of a loaded configuration: its ``priority``, ``capacity`` and
    ``kpi`` fields once they are wired into ``Config``, the defaults before."""
    found = {key: getattr(cfg, key) for key in ("priority", "capacity", "kpi") if hasattr(cfg, key)}
    return PrioritySettings.model_validate(found)
