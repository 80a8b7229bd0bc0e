"""Sentinel product names and catalogue products, as plain values.

Names are parsed with anchored regular expressions, never ``split('_')``: a Sentinel-1 SLC
name holds a double underscore (``S1A_IW_SLC__1SDV_…``) and Sentinel-1 ``_COG`` siblings add a
suffix. Supported:

* Sentinel-2 Level-1C and Level-2A:
  ``S2B_MSIL1C_20240102T103529_N0510_R108_T31TCH_20240102T113029.SAFE``
* Sentinel-1 GRD and SLC (any mode, polarisation and class), plain or ``_COG``:
  ``S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE``

Anything else (AUX files, orbit files, other levels) raises :class:`errors.ProductNameError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from hrwsi.domain import errors

Mission = Literal["S1", "S2"]

_STAMP = r"\d{8}T\d{6}"
_S2 = re.compile(
    rf"^(?P<satellite>S2[A-D])_MSI(?P<level>L1C|L2A)_(?P<start>{_STAMP})_N(?P<baseline>\d{{4}})"
    rf"_R(?P<orbit>\d{{3}})_T(?P<tile>\d{{2}}[A-Z]{{3}})_(?P<generated>{_STAMP})(?:\.SAFE)?$"
)
_S1 = re.compile(
    rf"^(?P<satellite>S1[A-D])_(?P<mode>IW|EW|WV|S[1-6])_(?P<kind>GRD|SLC)(?P<resolution>[FHM_])"
    rf"_(?P<level>[0-2])(?P<klass>[SA])(?P<polarisation>SH|SV|DH|DV|HH|VV|HV|VH)"
    rf"_(?P<start>{_STAMP})_(?P<stop>{_STAMP})_(?P<absolute_orbit>\d{{6}})"
    rf"_(?P<datatake>[0-9A-F]{{6}})_(?P<crc>[0-9A-F]{{4}})(?P<cog>_COG)?(?:\.SAFE)?$"
)

# Sentinel-1A repeats its ground track every 175 orbits; the offset checks against real
# records (absolute 54172 -> relative 25, 14014 -> 117, 49683 -> 86).
S1A_CYCLE = 175
S1A_OFFSET = 73


@dataclass(frozen=True)
class ProductName:
    """What a Sentinel product name says.

    ``product_type`` is the catalogue's ``productType`` attribute value (``S2MSI1C``,
    ``IW_GRDH_1S``, ``IW_SLC__1S-COG``); ``data_type`` is what routines name as their input
    type (``MSIL1C``, ``L2A`` for S2 Level-2A as in HR-WSI v1, ``GRD``/``SLC`` for S1).
    ``tile`` is the MGRS tile without its ``T`` (S2 only); ``relative_orbit`` is read from the
    name for S2 and is ``None`` for S1 (the name does not carry it, see :func:`s1_location`).
    """

    name: str
    mission: Mission
    satellite: str
    product_type: str
    data_type: str
    level: str
    sensing_start: datetime
    tile: str | None
    relative_orbit: int | None
    absolute_orbit: int | None
    cog: bool = False

    @property
    def measurement_day(self) -> int:
        """The sensing day as the v1 integer ``YYYYMMDD``."""
        start = self.sensing_start
        return start.year * 10000 + start.month * 100 + start.day


def _stamp(name: str, text: str) -> datetime:
    # Slicing beats strptime by ~10x; the regex already checked the digits.
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[9:11]),
            int(text[11:13]),
            int(text[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        raise errors.ProductNameError(name, f"{text!r} is not a valid date and time") from None


def parse_name(name: str) -> ProductName:
    """Parse a Sentinel-1 or Sentinel-2 product name; raise ProductNameError otherwise."""
    if not isinstance(name, str) or not name:
        raise errors.ProductNameError(str(name), "empty name")
    if match := _S2.match(name):
        level = match["level"]
        start = _stamp(name, match["start"])
        _stamp(name, match["generated"])
        orbit = int(match["orbit"])
        if not 1 <= orbit <= 143:
            raise errors.ProductNameError(name, f"relative orbit R{orbit:03d} is not in 1..143")
        return ProductName(
            name=name,
            mission="S2",
            satellite=match["satellite"],
            product_type="S2MSI1C" if level == "L1C" else "S2MSI2A",
            data_type="MSIL1C" if level == "L1C" else "L2A",
            level=level,
            sensing_start=start,
            tile=match["tile"],
            relative_orbit=orbit,
            absolute_orbit=None,
        )
    if match := _S1.match(name):
        kind, resolution = match["kind"], match["resolution"]
        if (kind == "SLC") != (resolution == "_"):
            raise errors.ProductNameError(
                name, "SLC names carry '_' as resolution and GRD names F, H or M"
            )
        start = _stamp(name, match["start"])
        stop = _stamp(name, match["stop"])
        if stop < start:
            raise errors.ProductNameError(name, "sensing stop is before sensing start")
        cog = match["cog"] is not None
        product_type = f"{match['mode']}_{kind}{resolution}_{match['level']}{match['klass']}"
        return ProductName(
            name=name,
            mission="S1",
            satellite=match["satellite"],
            product_type=product_type + ("-COG" if cog else ""),
            data_type=kind,
            level=match["level"],
            sensing_start=start,
            tile=None,
            relative_orbit=None,
            absolute_orbit=int(match["absolute_orbit"]),
            cog=cog,
        )
    raise errors.ProductNameError(name, "not a Sentinel-2 L1C/L2A nor a Sentinel-1 GRD/SLC name")


def s1a_relative_orbit(absolute_orbit: int) -> int:
    """Sentinel-1A relative orbit from its absolute orbit (1..175)."""
    return (absolute_orbit - S1A_OFFSET) % S1A_CYCLE + 1


def location(parsed: ProductName, relative_orbit_attribute: int | None = None) -> str:
    """The v1 ``input.tile`` value: the MGRS tile (S2) or the relative orbit as text (S1).

    For S1 the ``relativeOrbitNumber`` catalogue attribute wins; without it the S1A orbit
    formula applies; other S1 satellites without the attribute raise ProductNameError.
    """
    if parsed.mission == "S2":
        assert parsed.tile is not None
        return parsed.tile
    if relative_orbit_attribute is not None:
        return str(relative_orbit_attribute)
    if parsed.satellite == "S1A" and parsed.absolute_orbit is not None:
        return str(s1a_relative_orbit(parsed.absolute_orbit))
    raise errors.ProductNameError(
        parsed.name, "no relativeOrbitNumber attribute and no orbit formula for this satellite"
    )


@dataclass(frozen=True)
class CatalogueProduct:
    """One catalogue record, normalised: what a harvest stores as an input.

    Times are timezone-aware UTC. ``location`` is the v1 ``input.tile`` value.
    """

    id: str
    name: str
    s3_path: str
    publication_date: datetime
    sensing_start: datetime
    online: bool
    parsed: ProductName
    location: str

    @property
    def mission(self) -> Mission:
        return self.parsed.mission

    @property
    def measurement_day(self) -> int:
        return self.parsed.measurement_day
