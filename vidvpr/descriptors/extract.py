"""Descriptors of the frames a manifest lists from one video: from the cache, or computed.

`describe_video` is the unit of work of the descriptor stage: one (model, video, frames). A
cached result costs no forward pass; otherwise frames are decoded in a background thread while
the model runs under `torch.inference_mode()` (mixed precision on a GPU).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidvpr.core.errors import BadInput
from vidvpr.core.records import FileRecord
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.frames import frame_batches
from vidvpr.models.initialise import model_versions
from vidvpr.models.model import VPRModel

DEVICES = ("cpu", "cuda", "mps")


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


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Mixed precision on GPUs; full float32 on the CPU (where float16 is slower, not faster)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def describe_video(model: VPRModel, video: Path, frames: Sequence[int], cache: DescriptorCache,
                   video_record: FileRecord | None = None, batch_size: int = 16,
                   device: torch.device | None = None, input_size: tuple[int, int] | None = None,
                   counter: ForwardCounter | None = None,
                   on_images: Callable[[int], None] | None = None) -> np.ndarray:
    """(len(frames), D) float32 descriptors of `frames` of `video`, in the order given."""
    if batch_size < 1:
        raise BadInput(f"--batch-size must be at least 1, got {batch_size}")
    wanted = sorted(set(int(f) for f in frames))
    record = video_record or FileRecord.of(video)
    cached = cache.get(model.fingerprint, record.hash, wanted, input_size)
    if cached is None:
        started = time.perf_counter()
        device = device or torch.device("cpu")
        computed = np.empty((len(wanted), model.descriptor_dim), np.float32)
        row = {frame: i for i, frame in enumerate(wanted)}
        with torch.inference_mode(), _autocast(device):
            for indices, batch in frame_batches(video, wanted, batch_size, input_size):
                out = model(batch.to(device, non_blocking=True)).float().cpu().numpy()
                computed[[row[i] for i in indices]] = out
                if counter is not None:
                    counter.images += len(indices)
                    counter.batches += 1
                if on_images:
                    on_images(len(indices))
        cache.put(computed, model.name, model.fingerprint, record, wanted, input_size, model_versions(),
                  time.perf_counter() - started)
        cached = cache.get(model.fingerprint, record.hash, wanted, input_size)
        assert cached is not None
    elif on_images:
        on_images(len(wanted))
    lookup = {frame: i for i, frame in enumerate(wanted)}
    return cached[[lookup[int(f)] for f in frames]]
