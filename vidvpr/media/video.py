"""Video I/O over PyAV: probing (with spherical metadata), frame-exact decoding, encoding.

Every PyAV/libav failure on user input becomes a one-line BadInput naming the file.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidvpr.core.errors import BadInput

LOG = logging.getLogger(__name__)

SPHERICAL_V1_UUID = bytes.fromhex("ffcc8263f8554a938814587a02521fdd")
MAX_MOOV_BYTES = 64 << 20


@dataclass(frozen=True)
class SphericalMetadata:
    """Projection and stereo layout from Spherical Video V1 (XML) or V2 (sv3d/st3d) boxes."""

    version: str  # "v1" or "v2"
    projection: str  # "equirectangular", "cubemap", ...
    stereo_mode: str  # "mono", "top-bottom", "left-right"


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as far as vidvpr needs to know before decoding."""

    path: Path
    width: int
    height: int
    frames: int  # from the container index; 0 when unknown
    fps: Fraction
    time_base: Fraction
    codec: str
    pix_fmt: str
    duration_s: float | None
    spherical: SphericalMetadata | None

    @property
    def is_two_to_one(self) -> bool:
        return self.width == 2 * self.height


def _av_problem(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"\s*:\s*'[^']*'$", "", text).strip() or type(exc).__name__


def probe_video(path: Path) -> VideoInfo:
    """Open a video and describe its first video stream, or raise BadInput naming the file."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: file not found")
    if not path.is_file():
        raise BadInput(f"{path}: not a file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInput(f"{path}: no video stream (or zero video frames)")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if not ctx.width or not ctx.height:
                raise BadInput(f"{path}: video stream has no frame size (not a decodable video)")
            fps = stream.average_rate or stream.guessed_rate or stream.base_rate
            duration_s = float(stream.duration * stream.time_base) if stream.duration else None
            return VideoInfo(
                path=path,
                width=ctx.width,
                height=ctx.height,
                frames=int(stream.frames or 0),
                fps=Fraction(fps) if fps else Fraction(0),
                time_base=Fraction(stream.time_base),
                codec=ctx.name,
                pix_fmt=ctx.format.name if ctx.format else "unknown",
                duration_s=duration_s,
                spherical=read_spherical_metadata(path),
            )
    except av.error.FFmpegError as exc:
        raise BadInput(f"{path}: not a readable video ({_av_problem(exc)})") from exc


def read_spherical_metadata(path: Path) -> SphericalMetadata | None:
    """Find Spherical Video V1/V2 metadata in an MP4/MOV's moov box; None when absent."""
    moov = _read_top_level_box(path, b"moov")
    if moov is None:
        return None
    v1 = moov.find(SPHERICAL_V1_UUID)
    if v1 >= 0:
        xml = moov[v1 + 16 : v1 + 16 + 8192].decode("utf-8", "replace")
        projection = re.search(r"<GSpherical:ProjectionType>([^<]+)<", xml)
        stereo = re.search(r"<GSpherical:StereoMode>([^<]+)<", xml)
        return SphericalMetadata(
            "v1",
            projection.group(1).strip().lower() if projection else "equirectangular",
            stereo.group(1).strip().lower() if stereo else "mono",
        )
    sv3d = moov.find(b"sv3d")
    if sv3d >= 0:
        projection = "equirectangular" if moov.find(b"equi", sv3d) >= 0 else (
            "cubemap" if moov.find(b"cbmp", sv3d) >= 0 else "unknown")
        stereo_mode = "mono"
        st3d = moov.find(b"st3d")
        if st3d >= 0 and st3d + 9 <= len(moov):
            # st3d payload: version/flags (4 bytes) then one byte stereo_mode
            stereo_mode = {0: "mono", 1: "top-bottom", 2: "left-right"}.get(moov[st3d + 8], "mono")
        return SphericalMetadata("v2", projection, stereo_mode)
    return None


def _read_top_level_box(path: Path, box_type: bytes) -> bytes | None:
    """Payload of the first top-level ISO-BMFF box of `box_type`, or None (not MP4, absent, huge)."""
    try:
        with open(path, "rb") as handle:
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    return None
                size, kind = struct.unpack(">I4s", header)
                header_len = 8
                if size == 1:
                    size = struct.unpack(">Q", handle.read(8))[0]
                    header_len = 16
                elif size == 0:
                    return handle.read(MAX_MOOV_BYTES) if kind == box_type else None
                if size < header_len:
                    return None
                if kind == box_type:
                    return handle.read(min(size - header_len, MAX_MOOV_BYTES)) if size <= MAX_MOOV_BYTES else None
                handle.seek(size - header_len, 1)
    except OSError:
        return None


@dataclass
class DecodedFrame:
    """One decoded frame: its index in the stream, presentation time, and yuv420p planes."""

    index: int
    pts: int
    time_s: float
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


def yuv420p_planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V planes of a frame as uint8 arrays without copying (other formats converted first).

    The arrays view the frame's own buffers (rows may be padded, so they can be strided);
    they stay valid while the returned arrays are referenced.
    """
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    sizes = ((frame.height, frame.width), (frame.height // 2, frame.width // 2), (frame.height // 2, frame.width // 2))
    return tuple(  # type: ignore[return-value]
        np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:rows, :cols]
        for plane, (rows, cols) in zip(frame.planes, sizes)
    )


def decode_frames(path: Path, expected_frames: int = 0, threads: int = 0) -> Iterator[DecodedFrame]:
    """Decode every frame of the first video stream in presentation order, each exactly once.

    Raises BadInput for a stream that errors mid-way, ends before the frame count its
    container declares (truncated file), or holds no frames at all.
    """
    path = Path(path)
    index = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if threads:
                stream.codec_context.thread_count = threads
            start_pts: int | None = None
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else index
                if start_pts is None:
                    start_pts = pts
                y, u, v = yuv420p_planes(frame)
                time_s = float((pts - start_pts) * stream.time_base)
                yield DecodedFrame(index, pts, time_s, y, u, v)
                index += 1
    except av.error.FFmpegError as exc:
        raise BadInput(f"{path}: corrupt or truncated video stream at frame {index} ({_av_problem(exc)})") from exc
    if index == 0:
        raise BadInput(f"{path}: video has zero decodable frames")
    if expected_frames and index < expected_frames:
        raise BadInput(f"{path}: truncated or corrupt stream: decoded {index} of {expected_frames} frames")


ENCODER_SETTINGS_PATTERN = re.compile(rb"x26[45] (?:- core|\(build)[^\x00]{0,8000}?(?=\x00|$)")
SETTINGS_WINDOW_BYTES = 1 << 20


def encoder_settings_string(path: Path) -> str | None:
    """The settings record x264/x265 write into their streams ("x264 - core N ... qp=30 ..."),
    searched in the head of the file or, where an mp4 keeps x265's headers in its index, the tail."""
    try:
        size = Path(path).stat().st_size
        with open(path, "rb") as handle:
            chunks = [handle.read(SETTINGS_WINDOW_BYTES)]
            if size > SETTINGS_WINDOW_BYTES:
                handle.seek(max(SETTINGS_WINDOW_BYTES, size - SETTINGS_WINDOW_BYTES))
                chunks.append(handle.read())
    except OSError:
        return None
    for chunk in chunks:
        match = ENCODER_SETTINGS_PATTERN.search(chunk)
        if match:
            return match.group(0).decode("ascii", "replace")
    return None
