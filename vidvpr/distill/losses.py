"""Distillation losses for low-quality queries, as pure torch functions (each usable alone).

After Yang, Jin et al., "Distillation Improves Visual Place Recognition for Low Quality Images":
a student that sees the low-quality frame learns from a teacher that sees the high-quality one
through (1) ICKD, matching the inter-channel correlation of their latent maps, (2) MSE between
their global descriptors, and (3) NetVLAD's triplet ranking loss on the student's descriptors.

None of these detach anything: run the teacher under ``torch.no_grad()`` (or pass detached
tensors) so that only the student is trained.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from vidvpr.core.errors import BadInput
from vidvpr.distill.config import DEFAULT_MARGIN

LOSS_TERMS = ("ickd", "mse", "triplet")
DEFAULT_LAMBDA_ICKD = 1.0
DEFAULT_LAMBDA_MSE = 1.0


def inter_channel_correlation(z: Tensor) -> Tensor:
    """Each sample's C×C channel correlation (B, C, C) of a latent map `z` (B, C, h, w).

    Each channel's flattened h·w response is L2-normalised, the Gram matrix z zᵀ formed, and each
    of its rows L2-normalised; the result no longer depends on h and w, so maps of different
    spatial sizes (student on a smaller frame) are comparable.
    """
    if z.dim() != 4:
        raise ValueError(f"latent map must be (B, C, h, w), got shape {tuple(z.shape)}")
    channels = F.normalize(z.flatten(2), p=2, dim=2)
    correlation = torch.bmm(channels, channels.transpose(1, 2))
    return F.normalize(correlation, p=2, dim=2)


def ickd_loss(student_z: Tensor, teacher_z: Tensor) -> Tensor:
    """Frobenius norm of the difference of the students' and teachers' correlation matrices over the batch.

    sqrt(Σ over all B·C·C entries of (Gₛ − Gₜ)²): not squared and not averaged, as in the paper.
    Spatial sizes may differ; batch size and channel count must match.
    """
    if student_z.dim() != 4 or teacher_z.dim() != 4:
        raise ValueError(f"latent maps must be (B, C, h, w), got {tuple(student_z.shape)} and {tuple(teacher_z.shape)}")
    if student_z.shape[:2] != teacher_z.shape[:2]:
        raise ValueError(f"student and teacher latent maps need the same batch size and channel count, "
                         f"got {tuple(student_z.shape[:2])} and {tuple(teacher_z.shape[:2])}")
    difference = inter_channel_correlation(student_z) - inter_channel_correlation(teacher_z)
    return torch.linalg.vector_norm(difference)  # its gradient at 0 is defined as 0, not NaN


def descriptor_mse_loss(student_v: Tensor, teacher_v: Tensor) -> Tensor:
    """Mean squared error between student and teacher descriptors (B, D), averaged over all B·D elements."""
    if student_v.shape != teacher_v.shape:
        raise ValueError(f"student and teacher descriptors differ in shape: {tuple(student_v.shape)} "
                         f"and {tuple(teacher_v.shape)}")
    return F.mse_loss(student_v, teacher_v, reduction="mean")


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise BadInput(f"triplet margin must be a non-negative number, got {margin!r}")
    return float(margin)


def triplet_ranking_loss(
    query: Tensor, positive: Tensor, negatives: Tensor, margin: float = DEFAULT_MARGIN
) -> Tensor:
    """NetVLAD's weakly supervised ranking loss, averaged over the batch.

    Per query: Σₙ max(0, m + d(q, p)² − d(q, n)²) with d the Euclidean distance, summed over its
    N negatives; the result is the mean of those per-query sums over the B queries. (pytorch-NetVlad
    instead uses unsquared distances with margin √m and divides by the total number of negatives.)
    `query` and `positive` are (B, D), `negatives` (B, N, D).
    """
    margin = _check_margin(margin)
    if query.dim() != 2 or positive.shape != query.shape:
        raise ValueError(f"query and positive must both be (B, D), "
                         f"got {tuple(query.shape)} and {tuple(positive.shape)}")
    if negatives.dim() != 3 or negatives.shape[0] != query.shape[0] or negatives.shape[2] != query.shape[1]:
        raise ValueError(f"negatives must be (B, N, D) = ({query.shape[0]}, N, {query.shape[1]}), "
                         f"got {tuple(negatives.shape)}")
    positive_sq = (query - positive).pow(2).sum(dim=1)  # (B,)
    negative_sq = (query.unsqueeze(1) - negatives).pow(2).sum(dim=2)  # (B, N)
    violations = torch.clamp(margin + positive_sq.unsqueeze(1) - negative_sq, min=0)
    return violations.sum(dim=1).mean()


def select_positive(query_desc: Tensor, candidate_descs: Tensor) -> int:
    """Index of the candidate whose descriptor is nearest the query's (lowest index on ties).

    NetVLAD's "best positive": the caller passes the descriptors (D,) and (P, D) of the database
    images within the positive radius; the nearest one in descriptor space is used for the triplet.
    """
    if query_desc.dim() != 1 or candidate_descs.dim() != 2 or candidate_descs.shape[1] != query_desc.shape[0]:
        raise ValueError(f"need a (D,) query and (P, D) candidates, got {tuple(query_desc.shape)} "
                         f"and {tuple(candidate_descs.shape)}")
    if candidate_descs.shape[0] == 0:
        raise ValueError("no positive candidates to choose from")
    with torch.no_grad():
        squared = (candidate_descs - query_desc.unsqueeze(0)).pow(2).sum(dim=1)
        return int(torch.argmin(squared).item())


def check_loss_terms(terms: Iterable[str]) -> frozenset[str]:
    """The terms as a frozenset, or BadInput when empty or when one is not ickd, mse or triplet.

    A string is parsed as a comma-separated list (not split into characters).
    """
    if isinstance(terms, str):
        return parse_loss_terms(terms)
    chosen = frozenset(terms)
    unknown = sorted(chosen - set(LOSS_TERMS))
    if unknown:
        raise BadInput(f"Unknown loss term {unknown[0]!r}. Use ickd, mse and/or triplet.")
    if not chosen:
        raise BadInput("no loss term given. Use ickd, mse and/or triplet, e.g. 'ickd,mse,triplet'.")
    return chosen


def parse_loss_terms(text: str) -> frozenset[str]:
    """'ickd,mse,triplet' (comma-separated, any order and case) -> frozenset of terms; BadInput if unknown or
    empty, or for an empty item among others ('ickd,,mse', 'mse,'): a typo, as `vidvpr eval` takes '5,,10'."""
    parts = [part.strip().lower() for part in text.split(",")]
    if "" in parts and any(parts):
        raise BadInput(f"--loss has an empty item in {text!r} (two commas in a row, or one at an end)")
    return check_loss_terms(part for part in parts if part)


def _check_lambda(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadInput(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _missing(term: str, **inputs: Tensor | None) -> ValueError:
    """The error for a chosen term called without some of its inputs."""
    missing = [name for name, value in inputs.items() if value is None]
    return ValueError(f"loss term {term!r} needs {', '.join(missing)}")


def composite_loss(
    terms: Iterable[str],
    *,
    lambda_ickd: float = DEFAULT_LAMBDA_ICKD,
    lambda_mse: float = DEFAULT_LAMBDA_MSE,
    margin: float = DEFAULT_MARGIN,
    student_z: Tensor | None = None,
    teacher_z: Tensor | None = None,
    student_v: Tensor | None = None,
    teacher_v: Tensor | None = None,
    positive_v: Tensor | None = None,
    negatives_v: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """λ_ICKD·ICKD + λ_MSE·MSE + triplet over the chosen `terms`; returns (total, unweighted terms).

    Only the inputs of the chosen terms are needed: latent maps `student_z`/`teacher_z` for ickd,
    descriptors `student_v`/`teacher_v` for mse, and `student_v` as the triplet's query with
    `positive_v` (B, D) and `negatives_v` (B, N, D) for triplet. The dict holds each chosen term,
    unweighted and detached, for logging.
    """
    chosen = check_loss_terms(terms)
    lambda_ickd = _check_lambda("lambda_ickd", lambda_ickd)
    lambda_mse = _check_lambda("lambda_mse", lambda_mse)
    parts: dict[str, Tensor] = {}
    weighted: list[Tensor] = []
    if "ickd" in chosen:
        if student_z is None or teacher_z is None:
            raise _missing("ickd", student_z=student_z, teacher_z=teacher_z)
        parts["ickd"] = ickd_loss(student_z, teacher_z)
        weighted.append(lambda_ickd * parts["ickd"])
    if "mse" in chosen:
        if student_v is None or teacher_v is None:
            raise _missing("mse", student_v=student_v, teacher_v=teacher_v)
        parts["mse"] = descriptor_mse_loss(student_v, teacher_v)
        weighted.append(lambda_mse * parts["mse"])
    if "triplet" in chosen:
        if student_v is None or positive_v is None or negatives_v is None:
            raise _missing("triplet", student_v=student_v, positive_v=positive_v, negatives_v=negatives_v)
        parts["triplet"] = triplet_ranking_loss(student_v, positive_v, negatives_v, margin)
        weighted.append(parts["triplet"])
    total = torch.stack(weighted).sum()
    return total, {name: value.detach() for name, value in parts.items()}


@dataclass(frozen=True)
class DistillLoss:
    """A chosen combination of loss terms and their weights, validated once; call it like `composite_loss`."""

    terms: frozenset[str] = field(default_factory=lambda: frozenset(LOSS_TERMS))
    lambda_ickd: float = DEFAULT_LAMBDA_ICKD
    lambda_mse: float = DEFAULT_LAMBDA_MSE
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", check_loss_terms(self.terms))
        object.__setattr__(self, "lambda_ickd", _check_lambda("lambda_ickd", self.lambda_ickd))
        object.__setattr__(self, "lambda_mse", _check_lambda("lambda_mse", self.lambda_mse))
        object.__setattr__(self, "margin", _check_margin(self.margin))

    @classmethod
    def from_string(cls, terms: str, **weights: float) -> DistillLoss:
        """From 'ickd,mse,triplet' and optional lambda_ickd / lambda_mse / margin."""
        return cls(terms=parse_loss_terms(terms), **weights)

    def __call__(
        self,
        *,
        student_z: Tensor | None = None,
        teacher_z: Tensor | None = None,
        student_v: Tensor | None = None,
        teacher_v: Tensor | None = None,
        positive_v: Tensor | None = None,
        negatives_v: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """(total, unweighted terms) for this combination; see `composite_loss` for the inputs."""
        return composite_loss(
            self.terms, lambda_ickd=self.lambda_ickd, lambda_mse=self.lambda_mse, margin=self.margin,
            student_z=student_z, teacher_z=teacher_z, student_v=student_v, teacher_v=teacher_v,
            positive_v=positive_v, negatives_v=negatives_v,
        )
