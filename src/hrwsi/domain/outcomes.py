"""How each observation of a run changes its dispatch and task (pure: the launcher's state
machine, applied by its store inside the transaction that locked the dispatches).

For one group of observations, in order, against the dispatches as locked:

* ``started`` is recorded once, and only while no terminal status is recorded;
* the first terminal observation is recorded once (repeats are ignored, but still make the
  executor forget the run); ``processed`` ends the task with a product, an error goes to the
  retry policy (:func:`hrwsi.domain.retry.decide`);
* a log path that changed is stored;
* an observation of a dispatch not locked (unknown key) is reported, nothing else.

Which tasks are ready is decided in SQL (``launcher_claim_ready``, ``launcher_claim_successors``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from hrwsi.domain.statuses import ProcessingStatus


@dataclass(frozen=True, slots=True)
class Observation:
    """What an executor reported about one run: ``status`` is ``STARTED`` or a terminal one."""

    key: str
    status: ProcessingStatus
    message: str | None = None
    log_path: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status is not ProcessingStatus.STARTED


@dataclass(frozen=True, slots=True)
class LockedDispatch:
    """A dispatch as its recording transaction locked it, with its task and input."""

    dispatch_id: int
    key: str
    log_path: str | None
    task_id: int
    input_id: int
    processing_condition: str
    tile: str
    sensing_start: datetime
    extra_attempts: int
    has_successor: bool
    has_started: bool
    has_terminal: bool


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One ``processing_status_workflow`` row to insert."""

    dispatch_id: int
    status: ProcessingStatus
    message: str | None


@dataclass(frozen=True, slots=True)
class GroupChanges:
    """What recording a group changes: rows to write, tasks that ended, keys to forget."""

    log_paths: Mapping[int, str]
    statuses: tuple[StatusRow, ...]
    started: tuple[str, ...]
    processed: tuple[LockedDispatch, ...]
    failed: tuple[tuple[LockedDispatch, Observation], ...]
    forget: tuple[str, ...]
    unknown: tuple[str, ...]

    def successors_of(self) -> list[int]:
        """Input ids of the tasks ended here that have a task chained after them."""
        ended = [*self.processed, *(d for d, _ in self.failed)]
        return [d.input_id for d in ended if d.has_successor]


def changes(
    locked: Mapping[str, LockedDispatch], observations: Sequence[Observation]
) -> GroupChanges:
    """Apply ``observations`` in order to the ``locked`` dispatches (by key)."""
    started_flag: dict[str, bool] = {k: d.has_started for k, d in locked.items()}
    terminal_flag: dict[str, bool] = {k: d.has_terminal for k, d in locked.items()}
    log_path: dict[str, str | None] = {k: d.log_path for k, d in locked.items()}
    log_paths: dict[int, str] = {}
    statuses: list[StatusRow] = []
    started: list[str] = []
    processed: list[LockedDispatch] = []
    failed: list[tuple[LockedDispatch, Observation]] = []
    forget: list[str] = []
    unknown: list[str] = []
    for obs in observations:
        dispatch = locked.get(obs.key)
        if dispatch is None:
            unknown.append(obs.key)
            continue
        if obs.log_path and obs.log_path != log_path[obs.key]:
            log_path[obs.key] = log_paths[dispatch.dispatch_id] = obs.log_path
        if not obs.terminal:
            if not started_flag[obs.key] and not terminal_flag[obs.key]:
                started_flag[obs.key] = True
                statuses.append(StatusRow(dispatch.dispatch_id, obs.status, obs.message))
                started.append(obs.key)
            continue
        forget.append(obs.key)
        if terminal_flag[obs.key]:
            continue
        terminal_flag[obs.key] = True
        statuses.append(StatusRow(dispatch.dispatch_id, obs.status, obs.message))
        if obs.status is ProcessingStatus.PROCESSED:
            processed.append(dispatch)
        else:
            failed.append((dispatch, obs))
    return GroupChanges(
        log_paths=log_paths,
        statuses=tuple(statuses),
        started=tuple(started),
        processed=tuple(processed),
        failed=tuple(failed),
        forget=tuple(forget),
        unknown=tuple(unknown),
    )
