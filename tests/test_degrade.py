"""Specification of the `--lq` degradations of low light, noise and blur (vidvpr.distill.degrade),
each on a known image: mean luminance and noise variance as the module docstring states them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidvpr.core.errors import BadInput
from vidvpr.distill.degrade import (
    LOWLIGHT_READ,
    LOWLIGHT_SHOT,
    Blur,
    Jpeg,
    LowLight,
    Noise,
    Resize,
    linear_to_srgb,
    parse_low_quality,
    srgb_to_linear,
)

GREY = np.full((512, 512, 3), 128, np.uint8)  # sRGB 128: linear 0.2158


def linear_step_at(level: float) -> float:
    """The linear-light width of one 8-bit sRGB code at linear `level` (quantisation)."""
    code = int(linear_to_srgb(np.array([level]))[0])
    return float((srgb_to_linear(np.array([code + 1])) - srgb_to_linear(np.array([code])))[0])


def test_srgb_transfer_functions_are_the_standard_ones_and_invert_each_other() -> None:
    codes = np.arange(256)
    assert np.array_equal(linear_to_srgb(srgb_to_linear(codes)), codes)
    assert srgb_to_linear(np.array([0, 10, 128, 255])) == pytest.approx([0.0, 0.003035, 0.215861, 1.0], abs=1e-6)


@pytest.mark.parametrize("ev", [-1.0, -3.0, -5.0])
def test_lowlight_scales_linear_light_by_two_to_the_ev_and_adds_the_dark_exposures_noise(ev: float) -> None:
    out = LowLight(ev)(GREY)
    assert out.shape == GREY.shape and out.dtype == np.uint8
    linear = srgb_to_linear(out).astype(np.float64)  # the camera's gamma undone: the exposure in linear light
    level = float(srgb_to_linear(np.array([128]))[0]) * 2.0 ** ev
    assert linear.mean() == pytest.approx(level, rel=0.01)
    expected = LOWLIGHT_SHOT * level + LOWLIGHT_READ  # Poisson-Gaussian, per channel
    quantisation = linear_step_at(level) ** 2 / 12
    assert quantisation < 0.05 * expected
    for channel in range(3):
        assert linear[..., channel].var() == pytest.approx(expected + quantisation, rel=0.05)


def test_lowlight_is_darker_in_every_pixel_on_average_and_keeps_the_picture() -> None:
    gradient = np.repeat(np.linspace(0, 255, 256).astype(np.uint8)[None, :, None], 64, 0).repeat(3, 2)
    out = LowLight(-2.0)(gradient)
    before, after = srgb_to_linear(gradient).mean(0), srgb_to_linear(out).mean(0)  # per column (one input level)
    assert np.allclose(after, before / 4, atol=0.004)
    assert np.corrcoef(before[:, 0], after[:, 0])[0, 1] > 0.99


def test_noise_adds_gaussian_noise_of_sigma_levels_per_pixel_and_channel() -> None:
    out = Noise(5.0)(GREY).astype(np.float64)
    assert out.mean() == pytest.approx(128.0, abs=0.05)
    for channel in range(3):
        assert out[..., channel].var() == pytest.approx(25.0 + 1 / 12, rel=0.03)  # + rounding to whole levels
    neighbours = np.corrcoef(out[:, :-1, 0].ravel(), out[:, 1:, 0].ravel())[0, 1]
    channels = np.corrcoef(out[..., 0].ravel(), out[..., 1].ravel())[0, 1]
    assert abs(neighbours) < 0.01 and abs(channels) < 0.01  # independent per pixel and channel


@pytest.mark.parametrize("sigma_px", [1.0, 2.0, 3.5])
def test_blur_keeps_the_mean_and_divides_white_noise_variance_by_four_pi_sigma_squared(sigma_px: float) -> None:
    rng = np.random.default_rng(0)
    noise = np.clip(np.rint(128 + 30 * rng.standard_normal((512, 512, 3))), 0, 255).astype(np.uint8)
    out = Blur(sigma_px)(noise).astype(np.float64)
    inner = (slice(32, -32), slice(32, -32))  # away from the reflected borders
    assert out[inner].mean() == pytest.approx(noise[inner].mean(), abs=0.2)
    expected = noise.astype(np.float64).var() / (4 * math.pi * sigma_px ** 2)  # a 2D Gaussian's sum of squares
    assert out[inner][..., 0].var() == pytest.approx(expected + 1 / 12, rel=0.06)


def test_blur_spreads_a_line_with_standard_deviation_px() -> None:
    line = np.zeros((64, 101, 3), np.uint8)
    line[:, 50] = 255
    profile = Blur(3.0)(line)[32, :, 0].astype(np.float64)
    x = np.arange(101) - 50
    assert profile.sum() == pytest.approx(255, abs=3)
    assert math.sqrt((profile * x ** 2).sum() / profile.sum()) == pytest.approx(3.0, rel=0.03)


def test_noise_depends_only_on_the_image_so_training_is_reproducible() -> None:
    other = GREY.copy()
    other[0, 0, 0] = 127
    for degradation in (LowLight(-3.0), Noise(3.0)):
        assert np.array_equal(degradation(GREY), degradation(GREY))
        changed = degradation(other).astype(int) != degradation(GREY).astype(int)
        assert changed.mean() > 0.3  # another image: independent noise


def test_degradations_combine_with_each_other_and_with_cells_in_the_order_given() -> None:
    lq = parse_low_quality(["320x176/qp45", "lowlight:-3", "noise:2", "blur:1.5", "jpeg:30,resize:64p"])
    assert lq.cells == ("320x176/qp45",)
    assert lq.degradations == (LowLight(-3.0), Noise(2.0), Blur(1.5), Jpeg(30), Resize(64))
    assert lq.names == ["320x176/qp45", "lowlight:-3", "noise:2", "blur:1.5", "jpeg:30", "resize:64p"]
    image = np.random.default_rng(1).integers(0, 256, (128, 224, 3), dtype=np.uint8)
    out = lq.degrade(image)
    assert out.shape == (64, 112, 3) and np.array_equal(out, lq.degrade(image))
    expected = image
    for step in lq.degradations:
        expected = step(expected)
    assert np.array_equal(out, expected)
    assert srgb_to_linear(out).mean() < srgb_to_linear(image).mean() / 4


@pytest.mark.parametrize("item, match", [
    ("lowlight:3", r"--lq lowlight:3: EV .* must be a number in \[-10, 0\), got '3'"),
    ("lowlight:0", r"in \[-10, 0\)"), ("lowlight:-11", r"in \[-10, 0\)"), ("lowlight:", "got ''"),
    ("lowlight:dark", "got 'dark'"), ("noise:0", r"SIGMA \(8-bit levels\) must be a number in \(0, 100\]"),
    ("noise:nan", "got 'nan'"), ("noise:1e400", "got '1e400'"), ("blur:-1", r"PX \(pixels\) must be a number in \(0, 50\]"),
    ("blur:inf", "got 'inf'"), ("sharpen:2", "Unknown degradation 'sharpen:2'. Use jpeg:Q .* lowlight:EV"),
])
def test_bad_degradations_are_one_line_bad_input(item: str, match: str) -> None:
    with pytest.raises(BadInput, match=match) as caught:
        parse_low_quality([item])
    assert "\n" not in str(caught.value)


def test_a_resize_that_would_upscale_is_named_as_idle_along_the_chain() -> None:
    lq = parse_low_quality(["resize:240p", "resize:40p", "jpeg:10", "resize:64x36", "resize:10p"])
    # 80x32: 240p and 40p leave it, 64x36 shrinks it to 64x32, 10p shrinks that
    assert lq.idle_resizes(80, 32) == ["resize:240p", "resize:40p"]
    assert lq.idle_resizes(1920, 1080) == []  # 427x240, 71x40, 64x36, 18x10
    assert parse_low_quality(["resize:64x36"]).idle_resizes(60, 30) == ["resize:64x36"]
    assert parse_low_quality(["jpeg:10"]).idle_resizes(8, 8) == []
