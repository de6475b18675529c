"""Dataset maths as pure functions: which frames to sample, and which database images count as
correct (positives) for each query.

Sampling keeps a frame every N frames, every T seconds or every D metres (`parse_sampling`).

A database image is a positive of a query when their positions are at most `radius_m` metres
apart (inclusive, on the ground plane, like sklearn's ``radius_neighbors`` that VPR codebases
use; 25 m is the outdoor convention), and optionally their view headings differ by at most
`max_heading_diff_deg`. The search is exact: both sets are sorted by easting, so each chunk of
queries is compared only with the database images in its easting window, in bounded memory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from vidvpr.core.errors import BadInput

DEFAULT_RADIUS_M = 25.0
CHUNK_ELEMENTS = 1 << 22  # query x database distances held at once (32 MB of float64)


# ---------------------------------------------------------------- sampling


def sample_every_frames(count: int, step: int) -> np.ndarray:
    """Indices 0, step, 2·step, … below `count`."""
    return np.arange(0, count, step, dtype=np.int64)


def sample_every_seconds(time_s: np.ndarray, period_s: float) -> np.ndarray:
    """The first frame at or after each time t0 + k·period (t0: the first frame's time).

    Grid-aligned, so 0.1 s at 30 fps keeps frames 0, 3, 6, … without drift; a gap in the video
    skips the grid slots it covers.
    """
    t = np.asarray(time_s, dtype=float)
    if not t.size:
        return np.empty(0, np.int64)
    slot = np.floor((t - t[0]) / period_s + 1e-9)
    return np.flatnonzero(np.r_[True, np.diff(slot) > 0]).astype(np.int64)


def sample_every_metres(easting_m: np.ndarray, northing_m: np.ndarray, step_m: float) -> np.ndarray:
    """The first frame, then each frame at least `step_m` (straight line) from the last one kept.

    A walker standing still keeps no frames, even with GPS jitter below `step_m` (summing the
    path length would turn jitter into distance travelled).
    """
    east, north = np.asarray(easting_m, dtype=float), np.asarray(northing_m, dtype=float)
    if not east.size:
        return np.empty(0, np.int64)
    kept = [0]
    last_e, last_n = east[0], north[0]
    step_sq = step_m * step_m
    for i in range(1, east.size):
        d_e, d_n = east[i] - last_e, north[i] - last_n
        if d_e * d_e + d_n * d_n >= step_sq:
            kept.append(i)
            last_e, last_n = east[i], north[i]
    return np.asarray(kept, dtype=np.int64)


SAMPLING_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(f|s|m)\s*$")


@dataclass(frozen=True)
class SamplingRule:
    """Keep a frame every `every` frames ("f"), seconds ("s") or metres ("m")."""

    every: float
    unit: str

    def __str__(self) -> str:
        return f"{self.every:g}{self.unit}"

    def select(self, time_s: np.ndarray, easting_m: np.ndarray, northing_m: np.ndarray) -> np.ndarray:
        """Indices of the frames to keep among frames with these times and positions."""
        if self.unit == "f":
            return sample_every_frames(len(time_s), int(self.every))
        if self.unit == "s":
            return sample_every_seconds(time_s, self.every)
        return sample_every_metres(easting_m, northing_m, self.every)


def parse_sampling(text: str, what: str = "sampling") -> SamplingRule:
    """'5f' (every 5 frames), '0.5s' (every 0.5 s), '2m' (every 2 m) or 'all' (every frame)."""
    spec = str(text).strip().lower()
    if spec == "all":
        return SamplingRule(1, "f")
    match = SAMPLING_PATTERN.match(spec)
    value = float(match.group(1)) if match else 0.0
    if not match or value <= 0 or (match.group(2) == "f" and value != int(value)):
        raise BadInput(f"Unknown {what} rule {text!r}. Use Nf (every N frames), Ts (every T seconds), "
                       "Dm (every D metres) or all, e.g. 5f, 0.5s, 2m.")
    return SamplingRule(int(value) if match.group(2) == "f" else value, match.group(2))


# ---------------------------------------------------------------- positives


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
    radius_m: float = DEFAULT_RADIUS_M,
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
