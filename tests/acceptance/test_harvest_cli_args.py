"""``hrwsi harvest`` argument checks, as a subprocess: bad days are usage errors."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

CONFIG = """
[[harvester.queries]]
name = "s2_l1c"
processing_condition = "MAJA_PC"
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "", "--to", "2024-05-01"), "--from: '' is not a day"),
        (("--from", "2024-05-01", "--to", ""), "--to: '' is not a day"),
        (("--from", "2024-05-02", "--to", "2024-05-01"), "--to is before --from"),
        (("--from", "2024-02-30", "--to", "2024-03-01"), "is not a day"),
    ],
)
async def test_bad_days_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """An empty, impossible or reversed day exits 2 with the reason, before any harvesting
    (before: an empty --from silently ran a near-real-time pass instead of the archive)."""
    config = tmp_path / "hrwsi.toml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env.update(
        HRWSI_CONFIG=str(config),
        HRWSI_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
        HRWSI_CATALOGUE_URL="http://127.0.0.1:9/odata/v1",
        HRWSI_CATALOGUE__MAX_ATTEMPTS="1",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hrwsi",
        "harvest",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, err.decode()
    assert message in " ".join(err.decode().split())
