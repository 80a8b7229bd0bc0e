"""The offline demo: the whole chain on the embedded database, stand-ins and local routines.

harvest (catalogue stand-in with real Sentinel-2 L1C records) → plan → launch MAJA (L1C →
L2A) → the L2A products become FSC inputs → plan → launch FSC (L2A → L2B). The demo routines
are small real programs (:mod:`hrwsi.testing.routines`); one input in ten fails on its first
attempt to show retries.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import sql

from hrwsi import bootstrap
from hrwsi.config import (
    CatalogueConfig,
    Config,
    DatabaseConfig,
    ExecutorConfig,
    HarvesterConfig,
    HarvestQuery,
    LocalExecutorConfig,
    RetryConfig,
    SchedulingConfig,
)
from hrwsi.db import connect, embedded, metrics, migrate, seed
from hrwsi.testing import routines
from hrwsi.testing.catalogue_server import CatalogueStandIn, demo_records

DEMO_DATABASE = "hrwsi_demo"
MAJA_CONDITION = "MAJA_PC"
FSC_CONDITION = "FSC_PC"


@dataclass
class DemoState:
    """What the demo has seen so far (shown live, then summarised)."""

    expected: int = 0
    conditions: list[metrics.ConditionSummary] = field(default_factory=list)
    products: dict[str, int] = field(default_factory=dict)
    failed_for_good: list[metrics.FailedTask] = field(default_factory=list)
    latency: metrics.Latency | None = None
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None

    @property
    def wall_s(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def condition(self, name: str) -> metrics.ConditionSummary | None:
        return next((c for c in self.conditions if c.condition == name), None)

    @property
    def completed(self) -> int:
        """L1C inputs whose chain reached an L2B product."""
        fsc = self.condition(FSC_CONDITION)
        return fsc.inputs_with_product if fsc else 0

    @property
    def stuck(self) -> bool:
        """Every task has ended and nothing is left to run, yet some chains are incomplete."""
        if not self.conditions or self.completed >= self.expected:
            return False
        maja = self.condition(MAJA_CONDITION)
        fsc = self.condition(FSC_CONDITION)
        maja_done = maja is not None and maja.tasks_ended == maja.tasks and maja.tasks > 0
        fsc_idle = fsc is None or fsc.tasks_ended == fsc.tasks
        pending_fsc = (maja.inputs_with_product if maja else 0) - (fsc.inputs if fsc else 0)
        return bool(self.failed_for_good) and maja_done and fsc_idle and pending_fsc <= 0

    @property
    def success(self) -> bool:
        return self.expected > 0 and self.completed == self.expected


def demo_config(data_dir: Path, catalogue_url: str, *, fail_one_in: int) -> Config:
    """The demo's configuration: demo routines, short backoffs, one harvest query."""
    fail = ("--fail-first-attempt-one-in", str(fail_one_in)) if fail_one_in else ()
    routines_cfg = tuple(
        routine.model_copy(update={"command": (*routine.command, *fail)})
        for routine in Config().routines  # MAJA and FSC, running hrwsi.testing.routines
    )
    return Config(
        database=DatabaseConfig(data_dir=data_dir, listener_poll_s=5.0),
        catalogue=CatalogueConfig(base_url=catalogue_url, backoff_initial_s=0.1),
        harvester=HarvesterConfig(
            interval_minutes=60,
            queries=(
                HarvestQuery(
                    name="demo-s2-l1c",
                    processing_condition=MAJA_CONDITION,
                    collection="SENTINEL-2",
                    product_type="S2MSI1C",
                    max_days_since_measurement=30,
                    max_days_since_publication=7,
                ),
            ),
        ),
        routines=routines_cfg,
        # A one-hour horizon spreads the demo over several VMs (the planner uses the fewest
        # VMs that finish in time; with the default 15 h one VM per routine would do).
        scheduling=SchedulingConfig(pass_interval_s=2.0, t_max_minutes=60),
        executor=ExecutorConfig(
            kind="local",
            poll_interval_s=2.0,
            local=LocalExecutorConfig(
                work_dir=data_dir / "runs", products_dir=data_dir / "data", max_parallel=4
            ),
        ),
        retry=RetryConfig(backoff_initial_s=0.2, backoff_max_s=1.0, internal_error_retries=2),
    )


def _fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def materialise_inputs(records: list[dict[str, Any]], data_root: Path) -> int:
    """Write a small L1C raster where each catalogue record's S3Path says the product is."""
    for record in records:
        routines.make_l1c(data_root / record["S3Path"].lstrip("/"), record["Name"])
    return len(records)


async def _observe(db_url: str, state: DemoState, since: datetime) -> None:
    conn = await connect.connect(db_url, autocommit=True)
    async with conn:
        state.conditions = await metrics.chain_summary(conn)
        state.products = await metrics.products_by_type(conn)
        # The demo has at most 2 x 294 tasks: every failed one fits.
        state.failed_for_good = await metrics.failed_for_good(conn, limit=1000)
        state.latency = await metrics.dispatch_latency(conn, since)


async def run_demo(
    admin_url: str,
    data_dir: Path,
    *,
    inputs: int,
    fail_one_in: int,
    timeout_s: float,
    on_update: Callable[[DemoState], None] = lambda state: None,
) -> DemoState:
    """Run the whole chain until every input has its L2B product, or it cannot, or time's up."""
    await asyncio.to_thread(_fresh_dir, data_dir)
    records = demo_records(inputs)
    state = DemoState(expected=len(records))
    since = datetime.now(UTC)
    async with CatalogueStandIn(products=records) as catalogue:
        config = demo_config(data_dir, catalogue.base_url, fail_one_in=fail_one_in)
        materialise_inputs(records, bootstrap.local_dirs(config)[1])
        db_url = await prepare_database(admin_url, DEMO_DATABASE, config)
        app = await bootstrap.build(config, db_url)
        running = asyncio.create_task(app.runner.run())
        try:
            deadline = time.perf_counter() + timeout_s
            while time.perf_counter() < deadline and not running.done():
                await asyncio.sleep(0.25)
                await _observe(db_url, state, since)
                on_update(state)
                if state.success or state.stuck:
                    break
        finally:
            app.runner.stop()
            await running
        await _observe(db_url, state, since)
    state.finished = time.perf_counter()
    on_update(state)
    return state


async def prepare_database(admin_url: str, name: str, config: Config) -> str:
    """Drop and recreate the demo database, migrate and seed it; return its URL."""
    admin = await connect.connect(admin_url, autocommit=True)
    async with admin:
        await admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = embedded.with_database(admin_url, name)
    conn = await connect.connect(url, autocommit=True)
    async with conn:
        await migrate.migrate(conn)
        await seed.seed(conn, config)
    return url
