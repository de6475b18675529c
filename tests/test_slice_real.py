"""Slicing the real 360° samples in ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidvpr.media.metrics import image_psnr_db
from vidvpr.geo import projection as geometry
from vidvpr.slicing.config import SliceConfig, plan_views
from vidvpr.slicing.slicer import slice_video
from vidvpr.media.decode import decode_frames, yuv420p_planes
from vidvpr.media.probe import read_spherical_metadata

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def first_frame_luma_and_rgb(path: str) -> tuple[np.ndarray, np.ndarray]:
    with av.open(path) as container:
        frame = next(container.decode(video=0))
        return yuv420p_planes(frame)[0].astype(np.float64), frame.to_ndarray(format="rgb24")


@pytest.fixture(scope="module")
def room_views(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list:
    config = SliceConfig(size=(480, 270), fps=Fraction(1))
    return slice_video(shared_data / "testRoom1_1920Mono.mp4", tmp_path_factory.mktemp("room"), config)


def test_calibration_room_shows_the_red_sphere_at_yaw_90(room_views: list) -> None:
    _, rgb = first_frame_luma_and_rgb(room_views[1].path)
    red, green, blue = rgb[130:140, 235:245].reshape(-1, 3).mean(axis=0)
    assert red > 150 and green < 80 and blue < 80


def test_real_views_are_within_45_db_of_an_exact_float_remap(room_views: list, shared_data: Path) -> None:
    source = next(decode_frames(shared_data / "testRoom1_1920Mono.mp4")).y.astype(np.float64)
    for view, result in zip(plan_views(SliceConfig(size=(480, 270)), 1920), room_views):
        map_x, map_y = geometry.equirect_to_perspective_maps(1920, 960, 480, 270, view.yaw_deg, 0.0, 90.0)
        decoded, _ = first_frame_luma_and_rgb(result.path)
        assert image_psnr_db(decoded, geometry.sample_bilinear(source, map_x, map_y)) >= 45.0


def test_stereo_sample_carries_v1_top_bottom_metadata(shared_data: Path) -> None:
    meta = read_spherical_metadata(shared_data / "congo.mp4")
    assert meta is not None and (meta.projection, meta.stereo_mode) == ("equirectangular", "top-bottom")


def test_stereo_sample_slices_one_eye_at_full_frame_count(shared_data: Path, tmp_path: Path) -> None:
    results = slice_video(shared_data / "congo.mp4", tmp_path, SliceConfig(size=(160, 90), yaws_deg=(0.0,), stereo="tb"))
    with av.open(results[0].path) as container:
        assert sum(1 for _ in container.decode(video=0)) == 300
