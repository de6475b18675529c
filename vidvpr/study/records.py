"""What `vidvpr study` writes: ``study.json`` (`StudyRecord`) and ``study.csv`` (the same numbers
as one table, a ``section`` column telling point, reference, bd, front and budget rows apart)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from vidvpr.core.atomic import write_text_atomic
from vidvpr.core.records import FileRecord, Record, Strict
from vidvpr.evaluate.results import ExtractionRecord, Fraction, SequenceLength, Unmatched

STUDY_JSON = "study.json"
STUDY_CSV = "study.csv"


class PointRecord(Strict):
    cell: str
    codec: str
    resolution: str
    width: int | None
    height: int | None
    qp: int
    kbps: float
    recall: dict[int, float]
    psnr_y: float | None
    ssim_y: float | None
    vmaf: float | None
    source: int  # index into StudyRecord.inputs


class CurveRecord(Strict):
    """One recall–rate curve; resolution "any" is the codec's non-dominated cells over all resolutions."""

    system: str
    model: str
    protocol: str
    codec: str
    resolution: str
    points: list[PointRecord]


class DeltaRecord(Strict):
    """A Bjøntegaard delta, or the reason there is none; averaged over [low, high]."""

    value: float | None
    low: float | None
    high: float | None
    overlap_fraction: float | None  # the overlap's share of the union of both curves' ranges
    points: list[int]  # points used: [anchor, test]
    reason: str | None
    low_overlap: bool | None = None  # averaged over less than half the union (None: no value, or an older study)
    package_warning: str | None = None  # what the bjontegaard package warned (it does below 75 % overlap)


class ComparisonRecord(Strict):
    """Test against anchor at recall@n: codecs for one system, systems for one codec, or sequences of
    L frames against single frames for one system, codec and resolution."""

    kind: Literal["codec", "model", "sequence"]
    n: int
    anchor: str
    test: str
    system: str | None  # held fixed in a codec comparison
    codec: str | None  # held fixed in a model comparison
    resolution: str
    bd_rate_pct: DeltaRecord  # overlap in recall
    bd_recall: DeltaRecord  # overlap in kbps; value as a fraction
    headline: str


class FrontRecord(Strict):
    system: str
    n: int
    points: list[PointRecord]


class BudgetRecord(Strict):
    system: str
    n: int
    budget_kbps: float
    best: PointRecord | None
    reason: str | None


class SequenceNeedRecord(Strict):
    """How long a sequence one encoded cell needs to regain the reference views' single-frame recall@n
    (`target`): the shortest evaluated length that does (`needed`), or why none (`reason`)."""

    system: str
    n: Annotated[int, Field(ge=1)]
    codec: str
    resolution: str
    cell: str
    qp: int
    kbps: Annotated[float, Field(gt=0)]
    target: Fraction
    recall: dict[SequenceLength, Fraction] = Field(min_length=1)  # sequence length -> recall@n
    auc_pr: dict[SequenceLength, Fraction | None]  # sequence length -> AUC-PR
    needed: SequenceLength | None
    reason: str | None

    @model_validator(mode="after")
    def _needed_was_evaluated(self) -> SequenceNeedRecord:
        """The length needed is one of the evaluated lengths (the report reads its recall)."""
        if self.needed is not None and self.needed not in self.recall:
            raise ValueError(f"needed length {self.needed} is not among the evaluated lengths "
                             f"{sorted(self.recall)}")
        return self


class CostRecord(ExtractionRecord):
    """A model's descriptor cost (VPR-Bench): extraction ms per image, as its eval folder recorded it."""

    eval_dir: str


class StudyInputRecord(Strict):
    """One eval folder the study read."""

    eval_dir: str
    results: FileRecord
    manifest: dict[str, Any]
    enc_dir: str | None
    protocol: str
    models: list[dict[str, Any]]
    versions: dict[str, str]
    command: list[str]


class MethodRecord(Strict):
    package: str
    version: str
    bd_rate_function: str
    bd_recall_function: str
    interpolation: str
    interpolation_description: str
    notes: list[str]


class StudyRecord(Record):
    """``study.json``: every curve, delta, front and budget answer, and what they were made from."""

    SCHEMA = "vidvpr.study/1"
    KIND = "vidvpr study record"

    dataset: dict[str, Any]
    threshold_m: float
    unmatched_queries: Unmatched = "exclude"  # how every input counted queries without positives (earlier: exclude)
    recall_at: list[int]
    anchor_codec: str | None
    anchor_system: str | None
    systems: dict[str, dict[str, str]]  # label -> {model, protocol}
    method: MethodRecord
    inputs: list[StudyInputRecord]
    reference: dict[str, dict[int, float]]  # system -> recall@N of the uncompressed views
    curves: list[CurveRecord]
    comparisons: list[ComparisonRecord]
    fronts: list[FrontRecord]
    budgets: list[BudgetRecord]
    sequences: list[SequenceNeedRecord] = Field(default_factory=list)
    costs: list[CostRecord] = Field(default_factory=list)
    outputs: list[str]
    versions: dict[str, str]
    command: list[str]
    elapsed_s: float


CSV_COLUMNS = (
    "section", "n", "threshold_m", "kind", "system", "codec", "resolution", "cell", "qp", "width", "height", "kbps",
    "recall", "psnr_y", "ssim_y", "vmaf", "on_front", "anchor", "test", "bd_rate_pct", "bd_rate_recall_low",
    "bd_rate_recall_high", "bd_rate_overlap", "bd_rate_low_overlap", "bd_rate_points", "bd_recall",
    "bd_recall_kbps_low", "bd_recall_kbps_high", "bd_recall_overlap", "bd_recall_low_overlap", "bd_recall_points",
    "budget_kbps", "seq_len", "auc_pr", "target_recall", "needed_seq_len", "descriptor_bytes", "ms_per_image",
    "reason", "package_warning",
)


def _point_fields(point: PointRecord, n: int) -> dict[str, Any]:
    return {"codec": point.codec, "resolution": point.resolution, "cell": point.cell, "qp": point.qp,
            "width": point.width, "height": point.height, "kbps": point.kbps, "recall": point.recall[n],
            "psnr_y": point.psnr_y, "ssim_y": point.ssim_y, "vmaf": point.vmaf}


def _delta_fields(prefix: str, delta: DeltaRecord, unit: str) -> dict[str, Any]:
    return {prefix if prefix == "bd_recall" else f"{prefix}_pct": delta.value, f"{prefix}_{unit}_low": delta.low,
            f"{prefix}_{unit}_high": delta.high, f"{prefix}_overlap": delta.overlap_fraction,
            f"{prefix}_low_overlap": delta.low_overlap, f"{prefix}_points": "/".join(map(str, delta.points))}


def csv_rows(study: StudyRecord) -> list[dict[str, Any]]:
    """Every number of the study as rows of one table."""
    rows: list[dict[str, Any]] = []
    base = {"threshold_m": study.threshold_m}
    on_front = {(f.system, f.n, p.cell) for f in study.fronts for p in f.points}
    for system, recall in study.reference.items():
        for n in study.recall_at:
            rows.append({**base, "section": "reference", "n": n, "system": system, "cell": "reference",
                         "recall": recall.get(n)})
    for curve in study.curves:
        if curve.resolution == "any":
            continue  # its points are rows of the per-resolution curves
        for point in curve.points:
            for n in study.recall_at:
                rows.append({**base, "section": "point", "n": n, "system": curve.system, **_point_fields(point, n),
                             "on_front": (curve.system, n, point.cell) in on_front})
    for c in study.comparisons:
        deltas = (("BD-rate", c.bd_rate_pct), ("BD-recall", c.bd_recall))
        reasons = "; ".join(f"{name}: {d.reason}" for name, d in deltas if d.reason)
        warned = "; ".join(f"{name}: {d.package_warning}" for name, d in deltas if d.package_warning)
        rows.append({**base, "section": "bd", "n": c.n, "kind": c.kind, "system": c.system, "codec": c.codec,
                     "resolution": c.resolution, "anchor": c.anchor, "test": c.test,
                     **_delta_fields("bd_rate", c.bd_rate_pct, "recall"), **_delta_fields("bd_recall", c.bd_recall, "kbps"),
                     "reason": reasons or None, "package_warning": warned or None})
    for f in study.fronts:
        for point in f.points:
            rows.append({**base, "section": "front", "n": f.n, "system": f.system, **_point_fields(point, f.n),
                         "on_front": True})
    for b in study.budgets:
        fields = _point_fields(b.best, b.n) if b.best else {}
        rows.append({**base, "section": "budget", "n": b.n, "system": b.system, "budget_kbps": b.budget_kbps,
                     **fields, "reason": b.reason})
    for need in study.sequences:
        for length, recall in need.recall.items():
            rows.append({**base, "section": "sequence", "n": need.n, "system": need.system, "codec": need.codec,
                         "resolution": need.resolution, "cell": need.cell, "qp": need.qp, "kbps": need.kbps,
                         "seq_len": length, "recall": recall, "auc_pr": need.auc_pr.get(length),
                         "target_recall": need.target, "needed_seq_len": need.needed, "reason": need.reason})
    for cost in study.costs:
        rows.append({**base, "section": "cost", "system": cost.model, "descriptor_bytes": cost.descriptor_bytes,
                     "ms_per_image": cost.ms_per_image})
    return rows


def write_study_csv(path: Path, study: StudyRecord) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(study):
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in CSV_COLUMNS})
    write_text_atomic(Path(path), text.getvalue())
