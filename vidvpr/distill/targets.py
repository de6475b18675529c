"""Inherited targets (NocPlace's "inherited knowledge transfer"): the teacher's outputs on the clean
training images, computed once and read back instead of running the teacher at every step.

Both targets live in the descriptor cache (`vidvpr.descriptors.cache`) under its keying: model
fingerprint, content hash of the video (or image-folder listing), frames and input size.
Descriptors are stored under the teacher's own fingerprint, so they are the very entries
`vidvpr eval` reads and writes for the reference cell's database. ICKD targets, each image's
C×C channel correlation (`inter_channel_correlation` of the teacher's latent map), are stored
flattened to C·C columns under a fingerprint derived from the teacher's. Both are float16 on disk:
the rounding (< 1e-3 per entry of unit-norm rows) is far below the student's differences.

On an ONNX backend (`vidvpr.models.backends`) both come from one exported graph of the teacher
with two outputs (`TargetsHead`), and are cached under the keys plus the backend's name, as
`vidvpr eval` keys that backend's descriptors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vidvpr.core.provenance import params_hash
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.extract import ForwardCounter
from vidvpr.distill.losses import inter_channel_correlation
from vidvpr.distill.pairs import HqSource, TrainingSet
from vidvpr.models.graphs import DESCRIPTORS, GraphHead
from vidvpr.models.inference import Inference
from vidvpr.models.model import VPRModel

CORRELATION_TARGET_VERSION = 1


def correlation_fingerprint(teacher: VPRModel) -> str:
    """Cache key of the teacher's ICKD correlation matrices."""
    return params_hash({"teacher": teacher.fingerprint, "target": "ickd-channel-correlation",
                        "version": CORRELATION_TARGET_VERSION})


def teacher_outputs(teacher: VPRModel, images: Tensor) -> tuple[Tensor, Tensor]:
    """(descriptors (B, D), channel correlations (B, C, C)) of a clean batch, from one forward pass."""
    maps = teacher.features(images)
    descriptors = teacher.pool(maps)
    if teacher.whiten is not None:
        descriptors = teacher.whiten(descriptors)
    return descriptors, inter_channel_correlation(maps)


class TargetsModule(nn.Module):
    """The teacher's targets as one module: (descriptors (B, D), flattened correlations (B, C·C)) or
    the descriptors alone (the graph an ONNX backend runs)."""

    def __init__(self, teacher: VPRModel, correlations: bool) -> None:
        super().__init__()
        self.teacher = teacher
        self.correlations = correlations

    def forward(self, images: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        descriptors, matrices = teacher_outputs(self.teacher, images)
        return (descriptors, matrices.flatten(1)) if self.correlations else descriptors


def targets_head(teacher: VPRModel, correlations: bool) -> GraphHead:
    """The graph head of the teacher's targets: the descriptors graph, or one with both outputs."""
    if not correlations:
        return GraphHead(DESCRIPTORS, teacher, (DESCRIPTORS,))
    return GraphHead(f"ickd-targets-v{CORRELATION_TARGET_VERSION}", TargetsModule(teacher, True),
                     (DESCRIPTORS, "correlations"))


@dataclass
class TeacherTargets:
    """Per place: the teacher's descriptor and (with ICKD) correlation matrix of the clean image."""

    descriptors: Tensor          # (places, D) float32
    correlations: Tensor | None  # (places, C, C) float16 in memory, float32 per batch

    def batch(self, places: list[int], device: torch.device) -> tuple[Tensor, Tensor | None]:
        index = torch.as_tensor(places, dtype=torch.int64)
        descriptors = self.descriptors[index].to(device)
        correlations = None if self.correlations is None else self.correlations[index].float().to(device)
        return descriptors, correlations


def _sorted_frames(source: HqSource) -> list[int]:
    return sorted(set(source.frames))  # as `describe_video` keys the cache


def inherited_targets(teacher: VPRModel, training: TrainingSet, cache: DescriptorCache, correlations: bool,
                      batch_size: int, device: torch.device,
                      on_images: Callable[[int], None] | None = None, backend: str = "torch",
                      counter: ForwardCounter | None = None) -> TeacherTargets:
    """The teacher's targets for every place: read from `cache`, or computed once (on `backend`,
    already resolved) and stored there; `counter` counts the images put through the teacher."""
    channels = teacher.pool.dim
    descriptors = torch.empty((len(training.places), teacher.descriptor_dim), dtype=torch.float32)
    matrices = torch.empty((len(training.places), channels, channels), dtype=torch.float16) if correlations else None
    runner = Inference(teacher, backend, cache.folder, head=targets_head(teacher, correlations))
    suffix = "" if backend == "torch" else f"-{backend}"
    descriptor_key, correlation_key = runner.cache_key, correlation_fingerprint(teacher) + suffix
    for source in training.hq_sources():
        frames = _sorted_frames(source)
        got_v = cache.get(descriptor_key, source.record.hash, frames, None)
        got_g = cache.get(correlation_key, source.record.hash, frames, None) if correlations else None
        if got_v is None or (correlations and got_g is None):
            got_v, got_g = _compute(runner, training, source, frames, cache, (descriptor_key, correlation_key),
                                    correlations, batch_size, device, on_images, counter)
        elif on_images:
            on_images(len(frames))
        row = {frame: k for k, frame in enumerate(frames)}
        order = [row[f] for f in source.frames]
        descriptors[source.places] = torch.from_numpy(got_v[order])
        if matrices is not None and got_g is not None:
            matrices[source.places] = torch.from_numpy(got_g[order]).reshape(-1, channels, channels).half()
    return TeacherTargets(descriptors, matrices)


def _teacher_batch(runner: Inference, batch: Tensor, device: torch.device) -> list[np.ndarray]:
    """The targets of one batch: from the exported graph, or the teacher itself in full precision
    on every device (as the targets always were on torch)."""
    if runner.backend != "torch":
        return runner.run(batch)
    with torch.inference_mode():
        v, g = teacher_outputs(runner.model, batch.to(device))
    return [v.float().cpu().numpy(), g.float().cpu().reshape(len(batch), -1).numpy()]


def _compute(runner: Inference, training: TrainingSet, source: HqSource, frames: list[int], cache: DescriptorCache,
             keys: tuple[str, str], correlations: bool, batch_size: int, device: torch.device,
             on_images: Callable[[int], None] | None,
             counter: ForwardCounter | None) -> tuple[np.ndarray, np.ndarray | None]:
    started = time.perf_counter()
    teacher, (descriptor_key, correlation_key) = runner.model, keys
    row = {frame: k for k, frame in enumerate(frames)}
    frame_of = dict(zip(source.places, source.frames))
    channels = teacher.pool.dim
    out_v = np.empty((len(frames), teacher.descriptor_dim), np.float32)
    out_g = np.empty((len(frames), channels * channels), np.float32) if correlations else None
    for places, batch in training.hq_batches(source, batch_size):
        outputs = _teacher_batch(runner, batch, device)
        rows = [row[frame_of[p]] for p in places]
        out_v[rows] = outputs[0]
        if out_g is not None:
            out_g[rows] = outputs[1].reshape(len(places), -1)
        if counter is not None:
            counter.images += len(places)
            counter.batches += 1
        if on_images:
            on_images(len(places))
    elapsed = time.perf_counter() - started
    versions = runner.versions()
    cache.put(out_v, teacher.name, descriptor_key, source.record, frames, None, versions, elapsed, runner.backend)
    if out_g is not None:
        cache.put(out_g, f"{teacher.name} ickd correlations", correlation_key, source.record, frames, None,
                  versions, elapsed, runner.backend)
    stored_v = cache.get(descriptor_key, source.record.hash, frames, None)
    stored_g = cache.get(correlation_key, source.record.hash, frames, None) if correlations else None
    assert stored_v is not None and (stored_g is not None or not correlations)
    return stored_v, stored_g  # as read back (float16-rounded), so a cached rerun trains on the same values
