"""`vidvpr demo make`: render the demo dataset, a synthetic 360° indoor loop, as equirect videos
with trajectories, so the whole toolkit runs on a fresh machine with nothing to download.

The dataset's definition (seed, route, places, traversals, sizes, ground-truth radius, views) is the
`DemoDefinition` dataclass below: its defaults are the built-in demo, and manifests/demo.toml is the
same definition written out (a test keeps the two identical). `--definition FILE` reads any TOML of
that shape; keys left out take the defaults. The defaults live in code, not in a data file, so an
installed package needs no package data, and the dataclasses double as the schema the TOML is
checked against.

Output, under DIR:
    <traversal>/<traversal>.mp4       equirect video (2:1, H.264 yuv420p)
    <traversal>/trajectory.csv        t,x,y,z,heading (csv-xy), or trajectory.txt in TUM format
    dataset.toml                      the `vidvpr manifest` definition of these recordings
    demo.json                         definition, versions, per-file hashes, ground-truth statistics
Next: `vidvpr slice DIR/*/*.mp4 --out DIR/views` (views as in the definition), then
`vidvpr manifest DIR/dataset.toml --out DIR/manifest`.
Every file is written under a temporary name and renamed when complete; a rerun with the same
definition and size skips traversals whose files demo.json records with matching hashes.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import tomllib
import typing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr.demo.world import (
    RENDER_VERSION,
    SHAPES,
    CameraPose,
    Lighting,
    PlacesSpec,
    RouteSpec,
    build_world,
    path_length_m,
    render_equirect_frame,
    walker_poses,
)
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import (
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

SIDECAR_NAME = "demo.json"
MANIFEST_DEFINITION_NAME = "dataset.toml"
SIDECAR_SCHEMA = "vidvpr.demo/1"
ROLES = ("database", "query")
TRAJECTORY_FILES = {"csv-xy": "trajectory.csv", "tum": "trajectory.txt"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MIN_WALL_CLEARANCE_M = 0.3
RENDER_AHEAD = 4  # frames rendered ahead of the encoder


@dataclass(frozen=True)
class TraversalSpec:
    """One walk around the loop: which split it feeds, where and how it is filmed."""

    name: str
    role: str  # "database" or "query"
    lateral_offset_m: float = 0.0  # right of the corridor centreline (negative: left)
    speed_mps: float = 1.4
    fps: float = 1.0
    start_m: float = 20.0  # where the walk starts, metres along the west corridor
    lighting_gain: float = 1.0
    tint_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise_std: float = 0.0  # sensor noise in 8-bit levels
    trajectory_format: str = "csv-xy"  # "csv-xy" or "tum"


@dataclass(frozen=True)
class EncodingSpec:
    """How the equirect videos are encoded (fixed threads: x264 output depends on the thread count)."""

    codec: str = "libx264"
    crf: int = 18
    preset: str = "veryfast"
    threads: int = 2
    pix_fmt: str = "yuv420p"


@dataclass(frozen=True)
class ViewsSpec:
    """The perspective views the demo is meant to be sliced into (`vidvpr slice --yaw --fov`)."""

    yaws_deg: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    fov_deg: float = 90.0


@dataclass(frozen=True)
class GroundTruthSpec:
    radius_m: float = 5.0  # a query's positives: database frames within this distance


def _default_traversals() -> tuple[TraversalSpec, ...]:
    return (
        TraversalSpec("database", "database", lateral_offset_m=-0.4, speed_mps=1.4, fps=1.0,
                      lighting_gain=1.0, tint_rgb=(1.0, 1.0, 1.0), noise_std=0.0, trajectory_format="csv-xy"),
        TraversalSpec("query", "query", lateral_offset_m=0.5, speed_mps=1.6, fps=1.0,
                      lighting_gain=0.7, tint_rgb=(1.08, 1.0, 0.88), noise_std=1.5, trajectory_format="csv-xy"),
    )


def _default_sizes() -> dict[str, tuple[int, int]]:
    return {"default": (1024, 512), "small": (256, 128)}


@dataclass(frozen=True)
class DemoDefinition:
    """The demo dataset. These defaults are the built-in demo; manifests/demo.toml spells them out."""

    name: str = "vidvpr-demo"
    seed: int = 11
    route: RouteSpec = field(default_factory=RouteSpec)
    places: PlacesSpec = field(default_factory=PlacesSpec)
    traversals: tuple[TraversalSpec, ...] = field(default_factory=_default_traversals)
    sizes: dict[str, tuple[int, int]] = field(default_factory=_default_sizes)
    ground_truth: GroundTruthSpec = field(default_factory=GroundTruthSpec)
    views: ViewsSpec = field(default_factory=ViewsSpec)
    encoding: EncodingSpec = field(default_factory=EncodingSpec)


@dataclass(frozen=True)
class DemoConfig:
    """Every `vidvpr demo make` option."""

    definition: DemoDefinition = field(default_factory=DemoDefinition)
    definition_source: str = "built-in"  # a path, or "built-in"
    size: str = "default"  # a key of definition.sizes
    force: bool = False


@dataclass(frozen=True)
class TraversalPlan:
    """Per-frame times and camera poses of one traversal (frame i is at t = i / fps)."""

    spec: TraversalSpec
    fps: Fraction
    t_s: np.ndarray
    east_m: np.ndarray
    north_m: np.ndarray
    heading_deg: np.ndarray
    path_length_m: float

    @property
    def frames(self) -> int:
        return int(self.t_s.size)


@dataclass
class TraversalResult:
    name: str
    role: str
    video: str
    trajectory: str
    trajectory_format: str
    frames: int
    fps: str
    duration_s: float
    path_length_m: float
    skipped: bool


@dataclass
class DemoResult:
    out_dir: str
    sidecar: str
    size: tuple[int, int]
    traversals: list[TraversalResult]
    ground_truth: dict[str, Any]
    elapsed_s: float


# ---------------------------------------------------------------- the definition


def _convert(value: Any, hint: Any, where: str, source: str) -> Any:
    """A TOML value checked against a dataclass field's type (dataclass, number, str, tuple, dict)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_dataclass(hint):
        if not isinstance(value, dict):
            raise BadInput(f"{source}: {where} must be a table, got {value!r}")
        return _from_table(hint, value, where, source)
    if hint is float or hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (hint is int and not isinstance(value, int)):
            raise BadInput(f"{source}: {where} must be {'an integer' if hint is int else 'a number'}, got {value!r}")
        if not math.isfinite(value):
            raise BadInput(f"{source}: {where} must be finite, got {value!r}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise BadInput(f"{source}: {where} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise BadInput(f"{source}: {where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(item, args[0], f"{where}[{i}]", source) for i, item in enumerate(value))
        if len(value) != len(args):
            raise BadInput(f"{source}: {where} must have {len(args)} values, got {len(value)}")
        return tuple(_convert(item, arg, f"{where}[{i}]", source) for i, (item, arg) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise BadInput(f"{source}: {where} must be a table, got {value!r}")
        return {key: _convert(item, args[1], f"{where}.{key}", source) for key, item in value.items()}
    raise TypeError(f"unsupported definition type {hint!r} at {where}")


def _from_table(cls: Any, table: dict[str, Any], where: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(table) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise BadInput(f"{source}: unknown key '{prefix}{unknown[0]}'; known keys{' in ' + where if where else ''}: "
                       f"{', '.join(names)}")
    kwargs = {}
    for f in fields(cls):
        if f.name in table:
            kwargs[f.name] = _convert(table[f.name], hints[f.name], f"{where}.{f.name}" if where else f.name, source)
    missing = [f.name for f in fields(cls) if f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise BadInput(f"{source}: {where} needs {', '.join(missing)}")
    return cls(**kwargs)


def load_definition(path: Path | None = None) -> DemoDefinition:
    """The demo definition in a TOML file (keys left out take the built-in values); None: built-in."""
    if path is None:
        definition = DemoDefinition()
        validate_definition(definition, "built-in definition")
        return definition
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: definition file not found") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{path}: not valid TOML ({exc})") from None
    definition = _from_table(DemoDefinition, table, "", str(path))
    validate_definition(definition, str(path))
    return definition


def validate_definition(d: DemoDefinition, source: str) -> None:
    """Reject definitions the world cannot be built or walked from, naming the key."""
    route, places = d.route, d.places

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise BadInput(f"{source}: {message}")

    need(bool(NAME_PATTERN.match(d.name)), f"name {d.name!r} must be letters, digits, '-' or '_'")
    need(route.shape in SHAPES, f"Unknown route.shape '{route.shape}'. Use {', '.join(SHAPES)}.")
    need(route.aspect >= 1.0, f"route.aspect must be >= 1, got {route.aspect:g}")
    need(route.corridor_width_m > 2 * MIN_WALL_CLEARANCE_M,
         f"route.corridor_width_m must exceed {2 * MIN_WALL_CLEARANCE_M:g}, got {route.corridor_width_m:g}")
    need(min(route.sides_m) > 2 * route.corridor_width_m + 2 * route.corner_radius_m,
         f"route.length_m {route.length_m:g} is too short for aspect {route.aspect:g}: the loop's short side "
         f"({min(route.sides_m):.1f} m) must exceed twice the corridor width plus twice the corner radius")
    need(0.0 < route.camera_height_m < route.wall_height_m,
         f"route.camera_height_m must be between 0 and wall_height_m ({route.wall_height_m:g}), "
         f"got {route.camera_height_m:g}")
    need(route.wall_height_m <= 10.0, f"route.wall_height_m must be at most 10, got {route.wall_height_m:g}")
    need(places.count >= 1, f"places.count must be >= 1, got {places.count}")
    need(0 <= places.places_sharing <= places.count,
         f"places.places_sharing must be in [0, places.count={places.count}], got {places.places_sharing}")
    need(places.shared_designs >= 1 or places.places_sharing == 0,
         "places.shared_designs must be >= 1 when places share designs")
    spacing = route.length_m / places.count
    need(spacing >= 2.5, f"places.count {places.count} leaves {spacing:.1f} m per place; posters need at least 2.5 m")
    need(bool(d.traversals), "define at least one [[traversals]]")
    names = [t.name for t in d.traversals]
    need(len(set(names)) == len(names), f"traversal names must be unique, got {', '.join(names)}")
    for t in d.traversals:
        where = f"traversal '{t.name}'"
        need(bool(NAME_PATTERN.match(t.name)), f"{where}: name must be letters, digits, '-' or '_' (it names files)")
        need(t.role in ROLES, f"{where}: Unknown role '{t.role}'. Use {' or '.join(ROLES)}.")
        limit = min(route.half_width_m - MIN_WALL_CLEARANCE_M, route.corner_radius_m - 0.1)
        need(abs(t.lateral_offset_m) <= limit,
             f"{where}: lateral_offset_m must be within ±{limit:g} m, got {t.lateral_offset_m:g}")
        need(t.speed_mps > 0, f"{where}: speed_mps must be positive, got {t.speed_mps:g}")
        need(0 < t.fps <= 60, f"{where}: fps must be in (0, 60], got {t.fps:g}")
        need(path_length_m(route, t.lateral_offset_m) / t.speed_mps * t.fps >= 2,
             f"{where}: one lap at {t.speed_mps:g} m/s and {t.fps:g} fps gives fewer than 2 frames")
        need(t.lighting_gain > 0 and all(c >= 0 for c in t.tint_rgb),
             f"{where}: lighting_gain must be positive and tint_rgb non-negative")
        need(t.noise_std >= 0, f"{where}: noise_std must be >= 0, got {t.noise_std:g}")
        need(t.trajectory_format in TRAJECTORY_FILES,
             f"{where}: Unknown trajectory_format '{t.trajectory_format}'. Use {' or '.join(TRAJECTORY_FILES)}.")
    formats = sorted({t.trajectory_format for t in d.traversals})
    need(len(formats) == 1, f"traversals mix trajectory formats ({', '.join(formats)}): vidvpr.trajectory takes "
                            "local frames of different formats for different frames, so a manifest could not join them")
    roles = {t.role for t in d.traversals}
    need(roles == set(ROLES), "traversals need at least one with role 'database' and one with role 'query'")
    need(bool(d.sizes), "render sizes: define at least one")
    for name, (width, height) in d.sizes.items():
        need(width == 2 * height and height % 2 == 0 and height >= 16,
             f"sizes.{name} = {width}x{height}: equirect frames are 2:1 with an even height >= 16")
    need(d.ground_truth.radius_m > 0, f"ground_truth.radius_m must be positive, got {d.ground_truth.radius_m:g}")
    need(bool(d.views.yaws_deg) and 1.0 <= d.views.fov_deg <= 179.0, "views: give yaws_deg and a fov_deg in [1, 179]")
    need(0 <= d.encoding.crf <= 51, f"encoding.crf must be in [0, 51], got {d.encoding.crf}")
    need(d.encoding.threads >= 1, f"encoding.threads must be >= 1, got {d.encoding.threads}")


def definition_dict(definition: DemoDefinition) -> dict[str, Any]:
    """The definition as plain JSON data (tuples as lists), comparable with what demo.json holds."""
    return json.loads(json.dumps(asdict(definition)))


# ---------------------------------------------------------------- planning


def traversal_fps(spec: TraversalSpec) -> Fraction:
    return Fraction(spec.fps).limit_denominator(1001)


def plan_traversal(definition: DemoDefinition, spec: TraversalSpec) -> TraversalPlan:
    """One loop at constant speed: the frames whose times fall within one lap (no frame repeats the start)."""
    fps = traversal_fps(spec)
    length = path_length_m(definition.route, spec.lateral_offset_m)
    frames = math.floor(length / spec.speed_mps * fps)
    t_s = np.arange(frames) / float(fps)
    east, north, heading = walker_poses(definition.route, spec.lateral_offset_m, spec.start_m + spec.speed_mps * t_s)
    return TraversalPlan(spec, fps, t_s, east, north, heading, length)


def total_frames(definition: DemoDefinition) -> int:
    """Frames over all traversals (for a progress bar)."""
    return sum(plan_traversal(definition, spec).frames for spec in definition.traversals)


def positives_per_query(database: list[TraversalPlan], queries: list[TraversalPlan], radius_m: float) -> np.ndarray:
    """For each query frame, the number of database frames within `radius_m` (brute force)."""
    db = np.concatenate([np.stack([p.east_m, p.north_m], 1) for p in database])
    counts = []
    for plan in queries:
        q = np.stack([plan.east_m, plan.north_m], 1)
        dist2 = ((q[:, None, :] - db[None, :, :]) ** 2).sum(-1)
        counts.append((dist2 <= radius_m ** 2).sum(1))
    return np.concatenate(counts)


def ground_truth_summary(definition: DemoDefinition, plans: list[TraversalPlan]) -> dict[str, Any]:
    """How hard the demo is: positives per query frame, in frames and as a share of the database."""
    database = [p for p in plans if p.spec.role == "database"]
    counts = positives_per_query(database, [p for p in plans if p.spec.role == "query"], definition.ground_truth.radius_m)
    db_frames = sum(p.frames for p in database)
    return {
        "radius_m": definition.ground_truth.radius_m,
        "sampling": "every frame",
        "database_frames": db_frames,
        "query_frames": int(counts.size),
        "positives_per_query": {"min": int(counts.min()), "median": float(np.median(counts)), "max": int(counts.max())},
        "max_fraction_of_database": round(float(counts.max()) / db_frames, 4),
        "queries_without_positive": int((counts == 0).sum()),
    }


# ---------------------------------------------------------------- output


def write_trajectory(path: Path, plan: TraversalPlan, camera_height_m: float) -> None:
    """The plan's per-frame poses in its trajectory format, read back by vidvpr.trajectory.

    csv-xy: ``t,x,y,z,heading`` (x east, y north, z up, compass heading). tum: ``timestamp tx ty tz
    qx qy qz qw`` with axes "xy" (body forward = +x), i.e. a rotation about z by 90° - heading.
    """
    lines = []
    if plan.spec.trajectory_format == "csv-xy":
        lines.append("t,x,y,z,heading")
        for t, x, y, h in zip(plan.t_s, plan.east_m, plan.north_m, plan.heading_deg):
            lines.append(f"{t:.6f},{x:.4f},{y:.4f},{camera_height_m:.4f},{h % 360.0:.4f}")
    else:
        lines.append("# timestamp tx ty tz qx qy qz qw (vidvpr demo: x east, y north, z up; body forward +x)")
        half_yaw = np.radians(90.0 - plan.heading_deg) / 2.0
        for t, x, y, qz, qw in zip(plan.t_s, plan.east_m, plan.north_m, np.sin(half_yaw), np.cos(half_yaw)):
            lines.append(f"{t:.6f} {x:.4f} {y:.4f} {camera_height_m:.4f} 0 0 {qz:.8f} {qw:.8f}")
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def encode_video(path: Path, frames: Iterable[np.ndarray], fps: Fraction, encoding: EncodingSpec,
                 on_frame: Callable[[int], None] | None = None) -> int:
    """Encode RGB uint8 frames (H, W, 3) to an MP4 with PyAV; frame i at pts i in time base 1/fps.

    Written under a temporary name and renamed when complete. Returns the number of frames.
    """
    import av

    count = 0
    with atomic_output(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream(encoding.codec, rate=fps)
            stream.pix_fmt = encoding.pix_fmt
            stream.time_base = 1 / fps
            stream.codec_context.time_base = 1 / fps
            stream.codec_context.thread_count = encoding.threads
            stream.options = {"crf": str(encoding.crf), "preset": encoding.preset}
            for rgb in frames:
                if count == 0:
                    stream.height, stream.width = rgb.shape[:2]
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = count
                container.mux(stream.encode(frame))
                count += 1
                if on_frame:
                    on_frame(1)
            container.mux(stream.encode(None))
    return count


def write_manifest_definition(path: Path, definition: DemoDefinition) -> None:
    """The `vidvpr manifest` definition of the rendered recordings (root: the demo folder; views
    where `slice_hint` puts them; every frame sampled; positives within the demo's radius).
    An identical existing file is left alone."""
    lines = [
        f"# Written by `vidvpr demo make` from the {definition.name} definition: the manifest definition of",
        "# these recordings (manifests/README.md). Slice first: views go to views/<traversal>/.",
        "", "[dataset]", f'name = "{definition.name}"', 'views_dir = "views"',
        "", "[sampling]", 'database = "all"', 'query = "all"',
        "", "[positives]", f"radius_m = {definition.ground_truth.radius_m!r}",
    ]
    for spec in definition.traversals:
        trajectory = TRAJECTORY_FILES[spec.trajectory_format]
        lines += ["", "[[recordings]]", f'name = "{spec.name}"', f'split = "{spec.role}"',
                  f'trajectory = {{ path = "{spec.name}/{trajectory}", format = "{spec.trajectory_format}" }}']
    text = "\n".join(lines) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _in_order(render: Callable[[int], np.ndarray], count: int, workers: int = 2) -> Iterator[np.ndarray]:
    """render(0), render(1), ... computed by a thread pool a few frames ahead (numpy and OpenCV
    release the GIL), yielded in order."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidvpr-demo") as pool:
        pending: deque[Any] = deque()
        try:
            for index in range(count):
                pending.append(pool.submit(render, index))
                if len(pending) > RENDER_AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def traversal_paths(out_dir: Path, spec: TraversalSpec) -> tuple[Path, Path]:
    folder = out_dir / spec.name
    return folder / f"{spec.name}.mp4", folder / TRAJECTORY_FILES[spec.trajectory_format]


def traversal_params(definition: DemoDefinition, spec: TraversalSpec, size: tuple[int, int]) -> dict[str, Any]:
    """Everything that determines one traversal's files, hashed to decide whether a rerun can skip."""
    return {
        "schema": SIDECAR_SCHEMA,
        "render_version": RENDER_VERSION,
        "seed": definition.seed,
        "route": asdict(definition.route),
        "places": asdict(definition.places),
        "traversal": asdict(spec),
        "index": definition.traversals.index(spec),
        "size": list(size),
        "encoding": asdict(definition.encoding),
    }


def _file_entry(out_dir: Path, path: Path) -> dict[str, Any]:
    return {"path": path.relative_to(out_dir).as_posix(), "bytes": path.stat().st_size, "hash": sha256_file(path)}


def _is_done(out_dir: Path, record: dict[str, Any] | None, phash: str) -> bool:
    if not record or record.get("params_hash") != phash:
        return False
    for key in ("video", "trajectory"):
        entry = record.get(key) or {}
        path = out_dir / str(entry.get("path", ""))
        if not (entry.get("path") and path.is_file() and path.stat().st_size == entry.get("bytes")
                and sha256_file(path) == entry.get("hash")):
            return False
    return True


def _render_traversal(out_dir: Path, definition: DemoDefinition, plan: TraversalPlan, index: int,
                      size: tuple[int, int], phash: str, on_frame: Callable[[int], None] | None) -> dict[str, Any]:
    spec = plan.spec
    world = build_world(definition.route, definition.places, definition.seed)
    video, trajectory = traversal_paths(out_dir, spec)
    ensure_writable_dir(video.parent)
    started = time.perf_counter()

    def render(i: int) -> np.ndarray:
        lighting = Lighting(spec.lighting_gain, spec.tint_rgb, spec.noise_std, (definition.seed, index, i))
        pose = CameraPose(float(plan.east_m[i]), float(plan.north_m[i]), float(plan.heading_deg[i]))
        return render_equirect_frame(world, pose, size, lighting)

    encode_video(video, _in_order(render, plan.frames), plan.fps, definition.encoding, on_frame)
    write_trajectory(trajectory, plan, definition.route.camera_height_m)
    LOG.info("%s: %d frames in %.1f s", video, plan.frames, time.perf_counter() - started)
    return {
        "role": spec.role,
        "params_hash": phash,
        "frames": plan.frames,
        "fps": str(plan.fps),
        "duration_s": round(plan.frames / float(plan.fps), 6),
        "path_length_m": round(plan.path_length_m, 4),
        "video": {**_file_entry(out_dir, video), "width": size[0], "height": size[1], "projection": "equirectangular"},
        "trajectory": {**_file_entry(out_dir, trajectory), "format": spec.trajectory_format},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def resolve_size(definition: DemoDefinition, name: str) -> tuple[int, int]:
    if name not in definition.sizes:
        raise BadInput(f"Unknown size '{name}'. Use {' or '.join(definition.sizes)}.")
    return definition.sizes[name]


def make_demo(out_dir: Path, config: DemoConfig, on_frame: Callable[[int], None] | None = None) -> DemoResult:
    """Render every traversal of the demo definition into `out_dir` (see the module docstring)."""
    started = time.perf_counter()
    definition = config.definition
    validate_definition(definition, config.definition_source)
    size = resolve_size(definition, config.size)
    out_dir = ensure_writable_dir(Path(out_dir))
    sidecar = out_dir / SIDECAR_NAME
    plans = [plan_traversal(definition, spec) for spec in definition.traversals]
    previous = read_json(sidecar) or {}
    old_records = previous.get("traversals", {}) if previous.get("schema") == SIDECAR_SCHEMA else {}
    world = build_world(definition.route, definition.places, definition.seed)
    payload = {
        "schema": SIDECAR_SCHEMA,
        "kind": "demo_dataset",
        "complete": False,
        "definition_source": config.definition_source,
        "definition": definition_dict(definition),
        "seed": definition.seed,
        "size": {"name": config.size, "width": size[0], "height": size[1]},
        "render_version": RENDER_VERSION,
        "world": {"route_length_m": definition.route.length_m, "sides_m": list(definition.route.sides_m),
                  "places": len(world.places), "distinct_designs": len({p.design for p in world.places})},
        "conventions": "equirect yaw 0 = centre column = camera heading, +yaw right; heading compass "
                       "(0 north = +y, 90 east = +x, clockwise); view heading = camera heading + view yaw",
        "ground_truth": ground_truth_summary(definition, plans),
        "views": asdict(definition.views),
        "traversals": {},
        "versions": runtime_versions(),
        "command": command_line(),
    }
    results, wrote_any = [], False
    for index, plan in enumerate(plans):
        spec = plan.spec
        phash = params_hash(traversal_params(definition, spec, size))
        record = old_records.get(spec.name)
        skipped = not config.force and _is_done(out_dir, record, phash)
        if skipped:
            LOG.info("%s: already rendered with the same definition, skipping", spec.name)
            if on_frame:
                on_frame(plan.frames)
        else:
            record = _render_traversal(out_dir, definition, plan, index, size, phash, on_frame)
            wrote_any = True
        payload["traversals"][spec.name] = record
        if wrote_any:
            write_json_atomic(sidecar, payload)  # after each traversal, so an interrupted run resumes
        video, trajectory = traversal_paths(out_dir, spec)
        results.append(TraversalResult(spec.name, spec.role, str(video), str(trajectory), spec.trajectory_format,
                                       plan.frames, str(plan.fps), record["duration_s"], record["path_length_m"], skipped))
    manifest_definition = out_dir / MANIFEST_DEFINITION_NAME
    write_manifest_definition(manifest_definition, definition)
    payload["manifest_definition"] = _file_entry(out_dir, manifest_definition)
    payload["complete"] = True
    unchanged = all(previous.get(key) == payload[key] for key in ("complete", "definition", "size", "manifest_definition"))
    if wrote_any or not unchanged:
        write_json_atomic(sidecar, payload)
    return DemoResult(str(out_dir), str(sidecar), size, results, payload["ground_truth"],
                      round(time.perf_counter() - started, 3))


def slice_hint(result: DemoResult, definition: DemoDefinition) -> str:
    """The `vidvpr slice` command that cuts the demo's videos into its definition's views."""
    yaws = ",".join(f"{yaw:g}" for yaw in definition.views.yaws_deg)
    videos = " ".join(t.video for t in result.traversals)
    return f"vidvpr slice {videos} --out {Path(result.out_dir) / 'views'} --yaw {yaws} --fov {definition.views.fov_deg:g}"
