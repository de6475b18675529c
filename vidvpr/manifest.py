"""`vidvpr manifest`: sliced view videos + trajectories → database.csv, query.csv, positives.json.

A dataset definition (TOML, see manifests/README.md) lists recordings: each one's split
(database or query), its sliced views (``<views_dir>/<recording>/<view>.mp4`` + ``.json``
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
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr import trajectory as trj
from vidvpr.errors import BadInput, ToolMissing
from vidvpr.positives import (
    DEFAULT_RADIUS_M,
    SamplingRule,
    check_max_heading_diff,
    check_radius,
    find_positives,
    parse_sampling,
    positive_stats,
)
from vidvpr.provenance import (
    atomic_output,
    command_line,
    ensure_writable_dir,
    read_json,
    runtime_versions,
    sha256_file,
    write_json_atomic,
)

LOG = logging.getLogger(__name__)

SCHEMA = "vidvpr.manifest/1"
POSITIVES_SCHEMA = "vidvpr.positives/1"
SLICE_SCHEMA = "vidvpr.slice/1"
SPLITS = ("database", "query")
CSV_FILES = {"database": "database.csv", "query": "query.csv"}
POSITIVES_FILE = "positives.json"
MANIFEST_FILE = "manifest.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")  # recording and view names
DECIMALS = {"m": 3, "deg": 3, "latlon": 7, "s": 6}


# ---------------------------------------------------------------- names and paths


def check_name(name: Any, what: str, source: str) -> str:
    """A recording or view name usable in ids and file names (letters, digits, . _ + -)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise BadInput(f"{source}: {what} {name!r} must be 1-100 letters, digits, '.', '_', '+' or '-' "
                       "(starting with a letter or digit)")
    return name


def resolve_inside(root: Path, path: str | Path, what: str, source: str) -> tuple[Path, str]:
    """(absolute path, path relative to `root` in POSIX form) of `path`, which must lie in `root`.

    Relative paths are taken from `root`. Rejected with BadInput: empty paths, paths that
    leave the root (``..``, absolute paths elsewhere) and symlinks resolving outside it.
    """
    root_abs = Path(root).resolve()
    text = str(path)
    if not text.strip():
        raise BadInput(f"{source}: {what} is empty")
    candidate = Path(os.path.normpath(root_abs / Path(text)))  # absolute `path` replaces root_abs
    if not candidate.is_relative_to(root_abs):
        raise BadInput(f"{source}: {what} {text!r} is outside the dataset root {root_abs}")
    if not candidate.resolve().is_relative_to(root_abs):
        raise BadInput(f"{source}: {what} {text!r} leads outside the dataset root {root_abs} (symlink)")
    return candidate, candidate.relative_to(root_abs).as_posix()


# ---------------------------------------------------------------- the dataset definition


@dataclass(frozen=True)
class TrajectorySpec:
    """A recording's trajectory file (path relative to the dataset root) and reader options."""

    path: str
    format: str = "auto"
    time_offset_s: float = 0.0  # trajectory time = video time + time_offset_s
    axes: str | None = None  # tum, keyframes-json: "xy" or "xz"
    fps: float | None = None  # keyframes-json
    scale: float | None = None  # tum, keyframes-json: metres per SLAM unit


@dataclass(frozen=True)
class RecordingSpec:
    """One recording: its split, sliced views and trajectory."""

    name: str
    split: str
    trajectory: TrajectorySpec
    views_dir: str = "views"  # holds <recording>/<view>.mp4 + .json, relative to the root
    views: tuple[str, ...] | None = None  # None: every view found


@dataclass(frozen=True)
class ManifestConfig:
    """Dataset-wide parameters, each default written once."""

    database_sampling: str = "1m"
    query_sampling: str = "1m"
    radius_m: float = DEFAULT_RADIUS_M
    max_heading_diff_deg: float | None = None  # None: positives by distance only
    strict: bool = False  # error (instead of dropping) on frames outside the trajectory
    utm_zone: int | None = None  # force geographic trajectories into this UTM zone

    def sampling(self, split: str) -> SamplingRule:
        return parse_sampling(self.database_sampling if split == "database" else self.query_sampling,
                              f"{split} sampling")


@dataclass(frozen=True)
class DatasetDefinition:
    """Recordings and parameters of one dataset; `source` is the TOML file it came from, if any."""

    name: str
    root: Path
    recordings: tuple[RecordingSpec, ...]
    config: ManifestConfig = field(default_factory=ManifestConfig)
    source: str = "command line"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "root": str(self.root), "source": self.source,
                "config": dataclasses.asdict(self.config),
                "recordings": [dataclasses.asdict(rec) for rec in self.recordings]}


TOML_KEYS: dict[str, tuple[str, ...]] = {
    "": ("dataset", "sampling", "positives", "recordings"),
    "dataset": ("name", "root", "views_dir", "utm_zone", "strict"),
    "sampling": ("database", "query"),
    "positives": ("radius_m", "max_heading_diff_deg"),
    "recordings": ("name", "split", "trajectory", "views_dir", "views"),
    "trajectory": tuple(f.name for f in dataclasses.fields(TrajectorySpec)),
}
NUMBER = (int, float)


def _table(source: str, where: str, value: Any, keys: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{source}: {where} must be a table")
    unknown = sorted(set(value) - set(TOML_KEYS[keys]))
    if unknown:
        raise BadInput(f"{source}: unknown key {unknown[0]!r} in {where or 'the top level'}; "
                       f"allowed: {', '.join(TOML_KEYS[keys])}")
    return value


TYPE_NAMES = {NUMBER: "number", (str,): "string", (bool,): "boolean", (int,): "integer", (list,): "list"}


def _typed(source: str, where: str, table: dict[str, Any], key: str, types: tuple[type, ...], default: Any) -> Any:
    """table[key] (or `default` when absent), which must be of `types` (a bool is not a number)."""
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise BadInput(f"{source}: {where}.{key} must be a {TYPE_NAMES[types]}, got {value!r}")
    return value


def _trajectory_spec(source: str, where: str, value: Any) -> TrajectorySpec:
    if isinstance(value, str):
        return TrajectorySpec(path=value)
    table = _table(source, where, value, "trajectory")
    if "path" not in table:
        raise BadInput(f"{source}: {where} needs a path")
    return TrajectorySpec(
        path=_typed(source, where, table, "path", (str,), None),
        format=_typed(source, where, table, "format", (str,), "auto"),
        time_offset_s=float(_typed(source, where, table, "time_offset_s", NUMBER, 0.0)),
        axes=_typed(source, where, table, "axes", (str,), None),
        fps=_typed(source, where, table, "fps", NUMBER, None),
        scale=_typed(source, where, table, "scale", NUMBER, None),
    )


def parse_definition(data: dict[str, Any], source: str, root: Path) -> DatasetDefinition:
    """A definition from parsed TOML (`root` already resolved); BadInput names `source` and the key."""
    _table(source, "", data, "")
    dataset = _table(source, "[dataset]", data.get("dataset", {}), "dataset")
    sampling = _table(source, "[sampling]", data.get("sampling", {}), "sampling")
    positives = _table(source, "[positives]", data.get("positives", {}), "positives")
    defaults = ManifestConfig()
    config = ManifestConfig(
        database_sampling=str(_typed(source, "sampling", sampling, "database", (str,), defaults.database_sampling)),
        query_sampling=str(_typed(source, "sampling", sampling, "query", (str,), defaults.query_sampling)),
        radius_m=_typed(source, "positives", positives, "radius_m", NUMBER, defaults.radius_m),
        max_heading_diff_deg=_typed(source, "positives", positives, "max_heading_diff_deg", NUMBER, None),
        strict=_typed(source, "dataset", dataset, "strict", (bool,), defaults.strict),
        utm_zone=_typed(source, "dataset", dataset, "utm_zone", (int,), None),
    )
    views_dir = _typed(source, "dataset", dataset, "views_dir", (str,), "views")
    entries = data.get("recordings")
    if not isinstance(entries, list) or not entries:
        raise BadInput(f"{source}: no [[recordings]]; list at least one database and one query recording")
    recordings = []
    for k, entry in enumerate(entries, 1):
        where = f"recordings[{k}]"
        table = _table(source, where, entry, "recordings")
        for key in ("name", "split", "trajectory"):
            if key not in table:
                raise BadInput(f"{source}: {where} needs a {key}")
        views = _typed(source, where, table, "views", (list,), None)
        if views is not None:
            views = tuple(check_name(view, f"{where}.views entry", source) for view in views)
        recordings.append(RecordingSpec(
            name=check_name(table["name"], f"{where}.name", source),
            split=_typed(source, where, table, "split", (str,), None),
            trajectory=_trajectory_spec(source, f"{where}.trajectory", table["trajectory"]),
            views_dir=_typed(source, where, table, "views_dir", (str,), views_dir),
            views=views,
        ))
    name = _typed(source, "dataset", dataset, "name", (str,), Path(source).stem)
    return DatasetDefinition(name=name, root=root, recordings=tuple(recordings), config=config, source=source)


def load_definition(path: str | Path, root: str | Path | None = None) -> DatasetDefinition:
    """Read a dataset definition TOML. `root` overrides its ``[dataset] root`` (which is relative
    to the TOML file's folder, and defaults to that folder)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise ToolMissing("reading a dataset definition needs Python 3.11 or later (tomllib)") from None
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: definition file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML ({exc})") from None
    dataset = data.get("dataset", {})
    in_file = dataset.get("root", ".") if isinstance(dataset, dict) else "."
    if not isinstance(in_file, str):
        raise BadInput(f"{path}: dataset.root must be a string, got {in_file!r}")
    base = Path(root) if root is not None else path.parent / in_file
    if isinstance(dataset, dict):
        data = {**data, "dataset": {k: v for k, v in dataset.items() if k != "root"}}
    return parse_definition(data, str(path), base.resolve())


def parse_recording_option(value: str, option: str) -> tuple[str, str]:
    """'REC=TRAJECTORY' → (recording, trajectory path)."""
    name, sep, trajectory_path = value.partition("=")
    if not sep or not name or not trajectory_path:
        raise BadInput(f"{option} {value!r}: expected RECORDING=TRAJECTORY, e.g. walk1=trajectories/walk1.csv")
    return check_name(name, "recording", option), trajectory_path


def definition_from_options(
    root: str | Path, database: Sequence[str], query: Sequence[str], *, views_dir: str | Path | None = None,
    trajectory: TrajectorySpec | None = None, name: str = "dataset",
) -> DatasetDefinition:
    """A definition from `--database REC=TRAJ` / `--query REC=TRAJ` options.

    Paths are ordinary paths (relative to the working directory) and must lie inside `root`;
    `trajectory` gives the reader options (its path is ignored) shared by all recordings.
    """
    root = Path(root).resolve()
    template = trajectory or TrajectorySpec(path="")
    views_rel = resolve_inside(root, Path(views_dir or root / "views").resolve(), "--views-dir", "command line")[1]
    recordings = []
    for split, values in (("database", database), ("query", query)):
        for value in values:
            rec, traj_path = parse_recording_option(value, f"--{split}")
            traj_rel = resolve_inside(root, Path(traj_path).resolve(), f"--{split} trajectory", "command line")[1]
            recordings.append(RecordingSpec(rec, split, dataclasses.replace(template, path=traj_rel), views_rel))
    return DatasetDefinition(name=name, root=root, recordings=tuple(recordings))


def with_overrides(definition: DatasetDefinition, **overrides: Any) -> DatasetDefinition:
    """The definition with config fields replaced by the overrides that are not None."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return dataclasses.replace(definition, config=dataclasses.replace(definition.config, **given))


def validate_definition(definition: DatasetDefinition) -> dict[str, SamplingRule]:
    """Check parameters and recordings before any work; the sampling rule per split."""
    source, config = definition.source, definition.config
    check_radius(config.radius_m, "radius (--radius, [positives] radius_m)")
    check_max_heading_diff(config.max_heading_diff_deg, "max heading difference (--max-heading-diff, "
                           "[positives] max_heading_diff_deg)")
    if config.utm_zone is not None and not 1 <= config.utm_zone <= 60:
        raise BadInput(f"{source}: UTM zone {config.utm_zone} is outside 1-60")
    rules = {split: config.sampling(split) for split in SPLITS}
    names = [rec.name for rec in definition.recordings]
    for rec in definition.recordings:
        check_name(rec.name, "recording name", source)
        if names.count(rec.name) > 1:
            raise BadInput(f"{source}: recording {rec.name!r} is listed twice")
        if rec.split not in SPLITS:
            raise BadInput(f"{source}: recording {rec.name!r}: unknown split {rec.split!r}; use database or query")
        if not math.isfinite(rec.trajectory.time_offset_s):
            raise BadInput(f"{source}: recording {rec.name!r}: time_offset_s must be finite")
    for split in SPLITS:
        if split not in {rec.split for rec in definition.recordings}:
            raise BadInput(f"{source}: no {split} recording; a dataset needs both a database and queries")
    return rules


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
    if meta.get("schema") != SLICE_SCHEMA or meta.get("kind") != "view_video":
        raise BadInput(f"{sidecar}: not a vidvpr slice sidecar (schema {meta.get('schema')!r}, expected {SLICE_SCHEMA})")
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
    try:
        return trj.coverage(traj, view.time_s, strict, time_offset_s=rec.trajectory.time_offset_s)
    except BadInput as exc:
        raise BadInput(f"recording {rec.name} ({view.video_rel}): {exc}") from None


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
    """What `build_manifest` wrote."""

    out_dir: str
    rows: dict[str, int]
    dropped_frames: int
    queries_without_positives: int
    median_positives: float | None
    radius_m: float
    max_heading_diff_deg: float | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        heading = f", heading within {self.max_heading_diff_deg:g}°" if self.max_heading_diff_deg else ""
        return [
            f"wrote {self.rows['database']} database and {self.rows['query']} query rows to {self.out_dir}",
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


def build_manifest(
    definition: DatasetDefinition, out_dir: str | Path, on_view: Callable[[int], None] | None = None
) -> ManifestSummary:
    """Write database.csv, query.csv, positives.json and (last) manifest.json into `out_dir`."""
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
    out = ensure_writable_dir(Path(out_dir))
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
                "rows": len(sampled), "dropped_frames": dropped, "video": _file_record(root, view.video),
                "sidecar": _file_record(root, view.sidecar), "params_hash": view.meta.get("params_hash"),
                "source_hash": (view.meta.get("source") or {}).get("hash"),
            })
            if on_view:
                on_view(1)
        dropped_total += rec_dropped
        inputs.append({
            "name": rec.name, "split": rec.split, "dropped_frames": rec_dropped, "views": view_records,
            "trajectory": {**_file_record(root, Path(traj.source)), "format": traj.format,
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
    write_json_atomic(out / MANIFEST_FILE, {
        "schema": SCHEMA, "kind": "manifest", "name": definition.name,
        "root": os.path.relpath(root.resolve(), out.resolve()), "root_abs": str(root.resolve()),
        "files": {**CSV_FILES, "positives": POSITIVES_FILE},
        "utm_zone": None if zone is None else {"number": zone[0], "letter": zone[1]},
        "definition": definition_record,
        "parameters": {**dataclasses.asdict(config), "database_sampling": str(rules["database"]),
                       "query_sampling": str(rules["query"])},
        "inputs": inputs, "counts": counts, "positives": stats,
        "versions": runtime_versions(), "command": command_line(),
        "elapsed_s": round(time.perf_counter() - started, 3),
    })
    return ManifestSummary(str(out), {s: len(rows[s]) for s in SPLITS}, dropped_total,
                           stats["queries_without_positives"], stats["median"], float(config.radius_m),
                           config.max_heading_diff_deg)


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
