"""A client for the CDSE OData ``Products`` API (also served by CREODIAS and WEkEO).

:meth:`ODataClient.pages` streams the pages of a :class:`filters.Search` ordered by
``PublicationDate asc``: memory stays flat whatever the number of results. It

* follows ``@odata.nextLink`` as an opaque URL (the server re-serialises the filter in it);
* never truncates silently at the 10,000 ``$skip`` ceiling: a full page without a nextLink
  may be that ceiling, so the search restarts at the last publication date seen (keyset
  paging, ``PublicationDate ge …``) and the records already seen at that date are dropped
  by ``Id``;
* retries a page on timeouts, transport errors, 429 (waiting ``Retry-After``), 5xx and a body
  that is not a complete JSON page, with exponential backoff and jitter; other 4xx raise
  :class:`errors.CatalogueRejected`. A page is used whole or not at all;
* skips a malformed record (logged, counted by reason) and keeps the rest of its page.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from hrwsi.catalogue import filters, records
from hrwsi.config import CatalogueConfig
from hrwsi.domain import errors, products

log = logging.getLogger(__name__)

SKIP_CEILING = 10_000
MAX_RETRY_AFTER_S = 600.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed page is tried again: ``max_attempts`` in all, waits growing from
    ``initial_s`` by doubling up to ``max_s``, each scaled by a random factor in
    ``[1 - jitter, 1]``. A 429's ``Retry-After`` replaces the computed wait (capped at 600 s).
    ``initial_s=0`` switches backoff off (tests); ``Retry-After`` is still honoured.
    """

    max_attempts: int = 8
    initial_s: float = 1.0
    max_s: float = 60.0
    jitter: float = 0.5

    @classmethod
    def from_config(cls, config: CatalogueConfig) -> RetryPolicy:
        return cls(
            max_attempts=config.max_attempts,
            initial_s=config.backoff_initial_s,
            max_s=config.backoff_max_s,
        )

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, MAX_RETRY_AFTER_S))
        base: float = min(self.max_s, self.initial_s * 2.0 ** (attempt - 1))
        return base * random.uniform(1 - self.jitter, 1)


@dataclass
class Page:
    """One page as used: new products (de-duplicated by Id) and the records skipped."""

    url: str
    products: list[products.CatalogueProduct]
    skipped: list[errors.MalformedRecord]
    records: int
    duplicates: int
    count: int | None = None
    restarted: bool = False
    last_publication: datetime | None = None


@dataclass
class _Edge:
    """The latest publication date seen and the Ids seen at exactly that date."""

    date: datetime | None = None
    ids: set[str] = field(default_factory=set)

    def is_duplicate(self, record_id: str, published: datetime) -> bool:
        if self.date is None or published > self.date:
            self.date = published
            self.ids = {record_id}
            return False
        if published < self.date:
            return False
        if record_id in self.ids:
            return True
        self.ids.add(record_id)
        return False


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def make_http_client(config: CatalogueConfig) -> httpx.AsyncClient:
    """The HTTP client the catalogue client is meant to get in production."""
    timeout = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s)
    return httpx.AsyncClient(
        timeout=timeout,
        headers={"Accept": "application/json", "User-Agent": "hrwsi-harvester"},
        follow_redirects=True,
    )


class ODataClient:
    """Reads ``{base_url}/Products`` pages. The HTTP client is injected and not closed here."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        page_size: int = 1000,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    @classmethod
    def from_config(
        cls, config: CatalogueConfig, http: httpx.AsyncClient, *, sleep: Sleep = asyncio.sleep
    ) -> ODataClient:
        return cls(
            http,
            config.base_url,
            page_size=config.page_size,
            retry=RetryPolicy.from_config(config),
            sleep=sleep,
        )

    async def pages(self, search: filters.Search) -> AsyncIterator[Page]:
        """Every page of the search, in publication order, each product once."""
        edge = _Edge()
        current = search
        restarted = False
        while True:
            start_edge = edge.date
            url: str = f"{self.base_url}/Products"
            params: dict[str, str] | None = filters.query_params(current, self.page_size)
            full_without_next = False
            while True:
                body = await self._get_page(url, params)
                value: list[Any] = body["value"]
                page = self._use(url, value, edge, body.get("@odata.count"), restarted)
                restarted = False
                yield page
                next_link = body.get("@odata.nextLink")
                if isinstance(next_link, str) and next_link:
                    if next_link == url:
                        raise errors.CatalogueRejected(
                            "the page links to itself as the next page", url=url
                        )
                    url, params = next_link, None
                    continue
                full_without_next = len(value) >= self.page_size
                break
            if not full_without_next or edge.date is None:
                return
            if edge.date == start_edge:
                raise errors.CatalogueRejected(
                    f"more than {SKIP_CEILING} products share PublicationDate "
                    f"{records.format_timestamp(edge.date)}: keyset paging cannot pass them",
                    url=url,
                )
            log.info(
                "catalogue.keyset_restart",
                extra={"published_from": records.format_timestamp(edge.date)},
            )
            current = search.starting_at(edge.date)
            restarted = True

    def _use(self, url: str, value: list[Any], edge: _Edge, count: Any, restarted: bool) -> Page:
        page = Page(
            url=url,
            products=[],
            skipped=[],
            records=len(value),
            duplicates=0,
            count=count if isinstance(count, int) else None,
            restarted=restarted,
        )
        for record in value:
            published = _publication_of(record)
            record_id = record.get("Id") if isinstance(record, dict) else None
            if (
                published is not None
                and isinstance(record_id, str)
                and edge.is_duplicate(record_id, published)
            ):
                page.duplicates += 1
                continue
            try:
                page.products.append(records.normalise(record))
            except errors.MalformedRecord as exc:
                log.warning(
                    "catalogue.record_skipped",
                    extra={"reason": exc.reason, "record_id": exc.record_id, "detail": str(exc)},
                )
                page.skipped.append(exc)
        page.last_publication = edge.date
        return page

    async def _get_page(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        """One page body, retried on transient failures; raises the last one when spent."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._get_once(url, params)
            except errors.CatalogueTransient as exc:
                if attempt >= self.retry.max_attempts:
                    log.error(
                        "catalogue.page_failed",
                        extra={"url": url, "attempts": attempt, "error": str(exc)},
                    )
                    raise
                delay = self.retry.delay(attempt, exc.retry_after)
                log.warning(
                    "catalogue.retry",
                    extra={
                        "url": url,
                        "attempt": attempt,
                        "status_code": exc.status_code,
                        "delay_s": round(delay, 3),
                        "error": str(exc),
                    },
                )
                await self._sleep(delay)

    async def _get_once(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        try:
            response = await self._http.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise errors.CatalogueTransient(f"timeout: {exc!r}", url=url) from exc
        except httpx.TransportError as exc:
            raise errors.CatalogueTransient(f"transport error: {exc!r}", url=url) from exc
        except httpx.RequestError as exc:
            # A body that does not decode (corrupt gzip), a redirect loop.
            raise errors.CatalogueTransient(f"request failed: {exc!r}", url=url) from exc
        except (httpx.InvalidURL, ValueError) as exc:
            # A nextLink that is not a URL: asking again will not mend it.
            raise errors.CatalogueRejected(f"not a URL: {exc}", url=url) from exc
        status = response.status_code
        where = str(response.request.url)
        if status == 429:
            raise errors.CatalogueTransient(
                "too many requests (429)",
                url=where,
                status_code=status,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 500:
            raise errors.CatalogueTransient(
                f"server error {status}: {response.text[:200]}", url=where, status_code=status
            )
        if status >= 400:
            raise errors.CatalogueRejected(
                f"catalogue refused the query ({status}): {response.text[:500]}",
                url=where,
                status_code=status,
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise errors.CatalogueTransient(
                f"body is not complete JSON ({len(response.content)} bytes)",
                url=where,
                status_code=status,
            ) from exc
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise errors.CatalogueTransient(
                "body is not an OData page (no 'value' list)", url=where, status_code=status
            )
        return body


def _publication_of(record: Any) -> datetime | None:
    if not isinstance(record, dict):
        return None
    try:
        return records.parse_timestamp(record.get("PublicationDate"))  # type: ignore[arg-type]
    except ValueError:
        return None
