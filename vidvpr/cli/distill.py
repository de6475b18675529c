"""`vidvpr distill`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from vidvpr.cli.common import NonEmptyPath, emit_json, handle_errors, output_options
from vidvpr.distill.config import (DISTILLED_IMAGES, FOLDER_REFERENCE_RADIUS_M, NEGATIVE_RADIUS_FRACTION,
                                   POSITIVE_RADIUS_FRACTION, DistillConfig)
from vidvpr.models.backends import BACKEND_CHOICES

DEFAULTS = DistillConfig(train=Path("."), lq=())


@click.command("distill")
@click.option("--teacher", default=DEFAULTS.teacher, metavar="NAME[:WEIGHTS]",
              help="Teacher model as `vidvpr eval --model` takes it; without weights, NetVLAD is initialised on "
                   "the training database frames as `vidvpr eval` does it.")
@click.option("--train", "train", required=True, type=click.Path(path_type=Path),
              help="Training data: a vidvpr manifest folder (its database recordings) or a VPR-datasets-downloader "
                   "image folder (positions from the file names).")
@click.option("--lq", "lq", multiple=True, required=True, metavar="CELL|jpeg:Q|resize:NNNp|lowlight:EV|noise:S|blur:PX",
              help="What the student sees (repeatable): encode cells such as 360p/qp40 (a pair per cell), and/or "
                   "degradations applied in order, e.g. --lq resize:240p --lq jpeg:10; lowlight:-3 is 3 stops less "
                   "light (linear light, then a dark exposure's sensor noise and the camera's gamma), noise:SIGMA "
                   "Gaussian noise in 8-bit levels, blur:PX a Gaussian blur of PX pixels.")
@click.option("--out", "out_dir", required=True, type=NonEmptyPath(path_type=Path),
              help="Run folder: student.pt (+ student.json), checkpoints/, losses.csv, train_state.pt.")
@click.option("--enc", "enc_dir", type=click.Path(path_type=Path), default=None,
              help="Encode folder of the --lq cells [default: the manifest folder's sibling 'enc'].")
@click.option("--loss", default=DEFAULTS.loss, help="Loss terms: any of ickd, mse, triplet, comma-separated "
                                                    "(triplet alone is the fine-tuned baseline).")
@click.option("--lambda-ickd", type=float, default=DEFAULTS.lambda_ickd, help="Weight of the ICKD term.")
@click.option("--lambda-mse", type=float, default=DEFAULTS.lambda_mse, help="Weight of the descriptor MSE term.")
@click.option("--margin", type=float, default=DEFAULTS.margin, help="Triplet margin on squared distances.")
@click.option("--negatives", type=int, default=DEFAULTS.negatives, help="Hard negatives per query (triplet loss).")
@click.option("--pos-radius", "--positive-radius", "positive_radius_m", type=float, default=None,
              help=f"Triplet positives within this many metres [default: {POSITIVE_RADIUS_FRACTION:g} x the radius "
                   f"the data is evaluated at (the manifest's; {FOLDER_REFERENCE_RADIUS_M:g} m for image folders), "
                   f"or {POSITIVE_RADIUS_FRACTION / NEGATIVE_RADIUS_FRACTION:g} x --neg-radius; NetVLAD's 10 of 25 m].")
@click.option("--neg-radius", "--negative-radius", "negative_radius_m", type=float, default=None,
              help=f"Triplet negatives beyond this many metres; between the radii, places are neither [default: "
                   f"{NEGATIVE_RADIUS_FRACTION:g} x the radius the data is evaluated at, or "
                   f"{NEGATIVE_RADIUS_FRACTION / POSITIVE_RADIUS_FRACTION:g} x --pos-radius].")
@click.option("--distill-images", "distilled_images", default=DEFAULTS.distilled_images,
              type=click.Choice(DISTILLED_IMAGES),
              help="What ICKD and MSE compare with the teacher: all, every image of the batch (query, positive, "
                   "negatives), as LoQI-VPR; queries, the queries only.")
@click.option("--mine-every", type=int, default=DEFAULTS.mine_every,
              help="Optimiser steps between refreshes of the student's descriptors for hard-negative mining.")
@click.option("--epochs", type=int, default=DEFAULTS.epochs, help="Passes over the training pairs.")
@click.option("--max-steps", type=int, default=DEFAULTS.max_steps,
              help="Stop after this many optimiser steps (a budget inside --epochs: the first steps of the same "
                   "run, which --resume without it continues) [default: every step of every epoch].")
@click.option("--lr", type=float, default=DEFAULTS.lr, help="Adam learning rate.")
@click.option("--lr-decay", type=float, default=DEFAULTS.lr_decay,
              help="The learning rate decays exponentially, step by step, to this fraction over each epoch.")
@click.option("--batch-size", type=int, default=DEFAULTS.batch_size,
              help="Query images per forward pass; under torchrun the global batch, split between the processes.")
@click.option("--accumulate", type=int, default=DEFAULTS.accumulate, help="Forward passes per optimiser step.")
@click.option("--freeze", default=DEFAULTS.freeze, type=click.Choice(("early", "none")),
              help="early: keep the first, high-resolution layers fixed, as NetVLAD trains (half the cost on a "
                   "CPU); none: train every weight.")
@click.option("--seed", type=int, default=DEFAULTS.seed, help="Seed of the epoch order and the negative pools.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (same options).")
@click.option("--device", default=DEFAULTS.device, help="cpu, cuda or mps (mixed precision on cuda).")
@click.option("--backend", default=DEFAULTS.backend, type=click.Choice(BACKEND_CHOICES),
              help="What runs the teacher for its inherited targets (as `vidvpr eval --backend`); training is torch.")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
              help="Descriptor cache for the inherited teacher targets, shareable with `vidvpr eval --cache` "
                   "[default: OUT/descriptors].")
@click.option("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every,
              help="Optimiser steps between resumable checkpoints (also at each epoch's end).")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset root [default: the manifest's].")
@output_options
@handle_errors
def distill_command(teacher: str, train: Path, lq: tuple[str, ...], out_dir: Path, enc_dir: Path | None, loss: str,
                    lambda_ickd: float, lambda_mse: float, margin: float, negatives: int,
                    positive_radius_m: float | None, negative_radius_m: float | None, distilled_images: str,
                    mine_every: int, epochs: int, max_steps: int | None,
                    lr: float, lr_decay: float, batch_size: int, accumulate: int, freeze: str, seed: int, resume: bool,
                    device: str, backend: str, cache_dir: Path | None, checkpoint_every: int, root: Path | None,
                    quiet: bool, as_json: bool) -> None:
    """Distil a student that sees low-quality images from a teacher that sees clean ones (LoQI-VPR:
    ICKD + descriptor MSE + triplet), with the teacher's outputs computed once and inherited."""
    from vidvpr.core.progress import progress_bar
    from vidvpr.distill.distributed import RaisedOnMain, launched_processes
    from vidvpr.distill.train import distill

    processes = launched_processes()  # under torchrun: only the main process reports
    quiet, as_json = quiet or not processes.main, as_json and processes.main
    config = DistillConfig(train=train, lq=lq, teacher=teacher, enc_dir=enc_dir, root=root, loss=loss,
                           lambda_ickd=lambda_ickd, lambda_mse=lambda_mse, margin=margin, negatives=negatives,
                           positive_radius_m=positive_radius_m, negative_radius_m=negative_radius_m,
                           distilled_images=distilled_images,
                           mine_every=mine_every, epochs=epochs, max_steps=max_steps, lr=lr, lr_decay=lr_decay,
                           batch_size=batch_size,
                           accumulate=accumulate, freeze=freeze, seed=seed, device=device, backend=backend,
                           cache_dir=cache_dir, checkpoint_every=checkpoint_every, resume=resume)
    logger = logging.getLogger("vidvpr")
    level = logger.level
    if not processes.main:
        logger.setLevel(logging.ERROR)  # warnings once, from the main process
    try:
        with progress_bar(None, "distill", unit="step", quiet=quiet) as bar:
            def started(total: int, done: int) -> None:
                bar.reset(total=total)
                bar.update(done)

            def stepped(row: dict[str, float]) -> None:
                bar.set_postfix({"loss": f"{row['loss']:.4g}"}, refresh=False)
                bar.update(1)

            result = distill(out_dir, config, on_start=started, on_step=stepped, on_status=bar.set_description)
    except RaisedOnMain as exc:  # the main process says it
        sys.exit(exc.exit_code)
    finally:
        logger.setLevel(level)
    if as_json:
        emit_json({"student": str(result.student), "sidecar": str(result.sidecar), "losses": str(result.losses_csv),
                   "steps": result.steps, "resumed_from": result.resumed_from, "final_losses": result.final_losses,
                   "teacher_forwards": result.teacher_forwards, "elapsed_s": result.elapsed_s,
                   "skipped": result.steps == result.resumed_from})  # nothing left to train, as eval's --json says
    elif not quiet:
        losses = ", ".join(f"{name} {value:.4g}" for name, value in result.final_losses.items())
        click.echo(f"student {result.student} after {result.steps} steps ({losses}); loss curve {result.losses_csv}",
                   err=True)
        trained_on = (Path(train) / "manifest.json").is_file()
        where = ("here on the manifest it trained on, whose database frames are its training images; a held-out "
                 "manifest says whether it generalises") if trained_on else "MANIFEST: a manifest it did not train on"
        click.echo(f"evaluate it against its teacher ({where}): "
                   f"{evaluate_hint(train, enc_dir, teacher, result.student)}", err=True)


def evaluate_hint(train: Path, enc_dir: Path | None, teacher: str, student: Path) -> str:
    """The eval command that compares the student with the teacher it started from on the manifest it
    was trained from (MANIFEST stands for one when it trained on an image folder), into RUN/eval, over
    the encode grid the run read its cells from (`--enc`, else the manifest's sibling 'enc' if any:
    without --enc, `vidvpr eval` evaluates the reference views only).

    A teacher without weights is named by the NetVLAD initialisation the run fitted (RUN/models/):
    named alone, `vidvpr eval` would fit NetVLAD afresh on the evaluated manifest's database, which on
    any other manifest is not the model the student started from."""
    import shlex

    from vidvpr.evaluate.config import MODELS_DIR, netvlad_init_checkpoint

    run = Path(student).parent
    trained_on = (Path(train) / "manifest.json").is_file()
    manifest = shlex.quote(str(train)) if trained_on else "MANIFEST"
    if enc_dir is None and trained_on and (Path(train).parent / "enc").is_dir():
        enc_dir = Path(train).parent / "enc"  # where `vidvpr distill` looks for the --lq cells by default
    enc = f" --enc {shlex.quote(str(enc_dir))}" if enc_dir else ""
    model, _, weights = teacher.partition(":")
    fitted = netvlad_init_checkpoint(run / MODELS_DIR, model)
    if not weights and fitted.is_file():
        teacher = f"{model}:{fitted}"
    return (f"vidvpr eval {manifest}{enc} --out {shlex.quote(str(run / 'eval'))} --model {shlex.quote(teacher)} "
            f"--model {shlex.quote(f'{model}:{student}')}")
