"""`vidvpr demo study DIR`: does distillation help on the demo? Teacher, fine-tuned and distilled models.

On the outputs of `vidvpr demo run DIR` (DIR/manifest, DIR/enc, DIR/eval):

1. distil the offline model (`netvlad-efficientnet-lite0`, NetVLAD initialised on the database
   frames as `vidvpr eval` does) on the DATABASE traversal at one low-quality cell (QP 45 of the
   grid's resolution by default): the student sees the cell's frame, the teacher the clean one;
2. train the paper's fine-tuned baseline on the same pairs: ``--loss triplet`` (no teacher term);
3. evaluate teacher, fine-tuned and distilled students on the grid with the QUERY traversal
   (the same protocol as `vidvpr demo run`; the teacher's descriptors come from DIR/eval's cache),
   with recall@1 against QP for the three on one plot.

The query traversal is never used for training or for choosing anything: the options below are
fixed in advance. Outputs under DIR/study: distilled/ and finetuned/ (training runs),
models/{distilled,finetuned}.pt (what the evaluation names), eval/ (results.csv, recall_vs_qp.png)
and study.json. A rerun resumes or reuses finished runs and cached descriptors.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import ensure_writable_dir
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import command_line
from vidvpr.core.records import Record
from vidvpr.dataset.manifest import load_manifest
from vidvpr.distill.config import DistillConfig
from vidvpr.distill.state import TRAIN_STATE
from vidvpr.distill.train import DistillResult, distill
from vidvpr.evaluate.cells import encoded_cells
from vidvpr.evaluate.grid import DEFAULT_MODEL, EvalConfig, EvalResult, evaluate_grid

LOG = logging.getLogger(__name__)

STUDY_DIR = "study"
STUDY_FILE = "study.json"
ROLES = ("finetuned", "distilled")


@dataclass(frozen=True)
class StudyConfig:
    """What the study trains and evaluates, fixed before looking at any query."""

    train_qp: int = 45                    # the cell the students train on (QP >= 40: low quality)
    eval_qps: tuple[int, ...] | None = (40, 45, 50)  # None: the whole grid and the reference views
    # the paper's method (all three terms) against its fine-tuned baseline (triplet only); two negatives
    # per query instead of NetVLAD's ten keep both trainings within ~7 minutes on two CPU cores
    distill: DistillConfig = field(default_factory=lambda: DistillConfig(
        train=Path("."), lq=(), loss="ickd,mse,triplet", negatives=2))
    finetune_loss: str = "triplet"
    batch_size: int = 16                  # evaluation batch


@dataclass
class StudyResult:
    runs: dict[str, DistillResult]
    evaluation: EvalResult
    summary: dict[str, dict[str, float]]  # model -> cell -> recall@1
    record: Path
    stages_s: dict[str, float]


class StudyRecord(Record):
    """``study.json``: what was trained on what, and recall@1 per model and cell."""

    SCHEMA = "vidvpr.demo-study/1"
    KIND = "vidvpr demo study record"

    train_cell: str
    models: dict[str, str]
    recall_at_1: dict[str, dict[str, float]]
    results: str
    plot: str
    stages_s: dict[str, float]
    command: list[str]


def _grid_cells(demo_dir: Path) -> list[str]:
    manifest = load_manifest(demo_dir / "manifest")
    return [cell.name for cell in encoded_cells(manifest, demo_dir / "enc")]


def _cell_with_qp(names: list[str], qp: int) -> str:
    matching = [name for name in names if name.endswith(f"/qp{qp:02d}")]
    if not matching:
        raise BadInput(f"the demo grid has no QP {qp} cell ({', '.join(names)}); choose another --train-qp")
    return matching[-1]  # cells are sorted large first: the smallest resolution


def _train(out: Path, config: DistillConfig, on_step: Callable[[dict[str, float]], None] | None) -> DistillResult:
    """Train into `out`, resuming (or just reloading) a run already there with the same options."""
    return distill(out, replace(config, resume=(out / TRAIN_STATE).is_file()), on_step=on_step)


def run_study(demo_dir: Path, config: StudyConfig, on_status: Callable[[str], None] | None = None,
              on_step: Callable[[dict[str, float]], None] | None = None) -> StudyResult:
    """Train both students on the database traversal, evaluate the three models on the query traversal."""
    demo_dir = Path(demo_dir)
    status = on_status or (lambda text: None)
    for needed in ("manifest", "enc", "eval"):
        if not (demo_dir / needed).is_dir():
            raise BadInput(f"{demo_dir / needed}: not found; run `vidvpr demo run {demo_dir}` first")
    names = _grid_cells(demo_dir)
    train_cell = _cell_with_qp(names, config.train_qp)
    eval_cells = None if config.eval_qps is None else tuple(_cell_with_qp(names, qp) for qp in config.eval_qps)
    study = ensure_writable_dir(demo_dir / STUDY_DIR)
    cache = demo_dir / "eval" / "descriptors"  # the demo run's: the teacher's descriptors are there
    base = replace(config.distill, train=demo_dir / "manifest", enc_dir=demo_dir / "enc", lq=(train_cell,),
                   teacher=DEFAULT_MODEL, cache_dir=cache)
    stages: dict[str, float] = {}
    runs: dict[str, DistillResult] = {}
    models: dict[str, str] = {}
    for role, loss in (("distilled", config.distill.loss), ("finetuned", config.finetune_loss)):
        status(f"train {role} ({loss})")
        started = time.perf_counter()
        runs[role] = _train(study / role, replace(base, loss=loss), on_step)
        stages[f"train {role}"] = round(time.perf_counter() - started, 1)
        named = ensure_writable_dir(study / "models") / f"{role}.pt"  # evaluation labels name the file
        shutil.copyfile(runs[role].student, named)
        models[role] = f"{DEFAULT_MODEL}:{named}"
    status("eval")
    started = time.perf_counter()
    eval_config = EvalConfig(models=(DEFAULT_MODEL, models["finetuned"], models["distilled"]), enc_dir=demo_dir / "enc",
                             cells=eval_cells, batch_size=config.batch_size, device=config.distill.device,
                             cache_dir=cache)
    evaluation = evaluate_grid(demo_dir / "manifest", study / "eval", eval_config,
                               on_status=lambda text: status(f"eval {text}"))
    stages["eval"] = round(time.perf_counter() - started, 1)
    summary = recall_at_1(evaluation)
    record = study / STUDY_FILE
    plot = next((str(p) for p in evaluation.plots if p.name == "recall_vs_qp.png"), "")
    StudyRecord(train_cell=train_cell, models={"teacher": DEFAULT_MODEL, **models}, recall_at_1=summary,
                results=str(evaluation.results_csv), plot=plot, stages_s=stages, command=command_line()).save(record)
    return StudyResult(runs, evaluation, summary, record, stages)


def recall_at_1(evaluation: EvalResult) -> dict[str, dict[str, float]]:
    """model label -> cell -> recall@1 at the smallest threshold."""
    smallest = min(row.threshold_m for row in evaluation.rows)
    out: dict[str, dict[str, Any]] = {}
    for row in evaluation.rows:
        if row.threshold_m == smallest:
            out.setdefault(row.model, {})[row.cell] = row.recall[1]
    return out
