"""Every `vidvpr eval` option with its default written once, and the checks on them.

Kept apart from the stage (`vidvpr.evaluate.grid`) so that the command line, `vidvpr distill`
and anything else that needs a default can read it without importing torch or faiss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from vidvpr.core.errors import BadInput
from vidvpr.evaluate.recall import DEFAULT_NS, DEFAULT_UNMATCHED, check_unmatched
from vidvpr.evaluate.sequence import DEFAULT_VELOCITY, SequenceSettings, check_settings
from vidvpr.models.backends import BACKEND_CHOICES, DEFAULT_BACKEND

LOG = logging.getLogger(__name__)

PROTOCOLS = ("same", "reference")
INPUT_SIZES = ("cell", "reference")
DEFAULT_MODEL = "netvlad-efficientnet-lite0"
CACHE_DIR = "descriptors"
SEQ_SEARCHES = ("full", "restricted")  # every line (in blocks), or lines near coarsely found ends
MODELS_DIR = "models"  # EVAL/models: NetVLAD initialisations and PCA-whitening made for an evaluation


def netvlad_init_checkpoint(models_dir: Path, name: str) -> Path:
    """Where a model without NetVLAD weights keeps the initialisation fitted for it: ``EVAL/models/``,
    or ``RUN/models/`` of a distillation, where it is the teacher the student started from."""
    return Path(models_dir) / f"{name}-netvlad-init.pt"


@dataclass(frozen=True)
class EvalConfig:
    """Every `vidvpr eval` option, with its default written once."""

    models: tuple[str, ...] = (DEFAULT_MODEL,)
    enc_dir: Path | None = None  # None: the reference views only
    protocol: str = "same"
    input_size: str = "cell"
    cells: tuple[str, ...] | None = None  # None: every cell (and the reference)
    recall_at: tuple[int, ...] | None = None  # None: DEFAULT_NS, those up to the database size
    thresholds_m: tuple[float, ...] | None = None  # None: the manifest's radius
    index: str | None = None  # faiss factory string; None: exact L2
    batch_size: int = 16
    device: str = "cpu"
    pca_dim: int | None = None
    cache_dir: Path | None = None  # None: EVAL/descriptors
    root: Path | None = None
    save_preds: int = 0  # query strips per cell
    unmatched_queries: str = DEFAULT_UNMATCHED  # queries without positives: "exclude" or count as a "miss"
    seq_lens: tuple[int, ...] = (1,)  # frames per query sequence; 1 (single frames) is always evaluated
    seq_velocity: tuple[float, float] = DEFAULT_VELOCITY  # database frames per query frame, lowest..highest
    seq_reverse: bool = False  # also lines through the database the other way
    seq_normalise: bool = False  # SeqSLAM's local contrast normalisation
    seq_search: str = SEQ_SEARCHES[0]
    backend: str = DEFAULT_BACKEND  # what runs the models (vidvpr.models.backends): auto, torch, onnx, openvino


def recall_ns(config: EvalConfig, database_rows: int) -> list[int]:
    """The Ns recall@N is counted at, in order: those asked for (BadInput for one beyond the database,
    where every frame is retrieved and recall says nothing), or the defaults up to the database size
    (a warning names those left out)."""
    if config.recall_at is not None:
        if max(config.recall_at) > database_rows:
            raise BadInput(f"--recall-at {max(config.recall_at)}: the manifest's database has {database_rows:,} "
                           f"frames, so recall@N is defined for N up to {database_rows:,}")
        return sorted(set(config.recall_at))
    kept = [n for n in DEFAULT_NS if n <= database_rows]
    if len(kept) < len(DEFAULT_NS):
        LOG.warning("recall@%s left out: the manifest's database has only %d frames (--recall-at chooses the Ns)",
                    ",".join(str(n) for n in DEFAULT_NS if n > database_rows), database_rows)
    return kept or [1]


def validate_config(config: EvalConfig) -> None:
    if config.protocol not in PROTOCOLS:
        raise BadInput(f"Unknown --database '{config.protocol}'. Use {' or '.join(PROTOCOLS)}.")
    if config.input_size not in INPUT_SIZES:
        raise BadInput(f"Unknown --input-size '{config.input_size}'. Use {' or '.join(INPUT_SIZES)}.")
    try:
        check_unmatched(config.unmatched_queries)
    except BadInput as exc:
        raise BadInput(f"--unmatched-queries: {exc}") from None
    if not config.models:
        raise BadInput("give at least one --model")
    if config.recall_at is not None and (not config.recall_at or any(n < 1 for n in config.recall_at)):
        raise BadInput(f"--recall-at takes positive integers, got {list(config.recall_at)}")
    if config.thresholds_m is not None and (not config.thresholds_m or any(not t > 0 for t in config.thresholds_m)):
        raise BadInput(f"--threshold takes positive distances in metres, got {list(config.thresholds_m)}")
    if config.batch_size < 1:
        raise BadInput(f"--batch-size must be at least 1, got {config.batch_size}")
    if config.pca_dim is not None and config.pca_dim < 1:
        raise BadInput(f"--pca-dim must be at least 1, got {config.pca_dim}")
    if config.save_preds < 0:
        raise BadInput(f"--save-preds must not be negative, got {config.save_preds}")
    if config.cells is not None and not config.cells:
        raise BadInput("--cells: give at least one cell, e.g. reference,360p/qp40 (leave the option out for all)")
    if not config.seq_lens:
        raise BadInput("--seq-len: give at least one sequence length, e.g. 1,5,10,20")
    if config.seq_search not in SEQ_SEARCHES:
        raise BadInput(f"Unknown --seq-search '{config.seq_search}'. Use {' or '.join(SEQ_SEARCHES)}.")
    for length in config.seq_lens:
        check_settings(SequenceSettings(length, tuple(config.seq_velocity)))
    if config.backend not in BACKEND_CHOICES:
        raise BadInput(f"Unknown --backend '{config.backend}'. Use {', '.join(BACKEND_CHOICES)}.")
    if config.cells is not None and config.enc_dir is None and any(c != "reference" for c in config.cells):
        raise BadInput("--cells names encoded cells: give --enc with the encode folder")
