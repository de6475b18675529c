"""Descriptors of the frames a manifest lists from one video: from the cache, or computed.

`describe_video` is the unit of work of the descriptor stage: one (model, video, frames). A
cached result costs no forward pass; otherwise frames are decoded in a background thread while
the model runs on its inference backend (`vidvpr.models.inference`: torch under
`torch.inference_mode()`, mixed precision on a GPU, or an ONNX runtime), and each batch's
descriptors go straight into the cache file, keyed by the model's fingerprint and backend.
`stored_descriptors` hands out the cache entry as a memory map (a database larger than memory),
`describe_video` a float32 copy in the order asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidvpr.core.errors import BadInput
from vidvpr.core.records import FileRecord
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.frames import frame_batches
from vidvpr.models.backends import DEVICES
from vidvpr.models.inference import Inference, as_inference
from vidvpr.models.model import VPRModel


@dataclass
class ForwardCounter:
    """How many images went through the model (a cached rerun makes none)."""

    images: int = 0
    batches: int = 0


def resolve_device(name: str) -> torch.device:
    """A torch device by name, or BadInput when it is unknown or not available here."""
    if name not in DEVICES:
        raise BadInput(f"Unknown --device '{name}'. Use {', '.join(DEVICES)}.")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda: no CUDA GPU is available to this torch build")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BadInput("--device mps: Apple's MPS is not available here")
    return torch.device(name)


def stored_descriptors(model: VPRModel | Inference, video: Path, frames: Sequence[int], cache: DescriptorCache,
                       video_record: FileRecord | None = None, batch_size: int = 16,
                       device: torch.device | None = None, input_size: tuple[int, int] | None = None,
                       counter: ForwardCounter | None = None,
                       on_images: Callable[[int], None] | None = None) -> np.ndarray:
    """The cache's read-only float16 memory map of `frames` of `video` (the distinct frames in
    ascending order, see `stored_rows`); computed first when absent, each batch written to the
    cache file as it comes, so neither side holds all of the video's descriptors in memory."""
    if batch_size < 1:
        raise BadInput(f"--batch-size must be at least 1, got {batch_size}")
    wanted = sorted({int(f) for f in frames})
    record = video_record or FileRecord.of(video)
    inference = as_inference(model)
    stored = cache.open(inference.cache_key, record.hash, wanted, input_size)
    if stored is not None:
        if on_images:
            on_images(len(wanted))
        return stored
    device = device or torch.device("cpu")
    row = {frame: i for i, frame in enumerate(wanted)}
    with cache.writing(inference.name, inference.cache_key, record, wanted, input_size, inference.descriptor_dim,
                       inference.versions(), inference.backend) as out:
        for indices, batch in frame_batches(video, wanted, batch_size, input_size):
            out[[row[i] for i in indices]] = inference.describe(batch, device)
            if counter is not None:
                counter.images += len(indices)
                counter.batches += 1
            if on_images:
                on_images(len(indices))
    stored = cache.open(inference.cache_key, record.hash, wanted, input_size)
    assert stored is not None, "a descriptor cache entry just written cannot be read back"
    return stored


def stored_rows(frames: Sequence[int]) -> list[int]:
    """Where each of `frames` stands in `stored_descriptors`' array (its distinct frames, ascending)."""
    position = {frame: i for i, frame in enumerate(sorted({int(f) for f in frames}))}
    return [position[int(f)] for f in frames]


def describe_video(model: VPRModel | Inference, video: Path, frames: Sequence[int], cache: DescriptorCache,
                   video_record: FileRecord | None = None, batch_size: int = 16,
                   device: torch.device | None = None, input_size: tuple[int, int] | None = None,
                   counter: ForwardCounter | None = None,
                   on_images: Callable[[int], None] | None = None) -> np.ndarray:
    """(len(frames), D) float32 descriptors of `frames` of `video`, in the order given (in memory;
    see `stored_descriptors` for a memory map)."""
    stored = stored_descriptors(model, video, frames, cache, video_record, batch_size, device, input_size, counter,
                                on_images)
    return np.asarray(stored[stored_rows(frames)], dtype=np.float32)
