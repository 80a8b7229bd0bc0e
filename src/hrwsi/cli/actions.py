"""``hrwsi cancel TASK_ID``, ``hrwsi pause CONDITION``, ``hrwsi resume CONDITION``: the
console's actions in the terminal, recorded in ``hrwsi.operator_action`` as ``cli:<user>``.

* cancel: a pending, running or waiting task ends as cancelled; the launcher stops its run
  (recorded as an external error "cancelled by cli:<user>"); it is never retried or
  re-planned automatically (``hrwsi retry`` reopens it);
* pause: nothing new is planned or launched for the condition; running work finishes;
* resume: planning and launching go on, woken at once.
"""

from __future__ import annotations

import getpass
import json

import typer

from hrwsi.cli import common
from hrwsi.web import store


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _say(as_json: bool, message: str, **data: object) -> None:
    typer.echo(json.dumps({"message": message, **data}, sort_keys=True) if as_json else message)


def cancel(
    task_id: int = typer.Argument(..., help="processing_tasks.id of a live task."),
    reason: str = typer.Option("", "--reason", help="Why, recorded with the action."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Cancel a pending, running or waiting task: its run stops; never retried automatically."""
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=True)
    done = common.run(store.cancel(database.url, task_id, actor=_actor(), reason=reason or None))
    _say(
        as_json,
        f"task {task_id} cancelled (was {done['was']}); the launcher stops its run",
        task_id=task_id,
        was=done["was"],
    )


def pause(
    condition: str = typer.Argument(..., help="Processing condition name."),
    reason: str = typer.Option("", "--reason", help="Why, recorded with the action."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Pause a processing condition: nothing new is planned or launched; running work finishes."""
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=True)
    added = common.run(store.pause(database.url, condition, actor=_actor(), reason=reason or None))
    _say(
        as_json,
        f"{condition} paused" if added else f"{condition} was already paused",
        condition=condition,
        changed=added,
    )


def resume(
    condition: str = typer.Argument(..., help="Processing condition name."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Resume a paused processing condition."""
    cfg = common.load_config()
    database = common.open_database(cfg, quiet=True)
    removed = common.run(store.resume(database.url, condition, actor=_actor()))
    _say(
        as_json,
        f"{condition} resumed" if removed else f"{condition} was not paused",
        condition=condition,
        changed=removed,
    )


def register(app: typer.Typer) -> None:
    app.command("cancel")(cancel)
    app.command("pause")(pause)
    app.command("resume")(resume)
