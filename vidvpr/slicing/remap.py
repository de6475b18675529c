"""Remapping a decoded equirect frame into one perspective view, plane by plane in yuv420p.

Sampling maps come from `vidvpr.geo.projection` once per view; OpenCV does the per-frame work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from vidvpr.geo import projection
from vidvpr.media.decode import DecodedFrame
from vidvpr.slicing.config import ViewSpec

OPENCV_FLAGS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
# Rows a kernel reaches beyond its centre: sampling near a pole with a wider kernel pads the
# source with replicated rows instead of letting the wrapping border fetch the opposite pole.
KERNEL_RADIUS_ROWS = {"bilinear": 0, "bicubic": 2, "lanczos": 4}


class PlaneRemapper:
    """Remaps one image plane of one view with sampling maps computed once."""

    def __init__(self, src_w: int, src_h: int, row_offset: int, view: ViewSpec, scale: int, interp: str) -> None:
        map_x, map_y = projection.equirect_to_perspective_maps(
            src_w, src_h, view.width // scale, view.height // scale, view.yaw_deg, view.pitch_deg, view.hfov_deg
        )
        radius = KERNEL_RADIUS_ROWS[interp]
        near_pole = radius and (map_y.min() < radius or map_y.max() > src_h - 1 - radius)
        self.pad_rows = radius if near_pole else 0
        self.rows = slice(row_offset, row_offset + src_h)
        self.flag = OPENCV_FLAGS[interp]
        # float maps: OpenCV's SIMD path for them measured faster than fixed-point maps here
        self.map_x, self.map_y = map_x, map_y + np.float32(self.pad_rows)

    def __call__(self, plane: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Remap `plane` (the whole source plane) into `out` (allocated when None)."""
        src = plane[self.rows]
        if self.pad_rows:
            src = cv2.copyMakeBorder(src, self.pad_rows, self.pad_rows, 0, 0, cv2.BORDER_REPLICATE)
        if out is None or not out.flags.c_contiguous:
            result = cv2.remap(src, self.map_x, self.map_y, self.flag, borderMode=cv2.BORDER_WRAP)
            if out is not None:
                out[...] = result
            return result if out is None else out
        cv2.remap(src, self.map_x, self.map_y, self.flag, dst=out, borderMode=cv2.BORDER_WRAP)
        return out


class ViewRemapper:
    """Y, U and V remappers for one view (chroma at half resolution, centre-sited)."""

    def __init__(self, src_w: int, eye_h: int, eye_row: int, view: ViewSpec, interp: str) -> None:
        self.luma = PlaneRemapper(src_w, eye_h, eye_row, view, 1, interp)
        self.chroma = PlaneRemapper(src_w // 2, eye_h // 2, eye_row // 2, view, 2, interp)

    def __call__(self, frame: DecodedFrame, out: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
        """The view's Y, U, V planes, written into `out` planes when given."""
        out_y, out_u, out_v = out if out is not None else (None, None, None)
        return self.luma(frame.y, out_y), self.chroma(frame.u, out_u), self.chroma(frame.v, out_v)


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
