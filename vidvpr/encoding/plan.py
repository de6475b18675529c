"""The pure half of `vidvpr encode`: the config, the grid plan and ffmpeg argument lists.

No I/O happens here (grid.py runs the plan). Cells live at ``OUT/<recording>/<view>/<res>/qp<NN>.mp4``
for libx264 and ``OUT/<recording>/<view>/<res>/<codec>/<quantiser><NN>.mp4`` for the other codecs
(``qp30.mp4``, JPEG ``quality10.mp4``). One ffmpeg process per view and codec decodes the view
once, scales once per resolution, splits to one constant-quantiser encoder per cell and measures
each cell through a loopback decoder (quality.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import params_hash
from vidvpr.core.sidecars import CellSidecar
from vidvpr.encoding.codecs import (  # noqa: F401  (x264/x265 rules re-exported)
    CODECS,
    DEFAULT_CODEC,
    CodecSpec,
    frame_type_qps,
    parse_rate_control,
)
from vidvpr.encoding.options import (  # noqa: F401  (re-exported: the parsing half of the plan)
    DEFAULT_QP_STEP,
    MIN_SIDE,
    NAMED_HEIGHTS,
    Resolution,
    parse_codecs,
    parse_preset_spec,
    parse_qp_options,
    parse_qp_spec,
    parse_resolutions,
)
from vidvpr.encoding.quality import PIX_FMT, scale_chain
from vidvpr.media.view_video import ViewVideo

# Bump when a change to the encoder or measuring pipeline changes a cell made from the same
# view and options: cells recorded with an older version are redone, not kept as finished.
# 2: typed sidecars; VMAF skipped (not crashed) on cells under 18 px.
# 3: several codecs; quantiser read back per codec; measured in the encode process, VMAF sampled.
ENCODE_OUTPUT_VERSION = 3
DEFAULT_QP_SPEC = "20..50"
DEFAULT_RES_SPEC = "1080p,720p,480p,360p"  # --res default: these, where not above the view's size
DEFAULT_VMAF_EVERY = 31  # VMAF on frames 0, 31, 62, ... (see quality.VmafSampling; 31: prime, off every usual GOP)
GOP_SECONDS = 2.0  # default keyframe interval: 2 s of frames at the view's frame rate
FPS_WHEN_UNKNOWN = 30  # for the default GOP of a video whose container gives no frame rate


@dataclass(frozen=True)
class EncodeConfig:
    """Every `vidvpr encode` option, with its default written once."""

    qps: tuple[int, ...] = parse_qp_spec(DEFAULT_QP_SPEC)  # every QP codec's values (see codec_qps)
    resolutions: tuple[Resolution, ...] | None = None  # None: DEFAULT_RES_SPEC, those not above the view
    codecs: tuple[str, ...] = (DEFAULT_CODEC,)
    codec_qps: tuple[tuple[str, tuple[int, ...]], ...] = ()  # a codec's own values (--qp jpeg=10,50)
    preset: str | None = None  # for every codec that has presets; None: each codec's default
    codec_presets: tuple[tuple[str, str], ...] = ()  # one codec's preset (--preset libsvtav1=10)
    gop: int | None = None  # keyframe interval in frames; None: GOP_SECONDS of frames
    flat_qp: bool = False  # same quantiser on every frame type (x264/x265 ipratio = pbratio = 1, SVT-AV1 offsets 0)
    jobs: int = 1  # views encoded at once
    vmaf: bool = True  # when the ffmpeg has libvmaf
    vmaf_every: int = DEFAULT_VMAF_EVERY  # VMAF on every N-th frame; 1: every frame
    allow_upscale: bool = False
    force: bool = False


def quantiser_values(config: EncodeConfig, codec: str) -> tuple[int, ...]:
    """A codec's quantiser values: its --qp CODEC=..., else its own default, else the grid's --qp."""
    own = dict(config.codec_qps).get(codec)
    if own is not None:
        return own
    default = CODECS[codec].quantiser.default_values
    return default if default is not None else config.qps


def preset_for(config: EncodeConfig, codec: str) -> str | None:
    """A codec's preset: its --preset CODEC=..., else --preset, else its default (None: it has none)."""
    spec = CODECS[codec]
    if not spec.presets:
        return None
    return dict(config.codec_presets).get(codec) or config.preset or spec.default_preset


def flat_qp_for(config: EncodeConfig, codec: str) -> bool:
    """Whether every frame of this codec's cells gets the same quantiser."""
    return {"option": config.flat_qp, "always": True, "never": False}[CODECS[codec].flat_qp]


def validate_config(config: EncodeConfig) -> None:
    """Reject nonsense options before any work starts."""
    if not config.codecs:
        raise BadInput(f"--codec is empty; give one or more of {', '.join(CODECS)}")
    for name in (*config.codecs, *dict(config.codec_qps), *dict(config.codec_presets)):
        if name not in CODECS:
            raise BadInput(f"Unknown codec '{name}'. Use {', '.join(CODECS)}.")
    for option, named in (("--qp", config.codec_qps), ("--preset", config.codec_presets)):
        stray = [name for name, _ in named if name not in config.codecs]
        if stray:
            raise BadInput(f"{option} {stray[0]}=...: {stray[0]} is not in --codec ({','.join(config.codecs)})")
    if not config.qps:
        raise BadInput("--qp is empty; give e.g. 20..50 or 20,30,45")
    for name in config.codecs:
        _validate_codec(config, CODECS[name])
    if config.gop is not None and config.gop < 1:
        raise BadInput(f"--gop must be at least 1 frame, got {config.gop}")
    if config.jobs < 1:
        raise BadInput(f"--jobs must be at least 1, got {config.jobs}")
    if config.vmaf_every < 1:
        raise BadInput(f"--vmaf-every must be at least 1 (every frame), got {config.vmaf_every}")
    if config.resolutions is not None and not config.resolutions:
        raise BadInput("--res is empty")


def _validate_codec(config: EncodeConfig, codec: CodecSpec) -> None:
    quantiser = codec.quantiser
    values = quantiser_values(config, codec.name)
    if not values:
        raise BadInput(f"--qp {codec.name}=... is empty")
    for value in values:
        if not quantiser.low <= value <= quantiser.high:
            raise BadInput(f"{quantiser.name} must be in [{quantiser.low}, {quantiser.high}] for {codec.name}, "
                           f"got {value}")
    preset = preset_for(config, codec.name)
    if preset is not None and preset not in codec.presets:
        raise BadInput(f"Unknown preset '{preset}' for {codec.name}. Use one of {', '.join(codec.presets)}"
                       + (f" (per codec: --preset {codec.name}=PRESET)." if len(config.codecs) > 1 else "."))
    if config.flat_qp and codec.flat_qp == "never":
        raise BadInput(f"--flat-qp: {codec.name} cannot hold one quantiser on every frame (its GOP adds per-layer "
                       "QP offsets); leave it out of a --flat-qp grid")


@dataclass(frozen=True)
class Cell:
    """One grid cell: a view encoded by one codec at one size and one quantiser value."""

    source: ViewVideo
    resolution: str
    width: int
    height: int
    qp: int  # the codec's quantiser value (JPEG: quality)
    gop: int
    video: Path
    sidecar: Path
    params_hash: str
    params: dict[str, Any] = field(compare=False, hash=False)
    codec: str = DEFAULT_CODEC
    preset: str | None = None
    flat_qp: bool = False

    @property
    def spec(self) -> CodecSpec:
        return CODECS[self.codec]

    @property
    def name(self) -> str:
        folder = self.spec.cell_folder
        return (f"{self.source.recording}/{self.source.view}/{self.resolution}/"
                f"{folder + '/' if folder else ''}{self.spec.quantiser.name}{self.qp:02d}")


def cell_paths(out_dir: Path, recording: str, view: str, resolution: str, qp: int,
               codec: str = DEFAULT_CODEC) -> tuple[Path, Path]:
    """(video, sidecar): ``OUT/<recording>/<view>/<res>/qp<NN>.mp4`` and ``.json`` for libx264,
    ``OUT/<recording>/<view>/<res>/<codec>/<quantiser><NN>.mp4`` for other codecs."""
    spec = CODECS[codec]
    folder = Path(out_dir) / recording / view / resolution
    if spec.cell_folder:
        folder = folder / spec.cell_folder
    stem = f"{spec.quantiser.name}{qp:02d}"
    return folder / f"{stem}.mp4", folder / f"{stem}.json"


def default_gop(fps: Fraction) -> int:
    """GOP_SECONDS of frames at `fps` (at least 1)."""
    return max(1, math.floor(GOP_SECONDS * float(fps or FPS_WHEN_UNKNOWN) + 0.5))


def cell_params(config: EncodeConfig, width: int, height: int, qp: int, gop: int,
                codec: str | None = None) -> dict[str, Any]:
    """Everything that determines a cell's content (of `codec`, default the config's first); hashed to
    decide whether a rerun can skip it."""
    codec = codec or config.codecs[0]
    spec = CODECS[codec]
    return {"schema": CellSidecar.SCHEMA, "version": ENCODE_OUTPUT_VERSION, "codec": codec,
            "preset": preset_for(config, codec), "quantiser": spec.quantiser.name, "qp": qp,
            "flat_qp": flat_qp_for(config, codec), "gop": gop, "width": width, "height": height,
            "filter": scale_chain(width, height), "pix_fmt": spec.input_pix_fmt, "fps_mode": "passthrough",
            "rate_control": spec.quantiser.meaning}


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
    """Every cell of the grid, view by view, codec by codec, resolution by resolution, quantiser by quantiser."""
    validate_config(config)
    names = [(source.recording, source.view) for source in sources]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise BadInput(f"two inputs are both '{'/'.join(duplicated[0])}' (recording/view); their cells would collide")
    cells = []
    for source in sources:
        gop = config.gop or default_gop(source.fps)
        sizes = source_resolutions(source, config)
        for codec in config.codecs:
            for label, width, height in sizes:
                for qp in quantiser_values(config, codec):
                    params = cell_params(config, width, height, qp, gop, codec)
                    video, sidecar = cell_paths(out_dir, source.recording, source.view, label, qp, codec)
                    cells.append(Cell(source, label, width, height, qp, gop, video, sidecar, params_hash(params),
                                      params, codec, preset_for(config, codec), flat_qp_for(config, codec)))
    return cells


@dataclass(frozen=True)
class EncodeTarget:
    """One output of an encode process."""

    width: int
    height: int
    qp: int
    path: Path
    codec: str | None = None  # None: the config's first codec
    preset: str | None = None  # None: the config's preset for this codec


def encode_command(ffmpeg_path: str, source: Path, targets: Sequence[EncodeTarget], config: EncodeConfig, gop: int,
                   threads: int, measure: Sequence[str] = ()) -> list[str]:
    """ffmpeg argv: decode `source` once, scale once per size, split to one constant-quantiser encoder per target.

    Every frame keeps its timestamp (passthrough, encoder time base from the filter graph),
    GOPs are fixed (no scene-cut keyframes), metadata is not copied. `measure` (quality.measure_args)
    is appended after the outputs: it measures them in the same process.
    """
    if not targets:
        raise ValueError("encode_command needs at least one target")
    sizes = list(dict.fromkeys((t.width, t.height) for t in targets))
    graph = [f"[0:v]split={len(sizes)}" + "".join(f"[s{g}]" for g in range(len(sizes)))]
    for g, size in enumerate(sizes):
        members = [i for i, t in enumerate(targets) if (t.width, t.height) == size]
        graph.append(f"[s{g}]{scale_chain(*size)},split={len(members)}" + "".join(f"[e{i}]" for i in members))
    outputs: list[str] = []
    for i, target in enumerate(targets):
        codec = CODECS[target.codec or config.codecs[0]]
        if codec.args is None:
            raise ValueError(f"{codec.name} is not encoded by ffmpeg")
        label = f"[e{i}]"
        if codec.input_pix_fmt != PIX_FMT:
            graph.append(f"{label}format={codec.input_pix_fmt}[f{i}]")
            label = f"[f{i}]"
        preset = target.preset or preset_for(config, codec.name)
        flat = flat_qp_for(config, codec.name)
        time_base = ["-enc_time_base", "filter"] if codec.time_base_from_filter else []
        outputs += ["-map", label, *codec.args(target.qp, preset, gop, flat, threads), "-fps_mode", "passthrough",
                    *time_base,
                    "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4", str(Path(target.path).resolve())]
    return [ffmpeg_path, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y",
            "-threads", "1", "-i", str(Path(source).resolve()), "-filter_complex", ";".join(graph), *outputs,
            *measure]


def describe_config(config: EncodeConfig) -> dict[str, Any]:
    """The config as plain JSON-able values, for sidecars and the table."""
    record = asdict(config)
    record["resolutions"] = [r.label for r in config.resolutions] if config.resolutions else None
    record["codec_qps"] = {name: list(values) for name, values in config.codec_qps}
    record["codec_presets"] = dict(config.codec_presets)
    return record
