"""Hashes and versions: how every output says what made it.

Content hashes of multi-GB sources are cached by file identity (device, inode, size, mtime), so a
rerun that only has to confirm a finished output never reads the sources again. The cache is a
small SQLite file in ``$VIDVPR_CACHE_DIR`` (default ``~/.cache/vidvpr``); when it cannot be
used, hashes are simply computed.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import platform
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vidvpr import __version__

HASH_CHUNK_BYTES = 4 << 20
CACHE_DIR_ENV = "VIDVPR_CACHE_DIR"
HASH_CACHE_FILE = "file-hashes.sqlite3"
# the command a unit of work runs for: set around units run on a Dask worker, whose own argv is the worker's
_RUN_COMMAND: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("vidvpr_run_command", default=None)


def cache_dir() -> Path:
    """Where vidvpr keeps caches that are safe to delete (read from the environment at call time)."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "vidvpr"


def _hash_file_contents(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def file_identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime in ns): a file rewritten or replaced gets another identity."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


@contextlib.contextmanager
def _hash_cache() -> Any:
    """A connection to the hash cache, or None when it cannot be opened (read-only home, ...)."""
    connection = None
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(folder / HASH_CACHE_FILE, timeout=5)
        connection.execute("CREATE TABLE IF NOT EXISTS hashes (dev INTEGER, ino INTEGER, size INTEGER, "
                           "mtime_ns INTEGER, hash TEXT, PRIMARY KEY (dev, ino, size, mtime_ns))")
    except (OSError, sqlite3.Error):
        connection = None
    try:
        yield connection
    finally:
        if connection is not None:
            connection.close()


def sha256_file(path: Path) -> str:
    """Content hash of a file ("sha256:<hex>"), streamed, and cached by file identity.

    A file rewritten in place changes its mtime (and usually its size), so a stale hash is
    never served for new contents.
    """
    return sha256_files([path])[0]


def sha256_files(paths: Sequence[Path]) -> list[str]:
    """`sha256_file` of many files through one cache connection, new hashes stored in one transaction
    (a transaction per file costs ~15 ms: half a minute for an image sequence of 2,000 small files)."""
    digests, new = [], []
    with _hash_cache() as cache:
        for path in map(Path, paths):
            key = file_identity(path.stat())
            hit = None
            if cache is not None:
                with contextlib.suppress(sqlite3.Error):
                    hit = cache.execute("SELECT hash FROM hashes WHERE dev=? AND ino=? AND size=? AND mtime_ns=?",
                                        key).fetchone()
            if hit:
                digests.append(str(hit[0]))
                continue
            digest = _hash_file_contents(path)
            digests.append(digest)
            if file_identity(path.stat()) == key:  # unchanged while hashing
                new.append((*key, digest))
        if cache is not None and new:
            with contextlib.suppress(sqlite3.Error), cache:
                cache.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", new)
    return digests


def params_hash(params: dict[str, Any]) -> str:
    """Stable short hash of a parameter dict: equal parameters give equal hashes across runs."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def runtime_versions() -> dict[str, str]:
    """Versions of vidvpr, Python and the in-process media libraries."""
    import av  # local: keep `import vidvpr.core.provenance` cheap

    libav = {name: ".".join(map(str, ver)) for name, ver in av.library_versions.items()}
    return {
        "vidvpr": __version__,
        "python": platform.python_version(),
        "pyav": av.__version__,
        "libavcodec": libav.get("libavcodec", "?"),
        "libavformat": libav.get("libavformat", "?"),
    }


def command_line() -> list[str]:
    """argv of this run, recorded in sidecars (the client's, when a unit runs on a Dask worker)."""
    recorded = _RUN_COMMAND.get()
    return list(recorded) if recorded is not None else [Path(sys.argv[0]).name, *sys.argv[1:]]


@contextlib.contextmanager
def running_for(command: list[str]) -> Iterator[None]:
    """Inside the block (this thread), `command_line()` is `command`: the run a worker's unit belongs to."""
    token = _RUN_COMMAND.set(list(command))
    try:
        yield
    finally:
        _RUN_COMMAND.reset(token)
