"""HTTP failures httpx reports outside TransportError become catalogue errors the harvester
logs (a failed pass), never a foreign exception that crashes its loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from hrwsi.catalogue import filters, odata
from hrwsi.domain import errors
from hrwsi.testing.catalogue_server import fixture_text

BASE = "https://catalogue.example/odata/v1"
SEARCH = filters.Search(
    collection="SENTINEL-2", product_type="S2MSI1C", published_from=datetime(2023, 1, 1, tzinfo=UTC)
)


async def _no_sleep(seconds: float) -> None:
    return None


async def _pages(handler: Callable[[httpx.Request], httpx.Response]) -> list[odata.Page]:
    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as http:
        client = odata.ODataClient(
            http, BASE, retry=odata.RetryPolicy(max_attempts=3, initial_s=0), sleep=_no_sleep
        )
        return [page async for page in client.pages(SEARCH)]


def _page(next_link: str | None = None) -> dict:
    body = json.loads(fixture_text("eodag_cop_dataspace_s2_l1c_page_nextlink.json"))
    body.pop("@odata.nextLink")
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return body


async def test_a_body_that_does_not_decode_is_retried() -> None:
    """A corrupt gzip body (httpx.DecodingError) is a transient failure: the retry succeeds."""
    script: list[Callable[[], httpx.Response]] = [
        lambda: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip"),
        lambda: httpx.Response(200, json=_page()),
    ]
    pages = await _pages(lambda r: script.pop(0)())
    assert not script and len(pages) == 1 and len(pages[0].products) == 2


async def test_a_redirect_loop_is_catalogue_transient() -> None:
    """A redirect loop (httpx.TooManyRedirects) is CatalogueTransient once retries are spent."""
    with pytest.raises(errors.CatalogueTransient):
        await _pages(lambda r: httpx.Response(302, headers={"Location": str(r.url)}))


async def test_a_next_link_to_itself_is_rejected_not_followed_for_ever() -> None:
    """A page whose nextLink is its own URL is CatalogueRejected after two requests (before:
    the pass followed it for ever and never returned)."""
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json=_page(next_link=f"{BASE}/Products?$skip=20"))

    with pytest.raises(errors.CatalogueRejected):
        await _pages(handler)
    assert len(urls) == 2


@pytest.mark.parametrize("link", ["http://[::1", "http://x:port/"])
async def test_a_next_link_that_is_no_url_is_rejected(link: str) -> None:
    """A nextLink httpx cannot parse is CatalogueRejected (after the first page is used)."""
    pages: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        pages.append(1)
        return httpx.Response(200, json=_page(next_link=link))

    with pytest.raises(errors.CatalogueRejected):
        await _pages(handler)
    assert len(pages) == 1
