"""Frame-exact decoding over PyAV: every frame once, in order, with its own timestamp.

Frames come out as 8-bit 4:2:0 planes in the source's own colour range (a full-range source
stays full range: its values are never squeezed), or as RGB images for models.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.media.probe import av_problem

PLANAR_420 = ("yuv420p", "yuvj420p")


@dataclass
class DecodedFrame:
    """One decoded frame: its index in the stream, presentation time, and 8-bit 4:2:0 planes."""

    index: int
    pts: int
    time_s: float
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


def yuv420p_planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V planes of a frame as uint8 arrays without copying (other formats converted first).

    Conversion (10-bit, 4:2:2, ...) keeps the frame's colour range, so full-range sources stay
    full range. The arrays view the frame's own buffers (rows may be padded, so they can be
    strided); they stay valid while the returned arrays are referenced.
    """
    if frame.format.name not in PLANAR_420:
        full = frame.format.name.startswith("yuvj") or int(frame.color_range or 0) == 2
        target = "JPEG" if full else "MPEG"
        frame = frame.reformat(format="yuv420p", src_color_range=target, dst_color_range=target)
    sizes = ((frame.height, frame.width), (frame.height // 2, frame.width // 2), (frame.height // 2, frame.width // 2))
    return tuple(  # type: ignore[return-value]
        np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:rows, :cols]
        for plane, (rows, cols) in zip(frame.planes, sizes)
    )


def decode_frames(path: Path, expected_frames: int = 0, threads: int = 0) -> Iterator[DecodedFrame]:
    """Decode every frame of the first video stream in presentation order, each exactly once.

    Raises BadInput for a stream that errors mid-way, ends before the frame count its
    container declares (truncated file), or holds no frames at all. Packets the container's
    edit list cuts away (a video trimmed without re-encoding keeps the frames before its cut for
    decoding, flagged "discard") are in that count but are no frames of the video.
    """
    path = Path(path)
    index = discarded = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if threads:
                stream.codec_context.thread_count = threads
            start_pts: int | None = None
            for packet in container.demux(stream):
                discarded += bool(packet.size and packet.is_discard)  # decoded for reference, never shown
                for frame in packet.decode():
                    pts = frame.pts if frame.pts is not None else index
                    if start_pts is None:
                        start_pts = pts
                    y, u, v = yuv420p_planes(frame)
                    time_s = float((pts - start_pts) * stream.time_base)
                    yield DecodedFrame(index, pts, time_s, y, u, v)
                    index += 1
    except av.error.FFmpegError as exc:
        raise BadInput(f"{path}: corrupt or truncated video stream at frame {index} ({av_problem(exc)})") from exc
    _check_frame_count(path, index, expected_frames - discarded if expected_frames else 0)


def _check_frame_count(path: Path, decoded: int, expected_frames: int) -> None:
    if decoded == 0:
        raise BadInput(f"{path}: video has zero decodable frames")
    if expected_frames and decoded < expected_frames:
        raise BadInput(f"{path}: truncated or corrupt stream: decoded {decoded} of {expected_frames} frames")


def decode_frame_sets(path: Path, streams: int, expected_frames: int = 0) -> Iterator[tuple[DecodedFrame, ...]]:
    """Frame i of each of the first `streams` video streams, together, in presentation order
    (a camera that records one stream per lens). Times are those of the first stream.

    Raises BadInput when the streams hold different numbers of frames or one errors mid-way. As in
    `decode_frames`, packets an edit list cuts away (a trim without re-encoding) count as no frames.
    """
    path = Path(path)
    if streams == 1:
        yield from ((frame,) for frame in decode_frames(path, expected_frames))
        return
    index = discarded = 0
    try:
        with av.open(str(path)) as container:
            chosen = list(container.streams.video[:streams])
            if len(chosen) < streams:
                raise BadInput(f"{path}: {len(chosen)} video stream(s), expected {streams}")
            for stream in chosen:
                stream.thread_type = "AUTO"
            waiting: list[list[av.VideoFrame]] = [[] for _ in chosen]
            position = {stream.index: k for k, stream in enumerate(chosen)}
            base = chosen[0].time_base
            start_pts: int | None = None
            for packet in container.demux(chosen):
                if packet.stream.index == chosen[0].index:  # the stream `expected_frames` counts
                    discarded += bool(packet.size and packet.is_discard)
                for frame in packet.decode():
                    waiting[position[packet.stream.index]].append(frame)
                while all(waiting):
                    frames = [queue.pop(0) for queue in waiting]
                    pts = frames[0].pts if frames[0].pts is not None else index
                    start_pts = pts if start_pts is None else start_pts
                    time_s = float((pts - start_pts) * base)
                    yield tuple(DecodedFrame(index, pts, time_s, *yuv420p_planes(frame)) for frame in frames)
                    index += 1
            if any(waiting):
                longer = max(range(streams), key=lambda k: len(waiting[k]))
                raise BadInput(f"{path}: video stream {longer} has {len(waiting[longer])} more frames than the others "
                               f"after frame {index}; the lenses' streams must have equal frame counts")
    except av.error.FFmpegError as exc:
        raise BadInput(f"{path}: corrupt or truncated video stream at frame {index} ({av_problem(exc)})") from exc
    _check_frame_count(path, index, expected_frames - discarded if expected_frames else 0)


def decode_selected(path: Path, indices: Sequence[int], format: str = "rgb24") -> Iterator[tuple[int, np.ndarray]]:
    """(index, image) of the frames at `indices` (any order, repeats allowed), decoding once in order.

    Images are (H, W, 3) uint8 in `format` ("rgb24" or "bgr24"). BadInput when the video is
    corrupt or shorter than the largest index.
    """
    wanted = set(int(i) for i in indices)
    if not wanted:
        return
    last, index = max(wanted), -1
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInput(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    yield index, frame.to_ndarray(format=format)
                if index >= last:
                    return
    except av.error.FFmpegError as exc:
        raise BadInput(f"{path}: corrupt or unreadable video at frame {index + 1} ({av_problem(exc)})") from exc
    raise BadInput(f"{path}: has {index + 1} frames but frame {last} is needed")


def stream_timestamps(path: Path) -> tuple[list[Fraction], int]:
    """Presentation times (s, exact) of every frame in order, and the stream's payload bytes."""
    times: list[Fraction] = []
    payload = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInput(f"{path}: no video stream")
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:  # the end marker; a frame the edit list cuts away
                    continue
                payload += packet.size
                stamp = packet.pts if packet.pts is not None else packet.dts
                times.append(Fraction(stamp or 0) * stream.time_base)
    except av.error.FFmpegError as exc:
        raise BadInput(f"{path}: cannot read its video stream ({av_problem(exc)})") from exc
    return sorted(times), payload
