"""Sentinel-1 / Sentinel-2 product names: every recorded name, and generated ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrwsi.domain import errors, products
from hrwsi.testing.catalogue_server import recorded_records

RECORDED = recorded_records()
SENTINEL_NAMES = [
    r["Name"]
    for r in RECORDED
    if "_MSIL" in r["Name"] or "_GRD" in r["Name"] or "_SLC" in r["Name"]
]
OTHER_NAMES = [r["Name"] for r in RECORDED if r["Name"] not in SENTINEL_NAMES]


def test_fixtures_hold_both_kinds_of_names() -> None:
    """The recorded bodies give S2 L1C, S1 GRD and S1 SLC names, plus AUX names to reject."""
    assert any("_MSIL1C_" in n for n in SENTINEL_NAMES)
    assert any("_GRDH_" in n for n in SENTINEL_NAMES)
    assert any("_SLC__" in n for n in SENTINEL_NAMES)
    assert len(OTHER_NAMES) >= 40


@pytest.mark.parametrize("record", RECORDED, ids=lambda r: r["Name"][:70])
def test_every_recorded_name_parses_or_is_reported(record: dict) -> None:
    """Each recorded product name parses consistently with its record, or raises
    ProductNameError (AUX/orbit files), never anything else."""
    name = record["Name"]
    if name not in SENTINEL_NAMES:
        with pytest.raises(errors.ProductNameError):
            products.parse_name(name)
        return
    parsed = products.parse_name(name)
    start = datetime.fromisoformat(record["ContentDate"]["Start"].replace("Z", "+00:00"))
    assert parsed.sensing_start == start.replace(microsecond=0)
    assert f"/{start:%Y/%m/%d}/" in record["S3Path"]
    assert parsed.measurement_day == int(f"{start:%Y%m%d}")
    if parsed.mission == "S2":
        assert parsed.tile == name.split("_")[5][1:]
        assert record["S3Path"].endswith(name)
    else:
        assert parsed.tile is None and parsed.absolute_orbit is not None


def test_s1_slc_double_underscore() -> None:
    """An SLC name (double underscore) parses with its product type and orbit."""
    parsed = products.parse_name(
        "S1A_IW_SLC__1SSV_20160107T110059_20160107T110126_009387_00D96C_5CE9.SAFE"
    )
    assert (parsed.mission, parsed.satellite, parsed.data_type) == ("S1", "S1A", "SLC")
    assert parsed.product_type == "IW_SLC__1S"
    assert parsed.absolute_orbit == 9387
    assert parsed.measurement_day == 20160107


def test_s1_cog_sibling() -> None:
    """A _COG sibling parses and says so in its product type."""
    parsed = products.parse_name(
        "S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E_COG.SAFE"
    )
    assert parsed.cog and parsed.product_type == "IW_GRDH_1S-COG"


@pytest.mark.parametrize(("absolute", "relative"), [(54172, 25), (14014, 117), (49683, 86)])
def test_s1a_relative_orbit_formula(absolute: int, relative: int) -> None:
    """The S1A relative orbit formula matches the three real records."""
    assert products.s1a_relative_orbit(absolute) == relative


def test_s1_location_prefers_attribute_and_needs_one_for_s1b() -> None:
    """For S1 the relativeOrbitNumber attribute wins; S1B without it is an error."""
    s1a = products.parse_name(
        "S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE"
    )
    assert products.location(s1a) == "25"
    assert products.location(s1a, 99) == "99"
    s1b = products.parse_name(
        "S1B_IW_GRDH_1SDV_20210604T110100_20210604T110131_027172_069690_E33E.SAFE"
    )
    with pytest.raises(errors.ProductNameError):
        products.location(s1b)
    assert products.location(s1b, 12) == "12"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "S2B_MSIL1C_20240102T103529_N0510_R108_T31TCH.SAFE",
        "S2B_MSIL1C_20241302T103529_N0510_R108_T31TCH_20240102T113029.SAFE",
        "S2B_MSIL1C_20240102T103529_N0510_R000_T31TCH_20240102T113029.SAFE",
        "S2B_MSIL3A_20240102T103529_N0510_R108_T31TCH_20240102T113029.SAFE",
        "S1A_IW_SLCH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE",
        "S1A_IW_GRD__1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE",
        "S1A_IW_GRDH_1SDV_20240604T110100_20240603T110131_054172_069690_E33E.SAFE",
        "S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE.zip",
    ],
)
def test_bad_names_are_rejected(name: str) -> None:
    """Names that break the rules (date, orbit, level, resolution, order) raise ProductNameError."""
    with pytest.raises(errors.ProductNameError):
        products.parse_name(name)


_times = st.datetimes(min_value=datetime(2014, 4, 3), max_value=datetime(2040, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
_tiles = st.from_regex(r"\A[0-6][0-9][C-X][A-Z]{2}\Z")


@given(
    satellite=st.sampled_from(["S2A", "S2B", "S2C"]),
    level=st.sampled_from(["L1C", "L2A"]),
    start=_times,
    baseline=st.integers(0, 9999),
    orbit=st.integers(1, 143),
    tile=_tiles,
    safe=st.booleans(),
)
def test_generated_s2_names_round_trip(
    satellite: str, level: str, start: datetime, baseline: int, orbit: int, tile: str, safe: bool
) -> None:
    """Any well-formed S2 name gives back the fields it was built from."""
    generated = start + timedelta(hours=1)
    name = (
        f"{satellite}_MSI{level}_{start:%Y%m%dT%H%M%S}_N{baseline:04d}_R{orbit:03d}_T{tile}_"
        f"{generated:%Y%m%dT%H%M%S}" + (".SAFE" if safe else "")
    )
    parsed = products.parse_name(name)
    assert (parsed.mission, parsed.satellite, parsed.level) == ("S2", satellite, level)
    assert (parsed.tile, parsed.relative_orbit, parsed.sensing_start) == (tile, orbit, start)
    assert parsed.measurement_day == int(start.strftime("%Y%m%d"))
    assert products.location(parsed) == tile


@given(
    satellite=st.sampled_from(["S1A", "S1B", "S1C"]),
    mode=st.sampled_from(["IW", "EW", "WV", "S3"]),
    kind=st.sampled_from(["GRDH", "GRDM", "GRDF", "SLC_"]),
    polarisation=st.sampled_from(["SV", "DV", "SH", "DH"]),
    start=_times,
    seconds=st.integers(0, 600),
    absolute=st.integers(0, 999_999),
    cog=st.booleans(),
)
def test_generated_s1_names_round_trip(
    satellite: str,
    mode: str,
    kind: str,
    polarisation: str,
    start: datetime,
    seconds: int,
    absolute: int,
    cog: bool,
) -> None:
    """Any well-formed S1 GRD/SLC name (with or without _COG) gives back its fields."""
    stop = start + timedelta(seconds=seconds)
    name = (
        f"{satellite}_{mode}_{kind}_1S{polarisation}_{start:%Y%m%dT%H%M%S}_"
        f"{stop:%Y%m%dT%H%M%S}_{absolute:06d}_0A1B2C_E33E" + ("_COG" if cog else "") + ".SAFE"
    )
    parsed = products.parse_name(name)
    assert (parsed.mission, parsed.satellite, parsed.cog) == ("S1", satellite, cog)
    assert parsed.data_type == kind[:3]
    assert parsed.absolute_orbit == absolute and parsed.sensing_start == start
    assert parsed.product_type.startswith(f"{mode}_{kind}_1S")


@given(st.text(max_size=90))
def test_arbitrary_text_never_crashes(text: str) -> None:
    """Any text either parses or raises ProductNameError, nothing else."""
    try:
        products.parse_name(text)
    except errors.ProductNameError as exc:
        assert exc.reason
