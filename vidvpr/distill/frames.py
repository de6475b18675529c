"""Decoded training frames on disk, so that training reads video frames at random without seeking.

Layout: ``RUN/frames/<key>.npy`` (uint8, frames × H × W × 3, memory-mapped when read) with a
sidecar ``<key>.json`` (`FramesRecord`) written last, the key a hash of the video's content hash
and the frame list. As the descriptor cache checks its entries (`vidvpr.descriptors.cache`), an
array is read back only when its sidecar names the same video content and frames and the array
still has the recorded shape, type, size and, since these pixels are training input, content
hash (cached by file identity, so an untouched file is not read again to check it). Anything
else (a run killed before the sidecar was written, a truncated, edited or replaced array, a
damaged sidecar) is decoded again, never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vidvpr.core.atomic import atomic_output, ensure_writable_dir
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import params_hash
from vidvpr.core.records import FileRecord, Record
from vidvpr.media.decode import decode_selected

FRAMES_DTYPE = np.uint8


class FramesRecord(Record):
    """``frames/<key>.json`` beside a decoded frames array: which frames of which video it holds."""

    SCHEMA = "vidvpr.distill-frames/1"
    KIND = "vidvpr decoded training frames sidecar"

    video: FileRecord
    frames: list[int]
    shape: list[int]  # frames, height, width, channels
    dtype: str
    array: FileRecord
    elapsed_s: float


class FrameStore:
    """A folder of decoded frame arrays (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def paths(self, video_hash: str, frames: list[int]) -> tuple[Path, Path]:
        stem = params_hash({"video": video_hash, "frames": frames})
        return self.folder / f"{stem}.npy", self.folder / f"{stem}.json"

    def open(self, video: FileRecord, frames: list[int]) -> np.ndarray | None:
        """The stored frames as a read-only memory map, or None when absent, different or damaged."""
        array_path, sidecar_path = self.paths(video.hash, frames)
        record = FramesRecord.load_or_none(sidecar_path)
        if (record is None or record.video.hash != video.hash or record.frames != frames
                or not record.array.matches(array_path, check_hash=True)):
            return None
        try:
            array = np.load(array_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if list(array.shape) != record.shape or array.dtype != FRAMES_DTYPE or array.ndim != 4 \
                or array.shape[0] != len(frames):
            return None
        return array

    def write(self, video: FileRecord, frames: list[int], decoded: Iterable[tuple[int, np.ndarray]],
              source: str) -> np.ndarray:
        """Store the (frame index, RGB image) pairs of `decoded`, which must cover `frames`, and return
        them as `open` does. `source` names the video in errors."""
        array_path, sidecar_path = self.paths(video.hash, frames)
        ensure_writable_dir(self.folder)
        rows: dict[int, list[int]] = {}
        for k, frame in enumerate(frames):
            rows.setdefault(frame, []).append(k)
        started = time.perf_counter()
        written: set[int] = set()
        with atomic_output(array_path) as tmp:
            out = None
            for frame, rgb in decoded:
                if out is None:
                    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=FRAMES_DTYPE, shape=(len(frames), *rgb.shape))
                if rgb.shape != out.shape[1:]:
                    raise BadInput(f"{source}: frame {frame} is {rgb.shape[1]}x{rgb.shape[0]}, "
                                   f"earlier frames {out.shape[2]}x{out.shape[1]}")
                out[rows[frame]] = rgb
                written.add(frame)
            if out is None or len(written) != len(rows):
                raise BadInput(f"{source}: {len(rows) - len(written)} of its {len(rows)} training frames were not decoded")
            shape = list(out.shape)
            out.flush()
            del out
        FramesRecord(video=video, frames=frames, shape=shape, dtype=np.dtype(FRAMES_DTYPE).name,
                     array=FileRecord.of(array_path), elapsed_s=round(time.perf_counter() - started, 3)
                     ).save(sidecar_path)
        stored = self.open(video, frames)
        if stored is None:  # pragma: no cover - only if the file changed under us
            raise BadInput(f"{array_path}: changed while it was written")
        return stored

    def frames_of(self, video_path: Path, video: FileRecord, frames: list[int]) -> np.ndarray:
        """`frames` of the video at `video_path` (recorded as `video`): stored, or decoded and stored now."""
        stored = self.open(video, frames)
        if stored is not None:
            return stored
        return self.write(video, frames, decode_selected(video_path, frames), str(video_path))

    def clear(self) -> None:
        """Remove every stored array and sidecar, and the folder when nothing else is in it."""
        if not self.folder.is_dir():
            return
        for path in [*self.folder.glob("*.npy"), *self.folder.glob("*.json")]:
            path.unlink(missing_ok=True)
        if not any(self.folder.iterdir()):
            self.folder.rmdir()
