"""One training step's arithmetic: forward passes over mixed-size images and the distillation loss.

The loss is `composite_loss` of `vidvpr.distill.losses` (λ_ICKD·ICKD + λ_MSE·MSE + triplet over
the chosen terms), written here on channel-correlation matrices instead of latent maps, because
inherited ICKD targets are the teacher's correlation matrices: ‖Gₛ − Gₜ‖_F over the batch with
G = `inter_channel_correlation(z)` is exactly `ickd_loss(zₛ, zₜ)`.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vidvpr.descriptors.frames import normalise_images
from vidvpr.distill.losses import DistillLoss, descriptor_mse_loss, inter_channel_correlation, triplet_ranking_loss
from vidvpr.distill.mining import Triplet
from vidvpr.distill.pairs import TrainingSet
from vidvpr.distill.targets import TeacherTargets
from vidvpr.models.model import VPRModel


def autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Mixed precision on a GPU; float32 elsewhere."""
    return torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else contextlib.nullcontext()


class LatentDescriptors(nn.Module):
    """A VPR model on several batches in one call: each batch's latent map and descriptors.

    One call per training batch whatever its image sizes, so that DistributedDataParallel sees
    one forward per backward; without `descriptors` the pooling is skipped (ICKD alone), so that
    no trained weight is left out of a graph that DistributedDataParallel expects gradients from.
    """

    def __init__(self, model: VPRModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batches: list[Tensor], descriptors: bool = True) -> list[tuple[Tensor, Tensor | None]]:
        out: list[tuple[Tensor, Tensor | None]] = []
        for batch in batches:
            maps = self.model.features(batch)
            pooled = None
            if descriptors:
                pooled = self.model.pool(maps)
                pooled = self.model.whiten(pooled) if self.model.whiten is not None else pooled
            out.append((maps, pooled))
        return out


def describe_images(model: nn.Module, images: Sequence[np.ndarray], device: torch.device,
                    correlations_for: int = 0, descriptors: bool = True) -> tuple[Tensor | None, Tensor | None]:
    """Descriptors (N, D) of RGB `images` of any sizes (one batch per size), in order (None without
    `descriptors`), and the channel correlations (M, C, C) of the first `correlations_for` of them
    (None when 0). `model` is a VPRModel or a `LatentDescriptors` (possibly distributed)."""
    forward = LatentDescriptors(model) if isinstance(model, VPRModel) else model
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, image in enumerate(images):
        groups[image.shape].append(i)
    members_of = list(groups.values())
    vectors: list[Tensor | None] = [None] * len(images)
    correlations: list[Tensor | None] = [None] * correlations_for
    with autocast(device):
        outputs = forward([normalise_images([images[i] for i in members]).to(device) for members in members_of],
                          descriptors=descriptors)
        for members, (maps, out) in zip(members_of, outputs):
            for k, i in enumerate(members):
                vectors[i] = None if out is None else out[k].float()
            wanted = [k for k, i in enumerate(members) if i < correlations_for]
            if wanted:
                matrices = inter_channel_correlation(maps[wanted].float())
                for k, matrix in zip(wanted, matrices):
                    correlations[members[k]] = matrix
    stacked_g = torch.stack(correlations) if correlations_for else None  # type: ignore[arg-type]
    return (torch.stack(vectors) if descriptors else None), stacked_g  # type: ignore[arg-type]


def ickd_from_correlations(student_g: Tensor, teacher_g: Tensor) -> Tensor:
    """`ickd_loss` given both sides' correlation matrices (B, C, C): the Frobenius norm of the difference."""
    return torch.linalg.vector_norm(student_g - teacher_g)


@dataclass
class StepInputs:
    """What one forward pass of the student needs."""

    queries: list[int]                # pair indices
    triplets: dict[int, Triplet]      # mined, when the triplet loss is used
    targets: TeacherTargets | None    # inherited; None: run `teacher` on the clean images
    teacher: VPRModel | None


def needs_descriptors(loss: DistillLoss) -> bool:
    """Whether the terms use the student's descriptors (MSE, triplet), not only its latent maps (ICKD)."""
    return bool(loss.terms & {"mse", "triplet"})


def batch_terms(student: nn.Module, training: TrainingSet, loss: DistillLoss, inputs: StepInputs,
                device: torch.device) -> tuple[dict[str, Tensor], int]:
    """(the chosen terms, unweighted, with their gradients; student images) for one batch of query pairs.
    `student` is a VPRModel or a `LatentDescriptors` (possibly distributed)."""
    terms = loss.terms
    queries = inputs.queries
    images = training.lq_images(queries)
    if "triplet" in terms:
        triplets = [inputs.triplets[q] for q in queries]
        images += training.lq_images([t.positive for t in triplets])
        images += training.lq_images([n for t in triplets for n in t.negatives])
    v, g = describe_images(student, images, device, correlations_for=len(queries) if "ickd" in terms else 0,
                           descriptors=needs_descriptors(loss))
    teacher_v = teacher_g = None
    if terms & {"ickd", "mse"}:
        places = [training.split(q)[1] for q in queries]
        if inputs.targets is not None:
            teacher_v, teacher_g = inputs.targets.batch(places, device)
        else:
            assert inputs.teacher is not None
            with torch.no_grad():
                teacher_v, teacher_g = describe_images(inputs.teacher, training.hq_images(places), device,
                                                       correlations_for=len(places) if "ickd" in terms else 0)
    parts: dict[str, Tensor] = {}
    if "ickd" in terms:
        assert g is not None and teacher_g is not None
        parts["ickd"] = ickd_from_correlations(g, teacher_g)
    if "mse" in terms:
        assert v is not None and teacher_v is not None
        parts["mse"] = descriptor_mse_loss(v[:len(queries)], teacher_v)
    if "triplet" in terms:
        assert v is not None
        count = len(queries)
        negatives = v[2 * count:].reshape(count, -1, v.shape[1])
        parts["triplet"] = triplet_ranking_loss(v[:count], v[count:2 * count], negatives, loss.margin)
    return parts, len(images)


def weighted_total(loss: DistillLoss, terms: dict[str, Tensor]) -> Tensor:
    """λ_ICKD·ICKD + λ_MSE·MSE + triplet over the terms given."""
    weights = {"ickd": loss.lambda_ickd, "mse": loss.lambda_mse, "triplet": 1.0}
    return torch.stack([weights[name] * value for name, value in terms.items()]).sum()


def batch_loss(student: nn.Module, training: TrainingSet, loss: DistillLoss, inputs: StepInputs,
               device: torch.device) -> tuple[Tensor, dict[str, Tensor], int]:
    """(weighted total, unweighted detached terms, student images) for one batch of query pairs."""
    parts, images = batch_terms(student, training, loss, inputs, device)
    return weighted_total(loss, parts), {name: value.detach() for name, value in parts.items()}, images
