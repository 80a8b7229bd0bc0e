"""`hrwsi run` against the stand-ins: a harvest goes end to end, SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import psycopg
import pytest

from hrwsi.testing import routines
from hrwsi.testing.catalogue_server import CatalogueStandIn, demo_records

CONFIG = """
[database]
listener_poll_s = 5
[catalogue]
base_url = "{catalogue}"
backoff_initial_s = 0.1
[harvester]
interval_minutes = 60
[[harvester.queries]]
name = "berlin-l1c"
processing_condition = "MAJA_PC"
[scheduling]
t_max_minutes = 30
pass_interval_s = 2
[executor]
poll_interval_s = 2
[retry]
backoff_initial_s = 0.2
backoff_max_s = 1
"""


def _env(tmp_path: Path, db_url: str, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env.update(HRWSI_DATABASE_URL=db_url, HRWSI_CONFIG=str(config), HRWSI_DATA_DIR=str(tmp_path))
    return env


async def _count_l2b(db_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM hrwsi.products p JOIN hrwsi.product_type t"
            " ON t.id = p.product_type_id WHERE t.code = 'S2_FSC_L2B'"
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_run_processes_a_harvest_end_to_end_and_stops_on_sigterm(
    tmp_path: Path, empty_db_url: str
) -> None:
    """Harvest → MAJA → FSC through `hrwsi run`; SIGTERM exits 0 with JSON event logs."""
    records = demo_records(5)
    for record in records:
        routines.make_l1c(tmp_path / "data" / record["S3Path"].lstrip("/"), record["Name"])
    async with CatalogueStandIn(products=records) as catalogue:
        config = tmp_path / "hrwsi.toml"
        config.write_text(CONFIG.format(catalogue=catalogue.base_url))
        env = _env(tmp_path, empty_db_url, config)
        init = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hrwsi",
            "db",
            "init",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert await init.wait() == 0
        run = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hrwsi",
            "run",
            "--log-format",
            "json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            for _ in range(600):
                if await _count_l2b(empty_db_url) == len(records):
                    break
                assert run.returncode is None, "hrwsi run exited early"
                await asyncio.sleep(0.2)
            assert await _count_l2b(empty_db_url) == len(records)
        finally:
            run.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(run.communicate(), 30)
    assert run.returncode == 0, stderr.decode()
    text = stderr.decode()
    assert "stopped cleanly" in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    names = {e["event"] for e in events}
    assert {
        "runner.service_started",
        "orchestrator.planned",
        "launcher.processed",
        "runner.service_stopped",
    } <= names
    async with await psycopg.AsyncConnection.connect(empty_db_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM hrwsi.processing_tasks WHERE NOT has_ended")
        assert (await cur.fetchone()) == (0,)


async def test_run_refuses_a_database_without_the_schema(tmp_path: Path, empty_db_url: str) -> None:
    """`hrwsi run` on an uninitialised database exits 2 and says to run `hrwsi db init`."""
    config = tmp_path / "hrwsi.toml"
    config.write_text("")
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hrwsi",
        "run",
        env=_env(tmp_path, empty_db_url, config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(run.communicate(), 60)
    assert run.returncode == 2
    assert "hrwsi db init" in stderr.decode()


async def test_run_rejects_an_unknown_service(tmp_path: Path, empty_db_url: str) -> None:
    """`--only` with a name that is not a service exits 2 naming it."""
    config = tmp_path / "hrwsi.toml"
    config.write_text("")
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hrwsi",
        "run",
        "--only",
        "harvester,planner",
        env=_env(tmp_path, empty_db_url, config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(run.communicate(), 60)
    assert run.returncode == 2
    assert "planner" in stderr.decode()
