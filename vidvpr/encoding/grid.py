"""`vidvpr encode`: view videos → a codec × resolution × quantiser grid, rate, quality and speed per cell.

Layout: ``OUT/<recording>/<view>/<res>/qp<NN>.mp4`` (libx264) or
``OUT/<recording>/<view>/<res>/<codec>/<quantiser><NN>.mp4`` (other codecs), each with a sidecar
``.json`` written last, plus ``OUT/encodes.csv``, ``OUT/encodes.json`` and ``OUT/rd.png``
describing every finished cell under OUT. A cell is done when its sidecar names the same
parameter hash and input hash, the video has the recorded size and the metrics asked for are there.

Per view and codec, one process encodes and measures every cell still to do (viewjob.py).
Videos are written under temporary names and renamed when the group is complete; a crash or
Ctrl-C leaves nothing a rerun would take as done. Planning and argv building are pure
(plan.py); this module is the I/O shell around them.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import ensure_writable_dir, removing_new_dirs
from vidvpr.core.errors import BadInput, ToolMissing
from vidvpr.core.provenance import runtime_versions
from vidvpr.core.sidecars import CellSidecar
from vidvpr.core.threads import encoder_threads, usable_cores
from vidvpr.encoding.codecs import CODECS
from vidvpr.encoding.plan import Cell, EncodeConfig, describe_config, plan_grid, validate_config
from vidvpr.encoding.quality import vmaf_sampling
from vidvpr.encoding.table import table_rows, write_table
from vidvpr.media.ffmpeg import FfmpegInfo, FfmpegPool, find_ffmpeg
from vidvpr.media.view_video import describe_view_video
from vidvpr.run import Executor, InProcessExecutor, Unit

LOG = logging.getLogger(__name__)
_LIVE_POOLS: weakref.WeakSet[FfmpegPool] = weakref.WeakSet()


def cell_done(cell: Cell, want_vmaf: bool, vmaf_every: int) -> bool:
    """A cell is done when its sidecar matches parameters, input and video size, and has VMAF (at this
    sampling) if wanted."""
    meta = CellSidecar.load_or_none(cell.sidecar)
    if not (meta and cell.video.is_file() and meta.params_hash == cell.params_hash
            and meta.input.hash == cell.source.hash and meta.output.bytes == cell.video.stat().st_size):
        return False
    metrics = meta.metrics
    if not want_vmaf:
        return True
    if metrics.vmaf is None:
        return metrics.vmaf_note is not None and "cannot measure" in metrics.vmaf_note
    return metrics.vmaf_sampling is not None and metrics.vmaf_sampling.every == vmaf_sampling(vmaf_every, meta.frames).every


@dataclass(frozen=True)
class CellStatus:
    """A planned cell and whether a rerun would skip it."""

    cell: Cell
    done: bool


def plan_encode(inputs: Sequence[Path], out_dir: Path, config: EncodeConfig, want_vmaf: bool | None = None) -> list[CellStatus]:
    """The grid for these inputs, each cell marked done (skipped) or to do; writes nothing."""
    validate_config(config)
    if not inputs:
        raise BadInput("give at least one view video")
    sources = [describe_view_video(Path(path)) for path in inputs]
    want_vmaf = config.vmaf if want_vmaf is None else want_vmaf
    return [CellStatus(cell, not config.force and cell_done(cell, want_vmaf, config.vmaf_every))
            for cell in plan_grid(sources, config, Path(out_dir))]


@dataclass
class EncodeResult:
    """What a grid run wrote or found done, and where its table and plot are."""

    rows: list[dict[str, Any]]
    encoded: list[str]
    skipped: list[str]
    table: Path
    table_json: Path
    plot: Path


def require_encoders(config: EncodeConfig, ffmpeg: FfmpegInfo) -> None:
    """ToolMissing (exit 3) naming the first codec of the grid this ffmpeg cannot encode."""
    for name in config.codecs:
        encoder = CODECS[name].encoder
        if encoder is not None and not ffmpeg.has_encoder(encoder):
            raise ToolMissing(f"{ffmpeg.path} has no {encoder} encoder (--codec {name}); `vidvpr doctor` lists the "
                              "encoders it found: install an ffmpeg with it (--ffmpeg PATH) or drop the codec")


def encode_grid(
    inputs: Sequence[Path],
    out_dir: Path,
    config: EncodeConfig,
    ffmpeg: FfmpegInfo | None = None,
    on_start: Callable[[int | None], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> EncodeResult:
    """Encode and measure every cell not yet done, then rewrite the table and the RD plot.

    Each view is one unit (`encode_view`) of `executor` (default: in-process, `config.jobs` views
    at once). Progress counts cell-frames (JPEG cells twice: encoded, then measured).
    """
    validate_config(config)
    ffmpeg = ffmpeg or find_ffmpeg()
    require_encoders(config, ffmpeg)
    if config.vmaf and not ffmpeg.has_vmaf:
        LOG.warning("%s has no libvmaf filter; the VMAF column stays empty", ffmpeg.path)
    want_vmaf = config.vmaf and ffmpeg.has_vmaf
    out_dir = Path(out_dir).absolute()  # units may run on other machines, in other working folders
    inputs = [Path(path).absolute() for path in inputs]
    statuses = plan_encode(inputs, out_dir, config, want_vmaf)  # all checks before anything is written
    executor = executor or InProcessExecutor()
    with removing_new_dirs(out_dir):
        ensure_writable_dir(out_dir)
        executor.check_shared([out_dir], [*inputs, Path(ffmpeg.path)])
        if on_status:
            on_status(f"encode {len({s.cell.source.path for s in statuses if not s.done})} views")
        return _encode_statuses(statuses, out_dir, config, ffmpeg, want_vmaf, on_start, on_frames, executor)


def encode_view(groups: list[tuple[int, list[Cell]]], config: EncodeConfig, ffmpeg: FfmpegInfo, want_vmaf: bool,
                versions: dict[str, str], cores: int, on_frames: Callable[[int], None] | None = None) -> int:
    """One unit of work: one view's cells still to do, a group per codec (with the number of cells
    planned for it); returns the cells written. Threads per encoder follow the plan and `cores` (the
    client's), never the worker's, so a resumed run, or any worker, encodes exactly like a whole one."""
    from vidvpr.encoding.viewjob import ViewContext, encode_group  # here: a rerun with nothing to encode never loads it

    pool = FfmpegPool()
    _LIVE_POOLS.add(pool)
    try:
        ctx = ViewContext(ffmpeg, config, pool, want_vmaf, versions, on_frames, None)
        for planned, todo in groups:
            encode_group(todo, encoder_threads(config.jobs * planned, cores), ctx)
    finally:
        _LIVE_POOLS.discard(pool)
    return sum(len(todo) for _, todo in groups)


def stop_encoders() -> None:
    """Kill the ffmpeg processes of every view being encoded in this process (the run is stopping)."""
    for pool in list(_LIVE_POOLS):
        pool.stop_all()


def _encode_statuses(statuses: list[CellStatus], out_dir: Path, config: EncodeConfig, ffmpeg: FfmpegInfo,
                     want_vmaf: bool, on_start: Callable[[int | None], None] | None,
                     on_frames: Callable[[int], None] | None, executor: Executor) -> EncodeResult:
    by_view: dict[Path, dict[str, list[CellStatus]]] = {}
    for status in statuses:
        by_view.setdefault(status.cell.source.path, {}).setdefault(status.cell.codec, []).append(status)
    # per view, (cells planned, cells still to do) of each codec: threads follow the plan, so a
    # resumed run encodes with exactly the settings of an uninterrupted one
    jobs = [[(len(group), [s.cell for s in group if not s.done]) for group in codecs.values()]
            for codecs in by_view.values()]
    jobs = [[(planned, todo) for planned, todo in view if todo] for view in jobs]
    jobs = [view for view in jobs if view]
    versions = {**runtime_versions(), "ffmpeg": ffmpeg.version, "ffmpeg_path": ffmpeg.path}
    units = [Unit(f"encode {job[0][1][0].source.recording}/{job[0][1][0].source.view}", encode_view,
                  (job, config, ffmpeg, want_vmaf, versions, usable_cores()), progress="on_frames",
                  weight=_cell_frames([cell for _, cells in job for cell in cells])) for job in jobs]
    report = executor.run(units, on_start, on_frames, concurrency=config.jobs, on_abort=stop_encoders)
    rows = table_rows(out_dir)
    table, table_json, plot = write_table(rows, out_dir, describe_config(config))
    report.raise_failures()
    return EncodeResult(rows, [str(s.cell.video) for s in statuses if not s.done],
                        [str(s.cell.video) for s in statuses if s.done], table, table_json, plot)


def _cell_frames(cells: list[Cell]) -> int | None:
    """Progress a view's cells report: frames per cell (JPEG cells twice), None when a count is unknown."""
    if not all(cell.source.frames for cell in cells):
        return None
    return sum(cell.source.frames * (1 if cell.spec.encoder else 2) for cell in cells)
