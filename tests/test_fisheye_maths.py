"""The dual-fisheye lens model (vidvpr.geo.fisheye): where rays land, which way each lens faces,
how the seam is blended, and a pure round trip scene → fisheye circles → perspective view."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidvpr.geo import fisheye, projection
from vidvpr.media.metrics import image_psnr_db


def lens(stream: int = 0, facing: float = 0.0, fov: float = 200.0, pitch: float = 0.0, yaw: float = 0.0,
         roll: float = 0.0, centre: tuple[float, float] = (64.0, 64.0), radius: float = 60.0,
         bounds: tuple[float, float, float, float] = (0.0, 0.0, 128.0, 128.0)) -> fisheye.FisheyeLens:
    return fisheye.FisheyeLens(stream, centre[0], centre[1], radius, fov, fisheye.lens_rotation(facing, pitch, yaw, roll),
                               bounds)


def ray(lon_deg: float, lat_deg: float) -> np.ndarray:
    lon, lat = math.radians(lon_deg), math.radians(lat_deg)
    return np.array([math.cos(lat) * math.sin(lon), math.sin(lat), math.cos(lat) * math.cos(lon)])


def side_by_side_rig(size: int = 128, fov: float = 200.0, **angles: float) -> tuple[fisheye.FisheyeLens, fisheye.FisheyeLens]:
    half = size / 2
    return (lens(0, 0.0, fov, centre=(half, half), radius=half - 2, bounds=(0.0, 0.0, size, size), **angles),
            lens(0, 180.0, fov, centre=(size + half, half), radius=half - 2, bounds=(size, 0.0, 2.0 * size, size)))


def test_the_lens_axis_lands_on_the_circle_centre_and_the_rim_on_its_radius() -> None:
    forward = lens()
    x, y, theta = fisheye.project(forward, ray(0, 0))
    assert (x, y, theta) == pytest.approx((64.0, 64.0, 0.0))
    for azimuth in range(0, 360, 45):  # every direction 100° off the axis lands on the rim
        direction = fisheye.rotation_z(azimuth) @ fisheye.rotation_x(-100.0) @ np.array([0.0, 0.0, 1.0])
        x, y, _ = fisheye.project(forward, direction)
        assert math.hypot(x - 64.0, y - 64.0) == pytest.approx(60.0)


def test_equidistant_radius_grows_linearly_with_the_angle() -> None:
    radii = [math.hypot(*(np.array(fisheye.project(lens(), ray(lon, 0))[:2]) - 64.0)) for lon in (10, 20, 40, 80)]
    assert radii == pytest.approx([60.0 * lon / 100.0 for lon in (10, 20, 40, 80)])


def test_unproject_inverts_project_inside_the_circle() -> None:
    tilted = lens(pitch=3.0, yaw=-2.0, roll=7.0)
    rng = np.random.default_rng(1)
    xs, ys = rng.uniform(10, 118, 200), rng.uniform(10, 118, 200)
    keep = np.hypot(xs - 64, ys - 64) < 59
    x, y, _ = fisheye.project(tilted, fisheye.unproject(tilted, xs[keep], ys[keep]))
    assert np.allclose(x, xs[keep]) and np.allclose(y, ys[keep])


def test_the_forward_lens_shows_right_as_right_and_up_as_up() -> None:
    x, y, _ = fisheye.project(lens(), ray(20, 0))
    assert x > 64 and y == pytest.approx(64)
    x, y, _ = fisheye.project(lens(), ray(0, 20))
    assert y < 64 and x == pytest.approx(64)


def test_the_backward_lens_sees_behind_upright_with_the_body_right_on_its_left() -> None:
    backward = lens(facing=180.0)
    assert fisheye.project(backward, ray(180, 0))[:2] == pytest.approx((64.0, 64.0))
    x, _, _ = fisheye.project(backward, ray(160, 0))  # behind and to the right of the camera
    assert x < 64
    _, y, _ = fisheye.project(backward, ray(180, 20))
    assert y < 64


@pytest.mark.parametrize("angles, axis", [({"pitch": 5.0}, (0, 5)), ({"yaw": 5.0}, (5, 0)), ({"pitch": -3.0}, (0, -3))])
def test_pitch_and_yaw_turn_the_lens_axis_up_and_right(angles: dict[str, float], axis: tuple[float, float]) -> None:
    assert fisheye.project(lens(**angles), ray(*axis))[:2] == pytest.approx((64.0, 64.0))


def test_positive_roll_turns_the_image_right_axis_up() -> None:
    rolled = lens(roll=90.0)
    x, y, _ = fisheye.project(rolled, ray(0, 30))  # the image's right axis points up: the world's up is image-right
    assert x > 64 and y == pytest.approx(64.0)


def test_weights_sum_to_one_and_are_even_on_the_seam() -> None:
    rig = side_by_side_rig()
    rays = np.stack([ray(lon, lat) for lon in range(0, 360, 7) for lat in range(-80, 81, 20)])
    samples = fisheye.rig_samples(rig, rays[None])
    assert len(samples) == 2
    assert np.allclose(samples[0].weight + samples[1].weight, 1.0)
    on_seam = fisheye.rig_samples(rig, np.stack([ray(90, lat) for lat in (-40, 0, 40)])[None])
    assert np.allclose(on_seam[0].weight, 0.5)


def test_the_blend_ramps_over_the_feather_and_is_a_single_lens_beyond_it() -> None:
    rig = side_by_side_rig()
    offsets = [fisheye.seam_offset_deg(rig, ray(90 - d, 0)) for d in (-6, -4, 0, 4, 6)]
    assert offsets == pytest.approx([-6, -4, 0, 4, 6])
    weights = fisheye.rig_samples(rig, np.stack([ray(90 - d, 0) for d in (-6, -4, 0, 4, 6)])[None], feather_deg=10.0)
    assert weights[0].weight[0].tolist() == pytest.approx([0.0, 0.1, 0.5, 0.9, 1.0])


def test_a_view_inside_one_hemisphere_samples_one_lens_only() -> None:
    rig = side_by_side_rig()
    forward = projection.view_world_rays(32, 18, 0.0, 0.0, 90.0)
    backward = projection.view_world_rays(32, 18, 180.0, 0.0, 90.0)
    (front,) = fisheye.rig_samples(rig, forward)
    (back,) = fisheye.rig_samples(rig, backward)
    assert front.map_x.max() < 128 <= back.map_x.min()


def test_directions_neither_lens_reaches_go_to_the_nearer_one_inside_its_half() -> None:
    rig = side_by_side_rig(fov=170.0)  # a gap of 10° around the seam
    samples = fisheye.rig_samples(rig, np.stack([ray(88, 0), ray(92, 0)])[None])
    assert samples[0].weight[0].tolist() == [1.0, 0.0]
    assert samples[0].map_x.max() <= 127 and samples[1].map_x.min() >= 128


def test_equirect_rays_land_on_their_own_pixel_centres() -> None:
    rays = fisheye.equirect_rays(64, 32)
    lon, lat = projection.world_rays_to_lon_lat(rays)
    map_x, map_y = projection.lon_lat_to_equirect_pixel(lon, lat, 64, 32)
    cols, rows = np.meshgrid(np.arange(64), np.arange(32))
    assert np.allclose(map_x, cols) and np.allclose(map_y, rows)


def scene(width: int = 512, height: int = 256) -> np.ndarray:
    """A smooth equirect scene that differs in every direction (no detail finer than a few pixels)."""
    lon = (np.arange(width) + 0.5) / width * 2 * np.pi
    lat = (np.arange(height) + 0.5) / height * np.pi
    return (128 + 60 * np.sin(3 * lon)[None, :] * np.sin(2 * lat)[:, None]
            + 40 * np.cos(5 * lon[None, :] + 4 * lat[:, None])).astype(np.float64)


def fisheye_frame(rig: tuple[fisheye.FisheyeLens, ...], source: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Render the two circles of `rig` from an equirect `source` (the inverse of slicing)."""
    frame = np.zeros(size[::-1])
    for each in rig:
        rays, inside, (rows, cols) = fisheye.lens_image_rays(each)
        lon, lat = projection.world_rays_to_lon_lat(rays)
        map_x, map_y = projection.lon_lat_to_equirect_pixel(lon, lat, source.shape[1], source.shape[0])
        frame[rows, cols] = np.where(inside, projection.sample_bilinear(source, map_x, np.clip(map_y, 0, None)), 0)
    return frame


@pytest.mark.parametrize("yaw", [0.0, 45.0, 90.0, 180.0, 300.0])
def test_a_view_cut_from_the_circles_is_the_view_cut_from_the_scene(yaw: float) -> None:
    source = scene()
    rig = side_by_side_rig(size=256, pitch=1.5, yaw=-1.0, roll=2.0)
    frame = fisheye_frame(rig, source, (512, 256))
    rays = projection.view_world_rays(96, 64, yaw, 10.0, 90.0)
    blended = sum(projection.sample_bilinear(frame, s.map_x, s.map_y) * s.weight for s in fisheye.rig_samples(rig, rays))
    lon, lat = projection.world_rays_to_lon_lat(rays)
    direct = projection.sample_bilinear(source, *projection.lon_lat_to_equirect_pixel(lon, lat, 512, 256))
    assert image_psnr_db(blended, direct) >= 40.0
