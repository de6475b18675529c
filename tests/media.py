"""Small synthetic media for tests: written here, so the suite needs no downloads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODE_BITS = 8  # frame index encoded in 8 blocks along the equator band


def write_video(path: Path, frames: Iterable[np.ndarray], fps: Fraction = Fraction(30), pts: Sequence[int] | None = None,
                time_base: Fraction | None = None, codec: str = "libx264", crf: int = 4) -> Path:
    """Encode RGB uint8 frames (H, W, 3) to `path` with PyAV; `pts` in `time_base` units for VFR."""
    time_base = time_base or 1 / Fraction(fps)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {"crf": str(crf), "preset": "ultrafast"} if codec == "libx264" else {}
        for index, rgb in enumerate(frames):
            if index == 0:
                stream.height, stream.width = rgb.shape[:2]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = pts[index] if pts is not None else index
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def frame_code_columns(width: int, bit: int) -> slice:
    """Columns of the equator block that carries bit `bit` of the frame index, repeated per 90°."""
    block = width // (4 * CODE_BITS)
    return slice(bit * block + block // 4, (bit + 1) * block - block // 4)


def equirect_test_frame(width: int, height: int, index: int, marker_yaws_deg: Sequence[float] = (0, 90, 180, 270)) -> np.ndarray:
    """An equirect RGB frame: smooth texture, a red disc at each marker yaw on the horizon, and
    the frame index as an 8-bit code in white/black blocks just below the horizon, every 90°."""
    rows, cols = np.mgrid[0:height, 0:width]
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 1] = (96 + 64 * np.sin(cols * 2 * np.pi / width * 6) * np.cos(rows * np.pi / height * 3)).astype(np.uint8)
    rgb[..., 2] = (rows * 200 // height).astype(np.uint8)
    for yaw in marker_yaws_deg:
        centre_col = ((yaw / 360.0 + 0.5) % 1.0) * width
        dist2 = (((cols + 0.5 - centre_col + width / 2) % width) - width / 2) ** 2 + (rows + 0.5 - height / 2) ** 2
        rgb[dist2 < (height / 40) ** 2] = (255, 0, 0)
    code_rows = slice(height // 2 + height // 12, height // 2 + height // 6)
    for quarter in range(4):
        offset = quarter * width // 4
        for bit in range(CODE_BITS):
            cols_bit = frame_code_columns(width, bit)
            value = 255 if (index >> bit) & 1 else 0
            rgb[code_rows, offset + cols_bit.start: offset + cols_bit.stop] = value
    return rgb


def make_equirect_video(path: Path, width: int = 256, height: int = 128, frames: int = 12, **kwargs) -> Path:
    """A short synthetic 2:1 equirect video with markers and per-frame codes."""
    return write_video(path, (equirect_test_frame(width, height, i) for i in range(frames)), **kwargs)
