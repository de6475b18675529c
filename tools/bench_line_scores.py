#!/usr/bin/env python3
"""The sequence search's line sums made tile by tile against the whole block at once, in one run:
CPU seconds of each (`time.process_time`, medians of `--repeats`, the two alternating) on a random
block of distances, and that the results are identical bit for bit.

The block is what `full_search` scores at a time: `--targets` consecutive queries of a run (and the
L - 1 frames before the first) against `--columns` database frames in `--runs` runs, every line
shape of `--velocity` at each length.

    OMP_NUM_THREADS=1 python tools/bench_line_scores.py
    OMP_NUM_THREADS=1 python tools/bench_line_scores.py --targets 2048 --columns 100000 --lengths 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from vidvpr.cli.evaluate import parse_seq_lengths, parse_seq_velocity
from vidvpr.core.errors import BadInput
from vidvpr.evaluate.sequence import SequenceSettings, _line_scores, _line_scores_tiled, check_settings, line_shapes


def whole_number(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `low` (the sequence benchmarks' sizes and counts)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


positive, non_negative = whole_number(1), whole_number(0)


def run_tool(main: Callable[[], None]) -> None:
    """Run a sequence benchmark's `main`; Ctrl-C is one line and exit 130, as for vidvpr itself."""
    try:
        main()
    except KeyboardInterrupt:
        print(f"{Path(sys.argv[0]).name}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=positive, default=512)
    parser.add_argument("--columns", type=positive, default=20000)
    parser.add_argument("--runs", type=positive, default=10)
    parser.add_argument("--lengths", default="5,10,20")
    parser.add_argument("--velocity", default="0.8..1.25")
    parser.add_argument("--repeats", type=positive, default=3)
    args = parser.parse_args()
    try:
        lengths, velocity = parse_seq_lengths(args.lengths), parse_seq_velocity(args.velocity)
        for length in lengths:
            check_settings(SequenceSettings(length, velocity))
    except (click.BadParameter, BadInput) as exc:  # read as vidvpr eval reads --seq-len and --seq-velocity
        parser.error(f"--lengths/--velocity: {exc}")
    if args.runs > args.columns:
        parser.error(f"--runs {args.runs}: more runs than --columns {args.columns}")
    starts = np.linspace(0, args.columns, args.runs + 1).astype(np.int64)
    print(f"{args.targets} targets x {args.columns} database frames in {args.runs} runs, velocity {args.velocity}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'L':>3} {'shapes':>6} | {'whole s':>8} {'tiled s':>8} {'whole/tiled':>11} | same")
    rng = np.random.default_rng(0)
    for length in lengths:
        lines = line_shapes(SequenceSettings(length, velocity))
        rows = rng.random((args.targets + length - 1, args.columns), dtype=np.float32)
        first = length - 1
        times: dict[str, list[float]] = {"whole": [], "tiled": []}
        results = {}
        for _ in range(args.repeats):
            for name, scorer in (("whole", _line_scores), ("tiled", _line_scores_tiled)):
                started = time.process_time()
                results[name] = scorer(rows, first, args.targets, length, starts, lines)
                times[name].append(time.process_time() - started)
        same = all(np.array_equal(a, b) for a, b in zip(results["whole"], results["tiled"]))
        whole, tiled = statistics.median(times["whole"]), statistics.median(times["tiled"])
        print(f"{length:>3} {len(lines.velocities):>6} | {whole:8.2f} {tiled:8.2f} {whole / tiled:11.2f} | "
              f"{'yes' if same else 'NO'}", flush=True)


if __name__ == "__main__":
    run_tool(main)
