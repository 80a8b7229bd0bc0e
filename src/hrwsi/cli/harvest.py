"""``hrwsi harvest --once`` / ``hrwsi harvest --from DAY --to DAY``: catalogue → inputs.

``--once`` runs one near-real-time pass (from each query's watermark). ``--from/--to`` walks
one-day publication windows with a cursor persisted in the database, so a killed run started
again with the same range resumes where it stopped. Both end with a summary: pages, records,
new inputs, records skipped by reason. The catalogue URL is ``catalogue.base_url``
(``HRWSI_CATALOGUE_URL`` overrides it).
"""

from __future__ import annotations

from datetime import date

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hrwsi.catalogue import odata, store
from hrwsi.cli import common
from hrwsi.config import Config, HarvestQuery
from hrwsi.db import connect
from hrwsi.services import harvester


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        common.fail(f"{option}: {text!r} is not a day (YYYY-MM-DD)")


def _queries(cfg: Config, names: list[str]) -> tuple[HarvestQuery, ...]:
    configured = cfg.harvester.queries
    if not configured:
        common.fail("no harvest query is configured (harvester.queries in the TOML file)")
    if not names:
        return configured
    by_name = {q.name: q for q in configured}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        common.fail(f"unknown harvest query {unknown[0]!r}; configured: {', '.join(by_name)}")
    return tuple(by_name[n] for n in names)


async def _once(
    database: connect.Database, cfg: Config, queries: tuple[HarvestQuery, ...]
) -> harvester.HarvestSummary:
    conn = await connect.connect(database.url, autocommit=True)
    async with (
        conn,
        harvester.extra_writers(database.url, cfg) as writers,
        odata.make_http_client(cfg.catalogue) as http,
    ):
        client = odata.ODataClient.from_config(cfg.catalogue, http)
        return await harvester.nrt_pass(conn, client, cfg, queries=queries, writers=writers)


async def _archive(
    database: connect.Database,
    cfg: Config,
    queries: tuple[HarvestQuery, ...],
    from_day: date,
    to_day: date,
) -> harvester.HarvestSummary:
    total_days = harvester.days_between(from_day, to_day) * len(queries)
    conn = await connect.connect(database.url, autocommit=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=common.console,
        transient=False,
    )
    async with (
        conn,
        harvester.extra_writers(database.url, cfg) as writers,
        odata.make_http_client(cfg.catalogue) as http,
    ):
        client = odata.ODataClient.from_config(cfg.catalogue, http)
        with progress:
            task = progress.add_task("harvesting days", total=total_days, stats="")

            def on_resume(cursor: store.ArchiveCursor) -> None:
                done = (cursor.day - from_day).days
                progress.advance(task, done)
                progress.console.print(
                    f"resuming {cursor.query} at {cursor.day.isoformat()}"
                    + (
                        f" after PublicationDate {cursor.resume_from.isoformat()}"
                        if cursor.resume_from
                        else ""
                    )
                    + f" ({cursor.pages} pages, {cursor.new_inputs} new inputs before)",
                    highlight=False,
                )

            def on_page(summary: harvester.HarvestSummary) -> None:
                progress.update(
                    task, stats=f"{summary.records} records, {summary.new_inputs} new (this day)"
                )

            def on_day(query: str, day: date, summary: harvester.HarvestSummary) -> None:
                progress.update(task, description=f"{query} {day.isoformat()}")
                progress.advance(task)

            return await harvester.archive(
                conn,
                client,
                cfg,
                from_day,
                to_day,
                queries=queries,
                progress=harvester.ArchiveProgress(
                    on_day=on_day, on_page=on_page, on_resume=on_resume
                ),
                writers=writers,
            )


def harvest(
    once: bool = typer.Option(False, "--once", help="One near-real-time pass, then exit."),
    from_day: str | None = typer.Option(None, "--from", help="First publication day (archive)."),
    to_day: str | None = typer.Option(None, "--to", help="Last publication day (archive)."),
    query: list[str] = typer.Option(
        [], "--query", "-q", help="Only this harvest query (repeatable)."
    ),
) -> None:
    """Harvest the catalogue into inputs: one near-real-time pass or an archive backfill."""
    archive_mode = from_day is not None or to_day is not None
    if once == archive_mode:
        common.fail("say either --once or --from DAY --to DAY")
    if archive_mode and (from_day is None or to_day is None):
        common.fail("--from and --to go together")
    cfg = common.load_config()
    queries = _queries(cfg, query)
    # "is not None": an empty --from is a bad day, not a near-real-time pass.
    start = _day(from_day, "--from") if from_day is not None else None
    end = _day(to_day, "--to") if to_day is not None else None
    if start is not None and end is not None and end < start:
        common.fail("--to is before --from")
    database = common.open_database(cfg)
    common.console.print(f"catalogue: {cfg.catalogue.base_url}", highlight=False)
    if start is not None and end is not None:
        summary = common.run(_archive(database, cfg, queries, start, end))
        typer.echo(f"archive harvest {start.isoformat()} .. {end.isoformat()} done")
    else:
        summary = common.run(_once(database, cfg, queries))
        typer.echo("near-real-time pass done")
    for line in summary.lines():
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("harvest")(harvest)
