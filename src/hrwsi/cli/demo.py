"""``hrwsi demo``: the whole chain offline, with a live view and a summary; exit 0 on success."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import typer
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from hrwsi import logs
from hrwsi.cli import common
from hrwsi.config import Config
from hrwsi.db import connect, embedded
from hrwsi.demo import DEMO_DATABASE, FSC_CONDITION, MAJA_CONDITION, DemoState, run_demo
from hrwsi.domain import errors


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _view(state: DemoState) -> Group:
    table = Table(title=f"hrwsi demo — {state.wall_s:5.1f} s", title_justify="left")
    for column in ("stage", "inputs", "tasks", "attempts", "failed attempts", "products"):
        table.add_column(column, justify="right" if column != "stage" else "left")
    for name, label in ((MAJA_CONDITION, "MAJA  L1C → L2A"), (FSC_CONDITION, "FSC   L2A → L2B")):
        c = state.condition(name)
        if c is None:
            table.add_row(label, "0", "0", "0", "0", "0")
        else:
            table.add_row(
                label,
                str(c.inputs),
                str(c.tasks),
                str(c.attempts),
                str(c.failed_attempts),
                str(c.inputs_with_product),
            )
    bar = ProgressBar(total=max(state.expected, 1), completed=state.completed, width=60)
    done = Table.grid()
    done.add_row(bar, f"  {state.completed}/{state.expected} chains complete")
    return Group(table, done)


def _summary(state: DemoState) -> Table:
    table = Table(title="summary", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    maja = state.condition(MAJA_CONDITION)
    fsc = state.condition(FSC_CONDITION)
    inputs = (maja.inputs if maja else 0, fsc.inputs if fsc else 0)
    tasks = (maja.tasks if maja else 0) + (fsc.tasks if fsc else 0)
    attempts = (maja.attempts if maja else 0) + (fsc.attempts if fsc else 0)
    failed = (maja.failed_attempts if maja else 0) + (fsc.failed_attempts if fsc else 0)
    table.add_row("L1C inputs harvested (MAJA_PC)", str(inputs[0]))
    table.add_row("L2A inputs chained (FSC_PC)", str(inputs[1]))
    table.add_row("processing tasks", str(tasks))
    table.add_row("attempts", str(attempts))
    table.add_row("failed attempts (retried)", str(failed))
    for code, count in sorted(state.products.items()):
        table.add_row(f"products {code}", str(count))
    table.add_row("tasks failed for good", str(len(state.failed_for_good)))
    latency = state.latency
    table.add_row("input → dispatch p50", _ms(latency.p50_ms if latency else None))
    table.add_row("input → dispatch p99", _ms(latency.p99_ms if latency else None))
    table.add_row("wall time", f"{state.wall_s:.1f} s")
    table.add_row(
        "result", "every input reached its L2B product" if state.success else "INCOMPLETE"
    )
    return table


def demo(
    inputs: int = typer.Option(48, "--inputs", min=1, max=294, help="L1C products to harvest."),
    fail_one_in: int = typer.Option(
        10, "--fail-one-in", min=0, help="One input in N fails its first attempt (0: none)."
    ),
    timeout: float = typer.Option(240.0, "--timeout", min=5, help="Give up after seconds."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where products and run logs go (default: <data dir>/demo)."
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Show the services' event logs."),
    yes: bool = typer.Option(
        False,
        "--yes",
        help="With a configured server (HRWSI_DATABASE_URL or database.url): allow dropping"
        " and recreating its hrwsi_demo database. Without it the demo refuses (exit 2).",
    ),
) -> None:
    """Run the whole chain offline on the embedded database; exit 0 when every input is done.

    The demo drops and recreates the database hrwsi_demo. It uses the embedded server unless
    a database URL is configured; on a configured server it refuses unless --yes is given.
    At the end it prints the command that inspects the results (hrwsi --database hrwsi_demo).
    """
    cfg = common.load_config()
    if cfg.database.url is not None and not yes:
        server = connect.describe(cfg.database.url.get_secret_value())
        common.fail(
            f"the demo drops and recreates database {DEMO_DATABASE} on {server} (the configured"
            " server); add --yes to allow it, or unset HRWSI_DATABASE_URL to use the embedded"
            " database"
        )
    if not verbose:
        logs.configure("WARNING", cfg.logging.format)  # keep the live view readable
    # SIGTERM handling, and the embedded server if needed; the demo makes its own database.
    common.open_database(cfg, quiet=True, schema=False)
    if cfg.database.url is not None:
        admin_url = cfg.database.url.get_secret_value()
        where = "the configured PostgreSQL server"
    else:
        admin_url = embedded.start(cfg.database.data_dir).admin_url
        where = f"embedded PostgreSQL in {cfg.database.data_dir / 'pgdata'}"
    folder = data_dir or cfg.database.data_dir / "demo"
    common.console.print(
        f"demo database: hrwsi_demo on {where}; files in {folder}", highlight=False
    )
    live = Live(_view(DemoState()), console=common.console, refresh_per_second=8, transient=False)
    with live:
        try:
            state = common.run(
                run_demo(
                    admin_url,
                    folder,
                    inputs=inputs,
                    fail_one_in=fail_one_in,
                    timeout_s=timeout,
                    on_update=lambda s: live.update(_view(s)),
                )
            )
        except errors.HrwsiError as exc:  # pragma: no cover - common.run maps these already
            common.fail(str(exc), code=1)
    common.console.print()
    common.console.print(_summary(state))
    if state.failed_for_good:
        for task in state.failed_for_good[:10]:
            common.console.print(
                f"  failed for good: task {task.task_id} {task.input_path}: {task.last_message}",
                highlight=False,
            )
    inspect = inspect_command(cfg)
    common.console.print(
        f"inspect the results: {inspect} status   (or: {inspect} dashboard)", highlight=False
    )
    raise typer.Exit(0 if state.success else 1)


def inspect_command(cfg: Config) -> str:
    """The command prefix that reads the demo's database, with what located it here."""
    words: list[str] = []
    if cfg.database.url is None and os.environ.get("HRWSI_DATA_DIR"):
        words.append(f"HRWSI_DATA_DIR={shlex.quote(os.environ['HRWSI_DATA_DIR'])}")
    words.append("hrwsi")
    if common.options.config_path is not None:
        words += ["--config", shlex.quote(str(common.options.config_path))]
    words += ["--database", DEMO_DATABASE]
    return " ".join(words)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
