#!/usr/bin/env python3
"""Approximate faiss indexes against exact search on one synthetic database with a known answer.

    python tools/bench_search.py                        # 1,000,000 × 256, 2,000 queries: 8-10 min on 2 cores
    python tools/bench_search.py --rows 100000 --index "IVF1024,Flat|nprobe=8" --index HNSW32

The database is written as a float16 .npy file and opened as a memory map, as `vidvpr eval` reads
the descriptor cache, and every index is built from it by vidvpr's own `build_index` (trained on
a sample, filled chunk by chunk). Rows are unit vectors around one centre per 1,000 rows (a place
seen in many frames), each at its own distance from it; every query is a noisy copy of one known
row, so recall@1 is measured against that row for exact search too (exact search misses where
another row lies closer than the noise).

D defaults to 256: VPR descriptors are PCA-whitened to 256-4096 dimensions before large-scale
search, and at 1M rows our raw 7168-D descriptors alone would take 28 GB (float32).

Prints, per index, recall@1, its share of exact search's, queries per second and how many times
exact search's, the memory the built index holds (serialised size plus IVF-PQ's tables, and the
growth of resident memory over the build) beside vidvpr's estimate, and build time; then which indexes meet the target: at least 95% of
exact recall@1 at 20× exact search's queries per second in under 4 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import math
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.evaluate.index_memory import built_bytes, index_bytes, ivf_lists
from vidvpr.evaluate.search import (
    build_index,
    empty_index,
    search,
    set_search_parameters,
    split_factory,
)

ROWS_PER_PLACE = 1000
SPREAD = 1.5          # rows lie up to this far (× a unit centre) from their place's centre ...
TIGHTEST = 0.1        # ... and at least this share of it
QUERY_NOISE = 1.0     # a query's distance from its row
CHUNK_ROWS = 1 << 16
K = 20                # neighbours searched per query, as `vidvpr eval` does for recall@20
TARGET_RECALL_SHARE, TARGET_SPEEDUP, TARGET_BYTES = 0.95, 20.0, 4e9


@dataclass
class Entry:
    """One index's line of the table."""

    index: str
    build_s: float
    bytes: int
    resident_bytes: int | None
    estimate_bytes: int
    recall_at_1: float
    qps: float
    recall_ratio: float = 1.0
    qps_ratio: float = 1.0
    meets_target: bool = False


def default_indexes(rows: int, dim: int) -> list[str]:
    """IVF (flat, SQ8, PQ, OPQ+PQ) with faiss's 4·√N lists and PQ codes of 4 dimensions, HNSW32; a few
    search settings of each (an index is built once per structure and searched with each)."""
    lists, codes = ivf_lists(rows), max(1, dim // 4)
    return [f"IVF{lists},Flat|nprobe=8", f"IVF{lists},Flat|nprobe=16", f"IVF{lists},SQ8|nprobe=8",
            f"IVF{lists},SQ8|nprobe=16", f"IVF{lists},PQ{codes}|nprobe=16", f"OPQ{codes},IVF{lists},PQ{codes}|nprobe=16",
            "HNSW32|efSearch=64", "HNSW32|efSearch=256"]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_database(path: Path, rows: int, dim: int, seed: int) -> np.ndarray:
    """The synthetic database (module docstring) written chunk by chunk to a float16 .npy; opened read-only."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((max(1, rows // ROWS_PER_PLACE), dim), dtype=np.float32))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, dim))
    for start in range(0, rows, CHUNK_ROWS):
        count = min(CHUNK_ROWS, rows - start)
        spread = SPREAD * rng.uniform(TIGHTEST, 1.0, (count, 1)).astype(np.float32) / math.sqrt(dim)
        noise = rng.standard_normal((count, dim), dtype=np.float32) * spread
        out[start:start + count] = _unit(centres[rng.integers(0, len(centres), count)] + noise)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def noisy_queries(database: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries, the row each was made from): unit vectors at about QUERY_NOISE from distinct rows."""
    rng = np.random.default_rng(seed + 1)
    truth = np.sort(rng.choice(len(database), size=min(count, len(database)), replace=False))
    rows = np.asarray(database[truth], dtype=np.float32)
    noise = rng.standard_normal(rows.shape, dtype=np.float32) * (QUERY_NOISE / math.sqrt(database.shape[1]))
    return _unit(rows + noise).astype(np.float32), truth


def resident_bytes() -> int | None:
    """Anonymous resident memory of this process (RssAnon: the memory-mapped database's pages left
    out) after freed heap is returned to the system; None where /proc or glibc is missing."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return None


def measure(database: np.ndarray, queries: np.ndarray, truth: np.ndarray, factories: Sequence[str | None],
            progress: Callable[[str], None]) -> list[Entry]:
    """Each of `factories` built from the memory-mapped `database` by vidvpr (once per structure) and
    searched with every query once with its parameters, timed."""
    rows, dim = database.shape
    structures = list(dict.fromkeys(split_factory(f)[0] for f in factories))
    entries = []
    for structure in structures:
        progress(f"{structure or 'Flat (exact)'}: building")
        before, started = resident_bytes(), time.perf_counter()
        index = build_index(database, structure)
        build_s, held, after = time.perf_counter() - started, built_bytes(index), resident_bytes()
        resident = after - before if before is not None and after is not None else None
        for factory in (f for f in factories if split_factory(f)[0] == structure):
            set_search_parameters(index, split_factory(factory)[1], factory)
            search(index, queries[:8], K)  # warm-up: first touch of the lists, the thread pool
            started = time.perf_counter()
            _, found = search(index, queries, K)
            entries.append(Entry(index=factory or "Flat (exact)", build_s=round(build_s, 1), bytes=held,
                                 resident_bytes=resident,
                                 estimate_bytes=index_bytes(structure, rows, dim),
                                 recall_at_1=round(float(np.mean(found[:, 0] == truth)), 4),
                                 qps=round(len(queries) / (time.perf_counter() - started), 1)))
            progress(f"  {entries[-1].index}: recall@1 {entries[-1].recall_at_1:.4f}, "
                     f"{entries[-1].qps:.1f} queries/s (built in {build_s:.1f} s, {held / 1e6:.1f} MB)")
        del index
    return entries


def compare(entries: list[Entry]) -> None:
    """Ratios to the first entry (exact search) and the target verdict, in place."""
    exact = entries[0]
    for entry in entries:
        entry.recall_ratio = round(entry.recall_at_1 / exact.recall_at_1, 4) if exact.recall_at_1 else 0.0
        entry.qps_ratio = round(entry.qps / exact.qps, 1)
        entry.meets_target = (entry is not exact and entry.recall_ratio >= TARGET_RECALL_SHARE
                              and entry.qps_ratio >= TARGET_SPEEDUP
                              and max(entry.bytes, entry.resident_bytes or 0) < TARGET_BYTES)


def table(entries: Sequence[Entry]) -> list[str]:
    lines = [(f"{'index':34} {'build s':>8} {'index MB':>9} {'RSS MB':>8} {'est. MB':>8} {'recall@1':>9} "
              f"{'× exact':>8} {'QPS':>9} {'× exact':>8}  target")]
    for e in entries:
        resident = f"{e.resident_bytes / 1e6:8.1f}" if e.resident_bytes is not None else f"{'-':>8}"
        lines.append(f"{e.index:34} {e.build_s:8.1f} {e.bytes / 1e6:9.1f} {resident} {e.estimate_bytes / 1e6:8.1f} "
                     f"{e.recall_at_1:9.4f} {e.recall_ratio:8.3f} {e.qps:9.1f} {e.qps_ratio:8.1f}  "
                     f"{'met' if e.meets_target else '-'}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="database rows [default: 1,000,000]")
    parser.add_argument("--dim", type=int, default=256, help="descriptor dimension [default: 256]")
    parser.add_argument("--queries", type=int, default=2000, help="queries, each a noisy copy of one row")
    parser.add_argument("--index", action="append", default=None, metavar="FACTORY",
                        help="an index to compare (repeatable) [default: IVF, SQ8, PQ, OPQ+PQ, HNSW]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.dim < 4 or args.queries < 1:
        parser.error("--rows must be at least 1000, --dim at least 4, --queries at least 1")

    def progress(text: str) -> None:
        if not args.quiet:
            print(f"bench_search: {text}", file=sys.stderr, flush=True)

    factories = args.index or default_indexes(args.rows, args.dim)
    for factory in factories:  # a bad string is one line now, not a traceback after the database is written
        try:
            empty_index(factory, args.rows, args.dim)
        except BadInput as exc:
            parser.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="vidvpr-bench-search-") as work:
        progress(f"writing {args.rows:,} × {args.dim} float16 rows")
        database = write_database(Path(work) / "database.npy", args.rows, args.dim, args.seed)
        queries, truth = noisy_queries(database, args.queries, args.seed)
        entries = measure(database, queries, truth, [None, *factories], progress)
        del database
    compare(entries)
    met = [e.index for e in entries if e.meets_target]
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    if args.json:
        print(json.dumps({"rows": args.rows, "dim": args.dim, "queries": len(queries), "k": K,
                          "threads": faiss.omp_get_max_threads(), "peak_rss_bytes": int(peak_gb * 1e9),
                          "indexes": [asdict(e) for e in entries], "target_met_by": met}, indent=2))
        return 0
    print(f"{args.rows:,} × {args.dim} database (float16 memory map), {len(queries):,} queries with a known row, "
          f"top {K}, {faiss.omp_get_max_threads()} threads")
    for line in table(entries):
        print(line)
    print(f"target (≥ {TARGET_RECALL_SHARE:.0%} of exact recall@1 at ≥ {TARGET_SPEEDUP:g}× its QPS in < "
          f"{TARGET_BYTES / 1e9:g} GB): {'met by ' + ', '.join(met) if met else 'not met'}; "
          f"peak RSS {peak_gb:.1f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
