#!/usr/bin/env python3
"""Per-step speed of distillation with inherited teacher targets against running the teacher every step.

The paper's setting: the teacher sees the clean image at the reference size (640×480 here, as
Pittsburgh's), the student the same image shrunk to 240 rows and JPEG-compressed
(``--lq resize:240p --lq jpeg:20``). Both modes train the same student on the same pairs with the
same losses (ICKD + MSE: the terms that need the teacher; the triplet loss costs the same in both)
in this one process, alternating, `--repeats` times each. Inherited targets are computed once per
repeat, before the timed steps, and reported on their own (with the number of epochs after which
they have paid for themselves). Images are made here (smooth random textures, VPR-named JPEGs in
a temporary folder), nothing is downloaded.

    OMP_WAIT_POLICY=PASSIVE python tools/bench_distill.py                 # the vidvpr defaults
    OMP_WAIT_POLICY=PASSIVE python tools/bench_distill.py --freeze none   # every student weight trained

Prints both rates (steps/s and images/s) and their ratio; target: inherited ≥ 1.6× every-step.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from vidvpr.dataset.vpr_names import VprName, format_vpr_filename
from vidvpr.distill.config import DistillConfig
from vidvpr.distill.train import distill


def write_images(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> None:
    """`count` smooth random RGB textures of `size` (W, H), 2 m apart along a street, VPR-named."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        coarse = rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
        image = cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)
        name = format_vpr_filename(VprName(500000.0 + 2.0 * i, 4000000.0, pano_id=f"bench{i:04d}", heading_deg=0))
        cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def timed_run(out: Path, config: DistillConfig) -> tuple[float, float]:
    """(median seconds per step after the first, seconds spent computing the inherited targets)."""
    marks: list[float] = []
    status: dict[str, float] = {}
    distill(out, config, on_step=lambda row: marks.append(time.perf_counter()),
            on_status=lambda stage: status.setdefault(stage, time.perf_counter()))
    targets_s = status["frames"] - status["targets"] if "targets" in status else 0.0
    return float(np.median(np.diff(marks))), targets_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96, help="training images (one pass)")
    parser.add_argument("--size", default="640x480", help="the teacher's (reference) image size, WxH")
    parser.add_argument("--lq", default="resize:240p,jpeg:20", help="what the student sees")
    parser.add_argument("--loss", default="ickd,mse")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--freeze", default="early", choices=("early", "none"), help="as vidvpr distill --freeze")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    work = Path(tempfile.mkdtemp(prefix="vidvpr-bench-distill-"))
    try:
        write_images(work / "data", args.images, (width, height))
        base = DistillConfig(train=work / "data", lq=tuple(args.lq.split(",")), loss=args.loss,
                             batch_size=args.batch_size, freeze=args.freeze, checkpoint_every=10_000)
        per_step: dict[bool, list[float]] = {True: [], False: []}
        targets_s: list[float] = []
        for repeat in range(args.repeats):
            for inherit in (True, False):
                # a fresh cache each time: the inherited run pays for its targets, timed apart
                config = replace(base, inherit_targets=inherit, cache_dir=work / f"cache-{repeat}-{inherit}")
                step_s, computing_s = timed_run(work / f"run-{repeat}-{inherit}", config)
                per_step[inherit].append(step_s)
                if inherit:
                    targets_s.append(computing_s)
        inherited, every = statistics.median(per_step[True]), statistics.median(per_step[False])
        steps_per_epoch = -(-args.images // args.batch_size)
        print(f"teacher {width}x{height}, student sees {args.lq} ({args.images} images, batch {args.batch_size}, "
              f"loss {args.loss}, freeze {args.freeze}, torch threads {torch.get_num_threads()}, {args.repeats} repeats, median step)")
        print(f"teacher every step:  {1 / every:7.3f} steps/s  {args.batch_size / every:7.2f} img/s")
        print(f"inherited targets:   {1 / inherited:7.3f} steps/s  {args.batch_size / inherited:7.2f} img/s")
        print(f"speed-up per step:   {every / inherited:7.2f}x  (target >= 1.6x)")
        saved = (every - inherited) * steps_per_epoch
        print(f"inherited targets computed once in {statistics.median(targets_s):.1f} s; "
              f"each epoch then saves {saved:.1f} s of teacher forwards")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
