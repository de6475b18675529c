"""VPR-datasets-downloader folders (``images/test/{database,queries}/@east@north@zone@letter@…@.jpg``,
the layout `vidvpr export` writes and CosPlace, VPR-methods-evaluation and their kin read).

Both splits become recordings (``NAME-database``, ``NAME-queries``) whose frames are the images in
natural name order, one per 1/--fps seconds; each image's position (and heading, when every image
has one) from its name becomes a csv-xy trajectory sample at that frame's time, in the names' UTM
zone (or local frame); a definition with every frame of both (sampling "all") and the radius of the
export (its export.json, when present, refused when damaged; else 25 m) lets `vidvpr manifest`
reproduce the dataset's own positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.core.records import validate_data
from vidvpr.dataset.definition import DEFAULT_RADIUS_M
from vidvpr.dataset.vpr_names import NAMING, parse_vpr_filename
from vidvpr.ingest.footage import Footage
from vidvpr.ingest.images import IMAGE_SUFFIXES

SPLIT_FOLDERS = {"database": "database", "query": "queries"}  # manifest split -> folder name


def find_vpr_splits(sources: Sequence[str | Path], split: str) -> dict[str, Path] | None:
    """{"database": folder, "query": folder} when the one source is a VPR-datasets-downloader folder:
    the dataset (``images/<split>/``), its ``images`` folder, or the split folder itself."""
    if len(sources) != 1 or not Path(sources[0]).is_dir():
        return None
    base = Path(sources[0])
    for candidate in (base / "images" / split, base / split, base):
        folders = {name: candidate / folder for name, folder in SPLIT_FOLDERS.items()}
        if all(folder.is_dir() for folder in folders.values()):
            return folders
    _refuse_half_a_layout(base, split)
    return None


def _refuse_half_a_layout(base: Path, split: str) -> None:
    """BadInput for a folder without images of its own that is half a VPR folder (one split folder,
    or images/ without the --split asked for), which read as "no images in this folder"."""
    try:
        if any(path.suffix.lower() in IMAGE_SUFFIXES for path in base.iterdir() if path.is_file()):
            return  # a folder of images, whatever else it holds
    except OSError:
        return  # unreadable: said when its images are listed
    wanted = " and ".join(f"{folder}/" for folder in SPLIT_FOLDERS.values())
    for candidate in (base / "images" / split, base / split, base):
        present = [folder for folder in SPLIT_FOLDERS.values() if (candidate / folder).is_dir()]
        if present:
            missing = next(folder for folder in SPLIT_FOLDERS.values() if folder not in present)
            raise BadInput(f"{candidate}: has {present[0]}/ but no {missing}/; a VPR-datasets-downloader split holds "
                           f"{wanted}")
    if (base / "images").is_dir():
        splits = sorted(path.name for path in (base / "images").iterdir() if path.is_dir())
        raise BadInput(f"{base / 'images'}: no {split}/ folder (--split {split}); it holds "
                       f"{', '.join(splits) if splits else 'no folders'}")


def dataset_name(source: Path, split: str) -> str:
    """The dataset's folder name: the source, or above ``images/<split>`` when that was given."""
    path = Path(source).absolute()
    while path.name in (split, "images") and path.parent != path:
        path = path.parent
    return path.name


@dataclass(frozen=True)
class NamedPositions:
    """Positions (and headings) of a split's images, read from their names, in frame order."""

    easting_m: np.ndarray
    northing_m: np.ndarray
    heading_deg: np.ndarray | None  # None unless every image's name has a heading
    zone: tuple[int, str] | None  # UTM zone of every name; None: a local metric frame
    first: Path  # the first image, for messages


def read_positions(footage: Footage) -> NamedPositions:
    """Every image's position from its name; BadInput naming an image whose name is not a VPR name
    or lies in another UTM zone than the first."""
    east, north, heading, zone = [], [], [], None
    for index, info in enumerate(footage.images):
        try:
            name = parse_vpr_filename(info.path.name)
        except (ValueError, OverflowError):
            raise BadInput(f"{info.path}: not a VPR-datasets-downloader image name ({NAMING})") from None
        if not (np.isfinite(name.easting_m) and np.isfinite(name.northing_m)):
            raise BadInput(f"{info.path}: its position ({name.easting_m}, {name.northing_m}) is not finite")
        this_zone = (name.utm_zone_number, name.utm_zone_letter) if name.utm_zone_number is not None else None
        if index == 0:
            zone = this_zone
        elif this_zone != zone:
            raise BadInput(f"{info.path}: UTM zone {zone_text(this_zone)}, but {footage.images[0].path.name} is in "
                           f"{zone_text(zone)}; the images of a dataset must share one zone")
        east.append(name.easting_m)
        north.append(name.northing_m)
        heading.append(name.heading_deg)
    headings = None if any(h is None for h in heading) else np.array(heading, dtype=float) % 360.0
    return NamedPositions(np.array(east), np.array(north), headings, zone, footage.images[0].path)


def zone_text(zone: tuple[int, str] | None) -> str:
    return "none (local)" if zone is None else f"{zone[0]}{zone[1] or ''}"


def check_same_zone(positions: dict[str, NamedPositions]) -> tuple[int, str] | None:
    """The zone both splits share; BadInput otherwise."""
    database, query = positions["database"], positions["query"]
    if database.zone != query.zone:
        raise BadInput(f"{query.first}: UTM zone {zone_text(query.zone)}, but the database "
                       f"({database.first.name}) is in {zone_text(database.zone)}")
    return database.zone


def export_radius(splits: dict[str, Path], base: Path) -> tuple[float, float | None, str]:
    """(radius_m, max_heading_diff_deg, where from): the export.json of a `vidvpr export` when one is
    in the dataset folder, else the benchmarks' 25 m. An export.json that is there but damaged is
    refused (BadInput naming it), never passed over for 25 m without a word."""
    from vidvpr.dataset.definition import PositivesSection
    from vidvpr.dataset.export import ExportRecord, export_record_name

    for folder in (base, *splits["database"].parents[:3]):
        path = folder / export_record_name(splits["database"].parent.name)
        if not path.exists():
            continue
        try:
            record = ExportRecord.load(path)
            positives = validate_data(PositivesSection, {key: record.positives.get(key) for key in
                                                         ("radius_m", "max_heading_diff_deg")}, f"{path}: positives")
        except BadInput as exc:
            raise BadInput(f"{exc}; it sets the positives of the definition vidvpr import writes: repair it, or remove "
                           f"it to use the VPR benchmarks' {DEFAULT_RADIUS_M:g} m") from None
        return positives.radius_m, positives.max_heading_diff_deg, str(path)
    return DEFAULT_RADIUS_M, None, "the VPR benchmarks' default"
