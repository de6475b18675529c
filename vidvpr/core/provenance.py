"""Hashes, tool versions, sidecars and atomic writes: how every output explains itself."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import platform
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vidvpr import __version__
from vidvpr.core.errors import OutputError

HASH_CHUNK_BYTES = 4 << 20
# schema of the sidecar `vidvpr slice` writes beside each view video; encode and manifest read it
SLICE_SIDECAR_SCHEMA = "vidvpr.slice/1"
PARTIAL_MARKER = ".partial"


def sha256_file(path: Path) -> str:
    """Content hash of a file, streamed so multi-GB 360° videos need no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def params_hash(params: dict[str, Any]) -> str:
    """Stable short hash of a parameter dict: equal parameters give equal hashes across runs."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def file_record(path: Path) -> dict[str, Any]:
    """Path, size and content hash of an input, as stored in sidecars."""
    return {"path": str(path), "bytes": path.stat().st_size, "hash": sha256_file(path)}


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


def partial_path(final: Path) -> Path:
    """The temporary name an output is written under: hidden, marked partial, same extension."""
    return final.with_name(f".{final.stem}{PARTIAL_MARKER}-{os.getpid()}{final.suffix}")


def remove_stale_partials(final: Path) -> int:
    """Delete temporary files of `final` left by killed runs (their process no longer exists)."""
    removed = 0
    for candidate in Path(final).parent.glob(f".{Path(final).stem}{PARTIAL_MARKER}-*{Path(final).suffix}"):
        pid_text = candidate.name[len(f".{Path(final).stem}{PARTIAL_MARKER}-"):-len(Path(final).suffix) or None]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed += 1
    return removed


def partial_dir(final: Path) -> Path:
    """The temporary name a folder output is built under (renamed to `final` when complete)."""
    return final.with_name(f".{final.name}{PARTIAL_MARKER}-{os.getpid()}")


def remove_stale_partial_dirs(final: Path) -> int:
    """Delete temporary folders of `final` left by killed runs (their process no longer exists)."""
    removed = 0
    prefix = f".{Path(final).name}{PARTIAL_MARKER}-"
    for candidate in Path(final).parent.glob(f"{prefix}*"):
        pid_text = candidate.name[len(prefix):]
        if candidate.is_dir() and pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path; rename it to `final` only if the block completes.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so a
    file with the final name is always complete. A hard kill leaves only a hidden
    `.partial` file, which no stage mistakes for a finished output. Failing to write or
    rename the file itself (disk full, a folder in the way) is an OutputError naming it.
    """
    final = Path(final)
    remove_stale_partials(final)
    tmp = partial_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise OutputError(f"{final}: disk full while writing") from exc
        if isinstance(exc, OSError) and exc.filename is not None and Path(exc.filename) in (tmp, final):
            raise OutputError(f"{final}: cannot write ({exc.strerror})") from exc
        raise


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON via a temporary file and rename, so readers never see half a sidecar."""
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """Read a sidecar; None if it is missing or unreadable (treated as not done)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` if needed and check it can be written, or raise OutputError naming it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not an output directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create output directory ({exc.strerror})") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: output directory is not writable")
    return path


def command_line() -> list[str]:
    """argv of this run, recorded in sidecars."""
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
