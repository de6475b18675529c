"""`vidvpr slice` options and the views they describe, each default written once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.geo import fisheye, projection
from vidvpr.media.codecs import X26X_PRESETS, X26X_QP_RANGE

INTERPOLATIONS = ("bilinear", "bicubic", "lanczos")
STEREO_LAYOUTS = ("mono", "tb")
EYES = ("top", "bottom")
MIN_VIEW_SIDE = 16
MAX_VIEW_SIDE = 8192
DEFAULT_YAWS_DEG = (0.0, 90.0, 180.0, 270.0)  # the four horizontal views of the LoQI-VPR video dataset
# Dual-fisheye lenses whose calibration gives no field of view (the Insta360 string does not):
# ONE X / ONE R class lenses are fitted at 200-204° by the public stitchers; --fisheye-fov overrides.
DEFAULT_FISHEYE_FOV_DEG = 200.0
FISHEYE_FOV_RANGE_DEG = (150.0, 270.0)


@dataclass(frozen=True)
class ViewEncoding:
    """How view videos are stored. Defaults are visually lossless references (see README)."""

    codec: str = "libx264"
    crf: int = 10
    preset: str = "veryfast"
    pix_fmt: str = "yuv420p"


@dataclass(frozen=True)
class SliceConfig:
    """Every `vidvpr slice` option, with its default written once."""

    yaws_deg: tuple[float, ...] = DEFAULT_YAWS_DEG
    pitch_deg: float = 0.0
    hfov_deg: float = 90.0
    size: tuple[int, int] | None = None  # None: match the source's angular resolution
    fps: Fraction | None = None  # None: keep every frame
    interp: str = "bilinear"
    stereo: str = "mono"
    eye: str = "top"
    encoding: ViewEncoding = field(default_factory=ViewEncoding)
    force: bool = False
    # dual fisheye (Insta360 .insv and the like)
    calibration: Path | None = None  # a calibration for a damaged trailer (or to replace the trailer's)
    fisheye_fov_deg: float | None = None  # each lens's field of view; None: the calibration's, else the default
    seam_feather_deg: float = fisheye.SEAM_FEATHER_DEG
    equirect: bool = False  # write the equirectangular video instead of views


@dataclass(frozen=True)
class ViewSpec:
    """One perspective view: direction, field of view and size."""

    yaw_deg: float
    pitch_deg: float
    hfov_deg: float
    width: int
    height: int

    @property
    def name(self) -> str:
        """File stem, e.g. ``yaw090_pitch+00``: yaw in [0, 360), signed pitch."""
        return f"yaw{round(self.yaw_deg) % 360:03d}_pitch{round(self.pitch_deg):+03d}"

    @property
    def intrinsics(self) -> projection.PinholeIntrinsics:
        return projection.pinhole_intrinsics(self.width, self.height, self.hfov_deg)

    def world_rays(self, scale: int = 1) -> np.ndarray:
        """Body-frame rays through the view's pixel centres, at 1/`scale` of its size (chroma: 2)."""
        return projection.view_world_rays(self.width // scale, self.height // scale, self.yaw_deg, self.pitch_deg,
                                          self.hfov_deg)


@dataclass(frozen=True)
class EquirectTarget:
    """The whole sphere as an equirectangular frame (`--equirect`), named after its source."""

    name: str
    width: int
    height: int

    def world_rays(self, scale: int = 1) -> np.ndarray:
        return fisheye.equirect_rays(self.width // scale, self.height // scale)


def validate_config(config: SliceConfig) -> None:
    """Reject nonsense options before any work starts (BadInput naming the option and its range)."""
    if not config.yaws_deg:
        raise BadInput("--yaw: give at least one view yaw")
    if not all(math.isfinite(yaw) for yaw in config.yaws_deg):
        raise BadInput("--yaw: every yaw must be a finite number of degrees")
    if not projection.MIN_FOV_DEG <= config.hfov_deg <= projection.MAX_FOV_DEG:
        raise BadInput(f"--fov must be in [{projection.MIN_FOV_DEG:g}, {projection.MAX_FOV_DEG:g}] degrees, "
                       f"got {config.hfov_deg:g}")
    if not -90.0 <= config.pitch_deg <= 90.0:
        raise BadInput(f"--pitch must be in [-90, 90] degrees, got {config.pitch_deg:g}")
    if config.size is not None:
        width, height = config.size
        if not (MIN_VIEW_SIDE <= width <= MAX_VIEW_SIDE and MIN_VIEW_SIDE <= height <= MAX_VIEW_SIDE):
            raise BadInput(f"--size {width}x{height}: each side must be in [{MIN_VIEW_SIDE}, {MAX_VIEW_SIDE}]")
        if width % 2 or height % 2:
            raise BadInput(f"--size {width}x{height}: width and height must be even (yuv420p video)")
    if config.fps is not None and config.fps <= 0:
        raise BadInput(f"--fps must be positive, got {config.fps}")
    if config.interp not in INTERPOLATIONS:
        raise BadInput(f"Unknown --interp '{config.interp}'. Use {', '.join(INTERPOLATIONS)}.")
    if config.stereo not in STEREO_LAYOUTS:
        raise BadInput(f"Unknown --stereo '{config.stereo}'. Use {' or '.join(STEREO_LAYOUTS)}.")
    if config.eye not in EYES:
        raise BadInput(f"Unknown --eye '{config.eye}'. Use {' or '.join(EYES)}.")
    validate_encoding(config.encoding)
    if config.fisheye_fov_deg is not None and not (
            FISHEYE_FOV_RANGE_DEG[0] <= config.fisheye_fov_deg <= FISHEYE_FOV_RANGE_DEG[1]):
        raise BadInput(f"--fisheye-fov must be in [{FISHEYE_FOV_RANGE_DEG[0]:g}, {FISHEYE_FOV_RANGE_DEG[1]:g}] degrees, "
                       f"got {config.fisheye_fov_deg:g}")
    if not 0 <= config.seam_feather_deg <= 40:
        raise BadInput(f"seam feather must be in [0, 40] degrees, got {config.seam_feather_deg:g}")
    if config.equirect and config.size is not None and config.size[0] != 2 * config.size[1]:
        raise BadInput(f"--size {config.size[0]}x{config.size[1]}: an --equirect frame is 2:1")
    names = [ViewSpec(yaw, config.pitch_deg, config.hfov_deg, 2, 2).name for yaw in config.yaws_deg]
    if len(set(names)) != len(names):
        raise BadInput(f"--yaw: two views have the same direction ({', '.join(names)})")


def validate_encoding(encoding: ViewEncoding) -> None:
    """--crf and --preset of view videos (`vidvpr slice` and `vidvpr import` store views alike)."""
    low, high = X26X_QP_RANGE
    if not low <= encoding.crf <= high:
        raise BadInput(f"--crf must be in [{low}, {high}] for {encoding.codec}, got {encoding.crf}")
    if encoding.preset not in X26X_PRESETS:
        raise BadInput(f"Unknown --preset '{encoding.preset}'. Use one of {', '.join(X26X_PRESETS)}.")


def plan_equirect(config: SliceConfig, name: str, equirect_width: float) -> EquirectTarget:
    """The `--equirect` frame: `--size`, else as wide as the source's angular resolution allows."""
    width, height = config.size or (2 * projection.floor_to_multiple(equirect_width / 2, 16),
                                    projection.floor_to_multiple(equirect_width / 2, 16))
    return EquirectTarget(name, width, height)


def plan_views(config: SliceConfig, eye_width: float) -> list[ViewSpec]:
    """The views to cut from a source whose (single-eye) equirect frame is `eye_width` wide."""
    width, height = config.size or projection.default_view_size(eye_width, config.hfov_deg)
    if max(width, height) > MAX_VIEW_SIDE:  # only a source-matched size can be (--size is checked)
        raise BadInput(f"--fov {config.hfov_deg:g}: the view size matching the source's resolution would be "
                       f"{width}x{height}, more than {MAX_VIEW_SIDE} px a side; give --size WxH")
    return [ViewSpec(float(yaw), config.pitch_deg, config.hfov_deg, width, height) for yaw in config.yaws_deg]


V360_INTERP = {"bilinear": "linear", "bicubic": "cubic", "lanczos": "lanczos"}


def v360_filter(view: ViewSpec, interp: str = "bilinear") -> str:
    """ffmpeg v360 filter string that cuts the same view (a peer for benchmarks and cross-checks).

    v360 takes yaw in [-180, 180]; its flat output samples pixel centres like vidvpr does.
    """
    yaw = (view.yaw_deg + 180.0) % 360.0 - 180.0
    return (f"v360=input=e:output=flat:yaw={yaw:g}:pitch={view.pitch_deg:g}:h_fov={view.hfov_deg:g}"
            f":v_fov={view.intrinsics.vfov_deg:.6f}:w={view.width}:h={view.height}:interp={V360_INTERP[interp]}")
