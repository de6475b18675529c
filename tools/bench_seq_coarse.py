#!/usr/bin/env python3
"""What a coarse stage must keep for a restricted sequence search to agree with the full one, and
what that alone costs: the bound on `--seq-search restricted`'s cost target (README, "Scaling").

The most accurate coarse stage of the restricted search's family: every query (no anchors) and
every line shape scored on count-sketched distances (`vidvpr.evaluate.sequence_coarse.sketch`),
against every database frame; each query keeps its E best line ends, at most one per 5 frames (as
the restricted search's anchors do). A restricted search that then scored exactly the lines ending
within `--neighbourhood` frames of those ends would answer with the best of them: this script takes
that answer from the full search's exact scores of the whole matrix and prints, per sketch size and
E, how often it is the full search's top-1 and its recall@1 minus the full search's. Beside each
sketch size, the CPU of sketching and of the sketched distances of all queries, as multiples of the
single-frame search's (faiss IndexFlatL2, top 20), and of summing the sketched distances along
every line (the same tiled sums as the full search's): what that coarse stage costs before any
line is scored exactly.

Datasets as `tools/bench_seq.py` takes them (whole matrices in memory: up to 40 million query ×
database pairs):

    OMP_NUM_THREADS=1 python tools/bench_seq_coarse.py --nordland ../shared/data/nordland-half1 --work bench-seq --tolerance 1
    OMP_NUM_THREADS=1 python tools/bench_seq_coarse.py --eval DEMO/eval-seq --cell 80x32/qp45
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
from bench_line_scores import non_negative, positive, run_tool  # noqa: E402  (a sibling script)
from bench_seq import add_dataset_options, load_dataset, single_frame  # noqa: E402

from vidvpr.cli.evaluate import parse_seq_lengths  # noqa: E402
from vidvpr.core.errors import BadInput  # noqa: E402
from vidvpr.evaluate.recall import recall_at_n  # noqa: E402
from vidvpr.evaluate.sequence import (  # noqa: E402
    DatabaseRuns,
    SequenceSettings,
    check_settings,
    line_shapes,
    normalise_runs,
    sequence_scores,
    squared_distances,
)
from vidvpr.evaluate.sequence_coarse import anchor_ends, sketch  # noqa: E402

MAX_PAIRS = 40_000_000  # query x database pairs held as whole matrices (several of 160 MB each)
SPREAD = 5  # at most one end per 5 database frames, as the restricted search's anchors keep them


def coarse_ends(sketched: np.ndarray, query_runs: list, runs: DatabaseRuns, settings: SequenceSettings,
                ends: int) -> np.ndarray:
    """(M, ends) run-order columns (-1: none): each query's best line ends on the sketched distances,
    every query and every line shape."""
    lines = line_shapes(settings)
    ordered = sketched[:, runs.order]
    if settings.normalise:
        ordered = normalise_runs(ordered, runs.starts, settings.window)
    out = np.full((len(sketched), ends), -1, dtype=np.int64)
    for run in query_runs:
        found, _ = anchor_ends(ordered[run], 0, len(run), settings.length, 1, runs.starts, lines, ends, SPREAD)
        out[run, :found.shape[1]] = found
    return out


def restricted_answer(exact_scores: np.ndarray, ends: np.ndarray, runs: DatabaseRuns, neighbourhood: int) -> np.ndarray:
    """(M,) database rows: the exactly best line end within `neighbourhood` frames of any given end
    in its run (-1 when no end was given)."""
    lengths, starts = runs.lengths, runs.starts
    safe = np.maximum(ends, 0)
    run = np.searchsorted(starts, safe, side="right") - 1
    shifted = (ends[:, :, None] + np.arange(-neighbourhood, neighbourhood + 1)).reshape(len(ends), -1)
    run = np.repeat(run, 2 * neighbourhood + 1, axis=1)
    valid = np.repeat(ends >= 0, 2 * neighbourhood + 1, axis=1) & (shifted >= starts[run]) & (
        shifted < starts[run] + lengths[run])
    rows = runs.order[np.where(valid, shifted, 0)]
    scores = np.where(valid, np.take_along_axis(exact_scores, rows, axis=1), np.inf)
    # the lower database row among equal scores, as the full search ranks them
    best = np.lexsort((rows, scores), axis=-1)[:, 0]
    picked = rows[np.arange(len(rows)), best]
    return np.where(np.isfinite(scores[np.arange(len(rows)), best]), picked, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_options(parser)
    parser.add_argument("--length", default="20", help="sequence length L")
    parser.add_argument("--sketch-dims", default="256,512,1024,2048", help="sketch sizes, comma-separated")
    parser.add_argument("--ends", default="1,2,3,5,10", help="line ends kept per query (E), comma-separated")
    parser.add_argument("--neighbourhood", type=non_negative, default=2, help="ends scored exactly each side of one kept")
    args = parser.parse_args()
    if (args.nordland is None) == (args.eval is None):
        parser.error("give one of --nordland DIR, --eval DIR")
    try:
        (length,) = parse_seq_lengths(args.length)
        check_settings(SequenceSettings(length))
        dims = [positive(part) for part in args.sketch_dims.split(",")]
        ends = sorted({positive(part) for part in args.ends.split(",")})
    except ValueError:
        parser.error(f"--length takes one length, got {args.length!r}")
    except (click.BadParameter, BadInput, argparse.ArgumentTypeError) as exc:
        parser.error(f"--length/--sketch-dims/--ends: {exc}")
    queries, database, query_runs, database_runs, positives, name = load_dataset(parser, args)
    if len(queries) * len(database) > MAX_PAIRS:
        parser.error(f"{len(queries)} queries x {len(database)} database frames: more than the {MAX_PAIRS:,} pairs "
                     f"this script holds as whole matrices")
    _, single_s = single_frame(queries, database, 20)
    database = database.astype(np.float32)
    runs = DatabaseRuns.of(database_runs, len(database))
    exact = squared_distances(queries, database)
    print(f"{name}; L = {length}; single-frame search (faiss IndexFlatL2, top 20) {single_s:.2f} s CPU; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("per sketch size: CPU of sketching, of the sketched distances and of their line sums (x single); per E kept "
          "ends: share of queries whose answer is the full search's top-1 / recall@1 minus the full search's")
    for normalise in (False, True):
        settings = SequenceSettings(length, normalise=normalise)
        full_scores, _ = sequence_scores(exact, query_runs, database_runs, settings)
        full_best = np.where(np.isfinite(full_scores.min(1)), np.argmin(full_scores, axis=1), -1)
        full_recall = recall_at_n(full_best[:, None], positives, (1,)).recall[1]
        print(f"normalise {'yes' if normalise else 'no'}: full search recall@1 {full_recall:.4f}")
        for dim in dims:
            started = time.process_time()
            sketched_queries, sketched_database = sketch(queries, dim), sketch(database, dim)
            sketch_s = time.process_time() - started
            started = time.process_time()
            sketched = squared_distances(sketched_queries, sketched_database)
            distance_s = time.process_time() - started
            started = time.process_time()
            kept = coarse_ends(sketched, query_runs, runs, settings, max(ends))
            lines_s = time.process_time() - started
            cells = []
            for count in ends:
                answer = restricted_answer(full_scores, kept[:, :count], runs, args.neighbourhood)
                recall = recall_at_n(answer[:, None], positives, (1,)).recall[1]
                cells.append(f"E {count}: {np.mean(answer == full_best):.3f} / {recall - full_recall:+.4f}")
            print(f"  sketch {dim:>5} ({sketch_s / single_s:.2f}x + {distance_s / single_s:.2f}x + {lines_s / single_s:.2f}x) | "
                  + " | ".join(cells),
                  flush=True)


if __name__ == "__main__":
    run_tool(main)
