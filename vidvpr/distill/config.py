"""Every `vidvpr distill` option with its default written once, and the records a run writes.

Defaults follow the paper's regime: one pass over the training pairs (`epochs=1`) with a small
Adam learning rate that decays exponentially, step by step, to `lr_decay` of itself over each
epoch. The rate, 1e-4, was chosen on the training objective alone: one pass over the demo's
database traversal (171 steps, ICKD + MSE, QP 45) lowered the descriptor MSE by 2% at 1e-5 and
by 20% at 1e-4 (ICKD by 15% and 40%).

The loss weights put the three terms on one footing: at the start of training (student =
teacher, offline EfficientNet-Lite0-NetVLAD, demo database traversal, student on the QP 45 cell,
batch 8, 2 negatives, early layers frozen) the gradient norms of the unweighted terms were
ICKD 52, MSE 2.0e-4 and triplet 0.86 (ICKD is a Frobenius norm over B·C·C entries, MSE an
average over D = 7168 elements of unit vectors), and λ_ICKD = 0.02 and λ_MSE = 4000 made each
term pull about as hard as the triplet loss. Since ICKD and MSE compare every image of the
batch (as LoQI-VPR) and negatives begin at the evaluation radius, the same measurement gives
ICKD 102, MSE 2.2e-4 and triplet 1.84, i.e. 2.0, 0.9 and 1.8 once weighted: still within a
factor of about two of each other, so the weights were left as they were (queries only: 53,
2.6e-4, 1.84; `python tools/distill_term_norms.py DEMO/manifest --enc DEMO/enc --lq
320x176/qp45`). (LoQI-VPR's code scales its terms by 1/1000, 100·B and 1/(10·B·P·N) for the
same purpose.) With a single term the weight is immaterial to Adam.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from vidvpr.core.errors import BadInput
from vidvpr.core.records import FileRecord, Record
from vidvpr.evaluate.config import DEFAULT_MODEL
from vidvpr.models.backends import BACKEND_CHOICES, DEFAULT_BACKEND

if TYPE_CHECKING:  # torch is imported only when training starts, never by `vidvpr distill --help`
    from vidvpr.distill.losses import DistillLoss

DEFAULT_MARGIN = 0.1              # NetVLAD's m, on squared Euclidean distances
DEFAULT_NEGATIVES = 10            # NetVLAD's nNeg
# NetVLAD (Pittsburgh) trains with positives within 10 m and negatives beyond 25 m, the radius it
# evaluates at: the triplet radii default to these fractions of the radius the data is evaluated at
# (a manifest's radius_m; FOLDER_REFERENCE_RADIUS_M for image folders), and between the two lies a
# neutral zone of places that are neither.
POSITIVE_RADIUS_FRACTION = 10 / 25
NEGATIVE_RADIUS_FRACTION = 25 / 25
FOLDER_REFERENCE_RADIUS_M = 25.0  # image folders carry no radius: the VPR benchmarks' 25 m
DISTILLED_IMAGES = ("all", "queries")  # which student images ICKD and MSE compare with the teacher
FREEZE_CHOICES = ("early", "none")  # what stays fixed in the student (see distill.teacher.make_student)
DEFAULT_LOSS = "ickd,mse,triplet"
DEFAULT_LAMBDA_ICKD = 0.02
DEFAULT_LAMBDA_MSE = 4000.0


@dataclass(frozen=True)
class DistillConfig:
    """Every `vidvpr distill` option (see the module docstring for the defaults)."""

    train: Path
    lq: tuple[str, ...]
    teacher: str = DEFAULT_MODEL
    enc_dir: Path | None = None          # encode folder of the `--lq` cells; None: MANIFEST/../enc
    root: Path | None = None             # dataset root; None: the manifest's
    loss: str = DEFAULT_LOSS
    lambda_ickd: float = DEFAULT_LAMBDA_ICKD
    lambda_mse: float = DEFAULT_LAMBDA_MSE
    margin: float = DEFAULT_MARGIN
    negatives: int = DEFAULT_NEGATIVES
    positive_radius_m: float | None = None  # None: see `triplet_radii`
    negative_radius_m: float | None = None
    distilled_images: str = "all"        # all: every image of the batch, as LoQI-VPR; queries: the queries only
    mine_every: int = 100                # optimiser steps between refreshes of the mining descriptors
    epochs: int = 1
    # a step budget: stop after this many optimiser steps, inside `epochs` (None: every step of every epoch).
    # The order, mining and learning-rate schedule do not depend on it, so a capped run is the first steps
    # of the uncapped one, and resuming it without the cap continues that run
    max_steps: int | None = None
    lr: float = 1e-4
    lr_decay: float = 0.5                # learning rate multiplied by this over each epoch
    batch_size: int = 8                  # query images per forward pass (under torchrun: of all processes)
    accumulate: int = 1                  # forward passes per optimiser step
    freeze: str = "early"                # early: keep the first layers fixed (see distill.teacher); none
    seed: int = 0
    device: str = "cpu"
    cache_dir: Path | None = None        # descriptor cache (inherited targets); None: RUN/descriptors
    checkpoint_every: int = 100          # optimiser steps between checkpoints (and at each epoch's end)
    inherit_targets: bool = True         # False: run the teacher at every step (for comparisons)
    resume: bool = False
    backend: str = DEFAULT_BACKEND       # what runs the teacher for the inherited targets (vidvpr.models.backends)

    def distill_loss(self) -> DistillLoss:
        from vidvpr.distill.losses import DistillLoss

        return DistillLoss.from_string(self.loss, lambda_ickd=self.lambda_ickd, lambda_mse=self.lambda_mse,
                                       margin=self.margin)

    def results_key(self) -> dict[str, Any]:
        """What decides the training's results (what a resumed run must share); not the epoch count or
        step budget, so a finished run can be resumed for more, nor device, cache, checkpoints or logging."""
        kept = asdict(self)
        for name in ("epochs", "max_steps", "device", "cache_dir", "checkpoint_every", "resume", "root", "train",
                     "enc_dir"):
            kept.pop(name)
        kept["loss"] = sorted(self.distill_loss().terms)
        return kept


def validate_config(config: DistillConfig) -> None:
    """BadInput for any option out of range (before anything is read or written)."""
    config.distill_loss()
    checks = [(config.freeze in FREEZE_CHOICES, f"Unknown --freeze '{config.freeze}'. Use {' or '.join(FREEZE_CHOICES)}."),
              (config.backend in BACKEND_CHOICES,
               f"Unknown --backend '{config.backend}'. Use {', '.join(BACKEND_CHOICES)}."),
              (config.negatives >= 1, f"--negatives must be at least 1, got {config.negatives}"),
              (config.epochs >= 1, f"--epochs must be at least 1, got {config.epochs}"),
              (config.max_steps is None or config.max_steps >= 1,
               f"--max-steps must be at least 1, got {config.max_steps}"),
              (config.lr > 0, f"--lr must be positive, got {config.lr:g}"),
              (0 < config.lr_decay <= 1, f"--lr-decay must be in (0, 1], got {config.lr_decay:g}"),
              (config.batch_size >= 1, f"--batch-size must be at least 1, got {config.batch_size}"),
              (config.accumulate >= 1, f"--accumulate must be at least 1, got {config.accumulate}"),
              (config.mine_every >= 1, f"--mine-every must be at least 1, got {config.mine_every}"),
              (config.checkpoint_every >= 1, f"--checkpoint-every must be at least 1, got {config.checkpoint_every}"),
              (config.distilled_images in DISTILLED_IMAGES,
               f"Unknown --distill-images '{config.distilled_images}'. Use {' or '.join(DISTILLED_IMAGES)}."),
              (config.positive_radius_m is None or config.positive_radius_m > 0,
               f"--pos-radius must be positive, got {config.positive_radius_m}"),
              (config.negative_radius_m is None or config.negative_radius_m > 0,
               f"--neg-radius must be positive, got {config.negative_radius_m}")]
    for ok, message in checks:
        if not ok:
            raise BadInput(message)


def triplet_radii(reference_radius_m: float, positive_radius_m: float | None = None,
                  negative_radius_m: float | None = None) -> tuple[float, float]:
    """(positive, negative) radius in metres of the triplet loss, NetVLAD's 10:25.

    Neither given: 0.4 and 1.0 × `reference_radius_m`, the radius the data is evaluated at (so a
    negative is exactly what evaluation counts as a wrong place). One given: the other in the 10:25
    ratio to it. (`vidvpr.distill.mining.triplet_candidates` refuses a negative radius below the positive.)
    """
    if positive_radius_m is None and negative_radius_m is None:
        positive_radius_m = POSITIVE_RADIUS_FRACTION * reference_radius_m
        negative_radius_m = NEGATIVE_RADIUS_FRACTION * reference_radius_m
    elif negative_radius_m is None:
        negative_radius_m = positive_radius_m * NEGATIVE_RADIUS_FRACTION / POSITIVE_RADIUS_FRACTION
    elif positive_radius_m is None:
        positive_radius_m = negative_radius_m * POSITIVE_RADIUS_FRACTION / NEGATIVE_RADIUS_FRACTION
    assert positive_radius_m is not None and negative_radius_m is not None
    return float(positive_radius_m), float(negative_radius_m)


class StudentRecord(Record):
    """``student.json`` beside ``student.pt``: how the student was made."""

    SCHEMA = "vidvpr.distill/2"
    KIND = "vidvpr distilled student sidecar"

    model: str
    checkpoint: FileRecord
    teacher: dict[str, Any]           # name, weights, fingerprint
    losses: list[str]
    weights: dict[str, float]         # lambda_ickd, lambda_mse, margin
    distilled_images: str             # what ICKD and MSE compare: all (query, positive, negatives), queries, none
    triplet_radii_m: dict[str, float] | None  # positive, negative, reference (evaluation); None without triplet
    data: dict[str, Any]              # kind, source, places, image hashes, lq
    degradation: list[str]
    seed: int
    config: dict[str, Any]
    steps: int
    epochs: int
    pairs: int
    queries: int
    final_losses: dict[str, float]
    teacher_forwards: dict[str, Any]  # images through the teacher: for the targets, and per epoch
    versions: dict[str, str]
    command: list[str]
    elapsed_s: float
    processes: int = 1                # training processes (torchrun), each with its share of every batch
    videos: dict[str, str] = {}       # content hash of every video (image folder) trained on, by cell/recording/view
    max_steps: int | None = None      # the step budget (--max-steps); None: every step of `epochs` epochs
    steps_per_epoch: int | None = None  # optimiser steps in one pass over the training queries
