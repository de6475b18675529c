"""Specification of night in the demo world (vidvpr.demo.lighting) and of its night walk: lamps from
the seed, light falling off with distance, darker and noisier frames, deterministic renders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file
from vidvpr.demo.definition import DemoDefinition, definition_from_data
from vidvpr.demo.lighting import (
    CAMERA_POWER,
    LAMP_POWER,
    LAMP_SHARE,
    NIGHT_AMBIENT,
    irradiance,
    night_lamps,
)
from vidvpr.demo.make import DemoConfig, make_demo, plan_traversal
from vidvpr.demo.render import render_equirect_frame
from vidvpr.demo.world import CameraPose, Lighting, build_world
from vidvpr.distill.degrade import srgb_to_linear

DEFINITION = DemoDefinition()
SIZE = (512, 256)
TINY = {"route": {"length_m": 40.0, "aspect": 1.0}, "places": {"count": 4, "shared_designs": 0, "places_sharing": 0},
        "traversals": [{"name": "db", "role": "database", "fps": 0.2}, {"name": "q", "role": "query", "fps": 0.2}],
        "night": {"name": "dark", "role": "query", "fps": 0.2, "lighting": "night", "noise_std": 4.0},
        "heldout": {"seed": 5, "route": {"length_m": 44.0, "aspect": 1.0},
                    "places": {"count": 4, "shared_designs": 0, "places_sharing": 0}},
        "sizes": {"tiny": [64, 32]}}


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Linear-light Rec. 709 luminance of an sRGB image."""
    return srgb_to_linear(rgb) @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def night_and_day(index: int, definition: DemoDefinition = DEFINITION) -> tuple[np.ndarray, np.ndarray]:
    """Frame `index` of the night walk rendered by night and, from the same pose, by day."""
    world = build_world(definition.route, definition.places, definition.seed)
    plan = plan_traversal(definition, definition.night)
    pose = CameraPose(float(plan.east_m[index]), float(plan.north_m[index]), float(plan.heading_deg[index]))
    spec = definition.night
    night = render_equirect_frame(world, pose, SIZE, Lighting(spec.lighting_gain, spec.tint_rgb, spec.noise_std,
                                                              (definition.seed, 2, index), "night"))
    return night, render_equirect_frame(world, pose, SIZE, Lighting())


def test_lamps_are_a_seeded_share_of_the_ceiling_lights_on_the_corridors_centreline() -> None:
    route = DEFINITION.route
    lamps = night_lamps(route, DEFINITION.seed)
    a, b = route.sides_m
    on_centreline = np.isclose(lamps[:, 0], 0) | np.isclose(lamps[:, 0], a) | np.isclose(lamps[:, 1], 0) | \
        np.isclose(lamps[:, 1], b)
    assert on_centreline.all() and np.allclose(lamps[:, 2], route.wall_height_m - 0.02)
    nodes = route.length_m / 4.0  # a ceiling light every 4 m or so
    assert 0.5 * LAMP_SHARE * nodes < len(lamps) < 1.5 * LAMP_SHARE * nodes
    assert np.array_equal(lamps, night_lamps.__wrapped__(route, DEFINITION.seed))
    assert not np.array_equal(lamps, night_lamps.__wrapped__(route, DEFINITION.seed + 1))


def test_night_light_falls_off_with_distance_from_the_camera_and_from_each_lamp() -> None:
    camera = (0.0, 0.0, 1.6)
    far = np.float32(1e5)
    by_distance = [float(irradiance(np.zeros((0, 3)), camera, np.float32(d), np.float32(0), np.float32(1.6)))
                   for d in (0.0, 1.0, 3.0, 10.0)]
    assert by_distance[0] == pytest.approx(NIGHT_AMBIENT + CAMERA_POWER)
    assert all(a > b for a, b in zip(by_distance, by_distance[1:]))
    lamp = np.array([[50.0, 0.0, 3.0]], np.float32)
    under = float(irradiance(lamp, camera, np.float32(50), np.float32(0), np.float32(3.0)))
    beside = float(irradiance(lamp, camera, np.float32(55), np.float32(0), np.float32(3.0)))
    assert under == pytest.approx(NIGHT_AMBIENT + LAMP_POWER, rel=1e-3) and beside < under / 5
    assert float(irradiance(lamp, camera, far, far, np.float32(0))) == pytest.approx(NIGHT_AMBIENT, rel=1e-3)


def test_night_frames_are_dark_away_from_the_lamps_and_brightest_under_one() -> None:
    plan = plan_traversal(DEFINITION, DEFINITION.night)
    lamps = night_lamps(DEFINITION.route, DEFINITION.seed)
    gap = np.linalg.norm(np.stack([plan.east_m, plan.north_m], 1)[:, None] - lamps[None, :, :2], axis=2).min(1)
    ratios = {}
    for index in (int(np.argmin(gap)), int(np.argmax(gap))):
        night, day = night_and_day(index)
        ratios[index] = float(luminance(night).mean() / luminance(day).mean())  # the share of the day's light
    under, away = ratios[int(np.argmin(gap))], ratios[int(np.argmax(gap))]
    assert away < 0.15 and under > 2 * away  # a lamp overhead lights the frame


def test_night_is_noisier_than_day_by_the_walks_sensor_noise() -> None:
    night, _ = night_and_day(7)
    again, _ = night_and_day(7)
    assert np.array_equal(night, again)  # deterministic: noise from (seed, walk, frame)
    world = build_world(DEFINITION.route, DEFINITION.places, DEFINITION.seed)
    plan = plan_traversal(DEFINITION, DEFINITION.night)
    pose = CameraPose(float(plan.east_m[7]), float(plan.north_m[7]), float(plan.heading_deg[7]))
    spec = DEFINITION.night
    clean = render_equirect_frame(world, pose, SIZE, Lighting(spec.lighting_gain, spec.tint_rgb, 0.0, (), "night"))
    residual = night.astype(np.float64) - clean
    unclipped = (clean > 8).all(2)
    assert residual[unclipped].std() == pytest.approx(spec.noise_std, rel=0.1)
    assert spec.noise_std > max(t.noise_std for t in DEFINITION.traversals)
    assert spec.lighting_gain < min(t.lighting_gain for t in DEFINITION.traversals if t.role == "database")


def test_lighting_is_a_key_of_the_traversals_and_the_night_walk_must_be_a_night_query() -> None:
    tiny = definition_from_data(TINY, "tiny")
    assert [t.lighting for t in tiny.traversals] == ["day", "day"] and tiny.night.lighting == "night"
    assert [t.name for t in tiny.with_night().traversals] == ["db", "q", "dark"]
    with_own = definition_from_data({**TINY, "traversals": [*TINY["traversals"], {**TINY["night"], "name": "late"}]},
                                    "tiny")
    assert with_own.with_night() == with_own  # already has a night walk
    for change, match in (({"traversals": [{"name": "db", "role": "database", "lighting": "dusk"}, TINY["traversals"][1]]},
                           "traversals.0.lighting: Input should be 'day' or 'night'"),
                          ({"night": {**TINY["night"], "lighting": "day"}}, "night.lighting must be 'night'"),
                          ({"night": {**TINY["night"], "role": "database"}}, "night.role must be 'query'")):
        with pytest.raises(BadInput, match=match) as caught:
            definition_from_data({**TINY, **change}, "tiny.toml")
        assert "\n" not in str(caught.value) and str(caught.value).startswith("tiny.toml: ")


def test_demo_make_night_films_the_night_walk_too_and_renders_it_identically_again(tmp_path: Path) -> None:
    tiny = definition_from_data(TINY, "tiny")
    made = make_demo(tmp_path / "a", DemoConfig(definition=tiny.with_night(), size="tiny"))
    assert [t.name for t in made.traversals] == ["db", "q", "dark"]
    again = make_demo(tmp_path / "b", DemoConfig(definition=tiny.with_night(), size="tiny"))
    for first, second in zip(made.traversals, again.traversals):
        assert sha256_file(Path(first.video)) == sha256_file(Path(second.video))
    definition_file = tmp_path / "tiny.toml"
    definition_file.write_text(TINY_TOML)
    runner = CliRunner()
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    result = runner.invoke(main, ["demo", "make", str(tmp_path / "c"), "--definition", str(definition_file),
                                  "--size", "tiny", "--night"])
    assert result.exit_code == 0, result.output
    assert "already done, skipped dark (query)" in result.output  # the same night walk, found finished


def test_demo_make_night_gives_the_night_walk_its_own_manifest_definition(tmp_path: Path) -> None:
    from vidvpr.dataset.definition import load_definition as load_dataset_definition

    make_demo(tmp_path, DemoConfig(definition=definition_from_data(TINY, "tiny").with_night(), size="tiny"))
    day = load_dataset_definition(tmp_path / "dataset.toml")
    night = load_dataset_definition(tmp_path / "dataset-dark.toml")
    assert [(r.name, r.split) for r in day.recordings] == [("db", "database"), ("q", "query")]  # no pooled recall
    assert [(r.name, r.split) for r in night.recordings] == [("db", "database"), ("dark", "query")]


TINY_TOML = """
[route]
length_m = 40.0
aspect = 1.0

[places]
count = 4
shared_designs = 0
places_sharing = 0

[[traversals]]
name = "db"
role = "database"
fps = 0.2

[[traversals]]
name = "q"
role = "query"
fps = 0.2

[night]
name = "dark"
role = "query"
fps = 0.2
lighting = "night"
noise_std = 4.0

[heldout]
seed = 5

[heldout.route]
length_m = 44.0
aspect = 1.0

[heldout.places]
count = 4
shared_designs = 0
places_sharing = 0

[sizes]
tiny = [64, 32]
"""
