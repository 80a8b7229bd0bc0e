"""``hrwsi retry TASK_ID``: give a terminally failed task another attempt.

What it does, in one transaction that holds the planning lock (so the orchestrator cannot
re-plan the input at the same moment):

* the task must exist (else exit 1), have ended (``has_ended``), not be processed, and its
  input must have no other live task (the orchestrator may already have re-planned it: retry
  that newer task instead);
* ``has_ended`` goes back to false, ``next_attempt_at`` (the launcher's backoff) is cleared
  and ``processing_tasks.extra_attempts`` grows by one. The launcher adds ``extra_attempts``
  to every attempt limit it applies to the task (it counts attempts from
  ``nomad_job_dispatch`` rows), so the task gets exactly one more dispatch, now, even when
  the retry policy had given up on it;
* the action is recorded in ``hrwsi.task_retry`` (who, when, why, dispatches so far);
* ``processing_task_insertion`` is notified (``{"count": 1, "min_id": id, "max_id": id,
  "retry": true}``) to wake the launcher.

It then says what will happen, from the launchers' heartbeats (``hrwsi.service_heartbeat``):
a live launcher dispatches the task now; with none, it waits for ``hrwsi run``.

The task keeps its VM and its place in the chain; a task chained after it that the
orchestrator already unchained (its predecessor had failed) does not wait for it again.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

import psycopg
import typer

from hrwsi.cli import common
from hrwsi.db import connect, heartbeat, queries
from hrwsi.domain import errors
from hrwsi.services import orchestrator


@dataclass(frozen=True, slots=True)
class Retried:
    task_id: int
    input_id: int | None
    dispatches_before: int
    extra_attempts: int


async def retry_task(
    db_url: str, task_id: int, *, requested_by: str | None, reason: str | None
) -> Retried:
    """Reopen one ended, unprocessed task with one more attempt; errors say why not."""
    conn = await connect.connect(db_url, autocommit=True)
    try:
        async with conn, conn.transaction(), conn.cursor() as cur:
            return await retry_in(cur, task_id, requested_by=requested_by, reason=reason)
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"retry of task {task_id} failed: {exc}") from exc


def what_next(launchers: list[heartbeat.Seen]) -> str:
    """What becomes of a reopened task, from the launchers' heartbeats."""
    alive = [s for s in launchers if s.alive()]
    if alive:
        who = ", ".join(f"{s.host} pid {s.pid}" for s in alive[:3])
        return f"a launcher is running ({who}, seen {alive[0].age_s:.0f} s ago): it dispatches it"
    if launchers:
        last = launchers[0]
        when = last.last_seen.replace(microsecond=0).isoformat()
        return (
            f"no launcher is running (the last one, {last.host} pid {last.pid}, was seen at "
            f"{when} and did not stop cleanly): it is dispatched when 'hrwsi run' starts"
        )
    return "no launcher is running: it is dispatched when 'hrwsi run' starts"


async def launchers_seen(db_url: str) -> list[heartbeat.Seen]:
    conn = await connect.connect(db_url, autocommit=True)
    async with conn:
        try:
            return await heartbeat.seen(conn, "launcher")
        except psycopg.Error as exc:
            raise errors.DatabaseError(f"cannot read the services' heartbeat: {exc}") from exc


async def retry_in(
    cur: psycopg.AsyncCursor[Any], task_id: int, *, requested_by: str | None, reason: str | None
) -> Retried:
    """The retry inside the caller's transaction (the web console records its action in it)."""
    await cur.execute(queries.get("orchestrator_lock"), {"key": orchestrator.PLANNING_LOCK_KEY})
    await cur.execute(queries.get("orchestrator_retry_lock_task"), {"task_id": task_id})
    row = await cur.fetchone()
    if row is None:
        raise errors.TaskNotFound(task_id)
    _, input_id, has_ended, _, processed, dispatches, live_sibling = _values(row)
    if processed:
        raise errors.TaskNotRetryable(task_id, "it was processed successfully")
    if not has_ended:
        raise errors.TaskNotRetryable(
            task_id, "it has not ended (it is waiting, running or being retried)"
        )
    if live_sibling is not None:
        raise errors.TaskNotRetryable(
            task_id,
            f"its input {input_id} was re-planned into task {live_sibling}, which has not ended",
        )
    await cur.execute(
        queries.get("orchestrator_retry_task"),
        {
            "task_id": task_id,
            "requested_by": requested_by,
            "reason": reason,
            "dispatches": int(dispatches),
        },
    )
    done = _values(await cur.fetchone())
    return Retried(task_id, input_id, int(dispatches), int(done[0]))


def _values(row: Any) -> tuple[Any, ...]:
    """A row as a tuple, whatever the cursor's row factory (tuple or dict)."""
    assert row is not None
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def retry(
    task_id: int = typer.Argument(..., help="processing_tasks.id of the failed task."),
    reason: str = typer.Option("", "--reason", help="Why, recorded with the retry."),
) -> None:
    """Give a terminally failed task another attempt (one more dispatch than its limit)."""
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=True)
    done = common.run(
        retry_task(database.url, task_id, requested_by=_user(), reason=reason or None)
    )
    launchers = common.run(launchers_seen(database.url))
    typer.echo(
        f"task {done.task_id} reopened after {done.dispatches_before} dispatch(es): "
        f"extra_attempts={done.extra_attempts}; {what_next(launchers)}"
    )


def register(app: typer.Typer) -> None:
    app.command("retry")(retry)
