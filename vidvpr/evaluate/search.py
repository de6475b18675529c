"""Nearest-neighbour search over descriptors with faiss: exact L2 by default, any factory string on request.

The VPR benchmarks search exactly (``IndexFlatL2``), so that is the default; approximate indexes
("IVF256,PQ32", "HNSW32") are for large databases. Results are always ordered by (distance,
database index), so equal descriptors rank the same way on every run and machine.
"""

from __future__ import annotations

import logging
import re

import faiss
import numpy as np
from numpy.typing import ArrayLike

from vidvpr.core.errors import BadInput

LOG = logging.getLogger(__name__)

ADD_CHUNK_ROWS = 1 << 16  # database rows added to the index at once (bounded memory for encoded indexes)
DEFAULT_BATCH = 4096  # queries searched at once


def _descriptors(name: str, values: ArrayLike) -> np.ndarray:
    """A C-contiguous float32 (rows, D) array with finite values, else BadInput."""
    array = np.ascontiguousarray(values, dtype=np.float32)
    if array.ndim != 2:
        raise BadInput(f"{name} descriptors must be a 2-D (rows, dim) array, got shape {array.shape}")
    if array.shape[1] == 0:
        raise BadInput(f"{name} descriptors have dimension 0")
    if not np.isfinite(array).all():
        raise BadInput(f"{name} descriptors contain NaN or infinite values")
    return array


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BadInput(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _faiss_complaint(error: Exception) -> str:
    """faiss's message without its C++ location and assertion text, on one line."""
    message = " ".join(str(error).split())
    message = re.sub(r"^Error in .*? at \S+:\d+: ", "", message)
    message = re.sub(r"^Error: '.*?' failed: ", "", message)
    return message


def build_index(
    database: ArrayLike,
    factory: str | None = None,
    train_sample: int | None = None,
    seed: int = 0,
) -> faiss.Index:
    """A faiss L2 index holding `database` (N, D): ``IndexFlatL2`` by default, else ``index_factory(factory)``.

    Indexes that need training are trained on `train_sample` rows drawn without replacement with
    `seed` (all rows when None or when the sample is not smaller than N), then filled in chunks.
    """
    vectors = _descriptors("database", database)
    rows, dim = vectors.shape
    if rows == 0:
        raise BadInput("database is empty: nothing to search")
    if factory is None:
        index: faiss.Index = faiss.IndexFlatL2(dim)
    else:
        try:
            index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
        except RuntimeError as error:
            raise BadInput(f"bad faiss index factory string {factory!r}: {_faiss_complaint(error)}") from None
    if not index.is_trained:
        training = vectors
        if train_sample is not None and _positive_int("train_sample", train_sample) < rows:
            chosen = np.random.default_rng(seed).choice(rows, size=train_sample, replace=False)
            training = vectors[np.sort(chosen)]
        LOG.info("training faiss index %r on %d of %d vectors", factory, len(training), rows)
        try:
            index.train(training)
        except RuntimeError as error:
            raise BadInput(f"cannot train faiss index {factory!r} on {len(training)} vectors: "
                           f"{_faiss_complaint(error)}") from None
    for start in range(0, rows, ADD_CHUNK_ROWS):
        index.add(vectors[start:start + ADD_CHUNK_ROWS])
    return index


def search(
    index: faiss.Index,
    queries: ArrayLike,
    k: int,
    batch: int = DEFAULT_BATCH,
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` nearest database rows of each query: (distances (M, k) float32, indices (M, k) int64).

    `k` is clipped to the database size. Distances are faiss's (squared L2 for L2 indexes). Each
    row is re-sorted by (distance, index) because faiss may return equal distances in any order.
    Rows an approximate index could not fill hold index -1 at the end (faiss's convention).
    """
    vectors = _descriptors("query", queries)
    if vectors.shape[1] != index.d:
        raise BadInput(f"query descriptors have dimension {vectors.shape[1]} but the index has {index.d}")
    if index.ntotal == 0:
        raise BadInput("the index is empty: nothing to search")
    k = min(_positive_int("k", k), int(index.ntotal))
    batch = _positive_int("batch", batch)
    distances = np.empty((len(vectors), k), dtype=np.float32)
    indices = np.empty((len(vectors), k), dtype=np.int64)
    for start in range(0, len(vectors), batch):
        found_d, found_i = index.search(vectors[start:start + batch], k)
        distances[start:start + batch], indices[start:start + batch] = _sort_rows(found_d, found_i)
    return distances, indices


def _sort_rows(distances: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row ordered by distance, then by database index; unfilled (-1) slots stay last."""
    unfilled = indices < 0
    order = np.lexsort((indices, distances, unfilled), axis=-1)
    return np.take_along_axis(distances, order, axis=-1), np.take_along_axis(indices, order, axis=-1)
