"""Recall@N as the public VPR benchmarks count it, as pure functions.

A query is correct at N when ANY of its first N ranked predictions is one of its positives
(pytorch-NetVlad, gmberton's VPR-methods-evaluation). Queries without positives (no database
frame within the radius) are counted by one of two conventions, `unmatched`:

* ``"exclude"`` (default): left out of the denominator and reported as `excluded`, as MSLS's
  evaluation does (its query list holds only queries with a positive);
* ``"miss"``: kept in the denominator as queries answered wrongly, as pytorch-NetVlad,
  VPR-methods-evaluation, the deep-visual-geo-localization benchmark and LoQI-VPR do (they
  divide by the number of queries).

Recall values are fractions in [0, 1]; `RecallResult.percent` gives the benchmarks' percentages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from vidvpr.core.errors import BadInput

DEFAULT_NS = (1, 5, 10, 20)
UNMATCHED_QUERIES = ("exclude", "miss")  # what a query without positives counts as (see the module docstring)
DEFAULT_UNMATCHED = "exclude"


@dataclass(frozen=True, eq=False)
class RecallResult:
    """Recall@N over the counted queries: those with a positive, and under "miss" the others too."""

    recall: dict[int, float]  # N -> fraction of counted queries correct at N, in [0, 1]
    queries: int  # queries counted (the denominator)
    excluded: int  # queries without positives left out of `queries` (none under "miss")
    correct_at: np.ndarray  # per counted query: 1-based rank of the first positive, 0 if none within K
    unmatched: int = 0  # queries without positives, whichever the convention

    @property
    def percent(self) -> dict[int, float]:
        """Recall@N in percent, as the benchmarks print it."""
        return {n: 100.0 * value for n, value in self.recall.items()}


def _check_ns(ns: Sequence[int]) -> tuple[int, ...]:
    """The distinct Ns in increasing order, each a positive integer, else BadInput."""
    if len(ns) == 0:
        raise BadInput("no recall N given: pass e.g. 1, 5, 10, 20")
    for n in ns:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise BadInput(f"recall N must be a positive integer, got {n!r}")
    return tuple(sorted({int(n) for n in ns}))


def check_unmatched(unmatched: str) -> str:
    """`unmatched` if it names a convention of UNMATCHED_QUERIES, else BadInput listing them."""
    if unmatched not in UNMATCHED_QUERIES:
        raise BadInput(f"Unknown convention for queries without positives {unmatched!r}. "
                       f"Use {' or '.join(UNMATCHED_QUERIES)}.")
    return unmatched


def counted_ranks(ranks: ArrayLike, unmatched: str = DEFAULT_UNMATCHED) -> np.ndarray:
    """The `first_positive_rank` values recall is counted over: queries without positives (-1) are
    dropped under "exclude" and become misses (0) under "miss"."""
    values = np.asarray(ranks, dtype=np.int64).reshape(-1)
    if check_unmatched(unmatched) == "miss":
        return np.maximum(values, 0)
    return values[values >= 0]


def recall_from_ranks(counted: np.ndarray, ns: Sequence[int]) -> dict[int, float]:
    """Recall@N of counted ranks (1-based rank of the first positive, 0: none within K)."""
    found = counted > 0
    return {n: float(np.count_nonzero(found & (counted <= n))) / len(counted) for n in ns}


def _predictions(predictions: ArrayLike) -> np.ndarray:
    array = np.asarray(predictions)
    if array.ndim != 2:
        raise BadInput(f"predictions must be a 2-D (queries, K) array of database indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise BadInput(f"predictions must be integer database indices, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _positives(positives: Sequence[ArrayLike], queries: int) -> list[np.ndarray]:
    if len(positives) != queries:
        raise BadInput(f"predictions cover {queries} queries but positives cover {len(positives)}")
    return [np.asarray(p, dtype=np.int64).reshape(-1) for p in positives]


def first_positive_rank(predictions: ArrayLike, positives: Sequence[ArrayLike]) -> np.ndarray:
    """Per query, the 1-based rank of its first positive among its predictions; 0 if none, -1 if it has no positives.

    Vectorised: (query, database index) pairs are encoded as single integers and matched with
    ``np.isin``, so the cost is a sort of M·K + ΣP keys rather than a Python loop over queries.
    Negative predictions (faiss's -1 for unfilled slots) never match.
    """
    ranked = _predictions(predictions)
    queries, k = ranked.shape
    wanted = _positives(positives, queries)
    counts = np.array([len(p) for p in wanted], dtype=np.int64)
    flat_positives = np.concatenate(wanted) if queries else np.empty(0, dtype=np.int64)
    if flat_positives.size and flat_positives.min() < 0:
        raise BadInput(f"positive indices must be non-negative, got {flat_positives.min()}")
    stride = 1 + max(int(ranked.max(initial=-1)), int(flat_positives.max(initial=-1)), 0)
    owners = np.repeat(np.arange(queries, dtype=np.int64), counts)
    positive_keys = owners * stride + flat_positives
    predicted_keys = np.arange(queries, dtype=np.int64)[:, None] * stride + ranked
    hits = np.isin(predicted_keys, positive_keys) & (ranked >= 0)
    rank = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0) if k else np.zeros(queries, dtype=np.int64)
    return np.where(counts > 0, rank, -1).astype(np.int64)


def _result(ranks: np.ndarray, ns: tuple[int, ...], what: str, unmatched: str) -> RecallResult:
    """Recall@N from `first_positive_rank` output (-1 marks queries without positives)."""
    counted = counted_ranks(ranks, unmatched)
    if len(counted) == 0:
        problem = "has a positive" if len(ranks) else "was given"
        raise BadInput(f"no query{what} {problem}, so recall is undefined "
                       f"(check the positive radius and the query/database positions)")
    correct_at = counted.copy()
    correct_at.setflags(write=False)
    return RecallResult(recall=recall_from_ranks(counted, ns), queries=len(counted),
                        excluded=len(ranks) - len(counted), correct_at=correct_at,
                        unmatched=int(np.count_nonzero(ranks < 0)))


def _check_depth(predictions: np.ndarray, ns: tuple[int, ...]) -> None:
    k = predictions.shape[1]
    if ns[-1] > k:
        raise BadInput(f"recall@{ns[-1]} needs at least {ns[-1]} predictions per query, got K={k}")


def recall_at_n(
    predictions: ArrayLike,
    positives: Sequence[ArrayLike],
    ns: Sequence[int] = DEFAULT_NS,
    unmatched: str = DEFAULT_UNMATCHED,
) -> RecallResult:
    """Recall@N for ranked `predictions` (M, K) database indices and each query's `positives`.

    Needs K >= max(ns). Queries with no positives are excluded (BadInput when all are), or with
    `unmatched="miss"` counted as wrong at every N.
    """
    ranked = _predictions(predictions)
    checked_ns = _check_ns(ns)
    _check_depth(ranked, checked_ns)
    return _result(first_positive_rank(ranked, positives), checked_ns, "", check_unmatched(unmatched))


def recall_by_group(
    predictions: ArrayLike,
    positives: Sequence[ArrayLike],
    groups: Sequence[str],
    ns: Sequence[int] = DEFAULT_NS,
    unmatched: str = DEFAULT_UNMATCHED,
) -> dict[str, RecallResult]:
    """Recall@N per group of queries (e.g. per view direction), keyed by group name in sorted order.

    Ranks are computed once and split by group. Under "exclude", a group whose queries all lack
    positives has undefined recall: BadInput naming it.
    """
    ranked = _predictions(predictions)
    checked_ns = _check_ns(ns)
    check_unmatched(unmatched)
    _check_depth(ranked, checked_ns)
    labels = np.asarray(groups, dtype=object).reshape(-1)
    if len(labels) != len(ranked):
        raise BadInput(f"predictions cover {len(ranked)} queries but groups cover {len(labels)}")
    ranks = first_positive_rank(ranked, positives)
    return {
        name: _result(ranks[labels == name], checked_ns, f" in group {name!r}", unmatched)
        for name in sorted(set(labels.tolist()))
    }


def filter_positives_by_distance(
    positives: Sequence[ArrayLike],
    query_xy: ArrayLike,
    database_xy: ArrayLike,
    threshold_m: float,
) -> list[np.ndarray]:
    """Each query's positives that lie within `threshold_m` metres of it (inclusive), in their original order.

    For evaluating at thresholds smaller than the radius the positives were found with.
    Positions are easting/northing in metres: `query_xy` (M, 2), `database_xy` (N, 2).
    """
    if isinstance(threshold_m, (bool, str)) or not isinstance(threshold_m, (int, float, np.number)) \
            or not math.isfinite(threshold_m) or threshold_m <= 0:
        raise BadInput(f"distance threshold must be a positive number of metres, got {threshold_m!r}")
    queries = np.asarray(query_xy, dtype=float).reshape(-1, 2)
    database = np.asarray(database_xy, dtype=float).reshape(-1, 2)
    wanted = _positives(positives, len(queries))
    counts = [len(p) for p in wanted]
    if sum(counts) == 0:
        return [p.copy() for p in wanted]
    flat = np.concatenate(wanted)
    if flat.min() < 0 or flat.max() >= len(database):
        raise BadInput(f"positive indices must be in [0, {len(database)}), got {flat.min()}..{flat.max()}")
    owners = np.repeat(np.arange(len(queries)), counts)
    offsets = queries[owners] - database[flat]
    keep = np.hypot(offsets[:, 0], offsets[:, 1]) <= threshold_m
    return [part[mask] for part, mask in zip(wanted, np.split(keep, np.cumsum(counts)[:-1]))]
