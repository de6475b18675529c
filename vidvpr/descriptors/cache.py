"""Descriptors on disk, keyed by what made them: the model's fingerprint and inference backend, the
video's content hash, the frame indices and the input size. A changed model or video is never
served from the cache, nor one backend's descriptors for another's.

Layout: ``CACHE/<key>/<video hash>-<frames and size hash>.npy`` (float16, N × D) with a sidecar
``.json`` (`DescriptorRecord`) written last; the key is the model's fingerprint for torch, the
fingerprint and the backend's name for the others (`vidvpr.models.inference.Inference.cache_key`),
whose exported graphs live in ``CACHE/<fingerprint>/graphs/``. float16 halves the size of float32
and changes recall of L2-normalised descriptors by far less than run-to-run noise (descriptors
are compared after conversion back to float32).

A database larger than memory is never loaded whole: `open` hands out an entry as a read-only
memory map (pages are read as they are used, e.g. chunk by chunk into a faiss index by
`vidvpr.evaluate.search.build_index`), and `writing` fills a new entry chunk by chunk through a
memory map, so neither side needs N × D floats in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr.core.atomic import atomic_output, ensure_writable_dir
from vidvpr.core.records import FileRecord, Record

STORED_DTYPE = np.float16


class DescriptorRecord(Record):
    """Sidecar of one cached descriptor array."""

    SCHEMA = "vidvpr.descriptors/1"
    KIND = "vidvpr descriptor cache entry"

    model: str
    fingerprint: str
    video: FileRecord
    frames: list[int]
    input_size: list[int] | None
    descriptor_dim: int
    dtype: str
    array: FileRecord
    versions: dict[str, str]
    elapsed_s: float
    backend: str = "torch"  # what ran the model (vidvpr.models.backends)


def frames_key(frames: list[int], input_size: tuple[int, int] | None) -> str:
    """Short hash of the frame list and the input size."""
    text = ",".join(map(str, frames)) + f"|{input_size}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class DescriptorCache:
    """A folder of cached descriptor arrays (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def paths(self, fingerprint: str, video_hash: str, frames: list[int],
              input_size: tuple[int, int] | None) -> tuple[Path, Path]:
        stem = f"{video_hash.removeprefix('sha256:')[:24]}-{frames_key(frames, input_size)}"
        folder = self.folder / fingerprint
        return folder / f"{stem}.npy", folder / f"{stem}.json"

    def open(self, fingerprint: str, video_hash: str, frames: list[int],
             input_size: tuple[int, int] | None) -> np.ndarray | None:
        """The cached (N, D) float16 descriptors as a read-only memory map, or None when absent, different or damaged."""
        array_path, sidecar_path = self.paths(fingerprint, video_hash, frames, input_size)
        record = DescriptorRecord.load_or_none(sidecar_path)
        if (record is None or record.fingerprint != fingerprint or record.video.hash != video_hash
                or record.frames != frames or record.input_size != (list(input_size) if input_size else None)
                or not record.array.matches(array_path, check_hash=True)):
            return None
        try:
            array = np.load(array_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if array.shape != (len(frames), record.descriptor_dim) or array.dtype != STORED_DTYPE:
            return None
        return array

    def get(self, fingerprint: str, video_hash: str, frames: list[int],
            input_size: tuple[int, int] | None) -> np.ndarray | None:
        """The cached (N, D) descriptors read into memory as float32, or None when absent, different or damaged."""
        array = self.open(fingerprint, video_hash, frames, input_size)
        return None if array is None else np.asarray(array, dtype=np.float32)

    def put(self, descriptors: np.ndarray, model_name: str, fingerprint: str, video: FileRecord, frames: list[int],
            input_size: tuple[int, int] | None, versions: dict[str, str], elapsed_s: float,
            backend: str = "torch") -> Path:
        """Store descriptors (as float16) with their sidecar; returns the array's path."""
        array_path, sidecar_path = self.paths(fingerprint, video.hash, frames, input_size)
        ensure_writable_dir(array_path.parent)
        with atomic_output(array_path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, descriptors.astype(STORED_DTYPE), allow_pickle=False)
        DescriptorRecord(model=model_name, fingerprint=fingerprint, video=video, frames=frames,
                         input_size=list(input_size) if input_size else None, descriptor_dim=descriptors.shape[1],
                         dtype=np.dtype(STORED_DTYPE).name, array=FileRecord.of(array_path),
                         versions=versions, elapsed_s=round(elapsed_s, 3), backend=backend).save(sidecar_path)
        return array_path

    @contextlib.contextmanager
    def writing(self, model_name: str, fingerprint: str, video: FileRecord, frames: list[int],
                input_size: tuple[int, int] | None, dim: int, versions: dict[str, str],
                backend: str = "torch") -> Iterator[np.ndarray]:
        """A writable float16 (len(frames), dim) memory map to fill in chunks; stored under its final name
        with its sidecar when the block completes (nothing is left when it fails)."""
        array_path, sidecar_path = self.paths(fingerprint, video.hash, frames, input_size)
        ensure_writable_dir(array_path.parent)
        started = time.perf_counter()
        with atomic_output(array_path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=STORED_DTYPE, shape=(len(frames), dim))
            yield out
            out.flush()
            del out
        DescriptorRecord(model=model_name, fingerprint=fingerprint, video=video, frames=frames,
                         input_size=list(input_size) if input_size else None, descriptor_dim=dim,
                         dtype=np.dtype(STORED_DTYPE).name, array=FileRecord.of(array_path), versions=versions,
                         elapsed_s=round(time.perf_counter() - started, 3), backend=backend).save(sidecar_path)

    def size_bytes(self) -> int:
        """Bytes the cache holds on disk."""
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file()) if self.folder.is_dir() else 0


def describe_cache_entry(record: DescriptorRecord) -> dict[str, Any]:
    """A cache entry as a results file mentions it."""
    return {"array": record.array.path, "frames": len(record.frames), "dim": record.descriptor_dim}
