"""JPEG cells: every frame a libjpeg still at a quality factor, muxed into an MP4 without re-encoding.

Frame i of the view goes through `scale_chain` (the encoders' own input) and then to RGB (the
view's matrix, limited range: what a decoder hands a model), and OpenCV's libjpeg encodes it at
quality Q with 4:2:0 chroma, exactly as Pillow's ``save(quality=Q)`` does (same quantisation
tables, verify.py reads them back). The JPEG bytes become the packets of an MJPEG stream with the
view's timestamps, so frame i of the cell is frame i of the view and any decoder reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vidvpr.core.errors import OutputError
from vidvpr.encoding.plan import Cell
from vidvpr.encoding.quality import scale_chain
from vidvpr.media.ffmpeg import FfmpegPool

JPEG_PIX_FMT = "yuvj420p"  # what libjpeg's 4:2:0 JFIF decodes to


def rgb_chain(width: int, height: int, matrix: str) -> str:
    """The view at a cell's size as RGB: `scale_chain`, then the view's matrix at limited range."""
    return f"{scale_chain(width, height)},scale=in_color_matrix={matrix}:in_range=tv,format=rgb24"


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """One RGB frame as a baseline 4:2:0 JPEG at libjpeg quality `quality`."""
    ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]),
                              [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                               cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    if not ok:
        raise OutputError(f"JPEG encoding at quality {quality} failed")
    return buffer.tobytes()


class _MjpegWriter:
    """An MP4 of JPEG packets at given presentation times."""

    def __init__(self, path: Path, width: int, height: int, fps: Fraction, time_base: Fraction) -> None:
        self.container = av.open(str(path), mode="w", format="mp4")
        self.stream = self.container.add_stream("mjpeg", rate=fps or None)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = JPEG_PIX_FMT
        self.stream.time_base = time_base
        self.time_base = time_base

    def write(self, data: bytes, pts: int) -> None:
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = self.time_base
        packet.stream = self.stream
        packet.is_keyframe = True
        self.container.mux(packet)

    def close(self) -> None:
        self.container.close()


def source_time_base(path: Path) -> Fraction:
    """The time base of a video's first stream (the cell keeps its timestamps in it)."""
    with av.open(str(path)) as container:
        return Fraction(container.streams.video[0].time_base)


def encode_jpeg_cells(ffmpeg_path: str, cells: Sequence[Cell], outputs: Sequence[Path], ref_times: Sequence[Fraction],
                      matrix: str, pool: FfmpegPool, work: Path,
                      on_frames: Callable[[int], None] | None = None) -> list[float]:
    """Write each JPEG cell to its output path; CPU seconds per cell (its libjpeg calls plus an even
    share of the decode-and-scale process of its size)."""
    source = cells[0].source
    time_base = source_time_base(source.path)
    pts = [int(t / time_base) for t in ref_times]
    cpu = [0.0] * len(cells)
    for width, height in dict.fromkeys((cell.width, cell.height) for cell in cells):
        members = [i for i, cell in enumerate(cells) if (cell.width, cell.height) == (width, height)]
        writers = [_MjpegWriter(outputs[i], width, height, source.fps, time_base) for i in members]
        index = 0

        def consume(frame: bytes) -> None:
            nonlocal index
            if index >= len(pts):
                raise OutputError(f"{source.path}: more frames decoded than its stream has")
            rgb = np.frombuffer(frame, np.uint8).reshape(height, width, 3)
            for member, writer in zip(members, writers):
                started = time.thread_time()
                data = encode_jpeg(rgb, cells[member].qp)
                cpu[member] += time.thread_time() - started
                writer.write(data, pts[index])
            index += 1
            if on_frames:
                on_frames(len(members))

        argv = [ffmpeg_path, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-threads", "1",
                "-i", str(Path(source.path).resolve()), "-vf", rgb_chain(width, height, matrix),
                "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        try:
            run = pool.read_frames(argv, work, f"JPEG frames of {source.recording}/{source.view}", width * height * 3,
                                   consume)
        finally:
            for writer in writers:
                writer.close()
        for member in members:
            cpu[member] += run.cpu_s / len(members)
    return cpu
