"""Perspective footage before anything is written: one video, or a sequence of images, looked at
whole (every input checked first) and read frame by frame as yuv420p planes with their times.

A video keeps every frame with its own timestamp (from 0); images are frames at the times
`vidvpr.ingest.images.frame_times` gives them. Odd frame sizes are made even (yuv420p) at the
right and bottom, with a warning saying how.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file, sha256_files
from vidvpr.core.sidecars import ColorRecord, ImportedSourceRecord
from vidvpr.ingest import images as imgs
from vidvpr.media.decode import decode_frames
from vidvpr.media.probe import (ColorInfo, VideoInfo, display_rotation_deg, looks_dual_fisheye, probe_video,
                                stereo_packing, unsupported_360_layout)

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFrame:
    """One frame to write: its index in the source, its time in the footage's time base, its planes."""

    index: int
    pts: int
    planes: list[np.ndarray]  # Y (h, w), U and V (h/2, w/2)


@dataclass
class Footage:
    """What one recording's source is and how its frames come out (`frames`)."""

    kind: str  # "video" or "images"
    path: Path  # the video, or the folder the images' names are relative to
    width: int  # as shown: a video's stored frames turned by `rotation_deg`
    height: int
    codec: str
    pix_fmt: str
    bytes: int
    fps: Fraction
    time_base: Fraction
    color: ColorInfo
    times_from: str
    frames_expected: int  # images: exact; video: the container's count (0 when it does not say)
    even_width: int = 0  # after making the size even (0: the size is even already)
    even_height: int = 0
    even: str | None = None  # what was done to make it even
    video: VideoInfo | None = None
    images: list[imgs.ImageInfo] = field(default_factory=list)
    image_times: imgs.ImageTimes | None = None
    rotation_deg: int = 0  # a video's display rotation (counter-clockwise), applied to every frame
    stereo_packing: str | None = None  # a video whose frames are flagged as a stereo pair: how they pack it

    @property
    def out_size(self) -> tuple[int, int]:
        return (self.even_width or self.width, self.even_height or self.height)

    def content_hash(self) -> str:
        """The video's hash, or one hash of every image's name (in order) and content hash."""
        if self.kind == "video":
            return sha256_file(self.path)
        digest = hashlib.sha256()
        for name, file_hash in zip(self.image_names(), sha256_files([info.path for info in self.images])):
            digest.update(f"{name}\t{file_hash}\n".encode())
        return f"sha256:{digest.hexdigest()}"

    def image_names(self) -> list[str]:
        return [info.path.absolute().relative_to(self.path.absolute()).as_posix() for info in self.images]

    def frames(self) -> Iterator[SourceFrame]:
        """Every frame in order, even-sized, with its time from the first frame."""
        width, height = self.out_size
        if self.kind == "images":
            assert self.image_times is not None
            for index, (info, time_s) in enumerate(zip(self.images, self.image_times.times_s)):
                rgb = imgs.make_even(imgs.read_rgb(info), width, height)
                yield SourceFrame(index, round(time_s / self.time_base), imgs.rgb_to_planes(rgb))
            return
        first_pts: int | None = None
        for frame in decode_frames(self.path, self.frames_expected):
            first_pts = frame.pts if first_pts is None else first_pts
            y, u, v = (np.ascontiguousarray(np.rot90(plane, self.rotation_deg // 90)) if self.rotation_deg else plane
                       for plane in (frame.y, frame.u, frame.v))
            planes = [y[:height, :width], u[:height // 2, :width // 2], v[:height // 2, :width // 2]]
            yield SourceFrame(frame.index, frame.pts - first_pts, planes)

    def record(self, content_hash: str, frames: int) -> ImportedSourceRecord:
        """How the sidecar describes this source."""
        times = self.image_times
        return ImportedSourceRecord(
            kind=self.kind, path=str(self.path), bytes=self.bytes, hash=content_hash, width=self.width,
            height=self.height, codec=self.codec, pix_fmt=self.pix_fmt, fps=str(self.fps), frames=frames,
            color=ColorRecord(**self.color.names()), times_from=self.times_from,
            t0_epoch_s=times.t0_epoch_s if times else None, images=self.image_names() if self.kind == "images" else None,
            rotation_deg=self.rotation_deg)


def _even(footage: Footage, mode: str) -> Footage:
    try:
        width, height, done = imgs.even_size(footage.width, footage.height, mode)
    except BadInput as exc:  # too small to crop: say which footage
        raise BadInput(f"{footage.path}: {exc}") from None
    if done is not None:
        LOG.warning("%s: %dx%d frames %s to %dx%d (yuv420p video needs an even size)", footage.path, footage.width,
                    footage.height, done, width, height)
        footage.even_width, footage.even_height, footage.even = width, height, done
    return footage


# ---------------------------------------------------------------- videos


def check_perspective(info: VideoInfo) -> None:
    """Refuse 360° footage (it is cut into views by `vidvpr slice`); warn where a frame only looks like it."""
    reason = unsupported_360_layout(info)
    if reason:
        raise BadInput(f"{info.path}: this is {reason}")
    meta = info.spherical
    if meta is not None:
        raise BadInput(f"{info.path}: a 360° {meta.projection} video (its spherical metadata says so); cut "
                       "perspective views from it with vidvpr slice")
    if info.is_two_to_one:
        first = next(decode_frames(info.path))
        if looks_dual_fisheye(first.y):
            raise BadInput(f"{info.path}: looks like a dual-fisheye 360° frame (two image circles on black); export "
                           "it as an equirectangular MP4 and cut views from that with vidvpr slice")
        LOG.warning("%s: 2:1 frames, like an equirectangular 360° video without metadata; imported as a perspective "
                    "camera (if it is 360°, use vidvpr slice)", info.path)


def open_video(path: Path, fps: Fraction | None, times: str = "auto") -> Footage:
    """A perspective video, checked; its frames are all kept, with their own timestamps."""
    info = probe_video(Path(path))
    if fps is not None:
        raise BadInput(f"--fps times images; a video keeps every frame at its own time ({path})")
    if times != "auto":
        raise BadInput(f"--times {times} times images; a video keeps every frame at its own time ({path})")
    check_perspective(info)
    rotation_deg = display_rotation_deg(info.path)
    width, height = (info.height, info.width) if rotation_deg in (90, 270) else (info.width, info.height)
    if rotation_deg:
        LOG.info("%s: shown rotated by %d°; its frames are turned upright (%dx%d)", info.path, rotation_deg, width,
                 height)
    packing = stereo_packing(info.path)
    if packing:
        LOG.warning("%s: its frames are flagged as a stereo pair (%s); imported whole, as one camera, and "
                    "re-encoded without the flag (if each frame does hold two pictures, crop one eye first, e.g. "
                    "with ffmpeg's crop filter, and import that)", info.path, packing)
    footage = Footage("video", info.path, width, height, info.codec, info.pix_fmt, info.path.stat().st_size,
                      info.fps, info.time_base, info.color, "the video's own timestamps", info.frames, video=info,
                      rotation_deg=rotation_deg, stereo_packing=packing)
    return _even(footage, "crop")


# ---------------------------------------------------------------- image sequences


def open_images(sources: Sequence[str | Path], fps: Fraction | None, times: str, even: str) -> Footage:
    """An image sequence, every header read and every size checked before anything is written."""
    folder, paths = imgs.find_images(sources)
    infos = [imgs.scan_image(path) for path in paths]
    width, height = imgs.check_sizes(infos)
    image_times = imgs.frame_times(infos, times, fps)
    formats = "+".join(sorted({info.format for info in infos}))
    total = sum(info.path.stat().st_size for info in infos)
    footage = Footage("images", folder, width, height, formats, "rgb24", total, image_times.fps,
                      image_times.time_base, imgs.IMAGE_COLOR, image_times.times_from, len(infos), images=infos,
                      image_times=image_times)
    return _even(footage, even)


def looks_like_video(sources: Sequence[str | Path]) -> bool:
    """One existing file that is not a JPEG or PNG image."""
    return len(sources) == 1 and Path(sources[0]).is_file() and \
        Path(sources[0]).suffix.lower() not in imgs.IMAGE_SUFFIXES
