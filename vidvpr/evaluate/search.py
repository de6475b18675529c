"""Nearest-neighbour search over descriptors with faiss: exact L2 by default, any factory string on request.

The VPR benchmarks search exactly (``IndexFlatL2``), so that is the default; approximate indexes
("IVF256,PQ32", "HNSW32") are for large databases. Results are always ordered by (distance,
database index), so equal descriptors rank the same way on every run and machine.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator, Sequence

import faiss
import numpy as np
from numpy.typing import ArrayLike

from vidvpr.core.errors import BadInput
from vidvpr.evaluate.index_memory import check_index_fits, faiss_complaint, new_index

LOG = logging.getLogger(__name__)

ADD_CHUNK_ROWS = 1 << 16  # database rows added to the index at once (bounded memory for encoded indexes)
DEFAULT_BATCH = 4096  # queries searched at once
DEFAULT_TRAIN_ROWS = 1 << 18  # training sample cap: faiss's k-means itself uses at most 256 points per list
DEFAULT_NPROBE = 32  # IVF lists probed per query unless FACTORY|nprobe=N says otherwise
DEFAULT_EF_SEARCH = 64  # HNSW's search breadth unless FACTORY|efSearch=N says otherwise
MIN_POINTS_PER_LIST = 39  # faiss's k-means warns below this many training vectors per centroid

DatabaseLike = ArrayLike | Sequence[np.ndarray]


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


def _parts(database: DatabaseLike) -> list[np.ndarray]:
    """The database as 2-D arrays of one width, left as they are (a memory map stays on disk)."""
    if isinstance(database, (list, tuple)) and database and all(isinstance(p, np.ndarray) for p in database):
        parts = list(database)
    elif isinstance(database, np.ndarray):
        parts = [database]
    else:
        parts = [_descriptors("database", database)]
    for part in parts:
        if part.ndim != 2:
            raise BadInput(f"database descriptors must be a 2-D (rows, dim) array, got shape {part.shape}")
        if part.shape[1] == 0:
            raise BadInput("database descriptors have dimension 0")
    widths = sorted({part.shape[1] for part in parts})
    if len(widths) > 1:
        raise BadInput(f"database parts differ in dimension: {', '.join(map(str, widths))}")
    return parts


def database_chunks(database: DatabaseLike, rows: int = ADD_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """The database in order in chunks of at most `rows` rows (one chunk in memory at a time); small
    parts are joined, so a database of many short pieces is still added `rows` at a time."""
    held: list[np.ndarray] = []
    count = 0
    for part in _parts(database):
        for start in range(0, len(part), rows):
            piece = part[start:start + rows]
            if held and count + len(piece) > rows:
                yield _joined(held)
                held, count = [], 0
            held.append(piece)
            count += len(piece)
    if held:
        yield _joined(held)


def _joined(pieces: list[np.ndarray]) -> np.ndarray:
    return pieces[0] if len(pieces) == 1 else np.concatenate([np.asarray(p, dtype=np.float32) for p in pieces])


def sample_rows(database: DatabaseLike, count: int, seed: int) -> np.ndarray:
    """`count` rows drawn without replacement with `seed`, in database order, as float32 (all rows when fewer)."""
    parts = _parts(database)
    total = sum(len(p) for p in parts)
    if count >= total:
        return _descriptors("training", np.concatenate([np.asarray(p, dtype=np.float32) for p in parts]))
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
    bounds = np.cumsum([0] + [len(p) for p in parts])
    picked = [parts[i][chosen[(chosen >= bounds[i]) & (chosen < bounds[i + 1])] - bounds[i]] for i in range(len(parts))]
    return _descriptors("training", np.concatenate([np.asarray(p, dtype=np.float32) for p in picked]))


def train_index(index: faiss.Index, sample: ArrayLike, factory: str | None = None) -> None:
    """Train `index` on `sample` (rows × D), or BadInput when faiss cannot (too few vectors, ...)."""
    vectors = _descriptors("training", sample)
    _warnings_to_log(index, len(vectors))
    try:
        index.train(vectors)
    except RuntimeError as error:
        raise BadInput(f"cannot train faiss index {factory!r} on {len(vectors)} vectors: "
                       f"{faiss_complaint(error)}") from None


def _warnings_to_log(index: faiss.Index, rows: int) -> None:
    """Stop faiss's k-means printing "WARNING clustering N points to K centroids" to stderr (past
    --quiet, not a vidvpr line): the same advice is logged instead. The centroids do not change."""
    ivf = faiss.try_extract_index_ivf(index)
    parts = [ivf] if ivf is not None else [faiss.downcast_index(index)]
    for part in parts:
        for holder in (part, getattr(faiss.downcast_index(part), "pq", None)):
            params = getattr(holder, "cp", None)
            if params is None:
                continue
            centroids = getattr(holder, "nlist", None) or getattr(holder, "ksub", 0)
            if centroids and rows < MIN_POINTS_PER_LIST * centroids:
                LOG.info("faiss k-means: %d training vectors for %d centroids, fewer than the %d per centroid faiss "
                         "advises", rows, centroids, MIN_POINTS_PER_LIST)
            params.min_points_per_centroid = 1


def add_chunks(index: faiss.Index, chunks: Iterable[ArrayLike]) -> int:
    """Add each chunk (rows × D, any float dtype, e.g. float16 memory maps) in order; the rows added."""
    added = 0
    for chunk in chunks:
        vectors = _descriptors("database", chunk)
        if vectors.shape[1] != index.d:
            raise BadInput(f"database descriptors have dimension {vectors.shape[1]} but the index has {index.d}")
        index.add(vectors)
        added += len(vectors)
    return added


def build_index(
    database: DatabaseLike,
    factory: str | None = None,
    train_sample: int | None = None,
    seed: int = 0,
    available: int | None = None,
) -> faiss.Index:
    """A faiss L2 index holding `database` (N, D): ``IndexFlatL2`` by default, else ``index_factory(factory)``.

    `database` is an array (a float16 memory map is read chunk by chunk, never whole) or a list of
    arrays taken as one database in order. A FACTORY|PARAMS string sets search parameters
    (``IVF1024,PQ64|nprobe=32``); without them IVF probes `DEFAULT_NPROBE` lists and HNSW searches
    with efSearch `DEFAULT_EF_SEARCH`. Indexes that need training are trained on `train_sample`
    rows (default: all up to `DEFAULT_TRAIN_ROWS`) drawn without replacement with `seed`, then
    filled in chunks. Before anything is built (`empty_index`), BadInput for a malformed string,
    bad parameters, or an index that would not fit in `available` bytes (default: the memory
    available now), naming one that would.
    """
    parts = _parts(database)
    rows, dim = sum(len(p) for p in parts), parts[0].shape[1]
    if rows == 0:
        raise BadInput("database is empty: nothing to search")
    index = empty_index(factory, rows, dim, available)
    if not index.is_trained:
        count = min(rows, DEFAULT_TRAIN_ROWS) if train_sample is None else _positive_int("train_sample", train_sample)
        LOG.info("training faiss index %r on %d of %d vectors", factory, min(count, rows), rows)
        train_index(index, sample_rows(parts, count, seed), split_factory(factory)[0])
    add_chunks(index, database_chunks(parts))
    return index


def empty_index(factory: str | None, rows: int, dim: int, available: int | None = None) -> faiss.Index:
    """The index `factory` for `rows` × `dim` descriptors, empty, its search parameters set; BadInput
    (a malformed string, bad parameters, too large for `available` bytes, more centroids than `rows`
    to train them on) before anything is built."""
    structure, parameters = split_factory(factory)
    check_index_fits(structure, rows, dim, available)
    index = new_index(dim, structure)
    needed = training_vectors_needed(index)
    if rows < needed:
        lists = 2 ** int(math.log2(max(rows // MIN_POINTS_PER_LIST, 1)))
        smaller = (f"a smaller index, e.g. IVF{lists},Flat ({MIN_POINTS_PER_LIST} vectors per list, as faiss "
                   "advises), or Flat" if lists > 1 else "Flat (exact search)")
        raise BadInput(f"faiss index {factory!r} needs at least {needed:,} training vectors (its k-means has "
                       f"{needed:,} centroids) but the database has {rows:,}: choose {smaller}")
    set_search_parameters(index, parameters, factory)
    return index


def training_vectors_needed(index: faiss.Index) -> int:
    """The fewest training vectors faiss accepts for `index` (0 when it needs no training): k-means
    refuses fewer points than centroids, i.e. an IVF index's lists and a PQ's 2**nbits codewords."""
    if index.is_trained:
        return 0
    typed = faiss.downcast_index(index)
    if isinstance(typed, faiss.IndexPreTransform):
        return training_vectors_needed(typed.index)
    if isinstance(typed, faiss.IndexRefine):
        return training_vectors_needed(typed.base_index)
    needed = typed.nlist if isinstance(typed, faiss.IndexIVF) else 0
    pq = getattr(typed, "pq", None)
    return max(needed, int(pq.ksub) if pq is not None else 0)


def split_factory(factory: str | None) -> tuple[str | None, str]:
    """'IVF1024,PQ64|nprobe=32' -> ('IVF1024,PQ64', 'nprobe=32'); 'Flat' and None mean exact L2."""
    if factory is None:
        return None, ""
    structure, _, parameters = factory.partition("|")
    structure = structure.strip()
    return (None if structure in ("", "Flat") else structure), parameters.strip()


def set_search_parameters(index: faiss.Index, parameters: str, factory: str | None = None) -> None:
    """The defaults (`DEFAULT_NPROBE`, `DEFAULT_EF_SEARCH`) where the index has them, then `parameters`."""
    space = faiss.ParameterSpace()
    for name, value in (("nprobe", DEFAULT_NPROBE), ("efSearch", DEFAULT_EF_SEARCH)):
        with contextlib.suppress(RuntimeError):
            space.set_index_parameter(index, name, value)
    if parameters:
        try:
            space.set_index_parameters(index, parameters)
        except RuntimeError as error:
            raise BadInput(f"bad faiss search parameters {parameters!r} for {factory!r}: "
                           f"{faiss_complaint(error)}") from None


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
