"""How much memory a faiss index of N × D descriptors needs, and whether that fits here.

The estimate reads faiss's own structures rather than parsing the factory string: the empty
index `index_factory` makes says how many bytes each vector costs (``code_size``), how many
inverted lists, coarse centroids, PQ codebooks, HNSW links and transforms it holds. Per vector:

    Flat             4·D
    IVFk,Flat/SQ/PQ  code_size + 8 (its id), plus k·D·4 (centroids), PQ codebooks (256·D·4)
                     and IVF-PQ's precomputed table k·m·256·4 (when under faiss's 2 GB limit)
    HNSWM            4·D (or the storage's code) + 4·(2M + M/(M−1)) links + 12 (level, offset)
    PCAr / OPQ, RFlat  their matrices / a flat copy (4·D per vector) on top

faiss grows its arrays as vectors are added (std::vector doubling): inverted lists, appended to a
few codes at a time, hold ``LIST_SLACK`` times their codes, and the whole sits up to ``GROWTH``
above the sum (both measured as resident memory by tools/bench_search.py); the check compares that against the memory available now (the
smaller of MemAvailable and a cgroup limit), and refuses with one line naming what would fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import faiss

from vidvpr.core.errors import BadInput

GROWTH = 1.10           # resident / serialised bytes at 1M × 256: Flat 1.02, HNSW32 1.00, IVF4096,PQ64 1.08
LIST_SLACK = 1.30       # resident / serialised inverted lists at 1M × 256: IVF4096,SQ8 1.27
IVF_LIST_BYTES = 48     # two std::vector headers per inverted list
ID_BYTES = 8            # faiss idx_t
LINK_BYTES = 4          # HNSW neighbours are int32


def new_index(dim: int, factory: str | None) -> faiss.Index:
    """An empty L2 index: ``IndexFlatL2`` for None, else ``index_factory(dim, factory)``; BadInput if malformed.

    The factory asks PQ indexes for polysemous training (a permutation of the codes for Hamming
    search, which vidvpr never uses): it is switched off, as it changes no distance and took most
    of the training time (minutes for PQ64, measured with tools/bench_search.py).
    """
    if factory is None:
        return faiss.IndexFlatL2(dim)
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
    except RuntimeError as error:
        raise BadInput(f"bad faiss index factory string {factory!r}: {faiss_complaint(error)}") from None
    _no_polysemous_training(index)
    return index


def _no_polysemous_training(index: faiss.Index) -> None:
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexPreTransform):
        _no_polysemous_training(index.index)
    elif isinstance(index, faiss.IndexRefine):
        _no_polysemous_training(index.base_index)
    elif hasattr(index, "do_polysemous_training"):
        index.do_polysemous_training = False


def faiss_complaint(error: Exception) -> str:
    """faiss's message without its C++ location and assertion text, on one line."""
    import re

    message = " ".join(str(error).split())
    message = re.sub(r"^Error in .*? at \S+:\d+: ", "", message)
    return re.sub(r"^Error: '.*?' failed: ", "", message)


def _transform_bytes(transform: faiss.VectorTransform) -> int:
    t = faiss.downcast_VectorTransform(transform)
    if isinstance(t, faiss.PCAMatrix):  # keeps the full covariance eigenvectors besides the projection
        return 4 * (t.d_in * t.d_in + t.d_in * t.d_out + 2 * t.d_in)
    if isinstance(t, faiss.LinearTransform):
        return 4 * (t.d_in * t.d_out + t.d_out)
    return 0


def _ivf_extra(index: faiss.IndexIVF) -> int:
    """Codebooks and tables besides the lists and the coarse quantizer."""
    extra = 0
    pq = getattr(index, "pq", None)
    if pq is not None:
        extra += 4 * pq.M * pq.ksub * pq.dsub
        if getattr(index, "by_residual", False):
            table = 4 * index.nlist * pq.M * pq.ksub
            if table <= faiss.cvar.precomputed_table_max_bytes:
                extra += table
    return extra


def _structure_bytes(index: faiss.Index, rows: int) -> int:
    """Bytes of `index` (an empty one, as made by `new_index`) once it holds `rows` vectors."""
    return _typed_bytes(faiss.downcast_index(index), rows)  # the caller's `index` keeps the C++ object alive


def _typed_bytes(index: faiss.Index, rows: int) -> int:
    if isinstance(index, faiss.IndexPreTransform):
        chain = sum(_transform_bytes(index.chain.at(i)) for i in range(index.chain.size()))
        return chain + _structure_bytes(index.index, rows)
    if isinstance(index, faiss.IndexRefine):
        return _structure_bytes(index.base_index, rows) + _structure_bytes(index.refine_index, rows)
    if isinstance(index, faiss.IndexIDMap):
        return rows * ID_BYTES + _structure_bytes(index.index, rows)
    if isinstance(index, faiss.IndexHNSW):
        m = index.hnsw.nb_neighbors(1)
        links = LINK_BYTES * (2 * m + m / max(m - 1, 1))
        return int(rows * (links + 12)) + _structure_bytes(index.storage, rows)
    if isinstance(index, faiss.IndexIVF):
        lists = int(LIST_SLACK * rows * (index.code_size + ID_BYTES)) + index.nlist * IVF_LIST_BYTES
        block = getattr(index, "bbs", 0)
        if block:  # fast-scan lists are padded to whole blocks of `bbs` codes
            lists += index.nlist * block * index.code_size
        return lists + _ivf_extra(index) + _structure_bytes(index.quantizer, index.nlist)
    code_size = getattr(index, "code_size", None)
    if code_size is None:
        raise BadInput(f"cannot estimate the memory of a faiss {type(index).__name__} index")
    pq = getattr(index, "pq", None)
    return rows * int(code_size) + (4 * pq.M * pq.ksub * pq.dsub if pq is not None else 0)


def index_bytes(factory: str | None, rows: int, dim: int) -> int:
    """Estimated bytes of the index `factory` over `rows` × `dim` descriptors, growth slack included."""
    return int(GROWTH * _structure_bytes(new_index(dim, factory), rows))


def available_bytes() -> int:
    """Memory this process may still use: MemAvailable (psutil or /proc/meminfo), capped by a cgroup limit."""
    try:
        import psutil
    except ImportError:
        free = _meminfo_available()
    else:
        free = int(psutil.virtual_memory().available)
    limit = _cgroup_room()
    return min(free, limit) if limit is not None else free


def _meminfo_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise BadInput("cannot tell the available memory (no psutil and no MemAvailable in /proc/meminfo)")


def _cgroup_room() -> int | None:
    """Bytes left under a cgroup v2 memory limit, or None without one."""
    folder = Path("/sys/fs/cgroup")
    try:
        limit = (folder / "memory.max").read_text().strip()
        used = int((folder / "memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def gigabytes(size: float) -> str:
    """Bytes as '29 GB' / '1.4 GB' / '0.05 GB' (decimal gigabytes)."""
    value = size / 1e9
    return f"{value:.0f} GB" if value >= 10 else f"{value:.1f} GB" if value >= 1 else f"{value:.2g} GB"


def ivf_lists(rows: int) -> int:
    """Inverted lists for `rows` vectors: faiss's guideline 4·√N as a power of two in [64, 65536]."""
    return max(64, min(65536, 2 ** round(math.log2(4 * math.sqrt(max(rows, 1))))))


def built_bytes(index: faiss.Index) -> int:
    """Bytes a built index holds, measured: its serialised size plus IVF-PQ's precomputed table
    (kept in memory, never serialised)."""
    table = 0
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        typed = faiss.downcast_index(ivf)
        if isinstance(typed, faiss.IndexIVFPQ):
            table = 4 * typed.precomputed_table.size()
    return int(faiss.serialize_index(index).nbytes) + table


def alternatives(rows: int, dim: int) -> list[str]:
    """Factory strings to suggest, most accurate first, each valid for `dim`."""
    lists = ivf_lists(rows)
    codes = [m for m in (64, 32, 16, 8) if dim % m == 0 and m <= dim]
    out = ["Flat", "HNSW32", f"IVF{lists},Flat", f"IVF{lists},SQ8"]
    return out + [f"IVF{lists},PQ{m}" for m in codes]


def check_index_fits(factory: str | None, rows: int, dim: int, available: int | None = None,
                     suggestions: Sequence[str] | None = None) -> int:
    """The estimated bytes of `factory`, or BadInput in one line when it exceeds `available` (default: now).

    The message names the most accurate of `suggestions` (default `alternatives`) that fits, e.g.
    "IVF4096,PQ64 fits (0.1 GB); Flat needs 18 GB of the 16 GB available here for 1,000,000 × 4096 descriptors".
    """
    need = index_bytes(factory, rows, dim)
    room = available_bytes() if available is None else int(available)
    if need <= room:
        return need
    name = factory or "Flat"
    fitting = next(((s, size) for s in (suggestions or alternatives(rows, dim))
                    if (size := index_bytes(s, rows, dim)) <= room), None)
    head = f"{fitting[0]} fits ({gigabytes(fitting[1])})" if fitting else "no suggested index fits"
    raise BadInput(f"{head}; {name} needs {gigabytes(need)} of the {gigabytes(room)} available here for "
                   f"{rows:,} × {dim} descriptors: choose a smaller --index or free memory")
