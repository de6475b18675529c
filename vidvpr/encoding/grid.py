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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
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
from vidvpr.encoding.rdplot import PLOT_NAME, plot_rd
from vidvpr.encoding.table import table_rows, write_table
from vidvpr.encoding.viewjob import ViewContext, encode_group
from vidvpr.media.ffmpeg import FfmpegInfo, FfmpegPool, find_ffmpeg
from vidvpr.media.view_video import describe_view_video

LOG = logging.getLogger(__name__)


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
) -> EncodeResult:
    """Encode and measure every cell not yet done, then rewrite the table and the RD plot.

    Progress counts cell-frames (JPEG cells twice: encoded, then measured); `on_status`
    hears which view and codec is being encoded.
    """
    validate_config(config)
    ffmpeg = ffmpeg or find_ffmpeg()
    require_encoders(config, ffmpeg)
    if config.vmaf and not ffmpeg.has_vmaf:
        LOG.warning("%s has no libvmaf filter; the VMAF column stays empty", ffmpeg.path)
    want_vmaf = config.vmaf and ffmpeg.has_vmaf
    statuses = plan_encode(inputs, Path(out_dir), config, want_vmaf)  # all checks before anything is written
    with removing_new_dirs(Path(out_dir)):
        return _encode_statuses(statuses, ensure_writable_dir(Path(out_dir)), config, ffmpeg, want_vmaf, on_start,
                                on_frames, on_status)


def _encode_statuses(statuses: list[CellStatus], out_dir: Path, config: EncodeConfig, ffmpeg: FfmpegInfo,
                     want_vmaf: bool, on_start: Callable[[int | None], None] | None,
                     on_frames: Callable[[int], None] | None, on_status: Callable[[str], None] | None) -> EncodeResult:
    by_view: dict[Path, dict[str, list[CellStatus]]] = {}
    for status in statuses:
        by_view.setdefault(status.cell.source.path, {}).setdefault(status.cell.codec, []).append(status)
    # per view, (cells planned, cells still to do) of each codec: threads follow the plan, so a
    # resumed run encodes with exactly the settings of an uninterrupted one
    jobs = [[(len(group), [s.cell for s in group if not s.done]) for group in codecs.values()]
            for codecs in by_view.values()]
    jobs = [[(planned, todo) for planned, todo in view if todo] for view in jobs]
    jobs = [view for view in jobs if view]
    if on_start:
        todo = [cell for view in jobs for _, cells in view for cell in cells]
        known = all(cell.source.frames for cell in todo)
        on_start(sum(cell.source.frames * (1 if cell.spec.encoder else 2) for cell in todo) if known else None)
    versions = {**runtime_versions(), "ffmpeg": ffmpeg.version, "ffmpeg_path": ffmpeg.path}
    cores = usable_cores()
    pool = FfmpegPool()
    ctx = ViewContext(ffmpeg, config, pool, want_vmaf, versions, on_frames, on_status)

    def work(view: list[tuple[int, list[Cell]]]) -> None:
        for planned, todo in view:
            encode_group(todo, encoder_threads(config.jobs * planned, cores), ctx)

    _run_jobs(jobs, work, config.jobs, pool)
    rows = table_rows(out_dir)
    table, table_json = write_table(rows, out_dir, describe_config(config))
    plot = plot_rd(rows, out_dir / PLOT_NAME)
    return EncodeResult(rows, [str(s.cell.video) for s in statuses if not s.done],
                        [str(s.cell.video) for s in statuses if s.done], table, table_json, plot)


def _run_jobs(jobs: list[Any], work: Callable[[Any], None], workers: int, pool: FfmpegPool) -> None:
    """Run view jobs, `workers` at once; the first failure or Ctrl-C stops all of them."""
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            work(job)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidvpr-encode") as executor:
        futures = [executor.submit(work, job) for job in jobs]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            pool.stop_all()
            for future in futures:
                future.cancel()
            raise
