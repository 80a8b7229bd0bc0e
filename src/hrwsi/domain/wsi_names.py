"""HR-WSI product names, built and parsed back to product type, tile and date.

The HR-WSI convention (as the HR-WSI production system writes them)::

    CLMS_WSI_<PRODUCT>_<res>_T<tile>_<YYYYMMDDTHHMMSS>_<platform>_<version>  (CC FSC WIC SWS WDS)
    CLMS_WSI_GFSC_060m_T<tile>_<YYYYMMDD>P<n>D_COMB_<version>                (gap-filled)
    CLMS_WSI_WIC_020m_T<tile>_<YYYYMMDD>T<HH>0000P12H_COMB_<version>         (WICS1 + WICS2)

``WIC`` is three product types: 020 m from a Sentinel-2 platform (WICS2), 060 m from a
Sentinel-1 platform (WICS1), and the 12-hour ``COMB`` combination (WICS1S2). The SIG0
backscatter keeps the processor's own name, which carries the relative orbit::

    SIG0_<start>_<stop>_<datatake>_<orbit:03d>_T<tile>_10m_<S1x>IWGRDH_ENVEO.tif

Sentinel-1 GRD slices (the SIG0 inputs) are read from their catalogue names with
:func:`grd_slice`: the name gives start and stop; the relative orbit comes from the
catalogue's ``relativeOrbitNumber`` (or the S1A formula), the tile from the harvest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from hrwsi.domain import errors, products

# Product type code -> (name product, resolution, platform family or None for COMB).
CODES: Final[dict[str, tuple[str, str, str | None]]] = {
    "S2_CC_L2B": ("CC", "020m", "S2"),
    "S2_FSC_L2B": ("FSC", "020m", "S2"),
    "S2_WICS2_L2B": ("WIC", "020m", "S2"),
    "S1_WICS1_L2B": ("WIC", "060m", "S1"),
    "S1_SWS_L2B": ("SWS", "060m", "S1"),
    "S1_WDS_L2B": ("WDS", "060m", "S1"),
    "GFSC_L2C": ("GFSC", "060m", None),
    "COMB_WICS1S2": ("WIC", "020m", None),
}
SIG0_CODE: Final = "S1_NRB_L2A"
DEFAULT_VERSIONS: Final[dict[str, str]] = {
    "S2_CC_L2B": "V100",
    "S2_FSC_L2B": "V200",
    "S2_WICS2_L2B": "V100",
    "S1_WICS1_L2B": "V100",
    "S1_SWS_L2B": "V200",
    "S1_WDS_L2B": "V200",
    "GFSC_L2C": "V102",
    "COMB_WICS1S2": "V100",
}

_TILE = r"T(?P<tile>\d{2}[A-Z]{3})"
_VERSION = r"(?P<version>V\d{3})"
_TAIL = r"(?P<tail>(?:_[A-Za-z0-9-]+)*)(?P<ext>\.[A-Za-z0-9]+)?"
_SENSED = re.compile(
    rf"^CLMS_WSI_(?P<product>CC|FSC|WIC|SWS|WDS)_(?P<res>\d{{3}}m)_{_TILE}"
    rf"_(?P<stamp>\d{{8}}T\d{{6}})_(?P<platform>S[12][A-D])_{_VERSION}{_TAIL}$"
)
_GFSC = re.compile(
    rf"^CLMS_WSI_GFSC_(?P<res>060m)_{_TILE}_(?P<day>\d{{8}})P(?P<days>\d{{1,2}})D_COMB_{_VERSION}{_TAIL}$"
)
_WICS1S2 = re.compile(
    rf"^CLMS_WSI_WIC_(?P<res>020m)_{_TILE}_(?P<day>\d{{8}})T(?P<half>00|12)0000P12H_COMB_{_VERSION}{_TAIL}$"
)
_SIG0 = re.compile(
    rf"^SIG0_(?P<start>\d{{8}}T\d{{6}})_(?P<stop>\d{{8}}T\d{{6}})_(?P<datatake>[0-9A-F]{{6}})"
    rf"_(?P<orbit>\d{{3}})_{_TILE}_10m_(?P<platform>S1[A-D])IWGRDH_ENVEO(?:\.tif)?$"
)
_GRD_STOP = re.compile(r"^S1[A-D]_[A-Z0-9]{2}_GRD[FHM]_\d[SA][A-Z]{2}_\d{8}T\d{6}_(\d{8}T\d{6})_")


@dataclass(frozen=True)
class WsiName:
    """What an HR-WSI product name says.

    ``stamp`` is the sensing time (CC, FSC, WIC, SWS, WDS, SIG0), the start of the half day
    (WICS1S2) or midnight of the composite day (GFSC); ``day`` is the measurement day.
    """

    name: str
    product_type: str
    tile: str
    stamp: datetime
    platform: str
    version: str
    relative_orbit: int | None = None
    sensing_stop: datetime | None = None
    period_days: int | None = None

    @property
    def day(self) -> date:
        return self.stamp.date()


def _stamp(name: str, text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise errors.ProductNameError(name, f"{text!r} is not a valid date and time") from None


def _day(name: str, text: str) -> datetime:
    return _stamp(name, text + "T000000")


def _code_of(product: str, resolution: str, platform: str) -> str:
    family = platform[:2]
    for code, (prod, res, fam) in CODES.items():
        if prod == product and res == resolution and fam == family:
            return code
    raise KeyError(product)


def parse(name: str) -> WsiName:
    """Parse an HR-WSI product (or SIG0) name; raise ProductNameError otherwise."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    if match := _SENSED.match(base):
        try:
            code = _code_of(match["product"], match["res"], match["platform"])
        except KeyError:
            raise errors.ProductNameError(
                name, f"no {match['product']} product at {match['res']} from {match['platform']}"
            ) from None
        return WsiName(
            base,
            code,
            match["tile"],
            _stamp(name, match["stamp"]),
            match["platform"],
            match["version"],
        )
    if match := _GFSC.match(base):
        return WsiName(
            base,
            "GFSC_L2C",
            match["tile"],
            _day(name, match["day"]),
            "COMB",
            match["version"],
            period_days=int(match["days"]),
        )
    if match := _WICS1S2.match(base):
        stamp = _day(name, match["day"]).replace(hour=int(match["half"]))
        return WsiName(base, "COMB_WICS1S2", match["tile"], stamp, "COMB", match["version"])
    if match := _SIG0.match(base):
        orbit = int(match["orbit"])
        if not 1 <= orbit <= 175:
            raise errors.ProductNameError(name, f"relative orbit {orbit} is not in 1..175")
        start, stop = _stamp(name, match["start"]), _stamp(name, match["stop"])
        if stop < start:
            raise errors.ProductNameError(name, "sensing stop is before sensing start")
        return WsiName(base, SIG0_CODE, match["tile"], start, match["platform"], "", orbit, stop)
    raise errors.ProductNameError(name, "not an HR-WSI product name")


def _tile(tile: str) -> str:
    cleaned = tile.upper().removeprefix("T")
    if not re.fullmatch(r"\d{2}[A-Z]{3}", cleaned):
        raise ValueError(f"{tile!r} is not an MGRS tile such as 32TLR")
    return cleaned


def build(
    product_type: str,
    tile: str,
    stamp: datetime,
    *,
    platform: str = "",
    version: str | None = None,
    period_days: int = 7,
) -> str:
    """The HR-WSI name of a product (not SIG0: see :func:`build_sig0`).

    ``platform`` (``S2A``, ``S1C``...) is required for sensed products; ``stamp`` is the
    sensing time, the composite day (GFSC) or any time of the half day (WICS1S2).
    """
    if product_type not in CODES:
        raise ValueError(f"unknown HR-WSI product type {product_type!r}")
    product, res, family = CODES[product_type]
    version = version or DEFAULT_VERSIONS[product_type]
    if not re.fullmatch(r"V\d{3}", version):
        raise ValueError(f"version {version!r} is not V followed by 3 digits")
    t = _tile(tile)
    stamp = stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    if product_type == "GFSC_L2C":
        return f"CLMS_WSI_GFSC_{res}_T{t}_{stamp:%Y%m%d}P{period_days}D_COMB_{version}"
    if product_type == "COMB_WICS1S2":
        half = "00" if stamp.hour < 12 else "12"
        return f"CLMS_WSI_WIC_{res}_T{t}_{stamp:%Y%m%d}T{half}0000P12H_COMB_{version}"
    if not re.fullmatch(r"S[12][A-D]", platform) or platform[:2] != family:
        raise ValueError(f"{product_type} needs a {family} platform such as {family}A")
    return f"CLMS_WSI_{product}_{res}_T{t}_{stamp:%Y%m%dT%H%M%S}_{platform}_{version}"


def build_sig0(
    tile: str, start: datetime, stop: datetime, datatake: str, relative_orbit: int, platform: str
) -> str:
    """The SIG0 backscatter name the HR-WSI processor writes."""
    if not 1 <= relative_orbit <= 175:
        raise ValueError(f"relative orbit {relative_orbit} is not in 1..175")
    if not re.fullmatch(r"S1[A-D]", platform):
        raise ValueError(f"{platform!r} is not a Sentinel-1 platform")
    if not re.fullmatch(r"[0-9A-F]{6}", datatake):
        raise ValueError(f"datatake {datatake!r} is not 6 hexadecimal digits")
    return (
        f"SIG0_{start.astimezone(UTC):%Y%m%dT%H%M%S}_{stop.astimezone(UTC):%Y%m%dT%H%M%S}"
        f"_{datatake}_{relative_orbit:03d}_T{_tile(tile)}_10m_{platform}IWGRDH_ENVEO.tif"
    )


@dataclass(frozen=True)
class GrdSlice:
    """The facts ``pair_slices`` needs from one Sentinel-1 GRD slice over one tile."""

    name: str
    platform: str
    tile: str
    relative_orbit: int
    sensing_start: datetime
    sensing_stop: datetime
    datatake: str

    @property
    def day(self) -> date:
        return self.sensing_start.date()


def grd_slice(name: str, tile: str, relative_orbit: int | None = None) -> GrdSlice:
    """A GRD slice's facts from its catalogue name, for one tile it covers.

    ``relative_orbit`` is the catalogue's ``relativeOrbitNumber`` attribute; without it
    the S1A formula applies (other satellites raise ProductNameError).
    """
    parsed = products.parse_name(name)
    if parsed.mission != "S1" or parsed.data_type != "GRD":
        raise errors.ProductNameError(name, "not a Sentinel-1 GRD name")
    match = _GRD_STOP.match(name)
    assert match is not None  # parse_name accepted it
    orbit = int(products.location(parsed, relative_orbit))
    datatake = name.split("_")[7]
    return GrdSlice(
        name=name,
        platform=parsed.satellite,
        tile=_tile(tile),
        relative_orbit=orbit,
        sensing_start=parsed.sensing_start,
        sensing_stop=_stamp(name, match[1]),
        datatake=datatake,
    )
