"""The VPR-Bench measures as pure functions: precision-recall over the match distance, AUC-PR and
recall at 100% precision, each against a computation by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidvpr.core.errors import BadInput
from vidvpr.evaluate.precision import precision_recall, thinned


def test_the_curve_of_five_queries_as_computed_by_hand() -> None:
    # accepted in distance order: 0.1 right | 0.2 wrong, 0.2 right (one threshold) | 0.5 right; inf never
    curve = precision_recall([0.2, 0.1, 0.5, 0.2, np.inf], [False, True, True, True, False])
    assert curve.distance.tolist() == [-np.inf, 0.1, 0.2, 0.5]
    np.testing.assert_allclose(curve.recall, [0.0, 0.2, 0.4, 0.6])
    np.testing.assert_allclose(curve.precision, [1.0, 1.0, 2 / 3, 0.75])
    # trapezoids: 0.2 * (1 + 1) / 2 + 0.2 * (1 + 2/3) / 2 + 0.2 * (2/3 + 3/4) / 2
    assert curve.auc == pytest.approx(0.2 + 1 / 6 + 0.2 * (2 / 3 + 0.75) / 2)
    assert curve.recall_at_full_precision == pytest.approx(0.2)


def test_recall_at_full_precision_is_zero_when_the_most_confident_match_is_wrong() -> None:
    curve = precision_recall([0.1, 0.3, 0.4], [False, True, True])
    assert curve.recall_at_full_precision == 0.0
    assert curve.precision.tolist()[:2] == [1.0, 0.0]


def test_a_perfect_separation_has_area_one_at_full_recall() -> None:
    curve = precision_recall([0.1, 0.2, 0.3], [True, True, True])
    assert curve.auc == pytest.approx(1.0) and curve.recall_at_full_precision == pytest.approx(1.0)


def test_queries_without_a_match_count_in_recall_but_are_never_accepted() -> None:
    curve = precision_recall([0.1, np.inf, np.inf, np.inf], [True, False, False, False])
    assert curve.recall.tolist() == [0.0, 0.25] and curve.recall_at_full_precision == 0.25


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.1, 0.2, 0.3, 0.7, np.inf]), st.booleans()), min_size=1, max_size=30))
def test_the_curve_ends_at_recall_at_1_and_its_area_is_a_fraction(pairs) -> None:
    distances, correct = zip(*pairs)
    curve = precision_recall(distances, correct)
    finite = np.isfinite(distances)
    assert curve.recall[-1] == pytest.approx(np.sum(np.array(correct) & finite) / len(pairs))
    assert 0.0 <= curve.auc <= 1.0 and 0.0 <= curve.recall_at_full_precision <= curve.recall[-1] + 1e-12
    assert (np.diff(curve.recall) >= 0).all() and len(set(curve.distance[1:])) == len(curve.distance) - 1


def test_a_thinned_curve_keeps_its_ends_and_summaries() -> None:
    rng = np.random.default_rng(0)
    curve = precision_recall(rng.random(1000), rng.random(1000) < 0.5)
    short = thinned(curve, 11)
    assert len(short.recall) == 11 and short.recall[0] == 0.0 and short.recall[-1] == curve.recall[-1]
    assert (short.auc, short.recall_at_full_precision) == (curve.auc, curve.recall_at_full_precision)


@pytest.mark.parametrize("distances, correct, message", [
    ([], [], "no counted query"), ([0.1, 0.2], [True], "2 distances but 1"), ([np.nan], [True], "NaN"),
])
def test_bad_inputs_are_bad_input(distances, correct, message) -> None:
    with pytest.raises(BadInput, match=message):
        precision_recall(distances, correct)
