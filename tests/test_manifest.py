"""Specification of sampling, ground-truth positives, dataset definitions and `vidvpr manifest`."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import math
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import given, strategies as st
import numpy as np
import pytest
import utm
from click.testing import CliRunner

from tests.media import make_equirect_video
from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.dataset.definition import (
    check_name,
    definition_from_options,
    load_definition,
    resolve_inside,
    usable_name,
    with_overrides,
)
from vidvpr.dataset.manifest import build_manifest, load_manifest
from vidvpr.dataset.positives import find_positives, heading_difference_deg
from vidvpr.core.records import FileRecord
from vidvpr.dataset.records import COLUMNS, DATA_FILES, ManifestRecord, ManifestRow
from vidvpr.dataset.sampling import parse_sampling, sample_every_frames, sample_every_metres, sample_every_seconds
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "manifests" / "schema.json").read_text())
FPS = 30
FRAMES = 12  # view frame i is at i / 30 s: 0 … 0.367 s
YAWS = (0.0, 90.0)
VIEWS = ("yaw000_pitch+00", "yaw090_pitch+00")
# database: x = 10 t, y = 5 t, heading 10 + 50 t; query: from t = 0.1 to 0.3 s, x = 0.5 + 10 (t - 0.1), y = 3
DB_TRAJ = "t,x,y,heading\n0,0,0,10\n0.4,4,2,30\n"
QUERY_TRAJ = "t,x,y\n0.1,0.5,3\n0.3,2.5,3\n"
MUNICH = (48.137, 11.575)


# ---------------------------------------------------------------- test data


@pytest.fixture(scope="session")
def sliced_views(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """views/<rec>/<view>.mp4 + .json for recordings dbwalk and qwalk (12 frames, 64x36, yaw 0 and 90)."""
    base = tmp_path_factory.mktemp("sliced")
    for name in ("dbwalk", "qwalk"):
        video = make_equirect_video(base / f"{name}.mp4", frames=FRAMES)
        slice_video(video, base / "views", SliceConfig(yaws_deg=YAWS, size=(64, 36)))
    return base / "views"


def definition_text(database: str = "all", query: str = "all", radius: float = 2.5, extra: str = "",
                    query_trajectory: str = '"traj/qwalk.csv"') -> str:
    return f"""
[dataset]
name = "tiny"
{extra}
[sampling]
database = "{database}"
query = "{query}"

[positives]
radius_m = {radius}

[[recordings]]
name = "dbwalk"
split = "database"
trajectory = "traj/dbwalk.csv"

[[recordings]]
name = "qwalk"
split = "query"
trajectory = {query_trajectory}
"""


def make_dataset(root: Path, views: Path, db_traj: str = DB_TRAJ, query_traj: str = QUERY_TRAJ, **definition: Any) -> Path:
    """A dataset root holding a copy of the sliced views, two trajectories and def.toml; returns def.toml."""
    shutil.copytree(views, root / "views")
    (root / "traj").mkdir()
    (root / "traj" / "dbwalk.csv").write_text(db_traj)
    (root / "traj" / "qwalk.csv").write_text(query_traj)
    path = root / "def.toml"
    path.write_text(definition_text(**definition))
    return path


@pytest.fixture
def dataset(tmp_path: Path, sliced_views: Path) -> Path:
    return make_dataset(tmp_path / "ds", sliced_views)


def rerecord_outputs(folder: Path) -> None:
    """Record the manifest folder's data files, as they are now, in its manifest.json: a hand-edited
    manifest that is consistent, so that the readers behind the size and hash check are reached."""
    meta = ManifestRecord.load(folder / "manifest.json")
    outputs = {name: FileRecord.of(folder / name, folder) for name in DATA_FILES}
    meta.model_copy(update={"outputs": outputs}).save(folder / "manifest.json")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- sampling


def test_every_n_frames():
    assert sample_every_frames(10, 3).tolist() == [0, 3, 6, 9]
    assert sample_every_frames(3, 5).tolist() == [0]
    assert sample_every_frames(0, 2).tolist() == []


def test_every_t_seconds_is_grid_aligned_without_drift():
    t = np.arange(31) / 30.0
    assert sample_every_seconds(t, 0.1).tolist() == list(range(0, 31, 3))  # 3.33 frames apart → 3 exactly, no drift
    assert sample_every_seconds(t, 0.25).tolist() == [0, 8, 15, 23, 30]  # first frame at or after 0.25 k
    gap = np.array([0.0, 0.5, 1.0, 3.0, 3.5, 4.0])  # nothing between 1.0 and 3.0 s: those slots are skipped
    assert sample_every_seconds(gap, 1.0).tolist() == [0, 2, 3, 5]
    offset = np.array([5.0, 5.4, 5.8, 6.2])  # t0 is the first frame, not 0
    assert sample_every_seconds(offset, 0.8).tolist() == [0, 2]


def test_every_d_metres_keeps_nothing_while_standing_still():
    t = np.arange(0, 30, 0.25)  # 10 s walking east at 1 m/s, 10 s standing still (jittering), 10 s walking on
    east = np.where(t < 10, t, np.where(t < 20, 10.0, t - 10.0))
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, size=(2, t.size)) * ((t > 10) & (t < 20))
    kept = sample_every_metres(east + jitter[0], jitter[1], 2.0)
    assert np.count_nonzero((t[kept] > 10.5) & (t[kept] < 20)) == 0  # the stop adds no frame
    assert t[kept].tolist() == [0, 2, 4, 6, 8, 10, 22, 24, 26, 28]  # after the stop: 2 m beyond where it stood
    gaps = np.hypot(np.diff(east[kept] + jitter[0][kept]), np.diff(jitter[1][kept]))
    assert (gaps >= 2.0).all()


def test_every_d_metres_measures_from_the_last_kept_frame():
    east = np.array([0.0, 0.9, 1.8, 2.1, 2.2, 4.5])
    assert sample_every_metres(east, np.zeros(6), 2.0).tolist() == [0, 3, 5]


@pytest.mark.parametrize("text, every, unit", [("5f", 5, "f"), ("0.5s", 0.5, "s"), ("2m", 2.0, "m"),
                                                (" 2.5 M ", 2.5, "m"), ("all", 1, "f"), (".5s", 0.5, "s")])
def test_parse_sampling(text, every, unit):
    rule = parse_sampling(text)
    assert (rule.every, rule.unit) == (every, unit)


@pytest.mark.parametrize("text", ["5", "2km", "0m", "1.5f", "-1s", "every 2 m", ""])
def test_unknown_sampling_rule_is_bad_input(text):
    with pytest.raises(BadInput, match="Unknown sampling rule"):
        parse_sampling(text)


# ---------------------------------------------------------------- positives


def brute_force(queries, database, radius, q_heading=None, db_heading=None, max_diff=None):
    result = []
    for k, q in enumerate(queries):
        dist = np.sqrt(((database - q) ** 2).sum(axis=1))
        ok = dist <= radius
        if max_diff is not None:
            diff = np.abs((db_heading - q_heading[k] + 180) % 360 - 180)
            ok &= diff <= max_diff
        hits = np.flatnonzero(ok)
        result.append(hits[np.lexsort((hits, dist[hits]))].tolist())
    return result


@pytest.mark.parametrize("chunk_elements", [7, 1 << 22])
def test_positives_match_brute_force(chunk_elements):
    rng = np.random.default_rng(1)
    offset = np.array([690_000.0, 5_330_000.0])  # UTM-sized coordinates
    database = rng.uniform(0, 300, size=(400, 2)) + offset
    queries = rng.uniform(-20, 320, size=(120, 2)) + offset
    found = find_positives(queries, database, 25.0, chunk_elements=chunk_elements)
    expected = brute_force(queries, database, 25.0)
    assert [f.tolist() for f in found] == expected
    assert sum(map(len, expected)) > 500 and any(not e for e in expected)  # the test data exercises both cases


def test_positives_radius_is_inclusive_and_sorted_by_distance():
    database = np.array([[3.0, 4.0], [0.0, 1.0], [5.0, 0.1], [-5.0, 0.0]])
    assert find_positives([[0.0, 0.0]], database, 5.0)[0].tolist() == [1, 0, 3]


def test_positives_with_heading_filter_match_brute_force():
    rng = np.random.default_rng(2)
    database = rng.uniform(0, 100, size=(300, 2))
    queries = rng.uniform(0, 100, size=(80, 2))
    db_heading = rng.uniform(0, 360, size=300)
    q_heading = rng.uniform(0, 360, size=80)
    found = find_positives(queries, database, 20.0, query_heading_deg=q_heading, database_heading_deg=db_heading,
                           max_heading_diff_deg=45.0, chunk_elements=50)
    expected = brute_force(queries, database, 20.0, q_heading, db_heading, 45.0)
    assert [f.tolist() for f in found] == expected
    unfiltered = find_positives(queries, database, 20.0)
    assert sum(map(len, expected)) < 0.4 * sum(map(len, unfiltered))


def test_heading_difference_wraps_around_north():
    assert heading_difference_deg(350.0, 10.0) == pytest.approx(20.0)
    assert heading_difference_deg(10.0, 350.0) == pytest.approx(20.0)
    assert heading_difference_deg([0.0, 90.0], [180.0, 300.0]).tolist() == pytest.approx([180.0, 150.0])


@pytest.mark.parametrize("radius", [0, -5, float("nan"), float("inf"), "25"])
def test_radius_must_be_positive(radius):
    with pytest.raises(BadInput, match="--radius"):
        find_positives([[0, 0]], [[1, 1]], radius)


@pytest.mark.parametrize("max_diff", [0, -1, 181])
def test_max_heading_diff_must_be_in_range(max_diff):
    with pytest.raises(BadInput, match="--max-heading-diff"):
        find_positives([[0, 0]], [[1, 1]], 5.0, query_heading_deg=[0], database_heading_deg=[0],
                       max_heading_diff_deg=max_diff)


def test_positives_with_an_empty_side():
    assert [p.tolist() for p in find_positives([[0, 0], [1, 1]], np.empty((0, 2)), 5.0)] == [[], []]
    assert find_positives(np.empty((0, 2)), [[0, 0]], 5.0) == []


# ---------------------------------------------------------------- definitions and paths


def test_definition_reads_every_key(tmp_path):
    path = tmp_path / "defs" / "d.toml"
    path.parent.mkdir()
    path.write_text("""
[dataset]
name = "walks"
root = "../data"
views_dir = "sliced"
utm_zone = 32
strict = true
[sampling]
database = "2m"
query = "0.5s"
[positives]
radius_m = 10
max_heading_diff_deg = 45.5
[[recordings]]
name = "a"
split = "database"
views = ["yaw000_pitch+00"]
trajectory = { path = "t/a.json", format = "keyframes-json", fps = 30, scale = 0.5, axes = "xz", time_offset_s = -1.5 }
[[recordings]]
name = "b"
split = "query"
views_dir = "other"
trajectory = "t/b.gpx"
""")
    definition = load_definition(path)
    assert definition.name == "walks" and definition.root == (tmp_path / "data").resolve()
    spec = definition.spec
    assert (spec.sampling.database, spec.sampling.query, spec.positives.radius_m, spec.positives.max_heading_diff_deg,
            spec.dataset.strict, spec.dataset.utm_zone) == ("2m", "0.5s", 10, 45.5, True, 32)
    first, second = definition.recordings
    assert (first.name, first.split, definition.views_dir(first), first.views) == (
        "a", "database", "sliced", ("yaw000_pitch+00",))
    assert first.trajectory.model_dump() == {"path": "t/a.json", "format": "keyframes-json", "time_offset_s": -1.5,
                                             "axes": "xz", "fps": 30, "scale": 0.5}
    assert (definition.views_dir(second), second.views, second.trajectory.path, second.trajectory.format) == (
        "other", None, "t/b.gpx", "auto")
    assert load_definition(path, root=tmp_path).root == tmp_path.resolve()  # --root overrides


@pytest.mark.parametrize("text, message", [
    ("[positives]\nradius = 5\n", "positives.radius: unknown key"),
    ("[dataset]\nname = \n", "not valid TOML"),
    ("[positives]\nradius_m = '5'\n", "positives.radius_m: Input should be a valid number"),
    ("[dataset]\nstrict = 1\n", "dataset.strict: Input should be a valid boolean"),
    ("[[recordings]]\nname = 'a'\nsplit = 'database'\n", "recordings.0.trajectory: missing"),
    ("[[recordings]]\nname = 'a/b'\nsplit = 'database'\ntrajectory = 'x'\n", "recordings.0.name: String should match"),
    ("[[recordings]]\nname = 'a'\nsplit = 'query'\ntrajectory = { file = 'x' }\n", "recordings.0.trajectory.file: unknown key"),
    ("[[recordings]]\nname = 'a'\nsplit = 'query'\nviews = []\ntrajectory = 'x'\n", "recordings.0.views: Tuple should have at least 1"),
    ("\ufeff[positives]\nradius_m = -5\n", "positives.radius_m: Input should be greater than 0"),
    ("[positives]\nradius_m = nan\n", r"positives.radius_m: nan is not allowed \(numbers must be finite\)$"),
    ("[[recordings]]\nname = 'a'\nsplit = 'query'\ntrajectory = { path = 'x', time_offset_s = -inf }\n",
     r"recordings.0.trajectory.time_offset_s: -inf is not allowed"),
])
def test_bad_definitions_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "d.toml"
    path.write_text(text)
    with pytest.raises(BadInput, match=message) as info:
        load_definition(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_definition_validates_against_the_schema(tmp_path, dataset):
    import tomllib

    validate(tomllib.loads(dataset.read_text()), SCHEMA["$defs"]["definition"])
    with pytest.raises(SchemaError):
        validate({"recordings": [], "positives": {"radius": 5}}, SCHEMA["$defs"]["definition"])


@pytest.mark.parametrize("text, name", [("GS010203", "GS010203"), ("VID é 1", "VID_e_1"), ("Straße 2", "Strasse_2"),
                                        ("Ørsta–Volda", "Orsta-Volda"), ("北京 walk", "BeiJing_walk"),
                                        ("_draft (copy)", "draft_copy"), ("???", "recording")])
def test_usable_name_transliterates_and_replaces_what_a_name_cannot_hold(text, name):
    assert usable_name(text) == name


@given(st.text(max_size=300))
def test_usable_name_is_always_a_valid_recording_name(text):
    assert check_name(usable_name(text), "recording", "test") == usable_name(text)


def test_resolve_inside_rejects_escapes(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert resolve_inside(root, "a/../a/x.csv", "trajectory", "d.toml")[1] == "a/x.csv"
    assert resolve_inside(root, root / "a" / "x.csv", "trajectory", "d.toml")[1] == "a/x.csv"
    for bad in ("../secret/x.csv", "a/../../secret/x.csv", str(outside / "x.csv"), "/etc/passwd"):
        with pytest.raises(BadInput, match="outside the dataset root"):
            resolve_inside(root, bad, "trajectory", "d.toml")
    with pytest.raises(BadInput, match="symlink"):
        resolve_inside(root, "link/x.csv", "trajectory", "d.toml")
    with pytest.raises(BadInput, match="empty"):
        resolve_inside(root, "", "trajectory", "d.toml")


@pytest.mark.parametrize("field, value", [("trajectory", '"../../etc/passwd"'), ("views_dir", '"../.."')])
def test_manifest_rejects_paths_outside_the_root(tmp_path, sliced_views, field, value):
    definition = make_dataset(tmp_path / "ds", sliced_views)
    text = definition.read_text().replace('trajectory = "traj/qwalk.csv"', f'trajectory = "traj/qwalk.csv"\n{field} = {value}')
    if field == "trajectory":
        text = text.replace('trajectory = "traj/qwalk.csv"\n', "")
    definition.write_text(text)
    with pytest.raises(BadInput, match="outside the dataset root") as info:
        build_manifest(load_definition(definition), tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- manifests


def test_rows_have_interpolated_positions_and_view_headings(tmp_path, dataset):
    summary = build_manifest(load_definition(dataset), tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "database.csv")
    assert [r["id"] for r in rows] == [f"dbwalk/{view}/{i:06d}" for view in VIEWS for i in range(FRAMES)]
    for row in rows:
        frame = int(row["frame"])
        t = frame / FPS
        yaw = float(row["yaw_deg"])
        assert float(row["time_s"]) == pytest.approx(t, abs=1e-6)
        assert int(row["source_frame"]) == frame
        assert float(row["easting_m"]) == pytest.approx(10 * t, abs=1e-3)
        assert float(row["northing_m"]) == pytest.approx(5 * t, abs=1e-3)
        assert float(row["camera_heading_deg"]) == pytest.approx(10 + 50 * t, abs=1e-3)
        assert float(row["heading_deg"]) == pytest.approx((10 + 50 * t + yaw) % 360, abs=1e-3)
        assert row["video"] == f"views/dbwalk/{row['view']}.mp4"
        assert row["split"] == "database" and float(row["hfov_deg"]) == 90.0 and float(row["pitch_deg"]) == 0.0
        assert row["utm_zone_number"] == row["lat_deg"] == ""
        assert "num_positives" not in row
    queries = read_csv(tmp_path / "out" / "query.csv")
    assert sorted({int(r["frame"]) for r in queries}) == list(range(3, 10))  # inside [0.1, 0.3] s
    for row in queries:
        t = int(row["frame"]) / FPS
        assert float(row["easting_m"]) == pytest.approx(0.5 + 10 * (t - 0.1), abs=1e-3)
        assert float(row["camera_heading_deg"]) == pytest.approx(90.0)  # from travel: due east
        assert float(row["heading_deg"]) == pytest.approx(90.0 + float(row["yaw_deg"]))
    assert summary.rows == {"database": 24, "query": 14}
    assert summary.dropped_frames == 2 * 5  # frames 0-2 and 10-11 of each query view
    meta = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert meta["counts"] == {"database": 24, "query": 14, "dropped_frames": 10, "queries_without_positives": 0}
    assert [rec["dropped_frames"] for rec in meta["inputs"]] == [0, 10]


def test_positives_file_matches_a_brute_force_check(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "out")
    database, queries = read_csv(tmp_path / "out" / "database.csv"), read_csv(tmp_path / "out" / "query.csv")
    positives = json.loads((tmp_path / "out" / "positives.json").read_text())
    validate(positives, SCHEMA["$defs"]["positives"])
    assert list(positives["positives"]) == [q["id"] for q in queries]
    db_xy = np.array([(float(r["easting_m"]), float(r["northing_m"])) for r in database])
    q_xy = np.array([(float(r["easting_m"]), float(r["northing_m"])) for r in queries])
    expected = brute_force(q_xy, db_xy, 2.5)
    for query, hits in zip(queries, expected):
        assert positives["positives"][query["id"]] == [database[i]["id"] for i in hits]
        assert int(query["num_positives"]) == len(hits)
    assert 0 < min(map(len, expected)) < max(map(len, expected)) < len(database)
    loaded = load_manifest(tmp_path / "out")
    assert [p.tolist() for p in loaded.positives] == expected
    assert loaded.root == dataset.parent.resolve()


def test_distance_sampling_and_heading_filter(tmp_path, sliced_views):
    definition = make_dataset(tmp_path / "ds", sliced_views, database="1m", query="0.1s", radius=25)
    build_manifest(with_overrides(load_definition(definition), max_heading_diff_deg=30.0), tmp_path / "out")
    database = read_csv(tmp_path / "out" / "database.csv")
    assert sorted({int(r["frame"]) for r in database}) == [0, 3, 6, 9]  # 0.373 m per frame: every third ≥ 1 m
    queries = read_csv(tmp_path / "out" / "query.csv")
    assert sorted({int(r["frame"]) for r in queries}) == [3, 6, 9]  # t0 = 0.1 s, then every 0.1 s
    positives = json.loads((tmp_path / "out" / "positives.json").read_text())["positives"]
    heading = {r["id"]: float(r["heading_deg"]) for r in database}
    for query in queries:
        hits = positives[query["id"]]
        assert all(heading_difference_deg(heading[h], float(query["heading_deg"])) <= 30 for h in hits)
        # query views face 90° / 180°, database views 10-28° / 100-118°: only the yaw-90 database view is near 90°
        assert {h.split("/")[1] for h in hits} == ({"yaw090_pitch+00"} if query["view"] == "yaw000_pitch+00" else set())


def test_queries_without_positives_are_counted_and_listed(tmp_path, sliced_views):
    far = "t,x,y\n0,100,100\n0.2,101,100\n1,108,100\n"  # 137.5 m from the database's end, then walking away
    definition = make_dataset(tmp_path / "ds", sliced_views, query_traj=far, radius=138.5)
    summary = build_manifest(load_definition(definition), tmp_path / "out")
    queries = read_csv(tmp_path / "out" / "query.csv")
    without = [q["id"] for q in queries if q["num_positives"] == "0"]
    assert 0 < len(without) < len(queries)
    assert summary.queries_without_positives == len(without)
    positives = json.loads((tmp_path / "out" / "positives.json").read_text())
    assert positives["queries_without_positives"] == without
    assert all(positives["positives"][q] == [] for q in without)
    meta = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert meta["counts"]["queries_without_positives"] == len(without)
    assert load_manifest(tmp_path / "out").matched_queries == [i for i, q in enumerate(queries) if q["id"] not in without]


def test_time_offset_shifts_the_lookup(tmp_path, sliced_views):
    definition = make_dataset(tmp_path / "ds", sliced_views,
                              query_trajectory='{ path = "traj/qwalk.csv", time_offset_s = 0.1 }')
    build_manifest(load_definition(definition), tmp_path / "out")
    queries = read_csv(tmp_path / "out" / "query.csv")
    assert sorted({int(r["frame"]) for r in queries}) == list(range(0, 7))  # video t + 0.1 in [0.1, 0.3]
    for row in queries:
        assert float(row["easting_m"]) == pytest.approx(0.5 + 10 * int(row["frame"]) / FPS, abs=1e-3)


def test_strict_refuses_frames_outside_the_trajectory(tmp_path, dataset):
    definition = load_definition(dataset)
    strict = with_overrides(definition, strict=True)
    with pytest.raises(BadInput, match=r"qwalk.*video \[0\.000, 0\.367\] s.*trajectory \[0\.100, 0\.300\] s") as info:
        build_manifest(strict, tmp_path / "out")
    assert "\n" not in str(info.value) and str(info.value).startswith(str(dataset.parent / "traj" / "qwalk.csv"))


def test_geographic_trajectories_give_utm_zone_and_lat_lon(tmp_path, sliced_views):
    lat, lon = MUNICH
    db = f"t,lat,lon\n0,{lat},{lon}\n0.4,{lat + 0.0004},{lon}\n"
    query = f"t,lat,lon\n0,{lat + 0.0001},{lon}\n0.4,{lat + 0.0003},{lon}\n"
    definition = make_dataset(tmp_path / "ds", sliced_views, db_traj=db, query_traj=query, radius=25)
    build_manifest(load_definition(definition), tmp_path / "out")
    (e0, n0, _, _), (e1, n1, _, _) = utm.from_latlon(lat, lon), utm.from_latlon(lat + 0.0004, lon)
    grid_north = math.degrees(math.atan2(e1 - e0, n1 - n0)) % 360  # due north is 358.1° in UTM zone 32's grid
    rows = read_csv(tmp_path / "out" / "database.csv")
    for row in rows:
        t = int(row["frame"]) / FPS
        assert (row["utm_zone_number"], row["utm_zone_letter"]) == ("32", "U")
        assert float(row["lat_deg"]) == pytest.approx(lat + 0.001 * t, abs=2e-7)
        assert float(row["lon_deg"]) == pytest.approx(lon, abs=2e-7)
        assert float(row["camera_heading_deg"]) == pytest.approx(grid_north, abs=1e-3)
    step_m = float(rows[1]["northing_m"]) - float(rows[0]["northing_m"])
    assert step_m == pytest.approx(111_200 * 0.001 / FPS, abs=0.02)  # 0.001° of latitude per second ≈ 111.2 m
    meta = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert meta["utm_zone"] == {"number": 32, "letter": "U"}


def test_a_trajectory_that_never_moves_is_warned_about_once_by_name(tmp_path, sliced_views, caplog):
    still = "t,x,y\n0,1,1\n0.4,1,1\n"  # no heading column, never moves: two views, one warning
    definition = make_dataset(tmp_path / "ds", sliced_views, query_traj=still)
    with caplog.at_level("WARNING", logger="vidvpr.dataset.manifest"):
        build_manifest(load_definition(definition), tmp_path / "out")
    assert caplog.messages == [f"{tmp_path / 'ds' / 'traj' / 'qwalk.csv'}: never moves 0.5 m in 2 s and has no "
                               "heading column: the rows of recording qwalk have no heading"]


def test_heading_filter_needs_headings(tmp_path, sliced_views):
    still = "t,x,y\n0,1,1\n0.4,1,1\n"  # never moves, no heading column: no heading at all
    definition = make_dataset(tmp_path / "ds", sliced_views, query_traj=still)
    build_manifest(load_definition(definition), tmp_path / "out")
    assert {r["heading_deg"] for r in read_csv(tmp_path / "out" / "query.csv")} == {""}
    loaded = load_definition(definition)
    with pytest.raises(BadInput, match=rf"^{re.escape(str(definition.parent / 'traj' / 'qwalk.csv'))}: never moves "
                                       r".* recording qwalk have no heading, so positives cannot be filtered by heading"):
        build_manifest(with_overrides(loaded, max_heading_diff_deg=45.0), tmp_path / "out")


def test_a_split_without_rows_is_bad_input(tmp_path, sliced_views):
    late = "t,x,y\n10,0,0\n20,5,0\n"  # starts 10 s after the 0.4 s video ends: a missing time offset
    definition = make_dataset(tmp_path / "ds", sliced_views, query_traj=late)
    with pytest.raises(BadInput, match=r"fall outside the trajectory: video \[0.000, .* vs trajectory \[10.000, "
                                       r"20.000\] s; are the clocks offset\? set time_offset_s"):
        build_manifest(load_definition(definition), tmp_path / "out")


def test_mixed_frames_are_rejected(tmp_path, sliced_views):
    lat, lon = MUNICH
    db = f"t,lat,lon\n0,{lat},{lon}\n0.4,{lat + 0.0004},{lon}\n"
    definition = make_dataset(tmp_path / "ds", sliced_views, db_traj=db)  # query stays in a local frame
    with pytest.raises(BadInput, match="geographic and local positions cannot be compared"):
        build_manifest(load_definition(definition), tmp_path / "out")


def test_missing_video_is_bad_input(tmp_path, dataset):
    (dataset.parent / "views" / "qwalk" / "yaw090_pitch+00.mp4").unlink()
    with pytest.raises(BadInput, match=r"yaw090_pitch\+00\.mp4: view video not found"):
        build_manifest(load_definition(dataset), tmp_path / "out")


def test_missing_listed_sidecar_and_missing_views_folder(tmp_path, dataset):
    text = dataset.read_text()
    dataset.write_text(text.replace('split = "query"', 'split = "query"\nviews = ["yaw270_pitch+00"]'))
    with pytest.raises(BadInput, match=r"yaw270_pitch\+00\.json: view sidecar not found"):
        build_manifest(load_definition(dataset), tmp_path / "out")
    dataset.write_text(text)
    shutil.rmtree(dataset.parent / "views" / "dbwalk")
    with pytest.raises(BadInput, match="views folder of recording 'dbwalk' not found"):
        build_manifest(load_definition(dataset), tmp_path / "out")


def test_view_subset_and_changed_video_size(tmp_path, dataset):
    dataset.write_text(dataset.read_text().replace('split = "query"', 'split = "query"\nviews = ["yaw090_pitch+00"]'))
    build_manifest(load_definition(dataset), tmp_path / "out")
    assert {r["view"] for r in read_csv(tmp_path / "out" / "query.csv")} == {"yaw090_pitch+00"}
    with open(dataset.parent / "views" / "dbwalk" / "yaw000_pitch+00.mp4", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BadInput, match="bytes but its sidecar says"):
        build_manifest(load_definition(dataset), tmp_path / "out")


@pytest.mark.parametrize("change, message", [
    ({"radius_m": 0}, "--radius: positives.radius_m"), ({"radius_m": -3.0}, "--radius"),
    ({"max_heading_diff_deg": 200.0}, "--max-heading-diff: positives.max_heading_diff_deg"),
    ({"database_sampling": "3 metres"}, "Unknown sampling rule '3 metres'"), ({"utm_zone": 61}, "--utm-zone: dataset.utm_zone"),
])
def test_bad_parameters(tmp_path, dataset, change, message):
    with pytest.raises(BadInput, match=message):
        with_overrides(load_definition(dataset), **change)


def test_definition_needs_both_splits_and_unique_names(tmp_path, dataset):
    text = dataset.read_text()
    dataset.write_text(text.replace('split = "query"', 'split = "database"'))
    with pytest.raises(BadInput, match="no query recording"):
        build_manifest(load_definition(dataset), tmp_path / "out")
    dataset.write_text(text.replace('name = "qwalk"', 'name = "dbwalk"'))
    with pytest.raises(BadInput, match="listed twice"):
        build_manifest(load_definition(dataset), tmp_path / "out")
    dataset.write_text(text.replace('split = "query"', 'split = "queries"'))
    with pytest.raises(BadInput, match="recordings.1.split: Input should be 'database' or 'query'"):
        build_manifest(load_definition(dataset), tmp_path / "out")


def test_manifest_records_inputs_and_versions(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "out")
    meta = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert meta["schema"] == "vidvpr.manifest/2" and meta["name"] == "tiny"
    assert (tmp_path / "out" / meta["root"]).resolve() == dataset.parent.resolve()
    assert meta["definition"]["file"]["hash"].startswith("sha256:")
    assert meta["parameters"]["radius_m"] == 2.5 and meta["parameters"]["database_sampling"] == "1f"
    view = meta["inputs"][0]["views"][0]
    sidecar = json.loads((dataset.parent / view["sidecar"]["path"]).read_text())
    assert view["params_hash"] == sidecar["params_hash"] and view["video"]["hash"].startswith("sha256:")
    assert meta["inputs"][1]["trajectory"]["path"] == "traj/qwalk.csv"
    assert meta["inputs"][1]["trajectory"]["time_range_s"] == [0.1, 0.3]
    assert meta["positives"]["median"] is not None and "vidvpr" in meta["versions"]


# ---------------------------------------------------------------- schema and docs


SchemaError = jsonschema.ValidationError


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any] = SCHEMA) -> None:
    """Check `value` against one of schema.json's definitions with a full JSON Schema 2020-12 validator."""
    jsonschema.Draft202012Validator({**schema, "$defs": root["$defs"]}).validate(value)


def test_the_committed_schema_is_the_one_the_models_generate():
    from vidvpr.dataset.schema import manifest_schema

    assert SCHEMA == manifest_schema(), "regenerate it: python -m vidvpr.dataset.schema manifests/schema.json"


def test_the_schema_checker_catches_bad_rows():
    row = {name: None for name in COLUMNS}
    good = {**row, "id": "a/yaw000_pitch+00/000001", "split": "database", "recording": "a", "view": "yaw000_pitch+00",
            "yaw_deg": 0.0, "pitch_deg": 0.0, "hfov_deg": 90.0, "frame": 1, "source_frame": 1, "time_s": 0.1,
            "easting_m": 1.0, "northing_m": 2.0, "video": "views/a/yaw000_pitch+00.mp4"}
    del good["num_positives"]
    validate(good, SCHEMA["$defs"]["row"])
    for bad in ({"frame": -1}, {"frame": 1.5}, {"split": "queries"}, {"video": "../x.mp4"}, {"video": "/x.mp4"},
                {"video": "a/../../x.mp4"}, {"heading_deg": 360.0}, {"utm_zone_letter": "I"}, {"extra": 1},
                {"split": "query"}, {"num_positives": 3}, {"id": "a/b/1"}, {"lat_deg": 91.0}):
        with pytest.raises(SchemaError):
            validate({**good, **bad}, SCHEMA["$defs"]["row"])


def test_every_row_written_validates_against_the_schema(tmp_path, sliced_views):
    lat, lon = MUNICH
    db = f"t,lat,lon\n0,{lat},{lon}\n0.4,{lat + 0.0004},{lon}\n"
    query = f"t,lat,lon\n0,{lat + 0.0001},{lon}\n0.3,{lat + 0.0003},{lon}\n"
    for name, (db_traj, q_traj) in {"geo": (db, query), "local": (DB_TRAJ, QUERY_TRAJ)}.items():
        definition = make_dataset(tmp_path / name, sliced_views, db_traj=db_traj, query_traj=q_traj)
        build_manifest(load_definition(definition), tmp_path / name / "out")
        manifest = load_manifest(tmp_path / name / "out")
        rows = [row.as_dict() for row in manifest.database + manifest.queries]
        assert rows and any(row["lat_deg"] is not None for row in rows) == (name == "geo")
        for row in rows:
            validate(row, SCHEMA["$defs"]["row"])


def test_schema_and_readme_document_every_column():
    row = SCHEMA["$defs"]["row"]
    assert list(row["properties"]) == list(COLUMNS) == [f.name for f in dataclasses.fields(ManifestRow)]
    assert set(row["required"]) == set(COLUMNS) - {"num_positives"}
    kinds = {"str": "string", "int": "integer", "float": "number"}
    for name, kind in COLUMNS.items():
        prop = row["properties"][name]
        types = {t.get("type") for t in prop.get("anyOf", [prop])} - {None}
        if "enum" in prop:
            continue
        expected = {kinds[kind.rstrip("?")], "null"} if kind.endswith("?") or name == "num_positives" else {kinds[kind]}
        assert types == expected, name
    readme = (REPO / "manifests" / "README.md").read_text()
    for name in COLUMNS:
        assert f"| `{name}` |" in readme, name
    for key in ("radius_m", "max_heading_diff_deg", "views_dir", "utm_zone", "strict", "time_offset_s", "axes",
                "scale", "fps", "positives.json", "queries_without_positives", "@utm_east@utm_north"):
        assert key in readme, key


# ---------------------------------------------------------------- loading


def test_load_manifest_rejects_tampered_paths_and_ids(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "out")
    path = tmp_path / "out" / "database.csv"
    text = path.read_text()
    for tampered, match in ((text.replace("views/dbwalk/yaw000_pitch+00.mp4", "../../../etc/passwd", 1),
                             "outside the dataset root"),
                            (text.replace("dbwalk/yaw000_pitch+00/000000", "dbwalk/yaw000_pitch+00/000001", 1),
                             "line 2: id"),
                            (text.replace(",0.0,0.0,", ",zero,0.0,", 1), "line 2: yaw_deg: Input should be a valid number")):
        path.write_text(tampered)
        rerecord_outputs(tmp_path / "out")  # as if manifest.json had been edited to match
        with pytest.raises(BadInput, match=match):
            load_manifest(tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInput, match="not a finished vidvpr manifest"):
        load_manifest(empty)
    # the folder holding the manifest (a demo's, `vidvpr eval demo-out`): the advice was "run vidvpr manifest --out
    # demo-out", which would write a second manifest into the dataset's own folder
    with pytest.raises(BadInput, match=rf"^{tmp_path}: not a manifest folder \(no manifest.json\); did you mean "
                                       rf"{tmp_path / 'out'}\?$"):
        load_manifest(tmp_path)


def test_a_row_naming_another_views_video_is_refused(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "out")
    path = tmp_path / "out" / "database.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("views/dbwalk/yaw000_pitch+00.mp4", "views/qwalk/yaw000_pitch+00.mp4")
    path.write_text("".join(lines))
    rerecord_outputs(tmp_path / "out")
    row_id = lines[2].split(",")[0]
    with pytest.raises(BadInput, match=rf"^{re.escape(str(path))}: row {re.escape(row_id)}: video "
                                       r"'views/qwalk/yaw000_pitch\+00.mp4' is not the one manifest.json records for "
                                       r"view dbwalk/yaw000_pitch\+00 \(it lists 'views/dbwalk/yaw000_pitch\+00.mp4'\)$"):
        load_manifest(tmp_path / "out")


def test_positives_that_disagree_with_query_csv_are_refused(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "out")
    path = tmp_path / "out" / "positives.json"
    original = json.loads(path.read_text())
    query, hits = next((q, ids) for q, ids in original["positives"].items() if ids)
    for edited, problem in (([*hits, hits[0]], f"database id '{hits[0]}' listed twice"),
                            (hits[1:], f"{len(hits) - 1} positives, but query.csv says {len(hits)}")):
        path.write_text(json.dumps({**original, "positives": {**original["positives"], query: edited}}))
        rerecord_outputs(tmp_path / "out")
        with pytest.raises(BadInput, match=rf"^{re.escape(str(path))}: query {re.escape(query)}: {re.escape(problem)}$"):
            load_manifest(tmp_path / "out")


def _hand_edited(tmp_path: Path, dataset: Path, name: str, edit) -> Path:
    """A built manifest whose file `name` had its lines rewritten by `edit`, the outputs recorded
    again (a hand edit that also fixed manifest.json's hashes): what only the rows' checks can catch."""
    build_manifest(load_definition(dataset), tmp_path / "out")
    path = tmp_path / "out" / name
    path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))
    rerecord_outputs(tmp_path / "out")
    return path


@pytest.mark.parametrize("field, value", [("radius_m", 7.5), ("max_heading_diff_deg", 30.0)])
def test_positives_made_with_another_radius_or_heading_limit_than_recorded_are_refused(tmp_path, dataset, field,
                                                                                       value):
    """A positives.json edited (and its hash re-recorded) to say another radius went unnoticed: eval
    reports the manifest.json's radius over positives made with another."""
    build_manifest(load_definition(dataset), tmp_path / "out")
    path = tmp_path / "out" / "positives.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    rerecord_outputs(tmp_path / "out")
    with pytest.raises(BadInput, match=rf"^{re.escape(str(path))}: positives within .* but manifest.json records .*; "
                                       r"rebuild the manifest"):
        load_manifest(tmp_path / "out")


def test_a_query_row_without_its_count_is_refused(tmp_path, dataset):
    path = _hand_edited(tmp_path, dataset, "query.csv",
                        lambda lines: [lines[0], lines[1].rsplit(",", 1)[0] + ",\n", *lines[2:]])
    with pytest.raises(BadInput, match=rf"^{re.escape(str(path))}: line 2: num_positives is empty"):
        load_manifest(tmp_path / "out")


def test_a_duplicated_row_is_named_by_its_line_and_id(tmp_path, dataset):
    path = _hand_edited(tmp_path, dataset, "database.csv",
                        lambda lines: lines[:3] + [lines[2]] + lines[3:])  # line 3 again as line 4
    row_id = path.read_text().splitlines()[2].split(",")[0]
    with pytest.raises(BadInput, match=rf"^{re.escape(str(path))}: line 4: duplicate row '{re.escape(row_id)}' \(also line 3\)$"):
        load_manifest(tmp_path / "out")


def test_an_id_that_does_not_match_its_row_says_which_it_should_be(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "out")
    path = tmp_path / "out" / "database.csv"
    path.write_text(path.read_text().replace("dbwalk/yaw000_pitch+00/000000,", "dbwalk/yaw000_pitch+00/000001,", 1))
    rerecord_outputs(tmp_path / "out")
    with pytest.raises(BadInput, match=r"line 2: id 'dbwalk/yaw000_pitch\+00/000001' does not match the row's "
                                       r"recording, view and frame \('dbwalk/yaw000_pitch\+00/000000'"):
        load_manifest(tmp_path / "out")


def test_a_data_file_cut_short_is_named_before_anything_is_read(tmp_path, dataset):
    # issue 15.10: cut inside the last line's video field, database.csv was read without a word (a path that
    # does not exist); cut mid-file, the error blamed positives.json
    build_manifest(load_definition(dataset), tmp_path / "out")
    path = tmp_path / "out" / "database.csv"
    text = path.read_text()
    for cut in (text[:-8], text[:len(text) // 2]):
        path.write_text(cut)
        with pytest.raises(BadInput, match=rf"^{path}: {len(cut.encode())} bytes, but manifest.json recorded "
                                           rf"{len(text.encode())}: changed or cut short; rebuild the manifest"):
            load_manifest(tmp_path / "out")


def test_a_data_file_changed_in_place_is_named(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "out")
    path = tmp_path / "out" / "positives.json"
    path.write_text(path.read_text().replace("2.5", "9.5", 1))  # same size, other content
    with pytest.raises(BadInput, match=rf"^{path}: content differs from the hash manifest.json recorded"):
        load_manifest(tmp_path / "out")
    path.unlink()
    with pytest.raises(BadInput, match=rf"^{path}: missing \(listed in manifest.json\)"):
        load_manifest(tmp_path / "out")


def test_quick_definition_from_options(tmp_path, dataset):
    root = dataset.parent
    definition = definition_from_options(root, ["dbwalk=" + str(root / "traj/dbwalk.csv")],
                                         ["qwalk=" + str(root / "traj/qwalk.csv")])
    assert [(r.name, r.split, r.trajectory.path, definition.views_dir(r)) for r in definition.recordings] == [
        ("dbwalk", "database", "traj/dbwalk.csv", "views"), ("qwalk", "query", "traj/qwalk.csv", "views")]
    with pytest.raises(BadInput, match="outside the dataset root"):
        definition_from_options(root, [f"dbwalk={tmp_path / 'x.csv'}"], ["qwalk=" + str(root / "traj/qwalk.csv")])
    with pytest.raises(BadInput, match="RECORDING=TRAJECTORY"):
        definition_from_options(root, ["traj/dbwalk.csv"], [])


def test_a_trajectory_given_relative_to_the_root_instead_of_the_working_directory_is_pointed_out(
        tmp_path, dataset, monkeypatch):
    root = dataset.parent
    monkeypatch.chdir(tmp_path)  # not the root: traj/dbwalk.csv is tmp_path/traj/dbwalk.csv, outside it
    with pytest.raises(BadInput, match=rf"outside the dataset root .*; command-line paths are from the working "
                                       rf"directory: did you mean {re.escape(str(root / 'traj' / 'dbwalk.csv'))}\?$"):
        definition_from_options(root, ["dbwalk=traj/dbwalk.csv"], ["qwalk=" + str(root / "traj/qwalk.csv")])


# ---------------------------------------------------------------- CLI


def test_cli_manifest_from_options(tmp_path, dataset, monkeypatch):
    monkeypatch.chdir(dataset.parent)
    result = CliRunner().invoke(main, ["manifest", "--root", ".", "--database", "dbwalk=traj/dbwalk.csv",
                                       "--query", "qwalk=traj/qwalk.csv", "--out", "m", "--radius", "3",
                                       "--database-sampling", "2f", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == {"database": 12, "query": 6} and summary["radius_m"] == 3.0  # queries: default 1m
    assert summary["dropped_frames"] == 10
    assert len(read_csv(dataset.parent / "m" / "database.csv")) == 12


def test_cli_shared_local_frame_joins_a_survey_and_slam_poses(tmp_path, dataset, monkeypatch):
    monkeypatch.chdir(dataset.parent)
    Path("traj/qwalk.tum").write_text("0.1 0.5 3 0 0 0 0 1\n0.3 2.5 3 0 0 0 0 1\n")  # the query walk as TUM poses
    options = ["manifest", "--root", ".", "--database", "dbwalk=traj/dbwalk.csv", "--query", "qwalk=traj/qwalk.tum",
               "--out", "m", "--quiet"]
    refused = CliRunner().invoke(main, options)
    assert refused.exit_code == 2 and refused.stderr.rstrip().endswith("--shared-local-frame")
    joined = CliRunner().invoke(main, [*options, "--shared-local-frame"])
    assert joined.exit_code == 0, joined.output
    assert json.loads(Path("m/manifest.json").read_text())["parameters"]["shared_local_frame"] is True


@pytest.mark.parametrize(("option", "value", "problem"), [
    ("--time-offset", "nan", "time_offset_s: Input should be a finite number"),
    ("--scale", "-1", "scale: Input should be greater than 0"),
    ("--keyframe-fps", "0", "fps: Input should be greater than 0"),
])
def test_cli_reader_options_out_of_range_name_the_option(tmp_path, dataset, monkeypatch, option, value, problem):
    monkeypatch.chdir(dataset.parent)
    result = CliRunner().invoke(main, ["manifest", "--root", ".", "--database", "dbwalk=traj/dbwalk.csv",
                                       "--query", "qwalk=traj/qwalk.csv", "--out", "m", f"{option}={value}"])
    assert result.exit_code == 2 and result.stderr == f"vidvpr: error: {option}: {problem}\n"


def test_cli_manifest_from_definition_and_errors(tmp_path, dataset):
    runner = CliRunner()
    result = runner.invoke(main, ["manifest", str(dataset), "--out", str(tmp_path / "m"), "--query-sampling", "0.1s"])
    assert result.exit_code == 0, result.output
    assert "wrote 24 database and 6 query rows" in result.stderr
    assert "dropped 10 view frames" in result.stderr
    result = runner.invoke(main, ["manifest", str(dataset), "--out", str(tmp_path / "m"), "--radius", "0"])
    assert result.exit_code == 2 and result.stderr.startswith("vidvpr: error: --radius: ") and result.stderr.count("\n") == 1
    result = runner.invoke(main, ["manifest", str(dataset), "--out", str(tmp_path / "m"), "--time-offset", "1"])
    assert result.exit_code == 2 and "--time-offset describes recordings" in result.stderr
    result = runner.invoke(main, ["manifest", "--out", str(tmp_path / "m"), "--database", "a=b"])
    assert result.exit_code == 2 and "--query" in result.stderr
    (dataset.parent / "views" / "dbwalk" / "yaw000_pitch+00.mp4").unlink()
    result = runner.invoke(main, ["manifest", str(dataset), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "view video not found" in result.stderr


def test_a_camera_file_named_with_accents_and_spaces_goes_through_slice_and_manifest(tmp_path):
    # a phone's "dbwalk é 1.mp4" slices into a recording named dbwalk_e_1, which a definition can name
    root = tmp_path / "ds"
    root.mkdir()
    for name in ("dbwalk é 1", "q walk"):
        make_equirect_video(root / f"{name}.mp4", frames=FRAMES)
    result = CliRunner().invoke(main, ["slice", str(root / "dbwalk é 1.mp4"), str(root / "q walk.mp4"), "--out",
                                       str(root / "views"), "--yaw", "0,90", "--size", "64x36", "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (root / "views").iterdir()) == ["dbwalk_e_1", "q_walk"]
    (root / "traj").mkdir()
    (root / "traj" / "dbwalk.csv").write_text(DB_TRAJ)
    (root / "traj" / "qwalk.csv").write_text(QUERY_TRAJ)
    (root / "def.toml").write_text(definition_text().replace('name = "dbwalk"', 'name = "dbwalk_e_1"')
                                   .replace('name = "qwalk"', 'name = "q_walk"'))
    summary = build_manifest(load_definition(root / "def.toml"), tmp_path / "m")
    assert summary.rows["database"] == 2 * FRAMES
    assert read_csv(tmp_path / "m" / "database.csv")[0]["id"] == "dbwalk_e_1/yaw000_pitch+00/000000"


# ---------------------------------------------------------------- reruns and one-line errors


def test_rerun_skips_with_identical_files_and_rebuilds_on_changed_inputs(tmp_path, dataset):
    out = tmp_path / "m"
    assert not build_manifest(load_definition(dataset), out).skipped
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    again = build_manifest(load_definition(dataset), out)
    assert again.skipped and again.rows == {"database": 24, "query": 14}
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # manifest.json too
    assert not build_manifest(load_definition(dataset), out, force=True).skipped
    meta = json.loads((out / "manifest.json").read_text())
    assert set(meta["outputs"]) == {"database.csv", "query.csv", "positives.json"}
    (dataset.parent / "traj" / "qwalk.csv").write_text("t,x,y\n0.1,0.5,3\n0.3,4.5,3\n")  # a changed input
    assert not build_manifest(load_definition(dataset), out).skipped
    (out / "query.csv").write_text("tampered")  # a changed output
    assert not build_manifest(load_definition(dataset), out).skipped
    assert build_manifest(with_overrides(load_definition(dataset), radius_m=3.0), out).radius_m == 3.0


def test_a_video_without_sidecar_is_left_out_with_a_warning(tmp_path, dataset, caplog):
    (dataset.parent / "views" / "qwalk" / "yaw090_pitch+00.json").write_text("{}")
    with caplog.at_level(logging.WARNING, logger="vidvpr.dataset.manifest"):
        summary = build_manifest(load_definition(dataset), tmp_path / "m")
    assert summary.rows["query"] == 7 and "left out 1 video(s) without a vidvpr slice sidecar: yaw090_pitch+00" in caplog.text


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidvpr", *args], capture_output=True, text=True, timeout=120)


def test_cli_garbage_gives_one_line_errors(tmp_path, dataset):
    root = dataset.parent
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    cases = [
        (["manifest", str(root), "--out", str(tmp_path / "m")], f"{root}: is a folder, not a definition file"),
        (["manifest", str(empty), "--out", str(tmp_path / "m")], f"{empty}: recordings: missing"),
        (["manifest", str(dataset), "--out", str(dataset)], f"{dataset}: is a file, not a manifest folder"),
        (["manifest", "--root", str(tmp_path / "nope"), "--database", "a=x.csv", "--query", "b=y.csv",
          "--out", str(tmp_path / "m")], "dataset root (--root) is not a folder"),
        (["export", str(dataset), "--out", str(tmp_path / "e")], f"{dataset}: is a file, not a manifest folder"),
        (["demo", "make", str(tmp_path / "d"), "--definition", str(root)], f"{root}: is a folder, not a definition"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode in (2, 4), (args, result.stderr)
        assert result.stderr.startswith("vidvpr: error: ") and message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


# ---------------------------------------------------------------- defects found by review, each pinned


def test_two_runs_with_different_options_on_one_out_leave_one_whole_manifest(tmp_path, dataset):
    """Started together, `--radius 60` and `--radius 5` leave one run's four files, never a mix."""
    import threading

    out = tmp_path / "m"
    definition = load_definition(dataset)
    errors = []

    def run(radius):
        try:
            for _ in range(3):
                build_manifest(with_overrides(definition, radius_m=radius), out, force=True)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(radius,)) for radius in (60.0, 0.2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    meta = json.loads((out / "manifest.json").read_text())
    positives = json.loads((out / "positives.json").read_text())
    assert positives["radius_m"] == meta["parameters"]["radius_m"]
    counts = {r["id"]: int(r["num_positives"]) for r in read_csv(out / "query.csv")}
    assert counts == {qid: len(ids) for qid, ids in positives["positives"].items()}
    assert sorted(p.name for p in out.iterdir()) == ["database.csv", "manifest.json", "positives.json", "query.csv"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_manifest_records_the_hashes_of_what_it_wrote(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "m")
    (tmp_path / "m" / "query.csv").write_text("tampered\n")
    assert not build_manifest(load_definition(dataset), tmp_path / "m").skipped  # not vouched for, so rebuilt
    meta = json.loads((tmp_path / "m" / "manifest.json").read_text())
    from vidvpr.core.provenance import sha256_file

    assert meta["outputs"]["query.csv"]["hash"] == sha256_file(tmp_path / "m" / "query.csv")


def test_a_damaged_manifest_json_in_out_is_rebuilt(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text("[1, 2, 3]")
    assert not build_manifest(load_definition(dataset), tmp_path / "m").skipped
    assert load_manifest(tmp_path / "m").queries


def test_a_manifest_json_holding_a_list_is_one_line_bad_input(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text('["not", "an", "object"]')
    with pytest.raises(BadInput, match=r"manifest.json: expected a JSON object \(vidvpr manifest\), found list"):
        load_manifest(tmp_path / "m")
    result = run_cli("export", str(tmp_path / "m"), "--out", str(tmp_path / "e"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "found list" in result.stderr


def test_a_stray_json_file_in_a_views_folder_is_left_out(tmp_path, dataset, caplog):
    (dataset.parent / "views" / "qwalk" / "notes.json").write_text('["someone", "else\'s"]')
    with caplog.at_level(logging.WARNING):
        summary = build_manifest(load_definition(dataset), tmp_path / "m")
    assert summary.rows["query"] == 14 and "notes.json: not a vidvpr slice sidecar; left out" in caplog.text


def test_a_sidecar_of_an_older_slicer_asks_for_a_reslice(tmp_path, dataset):
    sidecar = dataset.parent / "views" / "qwalk" / "yaw090_pitch+00.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "schema": "vidvpr.slice/1"}))
    with pytest.raises(BadInput, match="made by another vidvpr version.*re-run vidvpr slice"):
        build_manifest(load_definition(dataset), tmp_path / "m")


def test_a_stray_quote_in_query_csv_is_one_line_bad_input(tmp_path, dataset):
    build_manifest(load_definition(dataset), tmp_path / "m")
    path = tmp_path / "m" / "query.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",", ',"', 1)
    path.write_text("\n".join(lines) + "\n")
    rerecord_outputs(tmp_path / "m")  # past the size and hash check, to the CSV reader
    with pytest.raises(BadInput, match=r"query.csv: line \d+") as info:
        load_manifest(tmp_path / "m")
    assert "\n" not in str(info.value)


def test_a_view_sidecar_symlinked_outside_the_root_is_refused(tmp_path, dataset):
    sidecar = dataset.parent / "views" / "qwalk" / "yaw090_pitch+00.json"
    outside = tmp_path / "outside.json"
    outside.write_text(sidecar.read_text())
    sidecar.unlink()
    sidecar.symlink_to(outside)
    with pytest.raises(BadInput, match="view sidecar .* leads outside the dataset root"):
        build_manifest(load_definition(dataset), tmp_path / "m")


def test_local_trajectories_of_different_formats_need_a_declared_shared_frame(tmp_path, sliced_views):
    tum = "0 0 0 0 0 0 0 1\n0.4 2.5 3 0 0 0 0 1\n"
    definition = make_dataset(tmp_path / "ds", sliced_views, query_traj=tum)
    text = definition.read_text().replace('"traj/qwalk.csv"', '{ path = "traj/qwalk.csv", format = "tum" }')
    definition.write_text(text)
    with pytest.raises(BadInput, match="local metric frame \\(tum\\).*shared_local_frame = true") as info:
        build_manifest(load_definition(definition), tmp_path / "m")
    assert "UTM" not in str(info.value)
    definition.write_text(text.replace('name = "tiny"', 'name = "tiny"\nshared_local_frame = true'))
    assert build_manifest(load_definition(definition), tmp_path / "m").rows["query"] > 0


def test_a_failed_run_leaves_no_empty_out_folder(tmp_path, dataset):
    (dataset.parent / "views" / "qwalk" / "yaw090_pitch+00.mp4").unlink()
    result = run_cli("manifest", str(dataset), "--out", str(tmp_path / "new" / "m"))
    assert result.returncode == 2 and not (tmp_path / "new").exists()
    result = run_cli("export", str(tmp_path / "nothing"), "--out", str(tmp_path / "e"))
    assert result.returncode == 2 and not (tmp_path / "e").exists()


def test_a_utm_zone_for_local_trajectories_is_warned_of(tmp_path, sliced_views, caplog):
    """utm_zone (--utm-zone) only places lat/lon trajectories; with local ones it silently did nothing."""
    definition = make_dataset(tmp_path / "ds", sliced_views, extra="utm_zone = 32")
    with caplog.at_level(logging.WARNING, logger="vidvpr"):
        build_manifest(load_definition(definition), tmp_path / "out")
    assert any(record.getMessage() == f"{definition}: utm_zone 32 (--utm-zone) has no effect: every trajectory is in "
               "local metres, none in latitude and longitude" for record in caplog.records), caplog.text
