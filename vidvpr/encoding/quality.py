"""Quality of encoded cells against their reference: PSNR-Y, SSIM-Y and VMAF.

The reference of a cell is its view video scaled to the cell's size by `scale_chain`, the very
filter chain that fed the encoder, so the metrics measure what compression lost at that
resolution (not what the downscale lost). Cells are compared on their 8-bit luma: decoded
frames of other formats are first brought to `PIX_FMT` (10-bit by rounding, full-range JPEG
to limited range), see `to_reference_format`.

Two ways to run the same filters, built here: `measure_args` appends them to the encode
process (ffmpeg loopback decoders decode each encoder's packets as they come, so measuring
overlaps encoding and the view is decoded and scaled once), `measure_command` is a separate
pass over files (JPEG cells). One filter graph per cell size shares the scaled reference;
ffmpeg runs each graph in its own thread.

VMAF is computed on every `vmaf_every`-th frame (frames 0, N, 2N, ...; N lowered so that at least
MIN_VMAF_SCORED frames are scored). Each of those frames is fed with its two neighbours, so its
per-frame score is exactly what a full run gives it (the motion feature compares a frame with
the previous and next ones); the cell's VMAF is their mean.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidvpr.core.errors import ProcessFailed
from vidvpr.core.records import finite_or_none
from vidvpr.core.sidecars import MetricsRecord, VmafSamplingRecord
from vidvpr.media.metrics import psnr_db

SCALER = "bicubic"
PIX_FMT = "yuv420p"
VMAF_MODEL = "vmaf_v0.6.1"
VMAF_MIN_SIDE = 18  # libvmaf (ffmpeg 9) crashes on frames with a side of 16 px or less
PER_FRAME_DECIMALS = 4
MIN_VMAF_SCORED = 10  # VMAF sampling scores at least this many frames per cell (fewer frames: all of them)
SWS_MATRICES = ("bt601", "bt470", "smpte170m", "bt709", "fcc", "smpte240m", "bt2020")


def vmaf_measurable(width: int, height: int) -> bool:
    """Whether libvmaf can measure a cell of this size (it segfaults below VMAF_MIN_SIDE)."""
    return min(width, height) >= VMAF_MIN_SIDE


def scale_chain(width: int, height: int) -> str:
    """The one filter chain that makes both the encoder input and the metrics reference."""
    return f"scale={width}:{height}:flags={SCALER},format={PIX_FMT}"


def to_reference_format(decoded_pix_fmt: str, full_range: bool = False, matrix: str = "bt601") -> str:
    """Filters bringing a decoded cell to the reference's 8-bit limited-range yuv420p ("" if it is).

    Higher bit depths are rounded (no dither: v/4 rounded for 10 bits); full-range JPEG
    (BT.601 by JFIF) is converted to limited range in the reference's matrix.
    """
    if full_range:
        return f"scale=in_range=pc:out_range=tv:in_color_matrix=bt601:out_color_matrix={matrix},format={PIX_FMT},"
    if decoded_pix_fmt != PIX_FMT:
        return f"scale=sws_dither=none,format={PIX_FMT},"
    return ""


@dataclass(frozen=True)
class VmafSampling:
    """Which frames of a `frames`-long cell VMAF scores: 0, every, 2·every, ..."""

    every: int
    frames: int

    @property
    def scored(self) -> list[int]:
        return list(range(0, self.frames, self.every))

    @property
    def select_expr(self) -> str | None:
        """Frames fed to libvmaf: each scored frame with its neighbours (None: every frame)."""
        return None if self.every <= 3 else f"lt(mod(n+1\\,{self.every})\\,3)"

    @property
    def n_subsample(self) -> int:
        """libvmaf scores fed frames 0, n, 2n: every third fed frame is a scored one."""
        return self.every if self.every <= 3 else 3

    def fed_frames(self) -> list[int]:
        """The source frame of each fed index, in order."""
        if self.every <= 3:
            return list(range(self.frames))
        return [n for n in range(self.frames) if (n + 1) % self.every < 3]

    def record(self) -> VmafSamplingRecord:
        return VmafSamplingRecord(
            every=self.every, frames_scored=len(self.scored),
            rule="VMAF of frames 0, N, 2N, ... (N = every); each fed to libvmaf with its neighbours, so each "
                 "per-frame score equals a full run's; the cell's VMAF is their mean")


def vmaf_sampling(every: int, frames: int) -> VmafSampling:
    """VMAF on every `every`-th frame, or more often so that at least MIN_VMAF_SCORED frames are scored."""
    return VmafSampling(max(1, min(every, frames // MIN_VMAF_SCORED)), frames)


@dataclass(frozen=True)
class MeasureTarget:
    """An encoded cell to measure: its size, its decoded pixel format, and where its frames come from."""

    width: int
    height: int
    path: Path
    decoded_pix_fmt: str = PIX_FMT
    full_range: bool = False  # JPEG: decoded as full-range yuvj420p

    @property
    def vmaf_measurable(self) -> bool:
        return vmaf_measurable(self.width, self.height)


@dataclass
class CellMetrics:
    """Per-cell averages and per-frame values (PSNR in dB, SSIM in [0, 1], VMAF in [0, 100])."""

    frames: int
    psnr_y: float | None  # None when the cell is lossless (mean squared error 0)
    ssim_y: float
    vmaf: float | None
    per_frame: dict[str, list[float | None]] = field(default_factory=dict)
    vmaf_scored: int = 0


def _log_names(index: int) -> tuple[str, str, str]:
    return f"psnr{index}.log", f"ssim{index}.log", f"vmaf{index}.json"


def metric_graphs(reference: str, cells: Sequence[MeasureTarget], distorted: Sequence[str], vmaf: bool,
                  sampling: VmafSampling, matrix: str = "bt601") -> tuple[list[str], list[str]]:
    """(one filter graph per cell size, their output labels) comparing each cell with its reference.

    `reference` is the view's input label ("0:v"), `distorted[i]` cell i's ("dec:3", "2:v").
    Cell i writes psnr{i}.log, ssim{i}.log and vmaf{i}.json into the working directory.
    """
    graphs, outputs = [], []
    sizes = list(dict.fromkeys((cell.width, cell.height) for cell in cells))
    for g, (width, height) in enumerate(sizes):
        members = [i for i, cell in enumerate(cells) if (cell.width, cell.height) == (width, height)]
        with_vmaf = [i for i in members if vmaf and cells[i].vmaf_measurable]
        select = f"select='{sampling.select_expr}'," if sampling.select_expr else ""
        parts = [f"[{reference}]{scale_chain(width, height)},split={2 if with_vmaf else 1}[ref{g}y]"
                 + (f"[ref{g}v]" if with_vmaf else ""),
                 f"[ref{g}y]extractplanes=y,split={2 * len(members)}" + "".join(f"[r{i}p][r{i}s]" for i in members)]
        if with_vmaf:
            parts.append(f"[ref{g}v]{select}split={len(with_vmaf)}" + "".join(f"[r{i}v]" for i in with_vmaf))
        for i in members:
            psnr_log, ssim_log, vmaf_log = _log_names(i)
            chain = to_reference_format(cells[i].decoded_pix_fmt, cells[i].full_range, matrix)
            if i in with_vmaf:
                parts += [f"[{distorted[i]}]{chain}split=2[d{i}y][d{i}v]", f"[d{i}y]extractplanes=y[d{i}]",
                          f"[d{i}v]{select}null[d{i}s]",
                          f"[d{i}s][r{i}v]libvmaf=model='version={VMAF_MODEL}':n_threads=1"
                          f":n_subsample={sampling.n_subsample}:log_fmt=json:log_path={vmaf_log},nullsink"]
            else:
                parts.append(f"[{distorted[i]}]{chain}extractplanes=y[d{i}]")
            parts += [f"[d{i}][r{i}p]psnr=stats_file={psnr_log}[p{i}]", f"[p{i}][r{i}s]ssim=stats_file={ssim_log}[m{i}]"]
            outputs.append(f"[m{i}]")
        graphs.append(";".join(parts))
    return graphs, outputs


def measure_args(first_output: int, cells: Sequence[MeasureTarget], vmaf: bool, sampling: VmafSampling,
                 matrix: str = "bt601") -> list[str]:
    """ffmpeg options to append to an encode command whose outputs `first_output`, +1, ... are `cells`:
    a loopback decoder per encoder output, the metric graphs, and a null output for them."""
    # single-threaded loopback decoders: their CPU is then all in threads named dec<j> (speed.py)
    argv = [arg for i in range(len(cells)) for arg in ("-threads", "1", "-dec", f"{first_output + i}:0")]
    graphs, outputs = metric_graphs("0:v", cells, [f"dec:{i}" for i in range(len(cells))], vmaf, sampling, matrix)
    argv += [arg for graph in graphs for arg in ("-filter_complex", graph)]
    return argv + [arg for label in outputs for arg in ("-map", label)] + ["-f", "null", "-"]


def measure_command(ffmpeg_path: str, reference: Path, cells: Sequence[MeasureTarget], vmaf: bool,
                    sampling: VmafSampling, matrix: str = "bt601") -> list[str]:
    """ffmpeg argv measuring cell files against the view in a separate pass (the same graphs).

    Run it with `cwd` set to a scratch directory: the logs are written there.
    """
    if not cells:
        raise ValueError("measure_command needs at least one cell")
    argv = [ffmpeg_path, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1",
            "-i", str(Path(reference).resolve())]
    argv += [arg for cell in cells for arg in ("-i", str(Path(cell.path).resolve()))]
    graphs, outputs = metric_graphs("0:v", cells, [f"{i + 1}:v" for i in range(len(cells))], vmaf, sampling, matrix)
    argv += [arg for graph in graphs for arg in ("-filter_complex", graph)]
    return argv + [arg for label in outputs for arg in ("-map", label)] + ["-f", "null", "-"]


def _fields(line: str) -> dict[str, str]:
    return dict(part.split(":", 1) for part in line.split() if ":" in part)


def parse_psnr_stats(text: str) -> list[float]:
    """Per-frame luma mean squared errors from a `psnr` filter stats file."""
    return [float(_fields(line)["mse_y"]) for line in text.splitlines() if line.startswith("n:")]


def parse_ssim_stats(text: str) -> list[float]:
    """Per-frame luma SSIM from an `ssim` filter stats file."""
    return [float(_fields(line)["Y"]) for line in text.splitlines() if line.startswith("n:")]


def parse_vmaf_log(text: str) -> list[tuple[int, float]]:
    """(fed frame index, VMAF) of every frame a libvmaf JSON log scored."""
    return [(int(frame["frameNum"]), float(frame["metrics"]["vmaf"])) for frame in json.loads(text)["frames"]]


def read_metrics(work_dir: Path, index: int, vmaf: bool, expected_frames: int,
                 sampling: VmafSampling | None = None) -> CellMetrics:
    """Parse cell `index`'s logs. PSNR-Y is ffmpeg's convention (PSNR of the mean MSE over frames);
    SSIM-Y is the mean over frames, VMAF the mean over the scored frames. Raises ProcessFailed if
    frames are missing."""
    sampling = sampling or VmafSampling(1, expected_frames)
    psnr_log, ssim_log, vmaf_log = (Path(work_dir) / name for name in _log_names(index))
    try:
        mse_y = parse_psnr_stats(psnr_log.read_text())
        ssim_y = parse_ssim_stats(ssim_log.read_text())
        fed = sampling.fed_frames()
        vmaf_scores = {fed[n]: value for n, value in parse_vmaf_log(vmaf_log.read_text())} if vmaf else {}
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise ProcessFailed(f"quality logs of cell {index} are missing or malformed ({exc})") from exc
    counts = {"psnr": len(mse_y), "ssim": len(ssim_y)}
    if any(count != expected_frames for count in counts.values()) or (vmaf and sorted(vmaf_scores) != sampling.scored):
        found = {**counts, **({"vmaf": len(vmaf_scores)} if vmaf else {})}
        raise ProcessFailed(f"quality pass compared {found} frames, expected {expected_frames} per metric"
                            + (f" ({len(sampling.scored)} for VMAF)" if vmaf else ""))
    per_frame: dict[str, list[float | None]] = {
        "psnr_y": [_round(finite_or_none(psnr_db(mse))) for mse in mse_y],
        "ssim_y": [_round(value) for value in ssim_y],
    }
    if vmaf:
        per_frame["vmaf"] = [_round(vmaf_scores[n]) if n in vmaf_scores else None for n in range(expected_frames)]
    return CellMetrics(
        frames=expected_frames,
        psnr_y=_round(finite_or_none(psnr_db(sum(mse_y) / len(mse_y)))),
        ssim_y=_round(sum(ssim_y) / len(ssim_y)),  # type: ignore[arg-type]
        vmaf=_round(sum(vmaf_scores.values()) / len(vmaf_scores)) if vmaf else None,
        per_frame=per_frame,
        vmaf_scored=len(vmaf_scores),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, PER_FRAME_DECIMALS)


def metrics_record(metrics: CellMetrics, width: int, height: int, vmaf_wanted: bool, vmaf_available: bool,
                   sampling: VmafSampling, measured_in: str, to_reference: str = "") -> MetricsRecord:
    """How a cell was measured and what came out, as stored in its sidecar."""
    if metrics.vmaf is not None:
        note = None
    elif not vmaf_wanted:
        note = "turned off (--no-vmaf)"
    elif not vmaf_available:
        note = "libvmaf not available in this ffmpeg"
    else:
        note = f"cell smaller than {VMAF_MIN_SIDE} px on a side: libvmaf cannot measure it"
    return MetricsRecord(
        psnr_y=metrics.psnr_y,
        ssim_y=metrics.ssim_y,
        vmaf=metrics.vmaf,
        frames_compared=metrics.frames,
        reference=f"the input view video through '{scale_chain(width, height)}' (the encoder's own input)",
        decoded_to_reference=to_reference.rstrip(",") or None,
        measured_in=measured_in,
        psnr_y_definition="10*log10(255^2 / mean over frames of luma MSE) (ffmpeg psnr filter convention)",
        ssim_y_definition="mean over frames of luma SSIM (ffmpeg ssim filter)",
        vmaf_model=VMAF_MODEL if metrics.vmaf is not None else None,
        vmaf_note=note,
        vmaf_sampling=sampling.record() if metrics.vmaf is not None else None,
        per_frame=metrics.per_frame,
    )


def sws_matrix(colour_space: str) -> str:
    """The swscale matrix name of a view's colour space tag (untagged: BT.601, swscale's default)."""
    return colour_space if colour_space in SWS_MATRICES else "bt601"
