"""Catalogue records and timestamps: every recorded body, every timestamp form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hrwsi.catalogue import records
from hrwsi.domain import errors
from hrwsi.testing.catalogue_server import fixture_names, fixture_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-04T11:01:00.495Z", datetime(2024, 6, 4, 11, 1, 0, 495000, tzinfo=UTC)),
        ("2024-06-04T11:01:00.494767Z", datetime(2024, 6, 4, 11, 1, 0, 494767, tzinfo=UTC)),
        ("2024-09-12T13:34:20+00:00", datetime(2024, 9, 12, 13, 34, 20, tzinfo=UTC)),
        ("2024-09-12T13:34:20.123+00:00", datetime(2024, 9, 12, 13, 34, 20, 123000, tzinfo=UTC)),
        ("2024-09-12T13:34:20", datetime(2024, 9, 12, 13, 34, 20, tzinfo=UTC)),
        ("2024-09-12T15:34:20+02:00", datetime(2024, 9, 12, 13, 34, 20, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(text: str, expected: datetime) -> None:
    """3 or 6 fractional digits, Z, +00:00, an offset or no zone all read as the same UTC."""
    assert records.parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["", "2024-13-01T00:00:00Z", "yesterday", "2024-06-04"])
def test_bad_timestamps_raise_value_error(text: str) -> None:
    """Anything else (including the empty EvictionDate of older bodies) is a ValueError."""
    with pytest.raises(ValueError):
        records.parse_timestamp(text)


def test_format_timestamp_is_utc_with_z() -> None:
    """Query times go out in UTC with six digits and a Z, whatever zone they came in."""
    stamp = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    assert records.format_timestamp(stamp) == "2024-01-01T11:00:00.000000Z"


def _entities(body: object) -> list[object]:
    if isinstance(body, list):
        return body
    assert isinstance(body, dict)
    if "value" in body:
        return body["value"]
    if "Id" in body:
        return [body]
    return []


@pytest.mark.parametrize("filename", [n for n in fixture_names() if n.endswith(".json")])
def test_every_fixture_file_parses(filename: str) -> None:
    """Each recorded body is read record by record: a product or a MalformedRecord, never a
    crash; Sentinel-1/2 products come out with their location and measurement day."""
    body = json.loads(fixture_text(filename))
    for entity in _entities(body):
        if isinstance(entity, dict) and "Id" not in entity:
            continue  # the Attributes(...) lists: {Name, ValueType} without products
        try:
            product = records.normalise(entity)
        except errors.MalformedRecord as exc:
            assert exc.reason == "bad_name", exc
            assert "AUX" in entity["Name"] or "OPER" in entity["Name"]
            continue
        assert product.location
        assert product.publication_date.tzinfo is not None
        assert str(product.measurement_day) == product.sensing_start.strftime("%Y%m%d")


def test_s1_relative_orbit_comes_from_attributes() -> None:
    """The S1 GRD entity's location is its relativeOrbitNumber attribute (25)."""
    body = json.loads(fixture_text("cdsedocs_s1_grdh_entity_expand_attributes_us6.json"))
    product = records.normalise(body)
    assert product.location == str(records.attribute(body, "relativeOrbitNumber")) == "25"
    assert product.mission == "S1" and product.measurement_day == 20240604


def test_s2_product_fields() -> None:
    """An eodag S2 L1C record gives tile, sensing start, S3Path and publication date."""
    body = json.loads(fixture_text("eodag_cop_dataspace_s2_l1c_page_nextlink.json"))
    product = records.normalise(body["value"][0])
    assert product.location == "54PXA"
    assert product.sensing_start == datetime(2020, 8, 8, 1, 3, 11, 24000, tzinfo=UTC)
    assert product.publication_date == datetime(2023, 8, 23, 9, 26, 23, 105134, tzinfo=UTC)
    assert product.s3_path.startswith("/eodata/Sentinel-2/MSI/L1C_N0500/2020/08/08/")


def _good() -> dict:
    body = json.loads(fixture_text("eodag_cop_dataspace_s2_l1c_page_nextlink.json"))
    return dict(body["value"][0])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.pop("Id"), "missing_field"),
        (lambda r: r.pop("S3Path"), "missing_field"),
        (lambda r: r.update(PublicationDate="soon"), "bad_timestamp"),
        (lambda r: r.update(ContentDate={"Start": None}), "bad_timestamp"),
        (lambda r: r.pop("ContentDate"), "missing_field"),
        (lambda r: r.update(Name="S2A_MSIL1C_garbage.SAFE"), "bad_name"),
    ],
)
def test_malformed_records_name_their_reason(change, reason: str) -> None:
    """A record missing a field or with a bad value raises MalformedRecord with a reason."""
    record = _good()
    change(record)
    with pytest.raises(errors.MalformedRecord) as caught:
        records.normalise(record)
    assert caught.value.reason == reason


def test_bad_relative_orbit_attribute() -> None:
    """A relativeOrbitNumber that is not a number is reported as bad_attribute."""
    body = json.loads(fixture_text("cdsedocs_s1_grdh_entity_expand_attributes_ms3.json"))
    for item in body["Attributes"]:
        if item["Name"] == "relativeOrbitNumber":
            item["Value"] = "twenty"
    with pytest.raises(errors.MalformedRecord) as caught:
        records.normalise(body)
    assert caught.value.reason == "bad_attribute"


def test_not_an_object() -> None:
    """A list item that is not a JSON object is reported, not a crash."""
    with pytest.raises(errors.MalformedRecord) as caught:
        records.normalise(["S2A"])
    assert caught.value.reason == "not_an_object"
