"""One view's cells of one codec: encode, check frame-for-frame, measure, verify, write sidecars.

ffmpeg codecs: one process encodes every cell and measures each through a loopback decoder as
its packets come (quality.measure_args). JPEG: OpenCV encodes each frame (jpeg.py), then one
ffmpeg pass measures the cells. Videos are written under temporary names and renamed when the
group is complete; each sidecar, written last, marks its cell done.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vidvpr.core.atomic import atomic_output, ensure_writable_dir
from vidvpr.core.errors import ProcessFailed
from vidvpr.core.provenance import command_line
from vidvpr.core.sidecars import (
    CellOutputRecord,
    CellSidecar,
    CellTimestamps,
    EncodeProcessRecord,
    MeasureRecord,
    MetricsRecord,
)
from vidvpr.encoding.jpeg import JPEG_PIX_FMT, encode_jpeg_cells
from vidvpr.encoding.plan import Cell, EncodeConfig, EncodeTarget, encode_command
from vidvpr.encoding.quality import (
    CellMetrics,
    MeasureTarget,
    VmafSampling,
    measure_args,
    measure_command,
    metrics_record,
    read_metrics,
    scale_chain,
    sws_matrix,
    to_reference_format,
    vmaf_sampling,
)
from vidvpr.encoding.speed import split_thread_cpu, speed
from vidvpr.encoding.verify import Verified, verify_cell
from vidvpr.media.decode import stream_timestamps
from vidvpr.media.ffmpeg import FfmpegInfo, FfmpegPool, ProcessRun

LOOPBACK = "the encode process: a loopback decoder per encoder, compared as its packets come"
SEPARATE = "a separate ffmpeg pass over the finished cell files"
SPEED_NOTE = ("cpu_s = this cell's encoder thread + an even share of the process's shared encode work (view "
              "decoding, scaling, encoder-library worker threads), read from /proc every 0.1 s; fps = frames / "
              "cpu_s (one core); encode_s = process wall time / cells in it (measuring included when in-process)")


@dataclass(frozen=True)
class ViewContext:
    """What every group of one view shares."""

    ffmpeg: FfmpegInfo
    config: EncodeConfig
    pool: FfmpegPool
    want_vmaf: bool
    versions: dict[str, str]
    on_frames: Callable[[int], None] | None
    on_status: Callable[[str], None] | None


@dataclass
class _Measured:
    metrics: list[CellMetrics]
    targets: list[MeasureTarget]
    cpu_s: list[float | None]
    encoded: ProcessRun
    measure: MeasureRecord
    sampling: VmafSampling


def encode_group(cells: list[Cell], threads: int, ctx: ViewContext) -> None:
    """Encode, verify and measure one view's cells of one codec still to do; write their sidecars last."""
    source = cells[0].source
    for cell in cells:
        ensure_writable_dir(cell.video.parent)
        with contextlib.suppress(FileNotFoundError):
            cell.sidecar.unlink()  # a sidecar must never vouch for a video it did not describe
    ref_times, _ = stream_timestamps(source.path)
    sampling = vmaf_sampling(ctx.config.vmaf_every, len(ref_times))
    matrix = sws_matrix(source.sidecar.encoding.color.space if source.sidecar else "unknown")
    out_dir = cells[0].video.parents[4 if cells[0].spec.cell_folder else 3]
    where = f"{source.recording}/{source.view} ({cells[0].codec}) into {out_dir}"
    if ctx.on_status:
        ctx.on_status(f"{cells[0].codec} {source.view} ({len(cells)} cells)")
    with tempfile.TemporaryDirectory(prefix="vidvpr-encode-") as work, contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_output(cell.video)) for cell in cells]
        run = _run_jpeg if cells[0].spec.encoder is None else _run_ffmpeg
        measured = run(cells, tmps, threads, ctx, Path(work), sampling, matrix, where, ref_times)
        payloads = []
        for cell, tmp in zip(cells, tmps):
            times, payload = stream_timestamps(tmp)
            if times != ref_times:
                raise ProcessFailed(f"{cell.name}: frames differ from the input's ({len(times)} vs {len(ref_times)} "
                                    "frames, or different timestamps); not frame-for-frame")
            payloads.append(payload)
        verified = [verify_cell(cell, tmp, ctx.ffmpeg.path, metrics)
                    for cell, tmp, metrics in zip(cells, tmps, measured.metrics)]
    # leaving the ExitStack renamed every video into place; each sidecar now marks its cell done
    duration_s = _duration_s(ref_times, source.fps)
    for index, cell in enumerate(cells):
        target = measured.targets[index]
        record = metrics_record(measured.metrics[index], cell.width, cell.height, ctx.config.vmaf, ctx.ffmpeg.has_vmaf,
                                sampling, measured.measure.mode,
                                to_reference_format(target.decoded_pix_fmt, target.full_range, matrix))
        _sidecar(cell, ctx, threads, verified[index], payloads[index], duration_s, len(ref_times), record,
                 measured, index).save(cell.sidecar)


def _run_ffmpeg(cells: list[Cell], tmps: list[Path], threads: int, ctx: ViewContext, work: Path,
                sampling: VmafSampling, matrix: str, where: str, ref_times: Sequence[Fraction]) -> _Measured:
    source = cells[0].source
    decoded = cells[0].spec.input_pix_fmt  # what the encoder was fed is what its decoder gives back
    targets = [MeasureTarget(cell.width, cell.height, tmp, decoded) for cell, tmp in zip(cells, tmps)]
    encode_targets = [EncodeTarget(cell.width, cell.height, cell.qp, tmp, cell.codec, cell.preset)
                      for cell, tmp in zip(cells, tmps)]
    argv = encode_command(ctx.ffmpeg.path, source.path, encode_targets, ctx.config, cells[0].gop, threads,
                          measure_args(0, targets, ctx.want_vmaf, sampling, matrix))
    counted = (lambda n: ctx.on_frames(n * len(cells))) if ctx.on_frames else None
    encoded = ctx.pool.run(argv, work, f"encoding and measuring {where}", counted)
    metrics = [read_metrics(work, i, ctx.want_vmaf and t.vmaf_measurable, len(ref_times), sampling)
               for i, t in enumerate(targets)]
    split = split_thread_cpu(encoded.threads, len(cells), encoded.cpu_s)
    cpu_s = [round(split.cell_cpu_s(i), 3) if split else None for i in range(len(cells))]
    measure = MeasureRecord(mode=LOOPBACK, cpu_s=round(split.measure, 3) if split else None,
                            process_wall_s=round(encoded.wall_s, 3), cells_in_process=len(cells))
    return _Measured(metrics, targets, cpu_s, encoded, measure, sampling)


def _run_jpeg(cells: list[Cell], tmps: list[Path], threads: int, ctx: ViewContext, work: Path,
              sampling: VmafSampling, matrix: str, where: str, ref_times: Sequence[Fraction]) -> _Measured:
    source = cells[0].source
    wall = time.perf_counter()
    cpu_s = encode_jpeg_cells(ctx.ffmpeg.path, cells, tmps, ref_times, matrix, ctx.pool, work, ctx.on_frames)
    encoded = ProcessRun(time.perf_counter() - wall, sum(cpu_s))
    targets = [MeasureTarget(cell.width, cell.height, tmp, JPEG_PIX_FMT, full_range=True)
               for cell, tmp in zip(cells, tmps)]
    counted = (lambda n: ctx.on_frames(n * len(cells))) if ctx.on_frames else None
    run = ctx.pool.run(measure_command(ctx.ffmpeg.path, source.path, targets, ctx.want_vmaf, sampling, matrix), work,
                       f"measuring {where}", counted)
    metrics = [read_metrics(work, i, ctx.want_vmaf and t.vmaf_measurable, len(ref_times), sampling)
               for i, t in enumerate(targets)]
    measure = MeasureRecord(mode=SEPARATE, cpu_s=round(run.cpu_s, 3), process_wall_s=round(run.wall_s, 3),
                            cells_in_process=len(cells))
    return _Measured(metrics, targets, [round(c, 3) for c in cpu_s], encoded, measure, sampling)


def _duration_s(times: Sequence[Fraction], fps: Fraction) -> float:
    """Stream duration: frames × mean frame interval (n / fps for constant frame rate)."""
    if len(times) > 1:
        return float((times[-1] - times[0]) * len(times) / (len(times) - 1))
    return float(1 / fps) if fps else 0.0


def _sidecar(cell: Cell, ctx: ViewContext, threads: int, verified: Verified, payload: int, duration_s: float,
             frames: int, metrics: MetricsRecord, measured: _Measured, index: int) -> CellSidecar:
    spec = cell.spec
    cells_in_process = len(measured.metrics)
    fps, realtime = speed(frames, measured.cpu_s[index], float(cell.source.fps))
    encoded = measured.encoded
    return CellSidecar(
        recording=cell.source.recording, view=cell.source.view, resolution=cell.resolution, width=cell.width,
        height=cell.height, qp=cell.qp, quantiser=spec.quantiser.name, codec=cell.codec, preset=cell.preset,
        flat_qp=cell.flat_qp, gop=cell.gop, frame_qp=verified.frame_qp, quantiser_check=verified.check,
        input=cell.source.record(),
        output=CellOutputRecord(path=cell.video.name, bytes=cell.video.stat().st_size, stream_bytes=payload),
        frames=frames,
        timestamps=CellTimestamps(equal_to_input=True, input_fps=str(cell.source.fps),
                                  check="every frame's presentation time equals the input's, exactly"),
        duration_s=round(duration_s, 6),
        kbps=round(payload * 8 / duration_s / 1000, 3) if duration_s else None,
        encoder_settings=verified.settings,
        encoder_args=spec.args(cell.qp, cell.preset, cell.gop, cell.flat_qp, threads) if spec.args else
        ["opencv.imencode", ".jpg", f"IMWRITE_JPEG_QUALITY={cell.qp}", "IMWRITE_JPEG_SAMPLING_FACTOR=4:2:0"],
        filter=scale_chain(cell.width, cell.height) + (f",format={spec.input_pix_fmt}"
                                                       if spec.input_pix_fmt != "yuv420p" else ""),
        metrics=metrics,
        encode=EncodeProcessRecord(encode_s=round(encoded.wall_s / cells_in_process, 3),
                                   process_wall_s=round(encoded.wall_s, 3), process_cpu_s=round(encoded.cpu_s, 3),
                                   cells_in_process=cells_in_process, threads_per_encoder=threads,
                                   cpu_s=measured.cpu_s[index], fps=fps, realtime_factor=realtime, note=SPEED_NOTE),
        measure=measured.measure,
        params_hash=cell.params_hash,
        params=cell.params,
        versions=ctx.versions,
        command=command_line(),
    )
