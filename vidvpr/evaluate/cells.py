"""The grid cells an evaluation runs over: the reference views and every encoded cell that covers
the manifest's views, each checked to be encoded from the very view video the manifest lists.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file
from vidvpr.core.records import FileRecord
from vidvpr.core.sidecars import CellSidecar
from vidvpr.dataset.manifest import Manifest
from vidvpr.encoding.plan import cell_paths
from vidvpr.encoding.table import finished_cells
from vidvpr.evaluate.config import EvalConfig

REFERENCE = "reference"
DEFAULT_CODEC = "libx264"


@dataclass(frozen=True)
class GridCell:
    """One column of the evaluation: where each view's frames come from, and the cell's rate/quality."""

    name: str  # "reference", "<res>/qp<NN>", or "<codec>/<res>/qp<NN>" for other codecs
    codec: str | None
    resolution: str | None
    qp: int | None
    videos: dict[tuple[str, str], tuple[Path, FileRecord]]  # (recording, view) -> video and its record
    width: int | None = None
    height: int | None = None
    kbps: float | None = None
    psnr_y: float | None = None
    ssim_y: float | None = None
    vmaf: float | None = None
    sidecars: list[str] = field(default_factory=list)

    @property
    def is_reference(self) -> bool:
        return self.name == REFERENCE


def cell_name(codec: str, resolution: str, qp: int) -> str:
    """How a cell is named in results and --cells: the codec only when it is not the default."""
    stem = f"{resolution}/qp{qp:02d}"
    return stem if codec == DEFAULT_CODEC else f"{codec}/{stem}"


def manifest_views(manifest: Manifest) -> list[tuple[str, str]]:
    """Every (recording, view) the manifest's rows use, in row order."""
    return list(dict.fromkeys((row.recording, row.view) for row in manifest.database + manifest.queries))


def reference_cell(manifest: Manifest) -> GridCell:
    """The view videos themselves: the no-compression row."""
    videos = {}
    for recording, view in manifest_views(manifest):
        listed = manifest.meta.view_input(recording, view)
        if listed is None:
            raise BadInput(f"{manifest.directory}: manifest.json lists no view {recording}/{view}")
        path = manifest.root / listed.video.path
        if not listed.video.matches(path):
            raise BadInput(f"{path}: missing or changed since the manifest was built; rebuild the manifest")
        videos[(recording, view)] = (path, listed.video)
    return GridCell(REFERENCE, None, None, None, videos)


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(float(np.mean(known)), 4) if known else None


def encode_folder(enc_dir: Path) -> Path:
    """`enc_dir` if it is a folder, else BadInput saying whether it is missing or a file."""
    enc_dir = Path(enc_dir)
    if not enc_dir.is_dir():
        found = "is a file, not an encode folder" if enc_dir.exists() else "encode folder not found"
        raise BadInput(f"{enc_dir}: {found} (vidvpr encode --out)")
    return enc_dir


def encoded_cells(manifest: Manifest, enc_dir: Path, wanted: list[str] | None = None) -> list[GridCell]:
    """The encode grid's cells over the manifest's views, sorted by codec, resolution (large first), QP.

    A cell that some view of the manifest lacks, or that was encoded from another version of a
    view than the manifest lists, is a BadInput naming it.
    """
    enc_dir = encode_folder(enc_dir)
    needed = manifest_views(manifest)
    by_cell: dict[tuple[str, str, int], dict[tuple[str, str], tuple[Path, CellSidecar]]] = defaultdict(dict)
    for path, cell in finished_cells(enc_dir):
        if (cell.recording, cell.view) in needed:
            by_cell[(cell.codec, cell.resolution, cell.qp)][(cell.recording, cell.view)] = (path, cell)
    if not by_cell:
        raise BadInput(f"{enc_dir}: no encoded cells of the manifest's views ({needed[0][0]}/{needed[0][1]}, ...)")
    names = {cell_name(*key): key for key in by_cell}
    if wanted is not None:
        unknown = [name for name in wanted if name != REFERENCE and name not in names]
        if unknown:
            raise BadInput(f"--cells: no cell {unknown[0]!r} in {enc_dir}; it has {', '.join(sorted(names))}")
        names = {name: key for name, key in names.items() if name in wanted}
    cells = []
    for name, key in names.items():
        members = by_cell[key]
        missing = [(rec, view) for rec, view in needed if (rec, view) not in members]
        if missing:
            video, sidecar = cell_paths(enc_dir, *missing[0], key[1], key[2], key[0])
            state = "damaged or unfinished: vidvpr encode redoes it" if sidecar.exists() or video.exists() else "not encoded"
            raise BadInput(f"{enc_dir}: cell {name} is missing for view {'/'.join(missing[0])} "
                           f"({sidecar.relative_to(enc_dir)}: {state}); encode it, or pick cells with --cells")
        videos = {}
        for (rec, view), (sidecar_path, cell) in members.items():
            listed = manifest.meta.view_input(rec, view)
            if listed is None or cell.input.hash != listed.video.hash:
                raise BadInput(f"{sidecar_path}: cell {name} of {rec}/{view} was encoded from a different view video "
                               f"than the manifest lists; re-run vidvpr encode on the current views")
            video = sidecar_path.with_name(cell.output.path)
            videos[(rec, view)] = (video, FileRecord(path=str(video), bytes=cell.output.bytes,
                                                     hash=_cell_hash(video, cell)))
        sidecars = [cell for _, cell in members.values()]
        first = sidecars[0]
        kbps = _mean([c.kbps for c in sidecars])
        cells.append(GridCell(name, first.codec, first.resolution, first.qp, videos, first.width, first.height,
                              kbps if kbps and kbps > 0 else None, _mean([c.metrics.psnr_y for c in sidecars]),
                              _mean([c.metrics.ssim_y for c in sidecars]), _mean([c.metrics.vmaf for c in sidecars]),
                              [str(path) for path, _ in members.values()]))
    return sorted(cells, key=lambda c: (c.codec or "", -(c.height or 0), c.resolution or "", c.qp or 0))


def grid_cells(manifest: Manifest, config: EvalConfig) -> list[GridCell]:
    """The cells an evaluation runs over: the reference (unless --cells leaves it out), then the
    encoded cells of --enc (those --cells names, or all). A --enc that is not an encode folder is
    refused even when no encoded cell is asked for: a mistyped path never passes unnoticed."""
    if config.enc_dir is not None:
        encode_folder(Path(config.enc_dir))
    cells = []
    if config.cells is None or REFERENCE in config.cells:
        cells.append(reference_cell(manifest))
    if config.enc_dir is not None and (config.cells is None or any(c != REFERENCE for c in config.cells)):
        cells.extend(encoded_cells(manifest, Path(config.enc_dir), list(config.cells) if config.cells else None))
    return cells


def _cell_hash(video: Path, cell: CellSidecar) -> str:
    """A cell video's content hash (cached by file identity), for descriptor-cache keys."""
    if not video.is_file() or video.stat().st_size != cell.output.bytes:
        raise BadInput(f"{video}: missing or changed since it was encoded; re-run vidvpr encode")
    return sha256_file(video)
