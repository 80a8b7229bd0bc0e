"""Memory of an idle ``hrwsi run``: all three services up, nothing to do.

    .venv/bin/python bench/idle.py [--seconds 20]

Starts ``hrwsi run`` as a subprocess on a throw-away migrated database (``HRWSI_TEST_DATABASE_URL``
or an embedded server), samples its resident memory (VmRSS, and the peak VmHWM) every second,
stops it with SIGTERM and prints the figures against the 150 MB budget, with a bare Python
interpreter as the baseline.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hrwsi.testing import databases

BUDGET_MB = 150.0


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _sample(cmd: list[str], env: dict[str, str], seconds: float) -> tuple[float, float, int]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rss = 0.0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(1.0)
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd} exited with {proc.returncode}")
            rss = _status_mb(proc.pid, "VmRSS")
        peak = _status_mb(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    return rss, peak, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    admin = databases.server_url()
    name = databases.unique_name("hrwsi_bench_idle")
    url = databases.create_migrated_database(admin, name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("HRWSI_")}
            env.update(HRWSI_DATABASE_URL=url, HRWSI_DATA_DIR=tmp)
            base_rss, base_peak, _ = _sample(
                [sys.executable, "-c", "import time; time.sleep(3600)"], env, 3
            )
            rss, peak, code = _sample([sys.executable, "-m", "hrwsi", "run"], env, args.seconds)
    finally:
        databases.drop_database(admin, name)
    print(f"{'process':<32}{'RSS MB':>10}{'peak MB':>10}")
    print(f"{'python (baseline)':<32}{base_rss:>10.1f}{base_peak:>10.1f}")
    print(f"{'hrwsi run, idle ' + str(int(args.seconds)) + ' s':<32}{rss:>10.1f}{peak:>10.1f}")
    print(
        f"budget {BUDGET_MB:.0f} MB: {'met' if peak <= BUDGET_MB else 'EXCEEDED'}"
        f" ({peak / BUDGET_MB:.0%} of it); ratio to bare python {rss / base_rss:.1f}x;"
        f" exit code after SIGTERM {code}"
    )


if __name__ == "__main__":
    main()
