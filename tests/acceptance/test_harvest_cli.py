"""``hrwsi harvest`` as a subprocess against the catalogue stand-in and a test database."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from hrwsi.testing.catalogue_server import CatalogueStandIn, Fault, generate_s2_l1c

CONFIG = """
[[harvester.queries]]
name = "s2_l1c"
processing_condition = "MAJA_PC"
collection = "SENTINEL-2"
product_type = "S2MSI1C"
"""


def _env(db_url: str, base_url: str, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env.update(
        HRWSI_DATABASE_URL=db_url,
        HRWSI_CATALOGUE_URL=base_url,
        HRWSI_CONFIG=str(config),
        HRWSI_CATALOGUE__PAGE_SIZE="5",
        HRWSI_CATALOGUE__BACKOFF_INITIAL_S="0",
    )
    return env


async def _harvest(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hrwsi",
        "harvest",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _scalar(conn: psycopg.AsyncConnection, sql: str) -> int:
    cursor = await conn.execute(sql)
    row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def test_killed_archive_run_resumes_from_its_cursor(
    conn: psycopg.AsyncConnection, db_url: str, tmp_path: Path
) -> None:
    """An archive run killed (SIGKILL) mid-way leaves its cursor; the rerun says where it
    resumes, finishes, and every product of the range is stored exactly once."""
    config = tmp_path / "hrwsi.toml"
    config.write_text(CONFIG)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    recs = generate_s2_l1c(72, seed=21, published_from=start, spacing=timedelta(hours=1))
    async with CatalogueStandIn(products=recs) as server:
        env = _env(db_url, server.base_url, config)
        server.inject(Fault.slow(0.15, times=1000))
        first = await _harvest(env, "--from", "2024-05-01", "--to", "2024-05-03")
        pages = 0
        for _ in range(400):
            pages = await _scalar(conn, "SELECT max(pages) FROM hrwsi.harvest_archive_cursor")
            if pages >= 4 or first.returncode is not None:
                break
            await asyncio.sleep(0.05)
        first.kill()
        await first.wait()
        assert first.returncode == -9, "the first run should have been killed mid-way"
        stored = await _scalar(conn, "SELECT count(*) FROM hrwsi.input")
        assert 0 < stored < 72
        server.clear_faults()
        server.requests.clear()
        second = await _harvest(env, "--from", "2024-05-01", "--to", "2024-05-03")
        out, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 0, err.decode()
        assert "resuming s2_l1c at 2024-05-0" in err.decode()
        assert len(server.requests) < 72 // 5
    text = out.decode()
    assert "archive harvest 2024-05-01 .. 2024-05-03 done" in text
    assert f"new inputs: {72 - stored}" in text
    assert await _scalar(conn, "SELECT count(*) FROM hrwsi.input") == 72
    assert await _scalar(conn, "SELECT count(DISTINCT catalogue_id) FROM hrwsi.input_meta") == 72
    assert await _scalar(conn, "SELECT count(*) FROM hrwsi.harvest_archive_cursor") == 0


async def test_once_prints_the_summary_and_repeats_harmlessly(
    conn: psycopg.AsyncConnection, db_url: str, tmp_path: Path
) -> None:
    """``--once`` stores recent products and prints the summary; a second run adds nothing
    and reports the bad record it skipped."""
    config = tmp_path / "hrwsi.toml"
    config.write_text(CONFIG)
    recs = generate_s2_l1c(12, seed=22)
    bad = dict(recs[0], Id="bad", Name="S2A_MSIL1C_broken.SAFE", S3Path="/x")
    async with CatalogueStandIn(products=[*recs, bad]) as server:
        env = _env(db_url, server.base_url, config)
        runs = []
        for _ in range(2):
            proc = await _harvest(env, "--once")
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            runs.append(out.decode())
    assert "new inputs: 12" in runs[0] and "new inputs: 0" in runs[1]
    assert "bad_name: 1" in runs[0] and "bad_name: 1" in runs[1]
    assert await _scalar(conn, "SELECT count(*) FROM hrwsi.input") == 12


async def test_harvest_needs_a_mode(tmp_path: Path) -> None:
    """Neither --once nor --from/--to is a usage error (exit 2) with a clear message."""
    proc = await _harvest({k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")})
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"--once or --from DAY --to DAY" in err


async def test_unreachable_catalogue_is_a_clean_error(db_url: str, tmp_path: Path) -> None:
    """With nothing listening at the catalogue URL, --once exits 1 with one clear line."""
    config = tmp_path / "hrwsi.toml"
    config.write_text(CONFIG)
    env = _env(db_url, "http://127.0.0.1:9/odata/v1", config)
    env["HRWSI_CATALOGUE__MAX_ATTEMPTS"] = "2"
    proc = await _harvest(env, "--once")
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, err.decode()
    assert "error:" in err.decode() and "Traceback" not in err.decode()
