"""Projection conventions, written once in vidvpr.geometry and pinned here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidvpr.media.metrics import image_psnr_db, psnr_db
from vidvpr.geo import projection as geometry


@pytest.mark.parametrize("yaw_deg", [0.0, 90.0, 180.0, 270.0, -45.0])
@pytest.mark.parametrize("pitch_deg", [0.0, 30.0, -60.0])
def test_view_centre_looks_along_view_direction(yaw_deg: float, pitch_deg: float) -> None:
    intrinsics = geometry.pinhole_intrinsics(640, 360, 90.0)
    x, y = geometry.direction_to_view_pixel(yaw_deg, pitch_deg, yaw_deg, pitch_deg, intrinsics)
    assert x == pytest.approx(320.0) and y == pytest.approx(180.0)


def test_yaw_zero_samples_the_centre_column() -> None:
    map_x, map_y = geometry.equirect_to_perspective_maps(2048, 1024, 64, 64, 0.0, 0.0, 90.0)
    # the four pixels around the view centre straddle source column 1023.5 (the centre line)
    assert map_x[31:33, 31:33].mean() == pytest.approx(1023.5, abs=1e-3)
    assert map_y[31:33, 31:33].mean() == pytest.approx(511.5, abs=1e-3)


def test_positive_yaw_turns_right() -> None:
    map_x, _ = geometry.equirect_to_perspective_maps(2048, 1024, 64, 64, 90.0, 0.0, 90.0)
    assert map_x[31:33, 31:33].mean() == pytest.approx(0.75 * 2048 - 0.5, abs=1e-3)


def test_positive_pitch_looks_up() -> None:
    _, map_y = geometry.equirect_to_perspective_maps(2048, 1024, 64, 64, 0.0, 30.0, 90.0)
    assert map_y[31:33, 31:33].mean() == pytest.approx((0.5 - 30 / 180) * 1024 - 0.5, abs=0.05)


def test_image_right_is_world_right_and_image_up_is_world_up() -> None:
    map_x, map_y = geometry.equirect_to_perspective_maps(2048, 1024, 64, 64, 0.0, 0.0, 90.0)
    assert map_x[32, 63] > map_x[32, 0]
    assert map_y[0, 32] < map_y[63, 32]


def test_maps_wrap_across_the_seam() -> None:
    map_x, _ = geometry.equirect_to_perspective_maps(1024, 512, 128, 72, 180.0, 0.0, 90.0)
    assert map_x.min() >= -0.5 and map_x.max() < 1024 - 0.5
    assert (map_x < 100).any() and (map_x > 924).any()


def test_maps_are_clamped_at_the_poles() -> None:
    _, map_y = geometry.equirect_to_perspective_maps(1024, 512, 128, 128, 0.0, 90.0, 120.0)
    assert map_y.min() >= 0.0 and map_y.max() <= 511.0


def test_border_pixel_centres_follow_the_pinhole_model() -> None:
    width, hfov = 64, 90.0
    map_x, _ = geometry.equirect_to_perspective_maps(3600, 1800, width, 36, 0.0, 0.0, hfov)
    fx = (width / 2) / math.tan(math.radians(hfov / 2))
    lon_first_deg = math.degrees(math.atan((0.5 - width / 2) / fx))
    expected = (lon_first_deg / 360 + 0.5) * 3600 - 0.5
    assert float(map_x[18, 0]) == pytest.approx(expected, abs=1e-2)


def test_intrinsics_follow_the_horizontal_fov() -> None:
    intrinsics = geometry.pinhole_intrinsics(1920, 1080, 90.0)
    assert intrinsics.fx == pytest.approx(960.0) and intrinsics.fy == intrinsics.fx
    assert (intrinsics.cx, intrinsics.cy) == (960.0, 540.0)
    assert intrinsics.vfov_deg == pytest.approx(2 * math.degrees(math.atan(540 / 960)))


@pytest.mark.parametrize(("src_width", "expected"), [(5760, (1824, 1024)), (3840, (1216, 672)), (1920, (608, 336))])
def test_default_view_size_matches_source_angular_resolution(src_width: int, expected: tuple[int, int]) -> None:
    assert geometry.default_view_size(src_width, 90.0) == expected


def test_sample_bilinear_is_exact_on_a_linear_ramp() -> None:
    ramp = np.tile(np.arange(16, dtype=np.float64), (8, 1))
    xs = np.array([[2.25, 7.5]])
    ys = np.array([[3.0, 4.75]])
    assert np.allclose(geometry.sample_bilinear(ramp, xs, ys), [[2.25, 7.5]])


def test_sample_bilinear_wraps_horizontally() -> None:
    image = np.zeros((4, 8))
    image[:, 0] = 100.0
    assert geometry.sample_bilinear(image, np.array([7.5]), np.array([1.0]))[0] == pytest.approx(50.0)


def test_psnr_of_identical_images_is_infinite() -> None:
    image = np.full((4, 4), 7, np.uint8)
    assert image_psnr_db(image, image) == math.inf


def test_psnr_of_a_known_error_matches_the_definition() -> None:
    image = np.zeros((4, 4), np.uint8)
    noisy = image.copy()
    noisy[0, :2] = 8  # squared error 64 on 2 of 16 pixels: MSE 8
    assert image_psnr_db(image, noisy) == pytest.approx(10 * math.log10(255**2 / 8))
    assert psnr_db(8.0, peak=1.0) == pytest.approx(10 * math.log10(1 / 8))
