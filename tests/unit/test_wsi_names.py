"""HR-WSI product names: built, parsed back to type, tile and date; GRD slice facts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from hrwsi.domain import errors, wsi_names

STAMP = datetime(2024, 3, 7, 10, 30, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "platform", "expected"),
    [
        ("S2_CC_L2B", "S2A", "CLMS_WSI_CC_020m_T32TLR_20240307T103021_S2A_V100"),
        ("S2_FSC_L2B", "S2B", "CLMS_WSI_FSC_020m_T32TLR_20240307T103021_S2B_V200"),
        ("S2_WICS2_L2B", "S2A", "CLMS_WSI_WIC_020m_T32TLR_20240307T103021_S2A_V100"),
        ("S1_WICS1_L2B", "S1A", "CLMS_WSI_WIC_060m_T32TLR_20240307T103021_S1A_V100"),
        ("S1_SWS_L2B", "S1A", "CLMS_WSI_SWS_060m_T32TLR_20240307T103021_S1A_V200"),
        ("S1_WDS_L2B", "S1C", "CLMS_WSI_WDS_060m_T32TLR_20240307T103021_S1C_V200"),
        ("GFSC_L2C", "", "CLMS_WSI_GFSC_060m_T32TLR_20240307P7D_COMB_V102"),
        ("COMB_WICS1S2", "", "CLMS_WSI_WIC_020m_T32TLR_20240307T000000P12H_COMB_V100"),
    ],
)
def test_build_and_parse_round_trip(code: str, platform: str, expected: str) -> None:
    """Each product type's name is built as HR-WSI writes it and parses back."""
    stamp = STAMP.replace(hour=10)
    name = wsi_names.build(code, "T32TLR", stamp, platform=platform)
    assert name == expected
    parsed = wsi_names.parse(name + "_FSCOG.tif")
    assert parsed.product_type == code
    assert parsed.tile == "32TLR"
    assert parsed.day == date(2024, 3, 7)


def test_wics1s2_half_day_and_gfsc_period() -> None:
    """WICS1S2 stamps the half day; GFSC carries its aggregation period."""
    pm = wsi_names.build("COMB_WICS1S2", "32TLR", STAMP.replace(hour=15))
    assert "T120000P12H" in pm
    assert wsi_names.parse(pm).stamp.hour == 12
    gfsc = wsi_names.parse("CLMS_WSI_GFSC_060m_T32VML_20180401P7D_COMB_V102")
    assert gfsc.period_days == 7 and gfsc.tile == "32VML"


def test_sig0_name_carries_orbit() -> None:
    """The SIG0 name round-trips with its relative orbit and stop time."""
    stop = STAMP.replace(second=46)
    name = wsi_names.build_sig0("32TLR", STAMP, stop, "069690", 66, "S1A")
    assert name == "SIG0_20240307T103021_20240307T103046_069690_066_T32TLR_10m_S1AIWGRDH_ENVEO.tif"
    parsed = wsi_names.parse(name)
    assert (parsed.product_type, parsed.relative_orbit, parsed.sensing_stop) == (
        "S1_NRB_L2A",
        66,
        stop,
    )


@pytest.mark.parametrize(
    "bad",
    [
        "CLMS_WSI_FSC_020m_T32TLR_20240307T103021_S1A_V200",  # FSC is not from S1
        "CLMS_WSI_FSC_020m_T32TLR_20241307T103021_S2A_V200",  # month 13
        "CLMS_WSI_XYZ_020m_T32TLR_20240307T103021_S2A_V200",
        "S2B_MSIL1C_20240102T103529_N0510_R108_T31TCH_20240102T113029.SAFE",
        "SIG0_20240307T103021_20240307T103046_069690_200_T32TLR_10m_S1AIWGRDH_ENVEO.tif",
        "",
    ],
)
def test_parse_rejects(bad: str) -> None:
    """Names that are not HR-WSI products raise ProductNameError."""
    with pytest.raises(errors.ProductNameError):
        wsi_names.parse(bad)


def test_build_rejects_wrong_platform() -> None:
    with pytest.raises(ValueError, match="S2 platform"):
        wsi_names.build("S2_FSC_L2B", "32TLR", STAMP, platform="S1A")
    with pytest.raises(ValueError, match="MGRS"):
        wsi_names.build("S2_FSC_L2B", "32TL", STAMP, platform="S2A")


def test_grd_slice_from_the_shipped_fixture_name() -> None:
    """A real GRD name gives start, stop, datatake and (S1A formula) orbit 25."""
    name = "S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE"
    s = wsi_names.grd_slice(name, "T50JLL")
    assert s.relative_orbit == 25
    assert s.sensing_stop == datetime(2024, 6, 4, 11, 1, 31, tzinfo=UTC)
    assert (s.datatake, s.tile, s.day) == ("069690", "50JLL", date(2024, 6, 4))
    assert wsi_names.grd_slice(name, "50JLL", relative_orbit=7).relative_orbit == 7
    with pytest.raises(errors.ProductNameError):
        wsi_names.grd_slice(
            "S1A_IW_SLC__1SSV_20160107T110059_20160107T110126_009387_00D96C_5CE9.SAFE", "50JLL"
        )
