"""`hrwsi demo` as a new user runs it: embedded database, stand-in catalogue, local routines."""

from __future__ import annotations

import json
import os
import shlex
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


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
    env.update(extra)
    return env


@pytest.mark.timeout(200)
def test_demo_prints_a_command_that_inspects_its_results(tmp_path: Path) -> None:
    """The command printed at the end reads the demo's database: status shows its products."""
    env = _env(HRWSI_DATA_DIR=str(tmp_path / "home"), COLUMNS="300")
    demo = subprocess.run(
        [sys.executable, "-m", "hrwsi", "demo", "--inputs", "2", "--fail-one-in", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    (line,) = [x for x in demo.stderr.splitlines() if x.startswith("inspect the results: ")]
    command = line.removeprefix("inspect the results: ").split("   (or:")[0]
    assert command.endswith("--database hrwsi_demo status"), command
    words = shlex.split(command)
    assignments = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    argv = [w for w in words if w not in {f"{k}={v}" for k, v in assignments.items()}]
    assert argv[0] == "hrwsi"
    status = subprocess.run(
        [sys.executable, "-m", "hrwsi", *argv[1:], "--json"],
        env=_env(**assignments),  # only what the printed command sets
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["products"]["S2_FSC_L2B"] == 2
    assert report["inputs"] == {"FSC_PC": 2, "MAJA_PC": 2}


def test_demo_refuses_to_drop_a_database_on_a_configured_server_without_yes() -> None:
    """With HRWSI_DATABASE_URL set the demo touches nothing and asks for --yes (exit 2)."""
    env = _env(HRWSI_DATABASE_URL="postgresql://nobody@127.0.0.1:1/prod")
    result = subprocess.run(
        [sys.executable, "-m", "hrwsi", "demo", "--inputs", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    text = "".join(result.stderr.split())
    assert "hrwsi_demo" in text and "--yes" in text
    assert "cannotconnect" not in text  # refused before any connection
    helped = subprocess.run(
        [sys.executable, "-m", "hrwsi", "demo", "--help"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "--yes" in helped.stdout and "refuses" in helped.stdout
