"""The sh wrapper of local runs: exit file written atomically, signals forwarded, bad commands."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from hrwsi.executors.local_wrapper import wrapper_argv


def run(tmp_path: Path, *command: str) -> tuple[int, dict[str, object]]:
    exit_file = tmp_path / "run.exit.json"
    rc = subprocess.run(wrapper_argv(exit_file, command), capture_output=True, timeout=30)
    return rc.returncode, json.loads(exit_file.read_text())


def test_exit_codes_are_recorded(tmp_path: Path) -> None:
    """Exit 0 and exit 3 are written as such; the wrapper exits with the command's code."""
    assert run(tmp_path, "true") == (0, {"returncode": 0})
    assert run(tmp_path, sys.executable, "-c", "import sys; sys.exit(3)") == (3, {"returncode": 3})
    assert not (tmp_path / "run.exit.json.tmp").exists()


def test_a_command_killed_by_a_signal_is_recorded_as_a_negative_code(tmp_path: Path) -> None:
    """A command killed by SIGKILL is written as returncode -9 (the wrapper exits 137)."""
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert run(tmp_path, sys.executable, "-c", code) == (137, {"returncode": -9})


def test_a_missing_command_is_cannot_start_with_its_name(tmp_path: Path) -> None:
    """A missing binary (even with quotes in its name) gives a valid cannot_start record."""
    rc, record = run(tmp_path, '/nonexistent/ma"ja\\bin', "--run")
    assert rc == 127 and 'ma"ja\\bin' in str(record["cannot_start"])


def test_arguments_reach_the_command_unchanged(tmp_path: Path) -> None:
    """Arguments with spaces, quotes and $ are passed as they are (no shell expansion)."""
    out = tmp_path / "argv.json"
    code = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    args = ["a b", "$HOME", "'q'", '"d"', "*"]
    assert run(tmp_path, sys.executable, "-c", code, str(out), *args)[0] == 0
    assert json.loads(out.read_text()) == args


def test_sigterm_to_the_wrapper_is_forwarded_and_the_exit_file_written(tmp_path: Path) -> None:
    """SIGTERM to the wrapper alone reaches the command, and the wrapper still records its end."""
    exit_file = tmp_path / "run.exit.json"
    started = tmp_path / "started"
    code = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen(wrapper_argv(exit_file, [sys.executable, "-c", code]))
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 7
    assert json.loads(exit_file.read_text()) == {"returncode": 7}


def test_output_and_errors_are_appended_to_the_log_file(tmp_path: Path) -> None:
    """With a log file, the command's stdout and stderr and the wrapper's own message land there."""
    log = tmp_path / "run.log"
    log.write_text("earlier\n")
    exit_file = tmp_path / "run.exit.json"
    code = "import sys; print('out'); print('err', file=sys.stderr)"
    subprocess.run(wrapper_argv(exit_file, [sys.executable, "-c", code], log), timeout=30)
    subprocess.run(wrapper_argv(exit_file, ["/nonexistent/maja-binary"], log), timeout=30)
    lines = log.read_text().splitlines()
    assert lines[:3] == ["earlier", "out", "err"]
    assert "maja-binary" in lines[3]
