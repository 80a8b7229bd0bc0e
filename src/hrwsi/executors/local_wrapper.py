"""The tiny parent of every local run: a POSIX ``sh`` script (:data:`SH_WRAPPER`).

The executor starts ``sh -c SH_WRAPPER hrwsi-wrapper EXIT_FILE LOG_FILE -- COMMAND [ARG...]``
(see :func:`wrapper_argv`). The script sends its output and the command's to ``LOG_FILE``
(appended; empty: left as given), starts the routine's command, waits for it and writes what
happened to ``EXIT_FILE`` as JSON, atomically (a temporary file ``mv``-ed into place, so a
reader never sees half a file):

* ``{"returncode": N}``: the command ended; N < 0 means it was killed by signal -N;
* ``{"cannot_start": "..."}``: the command is not found or not executable (checked with
  ``command -v`` before starting it).

So a run that ends while no launcher watches it (the launcher crashed or restarted) still
leaves its exit code behind; the next launcher reads it instead of guessing. The wrapper exits
with the command's code (128 + signal when the command was killed), 127 when it cannot start.

Why ``sh`` and not Python: a run's start-up is ~2 ms (one ``sh``, the command, one ``mv``)
instead of ~40 ms for a Python interpreter importing ``subprocess`` — at hundreds of runs a
second on two cores that difference is the throughput. What the shell changes, stated:

* Signals: SIGTERM or SIGINT sent to the wrapper alone is forwarded to the command as
  SIGTERM, and the wrapper keeps waiting, so the exit file is still written. (The executor
  itself kills the whole process group with SIGKILL and writes the exit file first.) A
  non-interactive shell starts its background command with SIGINT and SIGQUIT ignored, which
  is why SIGINT is forwarded as SIGTERM; a routine therefore runs with SIGINT ignored.
* A shell reports "killed by signal N" as status 128 + N, so a command that *exits* with a
  code above 128 is recorded as killed by signal (code - 128).
* A command found by ``command -v`` whose ``exec`` still fails (a bad ``#!`` interpreter)
  ends with code 126 or 127, the shell's message in the log.

``python -m hrwsi.executors.local_wrapper EXIT_FILE -- COMMAND [ARG...]`` is the same contract
in Python (exact signal codes, SIGINT forwarded as is), for a system without ``/bin/sh``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

SH = "/bin/sh"

# $1 = exit file, $2 = log file (or ""), $3 = "--", then the command. See the module docstring.
SH_WRAPPER = r"""exit_file=$1
if [ -n "$2" ]; then exec >>"$2" 2>&1; fi
shift 3
tmp="$exit_file.tmp"
if ! command -v "$1" >/dev/null 2>&1; then
    printf "cannot start '%s': not found or not executable\n" "$1" >&2
    name=$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/[\\"]/\\&/g')
    printf '{"cannot_start": "cannot start %s: not found or not executable"}\n' "'$name'" >"$tmp"
    mv -f "$tmp" "$exit_file"
    exit 127
fi
child=
forwarded=
trap 'forwarded=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
"$@" &
child=$!
if [ -n "$forwarded" ]; then kill -TERM "$child" 2>/dev/null; fi
while :; do
    wait "$child"
    rc=$?
    if [ "$rc" -gt 128 ] && [ -n "$forwarded" ] && kill -0 "$child" 2>/dev/null; then
        forwarded=
        continue
    fi
    break
done
if [ "$rc" -gt 128 ]; then code=$((128 - rc)); else code=$rc; fi
printf '{"returncode": %s}\n' "$code" >"$tmp"
mv -f "$tmp" "$exit_file"
exit "$rc"
"""


def wrapper_argv(
    exit_file: Path, command: Sequence[str], log_file: Path | None = None
) -> list[str]:
    """The argv that runs ``command`` under :data:`SH_WRAPPER`, recording into ``exit_file``;
    with ``log_file``, the wrapper appends its and the command's stdout and stderr there (it
    opens the file itself, so creating it costs the launcher nothing)."""
    log = "" if log_file is None else str(log_file)
    return [SH, "-c", SH_WRAPPER, "hrwsi-wrapper", str(exit_file), log, "--", *command]


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
