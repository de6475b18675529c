"""Specification of the demo world (vidvpr.demo.world), its definition and `vidvpr demo make`."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vidvpr.cli import main
from vidvpr.demo.definition import ROLES, DemoDefinition, TraversalSpec, load_definition
from vidvpr.demo.make import DemoConfig, make_demo, plan_traversal, write_trajectory
from vidvpr.demo.artwork import poster_image, poster_series
from vidvpr.demo.render import cast_columns, render_equirect_frame
from vidvpr.demo.world import INNER, OUTER, CameraPose, Lighting, build_world, path_length_m, walker_poses
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file
from vidvpr.geo.readers import read_trajectory
from vidvpr.geo.trajectory import coverage, position_at
from vidvpr.media.decode import decode_frames
from vidvpr.media.probe import probe_video

CHECKED_IN = Path(__file__).resolve().parents[1] / "manifests" / "demo.toml"
SMALL = (256, 128)
DEFINITION = DemoDefinition()


def fresh_world(seed: int = DEFINITION.seed):
    """A world built now, not taken from build_world's cache."""
    return build_world.__wrapped__(DEFINITION.route, DEFINITION.places, seed)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The built-in demo rendered once at the small size."""
    out = tmp_path_factory.mktemp("demo")
    return out, make_demo(out, DemoConfig(size="small"))


# ---------------------------------------------------------------- the definition


def test_checked_in_definition_is_the_built_in_one_spelled_out():
    assert load_definition(CHECKED_IN) == DemoDefinition() == load_definition(None)
    table = tomllib.loads(CHECKED_IN.read_text())

    def keys(value):  # every key of every table, so no built-in value hides behind a default
        if isinstance(value, dict):
            return {k: keys(v) for k, v in value.items()}
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return [keys(v) for v in value]
        return None

    assert keys(table) == keys(DemoDefinition().model_dump(mode="json"))


def test_definition_makes_a_non_trivial_task():
    route, places = DEFINITION.route, DEFINITION.places
    assert route.length_m >= 300 and DEFINITION.ground_truth.radius_m <= 10
    assert places.count >= 60 and places.distinct_designs >= 60
    world = build_world(route, places, DEFINITION.seed)
    designs = [place.design for place in world.places]
    assert len(world.places) == places.count and len(set(designs)) == places.distinct_designs
    shared = [d for d in set(designs) if designs.count(d) > 1]
    assert len(shared) == places.shared_designs  # perceptual aliasing: the same poster at several places
    assert {place.wall for place in world.places} == {OUTER, INNER}
    assert len({place.room for place in world.places}) == places.count


def test_positives_are_under_5_percent_of_the_database_for_every_query():
    plans = {spec.role: plan_traversal(DEFINITION, spec) for spec in DEFINITION.traversals}
    db = np.stack([plans["database"].east_m, plans["database"].north_m], 1)
    query = np.stack([plans["query"].east_m, plans["query"].north_m], 1)
    within = np.linalg.norm(query[:, None] - db[None], axis=2) <= DEFINITION.ground_truth.radius_m
    counts = within.sum(1)
    assert counts.min() >= 1 and counts.max() < 0.05 * len(db)


def test_every_two_metres_of_wall_show_something_at_eye_level():
    """A side view sees 2.5-3.5 m of the wall beside it, so away from the corners nearly every 2 m
    stretch of each wall must hold an item (poster, plate, door, board, print, sign...) between 1 m
    and 2 m up: bare walls make places that no descriptor can tell apart."""
    route = DEFINITION.route
    world = build_world(route, DEFINITION.places, DEFINITION.seed)
    corners = np.array((0.0, *route.corners_s_m))
    starts = np.arange(0.0, route.length_m, 0.25)
    starts = starts[np.abs(corners[None] - (starts[:, None] + 1.0)).min(1) > route.half_width_m + 2.0]
    for wall in (OUTER, INNER):
        seen = [item for item in world.items
                if item.wall == wall and item.bottom_m < 2.0 and item.bottom_m + item.height_m > 1.0]
        lo = np.array([item.s_m - item.width_m / 2 for item in seen])
        hi = np.array([item.s_m + item.width_m / 2 for item in seen])
        covered = ((lo[None] < starts[:, None] + 2.0) & (hi[None] > starts[:, None])).any(1)
        assert covered.mean() > 0.97, (wall, covered.mean())


def test_walls_mix_one_off_items_with_ones_that_repeat():
    world = build_world(DEFINITION.route, DEFINITION.places, DEFINITION.seed)
    looks = Counter((item.kind, item.look) for item in world.items)
    assert {item.kind for item in world.items} == {"poster", "plate", "door", "notice board", "picture", "sign",
                                                   "whiteboard", "extinguisher", "clock"}
    for kind in ("notice board", "sign", "whiteboard", "plate"):  # each its own (every plate another number)
        assert max(n for (k, _), n in looks.items() if k == kind) == 1
    for kind in ("picture", "door", "extinguisher", "clock"):  # the same thing at several places
        assert max(n for (k, _), n in looks.items() if k == kind) >= 3


def test_posters_of_a_series_look_alike_and_differ_in_detail():
    seed = DEFINITION.seed
    by_series: dict[int, list[int]] = {}
    for design in range(60):
        by_series.setdefault(poster_series(seed, design), []).append(design)
    pairs = [designs[:2] for designs in by_series.values() if len(designs) >= 2]
    assert len(pairs) >= 5
    for first, second in pairs:
        a, b = poster_image(seed, first), poster_image(seed, second)
        assert a.shape == b.shape and np.array_equal(a[1, -2], b[1, -2])  # size and headline colour
        assert (np.abs(a - b).max(2) > 30).mean() > 0.05  # text and picture details differ


def test_query_is_harder_but_sees_the_walls_at_a_similar_scale():
    """Dimmer, tinted, noisier and off the database's line; but side views look at a wall 1.3-1.7 m
    away, so walking far apart would show the same wall at very different scales (0.9 m apart
    made it ~2× and side views were almost never recognised)."""
    database, query = (next(t for t in DEFINITION.traversals if t.role == role) for role in ROLES)
    assert query.lighting_gain < database.lighting_gain and query.noise_std > database.noise_std
    assert query.tint_rgb != database.tint_rgb and abs(query.lateral_offset_m - database.lateral_offset_m) >= 0.3
    half = DEFINITION.route.half_width_m
    for side in (-1.0, 1.0):  # the wall on the left, on the right
        near, far = sorted((half - side * database.lateral_offset_m, half - side * query.lateral_offset_m))
        assert far / near < 1.3


def toml_text(table: dict) -> str:
    """TOML for the small tables of these tests: scalars, then tables, then arrays of tables."""
    scalars = [f"{k} = {json.dumps(v)}" for k, v in table.items() if not isinstance(v, (dict, list))]
    tables = [f"[{k}]\n" + "".join(f"{kk} = {json.dumps(vv)}\n" for kk, vv in v.items())
              for k, v in table.items() if isinstance(v, dict)]
    arrays = [f"[[{k}]]\n" + "".join(f"{kk} = {json.dumps(vv)}\n" for kk, vv in entry.items())
              for k, v in table.items() if isinstance(v, list) for entry in v]
    return "\n".join(scalars + tables + arrays) + "\n"


@pytest.mark.parametrize("table, message", [
    ({"route": {"lenght_m": 400.0}}, "route.lenght_m: unknown key"),
    ({"seed": "7"}, "seed: Input should be a valid integer"),
    ({"route": {"length_m": 60.0}}, "too short"),
    ({"places": {"count": 400}}, "posters need at least"),
    ({"sizes": {"wide": [300, 100]}}, "2:1"),
    ({"ground_truth": {"radius_m": 0.0}}, "ground_truth.radius_m: Input should be greater than 0"),
    ({"traversals": [{"name": "db", "role": "database"}]}, "one with role 'query'"),
    ({"traversals": [{"name": "db", "role": "database"}, {"name": "q", "role": "query", "lateral_offset_m": 1.4}]},
     "lateral_offset_m must be within"),
    ({"traversals": [{"name": "db", "role": "database"}, {"name": "q", "role": "query", "trajectory_format": "tum"}]},
     "mix trajectory formats"),
    ({"traversals": [{"name": "db", "role": "database"}, {"name": "q/1", "role": "query"}]},
     "traversals.1.name: String should match pattern"),
    ({"traversals": [{"role": "database"}]}, "traversals.0.name: missing"),
    ({"traversals": [{"name": "db", "role": "database", "speed_mps": 1000.0}, {"name": "q", "role": "query"}]},
     "fewer than 2 frames"),
    ({"name": "my demo"}, "name: String should match pattern"),
])
def test_bad_definitions_are_one_line_errors(tmp_path, table, message):
    path = tmp_path / "demo.toml"
    path.write_text(toml_text(table))
    with pytest.raises(BadInput, match=message):
        load_definition(path)


def test_partial_definition_takes_built_in_values(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(toml_text({"seed": 5, "route": {"length_m": 400.0}}))
    definition = load_definition(path)
    assert definition.seed == 5 and definition.route.length_m == 400.0
    assert definition.route.corridor_width_m == DEFINITION.route.corridor_width_m
    assert definition.traversals == DEFINITION.traversals


def test_unreadable_definition_and_unknown_size(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        load_definition(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("seed = = 3\n")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_definition(tmp_path / "bad.toml")
    with pytest.raises(BadInput, match="Unknown size 'hd'. Use default or small."):
        make_demo(tmp_path / "out", DemoConfig(size="hd"))


# ---------------------------------------------------------------- the walker's path


@pytest.mark.parametrize("offset_m", [-0.4, 0.0, 0.5])
def test_walker_path_is_continuous_and_heads_where_it_goes(offset_m):
    route = DEFINITION.route
    length = path_length_m(route, offset_m)
    step = 0.05
    east, north, heading = walker_poses(route, offset_m, np.arange(0.0, length + step / 2, step))
    moves = np.hypot(np.diff(east), np.diff(north))
    assert np.allclose(moves[:-1], step, atol=1e-4)  # the last step closes the loop (shorter)
    assert math.hypot(east[-1] - east[0], north[-1] - north[0]) < step + 1e-9
    travel = np.degrees(np.arctan2(np.diff(east), np.diff(north))) % 360
    mid_heading = (heading[:-1] + ((heading[1:] - heading[:-1] + 180) % 360 - 180) / 2) % 360
    assert np.abs((travel - mid_heading + 180) % 360 - 180).max() < 0.5  # steps across arc ends: ~0.2°
    a, b = route.sides_m  # on the west straight, x is the offset (positive: right of travel = east)
    on_west = (north > route.corner_radius_m) & (north < b - route.corner_radius_m) & (east < a / 2)
    assert np.allclose(east[on_west], offset_m) and np.all(heading[on_west] == 0.0)


def test_rays_hit_the_walls_at_the_expected_distance_and_route_position():
    route = DEFINITION.route
    hits = cast_columns(route, 0.0, 30.0, np.array([0.0, 90.0, 180.0, 270.0]))
    a, b = route.sides_m
    w = route.half_width_m
    assert hits.wall.tolist() == [OUTER, INNER, OUTER, OUTER]
    assert np.allclose(hits.dist_m, [b + w - 30.0, w, 30.0 + w, w])
    assert np.allclose(hits.s_m[[1, 3]], 30.0)


# ---------------------------------------------------------------- rendering


def poses_along_route() -> list[CameraPose]:
    east, north, heading = walker_poses(DEFINITION.route, -0.4, np.array([5.0, 57.5, 130.0, 300.0]))
    return [CameraPose(*map(float, pose)) for pose in zip(east, north, heading)]


def test_same_seed_renders_identical_frames_and_another_seed_different_ones():
    first, again, other = fresh_world(), fresh_world(), fresh_world(DEFINITION.seed + 1)
    lighting = Lighting(0.8, (1.05, 1.0, 0.9), 1.5, (1, 2, 3))
    for pose in poses_along_route():
        frame = render_equirect_frame(first, pose, SMALL, lighting)
        assert frame.shape == (SMALL[1], SMALL[0], 3) and frame.dtype == np.uint8
        assert np.array_equal(frame, render_equirect_frame(again, pose, SMALL, lighting))
        changed = np.abs(frame.astype(int) - render_equirect_frame(other, pose, SMALL, lighting)).max(2) > 20
        assert changed.mean() > 0.02


def test_lighting_and_noise_change_the_picture_deterministically():
    world, pose = build_world(DEFINITION.route, DEFINITION.places, DEFINITION.seed), poses_along_route()[0]
    plain = render_equirect_frame(world, pose, SMALL).astype(float)
    dim = render_equirect_frame(world, pose, SMALL, Lighting(gain=0.5)).astype(float)
    assert abs(dim.mean() / plain.mean() - 0.5) < 0.02
    noisy = [render_equirect_frame(world, pose, SMALL, Lighting(noise_std=2.0, noise_seed=(0, 1, i))) for i in (7, 7, 8)]
    assert np.array_equal(noisy[0], noisy[1]) and not np.array_equal(noisy[0], noisy[2])
    assert 1.0 < (noisy[0] - plain).std() < 3.0


def test_yaw_0_looks_along_the_heading_and_positive_yaw_turns_right():
    """A marker painted due east of the camera (on the inner wall of the west corridor) appears at
    yaw +90 when the camera heads north, at yaw 0 heading east, at yaw -90 heading south."""
    world = build_world(DEFINITION.route, DEFINITION.places, DEFINITION.seed)
    s0 = 30.0
    (top, left), (bottom, right) = world.texel_index(s0 - 0.3, 2.0), world.texel_index(s0 + 0.3, 1.2)
    walls = world.walls.copy()
    walls[INNER, top:bottom, left:right] = (255, 0, 255)
    marked = dataclasses.replace(world, walls=walls)
    width, height = SMALL
    for heading, yaw in ((0.0, 90.0), (90.0, 0.0), (180.0, -90.0)):
        pose = CameraPose(0.0, s0, heading)
        changed = np.abs(render_equirect_frame(marked, pose, SMALL).astype(int)
                         - render_equirect_frame(world, pose, SMALL)).max(2) > 40
        rows, cols = np.nonzero(changed)
        assert cols.size > 50
        expected_col = (yaw / 360.0 + 0.5) * width - 0.5
        assert abs(cols.mean() - expected_col) < 2.0, (heading, cols.mean(), expected_col)
        assert rows.mean() < height / 2  # the marker is above the floor, mostly above eye level


# ---------------------------------------------------------------- vidvpr demo make


def test_small_render_has_the_planned_frames_size_and_readable_trajectories(small_demo):
    out, result = small_demo
    assert [t.name for t in result.traversals] == [t.name for t in DEFINITION.traversals]
    for spec, made in zip(DEFINITION.traversals, result.traversals):
        plan = plan_traversal(DEFINITION, spec)
        video = out / spec.name / f"{spec.name}.mp4"
        info = probe_video(video)
        assert (info.width, info.height) == SMALL and info.width == 2 * info.height
        times = np.array([frame.time_s for frame in decode_frames(video)])
        assert times.size == plan.frames == made.frames and not made.skipped
        assert np.allclose(times, plan.t_s)
        traj = read_trajectory(out / spec.name / "trajectory.csv")
        assert coverage(traj, times, strict=True).all()
        pose = position_at(traj, times)
        assert np.allclose(pose.easting_m, plan.east_m, atol=1e-4)
        assert np.allclose(pose.northing_m, plan.north_m, atol=1e-4)
        assert np.allclose(pose.heading_deg, plan.heading_deg % 360, atol=1e-3)


def test_positives_from_the_written_trajectories_and_demo_json(small_demo):
    out, result = small_demo
    sidecar = json.loads((out / "demo.json").read_text())
    positions = {}
    for spec in DEFINITION.traversals:
        traj = read_trajectory(out / spec.name / "trajectory.csv")
        positions[spec.role] = np.stack([traj.easting_m, traj.northing_m], 1)
    dist = np.linalg.norm(positions["query"][:, None] - positions["database"][None], axis=2)
    counts = (dist <= DEFINITION.ground_truth.radius_m).sum(1)
    assert counts.min() >= 1 and counts.max() / len(positions["database"]) < 0.05
    stats = sidecar["ground_truth"]
    assert stats["positives_per_query"]["max"] == counts.max() == result.ground_truth["positives_per_query"]["max"]
    assert sidecar["complete"] and sidecar["definition"]["seed"] == DEFINITION.seed
    assert sidecar["size"] == {"name": "small", "width": SMALL[0], "height": SMALL[1]}
    for record in sidecar["traversals"].values():
        for key in ("video", "trajectory"):
            assert sha256_file(out / record[key]["path"]) == record[key]["hash"]


def test_rerun_skips_finished_files(small_demo):
    out, _ = small_demo
    files = sorted(p for p in out.rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    again = make_demo(out, DemoConfig(size="small"))
    assert all(t.skipped for t in again.traversals)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files  # no partial files left over


def test_a_rerun_over_rendered_traversals_reports_no_progress(small_demo):
    # it counted their frames as rendered, and `vidvpr demo make D --json` drew a bar over finished work
    out, _ = small_demo
    totals, frames = [], []
    make_demo(out, DemoConfig(size="small"), on_frame=frames.append, on_start=totals.append)
    assert (totals, frames) == ([0], [])


def test_demo_feeds_the_manifest_stage(small_demo):
    from vidvpr.dataset.definition import load_definition as load_manifest_definition

    out, _ = small_demo
    dataset = load_manifest_definition(out / "dataset.toml")
    assert [(r.name, r.split) for r in dataset.recordings] == [(t.name, t.role) for t in DEFINITION.traversals]


@pytest.mark.slow
def test_cli_renders_the_same_files_again(small_demo, tmp_path):
    out, _ = small_demo
    runner = CliRunner()
    made = runner.invoke(main, ["demo", "make", str(tmp_path), "--size", "small", "--quiet"])
    assert made.exit_code == 0, made.output
    for spec in DEFINITION.traversals:
        for name in (f"{spec.name}.mp4", "trajectory.csv"):
            assert sha256_file(tmp_path / spec.name / name) == sha256_file(out / spec.name / name)
    rerun = runner.invoke(main, ["demo", "make", str(tmp_path), "--size", "small", "--json"])
    assert rerun.exit_code == 0, rerun.output
    assert all(t["skipped"] for t in json.loads(rerun.stdout)["traversals"])
    bad = runner.invoke(main, ["demo", "make", str(tmp_path), "--size", "huge"])
    assert bad.exit_code == 2 and "Unknown size 'huge'" in bad.output


def test_tum_trajectories_round_trip_with_heading(tmp_path):
    spec = TraversalSpec(name="walk", role="query", lateral_offset_m=0.3, speed_mps=1.5, fps=1.0, trajectory_format="tum")
    plan = plan_traversal(DEFINITION, spec)
    path = tmp_path / "trajectory.txt"
    write_trajectory(path, plan, DEFINITION.route.camera_height_m)
    traj = read_trajectory(path)
    assert traj.format == "tum"
    assert np.allclose(traj.easting_m, plan.east_m, atol=1e-4) and np.allclose(traj.northing_m, plan.north_m, atol=1e-4)
    assert np.allclose(traj.up_m, DEFINITION.route.camera_height_m)
    assert np.abs((traj.heading_deg - plan.heading_deg + 180) % 360 - 180).max() < 1e-4
