"""`vidvpr export`: a manifest → the image folders public VPR benchmarks read.

Layout and names follow the VPR-datasets-downloader convention (gmberton), which CosPlace,
VPR-methods-evaluation and their descendants read unchanged::

    OUT/images/test/database/<name>.jpg
    OUT/images/test/queries/<name>.jpg
    name = @utm_east@utm_north@utm_zone_number@utm_zone_letter@lat@lon@pano_id@tile_num
           @heading@pitch@roll@height@timestamp@note@.jpg

Evaluation code takes the position from fields 1 and 2 (``path.split("@")[1:3]``). For local
metric frames (no UTM zone) the zone and lat/lon fields are empty. ``pano_id`` is the manifest
row id with ``/`` replaced by ``~`` (so names are unique and lead back to the row).

Frames come from the reference view videos, or from an encode cell
``ENC/<recording>/<view>/<res>/qp<NN>.mp4`` (same frames as the reference, so frame i maps
across). Each video is decoded once, front to back, keeping the manifest's frames.

Benchmark code recomputes positives from the positions in the file names with its own radius
(25 m by default), so export.json records the manifest's radius to evaluate with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from vidvpr.core.errors import BadInput, OutputError
from vidvpr.dataset.manifest import CSV_FILES, MANIFEST_FILE, POSITIVES_FILE, Manifest, ManifestRow, load_manifest
from vidvpr.core.provenance import (
    command_line,
    ensure_writable_dir,
    file_record,
    params_hash,
    partial_dir,
    read_json,
    remove_stale_partial_dirs,
    runtime_versions,
    sha256_file,
    write_json_atomic,
)
from vidvpr.media.video import probe_video

LOG = logging.getLogger(__name__)

EXPORT_SCHEMA = "vidvpr.export/1"
EXPORT_FILE = "export.json"
IMAGES_DIR = "images"
SPLIT_DIRS = {"database": "images/test/database", "query": "images/test/queries"}
DEFAULT_JPEG_QUALITY = 95
MAX_QP = 51
ID_SEPARATOR = "~"  # stands for "/" of a row id inside the pano_id field
RES_PATTERN = re.compile(r"^[A-Za-z0-9]{1,16}$")
NAME_FIELDS = ("utm_east", "utm_north", "utm_zone_number", "utm_zone_letter", "lat", "lon", "pano_id", "tile_num",
               "heading", "pitch", "roll", "height", "timestamp", "note", "extension")
NAMING = "@" + "@".join(NAME_FIELDS)
MANIFEST_DATA_FILES = (*CSV_FILES.values(), POSITIVES_FILE)  # what an export depends on (not manifest.json's log)


# ---------------------------------------------------------------- file names (pure)


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


# ---------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportConfig:
    """Every `vidvpr export` option, with its default written once."""

    enc_dir: Path | None = None  # encode grid folder; with res and qp selects a cell
    res: str | None = None
    qp: int | None = None
    root: Path | None = None  # dataset root; None: the one recorded in manifest.json
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    include_unmatched: bool = False  # also export queries without positives
    views: tuple[str, ...] | None = None  # export only these views (manifest view names); None: all
    force: bool = False

    @property
    def from_cell(self) -> bool:
        return self.res is not None


@dataclass
class ExportResult:
    """What `export_vpr` wrote (or found already done)."""

    out_dir: str
    source: str
    database: int
    queries: int
    queries_without_positives_skipped: int
    radius_m: float  # the manifest's positive radius: evaluate the export with the same
    max_heading_diff_deg: float | None
    skipped: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate_export_config(config: ExportConfig) -> None:
    """Reject nonsense options before any work starts."""
    if not 1 <= config.jpeg_quality <= 100:
        raise BadInput(f"--quality must be in [1, 100], got {config.jpeg_quality}")
    given = {"--enc": config.enc_dir is not None, "--res": config.res is not None, "--qp": config.qp is not None}
    if any(given.values()) and not all(given.values()):
        missing = ", ".join(name for name, ok in given.items() if not ok)
        raise BadInput(f"--enc, --res and --qp select an encode cell together; missing {missing}")
    if config.res is not None and not RES_PATTERN.match(config.res):
        raise BadInput(f"--res {config.res!r}: use the encode grid's resolution name, e.g. 360p")
    if config.qp is not None and not 0 <= config.qp <= MAX_QP:
        raise BadInput(f"--qp must be in [0, {MAX_QP}], got {config.qp}")
    if config.views is not None and not config.views:
        raise BadInput("--views: give at least one view name, e.g. yaw000_pitch+00")


def cell_path(enc_dir: Path, recording: str, view: str, res: str, qp: int) -> Path:
    """Encode cell video of a view: ``ENC/<recording>/<view>/<res>/qp<NN>.mp4``."""
    return Path(enc_dir) / recording / view / res / f"qp{qp:02d}.mp4"


def _reference_views(manifest: Manifest) -> dict[tuple[str, str], dict[str, Any]]:
    return {(rec["name"], view["view"]): view for rec in manifest.meta.get("inputs", []) for view in rec["views"]}


def _source_video(manifest: Manifest, row: ManifestRow, config: ExportConfig,
                  reference: dict[str, Any] | None) -> Path:
    """The video a row's frame is taken from, checked against the manifest's record of the view."""
    frames = reference.get("frames") if reference else None
    if config.from_cell:
        path = cell_path(config.enc_dir, row.recording, row.view, config.res, config.qp)  # type: ignore[arg-type]
        if not path.is_file():
            raise BadInput(f"{path}: encode cell not found for {row.recording}/{row.view} "
                           f"(res {config.res}, qp {config.qp}); run vidvpr encode on it, or export only "
                           "the encoded views with --views")
        cell_frames = probe_video(path).frames
        if frames and cell_frames and cell_frames != frames:
            raise BadInput(f"{path}: {cell_frames} frames but the reference view has {frames}; "
                           "an encode cell must keep every frame")
        return path
    path = manifest.video_path(row)
    if not path.is_file():
        raise BadInput(f"{path}: view video not found (listed in {manifest.directory / 'manifest.json'})")
    expected = (reference or {}).get("video", {}).get("bytes")
    if expected is not None and path.stat().st_size != expected:
        raise BadInput(f"{path}: changed since the manifest was built ({path.stat().st_size} bytes, "
                       f"was {expected}); rebuild the manifest")
    return path


def decode_selected(path: Path, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR image) of the frames at `indices` (sorted), decoding the video once, in order."""
    wanted, last, index = set(indices), max(indices), -1
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    yield index, frame.to_ndarray(format="bgr24")
                if index >= last:
                    return
    except av.error.FFmpegError as exc:
        raise BadInput(f"{path}: corrupt or unreadable video at frame {index + 1} ({exc})") from exc
    raise BadInput(f"{path}: has {index + 1} frames but the manifest needs frame {last}")


def _write_jpeg(path: Path, bgr: np.ndarray, quality: int) -> None:
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OutputError(f"{path}: JPEG encoding failed")
    try:
        path.write_bytes(buffer.tobytes())
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot write {path.name} ({exc.strerror})") from exc


def select_rows(manifest: Manifest, views: tuple[str, ...] | None,
                include_unmatched: bool) -> tuple[list[ManifestRow], list[ManifestRow], int]:
    """(database rows, query rows, queries left out for having no positive) to export.

    With `views`, only rows of those views; a query's positives are then the database rows kept.
    """
    database, keep_db = manifest.database, np.ones(len(manifest.database), bool)
    queries = list(zip(manifest.queries, manifest.positives))
    if views is not None:
        known = sorted({row.view for row in manifest.database + manifest.queries})
        unknown = [view for view in views if view not in known]
        if unknown:
            raise BadInput(f"--views: no view {unknown[0]!r} in the manifest; it has {', '.join(known)}")
        keep_db = np.array([row.view in views for row in database], bool)
        database = [row for row, keep in zip(database, keep_db) if keep]
        queries = [(row, hits) for row, hits in queries if row.view in views]
    matched = [row for row, hits in queries if include_unmatched or keep_db[hits].any()]
    return database, matched, len(queries) - len(matched)


def export_vpr(manifest_dir: str | Path, out_dir: str | Path, config: ExportConfig,
               on_image: Callable[[int], None] | None = None) -> ExportResult:
    """Write ``OUT/images/test/{database,queries}/*.jpg`` and ``OUT/export.json`` from a manifest.

    Queries without positives are left out unless `include_unmatched` (benchmark code would
    count them as failures); `views` restricts both splits to some views (`select_rows`). The
    image tree is written under a hidden partial name and renamed when complete; an export with
    the same parameters and inputs (by hash) already done is skipped unless `force`.
    """
    started = time.perf_counter()
    validate_export_config(config)
    manifest = load_manifest(manifest_dir, config.root)
    source = "reference views" if not config.from_cell else f"encode cell {config.res} qp{config.qp:02d}"
    database, queries, unmatched_skipped = select_rows(manifest, config.views, config.include_unmatched)
    jobs: dict[tuple[str, str], list[tuple[int, str, ManifestRow]]] = {}
    for split, rows in (("database", database), ("query", queries)):
        for row in rows:
            jobs.setdefault((row.recording, row.view), []).append((row.frame, split, row))
    references = _reference_views(manifest)
    videos = {key: _source_video(manifest, rows[0][2], config, references.get(key)) for key, rows in jobs.items()}
    video_records = [file_record(path) if config.from_cell else references.get(key, {}).get("video")
                     for key, path in videos.items()]
    parameters = manifest.meta.get("parameters", {})
    positives = {"radius_m": parameters.get("radius_m"), "max_heading_diff_deg": parameters.get("max_heading_diff_deg")}
    params = {"schema": EXPORT_SCHEMA,
              "manifest": {name: sha256_file(manifest.directory / name) for name in MANIFEST_DATA_FILES},
              "root": str(manifest.root), "videos": [(record or {}).get("hash") for record in video_records],
              "res": config.res, "qp": config.qp, "enc_dir": str(Path(config.enc_dir).resolve()) if config.enc_dir else None,
              "views": list(config.views) if config.views is not None else None,
              "jpeg_quality": config.jpeg_quality, "include_unmatched": config.include_unmatched}
    phash = params_hash(params)
    out = Path(out_dir)
    images = out / IMAGES_DIR
    previous = read_json(out / EXPORT_FILE)
    result = ExportResult(str(out), source, len(database), len(queries), unmatched_skipped,
                          positives["radius_m"], positives["max_heading_diff_deg"], False)
    if not config.force and previous and previous.get("params_hash") == phash and images.is_dir():
        LOG.info("%s: export with the same parameters and inputs already done, skipping", out)
        return dataclasses.replace(result, skipped=True)
    if images.exists() and not config.force:
        raise OutputError(f"{images} already holds an export of other parameters or inputs (see {EXPORT_FILE}); "
                          "pass --force to replace it")
    ensure_writable_dir(out)
    remove_stale_partial_dirs(images)
    tmp = partial_dir(images)
    try:
        for folder in SPLIT_DIRS.values():
            (tmp / Path(folder).relative_to(IMAGES_DIR)).mkdir(parents=True, exist_ok=True)
        for key, rows in jobs.items():
            by_frame: dict[int, list[tuple[str, ManifestRow]]] = {}
            for frame, split, row in rows:
                by_frame.setdefault(frame, []).append((split, row))
            for index, bgr in decode_selected(videos[key], sorted(by_frame)):
                for split, row in by_frame[index]:
                    target = tmp / Path(SPLIT_DIRS[split]).relative_to(IMAGES_DIR) / row_filename(row)
                    _write_jpeg(target, bgr, config.jpeg_quality)
                    if on_image:
                        on_image(1)
        (out / EXPORT_FILE).unlink(missing_ok=True)  # the old record must not vouch for the new images
        if images.exists():
            shutil.rmtree(images)
        os.replace(tmp, images)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    write_json_atomic(out / EXPORT_FILE, {
        "schema": EXPORT_SCHEMA, "kind": "vpr_export",
        "manifest": {"path": str(manifest.directory.resolve()), "files": params["manifest"],
                     "hash": sha256_file(manifest.directory / MANIFEST_FILE)},
        "source": {"kind": "encode_cell" if config.from_cell else "reference", "res": config.res, "qp": config.qp,
                   "enc_dir": params["enc_dir"]},
        "layout": SPLIT_DIRS, "naming": NAMING, "pano_id": "manifest row id with '/' replaced by '~'",
        "jpeg_quality": config.jpeg_quality,
        "views": params["views"],
        "positives": {**positives, "note": "evaluation code that reads positions from file names must use "
                                           "the same radius (gmberton's: --positive_dist_threshold)"},
        "counts": {"database": len(database), "queries": len(queries),
                   "queries_without_positives_skipped": unmatched_skipped},
        "videos": video_records,
        "params": params, "params_hash": phash, "versions": runtime_versions(), "command": command_line(),
        "elapsed_s": round(time.perf_counter() - started, 3),
    })
    return result
