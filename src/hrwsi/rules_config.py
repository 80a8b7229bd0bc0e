"""Triggering rules in the TOML configuration: one ``[[rules]]`` table per processing
condition, validated with messages that name the key, turned into the pure rule values of
:mod:`hrwsi.domain.rules.spec`.

Also the HR-WSI chain file shipped with the package (``hrwsi/data/hrwsi_chain.toml``):
product types, routines, conditions and rules of the whole chain, in the shapes of
:mod:`hrwsi.config` so the two merge (``rules`` and ``track_tables`` become one field of
``Config``).
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Collection, Mapping
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hrwsi.domain import errors
from hrwsi.domain.rules import spec

BUILTIN = "builtin"
CHAIN_FILE = "hrwsi_chain.toml"
TRACKS_FILE = "s1_tracks.csv"

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
Role = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
ProductType = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_-]+$")]
Days = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RuleBase(_Model):
    condition: Name
    # The rule's name in keys, logs and ``explain``; default: the condition's name.
    name: Name | None = None

    @property
    def rule_name(self) -> str:
        return self.name or self.condition


class SingleRule(_RuleBase):
    kind: Literal["single"]
    input_type: ProductType
    role: Role = "input"
    max_days_since_harvest: Days | None = None


class FanOutFilteredRule(_RuleBase):
    kind: Literal["fan_out_filtered"]
    input_type: ProductType
    role: Role = "input"
    max_days_since_harvest: Days | None = 7.0
    track_table: Name | None = None


class SerialPerTileRule(_RuleBase):
    kind: Literal["serial_per_tile"]
    input_type: ProductType = "S2MSI1C"
    previous_type: ProductType = "S2_MAJA_L2A"
    init_after_days: Annotated[int, Field(gt=0)] = 90
    role: Role = "l1c"
    previous_role: Role = "previous_l2a"
    mode_param: Role = "mode"
    init_mode: Name = "L2INIT"
    nominal_mode: Name = "L2NOMINAL"
    max_live_per_tile: Annotated[int, Field(gt=0)] = 1

    @model_validator(mode="after")
    def _distinct(self) -> SerialPerTileRule:
        if self.input_type == self.previous_type:
            raise ValueError("previous_type: must differ from input_type")
        if self.role == self.previous_role:
            raise ValueError("previous_role: must differ from role")
        return self


class PairSlicesRule(_RuleBase):
    kind: Literal["pair_slices"]
    input_type: ProductType = "IW_GRDH_1S"
    role: Role = "grd"
    touch_tolerance_s: Annotated[float, Field(ge=0, le=3600)] = 2.0
    orphan_after_hours: Annotated[float, Field(ge=0)] = 2.0
    late_partner: Literal["drop", "alone"] = "drop"


class JoinSameTileDayRule(_RuleBase):
    kind: Literal["join_same_tile_day"]
    anchor_type: ProductType
    anchor_role: Role
    partner_type: ProductType
    partner_role: Role
    per_partner: bool = False
    max_days_since_harvest: Days | None = None
    track_table: Name | None = None

    @model_validator(mode="after")
    def _distinct(self) -> JoinSameTileDayRule:
        if self.anchor_type == self.partner_type:
            raise ValueError("partner_type: must differ from anchor_type")
        if self.anchor_role == self.partner_role:
            raise ValueError("partner_role: must differ from anchor_role")
        return self


class CompositeWithGateRule(_RuleBase):
    kind: Literal["composite_with_gate"]
    inputs: Annotated[dict[ProductType, Role], Field(min_length=1)]
    gate_conditions: tuple[Name, ...] = ()
    window_days: Annotated[int, Field(ge=0, le=366)] = 7
    day_closes_after_hours: Annotated[float, Field(ge=0)] = 6.0
    max_catch_up_days: Annotated[int, Field(gt=0, le=366)] = 31


RuleConfig = Annotated[
    SingleRule
    | FanOutFilteredRule
    | SerialPerTileRule
    | PairSlicesRule
    | JoinSameTileDayRule
    | CompositeWithGateRule,
    Field(discriminator="kind"),
]


class TrackTableConfig(_Model):
    """A tile → relative orbits table: a CSV file (``builtin``: the shipped one) and/or
    inline ``tiles``; the CSV rows used are those whose ``table`` column is this name."""

    file: str | None = None
    tiles: dict[str, tuple[Annotated[int, Field(ge=1, le=175)], ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some(self) -> TrackTableConfig:
        if self.file is None and not self.tiles:
            raise ValueError("file: give a file or tiles")
        for tile in self.tiles:
            clean = tile.upper().removeprefix("T")
            if len(clean) != 5 or not clean[:2].isdigit() or not clean[2:].isalpha():
                raise ValueError(f"tiles: {tile!r} is not an MGRS tile such as 32TLR")
        return self


def default_tracks() -> dict[str, TrackTableConfig]:
    return {name: TrackTableConfig(file=BUILTIN) for name in ("sws", "wds", "wics1")}


class RulesConfig(_Model):
    """The ``rules`` and ``track_tables`` of the configuration (the field the lead wires
    into :class:`hrwsi.config.Config`). A condition without a rule keeps ``single``."""

    rules: tuple[RuleConfig, ...] = ()
    track_tables: dict[Name, TrackTableConfig] = Field(default_factory=default_tracks)

    @model_validator(mode="after")
    def _references(self) -> RulesConfig:
        names: set[str] = set()
        conditions: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.rule_name in names:
                raise ValueError(f"rules.{i}.name: duplicate rule name {rule.rule_name!r}")
            if rule.condition in conditions:
                raise ValueError(f"rules.{i}.condition: {rule.condition!r} already has a rule")
            names.add(rule.rule_name)
            conditions.add(rule.condition)
            table = getattr(rule, "track_table", None)
            if table is not None and table not in self.track_tables:
                raise ValueError(f"rules.{i}.track_table: unknown track table {table!r}")
        return self

    def check_conditions(self, known: Collection[str]) -> None:
        """Every rule's condition, and every gate condition, must be a configured one."""
        for i, rule in enumerate(self.rules):
            if rule.condition not in known:
                raise errors.ConfigError(
                    f"unknown processing condition {rule.condition!r}", key=f"rules.{i}.condition"
                )
            if isinstance(rule, CompositeWithGateRule):
                for j, cond in enumerate(rule.gate_conditions):
                    if cond not in known:
                        raise errors.ConfigError(
                            f"unknown processing condition {cond!r}",
                            key=f"rules.{i}.gate_conditions.{j}",
                        )

    def load_tracks(self, base_dir: Path | None = None) -> dict[str, spec.TrackTable]:
        """Read every track table (files relative to ``base_dir``)."""
        return {
            name: _track_table(name, table, base_dir) for name, table in self.track_tables.items()
        }

    def to_domain(
        self,
        tracks: Mapping[str, spec.TrackTable] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[spec.Rule, ...]:
        """The pure rules; ``labels`` names gate conditions in waits (condition → routine)."""
        tracks = self.load_tracks() if tracks is None else tracks
        return tuple(to_rule(rule, tracks, labels or {}) for rule in self.rules)


def to_rule(
    rule: RuleConfig, tracks: Mapping[str, spec.TrackTable], labels: Mapping[str, str]
) -> spec.Rule:
    name = rule.rule_name
    match rule:
        case SingleRule():
            return spec.Single(
                name, rule.condition, rule.input_type, rule.role, rule.max_days_since_harvest
            )
        case FanOutFilteredRule():
            return spec.FanOutFiltered(
                name,
                rule.condition,
                rule.input_type,
                rule.role,
                rule.max_days_since_harvest,
                tracks[rule.track_table] if rule.track_table else None,
            )
        case SerialPerTileRule():
            return spec.SerialPerTile(
                name,
                rule.condition,
                rule.input_type,
                rule.previous_type,
                init_after_days=rule.init_after_days,
                role=rule.role,
                previous_role=rule.previous_role,
                mode_param=rule.mode_param,
                init_mode=rule.init_mode,
                nominal_mode=rule.nominal_mode,
                max_live_per_tile=rule.max_live_per_tile,
            )
        case PairSlicesRule():
            return spec.PairSlices(
                name,
                rule.condition,
                rule.input_type,
                rule.role,
                touch_tolerance=timedelta(seconds=rule.touch_tolerance_s),
                orphan_after=timedelta(hours=rule.orphan_after_hours),
                late_partner=rule.late_partner,
            )
        case JoinSameTileDayRule():
            return spec.JoinSameTileDay(
                name,
                rule.condition,
                rule.anchor_type,
                rule.partner_type,
                rule.anchor_role,
                rule.partner_role,
                per_partner=rule.per_partner,
                max_days_since_harvest=rule.max_days_since_harvest,
                tracks=tracks[rule.track_table] if rule.track_table else None,
            )
        case CompositeWithGateRule():
            return spec.CompositeWithGate(
                name,
                rule.condition,
                input_roles=tuple(sorted(rule.inputs.items())),
                gate_conditions=rule.gate_conditions,
                window_days=rule.window_days,
                day_closes_after=timedelta(hours=rule.day_closes_after_hours),
                max_catch_up_days=rule.max_catch_up_days,
                gate_labels=tuple((c, labels[c]) for c in rule.gate_conditions if c in labels),
            )


def parse_tracks_csv(text: str, table: str, source: str) -> dict[str, frozenset[int]]:
    """The rows of one table from a ``table,tile,relative_orbits[,source]`` CSV."""
    rows = csv.DictReader(io.StringIO(text))
    missing = {"table", "tile", "relative_orbits"} - set(rows.fieldnames or ())
    if missing:
        raise errors.ConfigError(f"missing column(s) {', '.join(sorted(missing))}", source=source)
    out: dict[str, set[int]] = {}
    for line, row in enumerate(rows, start=2):
        if row["table"] != table:
            continue
        tile = (row["tile"] or "").strip().upper().removeprefix("T")
        try:
            orbits = {int(x) for x in (row["relative_orbits"] or "").split()}
        except ValueError:
            raise errors.ConfigError(
                f"line {line}: relative_orbits {row['relative_orbits']!r} are not numbers",
                source=source,
            ) from None
        if len(tile) != 5 or not all(1 <= o <= 175 for o in orbits):
            raise errors.ConfigError(
                f"line {line}: bad tile {row['tile']!r} or orbit outside 1..175", source=source
            )
        out.setdefault(tile, set()).update(orbits)
    return {tile: frozenset(orbits) for tile, orbits in out.items()}


def _track_table(name: str, table: TrackTableConfig, base_dir: Path | None) -> spec.TrackTable:
    orbits: dict[str, frozenset[int]] = {}
    if table.file is not None:
        if table.file == BUILTIN:
            source = f"hrwsi/data/{TRACKS_FILE}"
            text = resources.files("hrwsi").joinpath("data", TRACKS_FILE).read_text("utf-8")
        else:
            path = Path(table.file).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            source = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise errors.ConfigError(
                    f"cannot read: {exc}", source=source, key=f"track_tables.{name}.file"
                ) from exc
        orbits.update(parse_tracks_csv(text, name, source))
    for tile, extra in table.tiles.items():
        clean = tile.upper().removeprefix("T")
        orbits[clean] = orbits.get(clean, frozenset()) | frozenset(extra)
    return spec.TrackTable(name, orbits)


class ProductTypeConfig(_Model):
    code: ProductType
    description: str = ""
    processing_level: str = ""


# hrwsi.config builds on the models above (its ``rules`` field); the chain file's shapes
# build on hrwsi.config's: imported here, once the models above exist, to break the cycle.
from hrwsi import config  # noqa: E402


class ChainRoutine(config.RoutineConfig):
    """A routine of :mod:`hrwsi.config` (with the cloud flavour HR-WSI runs it on)."""


class ChainConfig(RulesConfig):
    """The whole chain file: product types, routines, conditions, rules, track tables."""

    product_types: tuple[ProductTypeConfig, ...] = ()
    routines: tuple[ChainRoutine, ...] = ()
    processing_conditions: tuple[config.ProcessingConditionConfig, ...] = ()
    # The chain's own planner limits: its sizes are the HR-WSI ones (ram in MB), far above
    # the small default units of ``hrwsi.config.SchedulingConfig``.
    scheduling: config.SchedulingConfig | None = None

    @model_validator(mode="after")
    def _chain(self) -> ChainConfig:
        routines = {r.name for r in self.routines}
        types = {p.code for p in self.product_types}
        for i, routine in enumerate(self.routines):
            if types and routine.product_type_code not in types:
                raise ValueError(
                    f"routines.{i}.product_type_code: unknown product type "
                    f"{routine.product_type_code!r}"
                )
        for i, cond in enumerate(self.processing_conditions):
            if cond.routine not in routines:
                raise ValueError(
                    f"processing_conditions.{i}.routine: unknown routine {cond.routine!r}"
                )
        try:
            self.check_conditions({c.name for c in self.processing_conditions})
        except errors.ConfigError as exc:
            raise ValueError(f"{exc.key}: {str(exc).split(': ', 1)[1]}") from None
        return self

    def labels(self) -> dict[str, str]:
        """Condition → routine name, how waits name the gating tasks ("3 FSC tasks")."""
        return {c.name: c.routine for c in self.processing_conditions}

    def domain_rules(self, base_dir: Path | None = None) -> tuple[spec.Rule, ...]:
        return self.to_domain(self.load_tracks(base_dir), self.labels())

    def apply(self, base: config.Config | None = None, **changes: Any) -> config.Config:
        """``base`` (default: the defaults) running this chain: its product types, routines,
        conditions, rules, track tables and (when the file gives them) scheduling limits."""
        base = base or config.Config()
        fields: dict[str, Any] = {
            "product_types": self.product_types,
            "routines": tuple(config.RoutineConfig(**r.model_dump()) for r in self.routines),
            "processing_conditions": self.processing_conditions,
            "rules": self.rules,
            "track_tables": self.track_tables,
        }
        if self.scheduling is not None:
            fields["scheduling"] = self.scheduling
        data = base.model_dump() | {k: v for k, v in fields.items()} | changes
        return config.Config.model_validate(data)


def _describe(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    # Drop the discriminator tag pydantic inserts ("rules.0.serial_per_tile.init_after_days").
    kinds = {"single", "fan_out_filtered", "serial_per_tile", "pair_slices"}
    kinds |= {"join_same_tile_day", "composite_with_gate"}
    key = ".".join(part for part in loc if part not in kinds)
    message = first["msg"].removeprefix("Value error, ")
    # Model validators name the field in their text: absolute ("rules.0.track_table")
    # at the top level, relative ("file") inside a nested model.
    prefix, _, rest = message.partition(": ")
    if rest and re.fullmatch(r"[A-Za-z0-9_.]+", prefix):
        key = prefix if not key or prefix.startswith(key + ".") else f"{key}.{prefix}"
        message = rest
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return key, message


def parse_chain(data: Mapping[str, Any], source: str = "<chain>") -> ChainConfig:
    """Validate a chain mapping; a problem raises ConfigError naming the key."""
    try:
        return ChainConfig.model_validate(data)
    except ValidationError as exc:
        key, message = _describe(exc)
        raise errors.ConfigError(message, source=source, key=key) from None


def parse_rules(data: Mapping[str, Any], source: str = "<rules>") -> RulesConfig:
    """Validate the ``rules`` / ``track_tables`` part of a configuration mapping."""
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        key, message = _describe(exc)
        raise errors.ConfigError(message, source=source, key=key) from None


def load_chain(path: Path | None = None) -> ChainConfig:
    """The chain file at ``path``, or the HR-WSI chain shipped with the package."""
    if path is None:
        text = resources.files("hrwsi").joinpath("data", CHAIN_FILE).read_text("utf-8")
        source = f"hrwsi/data/{CHAIN_FILE}"
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise errors.ConfigError(f"cannot read: {exc}", source=source) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigError(f"not valid TOML: {exc}", source=source) from exc
    return parse_chain(data, source)
