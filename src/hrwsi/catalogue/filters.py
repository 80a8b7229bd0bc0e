"""What to ask the catalogue: a :class:`Search` and the OData ``$filter`` text it becomes.

The filter forms are the ones the CDSE documents (and the stand-in understands)::

    Collection/Name eq 'SENTINEL-2'
    Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType'
        and att/OData.CSC.StringAttribute/Value eq 'S2MSI1C')
    contains(Name,'GRDH')
    ContentDate/Start ge 2024-01-01T00:00:00.000000Z
    PublicationDate ge 2024-01-01T00:00:00.000000Z and PublicationDate lt …
    OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((…))')

Literal values are quoted OData-style (a quote is doubled); times are always sent in UTC
with a ``Z`` (the service once read zone-less times as Warsaw time).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from hrwsi.catalogue.records import format_timestamp
from hrwsi.config import HarvestQuery

ORDER_BY = "PublicationDate asc"


def quote(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Search:
    """One catalogue search over a publication window ``[published_from, published_to)``.

    ``tiles`` is applied to parsed names after the fetch (the catalogue cannot filter on
    it without ``$expand``-dependent attribute queries); empty means every tile.
    """

    collection: str
    product_type: str = ""
    name_contains: tuple[str, ...] = ()
    geometry: str | None = None
    sensing_from: datetime | None = None
    published_from: datetime | None = None
    published_to: datetime | None = None
    tiles: frozenset[str] = frozenset()

    def starting_at(self, published_from: datetime) -> Search:
        """The same search restarted at a later publication date (keyset paging)."""
        return dataclasses.replace(self, published_from=published_from)

    def wants_tile(self, tile: str) -> bool:
        return not self.tiles or tile in self.tiles


def from_query(
    query: HarvestQuery,
    *,
    published_from: datetime | None,
    published_to: datetime | None = None,
    sensing_from: datetime | None = None,
) -> Search:
    """The search a configured harvest query makes over the given windows."""
    return Search(
        collection=query.collection,
        product_type=query.product_type,
        name_contains=query.name_contains,
        geometry=query.geometry,
        sensing_from=sensing_from,
        published_from=published_from,
        published_to=published_to,
        tiles=frozenset(query.tiles),
    )


def build_filter(search: Search) -> str:
    """The ``$filter`` text of a search (clauses joined with ``and``)."""
    clauses = [f"Collection/Name eq {quote(search.collection)}"]
    if search.product_type:
        clauses.append(
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            f"att/OData.CSC.StringAttribute/Value eq {quote(search.product_type)})"
        )
    clauses.extend(f"contains(Name,{quote(part)})" for part in search.name_contains)
    if search.sensing_from is not None:
        clauses.append(f"ContentDate/Start ge {format_timestamp(search.sensing_from)}")
    if search.published_from is not None:
        clauses.append(f"PublicationDate ge {format_timestamp(search.published_from)}")
    if search.published_to is not None:
        clauses.append(f"PublicationDate lt {format_timestamp(search.published_to)}")
    if search.geometry:
        area = quote(f"SRID=4326;{search.geometry}")
        clauses.append(f"OData.CSC.Intersects(area=geography{area})")
    return " and ".join(clauses)


def query_params(search: Search, page_size: int) -> dict[str, str]:
    """Query-string parameters of the first page of a search."""
    return {
        "$filter": build_filter(search),
        "$orderby": ORDER_BY,
        "$top": str(page_size),
        "$expand": "Attributes",
    }
