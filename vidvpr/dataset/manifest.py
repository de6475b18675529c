"""`vidvpr manifest`: sliced view videos + trajectories → database.csv, query.csv, positives.json.

A dataset definition (`vidvpr.dataset.definition`; TOML, see manifests/README.md) lists
recordings: each one's split (database or query), its sliced views (``<views_dir>/<recording>/
<view>.mp4`` + ``.json`` sidecar, as `vidvpr slice` writes them) and its trajectory. Every view
frame inside the trajectory's time range gets a position and heading; frames are sampled per
split (every N frames, T seconds or D metres); each query's positives are the database rows
within a radius (`vidvpr.dataset.positives`). All paths are relative to the dataset root and
must stay inside it.

The folder is built under a temporary name and renamed into place when complete, so it always
holds one run's output (database.csv, query.csv, positives.json and manifest.json) or none.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr.core.atomic import built_dir, ensure_writable_dir, is_partial_name, removing_new_dirs
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.core.provenance import command_line, params_hash, runtime_versions, sha256_file
from vidvpr.core.records import FileRecord, read_json_object
from vidvpr.core.sidecars import SliceSidecar
from vidvpr.dataset.definition import SPLITS, DatasetDefinition, RecordingSpec, check_name, resolve_inside
from vidvpr.dataset.loading import Manifest, changed_output, load_manifest  # noqa: F401  (re-exported)
from vidvpr.dataset.positives import find_positives, positive_stats
from vidvpr.dataset.records import (
    CSV_FILES,
    DATA_FILES,
    MANIFEST_FILE,
    POSITIVES_FILE,
    ManifestRecord,
    ManifestRow,
    PositivesFile,
    RecordingInputRecord,
    TrajectoryInputRecord,
    UtmZoneRecord,
    ViewInputRecord,
)
from vidvpr.dataset.rows import frame_id, rows_csv_text
from vidvpr.dataset.sampling import SamplingRule
from vidvpr.geo import trajectory as trj
from vidvpr.geo.readers import read_trajectory

LOG = logging.getLogger(__name__)

# Bump when a change here changes the rows or positives made from the same definition and inputs.
MANIFEST_OUTPUT_VERSION = 3  # 3: headings that round to 360 are written as 0
DECIMALS = {"m": 3, "deg": 3, "latlon": 7, "s": 6}


# ---------------------------------------------------------------- view sidecars


@dataclass(frozen=True)
class ManifestView:
    """One sliced view of a recording, as its sidecar describes it, with paths inside the root."""

    name: str
    video: Path
    video_rel: str
    sidecar_path: Path
    sidecar: SliceSidecar

    @property
    def time_s(self) -> np.ndarray:
        return self.sidecar.timestamps.times()


def read_view(root: Path, sidecar_path: Path, recording: str, source: str) -> ManifestView:
    """A view's geometry and frame times from its sidecar (`vidvpr slice` or `vidvpr import`); its video
    must exist intact."""
    resolve_inside(root, sidecar_path, f"recording {recording} view sidecar", source)
    sidecar = SliceSidecar.load(sidecar_path)
    name = check_name(sidecar.view, "view", str(sidecar_path))
    if name != sidecar_path.stem:
        raise BadInput(f"{sidecar_path}: sidecar names view {name!r} but its file is {sidecar_path.name}")
    video, video_rel = resolve_inside(root, sidecar_path.with_suffix(".mp4"), f"recording {recording} view video",
                                      source)
    if not video.is_file():
        raise BadInput(f"{video}: view video not found (its sidecar {sidecar_path.name} exists); re-run {_maker(sidecar)}")
    if video.stat().st_size != sidecar.output.bytes:
        raise BadInput(f"{video}: {video.stat().st_size} bytes but its sidecar says {sidecar.output.bytes}; "
                       f"re-run {_maker(sidecar)}")
    if not np.isfinite(sidecar.timestamps.times()).all():
        raise BadInput(f"{sidecar_path}: timestamps must be finite")
    return ManifestView(name, video, video_rel, sidecar_path, sidecar)


def _maker(sidecar: SliceSidecar) -> str:
    return "vidvpr import" if sidecar.imported else "vidvpr slice"


def _is_view_sidecar(path: Path) -> bool:
    """Whether a JSON file in a views folder is a slice sidecar (then it must be valid); other JSON
    files (another tool's, or damaged beyond recognition) are left out with a warning."""
    try:
        data = read_json_object(path, "view sidecar")
    except BadInput as exc:
        LOG.warning("%s: not a vidvpr slice sidecar; left out (%s)", path, str(exc).removeprefix(f"{path}: "))
        return False
    schema = str(data.get("schema", ""))
    if schema.startswith("vidvpr.slice/") and schema != SliceSidecar.SCHEMA:
        raise BadInput(f"{path}: made by another vidvpr version (schema {schema!r}); re-run vidvpr slice")
    if schema != SliceSidecar.SCHEMA:
        LOG.warning("%s: not a vidvpr slice sidecar; left out", path)
        return False
    return True


def find_views(definition: DatasetDefinition, rec: RecordingSpec) -> list[ManifestView]:
    """The recording's views: those listed, or every view sidecar in ``<views_dir>/<recording>/``."""
    root, source, views_dir = definition.root, definition.source, definition.views_dir(rec)
    folder, _ = resolve_inside(root, f"{views_dir}/{rec.name}", f"recording {rec.name} views folder", source)
    if rec.views is not None:
        sidecars = [folder / f"{view}.json" for view in rec.views]
        for car in sidecars:
            if not car.is_file():
                raise BadInput(f"{car}: view sidecar not found for recording {rec.name!r} (listed in {source})")
    else:
        if not folder.is_dir():
            raise BadInput(f"{folder}: views folder of recording {rec.name!r} not found; run vidvpr slice --out "
                           f"{views_dir} on its 360° video, or vidvpr import --out {views_dir} on other footage")
        sidecars = [car for car in sorted(folder.glob("*.json"))
                    if not is_partial_name(car.name) and _is_view_sidecar(car)]
        orphans = sorted({video.stem for video in folder.glob("*.mp4") if not is_partial_name(video.name)}
                         - {car.stem for car in sidecars})
        if orphans:
            LOG.warning("%s: left out %d video(s) without a vidvpr slice sidecar: %s", folder, len(orphans),
                        ", ".join(orphans))
        if not sidecars:
            raise BadInput(f"{folder}: no view sidecars (*.json from vidvpr slice or vidvpr import) for recording "
                           f"{rec.name!r}")
    return [read_view(root, car, rec.name, source) for car in sidecars]


# ---------------------------------------------------------------- rows


def _optional(value: float, decimals: int) -> float | None:
    return None if not math.isfinite(value) else round(float(value), decimals)


def _optional_heading(value: float) -> float | None:
    """A heading column's value: None for NaN, else rounded and kept in [0, 360) (`round_heading_deg`)."""
    return None if not math.isfinite(value) else trj.round_heading_deg(value, DECIMALS["deg"])


def view_coverage(rec: RecordingSpec, traj: trj.Trajectory, view: ManifestView, strict: bool = False) -> np.ndarray:
    """Mask of the view's frames inside the trajectory's time range (`trajectory.coverage`)."""
    return trj.coverage(traj, view.time_s, strict, time_offset_s=rec.trajectory.time_offset_s,
                        frames_name=f"frames of recording {rec.name} ({view.video_rel})")


def view_rows(rec: RecordingSpec, traj: trj.Trajectory, view: ManifestView, rule: SamplingRule,
              strict: bool = False, inside: np.ndarray | None = None) -> tuple[list[ManifestRow], int]:
    """(sampled rows, frames dropped outside the trajectory) of one view.

    `inside` (the frames inside the trajectory's time range) is computed when not given.
    """
    offset = rec.trajectory.time_offset_s
    time_s = view.time_s
    if inside is None:
        inside = view_coverage(rec, traj, view, strict)
    pose = trj.position_at(traj, time_s, time_offset_s=offset)
    candidates = np.flatnonzero(inside)
    keep = candidates[rule.select(time_s[candidates], pose.easting_m[candidates], pose.northing_m[candidates])]
    east, north = pose.easting_m[keep], pose.northing_m[keep]
    lat = lon = np.full(keep.size, np.nan)
    if traj.utm_zone_number is not None and keep.size:
        lat, lon = trj.lat_lon(traj, east, north)
    camera = pose.heading_deg[keep]
    geometry = view.sidecar.geometry
    heading = np.asarray(trj.view_heading_deg(camera, geometry.yaw_deg), dtype=float).reshape(-1)
    source_frames = view.sidecar.timestamps.source_frames()
    d_m, d_ll = DECIMALS["m"], DECIMALS["latlon"]
    rows = [
        ManifestRow(
            id=frame_id(rec.name, view.name, int(i)), split=rec.split, recording=rec.name, view=view.name,
            yaw_deg=geometry.yaw_deg, pitch_deg=geometry.pitch_deg, hfov_deg=geometry.hfov_deg, frame=int(i),
            source_frame=int(source_frames[i]), time_s=round(float(time_s[i]), DECIMALS["s"]),
            easting_m=round(float(east[k]), d_m), northing_m=round(float(north[k]), d_m),
            utm_zone_number=traj.utm_zone_number, utm_zone_letter=traj.utm_zone_letter,
            lat_deg=_optional(lat[k], d_ll), lon_deg=_optional(lon[k], d_ll),
            camera_heading_deg=_optional_heading(camera[k]), heading_deg=_optional_heading(heading[k]),
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
    def from_record(cls, out_dir: Path, meta: ManifestRecord, skipped: bool) -> ManifestSummary:
        counts, parameters = meta.counts, meta.parameters
        return cls(str(out_dir), {split: counts[split] for split in SPLITS}, counts["dropped_frames"],
                   counts["queries_without_positives"], meta.positives["median"], float(parameters["radius_m"]),
                   parameters["max_heading_diff_deg"], skipped)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        state = "already done, skipped:" if self.skipped else "wrote"
        heading = f", heading within {self.max_heading_diff_deg:g}°" if self.max_heading_diff_deg else ""
        return [
            f"{state} {self.rows['database']} database and {self.rows['query']} query rows in {self.out_dir}",
            f"dropped {self.dropped_frames} view frames outside their trajectory's time range",
            f"positives within {self.radius_m:g} m{heading}: median {self.median_positives} per query; "
            f"{self.queries_without_positives} queries have none (eval excludes them, or counts misses: "
            "--unmatched-queries)",
        ]


def manifest_done(out: Path, phash: str) -> ManifestRecord | None:
    """The folder's manifest record when it was built from the same definition and inputs and its
    data files are intact (size and content hash), else None."""
    meta = ManifestRecord.load_or_none(out / MANIFEST_FILE)
    if meta is None or meta.params_hash != phash or set(meta.outputs) != set(DATA_FILES):
        return None
    return meta if changed_output(out, meta) is None else None


def _check_out_dir(out: Path) -> None:
    """A manifest folder holds only a manifest: refuse to replace a folder with other files in it."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file, not a manifest folder")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in (*DATA_FILES, MANIFEST_FILE)
                        and not is_partial_name(p.name))
        if others:
            raise OutputError(f"{out}: holds other files ({', '.join(others[:3])}); a manifest folder holds only "
                              f"{', '.join((*DATA_FILES, MANIFEST_FILE))}: choose an empty or new --out")


def build_manifest(
    definition: DatasetDefinition, out_dir: str | Path, on_view: Callable[[int], None] | None = None,
    force: bool = False,
) -> ManifestSummary:
    """Write database.csv, query.csv, positives.json and manifest.json into `out_dir`, as one folder.

    Skipped, unless `force`, when `out_dir` holds a manifest built from the same definition and
    input files (by content hash) whose outputs are unchanged.
    """
    started = time.perf_counter()
    spec, root, source = definition.spec, definition.root.resolve(), definition.source
    if not root.is_dir():
        raise BadInput(f"{source}: dataset root {root} is not a folder")
    out = Path(out_dir)
    _check_out_dir(out)
    trajectories, views = [], []
    for rec in definition.recordings:
        path, _ = resolve_inside(root, rec.trajectory.path, f"recording {rec.name} trajectory", source)
        options = rec.trajectory
        trajectories.append(read_trajectory(path, options.format, axes=options.axes, fps=options.fps,
                                            scale=options.scale, force_zone_number=spec.dataset.utm_zone))
        views.append(find_views(definition, rec))
    zone = trj.check_same_zone(trajectories, spec.dataset.shared_local_frame)
    if spec.dataset.utm_zone is not None and zone is None:
        LOG.warning("%s: utm_zone %d (--utm-zone) has no effect: every trajectory is in local metres, none in "
                    "latitude and longitude", source, spec.dataset.utm_zone)
    files = {rec.name: {"trajectory": FileRecord.of(Path(traj.source), root),
                        "views": {view.name: {"video": FileRecord.of(view.video, root),
                                              "sidecar": FileRecord.of(view.sidecar_path, root)}
                                  for view in rec_views}}
             for rec, traj, rec_views in zip(definition.recordings, trajectories, views)}
    phash = params_hash({"schema": ManifestRecord.SCHEMA, "version": MANIFEST_OUTPUT_VERSION,
                         "definition": spec.model_dump(mode="json"),
                         "files": {name: {"trajectory": rec["trajectory"].hash,
                                          "views": {view: {k: r.hash for k, r in pair.items()}
                                                    for view, pair in rec["views"].items()}}
                                   for name, rec in files.items()}})
    previous = None if force else manifest_done(out, phash)
    if previous is not None:
        LOG.info("%s: manifest of the same definition and inputs already built, skipping", out)
        return ManifestSummary.from_record(out, previous, skipped=True)
    rows: dict[str, list[ManifestRow]] = {split: [] for split in SPLITS}
    inputs, dropped_total = [], 0
    for rec, traj, rec_views in zip(definition.recordings, trajectories, views):
        if trj.never_moves(traj):
            still = (f"{traj.source}: never moves {trj.MIN_DISPLACEMENT_M:g} m in {trj.HEADING_BASELINE_S:g} s and "
                     f"has no heading column: the rows of recording {rec.name} have no heading")
            if spec.positives.max_heading_diff_deg is not None:
                raise BadInput(f"{still}, so positives cannot be filtered by heading (max_heading_diff_deg, "
                               "--max-heading-diff)")
            LOG.warning("%s", still)
        rec_dropped, view_records = 0, []
        covered: dict[bytes, np.ndarray] = {}  # views sliced together share frame times: check (and warn) once
        for view in rec_views:
            key = view.time_s.tobytes()
            if key not in covered:
                covered[key] = view_coverage(rec, traj, view, spec.dataset.strict)
            sampled, dropped = view_rows(rec, traj, view, definition.sampling(rec.split), spec.dataset.strict,
                                         covered[key])
            rows[rec.split].extend(sampled)
            rec_dropped += dropped
            view_records.append(ViewInputRecord(
                view=view.name, yaw_deg=view.sidecar.geometry.yaw_deg, pitch_deg=view.sidecar.geometry.pitch_deg,
                frames=view.sidecar.frames, rows=len(sampled), dropped_frames=dropped,
                video=files[rec.name]["views"][view.name]["video"],
                sidecar=files[rec.name]["views"][view.name]["sidecar"],
                params_hash=view.sidecar.params_hash, source_hash=view.sidecar.source.hash))
            if on_view:
                on_view(1)
        dropped_total += rec_dropped
        trajectory_file = files[rec.name]["trajectory"]
        inputs.append(RecordingInputRecord(
            name=rec.name, split=rec.split, dropped_frames=rec_dropped, views=view_records,
            trajectory=TrajectoryInputRecord(**trajectory_file.model_dump(), format=traj.format,
                                             time_offset_s=rec.trajectory.time_offset_s, samples=int(traj.t_s.size),
                                             time_range_s=[float(traj.t_s[0]), float(traj.t_s[-1])])))
    for split in SPLITS:
        if not rows[split]:
            raise BadInput(f"{source}: no {split} rows left: every {split} frame is outside its trajectory's time "
                           "range; check time_offset_s (trajectory time = video time + offset)")
    radius_m, max_heading = spec.positives.radius_m, spec.positives.max_heading_diff_deg
    positives = compute_positives(rows["database"], rows["query"], radius_m, max_heading)
    for row, hits in zip(rows["query"], positives):
        row.num_positives = int(len(hits))
    stats = positive_stats(positives, len(rows["database"]))
    LOG.info("%s: %d database and %d query rows, %d frames dropped, median %s positives per query",
             out, len(rows["database"]), len(rows["query"]), dropped_total, stats["median"])
    db_ids = [row.id for row in rows["database"]]
    positives_file = PositivesFile(
        radius_m=float(radius_m), max_heading_diff_deg=max_heading, database=CSV_FILES["database"],
        query=CSV_FILES["query"],
        positives={row.id: [db_ids[i] for i in hits] for row, hits in zip(rows["query"], positives)},
        queries_without_positives=[row.id for row, hits in zip(rows["query"], positives) if not len(hits)])
    counts = {"database": len(rows["database"]), "query": len(rows["query"]), "dropped_frames": dropped_total,
              "queries_without_positives": stats["queries_without_positives"]}
    definition_record: dict[str, Any] = definition.as_dict()
    if Path(source).is_file():
        definition_record["file"] = {"path": source, "hash": sha256_file(Path(source))}
    _write_folder(out, rows, positives_file, lambda outputs: ManifestRecord(
        name=definition.name, root=os.path.relpath(root, out.resolve()), root_abs=str(root),
        files={**CSV_FILES, "positives": POSITIVES_FILE}, outputs=outputs,
        utm_zone=None if zone is None else UtmZoneRecord(number=zone[0], letter=zone[1]),
        definition=definition_record,
        parameters={**spec.sampling.model_dump(mode="json", include={"database", "query"}),
                    "database_sampling": str(definition.sampling("database")),
                    "query_sampling": str(definition.sampling("query")),
                    "radius_m": radius_m, "max_heading_diff_deg": max_heading, "strict": spec.dataset.strict,
                    "utm_zone": spec.dataset.utm_zone, "shared_local_frame": spec.dataset.shared_local_frame},
        inputs=inputs, counts=counts, positives=stats, params_hash=phash, versions=runtime_versions(),
        command=command_line(), elapsed_s=round(time.perf_counter() - started, 3)))
    return ManifestSummary.from_record(out, ManifestRecord.load(out / MANIFEST_FILE), skipped=False)


def _write_folder(out: Path, rows: dict[str, list[ManifestRow]], positives: PositivesFile,
                  manifest: Callable[[dict[str, FileRecord]], ManifestRecord]) -> None:
    """Build the folder under a temporary name, then put it in place of `out` in one rename."""
    with removing_new_dirs(out.parent):
        ensure_writable_dir(out.parent)
        _swap_in_folder(out, rows, positives, manifest)


def _swap_in_folder(out: Path, rows: dict[str, list[ManifestRow]], positives: PositivesFile,
                    manifest: Callable[[dict[str, FileRecord]], ManifestRecord]) -> None:
    with built_dir(out) as tmp:
        for split in SPLITS:
            (tmp / CSV_FILES[split]).write_text(rows_csv_text(split, rows[split]), encoding="utf-8")
        positives.save(tmp / POSITIVES_FILE)
        # hashes of what this run wrote, recorded before anything else can touch the files
        outputs = {name: FileRecord.of(tmp / name, tmp) for name in DATA_FILES}
        manifest(outputs).save(tmp / MANIFEST_FILE)
