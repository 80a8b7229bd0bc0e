"""Shared pieces of the stand-in: scripts, records, errors, small helpers."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn

_NS = 1_000_000_000
_ZERO_TIME = "0001-01-01T00:00:00Z"
_TERMINAL_CLIENT = {"complete", "failed", "lost"}
_MAX_PAYLOAD = 16384
_FAILURE_DETAIL = {
    "Driver Failure": "driver_error",
    "Setup Failure": "setup_error",
    "Failed Artifact Download": "download_error",
    "Failed Validation": "validation_error",
    "Task hook failed": "task_hook_error",
}


@dataclass(frozen=True, slots=True)
class Script:
    """What one allocation does once placed.

    ``failure`` (``"Driver Failure"``, ``"Setup Failure"``, …) fails it before it starts.
    Otherwise it starts after ``start_delay_s`` and, after ``run_s``: becomes ``lost``
    (``lost``: its node went down and came back), or ``unknown`` for ``unknown_s`` then lost
    (``unknown_then_lost``), or runs until stopped (``hang``), or terminates with
    ``exit_code`` (``oom``: killed by the kernel, exit 137). A lost allocation is replaced,
    as real Nomad does whatever the reschedule policy says, unless its group forbids it
    (``Disconnect.Replace: false`` or ``PreventRescheduleOnLost: true``); the replacement
    plays ``replacement``.
    """

    exit_code: int = 0
    oom: bool = False
    failure: str | None = None
    failure_message: str = "failed to pull image: manifest unknown"
    lost: bool = False
    unknown_then_lost: bool = False
    unknown_s: float = 0.3
    hang: bool = False
    start_delay_s: float = 0.05
    run_s: float = 0.1
    # What the replacement of a lost allocation plays (Nomad replaces lost allocations unless
    # the group forbids it); None: a plain run of the same length that exits 0.
    replacement: Script | None = None


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Fault:
    status: int
    body: str
    path_contains: str | None
    remaining: int


@dataclass(slots=True)
class _Job:
    spec: dict[str, Any]
    create_index: int
    modify_index: int
    job_modify_index: int
    submit_time: int
    queued: dict[str, int] = field(default_factory=dict)
    blocked_evals: list[str] = field(default_factory=list)
    dead_since: float | None = None
    status: str = "pending"
    # scripts of lost allocations' replacements still waiting for a node, oldest first
    pending_scripts: list[Script] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.spec["ID"])

    @property
    def namespace(self) -> str:
        return str(self.spec["Namespace"])

    @property
    def parameterized(self) -> bool:
        return bool(self.spec.get("ParameterizedJob")) and not self.spec.get("Dispatched")


class _HttpError(Exception):
    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(body)


def _multierror(messages: Sequence[str]) -> str:
    head = "1 error occurred:" if len(messages) == 1 else f"{len(messages)} errors occurred:"
    return head + "".join(f"\n\t* {m}" for m in messages) + "\n\n"


def _parse_wait(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if not match:
        raise _HttpError(400, "Invalid wait time")
    factor = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[match[2]]
    return min(float(match[1]) * factor, 600.0)


def _rfc3339(ns: int) -> str:
    seconds, rest = divmod(ns, _NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest:09d}Z"


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone (it runs in tests)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
