"""The composition root: the one place that wires adapters into services.

Everything else receives what it needs: services get the configuration, the database URL
and their adapters (catalogue HTTP client, executor); nothing below this module reads the
environment or picks an implementation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from hrwsi.config import Config
from hrwsi.db import connect, heartbeat, migrate
from hrwsi.domain import errors
from hrwsi.executors.base import Executor
from hrwsi.services.base import Service
from hrwsi.services.runner import Runner

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
        from hrwsi.executors.nomad import NomadExecutor

        return NomadExecutor(config.executor.nomad)
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
        from hrwsi.services.harvester import HarvesterService

        services.append(HarvesterService(config, db_url))
    if "orchestrator" in only:
        from hrwsi.services.orchestrator import OrchestratorService

        services.append(OrchestratorService(config, db_url))
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


async def build(config: Config, db_url: str, only: Sequence[str] = ALL_SERVICES) -> App:
    """Check the schema and wire the services into a runner (nothing runs yet)."""
    await check_schema(db_url)
    executor = build_executor(config) if "launcher" in only else None
    if config.executor.kind == "nomad" and config.executor.nomad.passthrough_env:
        from hrwsi.executors.nomad import NomadExecutor

        if isinstance(executor, NomadExecutor):
            # The runs read these from a Nomad variable; values never enter a job spec.
            await executor.publish_secrets()
    services = build_services(config, db_url, only, executor=executor)
    runner = Runner(
        db_url,
        services,
        coalesce_s=config.scheduling.coalesce_ms / 1000,
        probe_interval_s=config.database.listener_poll_s,
        heartbeat=heartbeat.Heartbeat(db_url, only).run,
    )
    return App(runner=runner, services=services)
