"""The demo routines read their input and write a checkable product."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hrwsi.testing import routines


def _run(tmp_path: Path, routine: str, src: str, dst: str, *extra: str, attempt: str = "1"):
    env = {
        "HRWSI_DATA_ROOT": str(tmp_path),
        "HRWSI_INPUT_PATH": src,
        "HRWSI_PRODUCT_PATH": dst,
        "HRWSI_ATTEMPT": attempt,
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "hrwsi.testing.routines", routine, *extra],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_maja_then_fsc_chain(tmp_path: Path) -> None:
    """L1C → L2A → L2B: each step reads the previous product and writes its own level."""
    routines.make_l1c(tmp_path / "eodata/L1C/A.SAFE", "A.SAFE")
    first = _run(tmp_path, "maja", "/eodata/L1C/A.SAFE", "/HRWSI/L2A/x")
    assert first.returncode == 0, first.stderr
    second = _run(tmp_path, "fsc", "/HRWSI/L2A/x", "/HRWSI/L2B/y")
    assert second.returncode == 0, second.stderr
    meta = json.loads((tmp_path / "HRWSI/L2B/y/metadata.json").read_text())
    assert meta["level"] == "L2B"
    size, pixels = routines.read_pgm(tmp_path / "HRWSI/L2B/y/raster.pgm")
    assert size == routines.SIZE
    assert max(pixels) <= 100


def test_missing_or_wrong_input_fails(tmp_path: Path) -> None:
    """A missing input or an input of the wrong level exits non-zero and writes nothing."""
    assert _run(tmp_path, "maja", "/nope", "/out").returncode == 4
    routines.make_l1c(tmp_path / "l1c", "l1c")
    assert _run(tmp_path, "fsc", "/l1c", "/out").returncode == 5
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("attempt,expected", [("1", 3), ("2", 0)])
def test_injected_failure_only_on_first_attempt(
    tmp_path: Path, attempt: str, expected: int
) -> None:
    """--fail-first-attempt-one-in 1 fails every first attempt and lets the retry succeed."""
    routines.make_l1c(tmp_path / "a", "a")
    result = _run(tmp_path, "maja", "/a", "/b", "--fail-first-attempt-one-in", "1", attempt=attempt)
    assert result.returncode == expected
