"""The executor interface: what the launcher needs from Nomad or from local processes.

An *attempt* is one run of one processing task (one ``nomad_job_dispatch`` row). Its ``key``
is deterministic (task id and attempt number), so submitting the same attempt twice, for
example after a crash between submit and record, never starts a second run: executors make
``submit`` idempotent on the key.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from hrwsi.domain.statuses import ProcessingStatus


@dataclass(frozen=True, slots=True)
class RoutineSpec:
    """What an executor needs to know of a routine to run it."""

    name: str
    cpu: int
    ram: int
    storage: int
    duration_minutes: int
    docker_image: str = ""
    command: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of one processing task."""

    task_id: int
    attempt: int
    routine: RoutineSpec
    vm_name: str
    input_paths: tuple[str, ...]
    product_path: str
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Deterministic id of this attempt: the same task and attempt number give the same key."""
        return attempt_key(self.task_id, self.attempt)


def attempt_key(task_id: int, attempt: int) -> str:
    """The key of attempt number ``attempt`` (1-based) of a task: ``task-<id>-attempt-<n>``."""
    return f"task-{task_id}-attempt-{attempt}"


_KEY = re.compile(r"^task-(\d+)-attempt-(\d+)$")


def parse_key(key: str) -> tuple[int, int] | None:
    """The (task id, attempt number) of an attempt key, or None for a foreign key."""
    match = _KEY.match(key)
    return (int(match[1]), int(match[2])) if match else None


def attempt_variables(attempt: Attempt) -> dict[str, str]:
    """The run contract's variables for an attempt (environment locally, meta on Nomad).

    ``HRWSI_TASK_ID``, ``HRWSI_ATTEMPT``, ``HRWSI_ROUTINE``, ``HRWSI_VM_NAME``,
    ``HRWSI_INPUT_PATH`` (the first input), ``HRWSI_INPUT_PATHS`` (a JSON list),
    ``HRWSI_PRODUCT_PATH`` and ``HRWSI_META_<KEY>`` for each ``Attempt.meta`` entry (key
    upper-cased). Executor-specific ones (``HRWSI_DATA_ROOT``) are added by the executor.
    """
    variables = {
        "HRWSI_TASK_ID": str(attempt.task_id),
        "HRWSI_ATTEMPT": str(attempt.attempt),
        "HRWSI_ROUTINE": attempt.routine.name,
        "HRWSI_VM_NAME": attempt.vm_name,
        "HRWSI_INPUT_PATH": attempt.input_paths[0] if attempt.input_paths else "",
        "HRWSI_INPUT_PATHS": json.dumps(list(attempt.input_paths)),
        "HRWSI_PRODUCT_PATH": attempt.product_path,
    }
    for key, value in attempt.meta.items():
        variables[f"HRWSI_META_{key.upper()}"] = value
    return variables


class RunState(enum.Enum):
    """Where a run is, as an executor sees it."""

    SUBMITTED = "submitted"  # accepted, not yet running (queued, placing)
    STARTED = "started"  # the process is running
    PROCESSED = "processed"  # exit code 0
    INTERNAL_ERROR = "internal_error"  # our program failed (non-zero exit)
    EXTERNAL_ERROR = "external_error"  # the platform failed (never ran, lost, killed, timed out)
    UNKNOWN = "unknown"  # the executor has no record of this key

    @property
    def is_terminal(self) -> bool:
        return self in (RunState.PROCESSED, RunState.INTERNAL_ERROR, RunState.EXTERNAL_ERROR)

    @property
    def status(self) -> ProcessingStatus | None:
        """The ``processing_status`` this state is recorded as, if any."""
        return {
            RunState.STARTED: ProcessingStatus.STARTED,
            RunState.PROCESSED: ProcessingStatus.PROCESSED,
            RunState.INTERNAL_ERROR: ProcessingStatus.INTERNAL_ERROR,
            RunState.EXTERNAL_ERROR: ProcessingStatus.EXTERNAL_ERROR,
        }.get(self)


@dataclass(frozen=True, slots=True)
class Outcome:
    """An observation of a run: emitted on the event stream and returned by ``status``."""

    key: str
    state: RunState
    message: str = ""
    exit_code: int | None = None
    run_id: str = ""
    log_path: str | None = None


class Executor(Protocol):
    """Runs attempts and reports what happens to them."""

    async def submit(self, attempt: Attempt) -> str:
        """Start the attempt unless a run with its key exists; return the run id. Idempotent."""
        ...

    def outcomes(self) -> AsyncIterator[Outcome]:
        """Observations as they happen (started, then one terminal state), until closed.

        May repeat an observation; never drops a terminal one without it being available
        from ``status`` afterwards.
        """
        ...

    async def status(self, key: str) -> Outcome:
        """The current state of the run with this key (``UNKNOWN`` when there is none)."""
        ...

    async def cancel(self, key: str) -> None:
        """Stop the run with this key if it is running. Idempotent."""
        ...

    async def forget(self, key: str) -> None:
        """Release what the executor keeps of a run whose outcome has been recorded."""
        ...

    async def aclose(self) -> None:
        """Stop following runs and release resources (local runs are stopped)."""
        ...
