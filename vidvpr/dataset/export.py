"""`vidvpr export`: a manifest → the image folders public VPR benchmarks read.

Layout (names: `vidvpr.dataset.vpr_names`)::

    OUT/images/<split>/database/<name>.jpg
    OUT/images/<split>/queries/<name>.jpg
    OUT/export.json

`<split>` is ``test`` unless asked (``train`` makes a folder `vidvpr distill --train` and other
training code read; ``val``). Each split is exported on its own (its tree built and renamed into
place, its record ``export.json`` for test, ``export-<split>.json`` for the others), so one folder
can hold the splits of several manifests, as the benchmarks' dataset folders do.

Frames come from the reference view videos, or from an encode cell
``ENC/<recording>/<view>/<res>/qp<NN>.mp4`` (``<res>/<codec>/<quantiser><NN>.mp4`` for codecs other
than libx264, `--codec`) that was encoded from the very view video the manifest lists (checked by content hash), so frame i maps across. Each video is decoded once,
front to back, keeping the manifest's frames. The image tree is built under a temporary name and
renamed into place when complete; export.json records every image's name and size, so a rerun
skips only an export that is still whole.

Benchmark code recomputes positives from the positions in the file names with its own radius
(25 m by default), so export.json records the manifest's radius to evaluate with.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidvpr.core.atomic import built_dir, ensure_writable_dir, removing_new_dirs
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.core.provenance import command_line, params_hash, runtime_versions, sha256_file
from vidvpr.core.records import FileRecord, Record
from vidvpr.core.sidecars import CellSidecar
from vidvpr.dataset.manifest import Manifest, load_manifest
from vidvpr.dataset.records import DATA_FILES, MANIFEST_FILE, ManifestRow
from vidvpr.dataset.vpr_names import DEFAULT_JPEG_QUALITY, DEFAULT_VPR_SPLIT, NAMING, VPR_SPLITS, row_filename
from vidvpr.encoding.codecs import CODECS, DEFAULT_CODEC
from vidvpr.encoding.plan import cell_paths
from vidvpr.media.decode import decode_selected

LOG = logging.getLogger(__name__)

EXPORT_FILE = "export.json"
IMAGES_DIR = "images"


def split_dirs(split: str = DEFAULT_VPR_SPLIT) -> dict[str, str]:
    """The folders of a split's database and query images, relative to the export folder."""
    return {"database": f"{IMAGES_DIR}/{split}/database", "query": f"{IMAGES_DIR}/{split}/queries"}


def export_record_name(split: str = DEFAULT_VPR_SPLIT) -> str:
    """The file name of a split's export record: ``export-<split>.json`` for train and val, else
    ``export.json`` (the default split's, and what a folder laid out otherwise may hold)."""
    return f"export-{split}.json" if split in VPR_SPLITS and split != DEFAULT_VPR_SPLIT else EXPORT_FILE

RES_PATTERN = re.compile(r"^[A-Za-z0-9]{1,16}$")


@dataclass(frozen=True)
class ExportConfig:
    """Every `vidvpr export` option, with its default written once."""

    enc_dir: Path | None = None  # encode grid folder; with res and qp (and codec) selects a cell
    res: str | None = None
    qp: int | None = None  # the cell's quantiser value (JPEG cells: their quality)
    codec: str = DEFAULT_CODEC
    root: Path | None = None  # dataset root; None: the one recorded in manifest.json
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    include_unmatched: bool = False  # also export queries without positives
    views: tuple[str, ...] | None = None  # export only these views (manifest view names); None: all
    split: str = DEFAULT_VPR_SPLIT  # images/<split>/: one of VPR_SPLITS
    force: bool = False

    @property
    def from_cell(self) -> bool:
        return self.res is not None


class ExportRecord(Record):
    """`export.json`: what was exported from where, and every image's name and size."""

    SCHEMA = "vidvpr.export/2"
    KIND = "vidvpr export record"

    kind: str = "vpr_export"
    manifest: dict[str, Any]
    source: dict[str, Any]
    layout: dict[str, str]
    naming: str
    pano_id: str
    jpeg_quality: int
    views: list[str] | None
    positives: dict[str, Any]
    counts: dict[str, int]
    videos: list[FileRecord]
    images: dict[str, dict[str, int]]  # split folder -> image name -> bytes
    params: dict[str, Any]
    params_hash: str
    versions: dict[str, str]
    command: list[str]
    elapsed_s: float


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
    split: str = DEFAULT_VPR_SPLIT  # images/<split>/

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_export_config(config: ExportConfig) -> None:
    """Reject nonsense options before any work starts."""
    if config.split not in VPR_SPLITS:
        raise BadInput(f"--split must be one of {', '.join(VPR_SPLITS)}, got {config.split!r}")
    if not 1 <= config.jpeg_quality <= 100:
        raise BadInput(f"--quality must be in [1, 100], got {config.jpeg_quality}")
    given = {"--enc": config.enc_dir is not None, "--res": config.res is not None, "--qp": config.qp is not None}
    if any(given.values()) and not all(given.values()):
        missing = ", ".join(name for name, ok in given.items() if not ok)
        raise BadInput(f"--enc, --res and --qp select an encode cell together; missing {missing}")
    if config.res is not None and not RES_PATTERN.match(config.res):
        raise BadInput(f"--res {config.res!r}: use the encode grid's resolution name, e.g. 360p")
    codec = CODECS.get(config.codec)
    if codec is None:
        raise BadInput(f"--codec: unknown codec {config.codec!r}. Use {', '.join(CODECS)}.")
    quantiser = codec.quantiser
    if config.qp is not None and not quantiser.low <= config.qp <= quantiser.high:
        raise BadInput(f"--qp must be in [{quantiser.low}, {quantiser.high}] ({codec.name} {quantiser.name}), "
                       f"got {config.qp}")
    if config.views is not None and not config.views:
        raise BadInput("--views: give at least one view name, e.g. yaw000_pitch+00")


def _cell_video(manifest: Manifest, row: ManifestRow, config: ExportConfig) -> tuple[Path, FileRecord]:
    """The encode cell of a row's view, checked to be made from the very view video the manifest lists."""
    video, sidecar_path = cell_paths(config.enc_dir, row.recording, row.view, config.res, config.qp,  # type: ignore[arg-type]
                                     config.codec)
    where = f"{row.recording}/{row.view} ({config.codec}, res {config.res}, {CODECS[config.codec].quantiser.name} {config.qp})"
    if not video.is_file() or not sidecar_path.is_file():
        raise BadInput(f"{video}: encode cell not found for {where}; run vidvpr encode on it, or export only "
                       "the encoded views with --views")
    cell = CellSidecar.load(sidecar_path)
    listed = manifest.meta.view_input(row.recording, row.view)
    if listed is None:
        raise BadInput(f"{manifest.directory / MANIFEST_FILE}: lists no view {row.recording}/{row.view}")
    if cell.input.hash != listed.video.hash:
        raise BadInput(f"{video}: encoded from another version of view {row.recording}/{row.view} "
                       f"({cell.input.hash[:19]}…, the manifest lists {listed.video.hash[:19]}…); "
                       "re-run vidvpr encode on the current views")
    if video.stat().st_size != cell.output.bytes or cell.frames != listed.frames:
        raise BadInput(f"{video}: changed since it was encoded, or not frame-for-frame with its view "
                       f"({cell.frames} frames, the view has {listed.frames}); re-run vidvpr encode")
    return video, FileRecord.of(video)


def _reference_video(manifest: Manifest, row: ManifestRow) -> tuple[Path, FileRecord]:
    """A row's view video, checked against the manifest's record of it (size)."""
    path = manifest.video_path(row)
    listed = manifest.meta.view_input(row.recording, row.view)
    if not path.is_file():
        raise BadInput(f"{path}: view video not found (listed in {manifest.directory / MANIFEST_FILE})")
    if listed is None or path.stat().st_size != listed.video.bytes:
        raise BadInput(f"{path}: changed since the manifest was built; rebuild the manifest")
    return path, listed.video


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> int:
    ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OutputError(f"{path}: JPEG encoding failed")
    path.write_bytes(buffer.tobytes())
    return len(buffer)


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


def export_intact(out: Path, record: ExportRecord | None, phash: str) -> bool:
    """Whether `out` holds a finished export of these parameters with every image as written."""
    if record is None or record.params_hash != phash:
        return False
    for folder, images in record.images.items():
        present = {p.name: p.stat().st_size for p in (out / folder).glob("*.jpg")} if (out / folder).is_dir() else {}
        if present != images:
            return False
    return True


def _write_images(out: Path, split: str, jobs: dict[tuple[str, str], list[tuple[int, str, ManifestRow]]],
                  videos: dict[tuple[str, str], Path], jpeg_quality: int,
                  on_image: Callable[[int], None] | None) -> dict[str, dict[str, int]]:
    """Decode each video once and write its rows' frames, building the tree under a temporary
    name and putting it in place of OUT/images/<split> in one rename; the size of every image written."""
    folders = split_dirs(split)
    top = f"{IMAGES_DIR}/{split}"
    written: dict[str, dict[str, int]] = {folder: {} for folder in folders.values()}
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    with built_dir(out / top) as tmp:
        for folder in folders.values():
            (tmp / Path(folder).relative_to(top)).mkdir(parents=True, exist_ok=True)
        for key, rows in jobs.items():
            by_frame: dict[int, list[tuple[str, ManifestRow]]] = {}
            for frame, role, row in rows:
                by_frame.setdefault(frame, []).append((role, row))
            for index, rgb in decode_selected(videos[key], sorted(by_frame)):
                for role, row in by_frame[index]:
                    name = row_filename(row)
                    target = tmp / Path(folders[role]).relative_to(top) / name
                    written[folders[role]][name] = _write_jpeg(target, rgb, jpeg_quality)
                    if on_image:
                        on_image(1)
        (out / export_record_name(split)).unlink(missing_ok=True)  # the old record must not vouch for the new images
    return written


def _refuse_replacing(images_dir: Path, record_path: Path, previous: ExportRecord | None, phash: str) -> None:
    """OutputError when `images_dir` holds images this export must not replace without --force: those
    of an export of other parameters or inputs, or any whose export record is missing or unreadable
    (a downloaded benchmark's images/test, another tool's), which would otherwise be deleted."""
    if not images_dir.is_dir() or not any(images_dir.iterdir()):
        return
    if previous is None:
        state = f"{record_path.name} missing"
        try:
            ExportRecord.load(record_path)  # unreadable, as load_or_none found it: say why
        except BadInput as exc:
            state = str(exc).removeprefix(f"{record_path}: ") if record_path.exists() else state
        raise OutputError(f"{images_dir}: holds files that no vidvpr export recorded ({state}); "
                          "choose another --out, or pass --force to replace them")
    if previous.params_hash != phash:
        raise OutputError(f"{images_dir} already holds an export of other parameters or inputs (see {record_path.name}); "
                          "pass --force to replace it")


def export_vpr(manifest_dir: str | Path, out_dir: str | Path, config: ExportConfig,
               on_image: Callable[[int], None] | None = None,
               on_start: Callable[[int], None] | None = None) -> ExportResult:
    """Write ``OUT/images/<split>/{database,queries}/*.jpg`` and ``OUT/export.json`` from a manifest.

    Queries without positives are left out unless `include_unmatched` (benchmark code would
    count them as failures); `views` restricts both splits to some views (`select_rows`). An
    export with the same parameters and inputs (by hash) whose images are intact is skipped
    unless `force`. `on_start` is told how many images will be written, before the first.
    """
    started = time.perf_counter()
    validate_export_config(config)
    manifest = load_manifest(manifest_dir, config.root)
    out = Path(out_dir)
    if out.resolve().is_relative_to(manifest.directory.resolve()):
        raise BadInput(f"--out {out}: is the manifest folder {manifest_dir} or inside it; a manifest folder holds only "
                       "the manifest (its next run refuses any other file): export beside it, e.g. --out "
                       f"{Path(manifest_dir).parent / 'vpr'}")
    codec_named = f"{config.codec} " if config.codec != DEFAULT_CODEC else ""
    source = ("reference views" if not config.from_cell else
              f"encode cell {codec_named}{config.res} {CODECS[config.codec].quantiser.name}{config.qp:02d}")
    database, queries, unmatched_skipped = select_rows(manifest, config.views, config.include_unmatched)
    jobs: dict[tuple[str, str], list[tuple[int, str, ManifestRow]]] = {}
    for role, rows in (("database", database), ("query", queries)):
        for row in rows:
            jobs.setdefault((row.recording, row.view), []).append((row.frame, role, row))
    videos = {key: (_cell_video(manifest, rows[0][2], config) if config.from_cell
                    else _reference_video(manifest, rows[0][2])) for key, rows in jobs.items()}
    parameters = manifest.meta.parameters
    positives = {"radius_m": parameters.get("radius_m"), "max_heading_diff_deg": parameters.get("max_heading_diff_deg")}
    params = {"schema": ExportRecord.SCHEMA,
              "manifest": {name: sha256_file(manifest.directory / name) for name in DATA_FILES},
              "root": str(manifest.root), "videos": [record.hash for _, record in videos.values()],
              "res": config.res, "qp": config.qp, "enc_dir": str(Path(config.enc_dir).resolve()) if config.enc_dir else None,
              "views": list(config.views) if config.views is not None else None,
              "jpeg_quality": config.jpeg_quality, "include_unmatched": config.include_unmatched,
              **({"codec": config.codec} if config.from_cell and config.codec != DEFAULT_CODEC else {}),
              **({"split": config.split} if config.split != DEFAULT_VPR_SPLIT else {})}  # earlier exports' hashes hold
    phash = params_hash(params)
    images_dir = out / IMAGES_DIR / config.split
    record_path = out / export_record_name(config.split)
    result = ExportResult(str(out), source, len(database), len(queries), unmatched_skipped,
                          positives["radius_m"], positives["max_heading_diff_deg"], False, config.split)
    previous = ExportRecord.load_or_none(record_path)
    if not config.force and export_intact(out, previous, phash):
        LOG.info("%s: export with the same parameters and inputs already done, skipping", out)
        return ExportResult(**{**result.as_dict(), "skipped": True})
    if not config.force:
        _refuse_replacing(images_dir, record_path, previous, phash)
    if on_start:
        on_start(len(database) + len(queries))
    with removing_new_dirs(out / IMAGES_DIR):  # a failed or interrupted first export leaves no empty OUT/images
        ensure_writable_dir(out)
        written = _write_images(out, config.split, jobs, {key: path for key, (path, _) in videos.items()},
                                config.jpeg_quality, on_image)
    ExportRecord(
        manifest={"path": str(manifest.directory.resolve()), "files": params["manifest"],
                  "hash": sha256_file(manifest.directory / MANIFEST_FILE)},
        source={"kind": "encode_cell" if config.from_cell else "reference", "res": config.res, "qp": config.qp,
                "enc_dir": params["enc_dir"], **({"codec": config.codec} if "codec" in params else {})},
        layout=split_dirs(config.split), naming=NAMING, pano_id="manifest row id with '/' replaced by '~'",
        jpeg_quality=config.jpeg_quality, views=params["views"],
        positives={**positives, "note": "evaluation code that reads positions from file names must use "
                                        "the same radius (gmberton's: --positive_dist_threshold)"},
        counts={"database": len(database), "queries": len(queries),
                "queries_without_positives_skipped": unmatched_skipped},
        videos=[record for _, record in videos.values()], images=written,
        params=params, params_hash=phash, versions=runtime_versions(), command=command_line(),
        elapsed_s=round(time.perf_counter() - started, 3),
    ).save(record_path)
    return result
