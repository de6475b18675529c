"""Small synthetic media for tests: written here, so the suite needs no downloads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODE_BITS = 8  # frame index encoded in 8 blocks along the equator band


def write_video(path: Path, frames: Iterable[np.ndarray], fps: Fraction = Fraction(30), pts: Sequence[int] | None = None,
                time_base: Fraction | None = None, codec: str = "libx264", crf: int = 4,
                size: tuple[int, int] = (256, 128), faststart: bool = False, pix_fmt: str = "yuv420p") -> Path:
    """Encode RGB uint8 frames (H, W, 3) to `path` with PyAV; `pts` in `time_base` units for VFR.
    `size` (W, H) only matters when there are no frames."""
    time_base = time_base or 1 / Fraction(fps)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.pix_fmt = pix_fmt
        stream.width, stream.height = size
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
        container.start_encoding()  # writes the header even when there were no frames
    return path


CODE_REPEATS = 8  # the code repeats every 45°, so any 90° view sees every bit near its centre
CODE_BITS_PER_ROW = 4
SECTOR_CODE_STEP = 37  # sector k carries (index + 37·k) mod 256: a view facing the wrong way reads a wrong index
MARKER_COLOURS = {0: (255, 0, 0), 90: (0, 255, 0), 180: (0, 0, 255), 270: (255, 255, 0)}  # one colour per direction


def frame_code_block(width: int, height: int, repeat: int, bit: int) -> tuple[slice, slice]:
    """(rows, cols) of the block carrying `bit` of the frame index in the `repeat`-th 45° sector:
    bits 0-3 in a band just above the horizon, bits 4-7 just below."""
    block = width // (CODE_REPEATS * CODE_BITS_PER_ROW)
    col0 = repeat * width // CODE_REPEATS + (bit % CODE_BITS_PER_ROW) * block
    band = height // 16
    row0 = height // 2 - height // 32 - band if bit < CODE_BITS_PER_ROW else height // 2 + height // 32
    return slice(row0, row0 + band), slice(col0 + block // 4, col0 + block - block // 4)


def equirect_test_frame(width: int, height: int, index: int, marker_yaws_deg: Sequence[float] = (0, 90, 180, 270)) -> np.ndarray:
    """An equirect RGB frame that looks different in every direction: a smooth texture, a disc of
    its own colour at each marker yaw on the horizon (MARKER_COLOURS), and the frame index as an
    8-bit code in white/black blocks around the horizon every 45°, offset per sector, so a view
    with a mirrored yaw convention reads the wrong colour and the wrong index."""
    rows, cols = np.mgrid[0:height, 0:width]
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 1] = (96 + 64 * np.sin(cols * 2 * np.pi / width * 6) * np.cos(rows * np.pi / height * 3)).astype(np.uint8)
    rgb[..., 2] = (rows * 200 // height).astype(np.uint8)
    for yaw in marker_yaws_deg:
        centre_col = ((yaw / 360.0 + 0.5) % 1.0) * width
        dist2 = (((cols + 0.5 - centre_col + width / 2) % width) - width / 2) ** 2 + (rows + 0.5 - height / 2) ** 2
        rgb[dist2 < (height / 40) ** 2] = MARKER_COLOURS.get(int(yaw) % 360, (255, 0, 255))
    for repeat in range(CODE_REPEATS):
        code = (index + SECTOR_CODE_STEP * repeat) % (1 << CODE_BITS)
        for bit in range(CODE_BITS):
            block_rows, block_cols = frame_code_block(width, height, repeat, bit)
            rgb[block_rows, block_cols] = 255 if (code >> bit) & 1 else 0
    return rgb


def make_equirect_video(path: Path, width: int = 256, height: int = 128, frames: int = 12, **kwargs) -> Path:
    """A short synthetic 2:1 equirect video with markers and per-frame codes."""
    return write_video(path, (equirect_test_frame(width, height, i) for i in range(frames)), **kwargs)


def read_frame_code(luma: np.ndarray, view_yaw_deg: float, eq_width: int, eq_height: int, hfov_deg: float = 90.0) -> int:
    """Read the frame index back from a decoded view's luma, sampling each code block through
    the view's own projection (so it also checks the geometry)."""
    from vidvpr.geo.projection import direction_to_view_pixel, pinhole_intrinsics

    height, width = luma.shape
    intrinsics = pinhole_intrinsics(width, height, hfov_deg)
    sector_width_deg = 360.0 / CODE_REPEATS
    # the sector whose code sits closest to the view's centre
    sector = round(((view_yaw_deg + 180.0) % 360.0 - sector_width_deg / 2) / sector_width_deg) % CODE_REPEATS
    value = 0
    for bit in range(CODE_BITS):
        rows, cols = frame_code_block(eq_width, eq_height, sector, bit)
        lon_deg = ((cols.start + cols.stop) / 2 / eq_width - 0.5) * 360.0
        lat_deg = (0.5 - (rows.start + rows.stop) / 2 / eq_height) * 180.0
        x, y = direction_to_view_pixel(lon_deg, lat_deg, view_yaw_deg, 0.0, intrinsics)
        if luma[int(y), int(x)] > 128:
            value |= 1 << bit
    return (value - SECTOR_CODE_STEP * sector) % (1 << CODE_BITS)


def marker_colour_at_centre(rgb: np.ndarray) -> tuple[int, int, int]:
    """The MARKER_COLOURS entry nearest to the colour at the centre of a decoded view."""
    height, width = rgb.shape[:2]
    centre = rgb[height // 2 - 1: height // 2 + 1, width // 2 - 1: width // 2 + 1].reshape(-1, 3).mean(0)
    return min(MARKER_COLOURS.values(), key=lambda colour: float(np.sum((centre - np.array(colour)) ** 2)))


def decode_luma_and_times(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """All frames' luma planes and presentation times (seconds from the first frame)."""
    from vidvpr.media.decode import yuv420p_planes

    lumas, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = None
        for frame in container.decode(stream):
            first = frame.pts if first is None else first
            lumas.append(yuv420p_planes(frame)[0].copy())  # the coded Y plane, no range conversion
            times.append(float((frame.pts - first) * stream.time_base))
    return lumas, times


INDEX_BITS = 8  # perspective test frames carry their index in 8 blocks along the top


def perspective_test_frame(width: int, height: int, index: int, seed: int = 0) -> np.ndarray:
    """An RGB camera-like frame: a smooth texture (different per `seed`) and the frame index as 8
    black/white blocks along the top, so order and duplicates show in any decoded copy."""
    rows, cols = np.mgrid[0:height, 0:width]
    rgb = np.zeros((height, width, 3), np.uint8)
    phase = seed * 0.7
    rgb[..., 0] = (128 + 60 * np.sin(cols / width * 9 + phase) * np.cos(rows / height * 5)).astype(np.uint8)
    rgb[..., 1] = (110 + 50 * np.cos(cols / width * 4 - rows / height * 3 + phase)).astype(np.uint8)
    rgb[..., 2] = (rows * 180 // height + 40).astype(np.uint8)
    block = width // INDEX_BITS
    for bit in range(INDEX_BITS):
        rgb[: height // 4, bit * block + block // 4: (bit + 1) * block - block // 4] = 255 if (index >> bit) & 1 else 0
    return rgb


def read_index_code(luma: np.ndarray) -> int:
    """The index a decoded `perspective_test_frame` carries (from its luma plane)."""
    height, width = luma.shape
    block = width // INDEX_BITS
    return sum(1 << bit for bit in range(INDEX_BITS) if luma[height // 8, bit * block + block // 2] > 128)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Save an RGB array as PNG (OpenCV), creating the folder."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path
