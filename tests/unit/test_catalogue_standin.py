"""The catalogue stand-in follows the CDSE rules, and the client harvests through it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hrwsi.catalogue import filters, odata, records
from hrwsi.testing.catalogue_server import (
    CatalogueStandIn,
    Fault,
    demo_records,
    fixture_text,
    generate_s2_l1c,
)

START = datetime(2025, 3, 1, tzinfo=UTC)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def _harvest(
    server: CatalogueStandIn,
    search: filters.Search,
    *,
    page_size: int = 10,
    sleeps: Sleeps | None = None,
    read_timeout: float = 10.0,
) -> list[odata.Page]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(read_timeout, connect=5)) as http:
        client = odata.ODataClient(
            http,
            server.base_url,
            page_size=page_size,
            retry=odata.RetryPolicy(max_attempts=12, initial_s=0),
            sleep=sleeps or Sleeps(),
        )
        return [page async for page in client.pages(search)]


def _search(**kw) -> filters.Search:
    return filters.Search(collection="SENTINEL-2", product_type="S2MSI1C", **kw)


async def test_top_and_skip_limits_answer_422_in_the_recorded_shape() -> None:
    """$top over 1000 and $skip over 10000 get 422 with the FastAPI body the real API sends."""
    async with CatalogueStandIn() as server, httpx.AsyncClient() as http:
        skip = await http.get(f"{server.base_url}/Products", params={"$skip": "10001"})
        top = await http.get(f"{server.base_url}/Products", params={"$top": "1001"})
        ok = await http.get(
            f"{server.base_url}/Products", params={"$top": "1000", "$skip": "10000"}
        )
    assert skip.status_code == 422 and top.status_code == 422 and ok.status_code == 200
    assert skip.json() == json.loads(fixture_text("cdsedocs_error_422_skip_over_10000.json"))
    assert top.json()["detail"][0]["ctx"] == {"le": 1000}
    assert top.json()["detail"][0]["loc"] == ["query", "$top"]


async def test_next_link_stops_silently_at_the_ceiling() -> None:
    """Below the ceiling a nextLink leads on; at it the page looks like the last one."""
    recs = generate_s2_l1c(60, seed=3, published_from=START)
    async with CatalogueStandIn(products=recs, skip_ceiling=20) as server, httpx.AsyncClient() as h:
        url = f"{server.base_url}/Products"
        page = (await h.get(url, params={"$top": "10", "$skip": "10", "$count": "true"})).json()
        assert page["@odata.nextLink"].startswith("http://127.0.0.1:")
        assert "%24skip=20" in page["@odata.nextLink"] and page["@odata.count"] == 60
        at_ceiling = (await h.get(url, params={"$top": "10", "$skip": "20"})).json()
        assert len(at_ceiling["value"]) == 10 and "@odata.nextLink" not in at_ceiling
        last = (await h.get(page["@odata.nextLink"].replace("skip=20", "skip=10"))).json()
        assert "@odata.nextLink" in last


async def test_order_by_publication_date_breaks_ties_by_id() -> None:
    """Records sharing a PublicationDate come in Id order, asc and desc alike."""
    recs = generate_s2_l1c(30, seed=4, published_from=START, ties=5)
    async with CatalogueStandIn(products=recs) as server, httpx.AsyncClient() as h:
        url = f"{server.base_url}/Products"
        for direction in ("asc", "desc"):
            body = (
                await h.get(url, params={"$top": "30", "$orderby": f"PublicationDate {direction}"})
            ).json()
            keys = [(records.parse_timestamp(r["PublicationDate"]), r["Id"]) for r in body["value"]]
            expected = sorted(keys, key=lambda k: k[1])
            expected.sort(key=lambda k: k[0], reverse=direction == "desc")
            assert keys == expected


async def test_filters_select_what_a_reference_selects() -> None:
    """Each filter form the client sends selects exactly the records a direct check selects."""
    recs = generate_s2_l1c(300, seed=5, published_from=START, spacing=timedelta(minutes=20))
    recs += demo_records(20, now=START + timedelta(days=2))
    cut = START + timedelta(days=1)
    sensed = START - timedelta(hours=1)
    area = "POLYGON ((0 40, 20 40, 20 60, 0 60, 0 40))"
    search = _search(
        published_from=cut, sensing_from=sensed, geometry=area, name_contains=("MSIL1C",)
    )
    async with CatalogueStandIn(products=recs) as server:
        pages = await _harvest(server, search, page_size=50)
    got = {p.id for page in pages for p in page.products}

    def wanted(r: dict) -> bool:
        if records.parse_timestamp(r["PublicationDate"]) < cut:
            return False
        if records.parse_timestamp(r["ContentDate"]["Start"]) < sensed:
            return False
        numbers = [
            float(x) for x in r["Footprint"].split("((")[1].split("))")[0].replace(",", " ").split()
        ]
        lons, lats = numbers[0::2], numbers[1::2]
        return min(lons) <= 20 and max(lons) >= 0 and min(lats) <= 60 and max(lats) >= 40

    expected = {r["Id"] for r in recs if wanted(r)}
    assert expected and got == expected


async def test_other_collection_and_type_select_nothing() -> None:
    """Collection SENTINEL-1 or product type S2MSI2A match no S2 L1C record."""
    recs = generate_s2_l1c(20, seed=6, published_from=START)
    async with CatalogueStandIn(products=recs) as server:
        s1 = await _harvest(server, filters.Search(collection="SENTINEL-1"))
        l2a = await _harvest(server, _search().__class__("SENTINEL-2", "S2MSI2A"))
        l1c = await _harvest(server, _search())
    assert s1[0].records == 0 and l2a[0].records == 0
    assert sum(len(p.products) for p in l1c) == 20


async def test_unknown_filter_is_a_400_and_quotes_are_escaped() -> None:
    """A filter the stand-in cannot read is a 400; a quote in a configured value stays a
    literal (an injection attempt selects nothing instead of everything)."""
    recs = generate_s2_l1c(5, seed=10, published_from=START)
    async with CatalogueStandIn(products=recs) as server, httpx.AsyncClient() as http:
        bad = await http.get(f"{server.base_url}/Products", params={"$filter": "Foo eq 1"})
        assert bad.status_code == 400
        sneaky = filters.Search(collection="SENTINEL-2') or (Name eq 'x")
        pages = await _harvest(server, sneaky)
    assert sum(p.records for p in pages) == 0


async def test_more_results_than_the_ceiling_are_all_harvested() -> None:
    """With a lowered ceiling (50) and ties at the edges, 437 results come each exactly once."""
    recs = generate_s2_l1c(437, seed=7, published_from=START, ties=4)
    async with CatalogueStandIn(products=recs, skip_ceiling=50) as server:
        pages = await _harvest(server, _search(published_from=START), page_size=10)
    ids = Counter(p.id for page in pages for p in page.products)
    assert set(ids) == {r["Id"] for r in recs}
    assert max(ids.values()) == 1
    assert sum(page.restarted for page in pages) >= 7


@pytest.mark.slow
async def test_more_results_than_the_real_ceiling() -> None:
    """At the real limits ($top 1000, $skip 10000) 12,345 results are all harvested once."""
    recs = generate_s2_l1c(12_345, seed=8, published_from=START, spacing=timedelta(seconds=1))
    async with CatalogueStandIn(products=recs) as server:
        pages = await _harvest(server, _search(published_from=START), page_size=1000)
    ids = [p.id for page in pages for p in page.products]
    assert len(ids) == len(set(ids)) == 12_345
    assert any(page.restarted for page in pages)


async def test_injected_faults_lose_nothing_else() -> None:
    """A timeout, a 429 storm, 500s, a truncated body, an HTML body and a bad record on the
    way: every good record arrives once, only the bad one is skipped, Retry-After honoured."""
    recs = generate_s2_l1c(95, seed=9, published_from=START)
    bad = dict(recs[0], Id="bad-one", Name="S2Z_MSIL9Z_nonsense.SAFE")
    async with CatalogueStandIn(products=recs) as server:
        server.inject(
            Fault.timeout(1.0),
            Fault.too_many_requests(times=4, retry_after="3"),
            Fault.server_error(500, times=2),
            Fault.truncated(),
            Fault.not_json(),
            Fault.bad_record(bad),
        )
        sleeps = Sleeps()
        pages = await _harvest(
            server, _search(published_from=START), page_size=20, sleeps=sleeps, read_timeout=0.3
        )
        assert server.pending_faults == 0
    ids = Counter(p.id for page in pages for p in page.products)
    assert set(ids) == {r["Id"] for r in recs} and max(ids.values()) == 1
    assert [s.record_id for page in pages for s in page.skipped] == ["bad-one"]
    assert sleeps.delays.count(3.0) == 4


async def test_demo_records_are_recent_real_products() -> None:
    """Demo records are real S2 L1C records re-dated into the last days, still consistent."""
    now = datetime(2026, 1, 10, 12, tzinfo=UTC)
    demo = demo_records(40, now=now)
    assert len(demo) == 40 and len({r["Name"] for r in demo}) == 40
    for record in demo:
        product = records.normalise(record)
        assert now - timedelta(days=6) < product.sensing_start < now
        assert product.sensing_start < product.publication_date < now
        assert product.s3_path.endswith(product.name)
        assert f"/{product.sensing_start:%Y/%m/%d}/" in product.s3_path
