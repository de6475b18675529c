"""The restricted sequence search: lines only near each query's single-frame candidates, so the cost
grows with the queries and the sequence length, not with the database.

1. Votes. Each frame of a query's sequence has its top-K single-frame candidates (the faiss search
   already made); a candidate of the frame k steps back votes for the line end k frames after it
   (before it, for the reverse direction), weighted K - rank. The `ends` most voted ends are kept.
2. Neighbourhoods. Around each kept end, every end within `neighbourhood` frames of its run is
   scored with every line (all velocities, both directions when asked), exactly as `full_search`
   would: the same points, the same clipping at the run's ends, the same normalisation.
3. Shared distances. The distances those lines need (each query row against a few short stretches
   of database runs) are merged per row and computed once, however many sequences use them:
   consecutive queries of a run share all but one of their frames.

A line whose every point is far from every candidate of its frames is never scored: the result
can differ from `full_search`'s, never by a better score (`tools/bench_seq.py` measures how often
recall@1 differs, and the cost against the single-frame search).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidvpr.evaluate.sequence import (
    DatabaseRuns,
    Lines,
    SequenceMatches,
    SequenceSettings,
    database_rows,
    line_shapes,
    normalise_runs,
    query_sequences,
)

SEQUENCE_CANDIDATES = 20  # single-frame candidates per frame eval hands the restricted search
DEFAULT_ENDS = 3  # most-voted line ends kept per query
DEFAULT_NEIGHBOURHOOD = 10  # ends scored each side of a kept end (covers recall@20's ranking)
CHUNK_TARGETS = 2048  # queries handled at once (bounds memory; neighbours in a run share distances)


def _votes(sequences: np.ndarray, candidates: np.ndarray, runs: DatabaseRuns, reverse: bool,
           ends: int) -> tuple[np.ndarray, np.ndarray]:
    """(target, run-order end) of the `ends` most voted line ends per target."""
    targets, length = sequences.shape
    top = candidates.shape[1]
    t, k, m = np.meshgrid(np.arange(targets), np.arange(length), np.arange(top), indexing="ij")
    rows = sequences[t, k]
    found = np.where(rows >= 0, candidates[np.maximum(rows, 0), m], -1)
    keep = found >= 0
    t, k, m, found = t[keep], k[keep], m[keep], found[keep]
    run, position = runs.run_of[found], runs.position[found]
    steps = [k, -k] if reverse else [k]
    keys, weights = [], []
    for step in steps:
        end = position + step
        inside = (end >= 0) & (end < runs.lengths[run])
        keys.append(t[inside] * len(runs.order) + runs.starts[run[inside]] + end[inside])
        weights.append(top - m[inside])
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    score = np.bincount(inverse, weights=np.concatenate(weights).astype(np.float64))
    owner, column = unique // len(runs.order), unique % len(runs.order)
    order = np.lexsort((column, -score, owner))
    owner, column = owner[order], column[order]
    first = np.searchsorted(owner, owner, side="left")
    chosen = np.arange(len(owner)) - first < ends
    return owner[chosen], column[chosen]


def _merge(keys: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping [lo, hi) intervals with the same key merged: (which merged interval each input
    falls in, merged keys, merged lo, merged hi); inputs sorted by (key, lo)."""
    order = np.lexsort((lo, keys))
    keys, lo, hi = keys[order], lo[order], hi[order]
    group_changes = np.concatenate([[True], keys[1:] != keys[:-1]])
    group = np.cumsum(group_changes) - 1
    span = int(hi.max() - lo.min() + 2) if len(lo) else 1
    reach = np.maximum.accumulate(group * span + (hi - lo.min()))  # the furthest end so far, per key
    starts_new = group_changes.copy()
    starts_new[1:] |= (lo[1:] - lo.min()) > reach[:-1] - group[1:] * span
    merged = np.cumsum(starts_new) - 1
    first = np.flatnonzero(starts_new)
    merged_hi = np.maximum.reduceat(hi, first)
    which = np.empty(len(order), dtype=np.int64)
    which[order] = merged
    return which, keys[first], lo[first], merged_hi


def _distances(queries: np.ndarray, parts: Sequence[np.ndarray], runs: DatabaseRuns, rows: np.ndarray,
               run: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared L2 distances of query `rows` to positions [lo, hi) of database `run`, laid end to end
    (NaN outside the run), and where each interval starts in that buffer. Every database row needed
    is read (and made float32) once, in run order, so each interval is a contiguous block of it."""
    widths = hi - lo
    offsets = np.concatenate([[0], np.cumsum(widths)])
    buffer = np.full(int(offsets[-1]), np.nan, dtype=np.float64)
    first = np.maximum(lo, 0)
    last = np.minimum(hi, runs.lengths[run])
    inside = np.flatnonzero(last > first)
    if not len(inside):
        return buffer, offsets[:-1]
    starts = runs.starts[run[inside]]
    needed = np.unique(np.concatenate([np.arange(a, b) for a, b in zip(starts + first[inside], starts + last[inside])]))
    vectors = database_rows(parts, runs.order[needed])
    squares = np.einsum("ij,ij->i", vectors, vectors)
    at = np.searchsorted(needed, starts + first[inside])
    for i, begin in zip(inside, at):
        q = queries[rows[i]].astype(np.float32)
        count = int(last[i] - first[i])
        block = slice(int(begin), int(begin) + count)
        slot = int(offsets[i] + first[i] - lo[i])
        buffer[slot:slot + count] = np.maximum(squares[block] + float(q @ q) - 2.0 * (vectors[block] @ q), 0.0)
    return buffer, offsets[:-1]


def _score_windows(blocks: np.ndarray, frames: np.ndarray, lines: Lines, base: np.ndarray,
                   width: int) -> tuple[np.ndarray, np.ndarray]:
    """Best line score (W, width) and its line for windows of ends, from (W, L, B) distance blocks
    whose row k starts `base[k]` positions before the window's first end (NaN: outside the run, or
    beyond the window's `frames`); a line with a point outside the run has no score."""
    total = np.zeros((len(lines.velocities), len(blocks), width))
    count = np.zeros_like(total)
    for k in range(lines.length):
        row = blocks[:, k, :]
        for v, offset in enumerate(lines.offsets[:, k]):
            start = base[k] - offset
            values = row[:, start:start + width]
            known = ~np.isnan(values)
            total[v] += np.where(known, values, 0.0)
            count[v] += known
    scores = np.where(count == frames[None, :, None], total / frames[None, :, None], np.inf)
    which = np.argmin(scores, axis=0)
    return np.take_along_axis(scores, which[None], axis=0)[0], which


def restricted_search(queries: np.ndarray, database: Sequence[np.ndarray] | np.ndarray,
                      query_runs: Sequence[np.ndarray], database_runs: Sequence[np.ndarray],
                      settings: SequenceSettings, k: int, candidates: np.ndarray, ends: int = DEFAULT_ENDS,
                      neighbourhood: int = DEFAULT_NEIGHBOURHOOD) -> SequenceMatches:
    """The best `k` line ends per query among those near its frames' single-frame `candidates` (M, K)
    database rows (-1 for none); see the module docstring."""
    lines = line_shapes(settings)
    parts = [database] if isinstance(database, np.ndarray) else list(database)
    runs = DatabaseRuns.of(database_runs, sum(len(p) for p in parts))
    queries = np.asarray(queries)
    candidates = np.asarray(candidates, dtype=np.int64)
    sequences = query_sequences(query_runs, len(queries), settings.length)
    frames = (sequences >= 0).sum(1)
    out = SequenceMatches(np.full((len(queries), k), -1, np.int64), np.full((len(queries), k), np.inf, np.float32),
                          np.zeros((len(queries), k)), frames)
    ordered = np.concatenate(list(query_runs)) if query_runs else np.empty(0, np.int64)
    margin = settings.window // 2 if settings.normalise else 0
    width = 2 * neighbourhood + 1
    high, low = lines.offsets.max(axis=0), lines.offsets.min(axis=0)
    base = high + margin  # row k of a block starts this many positions before the window's first end
    block_width = width + int((high - low).max()) + 2 * margin
    for first in range(0, len(ordered), CHUNK_TARGETS):
        targets = ordered[first:first + CHUNK_TARGETS]
        mine = sequences[targets]
        owner, end = _votes(mine, candidates, runs, settings.reverse, ends)
        if not len(owner):
            continue
        run = np.searchsorted(runs.starts, end, side="right") - 1
        window_first = end - runs.starts[run] - neighbourhood  # position of each window's first end
        rows = mine[owner]  # (W, L) query rows of each window's sequence
        w_index, k_index = np.nonzero(rows >= 0)
        lo = window_first[w_index] - base[k_index]
        which, merged_key, merged_lo, merged_hi = _merge(rows[w_index, k_index] * len(runs.starts) + run[w_index],
                                                         lo, lo + block_width)
        buffer, offsets = _distances(queries, parts, runs, merged_key // len(runs.starts),
                                     merged_key % len(runs.starts), merged_lo, merged_hi)
        blocks = np.full((len(owner), lines.length, block_width), np.nan)
        blocks[w_index, k_index] = buffer[(offsets[which] + lo - merged_lo[which])[:, None] + np.arange(block_width)]
        if settings.normalise:
            flat = blocks.reshape(-1, block_width)
            blocks = normalise_runs(flat, np.array([0, block_width]), settings.window).reshape(blocks.shape)
        scores, used = _score_windows(blocks, frames[targets[owner]], lines, base, width)
        position = window_first[:, None] + np.arange(width)
        valid = np.isfinite(scores)
        target = np.broadcast_to(owner[:, None], scores.shape)[valid]
        database_row = runs.order[runs.starts[np.broadcast_to(run[:, None], scores.shape)[valid]] + position[valid]]
        score, velocity = scores[valid], lines.velocities[used[valid]]
        # an end two windows share is scored twice (equal to within rounding): keep its best
        order = np.lexsort((score, database_row, target))
        target, database_row, score, velocity = target[order], database_row[order], score[order], velocity[order]
        fresh = np.concatenate([[True], (target[1:] != target[:-1]) | (database_row[1:] != database_row[:-1])])
        target, database_row, score, velocity = target[fresh], database_row[fresh], score[fresh], velocity[fresh]
        order = np.lexsort((database_row, score, target))
        target, database_row, score, velocity = target[order], database_row[order], score[order], velocity[order]
        rank = np.arange(len(target)) - np.searchsorted(target, target, side="left")
        top = rank < k
        rows_out = targets[target[top]]
        out.indices[rows_out, rank[top]] = database_row[top]
        out.distances[rows_out, rank[top]] = score[top]
        out.velocities[rows_out, rank[top]] = velocity[top]
    return out
