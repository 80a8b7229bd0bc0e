"""CDSE OData product records (JSON objects) into :class:`products.CatalogueProduct` values.

A record that cannot be used raises :class:`errors.MalformedRecord` with a short ``reason``
(``not_an_object``, ``missing_field``, ``bad_text``, ``bad_timestamp``, ``bad_name``,
``bad_attribute``): the caller logs and skips it and keeps the rest of its page. A text
PostgreSQL cannot store (a NUL character, a lone surrogate) is ``bad_text``: stored, it would
fail its whole page's transaction on every retry and block the query's watermark for good.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hrwsi.domain import errors, products

# 3 or 6 (or any up to 9) fractional digits, 'Z', '+00:00', '+0000' or no zone (read as UTC:
# the catalogue has served UTC without a zone, and reads zone-less query times as UTC).
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
# Lengths of 2024-06-04T11:01:00.495Z, …00.494767Z, …00+00:00, …00.495+00:00, …00.494767+00:00
_FAST_LENGTHS = frozenset({24, 27, 25, 29, 32})


def parse_timestamp(text: str) -> datetime:
    """An OData timestamp as an aware UTC datetime; ValueError when it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a timestamp string")
    if len(text) in _FAST_LENGTHS and text[4] == "-" and text[10] == "T":
        # The usual forms (3 or 6 digits, Z or +00:00) go through the C parser.
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            if stamp.tzinfo is None:
                return stamp.replace(tzinfo=UTC)
            return _utc(stamp)
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp")
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    fraction = (match[7] or "").ljust(6, "0")[:6]
    zone = match[8]
    tz: timezone = UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        tz = timezone(sign * offset)
    stamp = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
    return _utc(stamp)


def _utc(stamp: datetime) -> datetime:
    try:
        return stamp.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a year 0 in UTC.
        raise ValueError(f"{stamp.isoformat()} is out of range in UTC") from None


def format_timestamp(stamp: datetime) -> str:
    """A query timestamp as the catalogue wants it: UTC, 6 fractional digits, 'Z'."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def attribute(record: Mapping[str, Any], name: str) -> Any:
    """The value of the named entry of ``Attributes`` (only present with $expand), or None."""
    items = record.get("Attributes")
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, Mapping) and item.get("Name") == name:
            return item.get("Value")
    return None


def storable(text: str) -> bool:
    """Whether PostgreSQL can store the text: no NUL character, valid UTF-8 (no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(record: Mapping[str, Any], key: str, record_id: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise errors.MalformedRecord("missing_field", f"{key} is missing", record_id=record_id)
    if not storable(value):
        raise errors.MalformedRecord("bad_text", f"{key} {value!r}", record_id=record_id)
    return value


def _time(value: Any, key: str, record_id: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise errors.MalformedRecord("bad_timestamp", f"{key}: {exc}", record_id=record_id) from exc


def _relative_orbit(record: Mapping[str, Any], record_id: str) -> int | None:
    value = attribute(record, "relativeOrbitNumber")
    if value is None:
        return None
    try:
        # ValueType is not to be trusted (integers are served as strings at times).
        orbit = int(value)
    except (TypeError, ValueError, OverflowError):
        orbit = 0
    # Sentinel-1 repeats its ground track every 175 orbits: 0, -3, 1e999, 12.5 or true are
    # not relative orbits.
    fractional = isinstance(value, float) and not value.is_integer()
    if not 1 <= orbit <= 175 or fractional or isinstance(value, bool):
        raise errors.MalformedRecord(
            "bad_attribute", f"relativeOrbitNumber {value!r}", record_id=record_id
        )
    return orbit


def normalise(record: Any) -> products.CatalogueProduct:
    """One record of a page's ``value`` list, checked and normalised."""
    if not isinstance(record, Mapping):
        raise errors.MalformedRecord("not_an_object", f"got {type(record).__name__}")
    raw_id = record.get("Id")
    record_id = raw_id if isinstance(raw_id, str) else ""
    if not record_id:
        raise errors.MalformedRecord("missing_field", "Id is missing")
    if not storable(record_id):
        raise errors.MalformedRecord("bad_text", f"Id {record_id!r}")
    name = _text(record, "Name", record_id)
    s3_path = _text(record, "S3Path", record_id)
    publication = _time(record.get("PublicationDate"), "PublicationDate", record_id)
    content = record.get("ContentDate")
    if not isinstance(content, Mapping):
        raise errors.MalformedRecord("missing_field", "ContentDate is missing", record_id=record_id)
    sensing = _time(content.get("Start"), "ContentDate/Start", record_id)
    try:
        parsed = products.parse_name(name)
        where = products.location(parsed, _relative_orbit(record, record_id))
    except errors.ProductNameError as exc:
        raise errors.MalformedRecord("bad_name", exc.reason, record_id=record_id) from exc
    return products.CatalogueProduct(
        id=record_id,
        name=name,
        s3_path=s3_path,
        publication_date=publication,
        sensing_start=sensing,
        online=bool(record.get("Online", True)),
        parsed=parsed,
        location=where,
    )
