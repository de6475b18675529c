"""What `vidvpr eval` writes: ``results.csv`` and ``results.json`` (one row per model × cell ×
threshold × sequence length), and per (model, cell, sequence length) the ranked predictions
``query_id,rank,database_id,distance`` (sequences add ``frames,velocity``) so anyone can recompute
recall or study failures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from vidvpr.core.atomic import ensure_writable_dir, write_text_atomic
from vidvpr.core.records import FileRecord, Record, Strict
from vidvpr.core.sidecars import MAX_FRAMES
from vidvpr.evaluate.precision import PrecisionRecall, thinned

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
PREDICTIONS_DIR = "predictions"
BASE_COLUMNS = ("model", "protocol", "cell", "codec", "resolution", "width", "height", "qp", "kbps", "psnr_y",
                "ssim_y", "vmaf", "input_size", "queries", "excluded", "unmatched_queries", "threshold_m", "seq_len")
VPR_BENCH_COLUMNS = ("auc_pr", "recall@100p")  # after the recall@N columns
Unmatched = Literal["exclude", "miss"]  # vidvpr.evaluate.recall.UNMATCHED_QUERIES
Fraction = Annotated[float, Field(ge=0, le=1)]
RecallAt = dict[Annotated[int, Field(ge=1)], Fraction]  # N -> recall@N
SequenceLength = Annotated[int, Field(ge=1, le=MAX_FRAMES)]  # frames: none is longer than a video (or numpy's integers)


class PrecisionRecallRecord(Strict):
    """A precision-recall curve over the match distance (`vidvpr.evaluate.precision`), at most 101
    points evenly along it; it starts at recall 0, precision 1 (not stored)."""

    distance: list[float]  # threshold: matches at or below it are accepted
    precision: list[Fraction]
    recall: list[Fraction]

    @model_validator(mode="after")
    def _one_point_per_distance(self) -> PrecisionRecallRecord:
        """A point is a (distance, precision, recall) triple: the three lists are as long (a plot of
        lists of different lengths fails)."""
        if not len(self.distance) == len(self.precision) == len(self.recall):
            raise ValueError(f"distance, precision and recall must be as long, found {len(self.distance)}, "
                             f"{len(self.precision)} and {len(self.recall)} points")
        return self

    @classmethod
    def of(cls, curve: PrecisionRecall) -> PrecisionRecallRecord:
        """The curve as stored: thinned, without its starting point, to 6 decimals."""
        short = thinned(curve)
        return cls(distance=[round(float(d), 6) for d in short.distance[1:]],
                   precision=[round(float(v), 6) for v in short.precision[1:]],
                   recall=[round(float(v), 6) for v in short.recall[1:]])


class EvalRow(Strict):
    """One (model, cell, threshold, sequence length) result. `recall` maps N to the fraction of
    counted queries whose first N predictions hold a positive; `per_view` the same per view
    direction. `unmatched_queries` says how queries without positives were counted: left out of
    `queries` ("exclude", then `excluded` of them) or counted as wrong ("miss"); files written before
    the choice existed were all "exclude". `seq_len` 1 is single frames; above, each query's sequence
    of up to that many frames was matched (`vidvpr.evaluate.sequence`). `auc_pr`,
    `recall_at_100_precision` and `precision_recall` are the VPR-Bench measures of the best match's
    distance."""

    model: str
    protocol: str
    cell: str
    codec: str | None
    resolution: str | None
    width: int | None
    height: int | None
    qp: int | None
    kbps: Annotated[float, Field(gt=0)] | None  # None: the reference views, or a cell without a rate
    psnr_y: float | None
    ssim_y: float | None
    vmaf: float | None
    input_size: str
    queries: Annotated[int, Field(ge=0)]
    excluded: Annotated[int, Field(ge=0)]
    threshold_m: Annotated[float, Field(gt=0)]
    unmatched_queries: Unmatched = "exclude"
    recall: RecallAt
    per_view: dict[str, RecallAt]
    predictions: str  # relative to the eval folder
    seq_len: SequenceLength = 1
    auc_pr: Fraction | None = None
    recall_at_100_precision: Fraction | None = None
    precision_recall: PrecisionRecallRecord | None = None

    def csv_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in BASE_COLUMNS}
        row.update({f"recall@{n}": round(value, 6) for n, value in sorted(self.recall.items())})
        row.update({"auc_pr": self.auc_pr, "recall@100p": self.recall_at_100_precision})
        row["predictions"] = self.predictions
        return row


class SequencesRecord(Strict):
    """How sequences were matched (`vidvpr eval --seq-len ...`)."""

    lengths: list[SequenceLength]  # evaluated, 1 among them
    velocity: list[float]  # [lowest, highest] database frames per query frame
    reverse: bool
    normalise: bool
    normalise_window: int
    search: str  # "full" or "restricted"
    notes: list[str]


class ExtractionRecord(Strict):
    """Per model, what its descriptors cost: wall time per image in the extraction stage (decoding and
    the forward pass, as the descriptor cache entries this evaluation used recorded it when they were
    made) and the bytes one descriptor takes as searched (float32)."""

    model: str
    descriptor_dim: Annotated[int, Field(ge=1)]
    descriptor_bytes: Annotated[int, Field(ge=1)]
    ms_per_image: Annotated[float, Field(ge=0)] | None  # None: no entry recorded its time
    images: Annotated[int, Field(ge=0)]  # images the time covers


class EvalResults(Record):
    """``results.json``: every row, how the evaluation was run, and what it ran on."""

    SCHEMA = "vidvpr.eval/1"
    KIND = "vidvpr eval results"

    manifest: dict[str, Any]
    enc_dir: str | None
    protocol: str
    input_size: str
    recall_at: list[int]
    thresholds_m: list[float]
    unmatched_queries: Unmatched = "exclude"  # as in every row
    index: str
    models: list[dict[str, Any]]
    rows: list[EvalRow] = Field(min_length=1)
    descriptors: dict[str, Any]
    forward_images: int
    elapsed_s: float
    versions: dict[str, str]
    command: list[str]
    sequences: SequencesRecord | None = None  # None: single frames only
    extraction: list[ExtractionRecord] = Field(default_factory=list)
    # what a rerun compares to decide it has nothing to do (vidvpr.evaluate.rerun)
    params_hash: str | None = None
    inputs: list[FileRecord] = Field(default_factory=list)   # files the models were prepared from
    outputs: list[FileRecord] = Field(default_factory=list)  # results.csv, predictions, plots, strips

    @field_validator("rows")
    @classmethod
    def _every_row_has_every_recall(cls, rows: list[EvalRow], info: ValidationInfo) -> list[EvalRow]:
        """Each row holds recall@N for every N the header lists (a study reads them all)."""
        for i, row in enumerate(rows):
            missing = [n for n in info.data.get("recall_at", []) if n not in row.recall]
            if missing:
                raise ValueError(f"item {i} ({row.model} on {row.cell}) has no recall@{missing[0]}, which "
                                 "recall_at lists")
        return rows


def fitted_on_database(model: dict[str, Any]) -> list[str]:
    """What of a model, as `EvalResults.models` records it, was fitted on the evaluated manifest's own
    database frames, in words (empty: nothing). A model recorded without weights had its NetVLAD
    initialised on them (a model that needs weights is refused without; `vidvpr.evaluate.models.
    prepare_model`), and one recorded with whitening had PCA fitted on them. Its recalls are then
    measured on the database it was fitted on (without labels or queries): a reader must be told."""
    fitted = []
    if not model.get("weights"):
        fitted.append("NetVLAD clusters")
    if model.get("whitening"):
        fitted.append("PCA-whitening")
    return fitted


UNMATCHED_WORDS = {"exclude": "queries without positives excluded",
                   "miss": "queries without positives counted as misses"}


@dataclass
class EvalResult:
    """What an evaluation wrote (or, `skipped`, found finished)."""

    rows: list[EvalRow]
    results_csv: Path
    results_json: Path
    plots: list[Path]
    forward_images: int
    cache_bytes: int
    strips: list[Path] = field(default_factory=list)
    skipped: bool = False
    sequences: SequencesRecord | None = None  # how sequences were matched, and the lengths left out
    models: list[dict[str, Any]] = field(default_factory=list)  # as results.json records them


def csv_columns(recall_at: Sequence[int]) -> list[str]:
    return [*BASE_COLUMNS, *(f"recall@{n}" for n in sorted(recall_at)), *VPR_BENCH_COLUMNS, "predictions"]


def write_results_csv(path: Path, rows: Sequence[EvalRow], recall_at: Sequence[int]) -> None:
    """results.csv: empty cells for values that do not apply (the reference has no QP or rate)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=csv_columns(recall_at), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.csv_row().items()})
    write_text_atomic(path, text.getvalue())


def predictions_path(eval_dir: Path, model_label: str, cell: str, protocol: str, seq_len: int = 1) -> Path:
    """Where a (model, cell) ranking is written: ``EVAL/predictions/<model>/<protocol>/<cell>.csv``, and
    for sequences of L frames ``.../<protocol>/seq<L>/<cell>.csv``."""
    safe_model = model_label.replace("/", "_").replace(":", "-")
    folder = Path(eval_dir) / PREDICTIONS_DIR / safe_model / protocol
    return (folder if seq_len == 1 else folder / f"seq{seq_len}") / f"{cell.replace('/', '_')}.csv"


def write_predictions(path: Path, query_ids: Sequence[str], database_ids: Sequence[str], indices: np.ndarray,
                      distances: np.ndarray) -> None:
    """``query_id,rank,database_id,distance`` for every query's top K (rank from 1; -1 slots left out)."""
    lines = ["query_id,rank,database_id,distance"]
    for q, (row_i, row_d) in enumerate(zip(indices, distances)):
        for rank, (i, d) in enumerate(zip(row_i, row_d), 1):
            if i >= 0:
                lines.append(f"{query_ids[q]},{rank},{database_ids[i]},{float(d):.6g}")
    ensure_writable_dir(path.parent)  # OutputError naming the folder (a file in the way, no permission)
    write_text_atomic(path, "\n".join(lines) + "\n")


def trained_on_notes(models: Sequence[dict[str, Any]]) -> list[str]:
    """One line per model that trained on some of the evaluated videos (results.json's `trained_on`,
    from a `vidvpr distill` student's sidecar): its recall is then not measured on held-out data."""
    notes = []
    for model in models:
        seen = model.get("trained_on") or []
        if seen:
            shown = ", ".join(seen[:2]) + (f" and {len(seen) - 2} more" if len(seen) > 2 else "")
            notes.append(f"{model.get('label')} was trained on {len(seen)} of the evaluated videos ({shown}): "
                         "its recall here is not measured on held-out data")
    return notes


def recall_table(rows: Sequence[EvalRow], n: int = 1) -> list[str]:
    """Recall@n by resolution × QP as text lines, per model and sequence length (the reference as its
    own column)."""
    lines = []
    for model, seq_len in dict.fromkeys((row.model, row.seq_len) for row in rows):
        mine = [row for row in rows if row.model == model and row.seq_len == seq_len]
        threshold = min(row.threshold_m for row in mine)
        mine = [row for row in mine if row.threshold_m == threshold]
        qps = sorted({row.qp for row in mine if row.qp is not None})
        frames = "" if seq_len == 1 else f" over sequences of {seq_len} frames"
        lines.append(f"{model}: recall@{n} at {threshold:g} m ({mine[0].protocol} protocol, "
                     f"{UNMATCHED_WORDS[mine[0].unmatched_queries]}){frames}")
        lines.append(f"{'cell':>22} " + " ".join(f"{'qp' + str(qp):>6}" for qp in qps))
        reference = next((row for row in mine if row.cell == "reference"), None)
        if reference is not None:
            lines.append(f"{'reference':>22} {reference.recall[n]:6.3f}")
        groups = dict.fromkeys((row.codec, row.resolution) for row in mine if row.qp is not None)
        for codec, resolution in groups:
            by_qp = {row.qp: row.recall[n] for row in mine if (row.codec, row.resolution) == (codec, resolution)}
            label = resolution if codec in (None, "libx264") else f"{codec} {resolution}"
            lines.append(f"{label:>22} " + " ".join(f"{by_qp[qp]:6.3f}" if qp in by_qp else f"{'':6}" for qp in qps))
    return lines
