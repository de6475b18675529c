#!/usr/bin/env python3
"""How hard each distillation term pulls at the start of training: the gradient norm of each
unweighted term (ICKD, MSE, triplet) over the student's trained weights, student = teacher.

The loss weights of `vidvpr distill` (`vidvpr.distill.config`) are chosen so that λ × norm is of
the same order for every term; this prints the norms and the weighted norms with the current
defaults, for ICKD and MSE on the queries only and on every image of the batch. The batch is the
first step's (8 queries of the epoch order, their mined triplets), on a vidvpr dataset's
database recordings: training data only, never its queries.

    python tools/distill_term_norms.py DEMO/manifest --enc DEMO/enc --lq 320x176/qp45 \\
        --cache DEMO/eval/descriptors --out /tmp/term-norms
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.distill import train
from vidvpr.distill.config import DistillConfig
from vidvpr.distill.distributed import Group, Processes
from vidvpr.distill.state import Progress
from vidvpr.distill.step import StepInputs, chunk_terms, term_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--enc", type=Path, required=True)
    parser.add_argument("--lq", required=True)
    parser.add_argument("--cache", type=Path, help="descriptor cache with the teacher's targets (else OUT/descriptors)")
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (teacher initialisation, frames)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--negatives", type=int, default=2)
    args = parser.parse_args()

    config = DistillConfig(train=args.manifest, enc_dir=args.enc, lq=(args.lq,), negatives=args.negatives,
                           batch_size=args.batch_size, cache_dir=args.cache)
    cpu = torch.device("cpu")
    cache = DescriptorCache(args.cache or args.out / train.DESCRIPTORS_DIR)
    run, _, _ = train._prepare(args.out, config, cache, Group(Processes(), cpu), lambda stage: None)
    progress = Progress()
    train._refresh(run, progress)
    queries = run.step_queries(0)[:args.batch_size]
    weights = term_weights(run.loss)
    for distill_all in (False, True):
        terms, _ = chunk_terms(run.forward, run.training, run.loss,
                               StepInputs(queries, progress.mined, run.targets, None, distill_all), cpu)
        norms = {}
        for name, value in terms.items():
            run.student.zero_grad(set_to_none=True)
            value.backward(retain_graph=True)
            norms[name] = float(torch.sqrt(sum((p.grad ** 2).sum() for p in run.student.parameters()
                                               if p.grad is not None)))
        print(f"ICKD and MSE on {'every image' if distill_all else 'the queries'}: "
              + ", ".join(f"{name} {float(terms[name].detach()):.4g} (gradient norm {norm:.3g}, "
                          f"x lambda {weights[name] * norm:.3g})" for name, norm in norms.items()))
    run.training.cleanup()


if __name__ == "__main__":
    main()
