"""The coarse stage of the restricted sequence search: where each query's best lines probably end.

Cheap and approximate; everything it proposes is scored exactly afterwards
(`vidvpr.evaluate.sequence_restricted`), so it can cost recall, never report a score no line has.

1. Sketch. Every descriptor is projected to `SKETCH_DIM` numbers by signed sums of its coordinates
   (coordinate i, with a fixed random sign, is added to slot i mod `SKETCH_DIM`: a count sketch).
   The squared distance between two sketches is an unbiased estimate of the squared distance between
   the descriptors, at `SKETCH_DIM`/D of the matrix product's cost (1/7 for the 7168-D NetVLAD).
2. Anchors. Every `step`-th query of a run is an anchor: its lines of every `SHAPE_STRIDE`-th line
   shape (each exact shape lies within a frame of one of them at every point) are scored on the
   sketched distances — normalised, when the search is — against every database frame.
3. Centres. Each anchor keeps its `ends` best line ends, at most one per `spread` consecutive
   frames; the queries around it take them, moved along the anchor's line by how many frames they
   are from it.
"""

from __future__ import annotations

import numpy as np

from vidvpr.evaluate.sequence import Lines, _line_scores_tiled

SKETCH_DIM = 1024  # numbers per sketched descriptor (512 lost 0.005-0.012 recall@1 on the demo at QP 45, L = 20)
SKETCH_SEED = 0  # the signs are fixed: the same descriptors give the same sketches, run after run
SHAPE_STRIDE = 3  # every third line shape: each exact line within a frame of a coarse one at every point


def sketch(vectors: np.ndarray, dim: int = SKETCH_DIM, seed: int = SKETCH_SEED) -> np.ndarray:
    """(n, dim) float32 count sketches of (n, D) descriptors: coordinate i times a fixed random sign,
    summed into slot i mod `dim`. Descriptors of `dim` numbers or fewer are returned as they are
    (float32): their distances are exact."""
    x = np.asarray(vectors, dtype=np.float32)
    width = x.shape[1]
    if width <= dim:
        return x
    groups = -(-width // dim)
    signs = np.random.default_rng(seed).choice(np.array([-1.0, 1.0], dtype=np.float32), size=(groups, dim))
    if groups * dim != width:
        x = np.pad(x, ((0, 0), (0, groups * dim - width)))
    return np.einsum("ngd,gd->nd", x.reshape(len(x), groups, dim), signs)


def coarse_lines(lines: Lines, stride: int = SHAPE_STRIDE) -> Lines:
    """Every `stride`-th line shape of each direction counted from the one nearest speed 1 (the
    commonest: the same vehicle on the same route), the slowest (it fits in the run wherever any
    shape does: its points reach back the least) and the fastest when more than stride // 2 shapes
    from a kept one. Neighbouring shapes differ by at most one frame at each point, so every shape
    stays within stride // 2 frames of a kept one."""
    keep: set[int] = set()
    for direction in (1, -1):
        members = np.flatnonzero(np.sign(lines.velocities) == direction)
        if not len(members):
            continue
        members = members[np.argsort(np.abs(lines.velocities[members]), kind="stable")]
        usual = int(np.argmin(np.abs(np.abs(lines.velocities[members]) - 1.0)))
        chosen = list(range(usual % stride, len(members), stride))
        if len(members) - 1 - chosen[-1] > stride // 2:
            chosen.append(len(members) - 1)
        keep |= {int(members[i]) for i in [0, *chosen]}
    kept = sorted(keep)
    return Lines(lines.velocities[kept], lines.offsets[kept])


def anchors_of(count: int, step: int) -> np.ndarray:
    """Positions of a run's anchors: every `step`-th from step // 2 on (the last position when the
    run is shorter)."""
    found = np.arange(step // 2, count, step)
    return found if len(found) else np.array([count - 1])


def anchor_index(positions: np.ndarray, anchors: np.ndarray, step: int) -> np.ndarray:
    """For each position of a run, the index of its nearest anchor."""
    return np.clip(np.floor((positions - anchors[0]) / step + 0.5).astype(np.int64), 0, len(anchors) - 1)


def anchor_ends(distances: np.ndarray, first: int, count: int, length: int, step: int, starts: np.ndarray,
                lines: Lines, ends: int, spread: int) -> tuple[np.ndarray, np.ndarray]:
    """The `ends` best line ends (A, ends) (run-order columns, -1 for none) of `count` anchors at run
    positions first, first + step, ..., and the velocity of each one's best line; at most one end
    per `spread` consecutive columns. `distances` holds the run's rows from position
    max(0, first - length + 1) to the last anchor against every run-order column."""
    scores, used = _line_scores_tiled(distances, first, count, length, starts, lines, step)
    columns = scores.shape[1]
    blocks = -(-columns // spread)
    padded = np.full((count, blocks * spread), np.inf, dtype=np.float32)
    padded[:, :columns] = scores
    within = padded.reshape(count, blocks, spread).argmin(axis=2)  # each block's best column
    column = np.arange(blocks) * spread + within
    value = np.take_along_axis(padded, column, axis=1)
    keep = min(ends, blocks)
    chosen = np.argpartition(value, keep - 1, axis=1)[:, :keep] if keep < blocks else np.tile(
        np.arange(blocks), (count, 1))
    found = np.take_along_axis(column, chosen, axis=1)
    finite = np.isfinite(np.take_along_axis(value, chosen, axis=1))
    velocity = lines.velocities[np.take_along_axis(used, np.minimum(found, columns - 1), axis=1)]
    return np.where(finite, found, -1), np.where(finite, velocity, 0.0)
