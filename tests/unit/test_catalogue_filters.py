"""Search building: the $filter text and the near-real-time window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hrwsi.catalogue import filters, odata
from hrwsi.config import HarvestQuery
from hrwsi.domain import errors
from hrwsi.services.harvester import nrt_search
from hrwsi.testing.odata_filter import compile_filter

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
QUERY = HarvestQuery(
    name="q",
    processing_condition="MAJA_PC",
    geometry="POLYGON ((1 43, 2 43, 2 44, 1 44, 1 43))",
    name_contains=("_N05",),
    max_days_since_publication=7,
    max_days_since_measurement=30,
)


def test_filter_text_has_every_clause() -> None:
    """Collection, productType attribute, Name contains, sensing and publication windows and
    Intersects all appear, with times in UTC and a Z."""
    search = filters.from_query(
        QUERY,
        published_from=NOW - timedelta(days=1),
        published_to=NOW,
        sensing_from=NOW - timedelta(days=30),
    )
    text = filters.build_filter(search)
    assert text == (
        "Collection/Name eq 'SENTINEL-2' and Attributes/OData.CSC.StringAttribute/any("
        "att:att/Name eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'S2MSI1C') "
        "and contains(Name,'_N05') and ContentDate/Start ge 2026-02-08T12:00:00.000000Z "
        "and PublicationDate ge 2026-03-09T12:00:00.000000Z "
        "and PublicationDate lt 2026-03-10T12:00:00.000000Z and OData.CSC.Intersects("
        "area=geography'SRID=4326;POLYGON ((1 43, 2 43, 2 44, 1 44, 1 43))')"
    )
    _predicate, bounds = compile_filter(text)
    assert [b.op for b in bounds] == ["ge", "lt"]


def test_quotes_are_doubled() -> None:
    """A quote inside a literal is doubled, as OData wants."""
    assert filters.quote("it's") == "'it''s'"


def test_nrt_window_starts_at_watermark_less_overlap() -> None:
    """With a recent watermark the pass starts at it less the overlap."""
    mark = NOW - timedelta(hours=2)
    search = nrt_search(QUERY, mark, NOW, timedelta(minutes=10))
    assert search.published_from == mark - timedelta(minutes=10)
    assert search.sensing_from == NOW - timedelta(days=30)


@pytest.mark.parametrize("mark", [None, NOW - timedelta(days=8), NOW - timedelta(days=400)])
def test_nrt_window_never_reaches_past_max_days(mark: datetime | None) -> None:
    """No watermark or an old one: the pass starts at now - max_days_since_publication."""
    search = nrt_search(QUERY, mark, NOW, timedelta(minutes=10))
    assert search.published_from == NOW - timedelta(days=7)


async def test_a_ceiling_full_of_one_publication_date_is_an_error_not_a_loop() -> None:
    """If a restart makes no progress (a full page, all at the restart date), the client
    raises CatalogueRejected instead of asking the same page forever."""
    record = {
        "Id": "a",
        "Name": "S2A_MSIL1C_20260301T102021_N0511_R065_T33UUT_20260301T115940.SAFE",
        "S3Path": "/x",
        "PublicationDate": "2026-03-01T12:00:00.000000Z",
        "ContentDate": {"Start": "2026-03-01T10:20:21.024Z"},
    }
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json={"value": [record, dict(record, Id="b")]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = odata.ODataClient(http, "http://x/odata/v1", page_size=2)
        with pytest.raises(errors.CatalogueRejected):
            async for _ in client.pages(filters.Search(collection="SENTINEL-2")):
                pass
    assert len(calls) == 2
