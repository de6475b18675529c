"""The restricted sequence search: an approximate search over every line end proposes a few places per
query, and only lines there are scored exactly.

1. Coarse (`vidvpr.evaluate.sequence_coarse`): on sketched descriptors, every `step`-th query of a
   run scores lines of a subset of the shapes against every database frame and keeps its `ends` best
   line ends; the queries around it take them as centres.
2. Exact: around each centre, every end within `neighbourhood` frames is scored with every line
   (all velocities, both directions when asked) exactly as `full_search` would: the same points,
   the same clipping at the run's ends, the same normalisation.
3. Shared distances: the exact distances those lines need are computed once, a tile of `TILE`
   consecutive database frames at a time against every query row that needs any of it (one matrix
   product per tile).

Every score it reports is a line's exact score, so it never beats `full_search`; it equals it when
the centres cover every end (every query its own anchor, `step` 1, keeping every end: `ends` at least
the database's size, `neighbourhood` 0). Its cost: the sketches and the coarse line sums, which grow
with the database but are a small share of the single-frame search's for wide descriptors, plus an
amount per query for the exact stage that does not grow with the database (`tools/bench_seq.py`
measures both, and what it loses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vidvpr.evaluate.sequence import (
    BLOCK_BYTES,
    DatabaseRuns,
    Lines,
    SequenceMatches,
    SequenceSettings,
    _chunks,
    database_rows,
    line_shapes,
    normalise_runs,
    query_sequences,
    squared_distances,
    squared_norms,
)
from vidvpr.evaluate.sequence_coarse import (
    SKETCH_DIM,
    anchor_ends,
    anchor_index,
    anchors_of,
    coarse_lines,
    sketch,
)

DEFAULT_ENDS = 20  # centres per query (10 lost 0.005 recall@1 on the demo at QP 45, L = 20)
DEFAULT_NEIGHBOURHOOD = 2  # ends scored exactly each side of a centre
ANCHOR_STEP = 4  # queries per coarse search
TILE = 16  # database frames per exact matrix product (16 measured cheapest of 16, 32, 64 at 20k frames)
REFINE_TARGETS = 512  # queries refined at once (bounds memory)


@dataclass(frozen=True)
class PairDistances:
    """Squared distances of query rows to some tiles of `tile` consecutive run-order columns: a row's
    tiles side by side in `values`, so a stretch of columns the row asked for is a stretch of it."""

    keys: np.ndarray  # sorted: query row * tiles + tile
    values: np.ndarray  # (len(keys) * tile,) float32
    tiles: int
    tile: int

    def first(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Where in `values` each (row, column) pair is (the pair must have been asked for)."""
        key = np.searchsorted(self.keys, rows * self.tiles + columns // self.tile)
        return key * self.tile + columns % self.tile

    def normalised(self, starts: np.ndarray, window: int) -> np.ndarray:
        """`values` normalised as `normalise_runs` does along each row, exactly wherever the `window`
        around a column lies within the tiles held: stretches of a row's consecutive tiles, cut
        where a database run starts (`starts`, ending with the database's size)."""
        tile_of = self.keys % self.tiles
        row = self.keys // self.tiles  # a row's last tile and the next row's first can have consecutive keys
        breaks = [np.flatnonzero(np.concatenate([[True], (np.diff(self.keys) != 1) | (np.diff(row) != 0)]))
                  * self.tile]
        inside = starts[(starts % self.tile) != 0]
        low = np.searchsorted(inside, tile_of * self.tile)
        count = np.searchsorted(inside, (tile_of + 1) * self.tile) - low
        owner = np.repeat(np.arange(len(self.keys)), count)
        nth = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        within = inside[np.repeat(low, count) + nth]
        breaks.append(owner * self.tile + within - tile_of[owner] * self.tile)
        bounds = np.unique(np.concatenate(breaks + [[0, len(self.values)]]))
        return normalise_runs(self.values[None, :], bounds, window)[0]


def pair_distances(queries: np.ndarray, parts: Sequence[np.ndarray], order: np.ndarray, rows: np.ndarray,
                   lo: np.ndarray, hi: np.ndarray, tile: int = TILE) -> PairDistances:
    """The distances of query `rows[i]` to run-order columns [lo[i], hi[i]) (lo < hi, within the
    database): every tile of `tile` columns such a stretch touches, one matrix product per tile
    against every row that needs it."""
    size = len(order)
    tiles = -(-size // tile)
    first, count = lo // tile, (hi - 1) // tile - lo // tile + 1
    step = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    keys = np.unique(np.repeat(rows, count) * tiles + np.repeat(first, count) + step)
    values = np.zeros((len(keys), tile), dtype=np.float32)
    by_tile = np.argsort(keys % tiles, kind="stable")
    tile_of = (keys % tiles)[by_tile]
    bounds = np.flatnonzero(np.concatenate([[True], tile_of[1:] != tile_of[:-1], [True]]))
    needed, row_of_key = np.unique(keys // tiles, return_inverse=True)
    held = queries[needed]
    norms = squared_norms(held)  # once per row, not per tile: as costly as a 64-column product
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        start = int(tile_of[a]) * tile
        vectors = database_rows(parts, order[start:min(size, start + tile)])
        mine = row_of_key[by_tile[a:b]]
        block = held[mine] @ vectors.T
        block *= -2.0
        block += norms[mine][:, None]
        block += squared_norms(vectors)[None, :]
        values[by_tile[a:b], :len(vectors)] = np.maximum(block, 0.0)  # as `squared_distances` computes them
    return PairDistances(keys, values.reshape(-1), tiles, tile)


def _score_windows(blocks: np.ndarray, frames: np.ndarray, lines: Lines, base: np.ndarray,
                   width: int) -> tuple[np.ndarray, np.ndarray]:
    """Best line score (W, width) and its line for windows of ends, from (W, L, B) float32 distance
    blocks whose row k starts `base[k]` positions before the window's first end (NaN outside the
    run: a line with such a point has no score; rows beyond the window's `frames` are ignored)."""
    present = np.arange(lines.length)[None, :] < frames[:, None]
    blocks = np.where(present[:, :, None], blocks, np.float32(0.0))
    best = np.full((len(blocks), width), np.inf, dtype=np.float32)
    which = np.zeros((len(blocks), width), dtype=np.int16)
    scale = (1.0 / frames).astype(np.float32)[:, None]
    for v, offsets in enumerate(lines.offsets.tolist()):
        total = np.zeros((len(blocks), width), dtype=np.float32)
        for k, offset in enumerate(offsets):
            start = int(base[k]) - offset
            total += blocks[:, k, start:start + width]
        total *= scale
        total[np.isnan(total)] = np.inf
        better = total < best
        np.minimum(best, total, out=best)
        which[better] = v
    return best, which


def _refine(queries: np.ndarray, parts: Sequence[np.ndarray], runs: DatabaseRuns, sequences: np.ndarray,
            frames: np.ndarray, targets: np.ndarray, owner: np.ndarray, centre: np.ndarray, lines: Lines,
            settings: SequenceSettings, neighbourhood: int, k: int, out: SequenceMatches) -> None:
    """Score exactly every line ending within `neighbourhood` of each centre (run-order column) of
    query `targets[owner]`, and write each target's best `k` ends into `out`."""
    margin = settings.window // 2 if settings.normalise else 0
    width = 2 * neighbourhood + 1
    high, low = lines.offsets.max(axis=0), lines.offsets.min(axis=0)
    base = high + margin  # row k of a block starts this many positions before the window's first end
    block_width = width + int((high - low).max()) + 2 * margin
    run = np.searchsorted(runs.starts, centre, side="right") - 1
    window_first = centre - runs.starts[run] - neighbourhood  # position in its run of each window's first end
    rows = sequences[targets[owner]]  # (W, L) query rows of each window's sequence
    w_index, k_index = np.nonzero(rows >= 0)
    row = rows[w_index, k_index]
    lo = window_first[w_index] - base[k_index]  # position in the run of each block row's first column
    run_start, run_length = runs.starts[run[w_index]], runs.lengths[run[w_index]]
    begin, end = run_start + np.clip(lo, 0, run_length), run_start + np.clip(lo + block_width, 0, run_length)
    some = end > begin  # block rows with a column inside the run
    pairs = pair_distances(queries, parts, runs.order, row[some], begin[some], end[some])
    values = pairs.normalised(runs.starts, settings.window) if settings.normalise else pairs.values
    position = lo[:, None] + np.arange(block_width)
    inside = (position >= 0) & (position < run_length[:, None])
    column = run_start[:, None] + np.clip(position, 0, run_length[:, None] - 1)
    at = np.zeros(column.shape, dtype=np.int64)  # a row's tiles lie side by side: offsets from its first
    at[some] = pairs.first(row[some], begin[some])[:, None] + (column[some] - begin[some][:, None])
    blocks = np.full((len(owner), lines.length, block_width), np.nan, dtype=np.float32)
    blocks[w_index, k_index] = np.where(inside, values[at], np.nan)
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


def restricted_search(queries: np.ndarray, database: Sequence[np.ndarray] | np.ndarray,
                      query_runs: Sequence[np.ndarray], database_runs: Sequence[np.ndarray],
                      settings: SequenceSettings, k: int, ends: int = DEFAULT_ENDS,
                      neighbourhood: int = DEFAULT_NEIGHBOURHOOD, step: int = ANCHOR_STEP,
                      sketch_dim: int = SKETCH_DIM, block_bytes: int = BLOCK_BYTES) -> SequenceMatches:
    """The best `k` line ends per query among those near the centres the coarse stage proposes; see
    the module docstring."""
    lines = line_shapes(settings)
    coarse = coarse_lines(lines)
    parts = [database] if isinstance(database, np.ndarray) else list(database)
    size = sum(len(p) for p in parts)
    runs = DatabaseRuns.of(database_runs, size)
    queries = np.asarray(queries, dtype=np.float32)
    sequences = query_sequences(query_runs, len(queries), settings.length)
    frames = (sequences >= 0).sum(1)
    out = SequenceMatches(np.full((len(queries), k), -1, np.int64), np.full((len(queries), k), np.inf, np.float32),
                          np.zeros((len(queries), k)), frames)
    sketched = np.concatenate([sketch(chunk, sketch_dim) for _, chunk in _chunks(parts)])[runs.order]
    sketched_queries = sketch(queries, sketch_dim)
    sketched_norms = squared_norms(sketched)
    spread = 2 * neighbourhood + 1
    length = settings.length
    per_anchor = 4 * size * (step + 3)  # its rows' distances, and the coarse scores
    for run in query_runs:
        anchors = anchors_of(len(run), step)
        nearest = anchor_index(np.arange(len(run)), anchors, step)
        chunk = max(1, block_bytes // per_anchor)
        # coarse distance rows of the run, from position held_first on
        held, held_first = np.empty((0, size), dtype=np.float32), 0
        for i0 in range(0, len(anchors), chunk):
            i1 = min(len(anchors), i0 + chunk)
            first, last = int(anchors[i0]), int(anchors[i1 - 1])
            keep_from = max(0, first - length + 1)
            fresh = squared_distances(sketched_queries[run[max(keep_from, held_first + len(held)):last + 1]], sketched,
                                      sketched_norms)
            if settings.normalise:
                fresh = normalise_runs(fresh, runs.starts, settings.window)
            held = np.concatenate([held[max(0, keep_from - held_first):], fresh])
            held_first = keep_from
            centres, velocity = anchor_ends(held, first, i1 - i0, length, step, runs.starts, coarse, ends, spread)
            members = np.flatnonzero((nearest >= i0) & (nearest < i1))
            mine, shift = nearest[members] - i0, members - anchors[nearest[members]]
            moved = centres[mine] + np.floor(velocity[mine] * shift[:, None] + 0.5).astype(np.int64)
            home = np.searchsorted(runs.starts, np.maximum(centres[mine], 0), side="right") - 1
            moved = np.clip(moved, runs.starts[home], runs.starts[home + 1] - 1)  # stay in the centre's run
            for s in range(0, len(members), REFINE_TARGETS):
                part = slice(s, s + REFINE_TARGETS)
                owner, slot = np.nonzero(centres[mine[part]] >= 0)
                if len(owner):
                    _refine(queries, parts, runs, sequences, frames, run[members[part]], owner,
                            moved[part][owner, slot], lines, settings, neighbourhood, k, out)
    return out
