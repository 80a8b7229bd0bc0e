"""The OData client against httpx.MockTransport: paging, retries, malformed bodies and records."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hrwsi.catalogue import filters, odata
from hrwsi.domain import errors
from hrwsi.testing.catalogue_server import fixture_text

BASE = "https://catalogue.example/odata/v1"
SEARCH = filters.Search(
    collection="SENTINEL-2",
    product_type="S2MSI1C",
    published_from=datetime(2023, 1, 1, tzinfo=UTC),
)


class Sleeps:
    """A sleep that records its delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def _collect(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    page_size: int = 10,
    attempts: int = 8,
    sleeps: Sleeps | None = None,
) -> list[odata.Page]:
    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport) as http:
        client = odata.ODataClient(
            http,
            BASE,
            page_size=page_size,
            retry=odata.RetryPolicy(max_attempts=attempts, initial_s=0),
            sleep=sleeps or Sleeps(),
        )
        return [page async for page in client.pages(SEARCH)]


def _skip(request: httpx.Request) -> int:
    return int(parse_qs(urlsplit(str(request.url)).query).get("$skip", ["0"])[0])


async def test_recorded_pages_follow_next_links_verbatim() -> None:
    """The five recorded CDSETool pages are read to the end by following each nextLink as is;
    their 47 AUX records are all reported as bad names, none lost or doubled."""
    files = [
        "cdsetool_s1_page1_count_nextlink.json",
        "cdsetool_s1_page2_nextlink.json",
        "cdsetool_s1_page3_nextlink.json",
        "cdsetool_s1_page4_nextlink.json",
        "cdsetool_s1_page5_last.json",
    ]
    bodies = [json.loads(fixture_text(f)) for f in files]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=bodies[_skip(request) // 10])

    pages = await _collect(handler)
    assert len(pages) == 5
    assert seen[1:] == [b["@odata.nextLink"] for b in bodies[:-1]]
    assert sum(p.records for p in pages) == 47 == pages[0].count
    assert sum(len(p.skipped) for p in pages) == 47
    assert {s.reason for p in pages for s in p.skipped} == {"bad_name"}
    assert len({s.record_id for p in pages for s in p.skipped}) == 47


async def test_first_request_carries_the_search() -> None:
    """The first page asks for the filter, PublicationDate order, page size and Attributes."""
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json={"value": []})

    await _collect(handler, page_size=250)
    query = parse_qs(urlsplit(str(captured[0].url)).query)
    assert query["$filter"] == [filters.build_filter(SEARCH)]
    assert query["$orderby"] == ["PublicationDate asc"]
    assert query["$top"] == ["250"]
    assert query["$expand"] == ["Attributes"]


def _s2_page() -> dict:
    body = json.loads(fixture_text("eodag_cop_dataspace_s2_l1c_page_nextlink.json"))
    body.pop("@odata.nextLink")
    return body


async def test_transient_failures_are_retried_and_the_page_used_once() -> None:
    """A 429 (Retry-After honoured), a 503, a truncated body, an HTML page and a timeout are
    all retried; the page that finally arrives is used whole, once."""
    good = json.dumps(_s2_page()).encode()
    script: list[Callable[[httpx.Request], httpx.Response]] = [
        lambda r: httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "slow"}),
        lambda r: httpx.Response(503, text="unavailable"),
        lambda r: httpx.Response(200, content=good[: len(good) // 2]),
        lambda r: httpx.Response(200, text="<html>bad gateway</html>"),
        lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)),
        lambda r: httpx.Response(200, content=good),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return script.pop(0)(request)

    sleeps = Sleeps()
    pages = await _collect(handler, sleeps=sleeps)
    assert not script
    assert len(pages) == 1 and len(pages[0].products) == 2
    assert sleeps.delays[0] == 7.0
    assert len(sleeps.delays) == 5


async def test_retries_give_up_after_max_attempts() -> None:
    """A server that keeps failing raises CatalogueTransient after max_attempts requests."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, text="boom")

    with pytest.raises(errors.CatalogueTransient) as caught:
        await _collect(handler, attempts=3)
    assert len(calls) == 3 and caught.value.status_code == 500


async def test_abridged_body_is_not_a_page() -> None:
    """The abridged documentation body (not valid JSON) is a failed page, never half used."""
    text = fixture_text("cdsedocs_s1_page_top2_nextlink_ABRIDGED.txt")
    with pytest.raises(errors.CatalogueTransient):
        await _collect(lambda r: httpx.Response(200, text=text), attempts=2)


async def test_a_4xx_is_rejected_at_once() -> None:
    """A 422 (the recorded $skip error) is not retried: CatalogueRejected with the body."""
    calls: list[int] = []
    body = fixture_text("cdsedocs_error_422_skip_over_10000.json")

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(422, text=body)

    with pytest.raises(errors.CatalogueRejected) as caught:
        await _collect(handler)
    assert calls == [1] and caught.value.status_code == 422
    assert "less than or equal to 10000" in str(caught.value)


async def test_malformed_records_are_skipped_and_the_rest_kept() -> None:
    """Bad records (bad name, no Id, not an object, bad date) are skipped with a reason;
    the good records of the same page are kept."""
    page = _s2_page()
    good = page["value"]
    bad_name = dict(good[0], Id="x-1", Name="S2A_NOT_A_PRODUCT.SAFE")
    no_id = {k: v for k, v in good[0].items() if k != "Id"}
    bad_date = dict(good[0], Id="x-2", PublicationDate="tomorrow")
    page["value"] = [bad_name, good[0], no_id, "junk", bad_date, good[1]]
    pages = await _collect(lambda r: httpx.Response(200, json=page))
    assert [p.id for p in pages[0].products] == [good[0]["Id"], good[1]["Id"]]
    reasons = sorted(s.reason for s in pages[0].skipped)
    assert reasons == ["bad_name", "bad_timestamp", "missing_field", "not_an_object"]


async def test_full_page_without_next_link_restarts_on_last_publication_date() -> None:
    """A full page with no nextLink (the $skip ceiling) restarts the search at the last
    PublicationDate seen; records seen again are dropped by Id."""
    page = _s2_page()
    first, second = page["value"]
    first = dict(first, PublicationDate="2023-08-23T08:00:00.000000Z")
    second = dict(second, PublicationDate="2023-08-23T08:24:44.869562Z")
    third = dict(
        second,
        Id="third-id",
        Name=second["Name"].replace("T55PBR", "T55PBS"),
        PublicationDate="2023-08-23T09:00:00.000000Z",
    )
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(parse_qs(urlsplit(str(request.url)).query)["$filter"][0])
        if len(requests) == 1:
            return httpx.Response(200, json={"value": [first, second]})
        return httpx.Response(
            200, json={"value": [second, third]} if len(requests) == 2 else {"value": [third]}
        )

    pages = await _collect(handler, page_size=2)
    ids = [p.id for page in pages for p in page.products]
    assert ids == [first["Id"], second["Id"], "third-id"]
    assert "PublicationDate ge 2023-08-23T08:24:44.869562Z" in requests[1]
    assert pages[1].restarted and pages[1].duplicates == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0), ("soon", None)],
)
def test_retry_after_header(header: str, expected: float | None) -> None:
    """Retry-After is read as seconds or as an HTTP date."""
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert odata.retry_after_seconds(header, now) == expected


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    """Waits double from the initial value, stay within jitter bounds and the cap."""
    policy = odata.RetryPolicy(initial_s=1, max_s=5, jitter=0.5)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        delay = policy.delay(attempt, None)
        assert ceiling * 0.5 <= delay <= ceiling
    assert policy.delay(1, 30.0) == 30.0
