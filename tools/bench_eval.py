#!/usr/bin/env python3
"""Eval on the CPU per inference backend: forward rates against torch's, descriptor agreement,
eval throughput and recall, and the cost of a cached rerun, all in one run.

Forward rate: each backend (torch, then every installed ONNX runtime: onnx, openvino) runs
forward passes on the same random batches of the eval's input size, interleaved round by round so
that the machine's load hits every backend alike; the ratio to torch is taken per round (median and
spread). Agreement: the smallest cosine between a backend's descriptors and torch's on real
reference frames. Eval: `evaluate_grid` on the given cells per backend (decode + preprocess +
forward + cache write + search), its images/s against that backend's pure forward rate, recall@1
per cell against torch's, then the same eval again, served from the caches.

    vidvpr demo run /tmp/demo                                   # or any manifest + encode grid
    python tools/bench_eval.py /tmp/demo/manifest --enc /tmp/demo/enc --cells reference,320x176/qp40

Targets (issue 16): a backend at >= 1.5x torch's forward rate, descriptors within cosine 0.999,
recall@1 equal to 3 decimals; eval >= 0.90 of the forward rate; a cached rerun < 5% of the first.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line runs torch (vidvpr/cli/__init__.py)

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vidvpr.dataset.manifest import load_manifest  # noqa: E402
from vidvpr.descriptors.cache import DescriptorCache  # noqa: E402
from vidvpr.descriptors.extract import ForwardCounter  # noqa: E402
from vidvpr.descriptors.frames import frame_batches  # noqa: E402
from vidvpr.evaluate.cells import reference_cell  # noqa: E402
from vidvpr.evaluate.grid import EvalConfig, evaluate_grid  # noqa: E402
from vidvpr.evaluate.models import ModelChoice, prepare_model  # noqa: E402
from vidvpr.media.probe import probe_video  # noqa: E402
from vidvpr.models import load_model  # noqa: E402
from vidvpr.models.backends import BACKENDS, installed  # noqa: E402
from vidvpr.models.inference import Inference  # noqa: E402


def forward_rates(runners: dict[str, Inference], batch: torch.Tensor, batches: int,
                  rounds: int) -> dict[str, list[float]]:
    """Images per second of each runner's forward passes alone, per round (runners interleaved)."""
    for runner in runners.values():
        runner.describe(batch)  # warm-up (and, for the runtimes, export and session)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            started = time.perf_counter()
            for _ in range(batches):
                runner.describe(batch)
            rates[name].append(len(batch) * batches / (time.perf_counter() - started))
    return rates


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--enc", type=Path, default=None)
    parser.add_argument("--cells", default="reference")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--forward-batches", type=int, default=5, help="batches per backend and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-eval", action="store_true", help="forward rates and agreement only")
    args = parser.parse_args()

    backends = ["torch", *(name for name in BACKENDS if name != "torch" and installed(name))]
    work = Path(tempfile.mkdtemp(prefix="vidvpr-bench-eval-"))
    try:
        manifest = load_manifest(args.manifest)
        config = EvalConfig(enc_dir=args.enc, cells=tuple(args.cells.split(",")), batch_size=args.batch_size,
                            backend="torch")
        # initialise the model once (k-means, as `vidvpr eval` does), untimed; its checkpoint is reused below
        reference = reference_cell(manifest)
        prepare_model(ModelChoice("netvlad-efficientnet-lite0"), manifest, reference, work / "init",
                      DescriptorCache(work / "init" / "descriptors"), torch.device("cpu"), args.batch_size, None,
                      ForwardCounter())
        checkpoint = work / "init" / "models" / "netvlad-efficientnet-lite0-netvlad-init.pt"
        model = load_model("netvlad-efficientnet-lite0", checkpoint)
        first_video = reference.videos[next(iter(reference.videos))][0]
        info = probe_video(first_video)
        runners = {name: Inference(model, name, work / "graphs") for name in backends}

        batch = torch.randn(args.batch_size, 3, info.height, info.width, generator=torch.Generator().manual_seed(0))
        rates = forward_rates(runners, batch, args.forward_batches, args.rounds)
        frames = list(range(min(10 * args.batch_size, info.frames or 10 * args.batch_size)))
        real = torch.cat([images for _, images in frame_batches(first_video, frames, args.batch_size)])
        torch_descriptors = runners["torch"].describe(real)
        load = os.getloadavg()[0]
        print(f"frames {info.width}x{info.height}, batch {args.batch_size}, {torch.get_num_threads()} torch threads, "
              f"load average {load:.1f} on {os.cpu_count()} cores{' (LOADED: ratios, not rates, carry over)' if load > (os.cpu_count() or 1) else ''}")
        print(f"  {'backend':10} {'forward img/s':>14} {'(spread)':>15} {'x torch':>8} {'(spread)':>13} {'min cosine':>11}")
        summary = []
        for name in backends:
            ratios = [r / t for r, t in zip(rates[name], rates["torch"])]
            cosine = min_cosine(runners[name].describe(real), torch_descriptors)
            print(f"  {name:10} {statistics.median(rates[name]):14.1f} "
                  f"{min(rates[name]):7.1f}–{max(rates[name]):<7.1f} {statistics.median(ratios):8.2f} "
                  f"{min(ratios):6.2f}–{max(ratios):<6.2f} {cosine:11.7f}")
            if name != "torch":
                summary.append(f"{name} {statistics.median(ratios):.2f}x torch (min cosine {cosine:.7f})")
        if args.skip_eval:
            print(f"summary: forward rate {'; '.join(summary)} (target >= 1.5x, cos >= 0.999); load {load:.1f}")
            return

        recalls: dict[str, list[float]] = {}
        print("eval (first run, then served from the caches):")
        for name in backends:
            timed_config = replace(config, models=(f"netvlad-efficientnet-lite0:{checkpoint}",), backend=name)
            started = time.perf_counter()
            first = evaluate_grid(args.manifest, work / f"eval-{name}", timed_config)
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            again = evaluate_grid(args.manifest, work / f"eval-{name}", timed_config)
            again_s = time.perf_counter() - started
            eval_rate = first.forward_images / first_s
            recalls[name] = [row.recall[1] for row in first.rows]
            print(f"  {name:10} {eval_rate:7.1f} img/s ({first.forward_images} images in {first_s:.1f} s) = "
                  f"{eval_rate / statistics.median(rates[name]):.2f} of its forward rate; cached rerun "
                  f"{again_s:.2f} s ({again.forward_images} forward images, {100 * again_s / first_s:.1f}% of the first)")
        cells = [row.cell for row in first.rows]
        for name in backends[1:]:
            same = [round(a, 3) == round(b, 3) for a, b in zip(recalls[name], recalls["torch"])]
            print(f"  recall@1 {name} vs torch: " + ", ".join(
                f"{cell} {a:.3f}/{b:.3f}" for cell, a, b in zip(cells, recalls[name], recalls["torch"])))
            summary.append(f"{name} recall@1 {'equal' if all(same) else 'DIFFERENT'} on {len(cells)} cells")
        print(f"summary: {'; '.join(summary)} (targets >= 1.5x, cos >= 0.999, recall@1 equal to 3 decimals); "
              f"load {load:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
