"""Pixel-difference measures as pure functions, one convention for the whole toolkit."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

PEAK_8BIT = 255.0


def mean_squared_error(a: ArrayLike, b: ArrayLike) -> float:
    """Mean squared difference of two same-shaped images, in float64."""
    first, second = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if first.shape != second.shape:
        raise ValueError(f"images differ in shape: {first.shape} vs {second.shape}")
    return float(np.mean((first - second) ** 2))


def psnr_db(mse: float, peak: float = PEAK_8BIT) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error; infinity for 0 (identical)."""
    if mse < 0 or not math.isfinite(mse):
        raise ValueError(f"mean squared error must be finite and non-negative, got {mse}")
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def image_psnr_db(a: ArrayLike, b: ArrayLike, peak: float = PEAK_8BIT) -> float:
    """PSNR in dB between two same-shaped images (infinity when identical)."""
    return psnr_db(mean_squared_error(a, b), peak)
