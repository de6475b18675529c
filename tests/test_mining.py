"""Triplet radii and candidates of `vidvpr distill` (pure functions, no model): NetVLAD's positives
within 10 m and negatives beyond 25 m, scaled to the radius the data is evaluated at."""

from __future__ import annotations

import numpy as np
import pytest

from vidvpr.core.errors import BadInput
from vidvpr.distill.config import triplet_radii
from vidvpr.distill.mining import triplet_candidates


def test_radii_default_to_netvlads_10_of_25_of_the_evaluation_radius() -> None:
    assert triplet_radii(25.0) == (10.0, 25.0)
    assert triplet_radii(5.0) == pytest.approx((2.0, 5.0))


def test_one_radius_given_sets_the_other_in_the_same_ratio() -> None:
    assert triplet_radii(5.0, positive_radius_m=4.0) == pytest.approx((4.0, 10.0))
    assert triplet_radii(5.0, negative_radius_m=10.0) == pytest.approx((4.0, 10.0))
    assert triplet_radii(5.0, 3.0, 7.0) == (3.0, 7.0)


def test_places_between_the_radii_are_neither_positive_nor_negative() -> None:
    positions = np.array([[0.0, 0.0], [3.0, 0.0], [7.0, 0.0], [20.0, 0.0], [40.0, 0.0]])
    candidates = triplet_candidates(positions, None, 4.0, None, 10.0, negatives=1)
    assert candidates.positives[0].tolist() == [1]            # 3 m: a positive
    assert candidates.negative_counts[0] == 2                # 20 m and 40 m; 7 m is in the neutral zone
    assert (candidates.positive_radius_m, candidates.negative_radius_m) == (4.0, 10.0)


def test_a_negative_radius_below_the_positive_is_one_line_bad_input() -> None:
    with pytest.raises(BadInput, match=r"--neg-radius 3 m must be at least --pos-radius 4 m"):
        triplet_candidates(np.zeros((3, 2)), None, 4.0, None, 3.0, negatives=1)


def test_mining_picks_the_nearest_positive_and_the_hardest_negatives_of_a_seeded_pool() -> None:
    """`mine` against its definition written plainly: with 1,500 places the pool is a seeded draw of
    NEGATIVE_POOL negative candidates, and ties or near-ties in distance must come out the same."""
    import torch

    from vidvpr.distill.losses import select_positive
    from vidvpr.distill.mining import NEGATIVE_POOL, mine, negatives_of

    places = 1500
    positions = np.stack([np.arange(places) * 2.0, np.zeros(places)], axis=1)
    candidates = triplet_candidates(positions, None, 4.0, None, 10.0, negatives=3)
    descriptors = torch.nn.functional.normalize(torch.randn(2 * places, 64, generator=torch.Generator().manual_seed(0)),
                                                dim=1)
    descriptors[places + 40] = descriptors[places + 41]  # a tie in the second variant
    queries = [5, 700, places + 3, places + 900]
    rng = np.random.default_rng([7, 11])
    expected = {}
    for query in queries:
        variant, place = divmod(query, places)
        pool = np.sort(rng.choice(negatives_of(positions, place, 10.0), size=NEGATIVE_POOL, replace=False))
        positive_pairs = candidates.positives[place] + variant * places
        best = select_positive(descriptors[query], descriptors[torch.from_numpy(positive_pairs)])
        distance_sq = (descriptors[torch.from_numpy(pool + variant * places)] - descriptors[query]).pow(2).sum(dim=1)
        hardest = torch.argsort(distance_sq, stable=True)[:3].numpy()
        expected[query] = (int(positive_pairs[best]), tuple(int(n) for n in pool[hardest] + variant * places))
    mined = mine(queries, descriptors, places, candidates, 3, seed=7, step=11)
    assert {q: (t.positive, t.negatives) for q, t in mined.items()} == expected
