"""The pure half of `vidvpr encode`: options, parsing, the grid plan and ffmpeg argument lists.

No I/O happens here (encoding.py runs the plan). Cells live at
``OUT/<recording>/<view>/<res>/qp<NN>.mp4``; one ffmpeg process per view decodes it once,
scales once per resolution and splits to one constant-QP encoder per cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import params_hash
from vidvpr.core.sidecars import CellSidecar
from vidvpr.encoding.quality import PIX_FMT, scale_chain
from vidvpr.media.codecs import X26X_PRESETS, X26X_QP_RANGE
from vidvpr.media.view_video import ViewVideo

# Bump when a change to the encoder or measuring pipeline changes a cell made from the same
# view and options: cells recorded with an older version are redone, not kept as finished.
# 2: typed sidecars; VMAF skipped (not crashed) on cells under 18 px.
ENCODE_OUTPUT_VERSION = 2
DEFAULT_QP_SPEC = "20..50"
DEFAULT_QP_STEP = 5
DEFAULT_RES_SPEC = "1080p,720p,480p,360p"  # --res default: these, where not above the view's size
NAMED_HEIGHTS = {"360p": 360, "480p": 480, "720p": 720, "1080p": 1080}
GOP_SECONDS = 2.0  # default keyframe interval: 2 s of frames at the view's frame rate
FPS_WHEN_UNKNOWN = 30  # for the default GOP of a video whose container gives no frame rate
MIN_SIDE = 16


def _x264_args(qp: int, preset: str, gop: int, flat_qp: bool, threads: int) -> list[str]:
    args = ["-c:v", "libx264", "-preset", preset, "-qp", str(qp), "-g", str(gop), "-keyint_min", str(gop),
            "-sc_threshold", "0", "-threads", str(threads)]
    return args + (["-x264-params", "ipratio=1.0:pbratio=1.0"] if flat_qp else [])


def _x265_args(qp: int, preset: str, gop: int, flat_qp: bool, threads: int) -> list[str]:
    params = [f"qp={qp}", f"keyint={gop}", f"min-keyint={gop}", "scenecut=0", "open-gop=0", f"pools={threads}",
              "log-level=error"] + (["ipratio=1.0", "pbratio=1.0"] if flat_qp else [])
    return ["-c:v", "libx265", "-preset", preset, "-x265-params", ":".join(params)]


@dataclass(frozen=True)
class CodecSpec:
    """A constant-QP encoder: its QP range and how ffmpeg drives it."""

    name: str
    qp_min: int
    qp_max: int
    args: Callable[[int, str, int, bool, int], list[str]]


CODECS = {
    "libx264": CodecSpec("libx264", *X26X_QP_RANGE, _x264_args),
    "libx265": CodecSpec("libx265", *X26X_QP_RANGE, _x265_args),
}


@dataclass(frozen=True)
class Resolution:
    """A target size: a name fixes the height (width follows the view's aspect), WxH fixes both."""

    label: str
    height: int
    width: int | None = None

    def size_for(self, view_width: int, view_height: int) -> tuple[int, int]:
        """(width, height) for a view of the given size; widths from the aspect are rounded to even."""
        if self.width is not None:
            return self.width, self.height
        return max(2, 2 * math.floor(self.height * view_width / view_height / 2 + 0.5)), self.height


def parse_qp_spec(spec: str) -> tuple[int, ...]:
    """'20..50' (step 5), '20..50:2' or '20,30,45' → sorted distinct QPs (range checked later)."""
    text = spec.strip()
    if ".." in text:
        match = re.fullmatch(r"(-?\d+)\s*\.\.\s*(-?\d+)(?:\s*:\s*(-?\d+))?", text)
        if not match:
            raise BadInput(f"--qp '{spec}' is not A..B, A..B:STEP or a list like 20,30,45")
        start, stop = int(match.group(1)), int(match.group(2))
        step = int(match.group(3)) if match.group(3) else DEFAULT_QP_STEP
        if step <= 0:
            raise BadInput(f"--qp '{spec}': step must be positive, got {step}")
        if start > stop:
            raise BadInput(f"--qp '{spec}' is an empty range ({start} > {stop}); write it low..high")
        return tuple(range(start, stop + 1, step))
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"--qp '{spec}' is not A..B, A..B:STEP or a list like 20,30,45") from None
    if not values:
        raise BadInput("--qp is empty; give e.g. 20..50 or 20,30,45")
    return tuple(sorted(set(values)))


def parse_resolutions(spec: str) -> tuple[Resolution, ...]:
    """'720p,360p,640x480' → Resolutions in the given order (duplicates dropped)."""
    found: dict[str, Resolution] = {}
    for part in (p.strip().lower() for p in spec.split(",")):
        if not part:
            continue
        if part in NAMED_HEIGHTS:
            found.setdefault(part, Resolution(part, NAMED_HEIGHTS[part]))
            continue
        match = re.fullmatch(r"(\d+)x(\d+)", part)
        if not match:
            raise BadInput(f"Unknown resolution '{part}'. Use {', '.join(NAMED_HEIGHTS)} or WxH.")
        width, height = int(match.group(1)), int(match.group(2))
        if width % 2 or height % 2 or width < MIN_SIDE or height < MIN_SIDE:
            raise BadInput(f"--res {part}: width and height must be even and at least {MIN_SIDE} (yuv420p)")
        found.setdefault(part, Resolution(part, height, width))
    if not found:
        raise BadInput(f"--res is empty; give e.g. 720p,360p or 640x360 ({', '.join(NAMED_HEIGHTS)} or WxH)")
    return tuple(found.values())


@dataclass(frozen=True)
class EncodeConfig:
    """Every `vidvpr encode` option, with its default written once."""

    qps: tuple[int, ...] = parse_qp_spec(DEFAULT_QP_SPEC)
    resolutions: tuple[Resolution, ...] | None = None  # None: DEFAULT_RES_SPEC, those not above the view
    codec: str = "libx264"
    preset: str = "medium"
    gop: int | None = None  # keyframe interval in frames; None: GOP_SECONDS of frames
    flat_qp: bool = False  # same QP on I, P and B frames (ipratio = pbratio = 1)
    jobs: int = 1  # views encoded at once
    vmaf: bool = True  # when the ffmpeg has libvmaf
    allow_upscale: bool = False
    force: bool = False


def validate_config(config: EncodeConfig) -> None:
    """Reject nonsense options before any work starts."""
    codec = CODECS.get(config.codec)
    if codec is None:
        raise BadInput(f"Unknown codec '{config.codec}'. Use {' or '.join(CODECS)}.")
    if config.preset not in X26X_PRESETS:
        raise BadInput(f"Unknown preset '{config.preset}'. Use one of {', '.join(X26X_PRESETS)}.")
    if not config.qps:
        raise BadInput("--qp is empty; give e.g. 20..50 or 20,30,45")
    for qp in config.qps:
        if not codec.qp_min <= qp <= codec.qp_max:
            raise BadInput(f"qp must be in [{codec.qp_min}, {codec.qp_max}] for {codec.name}, got {qp}")
    if config.gop is not None and config.gop < 1:
        raise BadInput(f"--gop must be at least 1 frame, got {config.gop}")
    if config.jobs < 1:
        raise BadInput(f"--jobs must be at least 1, got {config.jobs}")
    if config.resolutions is not None and not config.resolutions:
        raise BadInput("--res is empty")


@dataclass(frozen=True)
class Cell:
    """One grid cell: a view encoded at one size and one QP."""

    source: ViewVideo
    resolution: str
    width: int
    height: int
    qp: int
    gop: int
    video: Path
    sidecar: Path
    params_hash: str
    params: dict[str, Any] = field(compare=False, hash=False)

    @property
    def name(self) -> str:
        return f"{self.source.recording}/{self.source.view}/{self.resolution}/qp{self.qp:02d}"


def cell_paths(out_dir: Path, recording: str, view: str, resolution: str, qp: int) -> tuple[Path, Path]:
    """(video, sidecar): ``OUT/<recording>/<view>/<res>/qp<NN>.mp4`` and ``.json``."""
    folder = Path(out_dir) / recording / view / resolution
    return folder / f"qp{qp:02d}.mp4", folder / f"qp{qp:02d}.json"


def default_gop(fps: Fraction) -> int:
    """GOP_SECONDS of frames at `fps` (at least 1)."""
    return max(1, math.floor(GOP_SECONDS * float(fps or FPS_WHEN_UNKNOWN) + 0.5))


def cell_params(config: EncodeConfig, width: int, height: int, qp: int, gop: int) -> dict[str, Any]:
    """Everything that determines a cell's content; hashed to decide whether a rerun can skip it."""
    return {"schema": CellSidecar.SCHEMA, "version": ENCODE_OUTPUT_VERSION, "codec": config.codec, "preset": config.preset, "qp": qp,
            "flat_qp": config.flat_qp, "gop": gop, "width": width, "height": height,
            "filter": scale_chain(width, height), "pix_fmt": PIX_FMT, "fps_mode": "passthrough",
            "rate_control": "constant qp"}


def source_resolutions(source: ViewVideo, config: EncodeConfig) -> list[tuple[str, int, int]]:
    """(label, width, height) of each resolution for one view; refuses upscaling unless allowed."""
    if config.resolutions is None:
        fitting = [(r.label, *r.size_for(source.width, source.height)) for r in parse_resolutions(DEFAULT_RES_SPEC)]
        fitting = [entry for entry in fitting if entry[1] <= source.width and entry[2] <= source.height]
        if not fitting:
            raise BadInput(f"{source.path}: {source.width}x{source.height} is smaller than every default resolution "
                           f"({DEFAULT_RES_SPEC}); pass --res WxH")
        return fitting
    sizes = []
    for res in config.resolutions:
        width, height = res.size_for(source.width, source.height)
        if (width > source.width or height > source.height) and not config.allow_upscale:
            raise BadInput(f"--res {res.label} ({width}x{height}) is larger than {source.path} "
                           f"({source.width}x{source.height}); pass --allow-upscale to upscale")
        sizes.append((res.label, width, height))
    return sizes


def plan_grid(sources: Sequence[ViewVideo], config: EncodeConfig, out_dir: Path) -> list[Cell]:
    """Every cell of the grid, view by view, resolution by resolution, QP by QP."""
    validate_config(config)
    names = [(source.recording, source.view) for source in sources]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise BadInput(f"two inputs are both '{'/'.join(duplicated[0])}' (recording/view); their cells would collide")
    cells = []
    for source in sources:
        gop = config.gop or default_gop(source.fps)
        for label, width, height in source_resolutions(source, config):
            for qp in config.qps:
                params = cell_params(config, width, height, qp, gop)
                video, sidecar = cell_paths(out_dir, source.recording, source.view, label, qp)
                cells.append(Cell(source, label, width, height, qp, gop, video, sidecar, params_hash(params), params))
    return cells


@dataclass(frozen=True)
class EncodeTarget:
    """One output of an encode process."""

    width: int
    height: int
    qp: int
    path: Path


def encode_command(ffmpeg_path: str, source: Path, targets: Sequence[EncodeTarget], config: EncodeConfig, gop: int,
                   threads: int) -> list[str]:
    """ffmpeg argv: decode `source` once, scale once per size, split to one constant-QP encoder per target.

    Every frame keeps its timestamp (passthrough, encoder time base from the filter graph),
    GOPs are fixed (no scene-cut keyframes), metadata is not copied.
    """
    if not targets:
        raise ValueError("encode_command needs at least one target")
    codec = CODECS[config.codec]
    sizes = list(dict.fromkeys((t.width, t.height) for t in targets))
    graph = [f"[0:v]split={len(sizes)}" + "".join(f"[s{g}]" for g in range(len(sizes)))]
    for g, size in enumerate(sizes):
        members = [i for i, t in enumerate(targets) if (t.width, t.height) == size]
        graph.append(f"[s{g}]{scale_chain(*size)},split={len(members)}" + "".join(f"[e{i}]" for i in members))
    outputs: list[str] = []
    for i, target in enumerate(targets):
        outputs += ["-map", f"[e{i}]", *codec.args(target.qp, config.preset, gop, config.flat_qp, threads),
                    "-fps_mode", "passthrough", "-enc_time_base", "filter",
                    "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4", str(Path(target.path).resolve())]
    return [ffmpeg_path, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y",
            "-i", str(Path(source).resolve()), "-filter_complex", ";".join(graph), *outputs]


def parse_rate_control(settings: str | None) -> dict[str, float]:
    """qp, ip ratio and pb ratio from an x264/x265 settings string (empty when absent)."""
    found: dict[str, float] = {}
    for key, pattern in (("qp", r"(?<![\w-])qp=(\d+)"), ("ipratio", r"\bip_?ratio=([\d.]+)"),
                         ("pbratio", r"\bpb_?ratio=([\d.]+)")):
        match = re.search(pattern, settings or "")
        if match:
            found[key] = float(match.group(1))
    return found


def frame_type_qps(qp: int, ipratio: float, pbratio: float, qp_max: int = 51) -> dict[str, int]:
    """QP of each frame type under x264/x265 constant QP (both use the same rule).

    I = qp − 6·log2(ipratio), B = qp + 6·log2(pbratio) (each +0.5 then truncated, clipped to
    the codec's range); B frames kept as references (b-pyramid) get (B + P) // 2. With the
    default ratios 1.40 / 1.30: I = qp−3, P = qp, B = qp+2, reference B = qp+1.
    """
    def clip(value: float) -> int:
        return min(qp_max, max(0, int(value)))

    i_qp = clip(qp - 6 * math.log2(ipratio) + 0.5)
    b_qp = clip(qp + 6 * math.log2(pbratio) + 0.5)
    return {"I": i_qp, "P": qp, "B": b_qp, "B_ref": (b_qp + qp) // 2}


def describe_config(config: EncodeConfig) -> dict[str, Any]:
    """The config as plain JSON-able values, for sidecars and the table."""
    record = asdict(config)
    record["resolutions"] = [r.label for r in config.resolutions] if config.resolutions else None
    return record
