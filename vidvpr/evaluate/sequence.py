"""Sequence matching (SeqSLAM: Milford and Wyeth 2012) over single-frame distances, as pure functions.

A *run* is the rows of one recording and view in time order. A query's sequence is its own frame
and the L-1 frames before it in its run (online: past frames only; fewer at the start of a run).
It is matched against straight lines through the query × database distance matrix: a line ending
at database frame j with velocity v (database frames per query frame) has its k-th point back at
the frame round(v·k) before j in j's run (after j for the reverse direction). A line's score is
the mean distance over its points; a line must lie wholly inside the database run (as in
OpenSeqSLAM: a line clipped to fewer points would compete with a noisier mean). A database frame's
score is that of its best line (infinite when none fits), and the frame with the lowest score is
the predicted place.

Velocities: every slope in the range whose line start lies a whole frame from the next one's
(1 + m/(L-1) for integers m), plus the range's ends, each distinct line shape once (named by the
velocity nearest 1 that draws it); with
`reverse`, each also running backwards through the database (reported as a negative velocity).

Local contrast normalisation (SeqSLAM's, optional): each distance is standardised by the mean and
standard deviation (n-1) of the same query frame's distances to the `window` + 1 database frames
centred on it in its run (fewer at the run's ends); a window without contrast (all distances equal
to within rounding, as between blank frames) gives 0.

`sequence_scores` is the whole matrix at once (the reference the searches are tested against);
`full_search` computes it in blocks of queries from descriptors, so memory stays bounded; the
restricted search (`vidvpr.evaluate.sequence_restricted`) scores exactly only lines near the ends a
cheap coarse search proposes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from vidvpr.core.errors import BadInput

DEFAULT_VELOCITY = (0.8, 1.25)  # database frames per query frame: SeqSLAM's vmin..vmax
NORMALISE_WINDOW = 10  # database frames of SeqSLAM's local contrast window (R_window)
BLOCK_BYTES = 256 << 20  # the distance block `full_search` holds at once
CHUNK_ROWS = 1 << 16  # database rows converted to float32 at once
TILE_TARGETS = 64  # targets whose line sums are made together (64 x 2048 float32: 0.5 MB, stays in cache)
TILE_COLUMNS = 2048  # line ends whose sums are made together
FLAT_RELATIVE = 1e-6  # a window whose standard deviation is below this share of its mean has no contrast


@dataclass(frozen=True)
class SequenceSettings:
    """How sequences are matched: length L, velocity range, both directions, normalisation."""

    length: int
    velocity: tuple[float, float] = DEFAULT_VELOCITY
    reverse: bool = False
    normalise: bool = False
    window: int = NORMALISE_WINDOW


def check_settings(settings: SequenceSettings) -> None:
    """BadInput for a length below 1, an empty or non-positive velocity range, or a bad window."""
    length = settings.length
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise BadInput(f"--seq-len takes positive whole numbers of frames, got {length!r}")
    low, high = settings.velocity
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high <= 0:
        raise BadInput(f"--seq-velocity must be positive, finite frames per frame, got {low:g}..{high:g}")
    if low > high:
        raise BadInput(f"--seq-velocity range {low:g}..{high:g} is empty (the first must not exceed the second)")
    if settings.window < 2:
        raise BadInput(f"the normalisation window must be at least 2 frames, got {settings.window}")


def line_fits(velocity: float, frames: int, run_frames: int) -> bool:
    """Whether a line of `frames` points at `velocity` lies within a run of `run_frames` database
    frames: its first point lies round(velocity·(frames-1)) frames from its end (`line_shapes`'
    rounding, compared in floats, so any finite velocity is answered, however large)."""
    return velocity * (frames - 1) + 0.5 < run_frames


@dataclass(frozen=True)
class Lines:
    """Every line shape of one length: its velocity (negative: reverse) and, per point k back from
    the end, how many database frames before the end it lies (negative: after)."""

    velocities: np.ndarray  # (V,) float
    offsets: np.ndarray  # (V, L) int64; offsets[:, 0] == 0

    @property
    def length(self) -> int:
        return int(self.offsets.shape[1])


def line_shapes(settings: SequenceSettings) -> Lines:
    """The distinct lines of `settings` (see the module docstring), slowest first, forward then reverse."""
    check_settings(settings)
    length, (low, high) = int(settings.length), settings.velocity
    steps = range(math.ceil((low - 1) * (length - 1) - 1e-9), math.floor((high - 1) * (length - 1) + 1e-9) + 1)
    candidates = {low, high, 1.0, *(1 + m / (length - 1) for m in steps if length > 1)}
    k = np.arange(length)
    shapes: dict[tuple[int, ...], float] = {}
    for v in sorted(candidates, key=lambda v: (abs(v - 1), v)):  # a shape several draw: named by the one nearest 1
        if not low - 1e-12 <= v <= high + 1e-12:
            continue
        shapes.setdefault(tuple(np.floor(v * k + 0.5).astype(np.int64).tolist()), v)
    velocities = sorted(shapes.values())
    offsets = [next(list(o) for o, v in shapes.items() if v == velocity) for velocity in velocities]
    if settings.reverse:
        velocities += [-v for v in velocities]
        offsets += [[-o for o in row] for row in offsets]
    return Lines(np.asarray(velocities, dtype=np.float64), np.asarray(offsets, dtype=np.int64).reshape(-1, length))


def time_runs(keys: Sequence[Hashable], order: Sequence[float]) -> list[np.ndarray]:
    """Row indices grouped by key (e.g. (recording, view)) in first-seen order, each sorted by `order`."""
    groups: dict[Hashable, list[int]] = {}
    for row, key in enumerate(keys):
        groups.setdefault(key, []).append(row)
    ranks = np.asarray(order, dtype=np.float64)
    return [np.asarray(sorted(rows, key=lambda r: (ranks[r], r)), dtype=np.int64) for rows in groups.values()]


def query_sequences(runs: Sequence[np.ndarray], rows: int, length: int) -> np.ndarray:
    """(rows, length) int64: per query row, its own row then the rows 1..length-1 frames before it in
    its run; -1 where the run starts later (a shorter sequence)."""
    out = np.full((rows, length), -1, dtype=np.int64)
    for run in runs:
        for k in range(min(length, len(run))):
            out[run[k:], k] = run[:len(run) - k]
    return out


@dataclass(frozen=True)
class DatabaseRuns:
    """The database's runs laid end to end ("run order"), and where each database row sits in it."""

    order: np.ndarray  # run order -> database row
    starts: np.ndarray  # (R + 1,) first run-order index of each run, then the total
    run_of: np.ndarray  # database row -> run
    position: np.ndarray  # database row -> position in its run

    @classmethod
    def of(cls, runs: Sequence[np.ndarray], size: int) -> DatabaseRuns:
        order = np.concatenate(list(runs)) if runs else np.empty(0, np.int64)
        if len(order) != size or len(np.unique(order)) != size:
            raise BadInput(f"database runs must cover each of the {size} database rows once")
        lengths = np.array([len(r) for r in runs], dtype=np.int64)
        run_of, position = np.empty(size, np.int64), np.empty(size, np.int64)
        run_of[order] = np.repeat(np.arange(len(runs)), lengths)
        position[order] = np.concatenate([np.arange(n) for n in lengths]) if size else order
        return cls(order, np.concatenate([[0], np.cumsum(lengths)]), run_of, position)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)


@dataclass(frozen=True)
class SequenceMatches:
    """Per query: the best `k` line ends (database rows, -1 when fewer), their scores, the velocity of
    each one's best line, and how many frames the query's sequence had."""

    indices: np.ndarray  # (M, k) int64
    distances: np.ndarray  # (M, k) float32, +inf where no prediction
    velocities: np.ndarray  # (M, k) float64, 0 where no prediction
    frames: np.ndarray  # (M,) int64


def normalise_runs(distances: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """SeqSLAM's local contrast normalisation of (rows, N) distances whose columns are in run order
    (`starts` bound each run, from 0 to N): mean and standard deviation over the window centred on
    each column, clipped to its run; NaN entries (not computed) are left out of both and stay NaN.
    Window sums are differences of cumulative sums (float64), for any number of runs at once: two
    shifted slices for every column, then a gather for the columns whose window a run's edge clips
    (a gather for all took half the normalised search's time)."""
    half = window // 2
    values = np.asarray(distances, dtype=np.float64).copy()
    missing = np.isnan(values)
    gaps = bool(missing.any())
    values[missing] = 0.0
    lengths = np.diff(starts)
    column = np.arange(values.shape[1])
    lo = np.maximum(column - half, np.repeat(starts[:-1], lengths))
    hi = np.minimum(column + half + 1, np.repeat(starts[1:], lengths))
    clipped = np.flatnonzero((lo != column - half) | (hi != column + half + 1))
    width, columns = 2 * half + 1, values.shape[1]

    def window_sums(a: np.ndarray) -> np.ndarray:
        sums = np.zeros((a.shape[0], columns + 1))
        np.cumsum(a, axis=1, out=sums[:, 1:])
        out = np.empty(a.shape)
        if columns >= width:  # columns half .. columns - half - 1, unless clipped below
            np.subtract(sums[:, width:], sums[:, :columns + 1 - width], out=out[:, half:columns - half])
        out[:, clipped] = np.take(sums, hi[clipped], axis=1) - np.take(sums, lo[clipped], axis=1)
        return out

    count = window_sums((~missing).astype(np.float64)) if gaps else (hi - lo).astype(np.float64)
    mean = window_sums(values) / np.maximum(count, 1)
    variance = (window_sums(values * values) - count * mean * mean) / np.maximum(count - 1, 1)
    std = np.sqrt(np.maximum(variance, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        # a window of (nearly) equal distances, e.g. blank frames, has no contrast: 0, not rounding noise
        contrast = std > FLAT_RELATIVE * (np.abs(mean) + FLAT_RELATIVE)
        out = np.where(contrast, (values - mean) / std, 0.0).astype(np.float32)
    out[missing] = np.nan
    return out


def _line_scores(rows_distances: np.ndarray, first: int, targets: int, length: int, starts: np.ndarray,
                 lines: Lines, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Best-line scores (T, N) and lines (T, N) of `targets` frames of one query run, at positions
    `first`, `first + step`, ..., against line ends at every run-order column. `rows_distances` holds
    that run's frames from position max(0, first - length + 1) to the last target, in order.

    Each line's sum is `length` shifted slice additions in float32, one line at a time, kept when it
    beats the best so far (the first, slowest forward, line among equals)."""
    columns = rows_distances.shape[1]
    row0 = max(0, first - length + 1)
    positions = first + step * np.arange(targets)
    frames = np.minimum(length, positions + 1)  # each target's sequence length (non-decreasing)
    scale = (1.0 / frames).astype(np.float32)[:, None]
    segments = list(zip(starts[:-1].tolist(), starts[1:].tolist()))
    best = np.full((targets, columns), np.inf, dtype=np.float32)
    which = np.zeros((targets, columns), dtype=np.int16)
    total = np.empty((targets, columns), dtype=np.float32)
    for v, offsets in enumerate(lines.offsets.tolist()):
        total.fill(0.0)
        for k, offset in enumerate(offsets):
            lowest = max(0, -(-(k - first) // step))  # the first target whose sequence reaches k frames back
            if lowest >= targets:
                break
            rows = slice(int(positions[lowest]) - k - row0, int(positions[-1]) - k - row0 + 1, step)
            for start, end in segments:
                if abs(offset) < end - start:
                    ends = slice(start + max(offset, 0), end + min(offset, 0))
                    points = slice(start + max(-offset, 0), end - max(offset, 0))
                    total[lowest:, ends] += rows_distances[rows, points]
        total *= scale
        for f in np.unique(frames).tolist():  # a line must lie wholly inside the run: the ends too near its start
            reach = abs(offsets[f - 1])      # (forward) or its end (reverse) have no line of f frames
            mine = slice(*np.searchsorted(frames, [f, f + 1]).tolist())
            for start, end in segments:
                forward = offsets[f - 1] >= 0
                band = slice(start, min(end, start + reach)) if forward else slice(max(start, end - reach), end)
                total[mine, band] = np.inf
        better = total < best
        np.minimum(best, total, out=best)
        which[better] = v
    return best, which


def _line_scores_tiled(rows_distances: np.ndarray, first: int, targets: int, length: int, starts: np.ndarray,
                       lines: Lines, step: int = 1, tile_targets: int = TILE_TARGETS,
                       tile_columns: int = TILE_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """`_line_scores`, the same numbers bit for bit, made a tile of targets x line ends at a time so
    that each tile's running sums stay in the CPU's cache across the L additions of every line
    (1.6-2.5 times less CPU at 512 x 20,000, L = 5-20: tools/bench_line_scores.py). A tile reads `halo` columns each side, as far
    as any line reaches; a tile edge inside a run clips lines only in that halo, which is dropped."""
    columns = rows_distances.shape[1]
    halo = int(np.abs(lines.offsets).max()) if lines.offsets.size else 0
    row0 = max(0, first - length + 1)
    best = np.empty((targets, columns), dtype=np.float32)
    which = np.empty((targets, columns), dtype=np.int16)
    for t0 in range(0, targets, tile_targets):
        t1 = min(targets, t0 + tile_targets)
        tile_first = first + step * t0
        rows = slice(max(0, tile_first - length + 1) - row0, first + step * (t1 - 1) + 1 - row0)
        for a in range(0, columns, tile_columns):
            b = min(columns, a + tile_columns)
            lo, hi = max(0, a - halo), min(columns, b + halo)
            tile_starts = np.unique(np.clip(starts, lo, hi)) - lo
            scores, used = _line_scores(rows_distances[rows, lo:hi], tile_first, t1 - t0, length, tile_starts, lines,
                                        step)
            best[t0:t1, a:b], which[t0:t1, a:b] = scores[:, a - lo:b - lo], used[:, a - lo:b - lo]
    return best, which


def top_k(scores: np.ndarray, lines_used: np.ndarray, database: DatabaseRuns, lines: Lines, frames: np.ndarray,
          k: int) -> SequenceMatches:
    """The `k` lowest scores per row (columns in run order), ordered by (score, database row)."""
    targets, columns = scores.shape
    keep = min(k, columns)
    rows = database.order
    indices = np.full((targets, k), -1, dtype=np.int64)
    distances = np.full((targets, k), np.inf, dtype=np.float32)
    velocities = np.zeros((targets, k))
    if keep:
        chosen = np.argpartition(scores, keep - 1, axis=1)[:, :keep] if keep < columns else np.tile(
            np.arange(columns), (targets, 1))
        values = np.take_along_axis(scores, chosen, axis=1)
        kth = values.max(axis=1)
        # equal scores across the partition's edge: rank those rows whole, so the lower database row wins
        tied = np.isfinite(kth) & ((scores == kth[:, None]).sum(1) > (values == kth[:, None]).sum(1))
        for t in np.flatnonzero(tied):
            chosen[t] = np.lexsort((rows, scores[t]))[:keep]
        values = np.take_along_axis(scores, chosen, axis=1)
        order = np.lexsort((rows[chosen], values), axis=-1)
        chosen = np.take_along_axis(chosen, order, axis=1)
        values = np.take_along_axis(values, order, axis=1)
        finite = np.isfinite(values)
        indices[:, :keep] = np.where(finite, rows[chosen], -1)
        distances[:, :keep] = np.where(finite, values, np.inf)
        velocities[:, :keep] = np.where(finite, lines.velocities[np.take_along_axis(lines_used, chosen, axis=1)], 0.0)
    return SequenceMatches(indices, distances, velocities, frames)


def sequence_scores(distances: np.ndarray, query_runs: Sequence[np.ndarray], database_runs: Sequence[np.ndarray],
                    settings: SequenceSettings) -> tuple[np.ndarray, np.ndarray]:
    """Every query's best-line score (M, N) and that line's velocity (M, N) at each database frame
    (columns in database order; inf and 0 where no line fits), from the whole (M, N) distance matrix."""
    lines = line_shapes(settings)
    matrix = np.asarray(distances, dtype=np.float64)
    database = DatabaseRuns.of(database_runs, matrix.shape[1])
    ordered = matrix[:, database.order].astype(np.float32)
    if settings.normalise:
        ordered = normalise_runs(ordered, database.starts, settings.window)
    scores = np.full(matrix.shape, np.inf, dtype=np.float32)
    used = np.zeros(matrix.shape, dtype=np.int64)
    for run in query_runs:
        scores[run], used[run] = _line_scores(ordered[run], 0, len(run), settings.length, database.starts, lines)
    back = np.argsort(database.order)
    velocities = np.where(np.isfinite(scores), lines.velocities[used], 0.0)  # 0: no line fits there
    return scores[:, back], velocities[:, back]


def squared_norms(vectors: np.ndarray) -> np.ndarray:
    """(N,) float32 squared lengths of float32 rows (einsum: no temporary as large as `vectors`, which
    made `(x * x).sum(1)` 35 times slower on 20,000 x 7,168)."""
    return np.einsum("ij,ij->i", vectors, vectors)


def squared_distances(queries: np.ndarray, database: np.ndarray, database_norms: np.ndarray | None = None) -> np.ndarray:
    """(Q, N) squared L2 distances, float32, never negative (faiss's IndexFlatL2 measure):
    -2 q.x plus both squared lengths (the database's given when known, as `squared_norms` makes them)."""
    q = np.asarray(queries, dtype=np.float32)
    x = np.asarray(database, dtype=np.float32)
    out = q @ x.T
    out *= -2.0
    out += squared_norms(q)[:, None]
    out += (squared_norms(x) if database_norms is None else database_norms)[None, :]
    return np.maximum(out, 0.0, out=out)


def database_rows(parts: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """The given database rows (indices into `parts` laid end to end) as float32, in that order."""
    bounds = np.cumsum([0] + [len(p) for p in parts])
    which = np.searchsorted(bounds, rows, side="right") - 1
    out = np.empty((len(rows), parts[0].shape[1]), dtype=np.float32)
    for part in np.unique(which):
        mine = which == part
        out[mine] = parts[part][rows[mine] - bounds[part]]
    return out


def _chunks(parts: Sequence[np.ndarray], rows: int = CHUNK_ROWS) -> list[tuple[int, np.ndarray]]:
    """(first row, slice) of the database parts laid end to end, at most `rows` rows each (memory maps
    stay on disk until a slice is read)."""
    out, first = [], 0
    for part in parts:
        for start in range(0, len(part), rows):
            out.append((first + start, part[start:start + rows]))
        first += len(part)
    return out


class _Float32Chunks:
    """The database's chunks as float32: a float32 chunk as it is, any other converted into one
    reused buffer (no fresh allocation, and its page faults, per block), and not converted again
    while the buffer still holds it (a database of one chunk is converted once for all blocks)."""

    def __init__(self, chunks: Sequence[tuple[int, np.ndarray]], dim: int) -> None:
        self.chunks = chunks
        self.buffer = np.empty((max((len(chunk) for _, chunk in chunks), default=0), dim), dtype=np.float32)
        self.held: int | None = None  # the chunk the buffer holds

    def __getitem__(self, index: int) -> np.ndarray:
        chunk = self.chunks[index][1]
        if chunk.dtype == np.float32:
            return chunk
        out = self.buffer[:len(chunk)]
        if self.held != index:
            np.copyto(out, chunk, casting="unsafe")
            self.held = index
        return out


def full_search(queries: np.ndarray, database: Sequence[np.ndarray] | np.ndarray, query_runs: Sequence[np.ndarray],
                database_runs: Sequence[np.ndarray], settings: SequenceSettings, k: int,
                block_bytes: int = BLOCK_BYTES) -> SequenceMatches:
    """Every line of every query, exactly: the distance matrix in blocks of consecutive queries of a
    run (their sequences' rows against the database, read chunk by chunk), so memory stays near
    `block_bytes` however large the database."""
    return full_search_lengths(queries, database, query_runs, database_runs, [settings], k, block_bytes)[0]


def full_search_lengths(queries: np.ndarray, database: Sequence[np.ndarray] | np.ndarray,
                        query_runs: Sequence[np.ndarray], database_runs: Sequence[np.ndarray],
                        settings: Sequence[SequenceSettings], k: int,
                        block_bytes: int = BLOCK_BYTES) -> list[SequenceMatches]:
    """`full_search` for several sequence lengths at once (settings that differ only in `length`):
    each block of the distance matrix is computed once and scored for every length, where one search
    per length computed it again for each (the distances are most of a search's time)."""
    if not settings:
        return []
    first_settings = settings[0]
    if any(replace(s, length=first_settings.length) != first_settings for s in settings):
        raise ValueError("full_search_lengths: the settings may differ only in length")
    all_lines = [line_shapes(s) for s in settings]
    longest = max(s.length for s in settings)
    parts = [database] if isinstance(database, np.ndarray) else list(database)
    size = sum(len(p) for p in parts)
    runs = DatabaseRuns.of(database_runs, size)
    chunks = _chunks(parts)
    as_float32 = _Float32Chunks(chunks, parts[0].shape[1] if parts else 0)
    norms = [squared_norms(as_float32[i]) for i in range(len(chunks))]  # once, not per block
    queries = np.asarray(queries, dtype=np.float32)
    all_frames = [(query_sequences(query_runs, len(queries), s.length) >= 0).sum(1) for s in settings]
    block = max(1, block_bytes // max(1, 4 * size * 6))  # distances, best, sum, line, top-k
    out = [SequenceMatches(np.full((len(queries), k), -1, np.int64), np.full((len(queries), k), np.inf, np.float32),
                           np.zeros((len(queries), k)), frames) for frames in all_frames]
    for run in query_runs:
        carried = np.empty((0, size), dtype=np.float32)  # the previous block's last rows: this block's first
        for first in range(0, len(run), block):
            targets = run[first:first + block]
            rows = queries[run[first:first + block]]
            fresh = np.empty((len(rows), size), dtype=np.float32)
            for i, ((start, chunk), chunk_norms) in enumerate(zip(chunks, norms)):
                fresh[:, start:start + len(chunk)] = squared_distances(rows, as_float32[i], chunk_norms)
            fresh = fresh[:, runs.order]
            if first_settings.normalise:
                fresh = normalise_runs(fresh, runs.starts, first_settings.window)
            block_distances = np.concatenate([carried, fresh])
            carried = block_distances[max(0, len(block_distances) - longest + 1):]
            before = len(block_distances) - len(fresh)  # carried rows: positions first - before .. first - 1
            for setting, lines, frames, matches in zip(settings, all_lines, all_frames, out):
                skip = before - min(first, setting.length - 1)  # rows this length does not reach back to
                scores, used = _line_scores_tiled(block_distances[skip:], first, len(targets), setting.length,
                                                  runs.starts, lines)
                found = top_k(scores, used, runs, lines, frames[targets], k)
                matches.indices[targets], matches.distances[targets], matches.velocities[targets] = (
                    found.indices, found.distances, found.velocities)
    return out
