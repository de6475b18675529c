#!/usr/bin/env python3
"""Hard-negative mining (`vidvpr.distill.mining.mine`) against the plain expression it replaced.

`mine` measures each query's pool of up to 1,000 negatives by gathering their descriptors into one
buffer and squaring the differences in place; the plain expression, `(descriptors[pool] - q).pow(2)
.sum(1)`, allocates three pool-sized tensors per query (28 MB each at the demo's 7,168-D). Both run
here on the same random unit descriptors (the small demo's shape: 1,364 database frames), the same
queries and the same seeded pools, alternating, `--repeats` times each; the triplets must be equal.

    python tools/bench_mining.py                 # 1,364 places, 7,168-D, 320 queries
    python tools/bench_mining.py --queries 800   # one mining window of the demo (100 steps x 8)

Prints the median time of each and their ratio (plain / mine); on a shared machine read the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vidvpr.distill.losses import select_positive
from vidvpr.distill.mining import NEGATIVE_POOL, Triplet, mine, negatives_of, triplet_candidates


def plain_mine(queries: list[int], descriptors: torch.Tensor, places: int, candidates, negatives: int, seed: int,
               step: int) -> dict[int, Triplet]:
    """`mine` as it was written before: a fresh tensor per operation."""
    rng = np.random.default_rng([seed, step])
    out = {}
    for query in queries:
        variant, place = divmod(query, places)
        pool = negatives_of(candidates.positions, place, candidates.negative_radius_m)
        if len(pool) > NEGATIVE_POOL:
            pool = np.sort(rng.choice(pool, size=NEGATIVE_POOL, replace=False))
        positive_pairs = candidates.positives[place] + variant * places
        best = select_positive(descriptors[query], descriptors[torch.from_numpy(positive_pairs)])
        pool_pairs = pool + variant * places
        distance_sq = (descriptors[torch.from_numpy(pool_pairs)] - descriptors[query]).pow(2).sum(dim=1)
        hardest = torch.argsort(distance_sq, stable=True)[:negatives].numpy()
        out[query] = Triplet(int(positive_pairs[best]), tuple(int(n) for n in pool_pairs[hardest]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--places", type=int, default=1364)
    parser.add_argument("--dim", type=int, default=7168)
    parser.add_argument("--queries", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    positions = np.stack([np.arange(args.places) * 1.5, np.zeros(args.places)], axis=1)  # a walk, 1.5 m a frame
    candidates = triplet_candidates(positions, None, 2.0, None, 5.0, negatives=2)
    descriptors = torch.nn.functional.normalize(
        torch.randn(args.places, args.dim, generator=torch.Generator().manual_seed(0)), dim=1)
    queries = [int(q) for q in np.random.default_rng(1).choice(np.flatnonzero(candidates.usable), args.queries)]
    times: dict[str, list[float]] = {"plain": [], "mine": []}
    results = {}
    for _ in range(args.repeats):
        for name, function in (("plain", plain_mine), ("mine", mine)):
            started = time.perf_counter()
            results[name] = function(queries, descriptors, args.places, candidates, 2, 0, 0)
            times[name].append(time.perf_counter() - started)
    assert results["plain"] == results["mine"], "the triplets differ"
    plain, new = statistics.median(times["plain"]), statistics.median(times["mine"])
    print(f"{args.queries} queries, pools of up to {NEGATIVE_POOL} x {args.dim}: plain {plain:.2f} s, "
          f"mine {new:.2f} s; ratio {plain / new:.1f}x (same triplets)")


if __name__ == "__main__":
    main()
