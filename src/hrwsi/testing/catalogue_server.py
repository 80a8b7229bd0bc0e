"""A stand-in for the CDSE OData catalogue: a Starlette app served by uvicorn on 127.0.0.1.

It follows the real service's rules so the client cannot tell them apart:

* ``GET /odata/v1/Products`` with ``$filter`` (see :mod:`hrwsi.testing.odata_filter`),
  ``$orderby`` (any served date, ``Name`` or ``Id``, ``asc``/``desc``, ties broken by ``Id``),
  ``$top`` (0..1000, else 422), ``$skip`` (0..10000, else 422, in the FastAPI error shape of
  the recorded body), ``$count=true`` and ``$expand=Attributes``;
* ``@odata.nextLink`` is an absolute URL, absent on the last page **and** whenever the next
  ``$skip`` would pass the ceiling (the silent truncation the real service does);
* ``GET /odata/v1/Products(<id>)`` returns one entity (``…/$entity`` context, no ``value``).

Faults are scripted with :meth:`CatalogueStandIn.inject`: each request to ``Products`` takes
the next one (timeouts, 429 storms with ``Retry-After``, 5xx, truncated or non-JSON bodies,
an extra malformed record in a page).

Usage::

    async with CatalogueStandIn(products=generate_s2_l1c(500)) as server:
        client = ODataClient(http, server.base_url)

or ``python -m hrwsi.testing.catalogue_server --port 8765 --generate 20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import copy
import json
import random
import socket
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hrwsi.catalogue.records import format_timestamp, parse_timestamp
from hrwsi.domain import errors, products
from hrwsi.testing.odata_filter import (
    FilterError,
    Indexed,
    compile_filter,
    polygon_bbox,
)

MAX_TOP = 1000
SKIP_CEILING = 10_000
FIXTURES = "fixtures/odata"
DEMO_FIXTURE = "vudongpham_s2_l1c_n0500_value_list.json"

_ORDER_FIELDS = {
    "PublicationDate": lambda r: r.publication,
    "ContentDate/Start": lambda r: r.content_start or datetime.min.replace(tzinfo=UTC),
    "ContentDate/End": lambda r: r.content_end or datetime.min.replace(tzinfo=UTC),
    "Name": lambda r: r.name,
    "Id": lambda r: r.id,
}


# --- faults -----------------------------------------------------------------------------


@dataclass
class Fault:
    """One scripted misbehaviour, applied to the next ``times`` requests for ``Products``."""

    kind: str
    times: int = 1
    status: int = 500
    retry_after: str | None = None
    delay_s: float = 0.0
    record: dict[str, Any] | None = None

    @classmethod
    def none(cls, times: int = 1) -> Fault:
        """Answer ``times`` requests normally (to let a fault strike later in a run)."""
        return cls("none", times=times)

    @classmethod
    def timeout(cls, delay_s: float, times: int = 1) -> Fault:
        """Answer only after ``delay_s`` (longer than the client's read timeout)."""
        return cls("delay", times=times, delay_s=delay_s)

    @classmethod
    def slow(cls, delay_s: float, times: int = 1) -> Fault:
        """Answer normally after ``delay_s`` (to keep a run going for a while)."""
        return cls("slow", times=times, delay_s=delay_s)

    @classmethod
    def too_many_requests(cls, times: int = 1, retry_after: str | None = "1") -> Fault:
        """A 429 storm: ``times`` answers of 429 with ``Retry-After``."""
        return cls("status", times=times, status=429, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500, times: int = 1) -> Fault:
        return cls("status", times=times, status=status)

    @classmethod
    def truncated(cls, times: int = 1) -> Fault:
        """The real page cut in half, sent as a 200 with a matching Content-Length."""
        return cls("truncated", times=times)

    @classmethod
    def not_json(cls, times: int = 1) -> Fault:
        """An HTML error page with status 200 (what a misbehaving proxy sends)."""
        return cls("not_json", times=times)

    @classmethod
    def bad_record(cls, record: dict[str, Any], times: int = 1) -> Fault:
        """The real page with ``record`` added to its ``value`` list."""
        return cls("bad_record", times=times, record=record)


# --- records ----------------------------------------------------------------------------


def _collection_of(name: str) -> str:
    if name.startswith("S1"):
        return "SENTINEL-1"
    if name.startswith("S2"):
        return "SENTINEL-2"
    if name.startswith("S3"):
        return "SENTINEL-3"
    return ""


def _synthesised_attributes(name: str) -> list[dict[str, Any]]:
    """What ``$expand=Attributes`` shows for a record recorded without it."""
    try:
        parsed = products.parse_name(name)
    except errors.ProductNameError:
        return []
    items: list[dict[str, Any]] = [
        _attribute("productType", parsed.product_type, "String"),
        _attribute("platformSerialIdentifier", parsed.satellite[-1], "String"),
    ]
    if parsed.tile is not None:
        items.append(_attribute("tileId", parsed.tile, "String"))
    if parsed.relative_orbit is not None:
        items.append(_attribute("relativeOrbitNumber", parsed.relative_orbit, "Integer"))
    return items


def _attribute(name: str, value: Any, kind: str) -> dict[str, Any]:
    return {
        "@odata.type": f"#OData.CSC.{kind}Attribute",
        "Name": name,
        "Value": value,
        "ValueType": kind,
    }


def _footprint_bbox(record: dict[str, Any]) -> tuple[float, float, float, float] | None:
    footprint = record.get("Footprint")
    if isinstance(footprint, str) and footprint:
        try:
            return polygon_bbox(footprint.removeprefix("geography").strip("'"))
        except FilterError:
            return None
    return None


def _index(record: dict[str, Any]) -> Indexed:
    """A record prepared for filtering; its PublicationDate must be readable (ValueError)."""
    name = str(record.get("Name", ""))
    raw_content = record.get("ContentDate")
    content: dict[str, Any] = raw_content if isinstance(raw_content, dict) else {}
    attributes = record.get("Attributes")
    if not isinstance(attributes, list):
        attributes = _synthesised_attributes(name)
    return Indexed(
        record=record,
        id=str(record.get("Id", "")),
        name=name,
        collection=_collection_of(name),
        publication=parse_timestamp(record["PublicationDate"]),
        content_start=_time_or_none(content.get("Start")),
        content_end=_time_or_none(content.get("End")),
        attributes=[a for a in attributes if isinstance(a, dict)],
        bbox=_footprint_bbox(record),
    )


def _time_or_none(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def fixture_text(filename: str) -> str:
    """A recorded body shipped in ``hrwsi/testing/fixtures/odata`` (see its README)."""
    return (resources.files("hrwsi.testing") / FIXTURES / filename).read_text(encoding="utf-8")


def fixture_names() -> list[str]:
    folder = resources.files("hrwsi.testing") / FIXTURES
    return sorted(e.name for e in folder.iterdir() if e.name.endswith((".json", ".txt")))


def recorded_records() -> list[dict[str, Any]]:
    """Every product entity in the shipped recorded bodies (pages, lists and entities)."""
    found: dict[str, dict[str, Any]] = {}
    for filename in fixture_names():
        if not filename.endswith(".json"):
            continue
        body = json.loads(fixture_text(filename))
        if isinstance(body, list):
            items = body
        elif isinstance(body, dict) and isinstance(body.get("value"), list):
            items = body["value"]
        elif isinstance(body, dict) and "Id" in body and "Name" in body:
            items = [{k: v for k, v in body.items() if k != "@odata.context"}]
        else:
            items = []
        for item in items:
            if isinstance(item, dict) and "Id" in item and "PublicationDate" in item:
                found.setdefault(item["Id"], item)
    return list(found.values())


def demo_records(limit: int = 60, now: datetime | None = None) -> list[dict[str, Any]]:
    """Real S2 L1C records (Berlin, from the vudongpham fixture) re-dated to the last days.

    Each record keeps its Id, tile, orbit and time of day; its sensing date moves to one of
    the last five days (name, S3Path and ContentDate rewritten together) and it is published
    a few hours after sensing, before ``now``. Names that would collide are dropped.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    source = json.loads(fixture_text(DEMO_FIXTURE))
    chosen: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, record in enumerate(source):
        if len(chosen) >= limit:
            break
        old_start = parse_timestamp(record["ContentDate"]["Start"])
        day = now.date() - timedelta(days=i % 5 + 1)
        start = datetime.combine(day, old_start.timetz())
        published = min(start + timedelta(hours=2, minutes=i % 60), now - timedelta(minutes=1))
        old_stamp = old_start.strftime("%Y%m%dT%H%M%S")
        name = record["Name"]
        parts = name.split("_")
        if parts[2] != old_stamp:
            continue
        parts[2] = start.strftime("%Y%m%dT%H%M%S")
        parts[6] = published.strftime("%Y%m%dT%H%M%S") + ".SAFE"
        new_name = "_".join(parts)
        if new_name in names:
            continue
        names.add(new_name)
        moved = copy.deepcopy(record)
        folder = record["S3Path"].rsplit("/", 5)[0]
        moved["Name"] = new_name
        moved["S3Path"] = f"{folder}/{start:%Y/%m/%d}/{new_name}"
        moved["ContentDate"] = {"Start": format_timestamp(start), "End": format_timestamp(start)}
        moved["PublicationDate"] = format_timestamp(published)
        moved["OriginDate"] = format_timestamp(published - timedelta(minutes=8))
        moved["ModificationDate"] = format_timestamp(published + timedelta(seconds=20))
        chosen.append(moved)
    return chosen


_BANDS = "CDEFGHJKLMNPQRSTUVWX"


def _tile_pool(rng: random.Random, size: int) -> list[str]:
    pool: set[str] = set()
    while len(pool) < size:
        zone = rng.randint(1, 60)
        band = rng.choice(_BANDS[4:18])
        square = rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + rng.choice("ABCDEFGHJKLMNPQRSTUV")
        pool.add(f"{zone:02d}{band}{square}")
    return sorted(pool)


def _tile_footprint(tile: str) -> str:
    lon = -180 + (int(tile[:2]) - 1) * 6 + (ord(tile[3]) % 6)
    lat = -80 + _BANDS.index(tile[2]) * 8 + (ord(tile[4]) % 8)
    ring = [(lon, lat), (lon + 1.4, lat), (lon + 1.4, lat + 1), (lon, lat + 1), (lon, lat)]
    coordinates = ", ".join(f"{x:.4f} {y:.4f}" for x, y in ring)
    return f"geography'SRID=4326;POLYGON (({coordinates}))'"


def generate_s2_l1c(
    count: int,
    *,
    seed: int = 0,
    published_from: datetime | None = None,
    spacing: timedelta = timedelta(seconds=5),
    ties: int = 1,
    tiles: Sequence[str] | None = None,
    sensing_lag: timedelta = timedelta(hours=3),
) -> list[dict[str, Any]]:
    """``count`` synthetic S2 L1C records in the real CDSE shape, reproducible from ``seed``.

    Publication dates start at ``published_from`` (default: ``count * spacing`` before now,
    so all fall in the recent past) and advance by ``spacing`` every ``ties`` records (so
    ``ties > 1`` makes groups sharing one PublicationDate). Each record is sensed
    ``sensing_lag`` before its publication, with a unique sensing second, so names are unique.
    """
    rng = random.Random(seed)
    pool = list(tiles) if tiles else _tile_pool(rng, 400)
    if published_from is None:
        steps = (count + ties - 1) // max(ties, 1)
        published_from = datetime.now(UTC) - spacing * (steps + 1)
    out: list[dict[str, Any]] = []
    for i in range(count):
        published = published_from + spacing * (i // max(ties, 1))
        sensed = published - sensing_lag - timedelta(seconds=i % 3600)
        sensed = sensed.replace(microsecond=24000)
        tile = pool[rng.randrange(len(pool))]
        satellite = rng.choice(("S2A", "S2B", "S2C"))
        orbit = rng.randint(1, 143)
        name = (
            f"{satellite}_MSIL1C_{sensed:%Y%m%dT%H%M%S}_N0511_R{orbit:03d}_T{tile}_"
            f"{published:%Y%m%dT%H%M%S}.SAFE"
        )
        record_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        out.append(
            {
                "@odata.mediaContentType": "application/octet-stream",
                "Id": record_id,
                "Name": name,
                "ContentType": "application/octet-stream",
                "ContentLength": rng.randint(200_000_000, 900_000_000),
                "OriginDate": format_timestamp(published - timedelta(minutes=7)),
                "PublicationDate": format_timestamp(published),
                "ModificationDate": format_timestamp(published + timedelta(seconds=30)),
                "Online": True,
                "EvictionDate": "9999-12-31T23:59:59.999999Z",
                "S3Path": f"/eodata/Sentinel-2/MSI/L1C/{sensed:%Y/%m/%d}/{name}",
                "Checksum": [],
                "ContentDate": {
                    "Start": format_timestamp(sensed),
                    "End": format_timestamp(sensed),
                },
                "Footprint": _tile_footprint(tile),
                "Attributes": [
                    _attribute("productType", "S2MSI1C", "String"),
                    _attribute("tileId", tile, "String"),
                    _attribute("relativeOrbitNumber", orbit, "Integer"),
                    _attribute("cloudCover", round(rng.random() * 100, 3), "Double"),
                    _attribute("platformSerialIdentifier", satellite[-1], "String"),
                ],
            }
        )
    return out


# --- server -----------------------------------------------------------------------------


def _validation_error(name: str, value: str, limit: int | None) -> Response:
    """The FastAPI/pydantic 422 body the real service sends (recorded for ``$skip``)."""
    detail: dict[str, Any]
    if limit is None:
        detail = {
            "type": "int_parsing",
            "loc": ["query", name],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": value,
        }
    elif value.lstrip("-").isdigit() and int(value) < 0:
        detail = {
            "type": "greater_than_equal",
            "loc": ["query", name],
            "msg": "Input should be greater than or equal to 0",
            "input": value,
            "ctx": {"ge": 0},
        }
    else:
        detail = {
            "type": "less_than_equal",
            "loc": ["query", name],
            "msg": f"Input should be less than or equal to {limit}",
            "input": value,
            "ctx": {"le": limit},
        }
    return _json({"detail": [detail]}, status=422)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return Response(payload, status_code=status, media_type="application/json", headers=headers)


class _Selection:
    """The records a filter selects, in order, matched lazily: a page at ``$skip`` only
    checks the records up to ``$skip + $top + 1`` (``$count`` checks them all)."""

    def __init__(self, source: Sequence[Indexed], predicate: Callable[[Indexed], bool]) -> None:
        self._source = source
        self._predicate = predicate
        self._position = 0
        self.items: list[Indexed] = []

    def ensure(self, count: int) -> None:
        source, predicate, items = self._source, self._predicate, self.items
        while len(items) < count and self._position < len(source):
            item = source[self._position]
            self._position += 1
            if predicate(item):
                items.append(item)

    def count(self) -> int:
        self.ensure(len(self._source))
        return len(self.items)


@dataclass
class CatalogueStandIn:
    """The stand-in server; use ``async with`` (or start()/stop()) to serve on 127.0.0.1."""

    products: Iterable[dict[str, Any]] = ()
    skip_ceiling: int = SKIP_CEILING
    max_top: int = MAX_TOP
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[str] = field(default_factory=list)
    served_pages: int = 0
    faults_applied: int = 0

    def __post_init__(self) -> None:
        self._items: list[Indexed] = []
        self._keys: list[tuple[datetime, str]] = []
        self._faults: list[Fault] = []
        self._cache: OrderedDict[tuple[str, str], _Selection] = OrderedDict()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.add_products(self.products)
        self.products = ()
        self.app = Starlette(
            routes=[
                Route("/odata/v1/Products", self._products),
                Route("/odata/v1/Products({key})", self._entity),
            ]
        )

    # -- content and faults

    def add_products(self, records: Iterable[dict[str, Any]]) -> None:
        """Serve more records (their PublicationDate must be a readable timestamp)."""
        fresh = [_index(r) for r in records]
        if not fresh:
            return
        self._items.extend(fresh)
        self._items.sort(key=lambda r: (r.publication, r.id))
        self._keys = [(r.publication, r.id) for r in self._items]
        self._cache.clear()

    @property
    def product_count(self) -> int:
        return len(self._items)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each request for Products takes the first one still pending."""
        self._faults.extend(faults)

    def clear_faults(self) -> None:
        """Forget every fault still pending."""
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        return sum(f.times for f in self._faults)

    def _next_fault(self) -> Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.times -= 1
        if fault.times <= 0:
            self._faults.pop(0)
        self.faults_applied += 1
        return fault

    # -- serving

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/odata/v1"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: without it, headers and body written apart meet
        # Nagle and delayed ACKs, and every response waits 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the catalogue stand-in did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = None
        self._task = None

    async def __aenter__(self) -> CatalogueStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _select(self, filter_text: str, order_text: str) -> _Selection:
        key = (filter_text, order_text)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        predicate, bounds = compile_filter(filter_text)
        low, high = 0, len(self._items)
        for bound in bounds:
            if bound.op in {"ge", "gt", "eq"}:
                side = bisect.bisect_left if bound.op != "gt" else bisect.bisect_right
                low = max(low, side(self._keys, (bound.value, "" if bound.op != "gt" else "~")))
            if bound.op in {"lt", "le", "eq"}:
                side = bisect.bisect_left if bound.op == "lt" else bisect.bisect_right
                high = min(high, side(self._keys, (bound.value, "" if bound.op == "lt" else "~")))
        if _is_stored_order(order_text):
            selection = _Selection(self._items[low:high], predicate)
        else:
            ordered = _ordered([r for r in self._items[low:high] if predicate(r)], order_text)
            selection = _Selection(ordered, lambda r: True)
        self._cache[key] = selection
        while len(self._cache) > 8:
            self._cache.popitem(last=False)
        return selection

    async def _products(self, request: Request) -> Response:
        self.requests.append(str(request.url))
        fault = self._next_fault()
        if fault is not None:
            early = await self._apply_fault_before(fault)
            if early is not None:
                return early
        query = request.query_params
        top_text = query.get("$top", "20")
        skip_text = query.get("$skip", "0")
        for name, text, limit in (("$top", top_text, self.max_top), ("$skip", skip_text, None)):
            if not text.lstrip("-").isdigit():
                return _validation_error(name, text, None)
            if int(text) < 0:
                return _validation_error(name, text, 0)
            if limit is not None and int(text) > limit:
                return _validation_error(name, text, limit)
        top, skip = int(top_text), int(skip_text)
        if skip > self.skip_ceiling:
            return _validation_error("$skip", skip_text, self.skip_ceiling)
        try:
            selection = self._select(query.get("$filter", ""), query.get("$orderby", ""))
        except FilterError as exc:
            return _json({"detail": {"message": f"Invalid filter: {exc}"}}, status=400)
        expand = "Attributes" in ",".join(query.getlist("$expand"))
        selection.ensure(skip + top + 1)
        page = selection.items[skip : skip + top]
        body: dict[str, Any] = {
            "@odata.context": "$metadata#Products(Attributes())" if expand else "$metadata#Products"
        }
        if query.get("$count", "").lower() == "true":
            body["@odata.count"] = selection.count()
        body["value"] = [_served(r, expand) for r in page]
        next_skip = skip + top
        if top > 0 and next_skip < len(selection.items) and next_skip <= self.skip_ceiling:
            params = [(k, v) for k, v in query.multi_items() if k != "$skip"]
            params.append(("$skip", str(next_skip)))
            base = str(request.url.replace(query=""))
            body["@odata.nextLink"] = f"{base}?{urlencode(params)}"
        if fault is not None and fault.kind == "bad_record" and fault.record is not None:
            body["value"].append(fault.record)
        self.served_pages += 1
        if fault is not None and fault.kind == "truncated":
            payload = json.dumps(body, separators=(",", ":")).encode()
            return Response(payload[: len(payload) // 2], media_type="application/json")
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
        return _json(body)

    async def _apply_fault_before(self, fault: Fault) -> Response | None:
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
            return _json({"value": []}, status=504)
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return _json({"detail": f"HTTP {fault.status}"}, status=fault.status, headers=headers)
        if fault.kind == "not_json":
            return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
        return None

    async def _entity(self, request: Request) -> Response:
        key = request.path_params["key"].strip("'")
        for item in self._items:
            if item.id == key:
                expand = "Attributes" in ",".join(request.query_params.getlist("$expand"))
                context = (
                    "$metadata#Products(Attributes())/$entity"
                    if expand
                    else ("$metadata#Products/$entity")
                )
                return _json({"@odata.context": context, **_served(item, expand)})
        return _json({"detail": "Not found"}, status=404)


def _served(item: Indexed, expand: bool) -> dict[str, Any]:
    record = {k: v for k, v in item.record.items() if k != "Attributes"}
    if expand:
        record["Attributes"] = item.attributes
    return record


def _is_stored_order(order_text: str) -> bool:
    """Whether the ordering is the one records are stored in: (PublicationDate, Id)."""
    words = order_text.split()
    return not words or words in (["PublicationDate"], ["PublicationDate", "asc"])


def _ordered(items: list[Indexed], order_text: str) -> list[Indexed]:
    if not order_text.strip():
        return items
    keys: list[tuple[str, bool]] = []
    for part in order_text.split(","):
        words = part.split()
        if not words or words[0] not in _ORDER_FIELDS:
            raise FilterError(f"cannot order by {part.strip()!r}")
        direction = words[1].lower() if len(words) > 1 else "asc"
        if direction not in {"asc", "desc"}:
            raise FilterError(f"unknown direction {direction!r}")
        keys.append((words[0], direction == "desc"))
    ordered = sorted(items, key=lambda r: r.id)
    for name, descending in reversed(keys):
        ordered.sort(key=_ORDER_FIELDS[name], reverse=descending)
    return ordered


async def _serve_forever(server: CatalogueStandIn) -> None:
    async with server:
        print(
            f"catalogue stand-in: {server.base_url} ({server.product_count} products)", flush=True
        )
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the CDSE OData catalogue stand-in.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--generate", type=int, default=0, help="synthetic S2 L1C records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo", type=int, default=0, help="re-dated real S2 L1C records")
    parser.add_argument("--recorded", action="store_true", help="every recorded record")
    args = parser.parse_args(argv)
    records: list[dict[str, Any]] = []
    if args.generate:
        records += generate_s2_l1c(args.generate, seed=args.seed)
    if args.demo:
        records += demo_records(args.demo)
    if args.recorded:
        records += recorded_records()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(CatalogueStandIn(products=records, port=args.port)))


if __name__ == "__main__":
    main()
