"""Triplets for the student's ranking loss: positives by position, hard negatives by the current student.

As NetVLAD trains: a query's positive candidates are the training images within the positive
radius (and, when the data says so, facing within its heading limit); its negatives lie beyond
the negative radius (NetVLAD: 10 m and 25 m; here by default 0.4 and 1 × the radius the data is
evaluated at, `vidvpr.distill.config.triplet_radii`). Images between the two radii are neither. The positive is the
candidate whose student descriptor is nearest the query's; the negatives are the `negatives`
nearest of a pool of up to `NEGATIVE_POOL` random negative candidates, all by descriptors of the
current student, recomputed every K optimiser steps (`refresh`).

On one traversal every positive is a temporal neighbour (frames of the same view a few metres
apart): they are kept, since that is the only same-place evidence such data has; the query's own
frame is never its positive, and the same frame in another encode cell is not used either (it is
the same capture, not another visit). Positive and negatives come from the query's own variant
(the same encode cell): the student sees low-quality images on every side of the triplet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vidvpr.core.errors import BadInput
from vidvpr.dataset.positives import find_positives
from vidvpr.distill.losses import select_positive

NEGATIVE_POOL = 1000              # NetVLAD's nNegSample


@dataclass(frozen=True)
class TripletCandidates:
    """Per place: the other places that may be its positive, and whether it can be a query at all."""

    positives: list[np.ndarray]
    negative_counts: np.ndarray
    usable: np.ndarray  # bool: at least one positive and `negatives` negatives
    positions: np.ndarray
    positive_radius_m: float
    negative_radius_m: float


def triplet_candidates(positions: np.ndarray, headings: np.ndarray | None, positive_radius_m: float,
                       max_heading_diff_deg: float | None, negative_radius_m: float,
                       negatives: int) -> TripletCandidates:
    """Candidates of every place; BadInput with the counts when no place has a positive and enough negatives."""
    if not negative_radius_m >= positive_radius_m:
        raise BadInput(f"--neg-radius {negative_radius_m:g} m must be at least --pos-radius {positive_radius_m:g} m")
    heading_limit = max_heading_diff_deg if headings is not None else None
    found = find_positives(positions, positions, positive_radius_m, query_heading_deg=headings,
                           database_heading_deg=headings, max_heading_diff_deg=heading_limit)
    positives = [hits[hits != i] for i, hits in enumerate(found)]
    negative_counts = np.array([len(negatives_of(positions, i, negative_radius_m)) for i in range(len(positions))])
    with_positive = np.array([len(p) > 0 for p in positives], dtype=bool)
    usable = with_positive & (negative_counts >= negatives)
    if not usable.any():
        facing = f" facing within {heading_limit:g}°" if heading_limit is not None else ""
        raise BadInput(f"triplet loss: no training image has both a positive within {positive_radius_m:g} m{facing} "
                       f"and {negatives} negatives beyond {negative_radius_m:g} m: {int(with_positive.sum())} of "
                       f"{len(positions)} images have a positive, and images have at most "
                       f"{int(negative_counts.max(initial=0))} negatives; lower --negatives or --neg-radius, "
                       "raise --pos-radius, or train with more images")
    return TripletCandidates(positives, negative_counts, usable, positions, positive_radius_m, negative_radius_m)


def negatives_of(positions: np.ndarray, place: int, radius_m: float) -> np.ndarray:
    """Places farther than `radius_m` from `place`."""
    distance_sq = ((positions - positions[place]) ** 2).sum(axis=1)
    return np.flatnonzero(distance_sq > radius_m * radius_m)


@dataclass(frozen=True)
class Triplet:
    """Pair indices of a query's positive and negatives."""

    positive: int
    negatives: tuple[int, ...]


def mine(queries: Sequence[int], descriptors: torch.Tensor, places: int, candidates: TripletCandidates,
         negatives: int, seed: int, step: int) -> dict[int, Triplet]:
    """A triplet for each query pair, chosen with the student's `descriptors` (pairs × D).

    The negative pool is drawn with a generator seeded by (`seed`, `step`), so a resumed run mines
    the same triplets.
    """
    rng = np.random.default_rng([seed, step])
    out: dict[int, Triplet] = {}
    # the pool's descriptors are gathered into one buffer and squared in place: the same arithmetic as
    # `(descriptors[pool] - q).pow(2).sum(1)`, bit for bit, without allocating three pool-sized tensors per
    # query (4.4x faster on the small demo's 1,000 x 7,168 pools, `python tools/bench_mining.py`; mining was
    # 44% of the small demo study's training)
    buffer = torch.empty((NEGATIVE_POOL, descriptors.shape[1]), dtype=descriptors.dtype)
    for query in queries:
        variant, place = divmod(int(query), places)
        offset = variant * places
        pool = negatives_of(candidates.positions, place, candidates.negative_radius_m)
        if len(pool) > NEGATIVE_POOL:
            pool = np.sort(rng.choice(pool, size=NEGATIVE_POOL, replace=False))
        positive_pairs = candidates.positives[place] + offset
        q = descriptors[query]
        best = select_positive(q, descriptors[torch.from_numpy(positive_pairs)])
        pool_pairs = pool + offset
        gathered = torch.index_select(descriptors, 0, torch.from_numpy(pool_pairs), out=buffer[:len(pool_pairs)])
        distance_sq = gathered.sub_(q).square_().sum(dim=1)
        hardest = torch.argsort(distance_sq, stable=True)[:negatives].numpy()
        out[int(query)] = Triplet(int(positive_pairs[best]), tuple(int(n) for n in pool_pairs[hardest]))
    return out


def triplets_to_tensors(table: dict[int, Triplet]) -> dict[str, torch.Tensor]:
    """A mined table as plain tensors (for a weights-only checkpoint)."""
    queries = sorted(table)
    width = len(table[queries[0]].negatives) if queries else 0
    return {"queries": torch.tensor(queries, dtype=torch.int64),
            "positives": torch.tensor([table[q].positive for q in queries], dtype=torch.int64),
            "negatives": torch.tensor([list(table[q].negatives) for q in queries],
                                      dtype=torch.int64).reshape(len(queries), width)}


def triplets_from_tensors(data: dict[str, torch.Tensor]) -> dict[int, Triplet]:
    """The inverse of `triplets_to_tensors`."""
    return {int(q): Triplet(int(p), tuple(int(n) for n in negs))
            for q, p, negs in zip(data["queries"], data["positives"], data["negatives"])}
