"""`vidvpr manifest`: sliced view videos + trajectories → database.csv, query.csv, positives.json.

A dataset definition (`vidvpr.definition`; TOML, see manifests/README.md) lists recordings: each
one's split (database or query), its sliced views (``<views_dir>/<recording>/<view>.mp4`` + ``.json``
sidecar, as `vidvpr slice` writes them) and its trajectory. Every view frame inside the
trajectory's time range gets a position and heading; frames are sampled per split (every N
frames, T seconds or D metres); each query's positives are the database rows within a radius
(`vidvpr.positives`). All paths are relative to the dataset root and must stay inside it.

Outputs (in the manifest folder): ``database.csv``, ``query.csv``, ``positives.json``, then
``manifest.json`` (definition, parameters, input hashes, versions, counts) written last: a
folder with a manifest.json is complete.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr import __version__
from vidvpr.geo import trajectory as trj
from vidvpr.dataset.definition import SPLITS, DatasetDefinition, RecordingSpec, check_name, resolve_inside, validate_definition
from vidvpr.core.errors import BadInput
from vidvpr.dataset.positives import SamplingRule, find_positives, positive_stats
from vidvpr.core.provenance import (
    SLICE_SIDECAR_SCHEMA,
    atomic_output,
    command_line,
    ensure_writable_dir,
    params_hash,
    read_json,
    runtime_versions,
    sha256_file,
    write_json_atomic,
)

LOG = logging.getLogger(__name__)

SCHEMA = "vidvpr.manifest/1"
POSITIVES_SCHEMA = "vidvpr.positives/1"
CSV_FILES = {"database": "database.csv", "query": "query.csv"}
POSITIVES_FILE = "positives.json"
MANIFEST_FILE = "manifest.json"
DECIMALS = {"m": 3, "deg": 3, "latlon": 7, "s": 6}


# ---------------------------------------------------------------- view sidecars


@dataclass(frozen=True)
class ViewSource:
    """One sliced view video as its sidecar describes it."""

    name: str
    video: Path
    video_rel: str
    sidecar: Path
    yaw_deg: float
    pitch_deg: float
    hfov_deg: float
    time_s: np.ndarray
    source_frame: np.ndarray
    meta: dict[str, Any]


def _frame_times(sidecar: Path, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    stamps = meta.get("timestamps") or {}
    try:
        frames = int(meta["frames"])
        if "time_s" in stamps:
            time_s = np.asarray(stamps["time_s"], dtype=float).reshape(-1)
        elif stamps.get("rule") == "time_s[i] = i / fps":
            time_s = np.arange(frames) / float(Fraction(str(stamps["fps"])))
        else:
            raise BadInput(f"{sidecar}: timestamps give neither time_s nor the rule 'time_s[i] = i / fps'")
        if "source_frame_index" in stamps:
            source = np.asarray(stamps["source_frame_index"], dtype=np.int64).reshape(-1)
        else:
            source = np.arange(frames, dtype=np.int64)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise BadInput(f"{sidecar}: unreadable frames or timestamps ({type(exc).__name__}: {exc})") from None
    if not np.isfinite(time_s).all():
        raise BadInput(f"{sidecar}: timestamps must be finite")
    if not (time_s.size == source.size == frames) or frames < 1:
        raise BadInput(f"{sidecar}: frames ({frames}), timestamps ({time_s.size}) and source frame "
                       f"indices ({source.size}) disagree")
    return time_s, source


def read_view_sidecar(root: Path, sidecar: Path, recording: str, source: str) -> ViewSource:
    """A view's geometry and frame times from its `vidvpr slice` sidecar; its video must exist."""
    meta = read_json(sidecar)
    if meta is None:
        raise BadInput(f"{sidecar}: missing or unreadable view sidecar (run vidvpr slice)")
    if meta.get("schema") != SLICE_SIDECAR_SCHEMA or meta.get("kind") != "view_video":
        raise BadInput(f"{sidecar}: not a vidvpr slice sidecar (schema {meta.get('schema')!r}, expected {SLICE_SIDECAR_SCHEMA})")
    name = check_name(meta.get("view"), "view", str(sidecar))
    if name != sidecar.stem:
        raise BadInput(f"{sidecar}: sidecar names view {name!r} but its file is {sidecar.name}")
    video, video_rel = resolve_inside(root, sidecar.with_suffix(".mp4"), f"recording {recording} view video", source)
    if not video.is_file():
        raise BadInput(f"{video}: view video not found (its sidecar {sidecar.name} exists); re-run vidvpr slice")
    expected = (meta.get("output") or {}).get("bytes")
    if expected is not None and video.stat().st_size != expected:
        raise BadInput(f"{video}: {video.stat().st_size} bytes but its sidecar says {expected}; re-run vidvpr slice")
    geometry = meta.get("geometry") or {}
    try:
        yaw, pitch, hfov = (float(geometry[key]) for key in ("yaw_deg", "pitch_deg", "hfov_deg"))
    except (KeyError, TypeError, ValueError):
        raise BadInput(f"{sidecar}: geometry needs yaw_deg, pitch_deg and hfov_deg") from None
    time_s, source_frame = _frame_times(sidecar, meta)
    return ViewSource(name, video, video_rel, sidecar, yaw, pitch, hfov, time_s, source_frame, meta)


def find_views(root: Path, rec: RecordingSpec, source: str) -> list[ViewSource]:
    """The recording's views: those listed, or every view sidecar in ``<views_dir>/<recording>/``."""
    folder, _ = resolve_inside(root, f"{rec.views_dir}/{rec.name}", f"recording {rec.name} views folder", source)
    if rec.views is not None:
        sidecars = [folder / f"{view}.json" for view in rec.views]
        for car in sidecars:
            if not car.is_file():
                raise BadInput(f"{car}: view sidecar not found for recording {rec.name!r} (listed in {source})")
    else:
        if not folder.is_dir():
            raise BadInput(f"{folder}: views folder of recording {rec.name!r} not found; "
                           f"run vidvpr slice --out {rec.views_dir} on its 360° video")
        sidecars = [car for car in sorted(folder.glob("*.json"))
                    if (read_json(car) or {}).get("kind") == "view_video"]
        orphans = sorted({video.stem for video in folder.glob("*.mp4") if not video.name.startswith(".")}
                         - {car.stem for car in sidecars})
        if orphans:
            LOG.warning("%s: left out %d video(s) without a vidvpr slice sidecar: %s", folder, len(orphans),
                        ", ".join(orphans))
        if not sidecars:
            raise BadInput(f"{folder}: no view sidecars (*.json from vidvpr slice) for recording {rec.name!r}")
    return [read_view_sidecar(root, car, rec.name, source) for car in sidecars]


# ---------------------------------------------------------------- rows


@dataclass
class ManifestRow:
    """One sampled frame of one view; fields are the CSV columns (see manifests/README.md)."""

    id: str
    split: str
    recording: str
    view: str
    yaw_deg: float
    pitch_deg: float
    hfov_deg: float
    frame: int
    source_frame: int
    time_s: float
    easting_m: float
    northing_m: float
    utm_zone_number: int | None
    utm_zone_letter: str | None
    lat_deg: float | None
    lon_deg: float | None
    camera_heading_deg: float | None
    heading_deg: float | None
    video: str
    num_positives: int | None = None  # query.csv only

    def as_dict(self, split: str | None = None) -> dict[str, Any]:
        """The row as CSV/JSON values; database rows have no num_positives."""
        row = dataclasses.asdict(self)
        if (split or self.split) == "database":
            row.pop("num_positives")
        return row


#: column -> value kind; "?" marks columns that may be empty (None)
COLUMNS: dict[str, str] = {
    "id": "str", "split": "str", "recording": "str", "view": "str", "yaw_deg": "float", "pitch_deg": "float",
    "hfov_deg": "float", "frame": "int", "source_frame": "int", "time_s": "float", "easting_m": "float",
    "northing_m": "float", "utm_zone_number": "int?", "utm_zone_letter": "str?", "lat_deg": "float?",
    "lon_deg": "float?", "camera_heading_deg": "float?", "heading_deg": "float?", "video": "str",
    "num_positives": "int",
}


def columns(split: str) -> list[str]:
    """CSV header of a split's file."""
    return [name for name in COLUMNS if split == "query" or name != "num_positives"]


def frame_id(recording: str, view: str, frame: int) -> str:
    """Stable row id: ``<recording>/<view>/<frame:06d>``."""
    return f"{recording}/{view}/{frame:06d}"


def _optional(value: float, decimals: int) -> float | None:
    return None if not math.isfinite(value) else round(float(value), decimals)


def view_coverage(rec: RecordingSpec, traj: trj.Trajectory, view: ViewSource, strict: bool = False) -> np.ndarray:
    """Mask of the view's frames inside the trajectory's time range (`trajectory.coverage`)."""
    return trj.coverage(traj, view.time_s, strict, time_offset_s=rec.trajectory.time_offset_s,
                        frames_name=f"frames of recording {rec.name} ({view.video_rel})")


def view_rows(rec: RecordingSpec, traj: trj.Trajectory, view: ViewSource, rule: SamplingRule,
              strict: bool = False, inside: np.ndarray | None = None) -> tuple[list[ManifestRow], int]:
    """(sampled rows, frames dropped outside the trajectory) of one view.

    `inside` (the frames inside the trajectory's time range) is computed when not given.
    """
    offset = rec.trajectory.time_offset_s
    if inside is None:
        inside = view_coverage(rec, traj, view, strict)
    pose = trj.position_at(traj, view.time_s, time_offset_s=offset)
    candidates = np.flatnonzero(inside)
    keep = candidates[rule.select(view.time_s[candidates], pose.easting_m[candidates], pose.northing_m[candidates])]
    east, north = pose.easting_m[keep], pose.northing_m[keep]
    lat = lon = np.full(keep.size, np.nan)
    if traj.utm_zone_number is not None and keep.size:
        lat, lon = trj.lat_lon(traj, east, north)
    camera = pose.heading_deg[keep]
    heading = np.asarray(trj.view_heading_deg(camera, view.yaw_deg), dtype=float).reshape(-1)
    d_m, d_deg, d_ll = DECIMALS["m"], DECIMALS["deg"], DECIMALS["latlon"]
    rows = [
        ManifestRow(
            id=frame_id(rec.name, view.name, int(i)), split=rec.split, recording=rec.name, view=view.name,
            yaw_deg=view.yaw_deg, pitch_deg=view.pitch_deg, hfov_deg=view.hfov_deg, frame=int(i),
            source_frame=int(view.source_frame[i]), time_s=round(float(view.time_s[i]), DECIMALS["s"]),
            easting_m=round(float(east[k]), d_m), northing_m=round(float(north[k]), d_m),
            utm_zone_number=traj.utm_zone_number, utm_zone_letter=traj.utm_zone_letter,
            lat_deg=_optional(lat[k], d_ll), lon_deg=_optional(lon[k], d_ll),
            camera_heading_deg=_optional(camera[k], d_deg), heading_deg=_optional(heading[k], d_deg),
            video=view.video_rel,
        )
        for k, i in enumerate(keep)
    ]
    return rows, int(np.count_nonzero(~inside))


def compute_positives(database: list[ManifestRow], queries: list[ManifestRow], radius_m: float,
                      max_heading_diff_deg: float | None = None) -> list[np.ndarray]:
    """Positives (indices into `database`) of each query row, from the rows' positions/headings."""
    headings: dict[str, Any] = {}
    if max_heading_diff_deg is not None:
        for what, rows in (("query", queries), ("database", database)):
            missing = next((row for row in rows if row.heading_deg is None), None)
            if missing is not None:
                raise BadInput(f"recording {missing.recording}: no heading (its trajectory has no heading "
                               "column and never moves); cannot filter positives by --max-heading-diff")
            headings[f"{what}_heading_deg"] = [row.heading_deg for row in rows]
    return find_positives([(r.easting_m, r.northing_m) for r in queries],
                          [(r.easting_m, r.northing_m) for r in database],
                          radius_m, max_heading_diff_deg=max_heading_diff_deg, **headings)


# ---------------------------------------------------------------- build


@dataclass
class ManifestSummary:
    """What `build_manifest` wrote (or found already built)."""

    out_dir: str
    rows: dict[str, int]
    dropped_frames: int
    queries_without_positives: int
    median_positives: float | None
    radius_m: float
    max_heading_diff_deg: float | None
    skipped: bool = False

    @classmethod
    def from_meta(cls, out_dir: Path, meta: dict[str, Any], skipped: bool) -> ManifestSummary:
        counts, parameters = meta["counts"], meta["parameters"]
        return cls(str(out_dir), {split: counts[split] for split in SPLITS}, counts["dropped_frames"],
                   counts["queries_without_positives"], meta["positives"]["median"], float(parameters["radius_m"]),
                   parameters["max_heading_diff_deg"], skipped)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        state = "already done, skipped:" if self.skipped else "wrote"
        heading = f", heading within {self.max_heading_diff_deg:g}°" if self.max_heading_diff_deg else ""
        return [
            f"{state} {self.rows['database']} database and {self.rows['query']} query rows in {self.out_dir}",
            f"dropped {self.dropped_frames} view frames outside their trajectory's time range",
            f"positives within {self.radius_m:g} m{heading}: median {self.median_positives} per query; "
            f"{self.queries_without_positives} queries have none (excluded from recall)",
        ]


def _file_record(root: Path, path: Path) -> dict[str, Any]:
    return {"path": path.resolve().relative_to(root.resolve()).as_posix(), "bytes": path.stat().st_size,
            "hash": sha256_file(path)}


def _write_csv(path: Path, split: str, rows: list[ManifestRow]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns(split), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.as_dict(split).items()})


def _is_done(out: Path, meta: dict[str, Any] | None, phash: str) -> bool:
    """True if manifest.json was built from the same definition and inputs and its outputs are intact."""
    if not meta or meta.get("schema") != SCHEMA or meta.get("params_hash") != phash:
        return False
    for name, record in (meta.get("outputs") or {}).items():
        path = out / name
        if not (path.is_file() and path.stat().st_size == record.get("bytes") and sha256_file(path) == record.get("hash")):
            return False
    return set(meta.get("outputs") or {}) == {*CSV_FILES.values(), POSITIVES_FILE}


def build_manifest(
    definition: DatasetDefinition, out_dir: str | Path, on_view: Callable[[int], None] | None = None,
    force: bool = False,
) -> ManifestSummary:
    """Write database.csv, query.csv, positives.json and (last) manifest.json into `out_dir`.

    Skipped, unless `force`, when `out_dir` holds a manifest built from the same definition and
    input files (by content hash) whose outputs are unchanged.
    """
    started = time.perf_counter()
    rules = validate_definition(definition)
    root, source, config = definition.root.resolve(), definition.source, definition.config
    if not root.is_dir():
        raise BadInput(f"{source}: dataset root {root} is not a folder")
    trajectories, views = [], []
    for rec in definition.recordings:
        path, _ = resolve_inside(root, rec.trajectory.path, f"recording {rec.name} trajectory", source)
        spec = rec.trajectory
        trajectories.append(trj.read_trajectory(path, spec.format, axes=spec.axes, fps=spec.fps,  # type: ignore[arg-type]
                                                scale=spec.scale, force_zone_number=config.utm_zone))
        views.append(find_views(root, rec, source))
    zone = trj.check_same_zone(trajectories)
    files = {rec.name: {"trajectory": _file_record(root, Path(traj.source)),
                        "views": {view.name: {"video": _file_record(root, view.video),
                                              "sidecar": _file_record(root, view.sidecar)} for view in rec_views}}
             for rec, traj, rec_views in zip(definition.recordings, trajectories, views)}
    phash = params_hash({"schema": SCHEMA, "vidvpr": __version__, "definition": definition.as_dict(), "files": files})
    out = ensure_writable_dir(Path(out_dir))
    previous = read_json(out / MANIFEST_FILE)
    if not force and _is_done(out, previous, phash):
        LOG.info("%s: manifest of the same definition and inputs already built, skipping", out)
        return ManifestSummary.from_meta(out, previous, skipped=True)  # type: ignore[arg-type]
    rows: dict[str, list[ManifestRow]] = {split: [] for split in SPLITS}
    inputs, dropped_total = [], 0
    for rec, traj, rec_views in zip(definition.recordings, trajectories, views):
        rec_dropped, view_records = 0, []
        covered: dict[bytes, np.ndarray] = {}  # views sliced together share frame times: check (and warn) once
        for view in rec_views:
            key = view.time_s.tobytes()
            if key not in covered:
                covered[key] = view_coverage(rec, traj, view, config.strict)
            sampled, dropped = view_rows(rec, traj, view, rules[rec.split], config.strict, covered[key])
            rows[rec.split].extend(sampled)
            rec_dropped += dropped
            view_records.append({
                "view": view.name, "yaw_deg": view.yaw_deg, "pitch_deg": view.pitch_deg, "frames": int(view.time_s.size),
                "rows": len(sampled), "dropped_frames": dropped, **files[rec.name]["views"][view.name],
                "params_hash": view.meta.get("params_hash"), "source_hash": (view.meta.get("source") or {}).get("hash"),
            })
            if on_view:
                on_view(1)
        dropped_total += rec_dropped
        inputs.append({
            "name": rec.name, "split": rec.split, "dropped_frames": rec_dropped, "views": view_records,
            "trajectory": {**files[rec.name]["trajectory"], "format": traj.format,
                           "time_offset_s": rec.trajectory.time_offset_s, "samples": int(traj.t_s.size),
                           "time_range_s": [float(traj.t_s[0]), float(traj.t_s[-1])]},
        })
    for split in SPLITS:
        if not rows[split]:
            raise BadInput(f"{source}: no {split} rows left: every {split} frame is outside its trajectory's time "
                           "range; check time_offset_s (trajectory time = video time + offset)")
    positives = compute_positives(rows["database"], rows["query"], config.radius_m, config.max_heading_diff_deg)
    for row, hits in zip(rows["query"], positives):
        row.num_positives = int(len(hits))
    stats = positive_stats(positives, len(rows["database"]))
    LOG.info("%s: %d database and %d query rows, %d frames dropped, median %s positives per query",
             out, len(rows["database"]), len(rows["query"]), dropped_total, stats["median"])
    (out / MANIFEST_FILE).unlink(missing_ok=True)  # an older manifest.json must not vouch for the new files
    for split in SPLITS:
        _write_csv(out / CSV_FILES[split], split, rows[split])
    db_ids = [row.id for row in rows["database"]]
    write_json_atomic(out / POSITIVES_FILE, {
        "schema": POSITIVES_SCHEMA, "radius_m": float(config.radius_m),
        "max_heading_diff_deg": config.max_heading_diff_deg,
        "database": CSV_FILES["database"], "query": CSV_FILES["query"],
        "positives": {row.id: [db_ids[i] for i in hits] for row, hits in zip(rows["query"], positives)},
        "queries_without_positives": [row.id for row, hits in zip(rows["query"], positives) if not len(hits)],
    })
    counts = {"database": len(rows["database"]), "query": len(rows["query"]), "dropped_frames": dropped_total,
              "queries_without_positives": stats["queries_without_positives"]}
    definition_record = definition.as_dict()
    if Path(source).is_file():
        definition_record["file"] = {"path": source, "hash": sha256_file(Path(source))}
    outputs = [*CSV_FILES.values(), POSITIVES_FILE]
    meta = {
        "schema": SCHEMA, "kind": "manifest", "name": definition.name,
        "root": os.path.relpath(root.resolve(), out.resolve()), "root_abs": str(root.resolve()),
        "files": {**CSV_FILES, "positives": POSITIVES_FILE},
        "outputs": {name: {"bytes": (out / name).stat().st_size, "hash": sha256_file(out / name)} for name in outputs},
        "utm_zone": None if zone is None else {"number": zone[0], "letter": zone[1]},
        "definition": definition_record,
        "parameters": {**dataclasses.asdict(config), "database_sampling": str(rules["database"]),
                       "query_sampling": str(rules["query"])},
        "inputs": inputs, "counts": counts, "positives": stats,
        "params_hash": phash, "versions": runtime_versions(), "command": command_line(),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    write_json_atomic(out / MANIFEST_FILE, meta)
    return ManifestSummary.from_meta(out, meta, skipped=False)


# ---------------------------------------------------------------- load


@dataclass
class Manifest:
    """A manifest folder read back: rows per split, positives as database indices per query."""

    directory: Path
    root: Path
    meta: dict[str, Any]
    database: list[ManifestRow]
    queries: list[ManifestRow]
    positives: list[np.ndarray]

    def video_path(self, row: ManifestRow) -> Path:
        """Absolute path of a row's view video (checked to lie inside the root when loaded)."""
        return self.root / row.video

    @property
    def matched_queries(self) -> list[int]:
        """Indices of queries with at least one positive (the ones recall is computed over)."""
        return [i for i, hits in enumerate(self.positives) if len(hits)]


def _cell(path: Path, line: int, name: str, kind: str, text: str) -> Any:
    if text == "" and kind.endswith("?"):
        return None
    base = kind.rstrip("?")
    try:
        value = {"str": str, "int": int, "float": float}[base](text)
    except ValueError:
        raise BadInput(f"{path}: line {line}: {name} is not a{'n' if base == 'int' else ''} {base}: {text!r}") from None
    if base == "float" and not math.isfinite(value):
        raise BadInput(f"{path}: line {line}: {name} is {text!r} (must be finite)")
    if base == "str" and not value:
        raise BadInput(f"{path}: line {line}: {name} is empty")
    return value


def read_rows(path: Path, split: str, root: Path) -> list[ManifestRow]:
    """Rows of a manifest CSV, typed and checked (known split, video path inside `root`)."""
    expected = columns(split)
    try:
        handle = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: manifest file not found") from None
    rows = []
    with handle:
        reader = csv.DictReader(handle)
        missing = [name for name in expected if name not in (reader.fieldnames or [])]
        if missing:
            raise BadInput(f"{path}: missing column(s) {', '.join(missing)}")
        for record in reader:
            line = reader.line_num
            values = {name: _cell(path, line, name, COLUMNS[name], record[name] or "") for name in expected}
            if values["split"] != split:
                raise BadInput(f"{path}: line {line}: split is {values['split']!r}, expected {split}")
            check_name(values["recording"], f"line {line}: recording", str(path))
            check_name(values["view"], f"line {line}: view", str(path))
            if values["id"] != frame_id(values["recording"], values["view"], values["frame"]):
                raise BadInput(f"{path}: line {line}: id {values['id']!r} is not <recording>/<view>/<frame:06d>")
            resolve_inside(root, values["video"], f"line {line}: video", str(path))
            rows.append(ManifestRow(**values))
    ids = [row.id for row in rows]
    if len(set(ids)) != len(ids):
        raise BadInput(f"{path}: duplicate row ids")
    return rows


def load_manifest(manifest_dir: str | Path, root: str | Path | None = None) -> Manifest:
    """Read a manifest folder; `root` overrides the dataset root recorded in manifest.json."""
    folder = Path(manifest_dir)
    if not folder.is_dir():
        raise BadInput(f"{folder}: {'is a file, not' if folder.exists() else 'not found; expected'} a manifest folder "
                       "(vidvpr manifest --out)")
    meta = read_json(folder / MANIFEST_FILE)
    if meta is None or meta.get("schema") != SCHEMA:
        raise BadInput(f"{folder}: not a finished vidvpr manifest (no readable {MANIFEST_FILE} with schema {SCHEMA})")
    base = Path(root) if root is not None else folder / meta.get("root", ".")
    if not base.is_dir():
        raise BadInput(f"{base}: dataset root not found; pass --root")
    base = base.resolve()
    database = read_rows(folder / CSV_FILES["database"], "database", base)
    queries = read_rows(folder / CSV_FILES["query"], "query", base)
    gt = read_json(folder / POSITIVES_FILE)
    if gt is None or gt.get("schema") != POSITIVES_SCHEMA or not isinstance(gt.get("positives"), dict):
        raise BadInput(f"{folder / POSITIVES_FILE}: missing or not a {POSITIVES_SCHEMA} file")
    index = {row.id: i for i, row in enumerate(database)}
    positives = []
    for row in queries:
        ids = gt["positives"].get(row.id)
        unknown = [x for x in ids or [] if x not in index]
        if ids is None or unknown:
            problem = "no entry" if ids is None else f"unknown database id {unknown[0]!r}"
            raise BadInput(f"{folder / POSITIVES_FILE}: query {row.id}: {problem}")
        positives.append(np.asarray([index[x] for x in ids], dtype=np.int64))
    return Manifest(folder, base, meta, database, queries, positives)
