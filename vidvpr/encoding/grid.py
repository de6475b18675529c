"""`vidvpr encode`: view videos → a resolution × QP grid of constant-QP encodes, rate and quality per cell.

Layout: ``OUT/<recording>/<view>/<res>/qp<NN>.mp4`` with a sidecar ``qp<NN>.json`` written last,
plus ``OUT/encodes.csv``, ``OUT/encodes.json`` and ``OUT/rd.png`` describing every finished cell
under OUT. A cell is done when its sidecar names the same parameter hash and input hash and the
mp4 has the recorded size.

Per view, one ffmpeg process encodes every cell still to do (decode once, scale once per
resolution, ``split`` to one encoder per cell) and a second one measures them (quality.py).
Videos are written under temporary names and renamed when the view is complete; a crash or
Ctrl-C leaves nothing a rerun would take as done. Planning and argv building are pure
(plan.py); this module is the I/O shell around them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import atomic_output, ensure_writable_dir, removing_new_dirs
from vidvpr.core.errors import BadInput, ProcessFailed, ToolMissing
from vidvpr.core.provenance import command_line, runtime_versions
from vidvpr.core.sidecars import CellOutputRecord, CellSidecar, CellTimestamps, EncodeProcessRecord, FrameQpRecord, ProcessRecord
from vidvpr.core.threads import encoder_threads, usable_cores
from vidvpr.encoding.plan import (
    CODECS,
    Cell,
    EncodeConfig,
    EncodeTarget,
    describe_config,
    encode_command,
    frame_type_qps,
    parse_rate_control,
    plan_grid,
    validate_config,
)
from vidvpr.encoding.quality import MeasureTarget, measure_command, metrics_record, read_metrics, scale_chain
from vidvpr.encoding.rdplot import PLOT_NAME, plot_rd
from vidvpr.encoding.table import table_rows, write_table
from vidvpr.media.decode import stream_timestamps
from vidvpr.media.ffmpeg import FfmpegInfo, FfmpegPool, ProcessRun, find_ffmpeg
from vidvpr.media.settings import encoder_settings_string
from vidvpr.media.view_video import describe_view_video

LOG = logging.getLogger(__name__)


def cell_done(cell: Cell, want_vmaf: bool) -> bool:
    """A cell is done when its sidecar matches parameters, input and video size (and has VMAF if wanted)."""
    meta = CellSidecar.load_or_none(cell.sidecar)
    return bool(
        meta and cell.video.is_file() and meta.params_hash == cell.params_hash
        and meta.input.hash == cell.source.hash and meta.output.bytes == cell.video.stat().st_size
        and (not want_vmaf or meta.metrics.vmaf is not None or meta.metrics.vmaf_note is not None
             and "cannot measure" in meta.metrics.vmaf_note)
    )


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
    return [CellStatus(cell, not config.force and cell_done(cell, want_vmaf))
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

    Progress counts cell-frames: each frame of each cell once when encoded and once when
    measured; `on_status` hears which view is being encoded or measured.
    """
    validate_config(config)
    ffmpeg = ffmpeg or find_ffmpeg()
    if config.codec not in ffmpeg.encoders:
        raise ToolMissing(f"{ffmpeg.path} has no {config.codec} encoder; use --codec libx264 or another ffmpeg")
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
    by_view: dict[Path, list[CellStatus]] = {}
    for status in statuses:
        by_view.setdefault(status.cell.source.path, []).append(status)
    # (cells planned for the view, cells still to do): threads follow the plan, so a resumed
    # run encodes with exactly the settings of an uninterrupted one
    jobs = [(len(group), [s.cell for s in group if not s.done]) for group in by_view.values()]
    jobs = [(planned, todo) for planned, todo in jobs if todo]
    if on_start:
        known = all(todo[0].source.frames for _, todo in jobs)
        on_start(2 * sum(len(todo) * todo[0].source.frames for _, todo in jobs) if known else None)
    versions = {**runtime_versions(), "ffmpeg": ffmpeg.version, "ffmpeg_path": ffmpeg.path}
    cores = usable_cores()
    pool = FfmpegPool()

    def work(job: tuple[int, list[Cell]]) -> None:
        planned, todo = job
        threads = encoder_threads(config.jobs * planned, cores)
        _encode_view(todo, ffmpeg, config, pool, threads, want_vmaf, on_frames, on_status, versions)

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


def _encode_view(cells: list[Cell], ffmpeg: FfmpegInfo, config: EncodeConfig, pool: FfmpegPool, threads: int,
                 want_vmaf: bool, on_frames: Callable[[int], None] | None,
                 on_status: Callable[[str], None] | None, versions: dict[str, str]) -> None:
    """Encode, verify and measure the cells of one view still to do; write their sidecars last.

    `threads` is each encoder's thread count and libvmaf's.
    """
    source = cells[0].source
    for cell in cells:
        ensure_writable_dir(cell.video.parent)
        with contextlib.suppress(FileNotFoundError):
            cell.sidecar.unlink()  # a sidecar must never vouch for a video it did not describe
    ref_times, _ = stream_timestamps(source.path)
    counted = (lambda n: on_frames(n * len(cells))) if on_frames else None
    where = f"{source.recording}/{source.view} into {cells[0].video.parents[3]}"
    with tempfile.TemporaryDirectory(prefix="vidvpr-encode-") as work, contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_output(cell.video)) for cell in cells]
        targets = [EncodeTarget(cell.width, cell.height, cell.qp, tmp) for cell, tmp in zip(cells, tmps)]
        argv = encode_command(ffmpeg.path, source.path, targets, config, cells[0].gop, threads)
        if on_status:
            on_status(f"encode {source.view} ({len(cells)} cells)")
        encoded = pool.run(argv, Path(work), f"encoding {where}", counted)
        payloads = []
        for cell, tmp in zip(cells, tmps):
            times, payload = stream_timestamps(tmp)
            if times != ref_times:
                raise ProcessFailed(f"{cell.name}: frames differ from the input's ({len(times)} vs {len(ref_times)} "
                                    "frames, or different timestamps); not frame-for-frame")
            payloads.append(payload)
        targets_measured = [MeasureTarget(cell.width, cell.height, tmp) for cell, tmp in zip(cells, tmps)]
        if on_status:
            on_status(f"measure {source.view} ({len(cells)} cells)")
        measured = pool.run(measure_command(ffmpeg.path, source.path, targets_measured, want_vmaf, threads), Path(work),
                            f"measuring {where}", counted)
        metrics = [read_metrics(Path(work), index, want_vmaf and target.vmaf_measurable, len(ref_times))
                   for index, target in enumerate(targets_measured)]
        settings = [encoder_settings_string(tmp) for tmp in tmps]
        for cell, text in zip(cells, settings):
            _check_constant_qp(cell, text)
    # leaving the ExitStack renamed every video into place; each sidecar now marks its cell done
    duration_s = _duration_s(ref_times, source.fps)
    for index, cell in enumerate(cells):
        record = metrics_record(metrics[index], cell.width, cell.height, config.vmaf, ffmpeg.has_vmaf)
        _sidecar(cell, config, threads, settings[index], payloads[index], duration_s, len(ref_times), record,
                 encoded, measured, len(cells), versions).save(cell.sidecar)


def _check_constant_qp(cell: Cell, settings: str | None) -> None:
    """The QP asked for is the QP the encoder used: its settings string says so, in constant-QP mode."""
    rate_control = parse_rate_control(settings)
    if rate_control.get("qp") != cell.qp or not re.search(r"\brc=cqp\b", settings or ""):
        found = "no settings string found" if settings is None else f"found {rate_control}"
        raise ProcessFailed(f"{cell.name}: the stream's encoder settings do not say rc=cqp qp={cell.qp} ({found})")


def _duration_s(times: Sequence[Fraction], fps: Fraction) -> float:
    """Stream duration: frames × mean frame interval (n / fps for constant frame rate)."""
    if len(times) > 1:
        return float((times[-1] - times[0]) * len(times) / (len(times) - 1))
    return float(1 / fps) if fps else 0.0


def _sidecar(cell: Cell, config: EncodeConfig, threads: int, settings: str | None, payload: int, duration_s: float,
             frames: int, metrics: Any, encoded: ProcessRun, measured: ProcessRun, cells_in_process: int,
             versions: dict[str, str]) -> CellSidecar:
    rate_control = parse_rate_control(settings)
    codec = CODECS[config.codec]
    qps = frame_type_qps(cell.qp, rate_control.get("ipratio", 1.0), rate_control.get("pbratio", 1.0), codec.qp_max)
    return CellSidecar(
        recording=cell.source.recording, view=cell.source.view, resolution=cell.resolution, width=cell.width,
        height=cell.height, qp=cell.qp, codec=config.codec, preset=config.preset, flat_qp=config.flat_qp,
        gop=cell.gop,
        frame_qp=FrameQpRecord(**qps, rule="constant QP: I = qp - 6*log2(ipratio), B = qp + 6*log2(pbratio) "
                                           "(+0.5, truncated), reference B = (B + P) // 2; ratios read back from "
                                           "the stream's settings"),
        input=cell.source.record(),
        output=CellOutputRecord(path=cell.video.name, bytes=cell.video.stat().st_size, stream_bytes=payload),
        frames=frames,
        timestamps=CellTimestamps(equal_to_input=True, input_fps=str(cell.source.fps),
                                  check="every frame's presentation time equals the input's, exactly"),
        duration_s=round(duration_s, 6),
        kbps=round(payload * 8 / duration_s / 1000, 3) if duration_s else None,
        encoder_settings=settings,
        encoder_args=codec.args(cell.qp, config.preset, cell.gop, config.flat_qp, threads),
        filter=scale_chain(cell.width, cell.height),
        metrics=metrics,
        encode=EncodeProcessRecord(encode_s=round(encoded.wall_s / cells_in_process, 3),
                                   process_wall_s=round(encoded.wall_s, 3), process_cpu_s=round(encoded.cpu_s, 3),
                                   cells_in_process=cells_in_process, threads_per_encoder=threads,
                                   note="encode_s = wall time of the process that encoded this view's cells / "
                                        "their number"),
        measure=ProcessRecord(process_wall_s=round(measured.wall_s, 3), process_cpu_s=round(measured.cpu_s, 3),
                              cells_in_process=cells_in_process),
        params_hash=cell.params_hash,
        params=cell.params,
        versions=versions,
        command=command_line(),
    )
