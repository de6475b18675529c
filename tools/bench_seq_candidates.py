#!/usr/bin/env python3
"""The design the sequence issue suggested for the restricted search, measured: lines only near the
ends that the single-frame search's top-K candidates point to. Not what `--seq-search restricted`
does (see the README's "Scaling"); this script is the evidence why.

Each past frame of a query's sequence votes, with each of its K single-frame candidates (weight
1/rank), for the line ends that candidate lies on a line to (every velocity of the range), binned
by 5 database frames; the E best bins of each query are scored exactly as `full_search` would
(`vidvpr.evaluate.sequence_restricted._refine`: all lines, the same clipping and normalisation).
The single-frame search's results are the input (eval has them anyway), so its cost is not counted;
the CPU time printed is the votes' and the exact scoring's, as a multiple of the single-frame
search's. Datasets as `tools/bench_seq.py` takes them:

    python tools/bench_seq_candidates.py --nordland ../shared/data/nordland-half1 --work bench-seq --tolerance 1
    python tools/bench_seq_candidates.py --eval DEMO/eval --cell 320x176/qp50
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_line_scores import positive, run_tool  # noqa: E402  (a sibling script)
from bench_seq import add_dataset_options, load_dataset, single_frame  # noqa: E402

from vidvpr.cli.evaluate import parse_seq_lengths  # noqa: E402
from vidvpr.core.errors import BadInput  # noqa: E402
from vidvpr.evaluate.recall import recall_at_n  # noqa: E402
from vidvpr.evaluate.sequence import (  # noqa: E402
    DatabaseRuns,
    Lines,
    SequenceMatches,
    SequenceSettings,
    check_settings,
    full_search,
    line_shapes,
    query_sequences,
)
from vidvpr.evaluate.sequence_restricted import REFINE_TARGETS, _refine  # noqa: E402

BIN_FRAMES = 5  # votes are counted per 5 database frames; a bin is scored exactly as one window of ±2


def vote_centres(candidates: np.ndarray, sequences: np.ndarray, lines: Lines, runs: DatabaseRuns,
                 ends: int) -> np.ndarray:
    """(M, ends) run-order columns: the middles of each query's `ends` best-voted bins (-1: no vote)."""
    lengths = runs.lengths
    run_bins = -(-lengths // BIN_FRAMES)
    bin_start = np.concatenate([[0], np.cumsum(run_bins)])
    total_bins = int(bin_start[-1])
    count, points = sequences.shape[0], candidates.shape[1]
    t, i = np.nonzero(sequences >= 0)
    found = candidates[sequences[t, i]].reshape(-1)
    weight = np.tile(1.0 / (1 + np.arange(points)), len(t))
    t, i = np.repeat(t, points), np.repeat(i, points)
    keep = found >= 0
    t, i, found, weight = t[keep], i[keep], found[keep], weight[keep]
    run, position = runs.run_of[found], runs.position[found]
    keys, weights = [], []
    for direction in (1, -1):
        mine = np.sign(lines.velocities) == direction
        if not mine.any():
            continue
        low, high = lines.offsets[mine].min(0), lines.offsets[mine].max(0)
        first, last = np.maximum(position + low[i], 0), np.minimum(position + high[i], lengths[run] - 1)
        ok = first <= last
        a, b = first[ok] // BIN_FRAMES, last[ok] // BIN_FRAMES
        spans = b - a + 1
        owner = np.repeat(np.arange(len(spans)), spans)
        nth = np.arange(int(spans.sum())) - np.repeat(np.cumsum(spans) - spans, spans)
        keys.append(t[ok][owner] * total_bins + bin_start[run[ok]][owner] + a[owner] + nth)
        weights.append(weight[ok][owner])
    histogram = np.bincount(np.concatenate(keys), np.concatenate(weights),
                            minlength=count * total_bins).reshape(count, total_bins)
    keep_bins = min(ends, total_bins)
    best = np.argpartition(-histogram, keep_bins - 1, axis=1)[:, :keep_bins]
    votes = np.take_along_axis(histogram, best, 1)
    bin_run = np.repeat(np.arange(len(lengths)), run_bins)[best]
    middle = runs.starts[bin_run] + np.minimum((best - bin_start[bin_run]) * BIN_FRAMES + BIN_FRAMES // 2,
                                               lengths[bin_run] - 1)
    return np.where(votes > 0, middle, -1)


def candidate_search(queries: np.ndarray, database: np.ndarray, query_runs: list, database_runs: list,
                     settings: SequenceSettings, k: int, candidates: np.ndarray, ends: int) -> SequenceMatches:
    lines = line_shapes(settings)
    runs = DatabaseRuns.of(database_runs, len(database))
    sequences = query_sequences(query_runs, len(queries), settings.length)
    frames = (sequences >= 0).sum(1)
    out = SequenceMatches(np.full((len(queries), k), -1, np.int64), np.full((len(queries), k), np.inf, np.float32),
                          np.zeros((len(queries), k)), frames)
    centres = vote_centres(candidates, sequences, lines, runs, ends)
    for start in range(0, len(queries), REFINE_TARGETS):
        targets = np.arange(start, min(len(queries), start + REFINE_TARGETS))
        owner, slot = np.nonzero(centres[targets] >= 0)
        if len(owner):
            _refine(queries, [database], runs, sequences, frames, targets, owner, centres[targets][owner, slot],
                    lines, settings, BIN_FRAMES // 2, k, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_options(parser)
    parser.add_argument("--candidates", type=positive, default=10, help="single-frame candidates per frame (K)")
    parser.add_argument("--ends", default="2,3,4", help="bins scored exactly per query (E), comma-separated")
    parser.add_argument("--lengths", default="5,10,20")
    args = parser.parse_args()
    if (args.nordland is None) == (args.eval is None):
        parser.error("give one of --nordland DIR, --eval DIR")
    try:
        lengths = parse_seq_lengths(args.lengths)
        for length in lengths:
            check_settings(SequenceSettings(length))
        ends = [positive(part) for part in args.ends.split(",")]
    except (click.BadParameter, BadInput, argparse.ArgumentTypeError) as exc:
        parser.error(f"--lengths/--ends: {exc}")
    queries, database, query_runs, database_runs, positives, name = load_dataset(parser, args)
    found, single_s = single_frame(queries, database, args.candidates)
    database = database.astype(np.float32)
    print(f"{name}; single-frame search (faiss IndexFlatL2, top {args.candidates}) {single_s:.2f} s CPU, recall@1 "
          f"{recall_at_n(found, positives, (1,)).recall[1]:.4f}; load average {os.getloadavg()[0]:.1f}")
    print("recall@1 of the candidates' lines minus the full search's, and their CPU as a multiple of the single-frame "
          "search's")
    for length in lengths:
        for normalise in (False, True):
            settings = SequenceSettings(length, normalise=normalise)
            full = recall_at_n(full_search(queries, database, query_runs, database_runs, settings, 20).indices,
                               positives, (1,)).recall[1]
            cells = []
            for bins in ends:
                started = time.process_time()
                matches = candidate_search(queries, database, query_runs, database_runs, settings, 20, found, bins)
                spent = time.process_time() - started
                recall = recall_at_n(matches.indices, positives, (1,)).recall[1]
                cells.append(f"E {bins}: {recall - full:+.4f} {spent / single_s:.2f}x")
            print(f"L {length:>2} normalise {'yes' if normalise else 'no ':3} full {full:.4f} | " + " | ".join(cells),
                  flush=True)


if __name__ == "__main__":
    run_tool(main)
