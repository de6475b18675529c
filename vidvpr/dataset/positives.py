"""Which database images count as correct (positives) for each query, as pure functions.

A database image is a positive of a query when their positions are at most `radius_m` metres
apart (inclusive, on the ground plane, like sklearn's ``radius_neighbors`` that VPR codebases
use; 25 m is the outdoor convention), and optionally their view headings differ by at most
`max_heading_diff_deg`. The search is exact: both sets are sorted by easting, so each chunk of
queries is compared only with the database images in its easting window, in bounded memory.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from vidvpr.core.errors import BadInput

CHUNK_ELEMENTS = 1 << 22  # query x database distances held at once (32 MB of float64)


def heading_difference_deg(a_deg: ArrayLike, b_deg: ArrayLike) -> Any:
    """Absolute angle between compass headings, in [0, 180] (350° vs 10° → 20°)."""
    diff = np.mod(np.subtract(a_deg, b_deg, dtype=float), 360.0)
    result = np.minimum(diff, 360.0 - diff)
    return float(result) if np.ndim(result) == 0 else result


def check_radius(radius_m: float, what: str = "--radius") -> float:
    """The radius as a float, or BadInput unless it is a positive finite number of metres."""
    value = _as_float(radius_m)
    if value is None or not value > 0:
        raise BadInput(f"{what} must be a positive number of metres, got {radius_m}")
    return value


def check_max_heading_diff(max_heading_diff_deg: float | None, what: str = "--max-heading-diff") -> float | None:
    """None (no heading filter) or a float in (0, 180], else BadInput."""
    if max_heading_diff_deg is None:
        return None
    value = _as_float(max_heading_diff_deg)
    if value is None or not 0 < value <= 180:
        raise BadInput(f"{what} must be in (0, 180] degrees, got {max_heading_diff_deg}")
    return value


def _as_float(value: Any) -> float | None:
    """A finite float from a number (not a bool or a string), else None."""
    if isinstance(value, (bool, str)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _points(name: str, xy: ArrayLike) -> np.ndarray:
    points = np.asarray(xy, dtype=float).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise ValueError(f"{name} positions must be finite")
    return points


def find_positives(
    query_xy: ArrayLike,
    database_xy: ArrayLike,
    radius_m: float,
    *,
    query_heading_deg: ArrayLike | None = None,
    database_heading_deg: ArrayLike | None = None,
    max_heading_diff_deg: float | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> list[np.ndarray]:
    """For each query, the indices of database points within `radius_m` (and the heading limit).

    `query_xy` (M, 2) and `database_xy` (N, 2) are easting/northing in metres. Each result is an
    int64 array sorted by distance, ties by index. Headings are needed (finite) only when
    `max_heading_diff_deg` is set.
    """
    radius_m = check_radius(radius_m)
    max_heading_diff_deg = check_max_heading_diff(max_heading_diff_deg)
    queries, database = _points("query", query_xy), _points("database", database_xy)
    q_heading = db_heading = None
    if max_heading_diff_deg is not None:
        if query_heading_deg is None or database_heading_deg is None:
            raise ValueError("max_heading_diff_deg needs query and database headings")
        q_heading = np.asarray(query_heading_deg, dtype=float).reshape(-1)
        db_heading = np.asarray(database_heading_deg, dtype=float).reshape(-1)
        if q_heading.size != len(queries) or db_heading.size != len(database):
            raise ValueError("one heading per point is needed")
        if not (np.isfinite(q_heading).all() and np.isfinite(db_heading).all()):
            raise ValueError("headings must be finite to filter by heading")
    results: list[np.ndarray] = [np.empty(0, np.int64)] * len(queries)
    if not len(queries) or not len(database):
        return results
    db_order = np.argsort(database[:, 0], kind="stable")
    db_east_sorted = database[db_order, 0]
    q_order = np.argsort(queries[:, 0], kind="stable")
    chunk = max(1, chunk_elements // len(database))
    radius_sq = radius_m * radius_m
    for start in range(0, len(queries), chunk):
        rows = q_order[start:start + chunk]
        lo = np.searchsorted(db_east_sorted, queries[rows, 0].min() - radius_m, side="left")
        hi = np.searchsorted(db_east_sorted, queries[rows, 0].max() + radius_m, side="right")
        candidates = db_order[lo:hi]
        d_east = queries[rows, 0, None] - database[None, candidates, 0]
        d_north = queries[rows, 1, None] - database[None, candidates, 1]
        dist_sq = d_east * d_east + d_north * d_north
        within = dist_sq <= radius_sq
        if q_heading is not None and db_heading is not None:
            within &= heading_difference_deg(q_heading[rows, None], db_heading[None, candidates]) <= max_heading_diff_deg
        for k, query in enumerate(rows):
            hits = candidates[within[k]]
            order = np.lexsort((hits, dist_sq[k][within[k]]))
            results[query] = hits[order].astype(np.int64)
    return results


def positive_stats(positives: list[np.ndarray], database_size: int) -> dict[str, Any]:
    """Counts a dataset report needs: queries without positives, median/min/max per query.

    The median and the fractions are over all queries (those without positives count as 0).
    """
    counts = np.array([len(p) for p in positives], dtype=int)
    if not counts.size:
        return {"queries": 0, "queries_without_positives": 0, "median": None, "min": None, "max": None,
                "median_fraction_of_database": None, "max_fraction_of_database": None}
    fraction = counts / database_size if database_size else np.zeros(counts.shape)
    return {
        "queries": int(counts.size),
        "queries_without_positives": int(np.count_nonzero(counts == 0)),
        "median": float(np.median(counts)),
        "min": int(counts.min()),
        "max": int(counts.max()),
        "median_fraction_of_database": round(float(np.median(fraction)), 6),
        "max_fraction_of_database": round(float(fraction.max()), 6),
    }
