"""The harvester: catalogue products and produced products become inputs.

* ``reconcile()`` — products → inputs (an L2A product becomes an ``FSC_PC`` input), woken
  by ``product_insertion`` and ``processing_tasks_state_processed``: the products queued since
  the last pass (O(new products)), plus a full sweep over every product on the first pass
  and every ``harvester.products_sweep_minutes`` (see :mod:`hrwsi.catalogue.products_source`).
* ``background(stop)`` — a near-real-time catalogue pass every
  ``config.harvester.interval_minutes``: each configured query resumes from its persisted
  watermark (less ``overlap_minutes`` for late-indexed records), never reaching back past
  ``max_days_since_publication`` nor asking for products sensed before
  ``max_days_since_measurement``.
* :func:`archive` — ``hrwsi harvest --from --to``: one-day publication windows with a
  persisted cursor, so a killed run resumes where it stopped.

Each page is stored in one transaction together with the watermark or cursor it advances:
a crash leaves the database before or after a page, never inside one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg
from psycopg.rows import TupleRow

from hrwsi.catalogue import filters, odata, products_source, store
from hrwsi.config import Config, HarvestQuery
from hrwsi.db import connect
from hrwsi.db.holder import ConnectionHolder
from hrwsi.domain import errors

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Connection = psycopg.AsyncConnection[TupleRow]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HarvestSummary:
    """What a harvest did; ``skipped`` counts unusable records by reason."""

    pages: int = 0
    records: int = 0
    new_inputs: int = 0
    existing: int = 0
    duplicates: int = 0
    filtered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    busy_queries: list[str] = field(default_factory=list)

    def add_page(self, page: odata.Page, usable: int, new: int, filtered: int) -> None:
        self.pages += 1
        self.records += page.records
        self.duplicates += page.duplicates
        self.filtered += filtered
        self.new_inputs += new
        self.existing += usable - new
        self.restarts += int(page.restarted)
        self.skipped.update(s.reason for s in page.skipped)

    def merge(self, other: HarvestSummary) -> None:
        self.pages += other.pages
        self.records += other.records
        self.new_inputs += other.new_inputs
        self.existing += other.existing
        self.duplicates += other.duplicates
        self.filtered += other.filtered
        self.skipped.update(other.skipped)
        self.restarts += other.restarts
        self.busy_queries.extend(other.busy_queries)

    def lines(self) -> list[str]:
        skipped = sum(self.skipped.values())
        out = [
            f"pages: {self.pages}",
            f"records: {self.records}",
            f"new inputs: {self.new_inputs}",
            f"already stored: {self.existing}",
            f"filtered out (tiles): {self.filtered}",
            f"seen twice (keyset restarts: {self.restarts}): {self.duplicates}",
            f"skipped records: {skipped}",
        ]
        out.extend(f"  {reason}: {n}" for reason, n in sorted(self.skipped.items()))
        if self.busy_queries:
            out.append(
                "queries skipped (another harvester is running them): "
                + ", ".join(self.busy_queries)
            )
        return out


Checkpoint = Callable[[Connection, odata.Page, HarvestSummary], Awaitable[None]]

_DONE = object()


async def prefetched(pages: AsyncIterator[odata.Page], depth: int = 1) -> AsyncIterator[odata.Page]:
    """The same pages, the next ones fetched while the caller stores the current one.

    At most ``depth`` pages wait in memory; an error of the fetcher is raised here, in
    order, after the pages fetched before it.
    """
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=depth)

    async def fetch() -> None:
        try:
            async for page in pages:
                await queue.put(page)
        except Exception as exc:
            await queue.put(exc)
        else:
            await queue.put(_DONE)

    task = asyncio.create_task(fetch())
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            assert isinstance(item, odata.Page)
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def harvest_search(
    conn: Connection,
    client: odata.ODataClient,
    query: HarvestQuery,
    search: filters.Search,
    *,
    checkpoint: Checkpoint | None = None,
    batch_size: int = 1000,
    summary: HarvestSummary | None = None,
    on_page: Callable[[HarvestSummary], None] | None = None,
    writers: Sequence[Connection] = (),
    lock_timeout_s: float | None = None,
) -> HarvestSummary:
    """Store every product of the search as an input of the query's condition.

    Each page: its wanted products in batches of one statement each, then ``checkpoint``,
    all in one transaction. Pages are stored on ``conn`` and on the extra ``writers``
    connections, one page per connection at a time: the next page's inserts run while the
    previous page's are still on the server (the server works on both cores). Each page
    commits only after every earlier page has committed, so a watermark or cursor never
    runs ahead of a page that might still fail; a failed page fails the ones after it,
    which roll back, and the harvest stops with its error.

    That in-process ordering is a wait PostgreSQL does not see: two harvests inserting the
    same products with different page boundaries could wait on each other forever (page A
    on a row of page B', B' on B behind it in its process, B on a row of A). Each page's
    lock waits are therefore bounded by ``lock_timeout_s``: such a cycle fails a page (it is
    harvested again by the next pass or the resumed archive) instead of hanging.
    """
    summary = summary or HarvestSummary()
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for writer in (conn, *writers):
        free.put_nowait(writer)
    previous: asyncio.Task[None] | None = None
    stores: set[asyncio.Task[None]] = set()

    def release(task: asyncio.Task[None], writer: Connection) -> None:
        stores.discard(task)
        free.put_nowait(writer)

    try:
        async for page in prefetched(client.pages(search)):
            writer = await free.get()
            if previous is not None and _failed(previous):
                free.put_nowait(writer)
                break
            task = asyncio.create_task(
                _store_page(
                    writer,
                    page,
                    previous,
                    query,
                    search,
                    checkpoint,
                    batch_size,
                    summary,
                    on_page,
                    lock_timeout_s,
                )
            )
            stores.add(task)
            task.add_done_callback(functools.partial(release, writer=writer))
            previous = task
    except Exception:
        # The catalogue failed: the pages already fetched still commit (progress kept).
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        raise
    else:
        if previous is not None:
            await previous  # the last page commits after all the others, or raises the first error
    finally:
        for task in list(stores):
            task.cancel()
        if stores:
            await asyncio.gather(*stores, return_exceptions=True)
    return summary


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


async def _store_page(
    conn: Connection,
    page: odata.Page,
    previous: asyncio.Task[None] | None,
    query: HarvestQuery,
    search: filters.Search,
    checkpoint: Checkpoint | None,
    batch_size: int,
    summary: HarvestSummary,
    on_page: Callable[[HarvestSummary], None] | None,
    lock_timeout_s: float | None,
) -> None:
    wanted = [p for p in page.products if search.wants_tile(p.location)]
    filtered = len(page.products) - len(wanted)
    new = 0
    try:
        async with conn.transaction():
            if lock_timeout_s is not None:
                await store.set_lock_timeout(conn, lock_timeout_s)
            for start in range(0, len(wanted), batch_size):
                chunk = wanted[start : start + batch_size]
                new += await store.store_inputs(conn, query.processing_condition, chunk)
            if previous is not None:
                # Raises the earlier page's error: this page rolls back with it.
                await asyncio.shield(previous)
            summary.add_page(page, len(wanted), new, filtered)
            if checkpoint is not None:
                await checkpoint(conn, page, summary)
    except psycopg.Error as exc:
        raise errors.DatabaseError(f"storing a page of {query.name!r} failed: {exc}") from exc
    log.debug(
        "harvester.page_stored",
        extra={
            "query": query.name,
            "records": page.records,
            "new_inputs": new,
            "skipped": len(page.skipped),
        },
    )
    if on_page is not None:
        on_page(summary)


def nrt_search(
    query: HarvestQuery, watermark: datetime | None, now: datetime, overlap: timedelta
) -> filters.Search:
    """The near-real-time search of a query: from its watermark (less the overlap), never
    before ``now - max_days_since_publication``; sensed after ``now - max_days_since_measurement``.
    """
    earliest = now - timedelta(days=query.max_days_since_publication)
    start = earliest if watermark is None else max(earliest, watermark - overlap)
    return filters.from_query(
        query,
        published_from=start,
        sensing_from=now - timedelta(days=query.max_days_since_measurement),
    )


async def nrt_pass(
    conn: Connection,
    client: odata.ODataClient,
    config: Config,
    *,
    queries: Sequence[HarvestQuery] | None = None,
    now: datetime | None = None,
    writers: Sequence[Connection] = (),
) -> HarvestSummary:
    """One near-real-time pass over every configured query (or the given ones); pages are
    stored on ``conn`` and the extra ``writers`` at once (see :func:`harvest_search`)."""
    now = now or _utc_now()
    overlap = timedelta(minutes=config.harvester.overlap_minutes)
    total = HarvestSummary()
    for query in config.harvester.queries if queries is None else queries:
        # One harvester at a time per query: replicas skip it (their catalogue traffic and
        # inserts would only repeat it), and never wait on each other's pages.
        if not await store.try_query_lock(conn, query.name):
            log.info("harvester.query_busy", extra={"query": query.name})
            total.busy_queries.append(query.name)
            continue
        try:
            summary = await _nrt_query(conn, client, config, query, now, overlap, writers)
        finally:
            with contextlib.suppress(errors.DatabaseError):
                await store.release_query_lock(conn, query.name)
        total.merge(summary)
    return total


async def _nrt_query(
    conn: Connection,
    client: odata.ODataClient,
    config: Config,
    query: HarvestQuery,
    now: datetime,
    overlap: timedelta,
    writers: Sequence[Connection],
) -> HarvestSummary:
    search = nrt_search(query, await store.watermark(conn, query.name), now, overlap)

    async def advance(conn: Connection, page: odata.Page, _: HarvestSummary) -> None:
        if page.last_publication is not None:
            await store.advance_watermark(conn, query.name, page.last_publication)

    summary = await harvest_search(
        conn,
        client,
        query,
        search,
        checkpoint=advance,
        batch_size=config.harvester.batch_size,
        writers=writers,
        lock_timeout_s=config.harvester.lock_timeout_s,
    )
    log.info(
        "harvester.nrt_query_done",
        extra={"query": query.name, "pages": summary.pages, "new_inputs": summary.new_inputs},
    )
    return summary


@contextlib.asynccontextmanager
async def extra_writers(db_url: str, config: Config) -> AsyncIterator[list[Connection]]:
    """The connections a harvest stores pages on besides its own: ``store_connections - 1``."""
    opened: list[Connection] = []
    try:
        for _ in range(config.harvester.store_connections - 1):
            opened.append(
                await connect.connect(
                    db_url, autocommit=True, timeout_s=config.database.connect_timeout_s
                )
            )
        yield opened
    finally:
        for conn in opened:
            await conn.close()


@dataclass
class ArchiveProgress:
    """Callbacks for a progress display (all optional)."""

    on_day: Callable[[str, date, HarvestSummary], None] | None = None
    on_page: Callable[[HarvestSummary], None] | None = None
    on_resume: Callable[[store.ArchiveCursor], None] | None = None


def days_between(from_day: date, to_day: date) -> int:
    return (to_day - from_day).days + 1


class _CursorKeeper:
    """Keeps an archive cursor up to date, page after page (the checkpoint of each page)."""

    def __init__(self, cursor: store.ArchiveCursor) -> None:
        self.cursor = cursor
        self._day_new = 0

    def start_day(self, day: date) -> datetime | None:
        """Move to ``day``; the publication date to resume that day from, if any."""
        resume = self.cursor.resume_from if self.cursor.day == day else None
        self.cursor = dataclasses.replace(self.cursor, day=day, resume_from=resume)
        self._day_new = 0
        return resume

    async def checkpoint(self, conn: Connection, page: odata.Page, day: HarvestSummary) -> None:
        c = self.cursor
        self.cursor = dataclasses.replace(
            c,
            resume_from=page.last_publication or c.resume_from,
            pages=c.pages + 1,
            records=c.records + page.records,
            new_inputs=c.new_inputs + day.new_inputs - self._day_new,
        )
        self._day_new = day.new_inputs
        await store.save_archive_cursor(conn, self.cursor)


async def archive(
    conn: Connection,
    client: odata.ODataClient,
    config: Config,
    from_day: date,
    to_day: date,
    *,
    queries: Sequence[HarvestQuery] | None = None,
    progress: ArchiveProgress | None = None,
    writers: Sequence[Connection] = (),
) -> HarvestSummary:
    """Walk one-day publication windows ``[from_day, to_day]`` for each query, resumably.

    The cursor (day, last PublicationDate stored, counters) is saved with every page; a
    rerun with the same query and range resumes from it, and it is deleted at the end. The
    returned summary covers this run only. The max-days limits of near-real-time passes do
    not apply: the days asked for are walked whatever their age.
    """
    if to_day < from_day:
        raise errors.ConfigError("--to is before --from")
    progress = progress or ArchiveProgress()
    total = HarvestSummary()
    for query in config.harvester.queries if queries is None else queries:
        saved = await store.archive_cursor(conn, query.name, from_day, to_day)
        if saved is not None:
            log.info(
                "harvester.archive_resumed",
                extra={"query": query.name, "day": saved.day.isoformat()},
            )
            if progress.on_resume is not None:
                progress.on_resume(saved)
        keeper = _CursorKeeper(saved or store.ArchiveCursor(query.name, from_day, to_day, from_day))
        day = keeper.cursor.day
        while day <= to_day:
            window = datetime(day.year, day.month, day.day, tzinfo=UTC)
            resume = keeper.start_day(day)
            search = filters.from_query(
                query,
                published_from=max(window, resume) if resume is not None else window,
                published_to=window + timedelta(days=1),
            )
            summary = await harvest_search(
                conn,
                client,
                query,
                search,
                checkpoint=keeper.checkpoint,
                batch_size=config.harvester.batch_size,
                on_page=progress.on_page,
                writers=writers,
                lock_timeout_s=config.harvester.lock_timeout_s,
            )
            total.merge(summary)
            keeper.start_day(day + timedelta(days=1))
            await store.save_archive_cursor(conn, keeper.cursor)
            if progress.on_day is not None:
                progress.on_day(query.name, day, summary)
            day += timedelta(days=1)
        await store.delete_archive_cursor(conn, query.name, from_day, to_day)
        log.info("harvester.archive_done", extra={"query": query.name})
    return total


class HarvesterService:
    """The harvester as a service of ``hrwsi run`` (see :mod:`hrwsi.services.base`).

    ``http`` is the HTTP client for the catalogue (built by :mod:`hrwsi.bootstrap`, closed by
    :meth:`aclose` when ``owns_http``; default: one made from the config, closed too);
    ``clock`` and ``sleep`` are injectable for tests.
    """

    name = "harvester"
    channels = ("product_insertion", "processing_tasks_state_processed")

    def __init__(
        self,
        config: Config,
        db_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        owns_http: bool = False,
        clock: Clock = _utc_now,
        retry_sleep: odata.Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self.db_url = db_url
        self.interval_s = config.database.listener_poll_s
        # The composition root builds the catalogue client and passes it in; a service built
        # without one (tests, products → inputs only) makes its own and closes it.
        self._owns_http = owns_http or http is None
        self._http = http or odata.make_http_client(config.catalogue)
        self.client = odata.ODataClient.from_config(config.catalogue, self._http, sleep=retry_sleep)
        self._clock = clock
        timeout_s = config.database.connect_timeout_s
        self._reconcile = ConnectionHolder(db_url, name="harvester", timeout_s=timeout_s)
        self._nrt = ConnectionHolder(db_url, name="harvester nrt", timeout_s=timeout_s)
        self.sweep_interval_s = config.harvester.products_sweep_minutes * 60
        self._swept_at: float | None = None

    @property
    def _reconcile_conn(self) -> Connection | None:
        """The products → inputs connection, if open."""
        return self._reconcile.current()

    async def reconcile(self) -> None:
        """Products → inputs, once for every product not yet an input: the queued products
        in batches until the queue is drained, then the full sweep when it is due."""
        conn = await self._reconcile.get()
        batch = self.config.harvester.batch_size
        new = 0
        try:
            while True:
                claimed, made = await products_source.queued_products_to_inputs(conn, batch)
                new += made
                if claimed < batch:
                    break
            if self._swept_at is None or time.monotonic() - self._swept_at >= self.sweep_interval_s:
                started = time.monotonic()
                swept = await products_source.products_to_inputs(conn)
                self._swept_at = started
                if swept:
                    log.info("harvester.products_sweep_found", extra={"new_inputs": swept})
                new += swept
        except asyncio.CancelledError:
            # A query cut short leaves the connection in an unknown state (the server rolls
            # the transaction back when it goes): the next pass opens a fresh one.
            await self._reconcile.drop()
            raise
        if new:
            log.info("harvester.products_to_inputs", extra={"new_inputs": new})

    async def nrt_pass(self) -> HarvestSummary:
        """One near-real-time catalogue pass over every configured query."""
        conn = await self._nrt.get()
        async with extra_writers(self.db_url, self.config) as writers:
            return await nrt_pass(
                conn, self.client, self.config, now=self._clock(), writers=writers
            )

    async def background(self, stop: asyncio.Event) -> None:
        """Near-real-time passes every ``interval_minutes`` until ``stop``; a failed pass is
        logged and the next one tried at the next interval."""
        if not self.config.harvester.queries:
            return
        interval = self.config.harvester.interval_minutes * 60
        while not stop.is_set():
            try:
                summary = await self.nrt_pass()
                log.info(
                    "harvester.nrt_pass_done",
                    extra={
                        "pages": summary.pages,
                        "records": summary.records,
                        "new_inputs": summary.new_inputs,
                        "skipped": sum(summary.skipped.values()),
                    },
                )
            except errors.HrwsiError as exc:
                log.warning("harvester.nrt_pass_failed", extra={"error": str(exc)})
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                continue

    async def aclose(self) -> None:
        await self._reconcile.aclose()
        await self._nrt.aclose()
        if self._owns_http:
            await self._http.aclose()


__all__ = [
    "ArchiveProgress",
    "HarvestSummary",
    "HarvesterService",
    "archive",
    "harvest_search",
    "nrt_pass",
    "nrt_search",
]
