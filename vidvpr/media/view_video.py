"""A view video as later stages see it: the file, its stream, its content hash and its slice sidecar.

The recording is the video's folder name and the view its sidecar's name (else the file stem),
as `vidvpr slice` lays them out: ``OUT/<recording>/<view>.mp4`` + ``<view>.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vidvpr.core.provenance import sha256_file
from vidvpr.core.sidecars import CellInputRecord, SliceSidecar
from vidvpr.media.probe import probe_video

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewVideo:
    """One view video: where it is, what it holds, and the sidecar `vidvpr slice` wrote for it."""

    path: Path
    recording: str
    view: str
    width: int
    height: int
    fps: Fraction
    frames: int
    bytes: int
    hash: str
    sidecar: SliceSidecar | None  # None when the video was not made by `vidvpr slice`

    @property
    def sidecar_path(self) -> Path:
        return self.path.with_suffix(".json")

    def record(self) -> CellInputRecord:
        """How a cell sidecar records the view it was encoded from."""
        return CellInputRecord(path=str(self.path), bytes=self.bytes, hash=self.hash, width=self.width,
                               height=self.height, fps=str(self.fps), frames=self.frames,
                               slice_sidecar=str(self.sidecar_path) if self.sidecar else None)


def describe_view_video(path: Path, warn_without_sidecar: bool = True) -> ViewVideo:
    """Probe and hash a view video, with its sidecar when it is `vidvpr slice`'s and still matches.

    The sidecar counts only when it is a valid slice sidecar recording this file's size; other
    videos are described from their stream alone (with a warning unless asked not to).
    """
    path = Path(path)
    info = probe_video(path)
    size = path.stat().st_size
    beside = path.with_suffix(".json")
    sidecar = SliceSidecar.load_or_none(beside)
    if sidecar is None:
        why = f"{beside.name} is not one (damaged, or another tool's)" if beside.exists() else f"no {beside.name} beside it"
    elif sidecar.output.bytes != size:
        why = f"{beside.name} records a video of {sidecar.output.bytes:,} bytes, this one has {size:,}"
        sidecar = None
    if sidecar is None and warn_without_sidecar:
        LOG.warning("%s: not a view video made by `vidvpr slice` (no matching %s sidecar: %s); using it anyway",
                    path, SliceSidecar.SCHEMA, why)
    return ViewVideo(path=path, recording=path.resolve().parent.name or "recording",
                     view=sidecar.view if sidecar else path.stem, width=info.width, height=info.height,
                     fps=info.fps, frames=info.frames, bytes=size, hash=sha256_file(path), sidecar=sidecar)
