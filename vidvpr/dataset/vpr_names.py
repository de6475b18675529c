"""Image names of the VPR-datasets-downloader layout (gmberton), which CosPlace,
VPR-methods-evaluation and their descendants read unchanged (pure functions)::

    name = @utm_east@utm_north@utm_zone_number@utm_zone_letter@lat@lon@pano_id@tile_num
           @heading@pitch@roll@height@timestamp@note@.jpg

Evaluation code takes the position from fields 1 and 2 (``path.split("@")[1:3]``). For local
metric frames (no UTM zone) the zone and lat/lon fields are empty. ``pano_id`` is the manifest
row id with ``/`` replaced by ``~`` (so names are unique and lead back to the row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidvpr.dataset.records import ManifestRow

ID_SEPARATOR = "~"  # stands for "/" of a row id inside the pano_id field
NAME_FIELDS = ("utm_east", "utm_north", "utm_zone_number", "utm_zone_letter", "lat", "lon", "pano_id", "tile_num",
               "heading", "pitch", "roll", "height", "timestamp", "note", "extension")
NAMING = "@" + "@".join(NAME_FIELDS)
DEFAULT_JPEG_QUALITY = 95  # of exported images
VPR_SPLITS = ("train", "val", "test")  # images/<split>/{database,queries} of a VPR-datasets-downloader folder
DEFAULT_VPR_SPLIT = "test"  # what benchmarks evaluate; training code reads images/train


@dataclass(frozen=True)
class VprName:
    """The fields of a VPR-datasets-downloader image name (None: empty field)."""

    easting_m: float
    northing_m: float
    utm_zone_number: int | None = None
    utm_zone_letter: str | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    pano_id: str = ""
    tile_num: str = ""
    heading_deg: int | None = None
    pitch_deg: int | None = None
    roll: str = ""
    height: str = ""
    timestamp: str = ""
    note: str = ""
    extension: str = ".jpg"

    @property
    def row_id(self) -> str:
        """The manifest row id a vidvpr export encoded in pano_id."""
        return self.pano_id.replace(ID_SEPARATOR, "/")


def _fixed(value: float, int_digits: int, decimals: int) -> str:
    """Zero-padded fixed point with `int_digits` integer digits including a minus sign, as the
    downloader's format_coord writes (but rounded, not truncated): 12.5 → 0000012.50."""
    return f"{value:0{int_digits + 1 + decimals}.{decimals}f}"


def format_vpr_filename(name: VprName) -> str:
    """``@east@north@zone@letter@lat@lon@pano_id@tile@heading@pitch@roll@height@timestamp@note@.jpg``."""
    text_fields = (name.utm_zone_letter or "", name.pano_id, name.tile_num, name.roll, name.height,
                   name.timestamp, name.note, name.extension)
    bad = next((text for text in text_fields if "@" in text or "/" in text or "\\" in text), None)
    if bad is not None:
        raise ValueError(f"VPR file name field {bad!r} contains '@' or a path separator")
    if not all(math.isfinite(value) for value in (name.easting_m, name.northing_m, name.lat_deg, name.lon_deg)
               if value is not None):
        raise ValueError(f"VPR file name position ({name.easting_m}, {name.northing_m}, lat {name.lat_deg}, "
                         f"lon {name.lon_deg}) is not finite")
    fields = [
        _fixed(name.easting_m, 7, 2),
        _fixed(name.northing_m, 7, 2),
        "" if name.utm_zone_number is None else f"{name.utm_zone_number:02d}",
        name.utm_zone_letter or "",
        "" if name.lat_deg is None else _fixed(name.lat_deg, 3, 5),
        "" if name.lon_deg is None else _fixed(name.lon_deg, 4, 5),
        name.pano_id,
        name.tile_num,
        "" if name.heading_deg is None else f"{name.heading_deg:03d}",
        "" if name.pitch_deg is None else f"{name.pitch_deg:03d}",
        name.roll, name.height, name.timestamp, name.note, name.extension,
    ]
    return "@" + "@".join(fields)


def parse_vpr_filename(filename: str | Path) -> VprName:
    """The fields of an image name (a path's directories are ignored); ValueError if malformed."""
    base = Path(filename).name
    parts = base.split("@")
    if len(parts) != len(NAME_FIELDS) + 1 or parts[0] != "":
        raise ValueError(f"{base!r} is not a VPR image name ({NAMING})")
    fields = dict(zip(NAME_FIELDS, parts[1:]))

    def number(key: str, kind: type) -> Any:
        return None if fields[key] == "" else kind(fields[key])

    return VprName(
        easting_m=float(fields["utm_east"]), northing_m=float(fields["utm_north"]),
        utm_zone_number=number("utm_zone_number", int), utm_zone_letter=fields["utm_zone_letter"] or None,
        lat_deg=number("lat", float), lon_deg=number("lon", float), pano_id=fields["pano_id"],
        tile_num=fields["tile_num"], heading_deg=number("heading", int), pitch_deg=number("pitch", int),
        roll=fields["roll"], height=fields["height"], timestamp=fields["timestamp"], note=fields["note"],
        extension=fields["extension"],
    )


def row_vpr_name(row: ManifestRow) -> VprName:
    """A manifest row's VPR name: position, zone, lat/lon, view heading and pitch, id as pano_id."""
    heading = None if row.heading_deg is None else round(row.heading_deg) % 360
    return VprName(row.easting_m, row.northing_m, row.utm_zone_number, row.utm_zone_letter, row.lat_deg,
                   row.lon_deg, pano_id=row.id.replace("/", ID_SEPARATOR), heading_deg=heading,
                   pitch_deg=round(row.pitch_deg))


def row_filename(row: ManifestRow) -> str:
    """The image file name of a manifest row."""
    return format_vpr_filename(row_vpr_name(row))
