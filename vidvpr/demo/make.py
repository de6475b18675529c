"""`vidvpr demo make`: render the demo dataset, a synthetic 360° indoor loop, as equirect videos
with trajectories, so the whole toolkit runs on a fresh machine with nothing to download.

The dataset's definition (seed, route, places, traversals, sizes, ground truth, views) is
`vidvpr.demo.definition.DemoDefinition`: its defaults are the built-in demo, spelled out in
manifests/demo.toml.

Output, under DIR:
    <traversal>/<traversal>.mp4       equirect video (2:1, H.264 yuv420p)
    <traversal>/trajectory.csv        t,x,y,z,heading (csv-xy), or trajectory.txt in TUM format
    dataset.toml                      the `vidvpr manifest` definition of these recordings
    dataset-<walk>.toml               one per night query walk: the database walks and that walk
    demo.json                         definition, versions, per-file hashes, ground-truth statistics
Next: `vidvpr slice DIR/*/*.mp4 --out DIR/views` (views as in the definition), then
`vidvpr manifest DIR/dataset.toml --out DIR/manifest`.
Every file is written under a temporary name and renamed when complete; a rerun with the same
definition and size skips traversals whose files demo.json records with matching hashes.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr.core.atomic import atomic_output, ensure_writable_dir, write_text_atomic
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import command_line, params_hash, runtime_versions
from vidvpr.core.records import FileRecord, Record
from vidvpr.dataset.positives import find_positives
from vidvpr.demo.definition import CAMERAS, DemoDefinition, EncodingSpec, TraversalSpec, definition_dict
from vidvpr.demo.fisheye import DualFisheyeRenderer, demo_trailer, write_video_streams
from vidvpr.demo.render import render_equirect_frame
from vidvpr.demo.world import (
    RENDER_VERSION,
    CameraPose,
    Lighting,
    build_world,
    path_length_m,
    walker_poses,
)
from vidvpr.geo.trajectory import round_heading_deg

LOG = logging.getLogger(__name__)

SIDECAR_NAME = "demo.json"
MANIFEST_DEFINITION_NAME = "dataset.toml"
TRAJECTORY_FILES = {"csv-xy": "trajectory.csv", "tum": "trajectory.txt"}
RENDER_AHEAD = 4  # frames rendered ahead of the encoder


@dataclass(frozen=True)
class DemoConfig:
    """Every `vidvpr demo make` option."""

    definition: DemoDefinition = field(default_factory=DemoDefinition)
    definition_source: str = "built-in"  # a path, or "built-in"
    size: str = "default"  # a key of definition.sizes
    force: bool = False
    camera: str = "equirect"  # or "dual-fisheye": an Insta360-shaped .insv per traversal (vidvpr.demo.fisheye)


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


def positives_per_query(database: list[TraversalPlan], queries: list[TraversalPlan], radius_m: float) -> np.ndarray:
    """For each query frame, the number of database frames within `radius_m` (camera positions)."""
    db = np.concatenate([np.stack([p.east_m, p.north_m], 1) for p in database])
    query = np.concatenate([np.stack([p.east_m, p.north_m], 1) for p in queries])
    return np.array([len(hits) for hits in find_positives(query, db, radius_m)], dtype=np.int64)


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
            lines.append(f"{t:.6f},{x:.4f},{y:.4f},{camera_height_m:.4f},{round_heading_deg(h, 4):.4f}")
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
    return write_video_streams(path, ((rgb,) for rgb in frames), fps, encoding, on_frame)


def night_definition_name(walk: TraversalSpec) -> str:
    """The manifest definition `demo make` writes for a night query walk: ``dataset-<walk>.toml``."""
    return f"dataset-{walk.name}.toml"


def write_manifest_definition(path: Path, definition: DemoDefinition, camera: str = "equirect",
                              traversals: Sequence[TraversalSpec] | None = None) -> None:
    """The `vidvpr manifest` definition of the rendered recordings (root: the demo folder; views
    where `slice_hint` puts them; every frame sampled; positives within the demo's radius; with the
    dual-fisheye camera, positions from each .insv's GPS), of `traversals` (default: all of them).
    An identical existing file is left alone."""
    lines = [
        f"# Written by `vidvpr demo make` from the {definition.name} definition: the manifest definition of",
        "# these recordings (manifests/README.md). Slice first: views go to views/<traversal>/.",
        "", "[dataset]", f'name = "{definition.name}"', 'views_dir = "views"',
        "", "[sampling]", 'database = "all"', 'query = "all"',
        "", "[positives]", f"radius_m = {definition.ground_truth.radius_m!r}",
    ]
    if definition.ground_truth.max_heading_diff_deg is not None:
        lines.append(f"max_heading_diff_deg = {definition.ground_truth.max_heading_diff_deg!r}")
    for spec in definition.traversals if traversals is None else traversals:
        trajectory, fmt = TRAJECTORY_FILES[spec.trajectory_format], spec.trajectory_format
        if camera == "dual-fisheye":
            trajectory, fmt = f"{spec.name}.insv", "insv"
        lines += ["", "[[recordings]]", f'name = "{spec.name}"', f'split = "{spec.role}"',
                  f'trajectory = {{ path = "{spec.name}/{trajectory}", format = "{fmt}" }}']
    text = "\n".join(lines) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_text_atomic(path, text)


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


def traversal_paths(out_dir: Path, spec: TraversalSpec, camera: str = "equirect") -> tuple[Path, Path]:
    folder = out_dir / spec.name
    suffix = ".insv" if camera == "dual-fisheye" else ".mp4"
    return folder / f"{spec.name}{suffix}", folder / TRAJECTORY_FILES[spec.trajectory_format]


class TraversalRecord(Record):
    """One rendered traversal as demo.json records it."""

    SCHEMA = "vidvpr.demo-traversal/1"
    KIND = "demo traversal record"

    role: str
    params_hash: str
    frames: int
    fps: str
    duration_s: float
    path_length_m: float
    video: FileRecord
    size: tuple[int, int]
    projection: str = "equirectangular"
    trajectory: FileRecord
    trajectory_format: str
    elapsed_s: float


class DemoRecord(Record):
    """`demo.json`: the definition, what each traversal's files are, and how hard the task is."""

    SCHEMA = "vidvpr.demo/2"
    KIND = "vidvpr demo record"

    kind: str = "demo_dataset"
    complete: bool
    definition_source: str
    definition: dict[str, Any]
    seed: int
    size: dict[str, Any]
    render_version: int
    world: dict[str, Any]
    conventions: str
    ground_truth: dict[str, Any]
    views: dict[str, Any]
    traversals: dict[str, TraversalRecord]
    manifest_definition: FileRecord | None = None
    versions: dict[str, str]
    command: list[str]


def traversal_params(definition: DemoDefinition, spec: TraversalSpec, size: tuple[int, int],
                     camera: str = "equirect") -> dict[str, Any]:
    """Everything that determines one traversal's files, hashed to decide whether a rerun can skip."""
    return ({"camera": camera} if camera != "equirect" else {}) | {
        "schema": DemoRecord.SCHEMA,
        "render_version": RENDER_VERSION,
        "seed": definition.seed,
        "route": definition.route.model_dump(mode="json"),
        "places": definition.places.model_dump(mode="json"),
        "traversal": spec.model_dump(mode="json"),
        "index": definition.traversals.index(spec),
        "size": list(size),
        "encoding": definition.encoding.model_dump(mode="json"),
    }


def traversal_done(out_dir: Path, record: TraversalRecord | None, phash: str) -> bool:
    """Whether a traversal's video and trajectory are on disk as recorded, from the same parameters."""
    return bool(record and record.params_hash == phash
                and all(entry.matches(out_dir / entry.path, check_hash=True)
                        for entry in (record.video, record.trajectory)))


def _render_traversal(out_dir: Path, definition: DemoDefinition, plan: TraversalPlan, index: int,
                      size: tuple[int, int], phash: str, on_frame: Callable[[int], None] | None,
                      camera: str = "equirect") -> TraversalRecord:
    spec = plan.spec
    world = build_world(definition.route, definition.places, definition.seed)
    video, trajectory = traversal_paths(out_dir, spec, camera)
    ensure_writable_dir(video.parent)
    started = time.perf_counter()
    fisheye = DualFisheyeRenderer(size, "side-by-side") if camera == "dual-fisheye" else None

    def render(i: int) -> Any:
        lighting = Lighting(spec.lighting_gain, spec.tint_rgb, spec.noise_std, (definition.seed, index, i),
                            spec.lighting)
        pose = CameraPose(float(plan.east_m[i]), float(plan.north_m[i]), float(plan.heading_deg[i]))
        return fisheye(world, pose, lighting) if fisheye else render_equirect_frame(world, pose, size, lighting)

    if fisheye:
        trailer = demo_trailer(plan.t_s, plan.east_m, plan.north_m, plan.heading_deg, definition.route.camera_height_m,
                               spec.speed_mps, plan.fps)
        write_video_streams(video, _in_order(render, plan.frames), plan.fps, definition.encoding, on_frame, trailer)
    else:
        encode_video(video, _in_order(render, plan.frames), plan.fps, definition.encoding, on_frame)
    write_trajectory(trajectory, plan, definition.route.camera_height_m)
    LOG.info("%s: %d frames in %.1f s", video, plan.frames, time.perf_counter() - started)
    return TraversalRecord(
        role=spec.role, params_hash=phash, frames=plan.frames, fps=str(plan.fps),
        duration_s=round(plan.frames / float(plan.fps), 6), path_length_m=round(plan.path_length_m, 4),
        video=FileRecord.of(video, out_dir), size=size, trajectory=FileRecord.of(trajectory, out_dir),
        projection="dual-fisheye" if fisheye else "equirectangular",
        trajectory_format=spec.trajectory_format, elapsed_s=round(time.perf_counter() - started, 3))


def resolve_size(definition: DemoDefinition, name: str) -> tuple[int, int]:
    if name not in definition.sizes:
        raise BadInput(f"Unknown size '{name}'. Use {' or '.join(definition.sizes)}.")
    return definition.sizes[name]


def make_demo(out_dir: Path, config: DemoConfig, on_frame: Callable[[int], None] | None = None,
              on_start: Callable[[int], None] | None = None) -> DemoResult:
    """Render every traversal of the demo definition into `out_dir` (see the module docstring).

    `on_start` hears the frames to render (those of traversals not already done), `on_frame` each one
    rendered: a rerun over finished traversals reports no progress."""
    started = time.perf_counter()
    definition = config.definition
    size = resolve_size(definition, config.size)
    if config.camera not in CAMERAS:
        raise BadInput(f"Unknown camera '{config.camera}'. Use {' or '.join(CAMERAS)}.")
    out_dir = ensure_writable_dir(Path(out_dir))
    sidecar = out_dir / SIDECAR_NAME
    plans = [plan_traversal(definition, spec) for spec in definition.traversals]
    previous = DemoRecord.load_or_none(sidecar)
    old_records = previous.traversals if previous is not None else {}
    world = build_world(definition.route, definition.places, definition.seed)
    record = DemoRecord(
        complete=False, definition_source=config.definition_source, definition=definition_dict(definition),
        seed=definition.seed, size={"name": config.size, "width": size[0], "height": size[1]},
        render_version=RENDER_VERSION,
        world={"route_length_m": definition.route.length_m, "sides_m": list(definition.route.sides_m),
               "places": len(world.places), "distinct_designs": len({p.design for p in world.places})},
        conventions="equirect yaw 0 = centre column = camera heading, +yaw right; heading compass "
                    "(0 north = +y, 90 east = +x, clockwise); view heading = camera heading + view yaw",
        ground_truth=ground_truth_summary(definition, plans), views=definition.views.model_dump(mode="json"),
        traversals={}, versions=runtime_versions(), command=command_line())
    hashes = [params_hash(traversal_params(definition, plan.spec, size, config.camera)) for plan in plans]
    done = [not config.force and traversal_done(out_dir, old_records.get(plan.spec.name), phash)
            for plan, phash in zip(plans, hashes)]
    if on_start:
        on_start(sum(plan.frames for plan, skip in zip(plans, done) if not skip))
    results, wrote_any = [], False
    for index, (plan, phash, skipped) in enumerate(zip(plans, hashes, done)):
        spec = plan.spec
        traversal = old_records.get(spec.name)
        if skipped:
            LOG.info("%s: already rendered with the same definition, skipping", spec.name)
        else:
            traversal = _render_traversal(out_dir, definition, plan, index, size, phash, on_frame, config.camera)
            wrote_any = True
        assert traversal is not None
        record.traversals[spec.name] = traversal
        if wrote_any:
            record.save(sidecar)  # after each traversal, so an interrupted run resumes
        video, trajectory = traversal_paths(out_dir, spec, config.camera)
        results.append(TraversalResult(spec.name, spec.role, str(video), str(trajectory), spec.trajectory_format,
                                       plan.frames, str(plan.fps), traversal.duration_s, traversal.path_length_m,
                                       skipped))
    manifest_definition = out_dir / MANIFEST_DEFINITION_NAME
    night_walks = [t for t in definition.traversals if t.lighting == "night" and t.role == "query"]
    # night query walks get a manifest definition each (the database and that walk): pooled with the day
    # query walk, one recall would mix day and night
    write_manifest_definition(manifest_definition, definition, config.camera,
                              traversals=[t for t in definition.traversals if t not in night_walks])
    databases = [t for t in definition.traversals if t.role == "database"]
    for walk in night_walks:
        write_manifest_definition(out_dir / night_definition_name(walk), definition, config.camera,
                                  traversals=[*databases, walk])
    record.manifest_definition = FileRecord.of(manifest_definition, out_dir)
    record.complete = True
    unchanged = previous is not None and all(
        getattr(previous, key) == getattr(record, key) for key in ("complete", "definition", "size", "manifest_definition"))
    if wrote_any or not unchanged:
        record.save(sidecar)
    return DemoResult(str(out_dir), str(sidecar), size, results, record.ground_truth,
                      round(time.perf_counter() - started, 3))


def slice_hint(result: DemoResult, definition: DemoDefinition) -> str:
    """The `vidvpr slice` command that cuts the demo's videos into its definition's views."""
    yaws = ",".join(f"{yaw:g}" for yaw in definition.views.yaws_deg)
    videos = " ".join(t.video for t in result.traversals)
    return f"vidvpr slice {videos} --out {Path(result.out_dir) / 'views'} --yaw {yaws} --fov {definition.views.fov_deg:g}"
