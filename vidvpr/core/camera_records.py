"""How a 360° source was read: its camera model and, for dual fisheye, the lens calibration used.

`FisheyeCalibration` is what a dual-fisheye camera says about its two lenses (the Insta360 INFO
record's calibration string, decoded by `vidvpr.media.insv.calibration`), in the pixels of the
canvas the camera calibrated on. `SourceCameraRecord` is what `vidvpr slice` records of its 360°
source in each sidecar (`source.camera`): the model, the frame layout, that calibration, where it
came from, and the lenses as they were actually applied to the stream (scaled and cropped to its
size). `CalibrationFile` is the file
`--calibration FILE` reads (and `vidvpr probe --calibration-out` writes).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vidvpr.core.records import Record, Strict

CameraModel = Literal["equirectangular", "dual-fisheye"]
Layout = Literal["equirectangular", "side-by-side", "stream-per-lens"]  # dual fisheye: one stream, or one per lens


class LensCalibration(Strict):
    """One fisheye lens in the calibration canvas: image-circle centre and radius, and the small
    mounting rotations the camera measured (degrees, about the lens's own x, y and optical axes)."""

    centre_x_px: float
    centre_y_px: float
    radius_px: float = Field(gt=0)
    pitch_deg: float = Field(0.0, ge=-360, le=360)
    yaw_deg: float = Field(0.0, ge=-360, le=360)
    roll_deg: float = Field(0.0, ge=-360, le=360)


class CropRecord(Strict):
    """The camera's sensor window: each lens's `src` square of the canvas delivered as `dst` pixels,
    centred (the INFO record's window crop)."""

    src_width_px: int = Field(gt=0)
    src_height_px: int = Field(gt=0)
    dst_width_px: int = Field(gt=0)
    dst_height_px: int = Field(gt=0)


class FisheyeCalibration(Strict):
    """Two back-to-back fisheye lenses side by side on a `canvas_width_px` × `canvas_height_px`
    canvas; lens 0 on the left half faces forward, lens 1 on the right half backward."""

    canvas_width_px: int = Field(gt=0)
    canvas_height_px: int = Field(gt=0)
    lenses: tuple[LensCalibration, LensCalibration]
    fov_deg: float | None = Field(None, gt=90, lt=360, description="None: the calibration does not say")
    crop: CropRecord | None = None
    lens_code: int | None = Field(None, description="the string's last number (lens type; meaning unknown)")
    text: str | None = Field(None, description="the calibration string as the camera wrote it")

    @model_validator(mode="after")
    def _centres_on_canvas(self) -> FisheyeCalibration:
        for index, lens in enumerate(self.lenses):
            if not (0 <= lens.centre_x_px <= self.canvas_width_px and 0 <= lens.centre_y_px <= self.canvas_height_px):
                raise ValueError(f"lens {index}: centre ({lens.centre_x_px:g}, {lens.centre_y_px:g}) is outside the "
                                 f"{self.canvas_width_px}x{self.canvas_height_px} canvas")
        return self


class StreamLens(Strict):
    """A lens as applied to the decoded stream: centre and radius in the stream's pixels (pixel
    centres at +0.5), which stream holds it, its field of view and its rotation."""

    stream: int = Field(ge=0)
    centre_x_px: float
    centre_y_px: float
    radius_px: float = Field(gt=0)
    fov_deg: float = Field(gt=0, lt=360)
    facing_yaw_deg: float
    pitch_deg: float
    yaw_deg: float
    roll_deg: float


class SourceCameraRecord(Strict):
    """How `vidvpr slice` read its 360° source: camera model, layout and (dual fisheye) calibration."""

    model: CameraModel
    layout: Layout
    calibration: FisheyeCalibration | None = None
    calibration_source: str | None = None
    fov_source: str | None = None
    lenses: list[StreamLens] | None = None
    seam_feather_deg: float | None = None
    conventions: str | None = None


class CalibrationFile(Record):
    """`--calibration FILE`: a dual-fisheye calibration saved for recordings whose trailer is damaged."""

    SCHEMA = "vidvpr.fisheye-calibration/1"
    KIND = "fisheye calibration file"

    kind: Literal["fisheye_calibration"] = "fisheye_calibration"
    calibration: FisheyeCalibration
    source: str | None = None
