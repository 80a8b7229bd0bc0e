"""``python -m hrwsi.executors.local_wrapper EXIT_FILE -- COMMAND [ARG...]``

The tiny parent of every local run. It starts the routine's command, forwards SIGTERM and
SIGINT to it, waits for it and writes what happened to ``EXIT_FILE`` as JSON (atomically:
a temporary file renamed into place):

* ``{"returncode": N}``: the command ended; N < 0 means it was killed by signal -N;
* ``{"cannot_start": "..."}``: the command could not be started (missing binary, no
  permission).

So a run that ends while no launcher watches it (the launcher crashed or restarted) still
leaves its exit code behind; the next launcher reads it instead of guessing. The wrapper exits
with the command's code (128 + signal when the command was killed), 127 when it cannot start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType


def write_exit_file(path: Path, record: dict[str, object]) -> None:
    """Write ``record`` to ``path`` atomically (readers never see half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(
            "usage: python -m hrwsi.executors.local_wrapper EXIT_FILE -- COMMAND [ARG...]",
            file=sys.stderr,
        )
        return 2
    exit_file = Path(argv[0])
    command = argv[2:]
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        message = f"cannot start {command[0]!r}: {exc.strerror or exc}"
        print(message, file=sys.stderr, flush=True)
        write_exit_file(exit_file, {"cannot_start": message})
        return 127

    def _forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    returncode = child.wait()
    write_exit_file(exit_file, {"returncode": returncode})
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
