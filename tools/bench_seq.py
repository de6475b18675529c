#!/usr/bin/env python3
"""The restricted sequence search against the full one, and both against the single-frame search,
in one run: recall@1 of each and CPU time as a share of the single-frame search's.

Peers, all on the same descriptors: the single-frame search (faiss IndexFlatL2 built on the
database and searched for each query's top 20, as `vidvpr eval` does), the full sequence search
(every line, in blocks: `vidvpr.evaluate.sequence.full_search`) and the restricted one (a coarse
search on sketched descriptors proposes ends, lines there are scored exactly:
`vidvpr.evaluate.sequence_restricted.restricted_search`; it needs nothing from the single-frame
search, so its time is all its own). Times are CPU seconds of this process (`time.process_time`),
steadier than wall time on a shared machine; the ratios are what to read.

Three datasets:

* ``--nordland DIR``: ../shared/data/nordland-half1 (winter queries against the summer database,
  the same file name is the same place; a query's positives are the database frames within
  ``--tolerance`` frames of it). Descriptors of the offline model (NetVLAD initialised by k-means
  on 400 summer frames evenly along the route), cached in ``--work`` with what made them.
* ``--eval DIR``: an eval folder (`vidvpr eval --out`, e.g. the demo's): the descriptors of one
  ``--cell`` read from its descriptor cache, the manifest's positives at its radius.
* ``--synthetic SIZES``: how the costs grow with the database: databases of each size (frames, in
  10 runs) of smooth random descriptors (``--dim`` wide, unit length; each frame an AR(1) step from
  the last in 64 directions) and ``--queries`` query frames: a stretch of one run with noise in
  those directions, so that single frames often fail (more than 3/4 of a run: a stretch of every
  run, a query run each, up to as many queries as database frames, the issue's case); positives
  within 1 frame of the truth.

    python tools/bench_seq.py --nordland ../shared/data/nordland-half1 --work /tmp/bench-seq
    python tools/bench_seq.py --eval /tmp/demo/eval --cell reference
    python tools/bench_seq.py --synthetic 20000,50000,100000 --lengths 20
    python tools/bench_seq.py --synthetic 20000 --queries 15000 --lengths 20
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zipfile
from pathlib import Path

import click
import numpy as np

from bench_line_scores import non_negative, positive, run_tool
from vidvpr.cli.evaluate import parse_seq_lengths, parse_seq_velocity
from vidvpr.core.atomic import atomic_output
from vidvpr.core.errors import BadInput
from vidvpr.evaluate.recall import recall_at_n
from vidvpr.evaluate.sequence import SequenceSettings, check_settings, full_search
from vidvpr.evaluate.sequence_coarse import SKETCH_DIM
from vidvpr.evaluate.sequence_restricted import (
    ANCHOR_STEP,
    DEFAULT_ENDS,
    DEFAULT_NEIGHBOURHOOD,
    restricted_search,
)

INIT_IMAGES = 400
SYNTHETIC_RUNS = 10
SYNTHETIC_LATENT = 64  # descriptors vary in this many directions (real ones, too, have few that matter)
SYNTHETIC_CORRELATION = 0.95  # of a frame's latent descriptor with the one before it
SYNTHETIC_NOISE = 1.8  # query noise, relative to a latent descriptor's length


def synthetic(size: int, queries: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list, list, list, str]:
    """(queries, database, query runs, database runs, positives, name) of smooth random descriptors:
    `size` database frames in runs, each an AR(1) walk in `SYNTHETIC_LATENT` directions projected to
    `dim` numbers; `queries` query frames retracing stretches of the runs with noise in those
    directions: one stretch of the first run when it fits in 3/4 of a run, else an equal stretch of
    every run (a query run each), from a quarter of the way along."""
    rng = np.random.default_rng(seed)
    latent = np.empty((size, SYNTHETIC_LATENT), dtype=np.float32)
    run_length = size // SYNTHETIC_RUNS
    starts = [r * run_length for r in range(SYNTHETIC_RUNS)] + [size]
    fresh = np.sqrt(1 - SYNTHETIC_CORRELATION ** 2)
    for start, end in zip(starts[:-1], starts[1:]):
        steps = rng.standard_normal((end - start, SYNTHETIC_LATENT)).astype(np.float32)
        state = steps[0]
        for i in range(end - start):
            state = SYNTHETIC_CORRELATION * state + fresh * steps[i]
            latent[start + i] = state
    projection = rng.standard_normal((SYNTHETIC_LATENT, dim)).astype(np.float32) / np.sqrt(SYNTHETIC_LATENT)
    stretches = 1 if queries <= 3 * run_length // 4 else SYNTHETIC_RUNS
    each = -(-queries // stretches)
    if each > 3 * run_length // 4:
        raise SystemExit(f"--queries {queries}: at most {3 * run_length // 4 * SYNTHETIC_RUNS} for {size} frames")
    truth = np.concatenate([starts[r] + run_length // 4 + np.arange(each) for r in range(stretches)])[:queries]
    noise = rng.standard_normal((queries, SYNTHETIC_LATENT)).astype(np.float32)
    noisy = latent[truth] + SYNTHETIC_NOISE * noise
    database, query_vectors = latent @ projection, noisy @ projection
    for vectors in (database, query_vectors):
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    positives = [np.arange(t - 1, t + 2) for t in truth]
    query_runs = [np.arange(a, min(a + each, queries)) for a in range(0, queries, each)]
    return (query_vectors, database, query_runs, [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:])],
            positives, f"synthetic, {size} database frames in {SYNTHETIC_RUNS} runs, {queries} queries in "
            f"{len(query_runs)} runs")


def _cached_descriptors(path: Path, made_by: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(winter, summer) descriptors cached at `path` by the same inputs, or None when absent, made
    otherwise or unreadable (then made again)."""
    try:
        with np.load(path) as arrays:
            if json.loads(str(arrays["made_by"])) == made_by:
                return arrays["winter"], arrays["summer"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        pass
    return None


def nordland(folder: Path, work: Path, tolerance: int, first: int | None) -> tuple[np.ndarray, np.ndarray, list, list,
                                                                                   list, str]:
    """(queries, database, query runs, database runs, positives, name): winter against summer (the
    `first` frames of each, when given)."""
    import cv2
    import torch

    from vidvpr.descriptors.frames import normalise_images
    from vidvpr.models import initialise_netvlad, load_model

    names = sorted(p.name for p in (folder / "summer").glob("*.png"))
    cached = work / "nordland-descriptors.npz"
    made_by = {"names": len(names), "init": INIT_IMAGES}
    stored = _cached_descriptors(cached, made_by)
    if stored is not None:
        queries, database = stored
    else:
        work.mkdir(parents=True, exist_ok=True)
        images = {season: [cv2.cvtColor(cv2.imread(str(folder / season / name), cv2.IMREAD_GRAYSCALE),
                                        cv2.COLOR_GRAY2RGB) for name in names] for season in ("summer", "winter")}
        model = load_model("netvlad-efficientnet-lite0")
        chosen = np.linspace(0, len(names) - 1, INIT_IMAGES).astype(int)
        initialise_netvlad(model, (normalise_images([images["summer"][i] for i in chosen[s:s + 64]])
                                   for s in range(0, len(chosen), 64)), work / "nordland-init.pt",
                           images_source="nordland summer, 400 evenly")
        model.eval()
        described = {}
        with torch.inference_mode():
            for season, frames in images.items():
                described[season] = np.concatenate([model(normalise_images(frames[s:s + 64])).numpy()
                                                    for s in range(0, len(frames), 64)])
        queries, database = described["winter"], described["summer"]
        with atomic_output(cached) as tmp:  # an interrupted run leaves no cache that looks finished
            np.savez(tmp, winter=queries, summer=database, made_by=json.dumps(made_by))
    count = min(first or len(names), len(names))
    queries, database = queries[:count], database[:count]
    index = np.arange(count)
    positives = [index[max(0, i - tolerance):i + tolerance + 1] for i in index]
    return (queries.astype(np.float32), database.astype(np.float16), [index], [index], positives,
            f"Nordland winter vs summer, first {count} frames, positives within {tolerance} frames")


def eval_folder(folder: Path, cell: str) -> tuple[np.ndarray, np.ndarray, list, list, list, str]:
    """The descriptors of `cell` from an eval folder's descriptor cache, and its manifest's runs and positives."""
    from vidvpr.dataset.manifest import load_manifest
    from vidvpr.descriptors.cache import DescriptorCache
    from vidvpr.evaluate.results import EvalResults
    from vidvpr.evaluate.sequence_eval import runs_of

    results = EvalResults.load(folder / "results.json")
    manifest = load_manifest(Path(results.manifest["path"]))
    cache = DescriptorCache(Path(results.descriptors["cache"]))
    model = results.models[0]
    fingerprint = model.get("cache_key", model["fingerprint"])  # the descriptors of the backend that ran
    row = next((r for r in results.rows if r.cell == cell), None)
    if row is None:
        raise SystemExit(f"{folder}: no cell {cell!r} (it has {', '.join(sorted({r.cell for r in results.rows}))})")

    def hash_of(recording: str, view: str) -> str:
        if cell == "reference":
            return manifest.meta.view_input(recording, view).video.hash
        from vidvpr.evaluate.cells import encoded_cells

        (found,) = encoded_cells(manifest, Path(results.enc_dir), [cell])
        return found.videos[(recording, view)][1].hash

    def descriptors(rows: list) -> np.ndarray:
        out = np.empty((len(rows), results.models[0]["descriptor_dim"]), np.float32)
        for key in dict.fromkeys((r.recording, r.view) for r in rows):
            members = [i for i, r in enumerate(rows) if (r.recording, r.view) == key]
            frames = sorted({rows[i].frame for i in members})
            stored = cache.open(fingerprint, hash_of(*key), frames, None)
            if stored is None:
                raise SystemExit(f"{folder}: descriptors of {key} in {cell} are not in the cache")
            out[members] = stored[[frames.index(rows[i].frame) for i in members]]
        return out

    return (descriptors(manifest.queries), descriptors(manifest.database).astype(np.float16),
            runs_of(manifest.queries), runs_of(manifest.database), manifest.positives,
            f"{manifest.meta.name} ({cell}), {len(manifest.queries)} queries, {len(manifest.database)} database frames")


def single_frame(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    import faiss

    started = time.process_time()
    index = faiss.IndexFlatL2(database.shape[1])
    index.add(database.astype(np.float32))
    _, found = index.search(queries, k)
    return found, time.process_time() - started


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """--nordland/--work/--tolerance and --eval/--cell: the real datasets the sequence benchmarks read."""
    parser.add_argument("--nordland", type=Path)
    parser.add_argument("--work", type=Path, default=Path("bench-seq"))
    parser.add_argument("--tolerance", type=non_negative, default=0, help="Nordland: positives within this many frames")
    parser.add_argument("--eval", type=Path)
    parser.add_argument("--cell", default="reference")


def load_dataset(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 first: int | None = None) -> tuple[np.ndarray, np.ndarray, list, list, list, str]:
    """The dataset `add_dataset_options` named (Nordland, or an eval folder's cell); a folder without
    Nordland's frames or a bad eval folder is the parser's one-line error."""
    if args.nordland and not sorted((args.nordland / "summer").glob("*.png")):
        parser.error(f"--nordland {args.nordland}: no summer/*.png (the folder ../shared/data/nordland-half1 holds them)")
    try:
        return nordland(args.nordland, args.work, args.tolerance, first) if args.nordland else eval_folder(args.eval,
                                                                                                           args.cell)
    except BadInput as exc:
        parser.error(str(exc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_options(parser)
    parser.add_argument("--first", type=positive, default=None, help="Nordland: only the first N frames of each season")
    parser.add_argument("--synthetic", default=None, help="database sizes, e.g. 20000,50000,100000")
    parser.add_argument("--queries", type=positive, default=400, help="synthetic: query frames")
    parser.add_argument("--dim", type=positive, default=7168, help="synthetic: descriptor width (NetVLAD's 7168)")
    parser.add_argument("--lengths", default="5,10,20")
    parser.add_argument("--velocity", default="0.8..1.25")
    parser.add_argument("--normalise", choices=("no", "yes", "both"), default="both")
    parser.add_argument("--ends", type=positive, default=DEFAULT_ENDS)
    parser.add_argument("--neighbourhood", type=non_negative, default=DEFAULT_NEIGHBOURHOOD)
    parser.add_argument("--step", type=positive, default=ANCHOR_STEP, help="restricted: a coarse search every STEP queries")
    parser.add_argument("--sketch-dim", type=positive, default=SKETCH_DIM)
    args = parser.parse_args()
    if sum(x is not None for x in (args.nordland, args.eval, args.synthetic)) != 1:
        parser.error("give one of --nordland DIR, --eval DIR, --synthetic SIZES")
    try:  # read as vidvpr eval reads --seq-len and --seq-velocity
        args.lengths, args.velocity = parse_seq_lengths(args.lengths), parse_seq_velocity(args.velocity)
        for length in args.lengths:
            check_settings(SequenceSettings(length, args.velocity))
    except (click.BadParameter, BadInput) as exc:
        parser.error(f"--lengths/--velocity: {exc}")
    if args.synthetic:
        try:
            sizes = [positive(part) for part in args.synthetic.split(",")]
        except argparse.ArgumentTypeError as exc:
            parser.error(f"--synthetic {args.synthetic}: {exc}")
        if min(sizes) < 4 * SYNTHETIC_RUNS:
            parser.error(f"--synthetic: at least {4 * SYNTHETIC_RUNS} frames ({SYNTHETIC_RUNS} runs of 4)")
        for size in sizes:
            compare(args, *synthetic(size, args.queries, args.dim))
        return
    dataset = load_dataset(parser, args, args.first)
    try:
        compare(args, *dataset)
    except BadInput as exc:
        parser.error(str(exc))


def compare(args: argparse.Namespace, queries: np.ndarray, database: np.ndarray, query_runs: list,
            database_runs: list, positives: list, name: str) -> None:
    """Print the single-frame search's recall@1 and CPU, then the full and restricted sequence searches'
    against it, per length and normalisation."""
    velocity = args.velocity
    candidates, single_s = single_frame(queries, database, 20)
    single_recall = recall_at_n(candidates, positives, (1,)).recall[1]
    print(f"{name}; descriptors {queries.shape[1]}-D; velocity {velocity[0]:g}..{velocity[1]:g}; restricted: "
          f"{args.ends} ends, neighbourhood {args.neighbourhood}, a coarse search every {args.step} queries on "
          f"{args.sketch_dim}-D sketches; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"single-frame search (faiss IndexFlatL2, top 20): recall@1 {single_recall:.4f}, {single_s:.2f} s CPU")
    print(f"{'L':>3} {'normalise':>9} | {'full R@1':>8} {'CPU s':>7} {'x single':>8} | {'restr. R@1':>10} {'CPU s':>7} "
          f"{'x single':>8} | {'same top-1':>10} {'R@1 diff':>8}")
    normalise = {"no": [False], "yes": [True], "both": [False, True]}[args.normalise]
    for length in args.lengths:
        for norm in normalise:
            settings = SequenceSettings(length, velocity, normalise=norm)
            started = time.process_time()
            full = full_search(queries, database, query_runs, database_runs, settings, 20)
            full_s = time.process_time() - started
            started = time.process_time()
            restricted = restricted_search(queries, database, query_runs, database_runs, settings, 20, args.ends,
                                           args.neighbourhood, args.step, args.sketch_dim)
            restricted_s = time.process_time() - started
            full_recall = recall_at_n(full.indices, positives, (1,)).recall[1]
            restricted_recall = recall_at_n(restricted.indices, positives, (1,)).recall[1]
            same = np.mean(full.indices[:, 0] == restricted.indices[:, 0])
            print(f"{length:>3} {'yes' if norm else 'no':>9} | "
                  f"{full_recall:8.4f} {full_s:7.2f} {full_s / single_s:8.2f} | "
                  f"{restricted_recall:10.4f} {restricted_s:7.2f} {restricted_s / single_s:8.2f} | {same:10.3f} "
                  f"{restricted_recall - full_recall:+8.4f}", flush=True)
    print("targets: restricted recall@1 within 0.005 of the full search's, CPU under 0.20 x the single-frame search "
          "at L = 20")


if __name__ == "__main__":
    run_tool(main)
