"""`vidvpr demo study DIR`: does distillation help on new places, and at night?

On the outputs of `vidvpr demo run DIR` (DIR/demo.json, DIR/manifest, DIR/enc, DIR/eval):

1. train three students of the offline model (`netvlad-efficientnet-lite0`, NetVLAD initialised
   on the training world's database frames as `vidvpr eval` does) on the DATABASE walk of the
   training world: the distilled student (ICKD + MSE + triplet) and the paper's fine-tuned
   baseline (triplet only), both seeing one low-quality cell (QP 45 by default) where the teacher
   sees the clean frame, and a night student (ICKD + MSE + triplet) seeing the clean day frames
   darkened in linear light with a dark exposure's noise (`lowlight:-3`);
2. evaluate teacher and day students on the training world's QUERY walk at QP 40, 45 and 50
   (`DIR/study/eval`, the LoQI-VPR protocol of `vidvpr demo run`);
3. render the held-out world (`vidvpr.demo.heldout`: another seed, route and places, which nothing
   trains on) and evaluate the same models on its query walk at the same cells (`DIR/study/eval-heldout`);
4. evaluate teacher and all three students on the held-out world's NIGHT walk searched in its day
   database, on the uncompressed views (`DIR/study/eval-heldout-night`): the day→night question.

The teacher is evaluated with the very weights the students started from (its NetVLAD fitted on
the training world; `DIR/study/models/teacher.pt`), in both worlds. Neither query walk nor the
held-out world is used to train or to choose anything: every option below is fixed in advance, and
the night student's darkening was chosen on the training world (`night_lq`). `study.json` records
what was trained on what (every video's content hash, from the students' sidecars), both worlds'
definitions and the held-out world's video hashes (and checks that no student saw one), the
options, seeds and recall@1 of every model; `worlds.png` plots both worlds and the night.
A rerun resumes or reuses finished runs, renders and cached descriptors.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import atomic_output, ensure_writable_dir
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import command_line, runtime_versions
from vidvpr.core.records import FileRecord, Record
from vidvpr.dataset.manifest import load_manifest
from vidvpr.demo.definition import DemoDefinition, definition_from_data
from vidvpr.demo.heldout import HeldoutWorld, prepare_heldout
from vidvpr.demo.make import SIDECAR_NAME, DemoRecord
from vidvpr.demo.run import Progress, no_progress
from vidvpr.distill.config import DistillConfig, StudentRecord
from vidvpr.evaluate.cells import REFERENCE, encoded_cells
from vidvpr.evaluate.config import DEFAULT_MODEL, EvalConfig
from vidvpr.evaluate.models import MODELS_DIR, netvlad_init_checkpoint

LOG = logging.getLogger(__name__)

STUDY_DIR = "study"
STUDY_FILE = "study.json"
WORLDS_PLOT = "worlds.png"
TEACHER = "teacher"
STUDENTS = ("distilled", "finetuned", "night")  # trained in this order
# evaluation -> (folder under DIR/study, the models it compares)
EVALUATIONS = {"train": ("eval", (TEACHER, "finetuned", "distilled")),
               "heldout": ("eval-heldout", (TEACHER, "finetuned", "distilled")),
               "night": ("eval-heldout-night", (TEACHER, "finetuned", "distilled", "night"))}
ROLE_NAMES = {TEACHER: "teacher", "finetuned": "fine-tuned (triplet)", "distilled": "distilled (QP cell)",
              "night": "night student (lowlight)"}
EVALUATION_NAMES = {"train": "training world", "heldout": "held-out world", "night": "held-out night walk"}
SMALL_DEMO_MAX_STEPS = 40


@dataclass(frozen=True)
class StudyConfig:
    """What the study trains and evaluates, fixed before looking at any query or the held-out world."""

    train_qp: int = 45                    # the cell the day students train on (QP >= 40: low quality)
    eval_qps: tuple[int, ...] | None = (40, 45, 50)  # None: the whole grid and the reference views
    # the paper's method (all three terms) against its fine-tuned baseline (triplet only); two negatives
    # per query instead of NetVLAD's ten keep each training within ~7 minutes on two CPU cores
    distill: DistillConfig = field(default_factory=lambda: DistillConfig(
        train=Path("."), lq=(), loss="ickd,mse,triplet", negatives=2))
    finetune_loss: str = "triplet"
    # what the night student sees: the clean day frames 3 stops darker (with a dark exposure's noise). The
    # median frame of the TRAINING world's night walk holds 2^-3.3 of its day light (tests/test_demo_study.py
    # pins the whole stop); nothing was measured on the held-out world
    night_lq: tuple[str, ...] = ("lowlight:-3",)
    size: str | None = None               # None: the size DIR was rendered at; else checked against it
    # optimiser steps per student by the size DIR was rendered at; a size not named here trains one whole epoch
    # (the full-size study of the README). The small demo is for tests and a first look: a budget keeps its
    # run + study within minutes on two cores (a quarter of its 171-step epoch at batch 8); see the README
    max_steps_by_size: dict[str, int] = field(default_factory=lambda: {"small": SMALL_DEMO_MAX_STEPS})
    batch_size: int = 16                  # evaluation batch


@dataclass
class StudyResult:
    runs: dict[str, Any]                  # role -> DistillResult
    evaluations: dict[str, Any]           # "train", "heldout", "night" -> EvalResult
    summary: dict[str, dict[str, dict[str, float]]]  # evaluation -> role -> cell -> recall@1
    heldout: HeldoutWorld
    record: Path
    plot: Path
    stages_s: dict[str, float]


class StudentEntry(Record):
    """One trained student as study.json records it."""

    SCHEMA = "vidvpr.demo-study-student/1"
    KIND = "demo study student"

    model: str                            # as the evaluations name it
    loss: list[str]
    steps: int                            # optimiser steps trained
    steps_per_epoch: int | None
    lq: list[str]                         # encode cells and degradations, in order
    seed: int
    sidecar: FileRecord
    checkpoint: FileRecord
    trained_videos: dict[str, str]        # cell/recording/view -> content hash, from the sidecar


class StudyRecord(Record):
    """``study.json``: both worlds, what was trained on what, what was chosen, recall@1 of every model."""

    SCHEMA = "vidvpr.demo-study/3"
    KIND = "vidvpr demo study record"

    train_cell: str
    eval_cells: list[str]
    night_cells: list[str]
    config: dict[str, Any]                # the StudyConfig, distillation options included
    max_steps: int | None                 # the students' step budget at this size; None: one whole epoch
    worlds: dict[str, dict[str, Any]]     # "train", "heldout": seed, size, definition, videos
    teacher: dict[str, Any]               # name, weights (FileRecord), fingerprint
    students: dict[str, StudentEntry]
    heldout_videos_trained_on: list[str]  # held-out video hashes found among the students' training videos: none
    recall_at_1: dict[str, dict[str, dict[str, float]]]  # evaluation -> model role -> cell -> recall@1
    results: dict[str, str]               # evaluation -> results.csv, relative to DIR
    plot: str                             # worlds.png, relative to DIR
    stages_s: dict[str, float]
    versions: dict[str, str]
    command: list[str]


def _grid_cells(demo_dir: Path) -> list[str]:
    manifest = load_manifest(demo_dir / "manifest")
    return [cell.name for cell in encoded_cells(manifest, demo_dir / "enc")]


def _cell_with_qp(names: list[str], qp: int) -> str:
    matching = [name for name in names if name.endswith(f"/qp{qp:02d}") and name.count("/") == 1]
    if not matching:
        raise BadInput(f"the demo grid has no QP {qp} cell ({', '.join(names)}); choose another --train-qp "
                       "or --eval-qps, or run `vidvpr demo run` with that QP in --qp")
    return matching[-1]  # cells are sorted large first: the smallest resolution


def _demo_world(demo_dir: Path, wanted_size: str | None) -> tuple[DemoRecord, DemoDefinition]:
    """The demo's record and definition (what `vidvpr demo run` rendered), with its size checked."""
    path = demo_dir / SIDECAR_NAME
    record = DemoRecord.load(path)
    definition = definition_from_data(record.definition, f"{path} (definition)")
    size = record.size.get("name")
    if wanted_size is not None and wanted_size not in definition.sizes:
        raise BadInput(f"--size {wanted_size}: not a size of the demo's definition ({', '.join(definition.sizes)}); "
                       f"{demo_dir} was rendered at {size!r}")
    if wanted_size is not None and wanted_size != size:
        raise BadInput(f"{demo_dir} was rendered at size {size!r}, not {wanted_size!r}: run `vidvpr demo run "
                       f"another-folder --size {wanted_size}`, or leave --size out")
    return record, definition


def _train(out: Path, config: DistillConfig, on_step: Callable[[dict[str, float]], None] | None) -> Any:
    """Train into `out`, resuming (or just reloading) a run already there with the same options."""
    from vidvpr.distill.state import TRAIN_STATE
    from vidvpr.distill.train import distill

    return distill(out, replace(config, resume=(out / TRAIN_STATE).is_file()), on_step=on_step)


def _teacher_weights(run_dir: Path, sidecar: StudentRecord, out: Path) -> Path:
    """The teacher the students started from (its NetVLAD fitted on the training database), copied to `out`."""
    from vidvpr.models import load_model

    name = sidecar.teacher["name"]
    source = Path(sidecar.teacher["weights"]) if sidecar.teacher["weights"] else \
        netvlad_init_checkpoint(run_dir / MODELS_DIR, name)
    if load_model(name, source).fingerprint != sidecar.teacher["fingerprint"]:
        raise BadInput(f"{source}: not the teacher {run_dir} was distilled from (fingerprints differ); "
                       f"remove {run_dir.parent} and run the study again")
    return _copy(source, out)


def _copy(source: Path, out: Path) -> Path:
    """`source` copied to `out` under a temporary name (unless `out` holds the same bytes already)."""
    if not out.is_file() or FileRecord.of(out).hash != FileRecord.of(source).hash:
        with atomic_output(out) as tmp:
            shutil.copyfile(source, tmp)
    return out


def _evaluate(manifest: Path, out: Path, models: dict[str, str], roles: tuple[str, ...], enc: Path,
              cells: tuple[str, ...] | None, cache: Path, config: StudyConfig, on_images: Callable[[int], None]) -> Any:
    from vidvpr.evaluate.grid import evaluate_grid

    eval_config = EvalConfig(models=tuple(models[role] for role in roles), enc_dir=enc, cells=cells,
                             batch_size=config.batch_size, device=config.distill.device, cache_dir=cache,
                             backend=config.distill.backend)
    return evaluate_grid(manifest, out, eval_config, on_images=on_images)


def run_study(demo_dir: Path, config: StudyConfig, on_status: Callable[[str], None] | None = None,
              on_step: Callable[[dict[str, float]], None] | None = None,
              progress: Progress = no_progress) -> StudyResult:
    """Train the three students on the training world's database walk, evaluate them and the teacher on
    both worlds' query walks and on the held-out night walk (see the module docstring)."""
    demo_dir = Path(demo_dir)
    status = on_status or (lambda text: None)
    for needed in (SIDECAR_NAME, "manifest", "enc", "eval"):
        if not (demo_dir / needed).exists():
            raise BadInput(f"{demo_dir / needed}: not found; run `vidvpr demo run {demo_dir}` first")
    demo, definition = _demo_world(demo_dir, config.size)
    names = _grid_cells(demo_dir)
    train_cell = _cell_with_qp(names, config.train_qp)
    eval_cells = (REFERENCE, *names) if config.eval_qps is None else \
        tuple(_cell_with_qp(names, qp) for qp in config.eval_qps)
    study = ensure_writable_dir(demo_dir / STUDY_DIR)
    models_dir = ensure_writable_dir(study / "models")
    cache = demo_dir / "eval" / "descriptors"  # the demo run's: the teacher's descriptors are there
    max_steps = training_budget(config, demo.size["name"])
    base = replace(config.distill, train=demo_dir / "manifest", enc_dir=demo_dir / "enc", teacher=DEFAULT_MODEL,
                   cache_dir=cache, max_steps=max_steps)
    students = {"distilled": replace(base, lq=(train_cell,)),
                "finetuned": replace(base, lq=(train_cell,), loss=config.finetune_loss),
                "night": replace(base, lq=config.night_lq)}
    stages: dict[str, float] = {}
    runs: dict[str, Any] = {}
    models: dict[str, str] = {}
    for role in STUDENTS:
        status(f"train {role} ({students[role].loss}; {', '.join(students[role].lq)})")
        started = time.perf_counter()
        runs[role] = _train(study / role, students[role], on_step)
        stages[f"train {role}"] = round(time.perf_counter() - started, 1)
        named = _copy(runs[role].student, models_dir / f"{role}.pt")  # evaluation labels name the file
        _copy(runs[role].sidecar, named.with_suffix(".json"))  # so eval records which evaluated videos it trained on
        models[role] = f"{DEFAULT_MODEL}:{named}"
    sidecars = {role: StudentRecord.load(runs[role].sidecar) for role in STUDENTS}
    teacher = _teacher_weights(study / "distilled", sidecars["distilled"], models_dir / f"{TEACHER}.pt")
    models[TEACHER] = f"{DEFAULT_MODEL}:{teacher}"

    evaluations: dict[str, Any] = {}
    started = time.perf_counter()
    folder, roles = EVALUATIONS["train"]
    evaluations["train"] = _evaluate(demo_dir / "manifest", study / folder, models, roles, demo_dir / "enc", eval_cells,
                                     cache, config, progress("eval training world", None))
    stages["eval training world"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    resolutions = ",".join(dict.fromkeys(cell.split("/")[0] for cell in eval_cells if cell != REFERENCE))
    qps = tuple(sorted({int(cell.rsplit("qp", 1)[1]) for cell in eval_cells if cell != REFERENCE}))
    heldout = prepare_heldout(demo_dir, definition, demo.size["name"], qps, resolutions,
                              lambda stage, total: progress(f"held-out world: {stage}", total))
    stages["held-out world"] = round(time.perf_counter() - started, 1)
    heldout_cache = heldout.out_dir / "descriptors"
    walks = (("heldout", heldout.walk("day"), eval_cells), ("night", heldout.walk("night"), (REFERENCE,)))
    for key, walk, cells in walks:
        folder, roles = EVALUATIONS[key]
        started = time.perf_counter()
        evaluations[key] = _evaluate(heldout.manifests[walk], study / folder, models, roles, heldout.out_dir / "enc",
                                     cells, heldout_cache, config, progress(f"eval {EVALUATION_NAMES[key]}", None))
        stages[f"eval {key}"] = round(time.perf_counter() - started, 1)

    labels = {_label(model): role for role, model in models.items()}
    summary = {key: recall_at_1(evaluation, labels) for key, evaluation in evaluations.items()}
    trained = {h for sidecar in sidecars.values() for h in sidecar.videos.values()}
    seen = sorted(name for name, digest in heldout.videos.items() if digest in trained)
    if seen:  # never by construction: the held-out world has its own seed (checked by the definition)
        LOG.warning("the students trained on videos of the held-out world: %s", ", ".join(seen))
    from vidvpr.demo.study_plot import plot_worlds

    plot = plot_worlds(summary, study / WORLDS_PLOT)
    record = study / STUDY_FILE
    StudyRecord(
        train_cell=train_cell, eval_cells=list(eval_cells), night_cells=[REFERENCE],
        config=_plain(asdict(config)), max_steps=max_steps,
        worlds={"train": {"seed": definition.seed, "size": demo.size, "definition": definition.model_dump(mode="json"),
                          "demo_record": FileRecord.of(demo_dir / SIDECAR_NAME, demo_dir).model_dump(),
                          "videos": {name: t.video.hash for name, t in demo.traversals.items()}},
                "heldout": {"seed": heldout.definition.seed, "size": demo.size,
                            "definition": heldout.definition.model_dump(mode="json"),
                            "folder": str(heldout.out_dir.relative_to(demo_dir)), "videos": heldout.videos}},
        teacher={"name": DEFAULT_MODEL, "weights": FileRecord.of(teacher, demo_dir).model_dump(),
                 "fingerprint": sidecars["distilled"].teacher["fingerprint"]},
        students={role: StudentEntry(model=models[role], loss=sidecars[role].losses, steps=sidecars[role].steps,
                                     steps_per_epoch=sidecars[role].steps_per_epoch,
                                     lq=list(sidecars[role].degradation), seed=sidecars[role].seed,
                                     sidecar=FileRecord.of(runs[role].sidecar, demo_dir),
                                     checkpoint=FileRecord.of(runs[role].student, demo_dir),
                                     trained_videos=sidecars[role].videos) for role in STUDENTS},
        heldout_videos_trained_on=seen, recall_at_1=summary,
        results={key: _relative(evaluation.results_csv, demo_dir) for key, evaluation in evaluations.items()},
        plot=_relative(plot, demo_dir),
        stages_s={**stages, **{f"held-out {k}": v for k, v in heldout.stages_s.items()}},
        versions=runtime_versions(), command=command_line(),
    ).save(record)
    return StudyResult(runs, evaluations, summary, heldout, record, plot, stages)


def training_budget(config: StudyConfig, size: str) -> int | None:
    """Optimiser steps each student trains for on a demo of this size: the distillation options' own
    `max_steps` if set, else the size's (`max_steps_by_size`); None: one whole epoch."""
    return config.distill.max_steps if config.distill.max_steps is not None else config.max_steps_by_size.get(size)


def _relative(path: Path, demo_dir: Path) -> str:
    """`path` as study.json names it: relative to DIR, so that the folder can move."""
    return Path(os.path.relpath(path, demo_dir)).as_posix()


def _label(model: str) -> str:
    """How an evaluation labels `NAME:WEIGHTS` (vidvpr.evaluate.models.ModelChoice.label)."""
    name, _, weights = model.partition(":")
    return name if not weights else f"{name}:{Path(weights).stem}"


def _plain(value: Any) -> Any:
    """Dataclass data as JSON data (paths as strings, tuples as lists)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def recall_at_1(evaluation: Any, roles: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """model (its role when `roles` maps labels to roles) -> cell -> recall@1 at the smallest threshold."""
    smallest = min(row.threshold_m for row in evaluation.rows)
    out: dict[str, dict[str, float]] = {}
    for row in evaluation.rows:
        if row.threshold_m == smallest:
            out.setdefault((roles or {}).get(row.model, row.model), {})[row.cell] = row.recall[1]
    return out


def study_table(summary: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """recall@1 of every model: both worlds side by side (cells as columns), then the night walk."""
    lines = []
    day = [key for key in ("train", "heldout") if key in summary]
    cells = list(dict.fromkeys(cell for key in day for by_cell in summary[key].values() for cell in by_cell))
    # a world's name spans its cells' columns: wide enough for the name (with one cell, "training world"
    # ran into "held-out world")
    width = max(10, *(-(-(len(EVALUATION_NAMES[key]) + 2) // max(1, len(cells))) for key in day)) if day else 10
    head = "".join(f"{EVALUATION_NAMES[key]:>{width * len(cells)}}" for key in day)
    lines.append(f"{'recall@1, query walk':26}{head}")
    lines.append(f"{'':26}" + "".join(f"{cell.split('/')[-1]:>{width}}" for _ in day for cell in cells))
    roles = list(dict.fromkeys(role for key in day for role in summary[key]))
    for role in roles:
        values = [summary[key].get(role, {}).get(cell) for key in day for cell in cells]
        lines.append(f"{ROLE_NAMES.get(role, role)[:25]:26}" + "".join(f"{'—' if v is None else f'{v:.3f}':>{width}}"
                                                                          for v in values))
    if "train" in day:
        lines.append(f"{'':26}(training world: the students trained on its database walk, so it is not held-out)")
    if "night" in summary:
        night_cells = list(dict.fromkeys(cell for by_cell in summary["night"].values() for cell in by_cell))
        lines.append("")
        lines.append(f"{'recall@1, night walk':26}" + "".join(f"{cell:>12}" for cell in night_cells)
                     + "   (held-out world, searched in its day database)")
        for role, by_cell in summary["night"].items():
            lines.append(f"{ROLE_NAMES.get(role, role)[:25]:26}" + "".join(f"{by_cell.get(c, float('nan')):12.3f}"
                                                                              for c in night_cells))
    return lines
