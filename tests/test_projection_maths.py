"""Specification of the equirect ↔ pinhole maths in vidvpr.geo.projection, away from 90°.

At a 90° field of view tan(45°) = 1, so a focal length divided where it should be multiplied
goes unnoticed; these tests use 60° and 120° views, asymmetric images and non-square pixels
grids, with the expected values worked out by hand in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidvpr.geo import projection
from vidvpr.geo.projection import PinholeIntrinsics

SQRT3 = math.sqrt(3.0)


def intrinsics(width: int = 3, height: int = 2, fx: float = 2.0, fy: float = 4.0, cx: float = 1.0,
               cy: float = 1.5) -> PinholeIntrinsics:
    return PinholeIntrinsics(width, height, fx, fy, cx, cy, hfov_deg=0.0, vfov_deg=0.0)


# ---------------------------------------------------------------- intrinsics


def test_focal_length_at_60_degrees_is_half_the_width_over_tan_30() -> None:
    view = projection.pinhole_intrinsics(640, 480, 60)
    # tan 30° = 1/√3: fx = 320 · √3
    assert view.fx == pytest.approx(320 * SQRT3) and view.fy == view.fx


def test_principal_point_is_the_image_centre() -> None:
    view = projection.pinhole_intrinsics(640, 480, 60)
    assert (view.width, view.height, view.cx, view.cy) == (640, 480, 320.0, 240.0)


def test_vertical_fov_follows_from_the_height_and_the_focal_length() -> None:
    view = projection.pinhole_intrinsics(640, 480, 60)
    # tan(vfov/2) = 240 / (320 √3) = √3 / 4
    assert view.vfov_deg == pytest.approx(2 * math.degrees(math.atan(SQRT3 / 4)))


def test_horizontal_fov_is_kept_as_a_float() -> None:
    view = projection.pinhole_intrinsics(640, 480, 60)
    assert view.hfov_deg == 60.0 and isinstance(view.hfov_deg, float)


def test_wide_view_focal_length_at_120_degrees() -> None:
    # tan 60° = √3: fx = 960 / √3
    assert projection.pinhole_intrinsics(1920, 1080, 120).fx == pytest.approx(960 / SQRT3)


def test_camera_matrix_places_focal_lengths_and_principal_point() -> None:
    assert intrinsics(fx=500.0, fy=400.0, cx=320.0, cy=180.0).matrix() == [
        [500.0, 0.0, 320.0], [0.0, 400.0, 180.0], [0.0, 0.0, 1.0]]


# ---------------------------------------------------------------- view size


@pytest.mark.parametrize(("value", "multiple", "expected"), [
    (47.9, 16, 32), (48.0, 16, 48), (48.0 - 1e-12, 16, 48), (5.0, 16, 16), (0.0, 8, 8), (95.0, 10, 90)])
def test_floor_to_multiple(value: float, multiple: int, expected: int) -> None:
    assert projection.floor_to_multiple(value, multiple) == expected


def test_default_view_size_at_120_degrees() -> None:
    # 3600 · tan 60° / π = 1984.8 → 1984 (124 · 16); 1984 · 9/16 = 1116 → 1104 (69 · 16)
    assert projection.default_view_size(3600, 120) == (1984, 1104)


def test_default_view_size_takes_aspect_and_multiple() -> None:
    # 1984.8 → 1980 (multiple of 10); 1980 · 3/4 = 1485 → 1480
    assert projection.default_view_size(3600, 120, aspect=4 / 3, multiple=10) == (1980, 1480)


# ---------------------------------------------------------------- rotations and rays


def test_yaw_30_rotates_about_the_vertical_axis_to_the_right() -> None:
    expected = [[SQRT3 / 2, 0, 0.5], [0, 1, 0], [-0.5, 0, SQRT3 / 2]]
    np.testing.assert_allclose(projection.view_rotation(30, 0), expected, atol=1e-12)


def test_pitch_30_rotates_about_the_camera_x_axis_upwards() -> None:
    expected = [[1, 0, 0], [0, SQRT3 / 2, 0.5], [0, -0.5, SQRT3 / 2]]
    np.testing.assert_allclose(projection.view_rotation(0, 30), expected, atol=1e-12)


def test_pitch_is_applied_before_yaw() -> None:
    # forward (0, 0, 1) pitched up 30° is (0, 1/2, √3/2); turned right 90° it is (√3/2, 1/2, 0)
    forward = projection.view_rotation(90, 30) @ np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(forward, [SQRT3 / 2, 0.5, 0.0], atol=1e-12)


def test_perspective_rays_pass_through_pixel_centres() -> None:
    # 3×2 view, fx 2, fy 4, principal point (1, 1.5): x = (i + 0.5 − 1) / 2, y = (1.5 − (j + 0.5)) / 4
    rays = projection.perspective_rays(intrinsics())
    expected = [[[-0.25, 0.25, 1], [0.25, 0.25, 1], [0.75, 0.25, 1]],
                [[-0.25, 0.0, 1], [0.25, 0.0, 1], [0.75, 0.0, 1]]]
    np.testing.assert_allclose(rays, expected)


@pytest.mark.parametrize(("ray", "lon_deg", "lat_deg"), [
    ((1.0, 0.0, SQRT3), 30.0, 0.0),
    ((-1.0, 0.0, 0.0), -90.0, 0.0),
    ((0.0, 0.0, -2.0), 180.0, 0.0),
    ((0.0, 1.0, SQRT3), 0.0, 30.0),
    ((1.0, -2.0, 0.0), 90.0, -math.degrees(math.atan(2.0))),
    ((SQRT3, 2.0, 1.0), 60.0, 45.0),
])
def test_longitude_and_latitude_of_world_rays(ray: tuple, lon_deg: float, lat_deg: float) -> None:
    lon, lat = projection.world_rays_to_lon_lat(np.array([ray]))
    assert math.degrees(lon[0]) == pytest.approx(lon_deg) and math.degrees(lat[0]) == pytest.approx(lat_deg)


@pytest.mark.parametrize(("lon_deg", "lat_deg", "col", "row"), [
    (0.0, 0.0, 199.5, 49.5),     # the centre of a 400×100 frame
    (-90.0, 0.0, 99.5, 49.5),    # a quarter of the width to the left
    (0.0, -60.0, 199.5, 82.8333333),  # (0.5 + 60/180) · 100 − 0.5
    (180.0, 90.0, 399.5, -0.5),  # the right edge and the top edge
])
def test_lon_lat_to_equirect_pixel(lon_deg: float, lat_deg: float, col: float, row: float) -> None:
    map_x, map_y = projection.lon_lat_to_equirect_pixel(
        np.radians(lon_deg), np.radians(lat_deg), src_width=400, src_height=100)
    assert float(map_x) == pytest.approx(col) and float(map_y) == pytest.approx(row)


# ---------------------------------------------------------------- sampling maps


def single_pixel_map(yaw_deg: float, pitch_deg: float) -> tuple[float, float]:
    """Where a 1×1 view (its only pixel centre on the optical axis) samples a 360×180 frame."""
    map_x, map_y = projection.equirect_to_perspective_maps(360, 180, 1, 1, yaw_deg, pitch_deg, 60.0)
    return float(map_x[0, 0]), float(map_y[0, 0])


def test_maps_are_float32_of_the_view_size() -> None:
    map_x, map_y = projection.equirect_to_perspective_maps(360, 180, 4, 2, 0.0, 0.0, 60.0)
    assert map_x.shape == map_y.shape == (2, 4) and map_x.dtype == map_y.dtype == np.float32


def test_maps_at_60_degrees_follow_the_pinhole_model_off_centre() -> None:
    # 4×2 view at 60°: fx = 2 / tan 30° = 2√3; the top-right pixel centre is (1.5, 0.5) px from the
    # principal point, the ray (√3/4, √3/12, 1); a 360×180 frame has one pixel per degree.
    map_x, map_y = projection.equirect_to_perspective_maps(360, 180, 4, 2, 0.0, 0.0, 60.0)
    lon = math.degrees(math.atan(SQRT3 / 4))
    lat = math.degrees(math.atan2(SQRT3 / 12, math.hypot(SQRT3 / 4, 1)))
    assert float(map_x[0, 3]) == pytest.approx(179.5 + lon, abs=1e-4)
    assert float(map_y[0, 3]) == pytest.approx(89.5 - lat, abs=1e-4)
    assert float(map_x[1, 0]) == pytest.approx(179.5 - lon, abs=1e-4)
    assert float(map_y[1, 0]) == pytest.approx(89.5 + lat, abs=1e-4)


def test_a_single_pixel_view_samples_its_view_direction() -> None:
    assert single_pixel_map(-90.0, 20.0) == pytest.approx((89.5, 69.5))


def test_the_seam_at_180_degrees_maps_to_the_left_edge() -> None:
    # lon +180° would be column 359.5, which is where column −0.5 is after wrapping
    assert single_pixel_map(180.0, 0.0)[0] == pytest.approx(-0.5)


@pytest.mark.parametrize(("pitch_deg", "row"), [(90.0, 0.0), (-90.0, 179.0)])
def test_rows_beyond_the_poles_are_clamped_to_the_first_and_last_row_centre(pitch_deg: float, row: float) -> None:
    assert single_pixel_map(0.0, pitch_deg)[1] == pytest.approx(row)


# ---------------------------------------------------------------- a direction in a view


def view_60() -> PinholeIntrinsics:
    return projection.pinhole_intrinsics(640, 480, 60)  # fx = fy = 320 √3


def test_a_direction_at_half_the_field_of_view_lands_on_the_right_edge() -> None:
    # x = 320 + 320 √3 · tan 30° = 640
    assert projection.direction_to_view_pixel(30, 0, 0, 0, view_60()) == pytest.approx((640.0, 240.0))


def test_a_direction_30_degrees_up_lands_80_pixels_above_the_top_edge() -> None:
    # y = 240 − 320 √3 · tan 30° = −80
    assert projection.direction_to_view_pixel(0, 30, 0, 0, view_60()) == pytest.approx((320.0, -80.0))


def test_view_yaw_and_pitch_are_subtracted_from_the_direction() -> None:
    assert projection.direction_to_view_pixel(40, 0, 10, 0, view_60()) == pytest.approx((640.0, 240.0))
    assert projection.direction_to_view_pixel(0, 40, 0, 10, view_60()) == pytest.approx((320.0, -80.0))


@pytest.mark.parametrize("lon_deg", [180.0, 90.0, -120.0])
def test_a_direction_behind_or_beside_the_camera_has_no_pixel(lon_deg: float) -> None:
    assert projection.direction_to_view_pixel(lon_deg, 0, 0, 0, view_60()) is None


def test_a_direction_just_in_front_of_the_camera_has_a_pixel() -> None:
    assert projection.direction_to_view_pixel(89.0, 0, 0, 0, view_60()) is not None


# ---------------------------------------------------------------- bilinear sampling


GRID = np.array([[0.0, 4.0, 1.0], [8.0, 16.0, 2.0], [3.0, 5.0, 7.0]])


def test_bilinear_weights_each_of_the_four_neighbours() -> None:
    # between (0,0)=0, (1,0)=4, (0,1)=8, (1,1)=16 at x 0.25, y 0.75:
    # top 0·0.75 + 4·0.25 = 1, bottom 8·0.75 + 16·0.25 = 10, 1·0.25 + 10·0.75 = 7.75
    assert projection.sample_bilinear(GRID, np.array([0.25]), np.array([0.75]))[0] == pytest.approx(7.75)


def test_bilinear_at_a_pixel_centre_is_that_pixel() -> None:
    values = projection.sample_bilinear(GRID, np.array([2.0, 1.0]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(values, [2.0, 5.0])


def test_bilinear_wraps_left_of_the_first_column() -> None:
    # x −0.25 is 0.75 px right of column −1, which is column 2: 2·0.25 + 8·0.75 on row 1
    assert projection.sample_bilinear(GRID, np.array([-0.25]), np.array([1.0]))[0] == pytest.approx(6.5)


@pytest.mark.parametrize(("y", "expected"), [(-0.5, 4.0), (-1.5, 4.0), (2.25, 5.0), (2.5, 5.0), (3.5, 5.0)])
def test_bilinear_clamps_rows_above_and_below_the_image(y: float, expected: float) -> None:
    assert projection.sample_bilinear(GRID, np.array([1.0]), np.array([y]))[0] == pytest.approx(expected)


def test_bilinear_samples_every_channel_of_a_colour_image() -> None:
    image = np.stack([GRID, 10 * GRID, GRID + 1], axis=-1).astype(np.uint8)
    values = projection.sample_bilinear(image, np.array([[0.25, 1.5, 0.0]]), np.array([[0.75, 0.0, 1.25]]))
    # (0.25, 0.75) as above: 7.75; (1.5, 0): halfway between 4 and 1: 2.5; (0, 1.25): 8·0.75 + 3·0.25
    np.testing.assert_allclose(values, [[[7.75, 77.5, 8.75], [2.5, 25.0, 3.5], [6.75, 67.5, 7.75]]])
    assert values.dtype == np.float64
