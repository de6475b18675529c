"""`vidvpr import` options, each default written once, and their checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from vidvpr.core.errors import BadInput
from vidvpr.dataset.definition import check_name
from vidvpr.dataset.vpr_names import DEFAULT_VPR_SPLIT
from vidvpr.ingest.camera import DEFAULT_UNDISTORT_ALPHA, check_hfov
from vidvpr.ingest.images import EVEN_MODES, TIME_SOURCES
from vidvpr.slicing.config import ViewEncoding, validate_encoding

DEFAULT_VIEW = "camera"  # the view name of imported footage: one camera, looking where it looks
DEFAULT_SPACING_M = 1.0  # --positions index: metres between consecutive frames
TRAJECTORIES_DIR = "trajectories"  # under the dataset root: <recording>.csv
MIN_IMAGE_FPS, MAX_IMAGE_FPS = Fraction(1, 86_400), Fraction(1000)  # --fps: the video clock's limits stay far away


@dataclass(frozen=True)
class IndexPositions:
    """--positions index[:SPACING_M]: frame i stands at x = i * spacing_m metres, y = 0."""

    spacing_m: float = DEFAULT_SPACING_M


@dataclass(frozen=True)
class ImportConfig:
    """Every `vidvpr import` option, with its default written once."""

    recording: str | None = None  # None: the video's stem or the images' folder name
    view: str = DEFAULT_VIEW
    hfov_deg: float | None = None  # the camera: exactly one of hfov_deg, intrinsics, calibration
    intrinsics: tuple[float, float, float, float] | None = None  # fx, fy, cx, cy (pixels, OpenCV)
    calibration: Path | None = None
    undistort: bool = False
    undistort_alpha: float = DEFAULT_UNDISTORT_ALPHA
    fps: Fraction | None = None  # images: frames per second [default 1 unless their names or EXIF time them]
    times: str = "auto"  # images: auto, fps, name, exif
    even: str = "crop"  # images of odd size: crop or pad at the right/bottom (with a warning)
    reencode: bool = False  # videos: always re-encode, never copy the stream
    positions: IndexPositions | None = None  # write a frame-index trajectory
    root: Path | None = None  # dataset root for trajectories and definitions [default: --out's parent]
    vpr_split: str = DEFAULT_VPR_SPLIT
    encoding: ViewEncoding = field(default_factory=ViewEncoding)
    force: bool = False

    def camera_options(self) -> list[str]:
        """The camera options given (exactly one must be)."""
        given = {"--hfov": self.hfov_deg, "--intrinsics": self.intrinsics, "--calibration": self.calibration}
        return [name for name, value in given.items() if value is not None]


def parse_positions(value: str | None) -> IndexPositions | None:
    """'index' or 'index:SPACING_M' → IndexPositions; BadInput otherwise."""
    if value is None:
        return None
    kind, _, spacing = value.partition(":")
    if kind.strip() != "index":
        raise BadInput(f"--positions {value!r}: use index or index:SPACING_M (metres between frames)")
    if not spacing:
        return IndexPositions()
    try:
        spacing_m = float(spacing)
    except ValueError:
        raise BadInput(f"--positions {value!r}: spacing {spacing!r} is not a number of metres") from None
    if not (math.isfinite(spacing_m) and 0 < spacing_m <= 1e6):
        raise BadInput(f"--positions {value!r}: spacing must be a positive number of metres (at most 1e6)")
    return IndexPositions(spacing_m)


def parse_intrinsics(value: str | None) -> tuple[float, float, float, float] | None:
    """'fx,fy,cx,cy' → four numbers; BadInput otherwise."""
    if value is None:
        return None
    try:
        numbers = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise BadInput(f"--intrinsics {value!r}: expected fx,fy,cx,cy in pixels, e.g. 900,900,639.5,359.5") from None
    if len(numbers) != 4:
        raise BadInput(f"--intrinsics {value!r}: expected 4 numbers fx,fy,cx,cy, got {len(numbers)}")
    return numbers  # type: ignore[return-value]


def validate_config(config: ImportConfig) -> None:
    """Reject nonsense options before anything is read or written."""
    if config.recording is not None:
        check_name(config.recording, "--recording", "command line")
    check_name(config.view, "--view", "command line")
    given = config.camera_options()
    if len(given) != 1:
        problem = "give one of" if not given else f"give only one of ({', '.join(given)} given):"
        raise BadInput(f"the camera: {problem} --hfov DEG (a centred pinhole), --intrinsics fx,fy,cx,cy or "
                       "--calibration FILE (OpenCV YAML/JSON); manifests record its field of view")
    if config.hfov_deg is not None:
        check_hfov(config.hfov_deg)
    if config.undistort and config.calibration is None:
        raise BadInput("--undistort needs --calibration FILE with the distortion coefficients")
    if not 0.0 <= config.undistort_alpha <= 1.0:
        raise BadInput(f"--undistort-alpha must be in [0, 1], got {config.undistort_alpha:g}")
    if config.fps is not None and not config.fps > 0:
        raise BadInput(f"--fps must be positive, got {config.fps}")
    if config.fps is not None and not MIN_IMAGE_FPS <= config.fps <= MAX_IMAGE_FPS:
        raise BadInput(f"--fps must be between 1/{1 / MIN_IMAGE_FPS} (a frame a day) and {MAX_IMAGE_FPS}, "
                       f"got {float(config.fps):g}")
    if config.times not in TIME_SOURCES:
        raise BadInput(f"Unknown --times '{config.times}'. Use {', '.join(TIME_SOURCES)}.")
    if config.even not in EVEN_MODES:
        raise BadInput(f"Unknown --even '{config.even}'. Use {' or '.join(EVEN_MODES)}.")
    check_name(config.vpr_split, "--split", "command line")
    validate_encoding(config.encoding)
