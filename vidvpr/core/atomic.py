"""Atomic outputs: everything is written under a temporary name and renamed when complete.

Temporary names carry the host and the process id (``.name.partial-<host>-<pid>.ext``), so
several machines can share one output folder over NFS: a run only ever removes the partial files
of dead processes on its own host, never a live partial of another machine's run.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vidvpr.core.errors import BadInput, OutputError

PARTIAL_MARKER = ".partial"


def host_tag() -> str:
    """This machine's name as it appears in temporary file names (no separators or dots)."""
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname() or "host")[:40] or "host"


_UNIQUE = itertools.count()


def _owner_tag() -> str:
    """'<host>-<pid>-<n>': whose temporary file this is, unique even between threads of one process."""
    return f"{host_tag()}-{os.getpid()}-{next(_UNIQUE)}"


def partial_path(final: Path) -> Path:
    """The temporary name an output file is written under: hidden, marked partial, same extension."""
    final = Path(final)
    return final.with_name(f".{final.stem}{PARTIAL_MARKER}-{_owner_tag()}{final.suffix}")


def partial_dir(final: Path) -> Path:
    """The temporary name a folder output is built under (renamed to `final` when complete)."""
    final = Path(final)
    return final.with_name(f".{final.name}{PARTIAL_MARKER}-{_owner_tag()}")


def _dead_on_this_host(owner: str) -> bool:
    """True for '<host>-<pid>[-<n>]' naming this host and a process that no longer exists."""
    parts = owner.split("-")
    if len(parts) == 3 and parts[2].isdigit():
        parts = parts[:2]
    if len(parts) != 2:
        return False
    host, pid = parts
    return host == host_tag() and pid.isdigit() and not process_alive(int(pid))


def remove_stale_partials(final: Path) -> int:
    """Delete temporary files of `final` left by killed runs on this host."""
    final = Path(final)
    prefix, suffix = f".{final.stem}{PARTIAL_MARKER}-", final.suffix
    removed = 0
    for candidate in final.parent.glob(f"{glob_escape(prefix)}*{glob_escape(suffix)}"):
        owner = candidate.name[len(prefix):len(candidate.name) - len(suffix) if suffix else None]
        if _dead_on_this_host(owner):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed += 1
    return removed


def remove_stale_partial_dirs(final: Path) -> int:
    """Delete temporary folders of `final` left by killed runs on this host."""
    final = Path(final)
    prefix = f".{final.name}{PARTIAL_MARKER}-"
    removed = 0
    for candidate in final.parent.glob(f"{glob_escape(prefix)}*"):
        if candidate.is_dir() and _dead_on_this_host(candidate.name[len(prefix):]):
            shutil.rmtree(candidate, ignore_errors=True)
            removed += 1
    return removed


def glob_escape(text: str) -> str:
    """`text` with glob metacharacters escaped (file names may contain [ ] * ?)."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_partial_name(name: str) -> bool:
    """Whether a file name is one of the temporary names above (never a finished output)."""
    return name.startswith(".") and PARTIAL_MARKER + "-" in name


def output_error(final: Path, exc: BaseException) -> OutputError | None:
    """The one-line OutputError for a failure writing `final` (disk full, unwritable), else None."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return OutputError(f"{final}: disk full while writing")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR,
                                                  errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY):
        return OutputError(f"{final}: cannot write ({exc.strerror})")
    return None


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path; rename it to `final` only if the block completes.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so a file
    with the final name is always complete. A hard kill leaves only a hidden partial file,
    which no stage mistakes for a finished output. Failing to write or rename (disk full, a
    folder in the way) is an OutputError naming the file.
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
        error = output_error(final, exc)
        if error is not None:
            raise error from exc
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file via a temporary name and rename."""
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON via a temporary file and rename, so readers never see half a sidecar."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


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


def refuse_output_inside(out: Path, folder: Path, what: str) -> None:
    """BadInput when the output folder `out` is `folder` (an input, e.g. "the manifest folder") or lies
    inside it: a run must not write its files among its inputs."""
    out_abs, folder_abs = Path(out).resolve(), Path(folder).resolve()
    if out_abs == folder_abs or out_abs.is_relative_to(folder_abs):
        where = "is" if out_abs == folder_abs else "is inside"
        raise BadInput(f"--out {out}: {where} {what} {folder}, which holds only its own files; write elsewhere")


@contextlib.contextmanager
def removing_new_dirs(path: Path) -> Iterator[None]:
    """Inside the block `path` and any missing parents may be created; if the block fails, those
    that were created and are still empty are removed (a failed run leaves no empty --out behind)."""
    path = Path(path).absolute()
    new = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for folder in new:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
        raise


def replace_dir(built: Path, final: Path, attempts: int = 20) -> None:
    """Put the finished folder `built` in place of `final` (which may exist), as one rename.

    The old folder is first renamed aside and removed after, so `final` always holds one
    whole output: a concurrent run replacing it too leaves one or the other, never a mix.
    """
    built, final = Path(built), Path(final)
    for attempt in range(attempts):
        try:
            os.rename(built, final)  # succeeds when `final` is absent or an empty folder
            break
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                error = output_error(final, exc)
                raise (error or exc) from exc
        aside = final.with_name(f".{final.name}.old-{_owner_tag()}")
        try:
            os.rename(final, aside)
        except FileNotFoundError:
            continue  # another run moved it first: try again
        shutil.rmtree(aside, ignore_errors=True)
    else:
        raise OutputError(f"{final}: could not replace it (another run keeps writing it)")


@contextlib.contextmanager
def built_dir(final: Path) -> Iterator[Path]:
    """Yield a new temporary folder beside `final`; when the block completes it replaces `final`
    in one rename (`replace_dir`). On failure it is removed, and a write failure (disk full, no
    permission) is an OutputError naming `final`."""
    final = Path(final)
    remove_stale_partial_dirs(final)
    tmp = partial_dir(final)
    try:
        tmp.mkdir()
    except OSError as exc:  # e.g. beside a folder nothing can be made in (/proc/x): ENOENT though it exists
        raise OutputError(f"{final}: cannot create a folder beside it to build it in ({exc.strerror})") from exc
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        error = output_error(final, exc)
        if error is not None:
            raise error from exc
        raise
