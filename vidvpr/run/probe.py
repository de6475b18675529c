"""Shared storage is the contract: before any work, every worker must see and write the output
folders and see the inputs, exactly as the client does.

The client writes a probe file with a random token into each output folder; each worker checks it
reads that token (the same folder, not a local one of the same name), writes a file of its own,
and checks the inputs have the client's sizes; the client then reads every worker's file. The
client's probe files stay for the run (`MARKER_PREFIX`): a unit checks its marker before writing,
so a worker that joins later and does not share the storage fails its units instead of writing
elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path

from vidvpr.core.errors import OutputError

MARKER_PREFIX = ".vidvpr-shared-"


def _worker_file(folder: Path, token: str, worker: str) -> Path:
    return folder / f"{MARKER_PREFIX}{token}-{re.sub(r'[^A-Za-z0-9]', '_', worker)}"


def write_markers(outputs: Sequence[Path]) -> tuple[str, list[Path]]:
    """(token, marker files) written by the client into each output folder (which must exist)."""
    token = uuid.uuid4().hex
    markers = []
    for folder in outputs:
        marker = Path(folder) / f"{MARKER_PREFIX}{token}"
        try:
            marker.write_text(token)
        except OSError as exc:
            remove_files(markers)
            raise OutputError(f"{folder}: cannot write ({exc.strerror})") from exc
        markers.append(marker)
    return token, markers


def worker_probe(markers: list[str], token: str, inputs: list[tuple[str, int]], worker: str) -> str | None:
    """Run on a worker: None when it sees and writes every output folder and sees every input, else why not."""
    for marker_name in markers:
        marker = Path(marker_name)
        if not marker.parent.is_dir():
            return f"does not see {marker.parent}"
        try:
            seen = marker.read_text()
        except OSError:
            seen = ""
        if seen != token:
            return f"sees another folder at {marker.parent} (not the client's)"
        try:
            with open(_worker_file(marker.parent, token, worker), "x") as handle:
                handle.write(token + worker)
        except OSError as exc:
            return f"cannot write {marker.parent} ({exc.strerror})"
    missing = []
    for path, size in inputs:
        try:
            if os.stat(path).st_size != size:
                missing.append(path)
        except OSError:
            missing.append(path)
    if missing:
        more = f" and {len(missing) - 1} more inputs" if len(missing) > 1 else ""
        return f"does not see input {missing[0]}{more}"
    return None


def client_reads(markers: Sequence[Path], token: str, worker: str) -> str | None:
    """None when the client reads what `worker` wrote into every output folder, else why not."""
    for marker in markers:
        written = _worker_file(marker.parent, token, worker)
        try:
            ok = written.read_text() == token + worker
        except OSError:
            ok = False
        if not ok:
            return f"writes {marker.parent} somewhere the client does not see"
    return None


def remove_probe_files(markers: Sequence[Path], token: str, keep_markers: bool) -> None:
    """Delete the workers' probe files (and the client's markers unless kept)."""
    for marker in markers:
        for path in marker.parent.glob(f"{MARKER_PREFIX}{token}-*"):
            with contextlib.suppress(OSError):
                path.unlink()
    if not keep_markers:
        remove_files(markers)


def remove_files(paths: Sequence[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            Path(path).unlink()


def unseen_marker(markers: Sequence[str]) -> str | None:
    """Run before a unit: the first output folder whose marker this worker does not see, else None."""
    for marker in markers:
        if not Path(marker).is_file():
            return str(Path(marker).parent)
    return None


def input_sizes(inputs: Sequence[Path]) -> list[tuple[str, int]]:
    """(absolute path, size) of each input file, as the client sees them."""
    out = []
    for path in inputs:
        path = Path(path).absolute()
        with contextlib.suppress(OSError):
            out.append((str(path), path.stat().st_size))
    return out


def problems_message(problems: dict[str, str], total: int) -> str:
    """One line naming every worker that cannot use the storage, and why."""
    listed = "; ".join(f"{worker} {why}" for worker, why in problems.items())
    return (f"{len(problems)} of {total} Dask workers cannot use the run's files: {listed}. Inputs and outputs "
            "must be on storage every worker mounts at the same path (nothing was written)")
