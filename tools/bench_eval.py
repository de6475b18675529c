#!/usr/bin/env python3
"""Eval throughput against the model's pure forward rate, and the cost of a cached rerun, in one run.

The peer is the same model running forward passes on random tensors of the same batch size and
input size as the eval's frames (no decoding, no I/O): the best the eval could do on this machine.
The eval is timed on the descriptor stage of `vidvpr eval` (decode + preprocess + forward + cache
write, with decoding in a background thread); the model's NetVLAD initialisation is done first
and not timed. Then the same eval again, served from the descriptor cache.

    vidvpr demo run /tmp/demo                                   # or any manifest + encode grid
    python tools/bench_eval.py /tmp/demo/manifest --enc /tmp/demo/enc --cells reference,320x176/qp40

Prints images/s of both and their ratio (target: eval ≥ 90% of the forward rate), and the cached
rerun's wall time as a share of the first run's (target: under 5%).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from vidvpr.dataset.manifest import load_manifest
from vidvpr.evaluate.cells import reference_cell
from vidvpr.evaluate.grid import EvalConfig, evaluate_grid
from vidvpr.media.probe import probe_video
from vidvpr.models import load_model


def forward_rate(model: torch.nn.Module, batch_size: int, size: tuple[int, int], batches: int) -> float:
    """Images per second of forward passes alone on random (batch, 3, H, W) input."""
    data = torch.randn(batch_size, 3, size[1], size[0])
    with torch.inference_mode():
        model(data)  # warm-up
        started = time.perf_counter()
        for _ in range(batches):
            model(data)
    return batch_size * batches / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--enc", type=Path, default=None)
    parser.add_argument("--cells", default="reference")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--forward-batches", type=int, default=30)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vidvpr-bench-eval-"))
    try:
        manifest = load_manifest(args.manifest)
        config = EvalConfig(enc_dir=args.enc, cells=tuple(args.cells.split(",")), batch_size=args.batch_size)
        # initialise the model once (k-means), untimed; its checkpoint is reused below
        evaluate_grid(args.manifest, work / "init", replace(config, cells=("reference",)))
        checkpoint = work / "init" / "models" / "netvlad-efficientnet-lite0-netvlad-init.pt"
        model = load_model("netvlad-efficientnet-lite0", checkpoint)
        info = probe_video(reference_cell(manifest).videos[next(iter(reference_cell(manifest).videos))][0])
        forward = forward_rate(model, args.batch_size, (info.width, info.height), args.forward_batches)

        timed_config = replace(config, models=(f"netvlad-efficientnet-lite0:{checkpoint}",))
        started = time.perf_counter()
        first = evaluate_grid(args.manifest, work / "eval", timed_config)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        again = evaluate_grid(args.manifest, work / "eval", timed_config)
        again_s = time.perf_counter() - started
        eval_rate = first.forward_images / first_s
        print(f"frames {info.width}x{info.height}, batch {args.batch_size}, torch threads {torch.get_num_threads()}")
        print(f"pure forward:          {forward:8.1f} img/s")
        print(f"eval (first run):      {eval_rate:8.1f} img/s  ({first.forward_images} images in {first_s:.1f} s, "
              "search and result files included)")
        print(f"eval / forward:        {eval_rate / forward:8.2f}  (target >= 0.90)")
        print(f"cached rerun:          {again_s:8.2f} s, {again.forward_images} forward images, "
              f"{100 * again_s / first_s:.1f}% of the first run (target < 5%)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
