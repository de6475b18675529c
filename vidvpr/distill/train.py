"""`vidvpr distill`: train a student on low-quality images to follow a teacher on clean ones.

After Yang, Jin et al. (LoQI-VPR): teacher and student start from the same weights; the frozen
teacher sees the clean image, the student its low-quality counterpart, and the student learns
from ICKD, descriptor MSE and/or NetVLAD's triplet loss. The teacher's outputs are inherited
(computed once, cached; NocPlace), so with ICKD and MSE the teacher never runs during training.

Adam with an exponential decay per step (the rate falls to `lr_decay` of itself over each
epoch); `accumulate` batches per optimiser step, which together give the gradients of one batch
of that size (`vidvpr.distill.step`); the order of each epoch, the negative pools and
everything else random derive from (seed, epoch, step), and the resumable state is written every
`checkpoint_every` steps, at each epoch's end and at the last step, so a resumed run reproduces an
uninterrupted one; `max_steps` stops training early (a budget: the first steps of the same run).
Under torchrun, several processes share each batch and follow the single-process run to within
floating-point rounding (`vidvpr.distill.distributed`). Outputs, under RUN, written by
the main process: student.pt (loads in `vidvpr eval --model NAME:RUN/student.pt`) and its
sidecar student.json, checkpoints/epoch-NNN.pt, losses.csv, train_state.pt, tensorboard/.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidvpr.core.atomic import ensure_writable_dir, refuse_output_inside, removing_new_dirs
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import command_line, runtime_versions
from vidvpr.core.records import FileRecord
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.extract import ForwardCounter, resolve_device
from vidvpr.distill.config import DistillConfig, StudentRecord, triplet_radii, validate_config
from vidvpr.distill.degrade import parse_low_quality
from vidvpr.distill.distributed import Group, check_batch_size, joined, launched_processes
from vidvpr.distill.losses import DistillLoss
from vidvpr.distill.mining import TripletCandidates, mine, triplet_candidates
from vidvpr.distill.pairs import TrainingSet, load_training_set
from vidvpr.distill.state import (LOSSES_CSV, TRAIN_STATE, Progress, TensorBoard, arithmetic, load_state, same_arithmetic,
                                  save_state, write_curve)
from vidvpr.distill.step import LatentDescriptors, StepInputs, describe_images, needs_descriptors, step_gradients
from vidvpr.distill.targets import TeacherTargets, inherited_targets
from vidvpr.distill.teacher import make_student, prepare_teacher, set_training
from vidvpr.models import VPRModel, save_model
from vidvpr.models.backends import resolve_backend
from vidvpr.models.initialise import model_versions

LOG = logging.getLogger(__name__)

STUDENT = "student.pt"
STUDENT_SIDECAR = "student.json"
CHECKPOINTS_DIR = "checkpoints"
DESCRIPTORS_DIR = "descriptors"


@dataclass
class DistillResult:
    """What `distill` wrote and how the training went."""

    student: Path
    sidecar: Path
    losses_csv: Path
    steps: int
    resumed_from: int
    final_losses: dict[str, float]
    teacher_forwards: dict[str, Any]
    elapsed_s: float


class _Counter:
    """Images through a module's forward (a hook on the teacher's backbone)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.images = 0
        self.handle = module.register_forward_hook(self._count)

    def _count(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: object) -> None:
        self.images += int(inputs[0].shape[0])


@dataclass
class _Run:
    """Everything the loop reads."""

    config: DistillConfig
    loss: DistillLoss
    training: TrainingSet
    teacher: VPRModel
    student: VPRModel
    queries: np.ndarray
    candidates: TripletCandidates | None
    targets: TeacherTargets | None
    device: torch.device
    group: Group
    forward: nn.Module  # the student's `LatentDescriptors`, in DistributedDataParallel with several processes

    @property
    def images_per_step(self) -> int:
        return self.config.batch_size * self.config.accumulate

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.queries) / self.images_per_step)

    @property
    def total_steps(self) -> int:
        """Where training stops: the end of the last epoch, or the step budget if that comes first."""
        total = self.config.epochs * self.steps_per_epoch
        return total if self.config.max_steps is None else min(total, self.config.max_steps)

    def step_queries(self, step: int) -> list[int]:
        epoch, in_epoch = divmod(step, self.steps_per_epoch)
        order = self.queries[np.random.default_rng([self.config.seed, epoch]).permutation(len(self.queries))]
        return [int(q) for q in order[in_epoch * self.images_per_step:(in_epoch + 1) * self.images_per_step]]


def _training_queries(training: TrainingSet, candidates: TripletCandidates | None) -> np.ndarray:
    places = np.arange(len(training.places)) if candidates is None else np.flatnonzero(candidates.usable)
    if candidates is not None and len(places) < len(training.places):
        LOG.warning("triplet loss: %d of %d training images have no positive or too few negatives; they are not "
                    "used as queries", len(training.places) - len(places), len(training.places))
    return np.concatenate([v * len(training.places) + places for v in range(len(training.variants))])


@torch.inference_mode()
def _refresh(run: _Run, progress: Progress) -> None:
    """Describe every pair with the current student and mine the triplets of this mining window."""
    step, config = progress.step, run.config
    epoch_end = (step // run.steps_per_epoch + 1) * run.steps_per_epoch
    window_end = min(epoch_end, (step // config.mine_every + 1) * config.mine_every)
    set_training(run.student, False)
    batches = [range(start, min(start + config.batch_size, run.training.pairs))
               for start in range(0, run.training.pairs, config.batch_size)]
    described = [describe_images(run.student, run.training.lq_images(batch), run.device)[0]
                 for batch in run.group.share(batches)]  # each process its share, all gathered
    set_training(run.student, True)
    local = torch.cat([v.cpu() for v in described if v is not None]) if described else \
        torch.empty((0, run.student.descriptor_dim))
    queries = [q for s in range(step, window_end) for q in run.step_queries(s)]
    assert run.candidates is not None
    progress.mined = mine(queries, run.group.gather_rows(local), len(run.training.places), run.candidates,
                          config.negatives, config.seed, step)


def _train_step(run: _Run, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                progress: Progress) -> dict[str, float]:
    config, step = run.config, progress.step
    lr = config.lr * config.lr_decay ** (step / run.steps_per_epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    inputs = StepInputs(run.step_queries(step), progress.mined, run.targets,
                        None if run.targets is not None else run.teacher, config.distilled_images == "all")
    values, images = step_gradients(run.forward, run.student, run.training, run.loss, inputs, config.batch_size,
                                    run.device, run.group, backward=lambda objective: scaler.scale(objective).backward())
    scaler.step(optimizer)
    scaler.update()
    return {"step": step + 1, "epoch": step // run.steps_per_epoch + 1, "lr": lr, "images": images, **values}


def _prepare(out_dir: Path, config: DistillConfig, cache: DescriptorCache, group: Group,
             on_status: Callable[[str], None]) -> tuple[_Run, dict[str, Any], int]:
    """The run before training (the student not yet distributed), what its teacher is, and the
    teacher's images for the inherited targets."""
    device = group.device
    loss = config.distill_loss()
    training = load_training_set(config.train, parse_low_quality(config.lq), out_dir, config.enc_dir, config.root)
    candidates = None
    if "triplet" in loss.terms:
        positive_m, negative_m = triplet_radii(training.reference_radius_m, config.positive_radius_m,
                                               config.negative_radius_m)
        candidates = triplet_candidates(training.positions(), training.headings(), positive_m,
                                        training.max_heading_diff_deg, negative_m, config.negatives)
    on_status("teacher")
    teacher, choice = prepare_teacher(config.teacher, training, out_dir, cache, device, config.batch_size)
    counter = ForwardCounter()  # images through the teacher for the targets, on whichever backend runs it
    targets = None
    if config.inherit_targets and loss.terms & {"ickd", "mse"}:
        on_status("targets")
        targets = inherited_targets(teacher, training, cache, "ickd" in loss.terms, config.batch_size, device,
                                    backend=config.backend, counter=counter)
    on_status("frames")
    training.prepare(need_hq=targets is None and bool(loss.terms & {"ickd", "mse"}))
    _warn_idle_resizes(training)
    student = make_student(teacher, config.freeze)
    run = _Run(config, loss, training, teacher, student, _training_queries(training, candidates), candidates, targets,
               device, group, LatentDescriptors(student))
    teacher_record = {"name": choice.name, "weights": str(choice.weights or ""), "fingerprint": teacher.fingerprint}
    return run, teacher_record, counter.images


def _warn_idle_resizes(training: TrainingSet) -> None:
    """A warning for each `resize:` that leaves the student's images as they are (judged on the first
    image of each variant): it never upscales, so on small frames it silently degrades nothing."""
    for variant, name in enumerate(training.variants):
        height, width = training.variant_image(variant, 0).shape[:2]
        for idle in training.low_quality.idle_resizes(width, height):
            LOG.warning("--lq %s leaves the %s images (%dx%d) as they are: resize never upscales", idle, name,
                        width, height)


def distill(out_dir: Path, config: DistillConfig, on_start: Callable[[int, int], None] | None = None,
            on_step: Callable[[dict[str, float]], None] | None = None,
            on_status: Callable[[str], None] | None = None) -> DistillResult:
    """Train the student into `out_dir` (see the module docstring); `on_start(total, done)` and
    `on_step(curve row)` report progress."""
    started = time.perf_counter()
    validate_config(config)
    # the backend that runs here goes into the results key and the student's record (auto differs by machine)
    config = replace(config, backend=resolve_backend(config.backend, config.device))
    processes = launched_processes()
    check_batch_size(config.batch_size, processes)
    device = processes.device(resolve_device(config.device))
    out_dir = Path(out_dir)
    if Path(config.train).is_dir():
        refuse_output_inside(out_dir, Path(config.train), "the training data folder")
    state_path = out_dir / TRAIN_STATE
    if config.resume and not state_path.is_file():
        raise BadInput(f"{out_dir}: nothing to resume (no {TRAIN_STATE}); run without --resume")
    finished = _finished_student(out_dir)
    if not config.resume and state_path.exists():
        if finished is None:
            raise BadInput(f"{out_dir}: holds a training run already; pass --resume to continue it, or choose another "
                           "--out")
        config = replace(config, resume=True)  # a rerun of a finished run: checked against its state like a resume
    status = on_status or (lambda text: None)
    with removing_new_dirs(out_dir), joined(processes, device) as group:
        if processes.main:
            ensure_writable_dir(out_dir)
        cache = DescriptorCache(config.cache_dir or out_dir / DESCRIPTORS_DIR)
        run, teacher_record, target_forwards = group.main_first(lambda: _prepare(out_dir, config, cache, group, status))
        run.forward = group.wrap(run.forward, all_weights_used=needs_descriptors(run.loss))
        counter = _Counter(run.teacher.encoder)
        optimizer = torch.optim.Adam([p for p in run.student.parameters() if p.requires_grad], lr=config.lr)
        scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
        data = {name: value for name, value in run.training.identity().items() if name != "source"}  # moves are fine
        key = {**config.results_key(), "teacher": teacher_record["fingerprint"], "data": data}
        progress = load_state(state_path, key, run.student, optimizer, scaler) if config.resume else \
            Progress(arithmetic=arithmetic(group.world_size))
        resumed_from = progress.step
        progress.teacher_forwards["targets"] += target_forwards
        total = run.total_steps
        if progress.step > total:
            raise BadInput(f"{out_dir}: holds a run of {progress.step} steps already, more than the {total} asked "
                           "for (--epochs, --max-steps); raise them or choose another --out")
        if on_start:
            on_start(total, progress.step)
        board = TensorBoard(out_dir / "tensorboard" if processes.main else None, progress.step)
        status("train")
        try:
            with same_arithmetic(progress.arithmetic, group.world_size):
                while progress.step < total:
                    _one_step(run, optimizer, scaler, progress, counter, board, out_dir, key, on_step)
        finally:
            board.close()
            counter.handle.remove()
        if finished is not None and resumed_from == progress.step == finished.steps:  # nothing trained: keep its files
            result = DistillResult(out_dir / STUDENT, out_dir / STUDENT_SIDECAR, out_dir / LOSSES_CSV, finished.steps,
                                   resumed_from, finished.final_losses, finished.teacher_forwards,
                                   round(time.perf_counter() - started, 3))
        else:
            result = _finish(out_dir, run, progress, teacher_record, started, resumed_from)
        group.barrier()  # every process has read its last frame
        if processes.main:
            run.training.cleanup()
    return result


def _finished_student(out_dir: Path) -> StudentRecord | None:
    """The record of the student a finished run in `out_dir` wrote, when it and its checkpoint are
    intact (None otherwise: the run is unfinished, or its student must be written again)."""
    sidecar, student = out_dir / STUDENT_SIDECAR, out_dir / STUDENT
    if not sidecar.is_file() or not student.is_file():
        return None
    try:
        record = StudentRecord.load(sidecar)
    except BadInput:
        return None
    return record if record.checkpoint.matches(student, check_hash=True) else None


def _one_step(run: _Run, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, progress: Progress,
              counter: _Counter, board: TensorBoard, out_dir: Path, key: dict[str, Any],
              on_step: Callable[[dict[str, float]], None] | None) -> None:
    config = run.config
    epoch, in_epoch = divmod(progress.step, run.steps_per_epoch)
    if run.candidates is not None and (in_epoch == 0 or progress.step % config.mine_every == 0):
        _refresh(run, progress)
    before = counter.images
    row = _train_step(run, optimizer, scaler, progress)
    images, teacher_images = (int(n) for n in run.group.sum(torch.tensor([row["images"], counter.images - before])))
    row["images"] = images  # of every process
    progress.step += 1
    progress.curve.append(row)
    epochs = progress.teacher_forwards["epochs"]
    epochs.extend([0] * (epoch + 1 - len(epochs)))
    epochs[epoch] += teacher_images
    board.log(row)
    if on_step:
        on_step(row)
    if not run.group.processes.main:
        return
    epoch_done = progress.step % run.steps_per_epoch == 0
    last = progress.step == run.total_steps  # a step budget may end training inside an epoch
    if epoch_done:
        folder = ensure_writable_dir(out_dir / CHECKPOINTS_DIR)
        run.student.update_fingerprint()
        save_model(run.student, folder / f"epoch-{epoch + 1:03d}.pt", include_encoder=True,
                   metadata={"epoch": epoch + 1, "step": progress.step})
    if epoch_done or last or progress.step % config.checkpoint_every == 0:
        save_state(out_dir / TRAIN_STATE, key, run.student, optimizer, scaler, progress)
        write_curve(out_dir / LOSSES_CSV, progress.curve)


def _finish(out_dir: Path, run: _Run, progress: Progress, teacher: dict[str, Any], started: float,
            resumed_from: int) -> DistillResult:
    """The student, its sidecar and the loss curve, written by the main process."""
    config = run.config
    run.student.eval()
    run.student.update_fingerprint()
    final = {name: value for name, value in (progress.curve[-1] if progress.curve else {}).items()
             if name in ("loss", "ickd", "mse", "triplet")}
    student_path, sidecar = out_dir / STUDENT, out_dir / STUDENT_SIDECAR
    elapsed = round(time.perf_counter() - started, 3)
    result = DistillResult(student_path, sidecar, out_dir / LOSSES_CSV, progress.step, resumed_from, final,
                           progress.teacher_forwards, elapsed)
    if not run.group.processes.main:
        return result
    write_curve(out_dir / LOSSES_CSV, progress.curve)
    save_model(run.student, student_path, include_encoder=True,
               metadata={"distilled_from": teacher["fingerprint"], "steps": progress.step})
    StudentRecord(
        model=run.student.name, checkpoint=FileRecord.of(student_path), teacher=teacher,
        losses=sorted(run.loss.terms),
        weights={"lambda_ickd": run.loss.lambda_ickd, "lambda_mse": run.loss.lambda_mse, "margin": run.loss.margin},
        distilled_images=config.distilled_images if run.loss.terms & {"ickd", "mse"} else "none",
        triplet_radii_m=None if run.candidates is None else {
            "positive": run.candidates.positive_radius_m, "negative": run.candidates.negative_radius_m,
            "reference": run.training.reference_radius_m},
        data=run.training.identity(), degradation=run.training.low_quality.names, seed=config.seed,
        config={name: str(value) if isinstance(value, Path) else value for name, value in vars(config).items()},
        steps=progress.step, epochs=config.epochs, max_steps=config.max_steps, steps_per_epoch=run.steps_per_epoch,
        pairs=run.training.pairs, queries=len(run.queries),
        final_losses=final, teacher_forwards=progress.teacher_forwards,
        versions={**runtime_versions(), **model_versions(), "torch_threads": str(progress.arithmetic.get("threads"))},
        command=command_line(), elapsed_s=elapsed,
        processes=run.group.world_size, videos=run.training.trained_videos(),
    ).save(sidecar)
    return result
