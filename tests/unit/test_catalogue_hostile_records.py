"""Hostile catalogue records are skipped as malformed, never raised past the page."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hrwsi.catalogue import records
from hrwsi.domain import errors
from hrwsi.testing.catalogue_server import fixture_text, generate_s2_l1c


def _record(**changes: Any) -> dict[str, Any]:
    return dict(generate_s2_l1c(1, seed=40)[0], **changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"S3Path": "/eodata/a\x00b.SAFE"},
        {"S3Path": "/eodata/a\ud800b.SAFE"},
        {"Id": "abc\x00"},
        {"Id": json.loads('"\\udfff"')},
    ],
)
def test_text_postgresql_cannot_store_is_bad_text(changes: dict[str, Any]) -> None:
    """A NUL or a lone surrogate in a stored field is a bad_text record (PostgreSQL would
    reject the whole page's insert)."""
    with pytest.raises(errors.MalformedRecord) as caught:
        records.normalise(_record(**changes))
    assert caught.value.reason == "bad_text"


def test_ordinary_unicode_is_kept() -> None:
    """Non-ASCII text that PostgreSQL stores (accents, CJK) is not rejected."""
    product = records.normalise(_record(S3Path="/eodata/été/東京.SAFE"))
    assert product.s3_path == "/eodata/été/東京.SAFE"


@pytest.mark.parametrize(
    "text",
    ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00.000+01:00", "9999-12-31T23:59:59-01:00"],
)
def test_timestamps_out_of_range_in_utc_are_value_errors(text: str) -> None:
    """A timestamp whose UTC value falls outside years 1..9999 is a ValueError (a skipped
    record), not an OverflowError that ends the harvest pass."""
    with pytest.raises(ValueError):
        records.parse_timestamp(text)


def test_a_record_published_out_of_range_is_bad_timestamp() -> None:
    """Such a PublicationDate makes the record bad_timestamp."""
    with pytest.raises(errors.MalformedRecord) as caught:
        records.normalise(_record(PublicationDate="0001-01-01T00:00:00.000+01:00"))
    assert caught.value.reason == "bad_timestamp"


@pytest.mark.parametrize("value", ["1e999", "0", "-3", "176", "12.5", "true"])
def test_impossible_relative_orbits_are_bad_attribute(value: str) -> None:
    """An infinite (OverflowError before), out-of-range, fractional or boolean
    relativeOrbitNumber is a bad_attribute record, not a crash nor a bogus location."""
    body = json.loads(fixture_text("cdsedocs_s1_grdh_entity_expand_attributes_ms3.json"))
    for item in body["Attributes"]:
        if item["Name"] == "relativeOrbitNumber":
            item["Value"] = json.loads(value)
    with pytest.raises(errors.MalformedRecord) as caught:
        records.normalise(body)
    assert caught.value.reason == "bad_attribute"


@pytest.mark.parametrize(("value", "location"), [("1", "1"), ("175", "175"), ('"25"', "25")])
def test_possible_relative_orbits_are_kept(value: str, location: str) -> None:
    """Orbits 1..175, as numbers or numeric strings, are the S1 location."""
    body = json.loads(fixture_text("cdsedocs_s1_grdh_entity_expand_attributes_ms3.json"))
    for item in body["Attributes"]:
        if item["Name"] == "relativeOrbitNumber":
            item["Value"] = json.loads(value)
    assert records.normalise(body).location == location
