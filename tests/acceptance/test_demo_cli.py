"""`hrwsi demo` as a new user runs it: embedded database, stand-in catalogue, local routines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_runs_the_whole_chain_offline_and_exits_zero(tmp_path: Path) -> None:
    """Every harvested L1C input reaches its L2B product, with retries shown; exit code 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env["HRWSI_DATA_DIR"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-m", "hrwsi", "demo", "--inputs", "8", "--fail-one-in", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "every input reached its L2B product" in output
    assert "embedded PostgreSQL" in output
    products = sorted((tmp_path / "home/demo/data/HRWSI/L2B").rglob("raster.pgm"))
    assert len(products) == 8
    lines = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in output.splitlines()
        if line.count("│") == 3
    }
    assert lines["products S2_FSC_L2B"] == "8"
    assert int(lines["failed attempts (retried)"]) >= 1
    assert lines["tasks failed for good"] == "0"
