"""Frames as model input: decode the listed frames of a video and batch them, decoding overlapped
with the model's compute (a producer thread; libav and numpy release the GIL).

Images are RGB, normalised with the ImageNet mean and standard deviation, at the video's own size
or resized to a given one (`--input-size reference` scales cell frames back to the view's size).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from vidvpr.core.threads import prefetch
from vidvpr.media.decode import decode_selected

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
PREFETCH_BATCHES = 2


def normalise_images(rgb: Sequence[np.ndarray], size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, 3, H, W) float32 tensor from RGB uint8 images, ImageNet-normalised; resized to `size` (W, H)
    with area/bicubic interpolation when given."""
    frames = []
    for image in rgb:
        if size is not None and (image.shape[1], image.shape[0]) != tuple(size):
            shrinking = size[0] < image.shape[1]
            image = cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
        frames.append(image)
    batch = np.stack(frames).astype(np.float32) / 255.0
    batch = (batch - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


def _batches(video: Path, wanted: list[int], batch_size: int,
             size: tuple[int, int] | None) -> Iterator[tuple[list[int], torch.Tensor]]:
    indices: list[int] = []
    images: list[np.ndarray] = []
    for index, rgb in decode_selected(video, wanted):
        indices.append(index)
        images.append(rgb)
        if len(indices) == batch_size:
            yield indices, normalise_images(images, size)
            indices, images = [], []
    if indices:
        yield indices, normalise_images(images, size)


def frame_batches(video: Path, indices: Sequence[int], batch_size: int,
                  size: tuple[int, int] | None = None) -> Iterator[tuple[list[int], torch.Tensor]]:
    """(frame indices, normalised batch) for the sorted distinct `indices`, decoded and normalised
    in a background thread a few batches ahead, so decoding overlaps the consumer's forward passes.

    Errors in the decoder (a corrupt or short video: BadInput) are raised in the consumer.
    """
    wanted = sorted(set(int(i) for i in indices))
    return prefetch(_batches(video, wanted, batch_size, size), PREFETCH_BATCHES, "vidvpr-frames")
