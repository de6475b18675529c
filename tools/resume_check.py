#!/usr/bin/env python3
"""Is a resumed `vidvpr distill` bit for bit the uninterrupted run? Runs and compares them.

The demo study's distilled student (database walk of `vidvpr demo run DEMO`, the QP 45 cell,
ICKD + MSE + triplet, 2 negatives, batch 8) with a checkpoint every 20 steps. Every run stops
after step `--steps` + 1, so its train_state.pt holds step `--steps`. A "resume" run is stopped
after step 25 and resumed from its step-20 state, optionally with another torch thread count
(`--resume-threads`), and with `--unpinned` without the thread count the run started with (as
vidvpr did before resumed runs took it over). Start several runs at once to try them under load:

    for run in whole-a whole-b; do python tools/resume_check.py run DEMO OUT/$run whole & done
    python tools/resume_check.py run DEMO OUT/resumed resume &
    python tools/resume_check.py run DEMO OUT/one-thread resume --resume-threads 1 &
    python tools/resume_check.py run DEMO OUT/unpinned resume --resume-threads 1 --unpinned &
    wait; python tools/resume_check.py compare OUT/whole-a OUT/whole-b OUT/resumed OUT/one-thread OUT/unpinned

`compare` prints, against the first run, whether the student weights of train_state.pt and the
loss curves are bitwise identical, the largest weight difference and the first differing step.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from vidvpr.distill import train
from vidvpr.distill.config import DistillConfig
from vidvpr.models.checkpoints import load_checkpoint


def stop_after(step: int, seen: list[int] | None = None) -> Callable[[dict[str, float]], None]:
    def hook(row: dict[str, float]) -> None:
        if seen is not None:
            seen.append(torch.get_num_threads())
        if row["step"] == step:
            raise KeyboardInterrupt
    return hook


def run(args: argparse.Namespace) -> None:
    demo = args.demo
    config = DistillConfig(train=demo / "manifest", enc_dir=demo / "enc", lq=(args.lq,), negatives=2,
                           cache_dir=demo / "eval" / "descriptors", checkpoint_every=20)
    last = args.steps + 1
    with contextlib.suppress(KeyboardInterrupt):
        train.distill(args.out, config, on_step=stop_after(last if args.mode == "whole" else 25))
    if args.mode == "resume":
        if args.resume_threads:
            torch.set_num_threads(args.resume_threads)
        if args.unpinned:
            train.same_arithmetic = lambda saved, processes: contextlib.nullcontext()  # type: ignore[assignment]
        seen: list[int] = []
        with contextlib.suppress(KeyboardInterrupt):
            train.distill(args.out, replace(config, resume=True), on_step=stop_after(last, seen))
        print(f"{args.out}: resumed with {sorted(set(seen))} torch threads")


def load(folder: Path) -> tuple[int, dict[str, torch.Tensor], list[dict[str, str]]]:
    state = load_checkpoint(folder / "train_state.pt")
    with open(folder / "losses.csv", newline="") as handle:
        return int(state["step"]), state["student"], list(csv.DictReader(handle))


def compare(args: argparse.Namespace) -> None:
    step, weights, rows = load(args.runs[0])
    print(f"reference {args.runs[0]}: step {step}")
    for folder in args.runs[1:]:
        other_step, other, other_rows = load(folder)
        identical = other.keys() == weights.keys() and all(torch.equal(weights[k], other[k]) for k in weights)
        largest = max(float((weights[k] - other[k]).abs().max()) for k in weights)
        first = next((int(a["step"]) for a, b in zip(rows, other_rows) if a != b), None)
        worst = max((abs(float(a[t]) - float(b[t])) / abs(float(a[t])) for a, b in zip(rows, other_rows)
                     for t in ("loss", "ickd", "mse", "triplet")), default=0.0)
        print(f"{folder}: step {other_step}; weights bitwise identical: {identical} (largest difference "
              f"{largest:.3g}); loss curve identical: {rows == other_rows} (first differing step {first}, "
              f"largest relative difference {worst:.3g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="one training run")
    one.add_argument("demo", type=Path, help="a folder `vidvpr demo run` made")
    one.add_argument("out", type=Path)
    one.add_argument("mode", choices=("whole", "resume"))
    one.add_argument("--lq", default="320x176/qp45")
    one.add_argument("--steps", type=int, default=60, help="compare at this step (a multiple of 20, above 20)")
    one.add_argument("--resume-threads", type=int, help="torch threads of the resumed part")
    one.add_argument("--unpinned", action="store_true", help="resume without the run's own thread count")
    both = commands.add_parser("compare", help="compare runs with the first")
    both.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    run(args) if args.command == "run" else compare(args)


if __name__ == "__main__":
    main()
