"""The VPR-Bench measures beside recall@N (Zaffar et al. 2021), as pure functions: the precision-recall
curve over the match distance, the area under it, and recall at 100% precision.

Each counted query contributes its best match (rank 1) and that match's distance (a single frame's
squared L2 distance, or a sequence's line score). A threshold on the distance accepts the matches
at or below it: precision is the share of accepted matches that are correct, recall the share of
counted queries whose accepted match is correct. Sweeping the threshold over every distance that
occurs (equal distances are accepted together) traces the curve, which starts at (recall 0,
precision 1) as sklearn's and the VPR tutorial's (Schubert et al. 2023) do; at the largest
distance recall equals recall@1.

Recall is counted over the same queries as recall@N (the `unmatched` convention of
`vidvpr.evaluate.recall`): a query without positives is left out, or, counted as a miss, its
accepted match is a false positive. This differs from VPR-Bench's code, which divides by the
correct matches only (sklearn's ``precision_recall_curve`` on the correct/wrong labels), so its
recall always reaches 1 and AUC-PR there rates only how well distances separate right from wrong.

AUC-PR is the trapezoidal area under the curve (VPR-Bench: ``sklearn.metrics.auc(recall,
precision)``); recall at 100% precision is the largest recall at which every accepted match is
correct (0 when the most confident match is wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from vidvpr.core.errors import BadInput

CURVE_POINTS = 101  # points a stored curve keeps at most (evenly over the sweep, ends included)


@dataclass(frozen=True)
class PrecisionRecall:
    """A precision-recall curve over the match distance and its two summaries."""

    distance: np.ndarray  # thresholds, ascending (-inf for the starting point)
    precision: np.ndarray
    recall: np.ndarray
    auc: float
    recall_at_full_precision: float


def precision_recall(distances: ArrayLike, correct: ArrayLike) -> PrecisionRecall:
    """The curve of counted queries' best-match `distances` (inf: no match, never accepted) and
    whether each match is `correct`; see the module docstring."""
    values = np.asarray(distances, dtype=np.float64).reshape(-1)
    right = np.asarray(correct, dtype=bool).reshape(-1)
    if len(values) != len(right):
        raise BadInput(f"precision-recall: {len(values)} distances but {len(right)} correctness flags")
    if len(values) == 0:
        raise BadInput("precision-recall: no counted query, so precision and recall are undefined")
    if np.isnan(values).any():
        raise BadInput("precision-recall: a match distance is NaN")
    accepted = np.isfinite(values)
    order = np.argsort(values[accepted], kind="stable")
    ranked, hits = values[accepted][order], right[accepted][order]
    last = np.flatnonzero(np.concatenate([ranked[1:] != ranked[:-1], [True]])) if len(ranked) else np.empty(0, int)
    true_positives = np.cumsum(hits)[last]
    taken = last + 1
    precision = np.concatenate([[1.0], true_positives / np.maximum(taken, 1)])
    recall = np.concatenate([[0.0], true_positives / len(values)])
    thresholds = np.concatenate([[-np.inf], ranked[last]])
    auc = float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2.0))
    perfect = recall[precision >= 1.0]
    return PrecisionRecall(thresholds, precision, recall, auc, float(perfect.max()))


def thinned(curve: PrecisionRecall, points: int = CURVE_POINTS) -> PrecisionRecall:
    """At most `points` points of the curve, evenly along it, keeping its ends (to store and draw);
    the summaries are the full curve's."""
    if len(curve.recall) <= points:
        return curve
    keep = np.unique(np.round(np.linspace(0, len(curve.recall) - 1, points)).astype(int))
    return PrecisionRecall(curve.distance[keep], curve.precision[keep], curve.recall[keep], curve.auc,
                           curve.recall_at_full_precision)
