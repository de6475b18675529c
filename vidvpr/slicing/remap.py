"""Remapping decoded source frames into one output (a view, or an equirect frame), plane by plane
in yuv420p: one remap path for every camera model.

The camera model (`vidvpr.slicing.camera`) supplies, per output and plane, one `SourceSampling`
per source image it reads: an equirect source one, a dual-fisheye rig one per lens that sees the
output, each with the weights of the seam blend. OpenCV does the per-frame work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vidvpr.geo import projection
from vidvpr.media.decode import DecodedFrame
from vidvpr.slicing.config import ViewSpec

OPENCV_FLAGS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
# Rows a kernel reaches beyond its centre: sampling near a pole with a wider kernel pads the
# source with replicated rows instead of letting the wrapping border fetch the opposite pole.
KERNEL_RADIUS_ROWS = {"bilinear": 0, "bicubic": 2, "lanczos": 4}


@dataclass(frozen=True)
class SourceSampling:
    """Where an output plane samples one source image: which stream, which rows of its plane
    (padded by `pad_rows` replicated rows), the maps, the border rule and the blend weight."""

    stream: int
    rows: slice
    pad_rows: int
    map_x: np.ndarray  # float32, OpenCV convention (integer = pixel centre)
    map_y: np.ndarray
    border: int
    weight: np.ndarray | None = None  # float32; None: this source alone fills the output


def equirect_sampling(src_w: int, src_h: int, row_offset: int, view: ViewSpec, scale: int, interp: str) -> SourceSampling:
    """Sampling of a `src_w` × `src_h` equirect image (starting at `row_offset`) for one view plane
    at 1/`scale` of the view's size."""
    map_x, map_y = projection.equirect_to_perspective_maps(
        src_w, src_h, view.width // scale, view.height // scale, view.yaw_deg, view.pitch_deg, view.hfov_deg
    )
    radius = KERNEL_RADIUS_ROWS[interp]
    near_pole = radius and (map_y.min() < radius or map_y.max() > src_h - 1 - radius)
    pad_rows = radius if near_pole else 0
    # float maps: OpenCV's SIMD path for them measured faster than fixed-point maps here
    return SourceSampling(0, slice(row_offset, row_offset + src_h), pad_rows, map_x, map_y + np.float32(pad_rows),
                          cv2.BORDER_WRAP)


class PlaneRemapper:
    """Remaps one output plane from its source planes with sampling maps computed once."""

    def __init__(self, samplings: Sequence[SourceSampling], interp: str) -> None:
        if not samplings:
            raise ValueError("an output needs at least one source sampling")
        self.samplings = list(samplings)
        self.flag = OPENCV_FLAGS[interp]
        self.blend = len(self.samplings) > 1
        shape = self.samplings[0].map_x.shape
        self.scratch = [np.empty(shape, np.uint8) for _ in self.samplings] if self.blend else []

    def _sample(self, sampling: SourceSampling, plane: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        src = plane[sampling.rows]
        if sampling.pad_rows:
            src = cv2.copyMakeBorder(src, sampling.pad_rows, sampling.pad_rows, 0, 0, cv2.BORDER_REPLICATE)
        if out is None or not out.flags.c_contiguous:
            result = cv2.remap(src, sampling.map_x, sampling.map_y, self.flag, borderMode=sampling.border)
            if out is not None:
                out[...] = result
            return result if out is None else out
        cv2.remap(src, sampling.map_x, sampling.map_y, self.flag, dst=out, borderMode=sampling.border)
        return out

    def __call__(self, planes: Sequence[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
        """Remap into `out` (allocated when None); `planes[k]` is stream k's plane."""
        if not self.blend:
            sampling = self.samplings[0]
            return self._sample(sampling, planes[sampling.stream], out)
        first, second = (self._sample(s, planes[s.stream], scratch) for s, scratch in zip(self.samplings, self.scratch))
        weight_a, weight_b = self.samplings[0].weight, self.samplings[1].weight
        if out is not None and out.flags.c_contiguous:
            return cv2.blendLinear(first, second, weight_a, weight_b, dst=out)
        blended = cv2.blendLinear(first, second, weight_a, weight_b)
        if out is None:
            return blended
        out[...] = blended
        return out


class ViewRemapper:
    """Y, U and V remappers for one output (chroma at half resolution, centre-sited)."""

    def __init__(self, luma: Sequence[SourceSampling], chroma: Sequence[SourceSampling], interp: str) -> None:
        self.luma = PlaneRemapper(luma, interp)
        self.chroma = PlaneRemapper(chroma, interp)

    def __call__(self, frames: Sequence[DecodedFrame], out: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
        """The output's Y, U, V planes from each stream's frame, written into `out` planes when given."""
        out_y, out_u, out_v = out if out is not None else (None, None, None)
        return (self.luma([frame.y for frame in frames], out_y), self.chroma([frame.u for frame in frames], out_u),
                self.chroma([frame.v for frame in frames], out_v))


@contextlib.contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """Run OpenCV with `count` threads inside the block. Slicing uses one: the cores are busy
    with the view encoders and the decoder, and OpenCV's spinning workers only took time from
    them (measured: ~10% more CPU for the same remaps)."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
