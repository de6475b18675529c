"""Whatever a writer produces, its reader accepts and reads back equal within the written precision
(property tests with Hypothesis, the other direction of tests/test_bad_input_property.py).

Values are drawn at the edges where rounding and wrapping bite: headings a hair below 360° or
above 0°, view yaws of ±180°, walks due north along a UTM zone's central meridian and its edges
(grid north there is a few millionths of a degree off true north), latitudes at UTM's 80°S and
84°N limits, and frame times at the very ends of a trajectory.

* manifest rows: GPX or local trajectory → `view_rows` → database.csv/query.csv → `read_rows`;
* export names: a row's VPR image name → `parse_vpr_filename`;
* positives.json: `PositivesFile` → `PositivesFile.load`;
* demo trajectories: `write_trajectory` (csv-xy, TUM) → `read_trajectory`;
* results.json rows with a sequence length and the VPR-Bench measures (any match distances,
  negative after contrast normalisation, or none) → `EvalResults.load`;
* distill's decoded frames: any frames of any size, in any decoding order → `FrameStore.write` →
  `FrameStore.open`;
* distill's train_state.pt: any step, loss curve, mined triplets and arithmetic → `save_state` →
  `load_state`;
* every record kind (every JSON file vidvpr writes: sidecars, manifest.json, export.json and
  export-<split>.json, results.json, study.json, ...): any valid instance drawn from its model
  (tests/record_strategies.py) → `save` → `load`;
* eval's predictions files, single-frame and per sequence length, as a CSV reader reads them;
* study.json made by `compute_study` from any sequence rows;
* encodes.csv from any cells' sidecars → the rows `vidvpr report` reads; results.csv and study.csv
  of any rows, as a CSV reader reads them;
* the descriptor cache: `put` or `writing` → `open` and `get`; model checkpoints: `save_checkpoint`
  → `load_checkpoint`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.test_manifest import sliced_views  # noqa: F401  (a session fixture)
from vidvpr.core.sidecars import FrameTimes, SliceSidecar
from vidvpr.dataset.definition import RecordingSpec, TrajectorySpec
from vidvpr.dataset.manifest import ManifestView, view_rows
from vidvpr.dataset.records import PositivesFile
from vidvpr.dataset.rows import read_rows, rows_csv_text
from vidvpr.dataset.sampling import parse_sampling
from vidvpr.dataset.vpr_names import parse_vpr_filename, row_filename
from vidvpr.demo.definition import TraversalSpec
from vidvpr.demo.make import TraversalPlan, write_trajectory
from vidvpr.geo import trajectory as trj
from vidvpr.geo.readers import read_trajectory

ROUND_TRIP = settings(deadline=None, database=None, print_blob=True, max_examples=150,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
VIEW = "yaw000_pitch+00"


def circular_gap_deg(a: float, b: float) -> float:
    """The smaller angle between two headings, in degrees."""
    gap = abs(a - b) % 360.0
    return min(gap, 360.0 - gap)


# ---------------------------------------------------------------- strategies


near_zero = st.floats(-1e-3, 1e-3, allow_subnormal=False)
heading_at_the_edges = st.one_of(
    st.sampled_from((0.0, -0.0, 359.9995, 359.99949, 359.99951, 359.9999999, 1e-9, -1e-9, 180.0, 360.0, 720.0)),
    near_zero.map(lambda d: d % 360.0), st.floats(0, 360, exclude_max=True))
yaw_at_the_edges = st.one_of(
    st.sampled_from((-180.0, 180.0, 0.0, -0.0, 359.9999, -359.9999, 90.0, -90.0, 270.0, 1e-12, -1e-12)),
    st.floats(-360, 360))


@st.composite
def gpx_walk(draw: st.DrawFn) -> tuple[str, int]:
    """(GPX text, UTM zone) of a short walk starting near a zone's west edge, central meridian or east
    edge, often due north (grid and true north differ there by a hair), at any latitude UTM covers."""
    zone = draw(st.integers(1, 60))
    west = -180.0 + 6.0 * (zone - 1)
    lon0 = draw(st.sampled_from((west, west + 3.0, west + 6.0))) + draw(st.sampled_from((0.0, 1e-5, -1e-5, 1e-7)))
    lat0 = draw(st.one_of(st.sampled_from((-79.999, 0.0, 48.0, 83.999)), st.floats(-79.99, 83.99)))
    due_north = draw(st.booleans())
    steps = draw(st.integers(2, 5))
    points = []
    for i in range(steps):
        d_lat = 1e-4 * i * (1 if lat0 < 83 else -1)
        d_lon = 0.0 if due_north else draw(st.floats(-2e-4, 2e-4))
        lat, lon = lat0 + d_lat, min(180.0, max(-180.0, lon0 + d_lon))
        points.append(f'<trkpt lat="{lat:.9f}" lon="{lon:.9f}"><time>2024-05-01T10:00:{i * 2:02d}Z</time></trkpt>')
    text = ('<?xml version="1.0"?><gpx version="1.1" creator="vidvpr tests" '
            f'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>{"".join(points)}</trkseg></trk></gpx>')
    return text, zone


@st.composite
def local_walk(draw: st.DrawFn) -> str:
    """csv-xy text: positions anywhere in a local frame, headings (or none) at the edges of [0, 360)."""
    steps = draw(st.integers(2, 5))
    t0 = draw(st.one_of(st.just(0.0), st.floats(-1e5, 1e5)))
    with_heading = draw(st.booleans())
    lines = ["t,x,y" + (",heading" if with_heading else "")]
    for i in range(steps):
        x, y = draw(st.floats(-1e6, 1e6)), draw(st.floats(-1e6, 1e6))
        heading = f",{draw(heading_at_the_edges)!r}" if with_heading else ""
        lines.append(f"{t0 + 2.0 * i!r},{x!r},{y!r}{heading}")
    return "\n".join(lines) + "\n"


def frame_times(draw: st.DrawFn, traj: trj.Trajectory, offset_s: float) -> list[float]:
    """Video frame times covering the trajectory, its first and last sample exactly and within tolerance."""
    start, end = float(traj.t_s[0]) - offset_s, float(traj.t_s[-1]) - offset_s
    inside = draw(st.lists(st.floats(start, end), max_size=4))
    edges = [start, end, start + trj.TIME_TOLERANCE_S / 2, end - trj.TIME_TOLERANCE_S / 2]
    return sorted({*edges, *inside})


def view_with(sidecar: SliceSidecar, root: Path, yaw_deg: float, times_s: list[float]) -> ManifestView:
    """The sliced view `sidecar` describes, looking at `yaw_deg`, with frames at `times_s`."""
    timestamps = FrameTimes(fps=sidecar.timestamps.fps, time_base=sidecar.timestamps.time_base, frames=len(times_s),
                            time_s=times_s, source_frame_index_rule="source_frame_index[i] = i")
    changed = sidecar.model_copy(update={"geometry": sidecar.geometry.model_copy(update={"yaw_deg": yaw_deg}),
                                         "timestamps": timestamps, "frames": len(times_s)})
    video_rel = f"views/walk/{VIEW}.mp4"
    return ManifestView(VIEW, root / video_rel, video_rel, root / f"views/walk/{VIEW}.json", changed)


@pytest.fixture(scope="module")
def view_sidecar(sliced_views: Path) -> SliceSidecar:  # noqa: F811
    return SliceSidecar.load(sliced_views / "dbwalk" / f"{VIEW}.json")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("round-trip")
    (folder / "views" / "walk").mkdir(parents=True)
    return folder


# ---------------------------------------------------------------- manifest rows and export names


def rows_round_trip(root: Path, traj: trj.Trajectory, view: ManifestView, offset_s: float, split: str) -> list[Any]:
    """`view_rows` of one view written as the manifest writes its split's file, and read back."""
    rec = RecordingSpec(name="walk", split=split, trajectory=TrajectorySpec(path="t", time_offset_s=offset_s))
    rows, dropped = view_rows(rec, traj, view, parse_sampling("all"), strict=True)
    assert dropped == 0 and len(rows) == len(view.time_s)  # frames at the trajectory's ends are inside
    for i, row in enumerate(rows):
        if split == "query":
            row.num_positives = i
    path = root / f"{split}.csv"
    path.write_text(rows_csv_text(split, rows), encoding="utf-8")
    read = read_rows(path, split, root)
    assert read == rows
    return rows


def assert_heading_columns_in_range(rows: list[Any]) -> None:
    for row in rows:
        for value in (row.camera_heading_deg, row.heading_deg):
            assert value is None or 0.0 <= value < 360.0


def assert_names_round_trip(rows: list[Any]) -> None:
    """Each row's export image name reads back as the row, to the name's precision."""
    for row in rows:
        parsed = parse_vpr_filename(row_filename(row))
        assert parsed.row_id == row.id
        assert parsed.easting_m == pytest.approx(row.easting_m, abs=0.0051)
        assert parsed.northing_m == pytest.approx(row.northing_m, abs=0.0051)
        assert (parsed.utm_zone_number, parsed.utm_zone_letter) == (row.utm_zone_number, row.utm_zone_letter)
        for mine, theirs in ((parsed.lat_deg, row.lat_deg), (parsed.lon_deg, row.lon_deg)):
            assert (mine is None) == (theirs is None) and (mine is None or abs(mine - theirs) <= 5.1e-6)
        if row.heading_deg is None:
            assert parsed.heading_deg is None
        else:
            assert 0 <= parsed.heading_deg < 360 and circular_gap_deg(parsed.heading_deg, row.heading_deg) <= 0.5


@ROUND_TRIP
@given(data=st.data(), walk=gpx_walk(), yaw=yaw_at_the_edges, split=st.sampled_from(("database", "query")),
       offset_s=st.sampled_from((0.0, 0.1, -3.0)))
def test_rows_of_any_gps_walk_are_read_back_equal_and_named_in_range(data: st.DataObject, walk: tuple[str, int],
                                                                    yaw: float, split: str, offset_s: float,
                                                                    view_sidecar: SliceSidecar, root: Path) -> None:
    text, zone = walk
    path = root / "walk.gpx"
    path.write_text(text)
    traj = read_trajectory(path, "gpx", force_zone_number=zone)
    view = view_with(view_sidecar, root, yaw, frame_times(data.draw, traj, offset_s))
    rows = rows_round_trip(root, traj, view, offset_s, split)
    assert_heading_columns_in_range(rows)
    assert all(row.utm_zone_number == zone and -180.0 <= row.lon_deg <= 180.0 for row in rows)
    assert_names_round_trip(rows)


@ROUND_TRIP
@given(data=st.data(), text=local_walk(), yaw=yaw_at_the_edges, split=st.sampled_from(("database", "query")),
       offset_s=st.sampled_from((0.0, 0.25, -7.5)))
def test_rows_of_any_local_walk_are_read_back_equal_and_named_in_range(data: st.DataObject, text: str, yaw: float,
                                                                      split: str, offset_s: float,
                                                                      view_sidecar: SliceSidecar, root: Path) -> None:
    path = root / "walk.csv"
    path.write_text(text)
    traj = read_trajectory(path, "csv-xy")
    view = view_with(view_sidecar, root, yaw, frame_times(data.draw, traj, offset_s))
    rows = rows_round_trip(root, traj, view, offset_s, split)
    assert_heading_columns_in_range(rows)
    assert_names_round_trip(rows)


def test_a_heading_that_rounds_up_to_360_is_written_as_0() -> None:
    assert trj.round_heading_deg(359.99996, 3) == 0.0
    assert trj.round_heading_deg(359.9994, 3) == 359.999
    assert trj.round_heading_deg(-0.0001, 3) == 0.0 and math.copysign(1, trj.round_heading_deg(-0.0001, 3)) == 1
    assert trj.round_heading_deg(720.0004, 3) == 0.0 and math.isnan(trj.round_heading_deg(math.nan, 3))


# ---------------------------------------------------------------- positives.json


@ROUND_TRIP
@given(positives=st.dictionaries(st.from_regex(r"q[0-9]{1,3}/v/[0-9]{6}", fullmatch=True),
                                 st.lists(st.from_regex(r"d[0-9]{1,3}/v/[0-9]{6}", fullmatch=True), max_size=4),
                                 max_size=6),
       radius_m=st.floats(1e-3, 1e6), max_heading=st.none() | st.floats(0, 180))
def test_any_positives_file_is_read_back_equal(positives: dict[str, list[str]], radius_m: float,
                                               max_heading: float | None, root: Path) -> None:
    written = PositivesFile(radius_m=radius_m, max_heading_diff_deg=max_heading, database="database.csv",
                            query="query.csv", positives=positives,
                            queries_without_positives=[q for q, hits in positives.items() if not hits])
    written.save(root / "positives.json")
    assert PositivesFile.load(root / "positives.json") == written


# ---------------------------------------------------------------- the demo's trajectories


@ROUND_TRIP
@given(fmt=st.sampled_from(("csv-xy", "tum")), fps=st.sampled_from((0.1, 1.0, 2.0, 29.97, 60.0)),
       poses=st.lists(st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), heading_at_the_edges),
                      min_size=2, max_size=6))
def test_any_demo_trajectory_is_read_back_within_its_written_precision(fmt: str, fps: float,
                                                                       poses: list[tuple[float, float, float]],
                                                                       root: Path) -> None:
    east, north, heading = (np.array(values, dtype=float) for values in zip(*poses))
    assume(np.ptp(east) + np.ptp(north) > 0 or fmt == "tum")  # csv-xy carries a heading; TUM always does
    t_s = np.arange(len(poses)) / fps
    plan = TraversalPlan(TraversalSpec(name="walk", role="database", fps=fps, trajectory_format=fmt),
                         Fraction(fps).limit_denominator(1000), t_s, east, north, np.mod(heading, 360.0), 1.0)
    path = root / ("walk.csv" if fmt == "csv-xy" else "walk.txt")
    write_trajectory(path, plan, camera_height_m=1.6)
    read = read_trajectory(path, fmt)
    # half a unit of the last written decimal, plus the float error of a value exactly there:
    # 0.03125 is written "0.0312", and 0.03125 - 0.0312 is 5.0000000000001e-05 in floats
    half_unit = 1 + 1e-9
    assert np.allclose(read.t_s, t_s, rtol=0, atol=5e-7 * half_unit)
    assert np.allclose(read.easting_m, east, rtol=0, atol=5e-5 * half_unit)
    assert np.allclose(read.northing_m, north, rtol=0, atol=5e-5 * half_unit)
    assert read.heading_deg is not None and ((read.heading_deg >= 0) & (read.heading_deg < 360)).all()
    gaps = [circular_gap_deg(a, b) for a, b in zip(read.heading_deg, heading)]
    assert max(gaps) <= (5e-5 if fmt == "csv-xy" else 2e-5) * half_unit
    if fmt == "csv-xy":  # as written: never "360.0000"
        assert all(0 <= float(line.rsplit(",", 1)[1]) < 360 for line in path.read_text().splitlines()[1:])


# ---------------------------------------------------------------- eval rows with sequences and VPR-Bench measures


match_distance = st.one_of(st.floats(-50, 50, allow_nan=False), st.just(math.inf), st.sampled_from((0.0, -0.0, 1e-300)))


@ROUND_TRIP
@given(matches=st.lists(st.tuples(match_distance, st.booleans()), min_size=1, max_size=300),
       seq_len=st.integers(1, 10_000), velocity=st.floats(0.01, 100), reverse=st.booleans(), normalise=st.booleans())
def test_any_eval_row_with_a_sequence_length_and_its_measures_is_read_back_equal(tmp_path_factory: pytest.TempPathFactory,
                                                                                 matches: list[tuple[float, bool]],
                                                                                 seq_len: int, velocity: float,
                                                                                 reverse: bool, normalise: bool) -> None:
    from vidvpr.evaluate.precision import precision_recall
    from vidvpr.evaluate.results import (
        EvalResults,
        EvalRow,
        ExtractionRecord,
        PrecisionRecallRecord,
        SequencesRecord,
    )

    distances, correct = zip(*matches)
    curve = precision_recall(distances, correct)  # what vidvpr eval computes, stored as it stores it
    row = EvalRow(model="m", protocol="same", cell="reference", codec=None, resolution=None, width=None, height=None,
                  qp=None, kbps=None, psnr_y=None, ssim_y=None, vmaf=None, input_size="cell", queries=len(matches),
                  excluded=0, threshold_m=25.0, recall={1: round(float(curve.recall[-1]), 6)}, per_view={},
                  predictions=f"predictions/m/same/seq{seq_len}/reference.csv", seq_len=seq_len,
                  auc_pr=round(curve.auc, 6), recall_at_100_precision=round(curve.recall_at_full_precision, 6),
                  precision_recall=PrecisionRecallRecord.of(curve))
    written = EvalResults(
        manifest={}, enc_dir=None, protocol="same", input_size="cell", recall_at=[1], thresholds_m=[25.0],
        index="Flat (exact L2)", models=[], rows=[row], descriptors={}, forward_images=0, elapsed_s=0.0, versions={},
        command=[], sequences=SequencesRecord(lengths=[1, seq_len], velocity=[velocity, velocity], reverse=reverse,
                                              normalise=normalise, normalise_window=10, search="full", notes=[]),
        extraction=[ExtractionRecord(model="m", descriptor_dim=7, descriptor_bytes=28, ms_per_image=velocity,
                                     images=seq_len)])
    path = tmp_path_factory.mktemp("results") / "results.json"
    written.save(path)
    assert EvalResults.load(path) == written


# ---------------------------------------------------------------- vidvpr distill's files


@ROUND_TRIP
@given(images=st.integers(1, 4).flatmap(lambda count: st.tuples(st.integers(1, 9), st.integers(1, 9)).flatmap(
    lambda size: st.lists(st.binary(min_size=size[0] * size[1] * 3, max_size=size[0] * size[1] * 3).map(
        lambda data: np.frombuffer(data, np.uint8).reshape(size[0], size[1], 3)), min_size=count, max_size=count))),
       first=st.integers(0, 10**6))
def test_any_decoded_frames_are_read_back_identical(tmp_path_factory: pytest.TempPathFactory, images: list[np.ndarray],
                                                    first: int) -> None:
    from vidvpr.core.records import FileRecord
    from vidvpr.distill.frames import FrameStore

    store = FrameStore(tmp_path_factory.mktemp("frames"))
    video = FileRecord(path="v.mp4", bytes=1, hash=f"sha256:{first:064d}")
    frames = [first + 3 * k for k in range(len(images))]
    written = store.write(video, frames, zip(reversed(frames), reversed(images)), "v.mp4")  # decoded in any order
    for stored in (written, store.open(video, frames)):
        assert stored is not None and np.array_equal(stored, np.stack(images))


finite = st.floats(allow_nan=False, allow_infinity=False)
curve_rows = st.lists(st.fixed_dictionaries({"step": st.integers(1, 10**6).map(float), "loss": finite},
                                            optional={"ickd": finite, "mse": finite, "triplet": finite}), max_size=5)
mined_tables = st.integers(0, 3).flatmap(lambda negatives: st.dictionaries(
    st.integers(0, 10**9), st.tuples(st.integers(0, 10**9), st.lists(st.integers(0, 10**9), min_size=negatives,
                                                                     max_size=negatives)), max_size=5))


@ROUND_TRIP
@given(step=st.integers(0, 10**9), curve=curve_rows, mined=mined_tables, epochs=st.lists(st.integers(0, 10**6), max_size=3),
       threads=st.integers(1, 512), processes=st.integers(1, 64))
def test_any_training_state_is_read_back_equal(tmp_path_factory: pytest.TempPathFactory, step: int, curve: list,
                                               mined: dict, epochs: list[int], threads: int, processes: int) -> None:
    import torch

    from vidvpr.distill.mining import Triplet
    from vidvpr.distill.state import Progress, load_state, save_state

    def parts() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.amp.GradScaler]:
        student = torch.nn.Linear(3, 2)
        return student, torch.optim.Adam(student.parameters()), torch.amp.GradScaler("cuda", enabled=False)

    triplets = {query: Triplet(positive, tuple(negatives)) for query, (positive, negatives) in mined.items()}
    arithmetic = {"threads": threads, "processes": processes, "torch": torch.__version__, "cpu_capability": "AVX2"}
    progress = Progress(step, curve, triplets, {"targets": 3, "epochs": epochs}, arithmetic)
    path = tmp_path_factory.mktemp("state") / "train_state.pt"
    student, optimizer, scaler = parts()
    save_state(path, {"lr": 1e-4}, student, optimizer, scaler, progress)
    again, *rest = parts()
    assert load_state(path, {"lr": 1e-4}, again, *rest) == progress
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), again.state_dict().values()))


# ---------------------------------------------------------------- what a student trained on (vidvpr demo study)

video_names = st.from_regex(r"(reference|[0-9]{2,4}x[0-9]{2,4}/qp[0-9]{2})/[a-z]{1,8}/yaw[0-9]{3}_pitch\+00",
                            fullmatch=True)
video_files = st.from_regex(r"[a-z]{1,8}/[a-z0-9_+]{1,20}\.mp4", fullmatch=True)
content_hashes = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)
trained_videos = st.dictionaries(video_names, content_hashes, max_size=12)
recall = st.floats(0.0, 1.0)
recall_tables = st.dictionaries(st.sampled_from(("train", "heldout", "night")), st.dictionaries(
    st.sampled_from(("teacher", "finetuned", "distilled", "night")),
    st.dictionaries(st.sampled_from(("reference", "320x176/qp45", "80x32/qp40")), recall, min_size=1), min_size=1))


@ROUND_TRIP
@given(videos=trained_videos, heldout=st.dictionaries(video_files, content_hashes, max_size=6),
       summary=recall_tables, stages=st.dictionaries(st.text(min_size=1, max_size=20), st.floats(0, 1e6), max_size=5),
       steps=st.integers(0, 10**6), steps_per_epoch=st.none() | st.integers(1, 10**6),
       max_steps=st.none() | st.integers(1, 10**6))
def test_any_demo_study_record_and_the_student_videos_it_names_are_read_back_equal(
        tmp_path_factory: pytest.TempPathFactory, videos: dict[str, str], heldout: dict[str, str],
        summary: dict[str, dict[str, dict[str, float]]], stages: dict[str, float], steps: int,
        steps_per_epoch: int | None, max_steps: int | None) -> None:
    from vidvpr.core.records import FileRecord
    from vidvpr.demo.study import StudentEntry, StudyRecord

    folder = tmp_path_factory.mktemp("study")
    (folder / "student.json").write_text("{}")
    sidecar = FileRecord.of(folder / "student.json", folder)
    entry = StudentEntry(model="netvlad-efficientnet-lite0:models/night.pt", loss=["ickd", "mse", "triplet"],
                         steps=steps, steps_per_epoch=steps_per_epoch, lq=["lowlight:-3", "noise:2.5"], seed=0,
                         sidecar=sidecar, checkpoint=sidecar, trained_videos=videos)
    record = StudyRecord(train_cell="320x176/qp45", eval_cells=["320x176/qp45"], night_cells=["reference"],
                         config={"night_lq": ["lowlight:-3"]}, max_steps=max_steps,
                         worlds={"heldout": {"seed": 23, "videos": heldout}},
                         teacher={"name": "netvlad-efficientnet-lite0"}, students={"night": entry},
                         heldout_videos_trained_on=sorted(set(heldout.values()) & set(videos.values())),
                         recall_at_1=summary, results={"night": "study/eval-heldout-night/results.csv"},
                         plot="study/worlds.png", stages_s=stages, versions={"vidvpr": "0"}, command=["vidvpr"])
    record.save(folder / "study.json")
    assert StudyRecord.load(folder / "study.json") == record


# ---------------------------------------------------------------- every record kind (every JSON file vidvpr writes)

from tests.record_strategies import record_kinds, records  # noqa: E402

RECORD_KINDS = record_kinds()


def records_of(name: str) -> st.SearchStrategy[Any]:
    """Valid records of the kind named `name` ("module.Class" below vidvpr when two share a name)."""
    (kind,) = [kind for kind in RECORD_KINDS
               if name in (kind.__name__, f"{kind.__module__.removeprefix('vidvpr.')}.{kind.__name__}")]
    return records(kind)


def test_every_record_kind_is_found() -> None:
    # the kinds below are found by importing every vidvpr module: a kind added later is tested without a word here
    names = {f"{kind.__module__}.{kind.__name__}" for kind in RECORD_KINDS}
    assert {"vidvpr.evaluate.results.EvalResults", "vidvpr.study.records.StudyRecord", "vidvpr.dataset.export.ExportRecord",
            "vidvpr.demo.study.StudyRecord", "vidvpr.descriptors.cache.DescriptorRecord"} <= names
    assert len(RECORD_KINDS) >= 20


@pytest.mark.parametrize("kind", RECORD_KINDS, ids=lambda kind: f"{kind.__module__.removeprefix('vidvpr.')}.{kind.__name__}")
def test_any_record_of_every_kind_is_read_back_equal(kind: type, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`save` then `load` of any valid instance: every field's type, bound and pattern at its edges,
    optional fields given or left out (tests/record_strategies.py draws them from the model)."""
    path = tmp_path_factory.mktemp("record") / "record.json"

    @settings(ROUND_TRIP, max_examples=60)
    @given(written=records(kind))
    def check(written: Any) -> None:
        written.save(path)
        assert kind.load(path) == written

    check()


# ---------------------------------------------------------------- eval's predictions files (single frames, and per sequence length)

row_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,8}/[A-Za-z0-9][A-Za-z0-9._+-]{0,8}/[0-9]{6,8}", fullmatch=True)
score = st.one_of(st.floats(width=32, allow_nan=False), st.sampled_from((0.0, -0.0, 1e-45, -3.5, 3.4028235e38)))
velocity = st.one_of(st.floats(-100, 100, allow_nan=False), st.sampled_from((0.8, 1.25, -0.8, -1.25, 1.0, 0.0)))


def read_predictions(path: Path) -> list[dict[str, str]]:
    """The predictions file as a consumer reads it (vidvpr's --save-preds strips read it so)."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def same_to_six_digits(text: str, value: float) -> bool:
    """`text` (written with %.6g) reads back as `value`, to the half unit of its 6th significant digit."""
    read = float(text)
    if not math.isfinite(value):
        return read == value
    return abs(read - value) <= 5e-6 * abs(value) * (1 + 1e-9) and math.copysign(1, read) == math.copysign(1, value)


@st.composite
def ranked(draw: st.DrawFn, with_sequences: bool) -> tuple[list[str], list[str], Any]:
    """(query ids, database ids, matches): every query's top k ends, -1 where fewer."""
    from vidvpr.evaluate.sequence import SequenceMatches

    query_ids = draw(st.lists(row_ids, min_size=1, max_size=5, unique=True))
    database_ids = draw(st.lists(row_ids, min_size=1, max_size=6, unique=True))
    m, k = len(query_ids), draw(st.integers(1, 4))
    indices = np.array(draw(st.lists(st.lists(st.integers(-1, len(database_ids) - 1), min_size=k, max_size=k),
                                     min_size=m, max_size=m)), dtype=np.int64)
    distances = np.array(draw(st.lists(st.lists(score, min_size=k, max_size=k), min_size=m, max_size=m)),
                         dtype=np.float32)
    distances[indices < 0] = np.inf
    if not with_sequences:
        return query_ids, database_ids, (indices, distances)
    velocities = np.array(draw(st.lists(st.lists(velocity, min_size=k, max_size=k), min_size=m, max_size=m)))
    velocities[indices < 0] = 0.0
    frames = np.array(draw(st.lists(st.integers(1, 10_000), min_size=m, max_size=m)), dtype=np.int64)
    return query_ids, database_ids, SequenceMatches(indices, distances, velocities, frames)


@ROUND_TRIP
@given(case=ranked(with_sequences=True))
def test_any_sequence_predictions_are_read_back_within_their_written_precision(
        tmp_path_factory: pytest.TempPathFactory, case: tuple[list[str], list[str], Any]) -> None:
    from vidvpr.evaluate.sequence_eval import SEQUENCE_COLUMNS, write_sequence_predictions

    query_ids, database_ids, matches = case
    path = tmp_path_factory.mktemp("predictions") / "seq5" / "reference.csv"
    write_sequence_predictions(path, query_ids, database_ids, matches)
    read = read_predictions(path)
    assert path.read_text().splitlines()[0] == SEQUENCE_COLUMNS
    expected = [(q, rank, end) for q in range(len(query_ids)) for rank, end in enumerate(matches.indices[q], 1) if end >= 0]
    assert [(line["query_id"], int(line["rank"]), line["database_id"], int(line["frames"])) for line in read] == \
        [(query_ids[q], rank, database_ids[end], int(matches.frames[q])) for q, rank, end in expected]
    for line, (q, rank, _) in zip(read, expected):
        assert same_to_six_digits(line["distance"], float(matches.distances[q, rank - 1])), line
        assert same_to_six_digits(line["velocity"], float(matches.velocities[q, rank - 1])), line


@ROUND_TRIP
@given(case=ranked(with_sequences=False))
def test_any_single_frame_predictions_are_read_back_within_their_written_precision(
        tmp_path_factory: pytest.TempPathFactory, case: tuple[list[str], list[str], Any]) -> None:
    from vidvpr.evaluate.results import write_predictions

    query_ids, database_ids, (indices, distances) = case
    path = tmp_path_factory.mktemp("predictions") / "reference.csv"
    write_predictions(path, query_ids, database_ids, indices, distances)
    read = read_predictions(path)
    expected = [(q, rank, end) for q in range(len(query_ids)) for rank, end in enumerate(indices[q], 1) if end >= 0]
    assert [(line["query_id"], int(line["rank"]), line["database_id"]) for line in read] == \
        [(query_ids[q], rank, database_ids[end]) for q, rank, end in expected]
    for line, (q, rank, _) in zip(read, expected):
        assert same_to_six_digits(line["distance"], float(distances[q, rank - 1])), line


# ---------------------------------------------------------------- the study of sequences (study.json)

fraction = st.floats(0, 1)


@settings(ROUND_TRIP, max_examples=40)
@given(lengths=st.lists(st.integers(2, 10_000), min_size=1, max_size=3, unique=True), data=st.data(),
       reference=fraction, rates=st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=4, unique=True).map(sorted),
       recall_at=st.sampled_from(((1,), (1, 5))))
def test_any_study_of_sequence_rows_is_read_back_equal(tmp_path_factory: pytest.TempPathFactory, lengths: list[int],
                                                       data: st.DataObject, reference: float, rates: list[float],
                                                       recall_at: tuple[int, ...]) -> None:
    """Any recall and AUC-PR per cell and sequence length: the study made of them (the length each
    QP needs, sequence against single-frame deltas) is a study.json that reads back equal."""
    from tests.test_study import curve_rows, write_eval
    from vidvpr.study.inputs import load_evals
    from vidvpr.study.records import StudyRecord
    from vidvpr.study.stage import StudyConfig, compute_study

    single = curve_rows("teacher", "libx264", rates, data.draw(st.lists(fraction, min_size=len(rates),
                                                                        max_size=len(rates))))
    rows = list(single)
    for length in lengths:
        for row in single:
            recall1 = data.draw(fraction)
            rows.append(row.model_copy(update={"seq_len": length, "recall": {1: recall1, 5: data.draw(st.floats(recall1, 1))},
                                               "auc_pr": data.draw(st.none() | fraction),
                                               "recall_at_100_precision": data.draw(st.none() | fraction)}))
    folder = write_eval(tmp_path_factory.mktemp("eval"), rows, reference=reference)
    study = compute_study(load_evals([folder]), StudyConfig(recall_at=recall_at))
    assert {need.qp for need in study.sequences} == {row.qp for row in single}
    study.save(folder / "study.json")
    assert StudyRecord.load(folder / "study.json") == study


# ---------------------------------------------------------------- encodes.csv, as vidvpr report reads it

cell_names = st.from_regex(r"[a-z0-9_+]{1,12}\.mp4", fullmatch=True)


@settings(ROUND_TRIP, max_examples=80)
@given(cells=st.lists(st.tuples(records_of("CellSidecar"), cell_names), min_size=1, max_size=3))
def test_any_encode_table_is_read_back_by_the_report_cell_for_cell(tmp_path_factory: pytest.TempPathFactory,
                                                                   cells: list[tuple[Any, str]]) -> None:
    """encodes.csv rows made from any cells' sidecars (any recording, codec or preset text, metrics or
    none) are the rows `vidvpr report --enc` reads: every cell as written, empty for no value."""
    from vidvpr.encoding.table import row_from_sidecar, table_csv_text
    from vidvpr.report.inputs import read_encode_folder

    folder = tmp_path_factory.mktemp("enc")
    rows = [row_from_sidecar(cell.model_copy(update={"output": cell.output.model_copy(update={"path": name})}),
                             folder, folder / "cells" / "cell.json") for cell, name in cells]
    # a lone carriage return is written unquoted (csv quotes only the "\n" line end), so it ends the row:
    # no name vidvpr encode writes holds one (names, codecs and presets are checked); left out here
    assume(not any("\r" in value for row in rows for value in row.values() if isinstance(value, str)))
    (folder / "encodes.csv").write_text(table_csv_text(rows), encoding="utf-8")
    assert read_encode_folder(folder).rows == [{key: "" if value is None else str(value) for key, value in row.items()}
                                               for row in rows]


# ---------------------------------------------------------------- eval's descriptor cache

descriptor_arrays = st.tuples(st.integers(1, 5), st.integers(1, 9)).flatmap(
    lambda shape: st.lists(st.floats(width=16, allow_nan=False), min_size=shape[0] * shape[1],
                           max_size=shape[0] * shape[1]).map(lambda values: np.array(values, np.float16).reshape(shape)))


@ROUND_TRIP
@given(descriptors=descriptor_arrays, first=st.integers(0, 10**6), size=st.none() | st.tuples(st.integers(1, 4096),
                                                                                             st.integers(1, 4096)),
       chunked=st.booleans())
def test_any_cached_descriptors_are_read_back_identical(tmp_path_factory: pytest.TempPathFactory,
                                                        descriptors: np.ndarray, first: int,
                                                        size: tuple[int, int] | None, chunked: bool) -> None:
    """`put` (whole) or `writing` (filled in chunks), then `open` and `get`: the same float16 values
    (any, infinities included), for the same video, frames and input size only."""
    from vidvpr.core.records import FileRecord
    from vidvpr.descriptors.cache import DescriptorCache

    cache = DescriptorCache(tmp_path_factory.mktemp("descriptors"))
    video = FileRecord(path="v.mp4", bytes=1, hash=f"sha256:{first:064d}")
    frames = [first + 2 * k for k in range(len(descriptors))]
    if chunked:
        with cache.writing("m", "fp", video, frames, size, descriptors.shape[1], {"vidvpr": "0"}) as out:
            for row in range(len(descriptors)):
                out[row] = descriptors[row]
    else:
        cache.put(descriptors, "m", "fp", video, frames, size, {"vidvpr": "0"}, 0.25)
    stored = cache.open("fp", video.hash, frames, size)
    assert stored is not None and stored.dtype == np.float16 and np.array_equal(stored, descriptors)
    assert np.array_equal(cache.get("fp", video.hash, frames, size), descriptors.astype(np.float32))
    assert cache.open("fp", video.hash, frames[:-1] + [frames[-1] + 1], size) is None


# ---------------------------------------------------------------- results.csv (the eval's table, sequence rows included)


@settings(ROUND_TRIP, max_examples=80)
@given(results=records_of("EvalResults"))
def test_any_results_table_is_read_back_cell_for_cell(tmp_path_factory: pytest.TempPathFactory, results: Any) -> None:
    """results.csv of any rows (single frames and sequences, AUC-PR and recall@100p or none): read as
    CSV, every row's cells as written, recall@N to its 6 decimals, empty for no value."""
    import csv

    from vidvpr.evaluate.results import csv_columns, write_results_csv

    rows = [row.model_copy(update={"recall": {n: row.recall[n] for n in results.recall_at}})  # as eval writes them
            for row in results.rows]
    assume(not any("\r" in str(value) for row in rows for value in row.csv_row().values()))  # see encodes.csv
    path = tmp_path_factory.mktemp("eval") / "results.csv"
    write_results_csv(path, rows, results.recall_at)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        read = list(reader)
    assert reader.fieldnames == csv_columns(results.recall_at)
    assert read == [{key: "" if value is None else str(value) for key, value in row.csv_row().items()} for row in rows]


# ---------------------------------------------------------------- study.csv and model checkpoints


@settings(ROUND_TRIP, max_examples=60)
@given(study=records_of("study.records.StudyRecord"))
def test_any_study_table_is_read_back_cell_for_cell(tmp_path_factory: pytest.TempPathFactory, study: Any) -> None:
    """study.csv of any study (points, deltas, fronts, budgets, sequence needs, costs): read as CSV,
    every row's cells as `csv_rows` gives them, empty for no value."""
    import csv

    from vidvpr.study.records import CSV_COLUMNS, csv_rows, write_study_csv

    # every point has recall@n for every n the study lists (compute_study makes no other)
    ns = {*study.recall_at, *(front.n for front in study.fronts), *(budget.n for budget in study.budgets)}
    points = [point for curve in study.curves for point in curve.points] + \
             [point for front in study.fronts for point in front.points] + [b.best for b in study.budgets if b.best]
    for point in points:
        point.recall = {**{n: 0.5 for n in ns}, **point.recall}
    rows = csv_rows(study)
    assume(not any("\r" in str(value) for row in rows for value in row.values()))  # see encodes.csv
    path = tmp_path_factory.mktemp("study") / "study.csv"
    write_study_csv(path, study)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        read = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    assert read == [{key: "" if row.get(key) is None else str(row[key]) for key in CSV_COLUMNS} for row in rows]


tensor_shapes = st.lists(st.integers(0, 3), max_size=3).map(tuple)
state_dicts = st.dictionaries(st.text(min_size=1, max_size=12), st.tuples(tensor_shapes, st.sampled_from(
    ("float32", "float16", "int64", "bool"))), max_size=4)


@settings(ROUND_TRIP, max_examples=60)
@given(state=state_dicts, seed=st.integers(0, 2**32 - 1), name=st.text(max_size=20),
       options=st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
                                                              st.booleans(), st.none()), max_size=4),
       metadata=st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=20), st.integers()), max_size=4))
def test_any_model_checkpoint_is_read_back_equal(tmp_path_factory: pytest.TempPathFactory, state: dict, seed: int,
                                                 name: str, options: dict, metadata: dict) -> None:
    """`save_checkpoint` (student.pt, save_model) then `load_checkpoint`: the same weights, bit for bit,
    and the same model name, options and metadata."""
    import torch

    from vidvpr.models.checkpoints import load_checkpoint, save_checkpoint

    generator = torch.Generator().manual_seed(seed)
    weights = {key: (torch.rand(shape, generator=generator) * 100).to(getattr(torch, dtype))
               for key, (shape, dtype) in state.items()}
    path = save_checkpoint(tmp_path_factory.mktemp("checkpoint") / "student.pt", name, options, weights, metadata)
    read = load_checkpoint(path)
    assert (read["model"], read["options"], read["metadata"]) == (name, options, metadata)
    assert read["state_dict"].keys() == weights.keys()
    assert all(torch.equal(read["state_dict"][key], value) and read["state_dict"][key].dtype == value.dtype
               for key, value in weights.items())
