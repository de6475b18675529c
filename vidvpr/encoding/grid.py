"""`vidvpr encode`: view videos → a resolution × QP grid of constant-QP encodes, rate and quality per cell.

Layout: ``OUT/<recording>/<view>/<res>/qp<NN>.mp4`` with a sidecar ``qp<NN>.json`` written last,
plus ``OUT/encodes.csv``, ``OUT/encodes.json`` and ``OUT/rd.png``. A cell is done when its
sidecar names the same parameter hash and input hash and the mp4 has the recorded size.

Per view, one ffmpeg process encodes every cell still to do (decode once, scale once per
resolution, ``split`` to one encoder per cell) and a second one measures them (quality.py).
Videos are written under temporary names and renamed when the view is complete; a crash or
Ctrl-C leaves nothing a rerun would take as done. Planning and argv building are pure
(encode_plan.py); this module is the I/O shell around them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidvpr.encoding.plan import (
    CODECS,
    DEFAULT_QP_SPEC,
    DEFAULT_RES_SPEC,
    GOP_SECONDS,
    SIDECAR_SCHEMA,
    Cell,
    EncodeConfig,
    EncodeTarget,
    Resolution,
    ViewSource,
    describe_config,
    encode_command,
    encoder_threads,
    usable_cores,
    frame_type_qps,
    parse_qp_spec,
    parse_rate_control,
    parse_resolutions,
    plan_grid,
    validate_config,
)
from vidvpr.core.errors import BadInput, OutputError, ProcessFailed, ToolMissing
from vidvpr.media.ffmpeg import FfmpegInfo, find_ffmpeg, stderr_tail
from vidvpr.core.provenance import (
    SLICE_SIDECAR_SCHEMA,
    atomic_output,
    command_line,
    ensure_writable_dir,
    file_record,
    read_json,
    runtime_versions,
    write_json_atomic,
)
from vidvpr.encoding.quality import MeasureTarget, measure_command, metrics_record, read_metrics, scale_chain
from vidvpr.encoding.rdreport import PLOT_NAME, plot_rd, row_from_sidecar, write_table
from vidvpr.media.video import encoder_settings_string, probe_video

__all__ = [  # the public API of `vidvpr encode` (pure parts re-exported from encode_plan)
    "CODECS", "DEFAULT_QP_SPEC", "DEFAULT_RES_SPEC", "GOP_SECONDS", "Cell", "CellStatus", "EncodeConfig",
    "EncodeResult", "Resolution", "ViewSource", "describe_view", "encode_grid", "parse_qp_spec", "parse_resolutions",
    "plan_encode", "plan_grid",
]

LOG = logging.getLogger(__name__)



@dataclass(frozen=True)
class ProcessRun:
    """Wall and CPU (user + system) seconds of one finished ffmpeg process."""

    wall_s: float
    cpu_s: float


class FfmpegPool:
    """Runs ffmpeg argument lists (several at once with --jobs), reporting `-progress` frame counts.

    `stop_all` kills every running process and refuses new ones: a Ctrl-C or a failing job
    stops the whole grid, and each job's partial outputs are removed as its error unwinds.
    """

    def __init__(self) -> None:
        self._live: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def run(self, argv: list[str], cwd: Path, what: str, on_frames: Callable[[int], None] | None = None) -> ProcessRun:
        """Run to completion; raise OutputError for a full disk, ProcessFailed for other failures."""
        if not isinstance(argv, list):
            raise TypeError("ffmpeg commands are argument lists, never shell strings")
        with tempfile.TemporaryFile() as stderr:
            started = time.perf_counter()
            with self._lock:
                if self._stopped:
                    raise ProcessFailed(f"{what}: not started, the run is stopping")
                proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=stderr, text=True)
                self._live.add(proc)
            try:
                _follow_progress(proc, on_frames)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
            except BaseException:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait()
                raise
            finally:
                with self._lock:
                    self._live.discard(proc)
                if proc.stdout:
                    proc.stdout.close()
            if proc.returncode != 0:
                stderr.seek(0)
                text = stderr.read().decode("utf-8", "replace")
                if "No space left on device" in text:
                    raise OutputError(f"{what}: disk full (No space left on device)")
                raise ProcessFailed(f"{what}: ffmpeg exited with {proc.returncode}: {stderr_tail(text) or 'no message'}")
        return ProcessRun(time.perf_counter() - started, usage.ru_utime + usage.ru_stime)

    def stop_all(self) -> None:
        with self._lock:
            self._stopped = True
            for proc in self._live:
                with contextlib.suppress(OSError):
                    proc.kill()


def _follow_progress(proc: subprocess.Popen[str], on_frames: Callable[[int], None] | None) -> None:
    """Read `-progress pipe:1` to its end, reporting new frames (of the process's first output)."""
    seen = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if on_frames and line.startswith("frame="):
            with contextlib.suppress(ValueError):
                frame = int(line[6:])
                if frame > seen:
                    on_frames(frame - seen)
                    seen = frame


def describe_view(path: Path) -> ViewSource:
    """Probe and hash an input; warn when it is not a view video made by `vidvpr slice`.

    The recording is the input's folder name and the view its file stem, as in slice's
    ``OUT/<recording>/<view>.mp4``.
    """
    path = Path(path)
    info = probe_video(path)
    record = file_record(path)
    meta = read_json(path.with_suffix(".json"))
    is_view = bool(meta and meta.get("schema") == SLICE_SIDECAR_SCHEMA and meta.get("kind") == "view_video"
                   and meta.get("output", {}).get("bytes") == record["bytes"])
    if not is_view:
        LOG.warning("%s: not a view video made by `vidvpr slice` (no matching %s sidecar); encoding it anyway",
                    path, SLICE_SIDECAR_SCHEMA)
    return ViewSource(path=path, recording=path.resolve().parent.name or "recording",
                      view=str(meta["view"]) if is_view else path.stem, width=info.width, height=info.height,
                      fps=info.fps, frames=info.frames, bytes=record["bytes"], hash=record["hash"],
                      slice_sidecar=path.with_suffix(".json") if is_view else None)


def stream_timestamps(path: Path) -> tuple[list[Fraction], int]:
    """Presentation times (s, exact) of every frame in order, and the stream's payload bytes."""
    import av

    times: list[Fraction] = []
    payload = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                payload += packet.size
                stamp = packet.pts if packet.pts is not None else packet.dts
                times.append(Fraction(stamp or 0) * stream.time_base)
    except (av.error.FFmpegError, IndexError) as exc:
        raise BadInput(f"{path}: cannot read its video stream ({exc})") from exc
    return sorted(times), payload


def cell_done(cell: Cell, want_vmaf: bool) -> bool:
    """A cell is done when its sidecar matches parameters, input and video size (and has VMAF if wanted)."""
    meta = read_json(cell.sidecar)
    return bool(
        meta and cell.video.exists() and meta.get("params_hash") == cell.params_hash
        and meta.get("input", {}).get("hash") == cell.source.hash
        and meta.get("output", {}).get("bytes") == cell.video.stat().st_size
        and (not want_vmaf or meta.get("metrics", {}).get("vmaf") is not None)
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
    sources = [describe_view(Path(path)) for path in inputs]
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
    """Encode and measure every cell not yet done, then write the table and the RD plot.

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
    out_dir = ensure_writable_dir(Path(out_dir))
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
    rows = []
    for status in statuses:
        meta = read_json(status.cell.sidecar)
        if meta is None:
            raise OutputError(f"{status.cell.sidecar}: sidecar vanished while the grid was running")
        rows.append(row_from_sidecar(meta, out_dir, status.cell.sidecar))
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
        metrics = [read_metrics(Path(work), index, want_vmaf, len(ref_times)) for index in range(len(cells))]
        settings = [encoder_settings_string(tmp) for tmp in tmps]
        for cell, text in zip(cells, settings):
            _check_constant_qp(cell, text)
    # leaving the ExitStack renamed every video into place; each sidecar now marks its cell done
    duration_s = _duration_s(ref_times, source.fps)
    for index, cell in enumerate(cells):
        write_json_atomic(cell.sidecar, _sidecar(
            cell, config, threads, settings[index], payloads[index], duration_s, len(ref_times),
            metrics_record(metrics[index], cell.width, cell.height, ffmpeg.has_vmaf),
            encoded, measured, len(cells), versions))


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
             frames: int, metrics: dict[str, Any], encoded: ProcessRun, measured: ProcessRun, cells_in_process: int,
             versions: dict[str, str]) -> dict[str, Any]:
    rate_control = parse_rate_control(settings)
    codec = CODECS[config.codec]
    return {
        "schema": SIDECAR_SCHEMA,
        "kind": "encoded_cell",
        "recording": cell.source.recording, "view": cell.source.view,
        "resolution": cell.resolution, "width": cell.width, "height": cell.height,
        "qp": cell.qp, "codec": config.codec, "preset": config.preset, "flat_qp": config.flat_qp, "gop": cell.gop,
        "frame_qp": {**frame_type_qps(cell.qp, rate_control.get("ipratio", 1.0), rate_control.get("pbratio", 1.0),
                                      codec.qp_max),
                     "rule": "constant QP: I = qp - 6*log2(ipratio), B = qp + 6*log2(pbratio) (+0.5, truncated), "
                             "reference B = (B + P) // 2; ratios read back from the stream's settings"},
        "input": cell.source.record(),
        "output": {"path": cell.video.name, "bytes": cell.video.stat().st_size, "stream_bytes": payload},
        "frames": frames,
        "timestamps": {"equal_to_input": True, "check": "every frame's presentation time equals the input's, exactly",
                       "input_fps": str(cell.source.fps)},
        "duration_s": round(duration_s, 6),
        "kbps": round(payload * 8 / duration_s / 1000, 3) if duration_s else None,
        "encoder_settings": settings,
        "encoder_args": codec.args(cell.qp, config.preset, cell.gop, config.flat_qp, threads),
        "filter": scale_chain(cell.width, cell.height),
        "metrics": metrics,
        "encode": {"encode_s": round(encoded.wall_s / cells_in_process, 3), "process_wall_s": round(encoded.wall_s, 3),
                   "process_cpu_s": round(encoded.cpu_s, 3), "cells_in_process": cells_in_process,
                   "threads_per_encoder": threads,
                   "note": "encode_s = wall time of the process that encoded this view's cells / their number"},
        "measure": {"process_wall_s": round(measured.wall_s, 3), "process_cpu_s": round(measured.cpu_s, 3),
                    "cells_in_process": cells_in_process},
        "params_hash": cell.params_hash,
        "params": cell.params,
        "versions": versions,
        "command": command_line(),
    }
