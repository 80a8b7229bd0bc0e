"""The composition root: the one place that wires adapters into services.

Everything else receives what it needs: services get the configuration, the database URL
and their adapters (catalogue HTTP client, executor); nothing below this module reads the
environment or picks an implementation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from hrwsi.config import Config
from hrwsi.db import connect, heartbeat, migrate, seed
from hrwsi.domain import errors
from hrwsi.executors.base import Executor
from hrwsi.services.base import Service
from hrwsi.services.runner import Runner

if TYPE_CHECKING:
    from hrwsi.domain.planning import Instance, Plan
    from hrwsi.services.orchestrator import OrchestratorService

log = logging.getLogger(__name__)

ALL_SERVICES = ("harvester", "orchestrator", "launcher")


def local_dirs(config: Config) -> tuple[Path, Path]:
    """(work_dir, data_root) of the local executor: run logs and state, and product files."""
    base = config.database.data_dir
    local = config.executor.local
    return (local.work_dir or base / "runs", local.products_dir or base / "data")


def build_executor(config: Config) -> Executor:
    """The configured executor: local subprocesses (default) or a Nomad cluster."""
    if config.executor.kind == "nomad":
        return build_nomad_executor(config)
    from hrwsi.executors.local import LocalExecutor

    work_dir, data_root = local_dirs(config)
    work_dir.mkdir(parents=True, exist_ok=True)
    data_root.mkdir(parents=True, exist_ok=True)
    return LocalExecutor(
        work_dir,
        data_root,
        max_parallel=config.executor.local.max_parallel,
        timeout_factor=config.executor.local.timeout_factor,
    )


# -- Nomad: the cluster address and ACL token (HRWSI_NOMAD_ADDR / HRWSI_NOMAD_TOKEN, read
# into the configuration) and the environment holding the passthrough secrets are handed to
# the executor here; the executor and its client read no environment themselves.


def build_nomad_executor(config: Config) -> Executor:
    """The Nomad executor, with a client of the configured cluster and token."""
    from hrwsi.executors.nomad import NomadExecutor
    from hrwsi.executors.nomad_client import NomadClient

    settings = config.executor.nomad
    client = NomadClient.connect(settings.address, settings.token, settings)
    return NomadExecutor(settings, client=client, owns_client=True)


async def publish_nomad_secrets(executor: Executor) -> None:
    """Copy the passthrough secrets of this process's environment to the Nomad variable;
    fails at start on a cluster without Nomad variables (Nomad < 1.4)."""
    from hrwsi.executors.nomad import NomadExecutor

    if not isinstance(executor, NomadExecutor):
        return
    try:
        await executor.publish_secrets(os.environ)
    except BaseException:
        await executor.aclose()  # nothing else owns it yet
        raise


# -- services -------------------------------------------------------------------------------


def build_orchestrator(
    config: Config, db_url: str, *, planner: Callable[[Instance], Plan] | None = None
) -> OrchestratorService:
    """The planning service alone (``hrwsi plan``), optionally with another planner."""
    from hrwsi.services.orchestrator import OrchestratorService

    return OrchestratorService(config, db_url, planner=planner)


def build_services(
    config: Config,
    db_url: str,
    only: Sequence[str] = ALL_SERVICES,
    *,
    executor: Executor | None = None,
) -> list[Service]:
    """The services named in ``only``, each with its adapters (the launcher owns ``executor``)."""
    services: list[Service] = []
    if "harvester" in only:
        from hrwsi.catalogue import odata
        from hrwsi.services.harvester import HarvesterService

        services.append(
            HarvesterService(
                config, db_url, http=odata.make_http_client(config.catalogue), owns_http=True
            )
        )
    if "orchestrator" in only:
        services.append(build_orchestrator(config, db_url))
    if "launcher" in only:
        from hrwsi.services.launcher import LauncherService

        services.append(LauncherService(config, db_url, executor or build_executor(config)))
    return services


@dataclass
class App:
    """The system, ready to run: a runner hosting the services (it closes them when it stops)."""

    runner: Runner
    services: list[Service]


async def check_schema(db_url: str) -> None:
    """Refuse to start on a database whose schema is missing or not up to date."""
    conn = await connect.connect(db_url, autocommit=True)
    async with conn:
        try:
            missing = await migrate.pending(conn)
        except psycopg.Error as exc:
            raise errors.DatabaseError(f"cannot read the schema version: {exc}") from exc
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        raise errors.DatabaseError(
            f"the database schema is not up to date ({len(missing)} migrations pending: "
            f"{names}); run 'hrwsi db migrate' first"
        )


async def seed_routines(config: Config, db_url: str) -> int:
    """Make the configuration the one source of truth for routines: upsert the configured
    routines, conditions and product types, so the planner (which reads routine sizes from
    the database) and the launcher (which dispatches with the configured sizes) agree."""
    conn = await connect.connect(
        db_url, autocommit=True, timeout_s=config.database.connect_timeout_s
    )
    async with conn:
        try:
            changed = await seed.seed(conn, config)
        except psycopg.Error as exc:
            raise errors.DatabaseError(f"cannot seed the configured routines: {exc}") from exc
    if changed:
        log.info("bootstrap.routines_seeded", extra={"rows": changed})
    return changed


async def build(config: Config, db_url: str, only: Sequence[str] = ALL_SERVICES) -> App:
    """Check the schema, seed the configured routines and wire the services into a runner
    (nothing runs yet)."""
    await check_schema(db_url)
    await seed_routines(config, db_url)
    executor = build_executor(config) if "launcher" in only else None
    if executor is not None and config.executor.nomad.passthrough_env:
        # The runs read these from a Nomad variable; values never enter a job spec.
        await publish_nomad_secrets(executor)
    services = build_services(config, db_url, only, executor=executor)
    runner = Runner(
        db_url,
        services,
        coalesce_s=config.scheduling.coalesce_ms / 1000,
        probe_interval_s=config.database.listener_poll_s,
        heartbeat=heartbeat.Heartbeat(db_url, only).run,
    )
    return App(runner=runner, services=services)
