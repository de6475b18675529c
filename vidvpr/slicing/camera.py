"""The camera model of a 360° source: how its frames are decoded and which sampling maps cut an
output (a view, or an equirect frame) from them.

* Equirectangular: one image per frame (or one eye of top-bottom stereo). Refused with advice when
  the file says it is something else (GoPro MAX .360, cubemap metadata) or looks like two fisheye
  circles on black and no fisheye option was given.
* Dual fisheye: an Insta360 recording (.insv, or any file ending in its trailer), two circles side
  by side in one stream or one stream per lens, with the lens calibration from its trailer; or any
  dual-fisheye video given `--calibration FILE` or `--fisheye-fov DEG`. A recording whose trailer
  is damaged is sliced with those options, with a warning, and refused without them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import cv2

from vidvpr.core.camera_records import FisheyeCalibration, SourceCameraRecord, StreamLens
from vidvpr.core.errors import BadInput
from vidvpr.geo import fisheye
from vidvpr.media.decode import DecodedFrame, decode_frame_sets, decode_frames
from vidvpr.media.insv import calibration_of, has_trailer, read_calibration_file, read_trailer
from vidvpr.media.insv.reader import cut_short_mp4
from vidvpr.media.insv.calibration import ideal_calibration, stream_lenses
from vidvpr.media.probe import VideoInfo, looks_dual_fisheye, unsupported_360_layout
from vidvpr.slicing.config import DEFAULT_FISHEYE_FOV_DEG, EquirectTarget, SliceConfig, ViewSpec
from vidvpr.slicing.remap import SourceSampling, ViewRemapper, equirect_sampling

LOG = logging.getLogger(__name__)
FISHEYE_CONVENTIONS = ("equidistant lenses; lens 0 faces yaw 0, lens 1 yaw 180; lens rotation = Ry(facing) Ry(yaw) "
                       "Rx(pitch) Rz(roll), rolls modulo 180; stream pixel centres at +0.5")
FISHEYE_HINT = ("pass --calibration FILE (another recording of the same camera, or a calibration from `vidvpr probe "
                "--calibration-out`) or --fisheye-fov DEG (two ideal lenses filling their halves)")

RENAME_HINT = "; or, if it is an equirectangular video named .insv, rename it .mp4"

Target = ViewSpec | EquirectTarget


class SourceCamera(Protocol):
    """What the slicer needs of a camera model."""

    record: SourceCameraRecord

    @property
    def equirect_width(self) -> float:
        """Width of an equirect frame with the source's best angular resolution (sets default sizes)."""

    def remapper(self, target: Target, interp: str) -> ViewRemapper: ...

    def frames(self, path: Path, expected_frames: int) -> Iterator[tuple[DecodedFrame, ...]]: ...

    def params(self) -> dict[str, Any] | None:
        """What about the camera decides the outputs' pixels (None: nothing beyond the source)."""


def source_eye(info: VideoInfo, config: SliceConfig) -> tuple[int, int]:
    """(eye height, first row) of the equirect image inside the source frame."""
    if config.stereo == "tb":
        eye_h = info.height // 2
        return eye_h, 0 if config.eye == "top" else eye_h
    return info.height, 0


@dataclass
class EquirectCamera:
    info: VideoInfo
    config: SliceConfig
    record: SourceCameraRecord = field(
        default_factory=lambda: SourceCameraRecord(model="equirectangular", layout="equirectangular"))

    @property
    def equirect_width(self) -> float:
        return float(self.info.width)

    def remapper(self, target: Target, interp: str) -> ViewRemapper:
        if not isinstance(target, ViewSpec):
            raise BadInput(f"{self.info.path}: --equirect: the source is equirectangular already")
        eye_h, eye_row = source_eye(self.info, self.config)
        width = self.info.width
        return ViewRemapper([equirect_sampling(width, eye_h, eye_row, target, 1, interp)],
                            [equirect_sampling(width // 2, eye_h // 2, eye_row // 2, target, 2, interp)], interp)

    def frames(self, path: Path, expected_frames: int) -> Iterator[tuple[DecodedFrame, ...]]:
        return ((frame,) for frame in decode_frames(path, expected_frames))

    def params(self) -> dict[str, Any] | None:
        return None


@dataclass
class DualFisheyeCamera:
    lenses: tuple[fisheye.FisheyeLens, fisheye.FisheyeLens]
    record: SourceCameraRecord
    feather_deg: float

    @property
    def equirect_width(self) -> float:
        return 2.0 * math.pi * min(lens.pixels_per_radian for lens in self.lenses)

    def remapper(self, target: Target, interp: str) -> ViewRemapper:
        chroma_lenses = (self.lenses[0].scaled(0.5), self.lenses[1].scaled(0.5))
        return ViewRemapper(_samplings(fisheye.rig_samples(self.lenses, target.world_rays(1), self.feather_deg)),
                            _samplings(fisheye.rig_samples(chroma_lenses, target.world_rays(2), self.feather_deg)),
                            interp)

    def frames(self, path: Path, expected_frames: int) -> Iterator[tuple[DecodedFrame, ...]]:
        return decode_frame_sets(path, 1 + max(lens.stream for lens in self.lenses), expected_frames)

    def params(self) -> dict[str, Any] | None:
        return self.record.model_dump(mode="json", include={"layout", "lenses", "seam_feather_deg"})


def _samplings(samples: list[fisheye.LensSamples]) -> list[SourceSampling]:
    alone = len(samples) == 1
    return [SourceSampling(sample.stream, slice(None), 0, sample.map_x, sample.map_y, cv2.BORDER_REPLICATE,
                           None if alone else sample.weight) for sample in samples]


def is_insta360(info: VideoInfo) -> bool:
    return info.path.suffix.lower() in (".insv", ".insp") or has_trailer(info.path)


def source_camera(info: VideoInfo, config: SliceConfig) -> SourceCamera:
    """The camera model to slice `info`'s file with (see the module docstring), or BadInput."""
    if is_insta360(info):
        return _insta360_camera(info, config)
    if config.calibration is not None or config.fisheye_fov_deg is not None:
        calibration = read_calibration_file(config.calibration) if config.calibration else None
        if info.video_streams == 1 and not looks_dual_fisheye(next(decode_frames(info.path)).y):
            LOG.warning("%s: does not look like two fisheye circles on black; slicing it as dual fisheye as "
                        "--calibration/--fisheye-fov ask", info.path)
        return _fisheye_camera(info, config, calibration, str(config.calibration or "") or None)
    check_equirect_layout(info, config)
    eye_h, _ = source_eye(info, config)
    if info.width % 2 or eye_h % 2:
        raise BadInput(f"{info.path}: frame size {info.width}x{eye_h} must be even (yuv420p)")
    if config.equirect:
        raise BadInput(f"{info.path}: --equirect: the source is equirectangular already")
    return EquirectCamera(info, config)


def _insta360_camera(info: VideoInfo, config: SliceConfig) -> DualFisheyeCamera:
    if config.calibration is not None:
        return _fisheye_camera(info, config, read_calibration_file(config.calibration), str(config.calibration))
    try:
        calibration = calibration_of(info.path, read_trailer(info.path))
    except BadInput as exc:
        cut = cut_short_mp4(info.path)
        if cut is not None and cut.inside_video:
            raise  # the video is incomplete too: no calibration makes it whole
        if config.fisheye_fov_deg is None:
            rename = "" if cut is not None else _rename_hint(info)  # cut short: an Insta360 file, not a renamed one
            raise BadInput(f"{exc}; to slice its video anyway, {FISHEYE_HINT}{rename}") from None
        LOG.warning("%s; slicing with two ideal %g° lenses (--fisheye-fov): expect seams", exc, config.fisheye_fov_deg)
        return _fisheye_camera(info, config, None, None)
    return _fisheye_camera(info, config, calibration, "Insta360 trailer: INFO record 0x101, field 5")


def _rename_hint(info: VideoInfo) -> str:
    """Advice for a file that is an Insta360 recording by its name alone (no trailer) and whose
    picture is not two fisheye circles: maybe an equirect video named .insv."""
    if has_trailer(info.path):
        return ""
    try:
        fisheye_frame = info.video_streams == 1 and looks_dual_fisheye(next(decode_frames(info.path)).y)
    except (BadInput, StopIteration):
        return ""
    return "" if fisheye_frame else RENAME_HINT


def _fisheye_camera(info: VideoInfo, config: SliceConfig, calibration: FisheyeCalibration | None,
                    calibration_source: str | None) -> DualFisheyeCamera:
    if config.stereo != "mono":
        raise BadInput(f"{info.path}: --stereo applies to equirectangular video, not dual fisheye")
    layout = "stream-per-lens" if len(info.stream_sizes) >= 2 else "side-by-side"
    sizes = list(info.stream_sizes[:2]) or [(info.width, info.height)]
    if layout == "stream-per-lens" and sizes[0] != sizes[1]:
        raise BadInput(f"{info.path}: its two video streams differ in size ({sizes[0][0]}x{sizes[0][1]} and "
                       f"{sizes[1][0]}x{sizes[1][1]}); one stream per lens needs equal sizes")
    if any(width % 2 or height % 2 for width, height in sizes):
        raise BadInput(f"{info.path}: frame size {sizes[0][0]}x{sizes[0][1]} must be even (yuv420p)")
    lens_w = sizes[0][0] // 2 if layout == "side-by-side" else sizes[0][0]
    if calibration is None:
        calibration = ideal_calibration(lens_w, sizes[0][1])
        calibration_source = f"--fisheye-fov: two ideal lenses filling their {lens_w}x{sizes[0][1]} halves"
    if config.fisheye_fov_deg is not None:
        fov, fov_source = config.fisheye_fov_deg, "--fisheye-fov"
    elif calibration.fov_deg is not None:
        fov, fov_source = calibration.fov_deg, "the calibration"
    else:
        fov, fov_source = DEFAULT_FISHEYE_FOV_DEG, "assumed (the calibration gives none; --fisheye-fov sets it)"
    placed = stream_lenses(calibration, sizes, layout, fov)
    lenses = fisheye_rig(placed, (lens_w, sizes[0][1]), layout)
    record = SourceCameraRecord(model="dual-fisheye", layout=layout, calibration=calibration,
                          calibration_source=calibration_source, fov_source=fov_source, lenses=placed,
                          seam_feather_deg=config.seam_feather_deg, conventions=FISHEYE_CONVENTIONS)
    return DualFisheyeCamera(lenses, record, config.seam_feather_deg)


def fisheye_rig(placed: list[StreamLens], lens_size: tuple[int, int],
                layout: str) -> tuple[fisheye.FisheyeLens, fisheye.FisheyeLens]:
    """The geometry of two calibrated lenses on the stream(s) (`stream_lenses`' output)."""
    first, second = placed
    return fisheye.rig_on_streams(
        (first.facing_yaw_deg, second.facing_yaw_deg),
        ((first.centre_x_px, first.centre_y_px), (second.centre_x_px, second.centre_y_px)),
        (first.radius_px, second.radius_px), first.fov_deg,
        tuple((lens.pitch_deg, lens.yaw_deg, lens.roll_deg) for lens in placed), lens_size, layout == "side-by-side")


def check_equirect_layout(info: VideoInfo, config: SliceConfig) -> None:
    """Refuse what is not one equirectangular image per frame; warn where nothing says it is."""
    reason = unsupported_360_layout(info)
    if reason:
        raise BadInput(f"{info.path}: this is {reason}")
    meta = info.spherical
    if meta and meta.stereo_mode == "top-bottom" and config.stereo != "tb":
        LOG.warning("%s: metadata says top-bottom stereo; pass --stereo tb to take one eye", info.path)
    if meta and meta.stereo_mode == "left-right":
        raise BadInput(f"{info.path}: left-right stereo is not supported (only --stereo tb)")
    eye_h, eye_row = source_eye(info, config)
    if meta is None and info.width != 2 * eye_h:
        LOG.warning("%s: %dx%d eye is not 2:1 and no spherical metadata says it is equirectangular; slicing it as "
                    "a full 360x180 degree panorama anyway (perspective footage: `vidvpr import`)",
                    info.path, info.width, eye_h)
    if meta is None and info.width == 2 * eye_h:
        first = next(decode_frames(info.path))
        if looks_dual_fisheye(first.y[eye_row:eye_row + eye_h]):
            raise BadInput(f"{info.path}: this looks like a dual-fisheye frame (two image circles on black), not "
                           f"equirectangular; to slice it as dual fisheye, {FISHEYE_HINT}")
