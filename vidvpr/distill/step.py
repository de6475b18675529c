"""One optimiser step's arithmetic: forward passes over mixed-size images, the distillation loss,
and its exact split over chunks (`--accumulate`) and processes (torchrun).

The loss is `composite_loss` of `vidvpr.distill.losses` (λ_ICKD·ICKD + λ_MSE·MSE + triplet over
the chosen terms), written here on channel-correlation matrices instead of latent maps, because
inherited ICKD targets are the teacher's correlation matrices: ‖Gₛ − Gₜ‖_F over the batch with
G = `inter_channel_correlation(z)` is exactly `ickd_loss(zₛ, zₜ)`. As LoQI-VPR trains, ICKD and
MSE compare every image the student sees (query, positive and negatives), each with the
teacher's output on its clean counterpart; `distilled_images="queries"` compares the queries only.

A step's batch may be split into chunks, one forward and backward each, and each chunk's rows
between processes: the gradients summed over them are those of the whole batch's loss, to
rounding. MSE and triplet are means over rows, so a chunk backpropagates its share of the rows
times its mean. ICKD is one norm over the whole batch, √S with S the sum over chunks and
processes of Sᵢ = Σ(Gₛ − Gₜ)²; its gradient is Σᵢ ∇Sᵢ / (2√S), so S must be known before the
first backward: with several chunks a pass without gradients computes it first (the student's
backbone once more per step), with one chunk the processes' Sᵢ are summed after the forward.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from vidvpr.descriptors.frames import normalise_images
from vidvpr.distill.distributed import Group
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
    """What the student's forward pass over a batch of query pairs needs."""

    queries: list[int]                # pair indices
    triplets: dict[int, Triplet]      # mined, when the triplet loss is used
    targets: TeacherTargets | None    # inherited; None: run `teacher` on the clean images
    teacher: VPRModel | None
    distill_all: bool = True          # ICKD and MSE on every student image; False: on the queries only


def needs_descriptors(loss: DistillLoss) -> bool:
    """Whether the terms use the student's descriptors (MSE, triplet), not only its latent maps (ICKD)."""
    return bool(loss.terms & {"mse", "triplet"})


def student_pairs(loss: DistillLoss, inputs: StepInputs) -> tuple[list[int], int]:
    """(the pairs whose low-quality images the student describes: the queries, then with the triplet loss
    each query's positive, then their negatives; how many of them, from the first, ICKD and MSE use)."""
    pairs = list(inputs.queries)
    if "triplet" in loss.terms:
        triplets = [inputs.triplets[q] for q in inputs.queries]
        pairs += [t.positive for t in triplets] + [n for t in triplets for n in t.negatives]
    return pairs, len(pairs) if inputs.distill_all else len(inputs.queries)


def _teacher_outputs(training: TrainingSet, loss: DistillLoss, inputs: StepInputs, pairs: list[int],
                     device: torch.device) -> tuple[Tensor | None, Tensor | None]:
    """The teacher's descriptors and (with ICKD) correlations for the clean images of `pairs`' places."""
    places = [training.split(p)[1] for p in pairs]
    if inputs.targets is not None:
        return inputs.targets.batch(places, device)
    assert inputs.teacher is not None
    with torch.no_grad():
        return describe_images(inputs.teacher, training.hq_images(places), device,
                               correlations_for=len(places) if "ickd" in loss.terms else 0)


def chunk_terms(student: nn.Module, training: TrainingSet, loss: DistillLoss, inputs: StepInputs,
                device: torch.device) -> tuple[dict[str, Tensor], int]:
    """(the chosen terms of one chunk of query pairs, unweighted, with their gradients; student images).

    "ickd" is ‖Gₛ − Gₜ‖ over the chunk's distilled images, "mse" and "triplet" are the chunk's means.
    `student` is a VPRModel or a `LatentDescriptors` (possibly distributed)."""
    terms = loss.terms
    pairs, distilled = student_pairs(loss, inputs)
    v, g = describe_images(student, training.lq_images(pairs), device,
                           correlations_for=distilled if "ickd" in terms else 0, descriptors=needs_descriptors(loss))
    parts: dict[str, Tensor] = {}
    if terms & {"ickd", "mse"}:
        teacher_v, teacher_g = _teacher_outputs(training, loss, inputs, pairs[:distilled], device)
        if "ickd" in terms:
            assert g is not None and teacher_g is not None
            parts["ickd"] = ickd_from_correlations(g, teacher_g)
        if "mse" in terms:
            assert v is not None and teacher_v is not None
            parts["mse"] = descriptor_mse_loss(v[:distilled], teacher_v)
    if "triplet" in terms:
        assert v is not None
        count = len(inputs.queries)
        negatives = v[2 * count:].reshape(count, -1, v.shape[1])
        parts["triplet"] = triplet_ranking_loss(v[:count], v[count:2 * count], negatives, loss.margin)
    return parts, len(pairs)


@torch.no_grad()
def chunk_ickd_sq(student: VPRModel, training: TrainingSet, loss: DistillLoss, inputs: StepInputs,
                  device: torch.device) -> float:
    """Σ(Gₛ − Gₜ)² of one chunk without gradients: the backbone alone (no pooling)."""
    pairs, distilled = student_pairs(loss, inputs)
    _, g = describe_images(student, training.lq_images(pairs[:distilled]), device, correlations_for=distilled,
                           descriptors=False)
    _, teacher_g = _teacher_outputs(training, loss, inputs, pairs[:distilled], device)
    assert g is not None and teacher_g is not None
    return float(ickd_from_correlations(g, teacher_g)) ** 2


def term_weights(loss: DistillLoss) -> dict[str, float]:
    """Each term's weight in the loss: λ_ICKD, λ_MSE and 1 for the triplet loss."""
    return {"ickd": loss.lambda_ickd, "mse": loss.lambda_mse, "triplet": 1.0}


def weighted_total(loss: DistillLoss, terms: dict[str, Tensor]) -> Tensor:
    """λ_ICKD·ICKD + λ_MSE·MSE + triplet over the terms given."""
    weights = term_weights(loss)
    return torch.stack([weights[name] * value for name, value in terms.items()]).sum()


def batch_loss(student: nn.Module, training: TrainingSet, loss: DistillLoss, inputs: StepInputs,
               device: torch.device) -> tuple[Tensor, dict[str, Tensor], int]:
    """(weighted total, unweighted detached terms, student images) for one batch of query pairs in one pass."""
    parts, images = chunk_terms(student, training, loss, inputs, device)
    return weighted_total(loss, parts), {name: value.detach() for name, value in parts.items()}, images


def combine_chunk(loss: DistillLoss, terms: dict[str, Tensor], fraction: float, group: Group,
                  ickd_norm: float | None) -> tuple[Tensor, dict[str, float]]:
    """(what this process backpropagates for its rows of a chunk, the chunk's values over all processes).

    `terms` are this process's `chunk_terms`, on `fraction` of the step's rows. The values are the
    step-weighted means ("mse", "triplet": summed over the chunks they give the step's means) and
    "ickd_sq", the sum of squares S; `ickd_norm` is the step's ICKD, √S over the whole batch, when known
    beforehand (several chunks), else this chunk's, from the processes' S summed. The ICKD part
    backpropagated is Sᵢ / (2√S), whose gradient is this part's share of ∇√S. DistributedDataParallel
    averages gradients over the processes, so each backpropagates world size × its part.
    """
    parts = {name: value.square() if name == "ickd" else value * fraction for name, value in terms.items()}
    summed = group.sum(torch.stack([part.detach().float() for part in parts.values()]))
    reduced = {("ickd_sq" if name == "ickd" else name): float(value) for name, value in zip(parts, summed)}
    if "ickd" in parts:
        norm = ickd_norm if ickd_norm is not None else float(np.sqrt(reduced["ickd_sq"]))
        parts["ickd"] = parts["ickd"] / (2 * norm) if norm > 0 else parts["ickd"] * 0.0
    return group.world_size * weighted_total(loss, parts), reduced


def step_values(loss: DistillLoss, sums: dict[str, float]) -> dict[str, float]:
    """The step's loss and terms from its chunks' `combine_chunk` values, summed."""
    values = {("ickd" if name == "ickd_sq" else name): float(np.sqrt(value)) if name == "ickd_sq" else value
              for name, value in sums.items()}
    weights = term_weights(loss)
    return {"loss": sum(weights[name] * value for name, value in values.items()), **values}


def _borrowed_row_terms(forward: nn.Module, training: TrainingSet, loss: DistillLoss, row: int,
                        device: torch.device) -> dict[str, Tensor]:
    """Zero terms with a graph through every trained weight: a process with no rows of a chunk still
    takes part in DistributedDataParallel's gradient averaging."""
    v, g = describe_images(forward, training.lq_images([row]), device, correlations_for=int("ickd" in loss.terms),
                           descriptors=needs_descriptors(loss))
    anchor = sum(t.sum() for t in (v, g) if t is not None) * 0.0
    return {name: anchor for name in loss.terms}


def step_gradients(forward: nn.Module, student: VPRModel, training: TrainingSet, loss: DistillLoss,
                   inputs: StepInputs, chunk_size: int, device: torch.device, group: Group,
                   backward: Callable[[Tensor], None] = Tensor.backward) -> tuple[dict[str, float], int]:
    """Backpropagate the loss of the batch `inputs.queries` in chunks of `chunk_size` query pairs (this
    process's share of each), accumulating into the student's gradients exactly what one pass over the
    whole batch would give. Returns (the batch's loss and terms, this process's student images).

    `forward` is the student's `LatentDescriptors` (in DistributedDataParallel with several processes);
    `backward(objective)` runs each chunk's backward (a gradient scaler's, on a GPU)."""
    queries = inputs.queries
    chunks = [queries[i:i + chunk_size] for i in range(0, len(queries), chunk_size)]
    ickd_norm = None
    if "ickd" in loss.terms and len(chunks) > 1:
        local = sum(chunk_ickd_sq(student, training, loss, replace(inputs, queries=rows), device)
                    for rows in (group.share(chunk) for chunk in chunks) if rows)
        ickd_norm = float(np.sqrt(float(group.sum(torch.tensor([float(local)], dtype=torch.float64))[0])))
    sums: dict[str, float] = defaultdict(float)
    images = 0
    for k, chunk in enumerate(chunks):
        rows = group.share(chunk)
        with group.accumulating(forward, last=k == len(chunks) - 1):
            if rows:
                terms, count = chunk_terms(forward, training, loss, replace(inputs, queries=rows), device)
            else:  # fewer rows than processes
                terms, count = _borrowed_row_terms(forward, training, loss, chunk[0], device), 0
            objective, values = combine_chunk(loss, terms, len(rows) / len(queries), group, ickd_norm)
            backward(objective)
        images += count
        for name, value in values.items():
            sums[name] += value
    return step_values(loss, sums), images
