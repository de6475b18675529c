"""The lens calibration string of the INFO record, and the two lenses it describes on a stream.

The string ("offset", INFO field 5) is numbers joined by underscores, e.g. the sample's
``2_1480.69_1517.57_1520.13_-0.187_0.034_-179.227_1479.61_4553.12_1526.43_0.821_0.031_0.894_6080_3040_3105``:
the lens count (2), six numbers per lens, the calibration canvas's width and height (both lenses
side by side), and a lens code whose meaning no public reader knows.

What the six numbers are was derived, not documented, and is stated with its confidence:

* radius, centre x, centre y of the lens's image circle in canvas pixels (fairly sure). Across
  cameras the centres sit within a few pixels of each half's middle (x ≈ 1520 and 4560, y ≈ 1520
  here) while the first number is the same for both lenses and 40 px short of the half height: a
  radius. The public readers kugelblick (Python) and Kyerag's format notes read them this way; one
  other (insta360stitch) reads "x, y, r", which puts lens 1's centre below a 3040-high canvas.
  On the sample, whose lens caps let only a rim of light through, that rim lies 1-4 px outside
  the circle this reading predicts (once cropped as below), and 11 px outside the uncropped one.
* pitch, yaw, roll in degrees about the lens's own x, y and optical axes (less sure): sub-degree
  mounting tolerances, except that one lens of some models carries a roll near ±180°, which
  kugelblick found (against the vendor's stitch of a ONE R) to be a convention, not a rotation of
  the picture: rolls are applied modulo 180°. The order in which the three compose cannot be
  told from sub-degree angles.
* no field of view: an equidistant model needs one, so it comes from `--fisheye-fov` or vidvpr's
  assumption (`vidvpr.slicing.config.DEFAULT_FISHEYE_FOV_DEG`), recorded with the views.

The canvas is the sensor's; the stream is smaller. INFO field 27 says which centred window of each
lens's square was delivered (3040 → 2880 px on the sample), and the delivered square is then scaled
to the stream (2880 → 368 px per lens on the sample): centre and radius follow both steps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from pydantic import ValidationError

from vidvpr.core.camera_records import CropRecord, FisheyeCalibration, LensCalibration, StreamLens
from vidvpr.core.records import validation_problem

NUMBER = re.compile(r"-?\d{1,12}(\.\d{1,12})?([eE][-+]?\d{1,3})?")
PER_LENS = 6
LENS_FACING_YAW_DEG = (0.0, 180.0)  # lens 0 forward (vidvpr's yaw 0), lens 1 backward


class CalibrationError(ValueError):
    """The calibration string or values cannot describe two lenses."""


def _numbers(text: str) -> list[float]:
    tokens = text.strip().split("_")
    for index, token in enumerate(tokens):
        if not NUMBER.fullmatch(token):
            raise CalibrationError(f"item {index + 1} ({token[:20]!r}) is not a number")
    values = [float(token) for token in tokens]
    for index, value in enumerate(values):
        if not math.isfinite(value):
            raise CalibrationError(f"item {index + 1} ({tokens[index][:20]!r}) is too large")
    return values


def parse_calibration_text(text: str) -> FisheyeCalibration:
    """The lenses of a calibration string: 2, six numbers per lens, canvas width, height[, code]."""
    if not text or len(text) > 4096:
        raise CalibrationError("empty" if not text else "longer than any calibration string")
    values = _numbers(text)
    if values[0] != 2:
        raise CalibrationError(f"lens count is {values[0]:g}; a dual-fisheye calibration has 2")
    expected = 1 + 2 * PER_LENS + 2
    if len(values) not in (expected, expected + 1):
        raise CalibrationError(f"{len(values)} numbers; this calibration format has {expected} or {expected + 1} "
                               f"(a newer format with {len(values) - 3} numbers for two lenses is not read)")
    width, height = values[1 + 2 * PER_LENS:3 + 2 * PER_LENS]
    code = values[expected] if len(values) > expected else None
    for name, value in (("canvas width", width), ("canvas height", height), ("lens code", code)):
        if value is not None and (value != int(value) or not 0 < value < 2**31):
            raise CalibrationError(f"{name} {value:g} is not a positive whole number")
    lenses = []
    for lens in range(2):
        radius, centre_x, centre_y, pitch, yaw, roll = values[1 + PER_LENS * lens:1 + PER_LENS * (lens + 1)]
        lenses.append({"radius_px": radius, "centre_x_px": centre_x, "centre_y_px": centre_y,
                       "pitch_deg": pitch, "yaw_deg": yaw, "roll_deg": roll})
    try:
        return FisheyeCalibration(canvas_width_px=int(width), canvas_height_px=int(height),
                                  lenses=(LensCalibration(**lenses[0]), LensCalibration(**lenses[1])),
                                  lens_code=None if code is None else int(code), text=text.strip())
    except ValidationError as exc:
        raise CalibrationError(validation_problem(exc)) from None


def format_calibration_text(calibration: FisheyeCalibration) -> str:
    """The calibration string of `calibration` (the writer of `parse_calibration_text`)."""
    values: list[float | int] = [2]
    for lens in calibration.lenses:
        values += [lens.radius_px, lens.centre_x_px, lens.centre_y_px, lens.pitch_deg, lens.yaw_deg, lens.roll_deg]
    values += [calibration.canvas_width_px, calibration.canvas_height_px]
    if calibration.lens_code is not None:
        values.append(calibration.lens_code)
    return "_".join(str(value) if isinstance(value, int) else repr(float(value)) for value in values)


def normalised_roll_deg(roll_deg: float) -> float:
    """A roll taken modulo 180°, into [-90, 90): the ±180° some cameras write is a convention."""
    return (roll_deg + 90.0) % 180.0 - 90.0


def stream_lenses(calibration: FisheyeCalibration, stream_sizes: Sequence[tuple[int, int]], layout: str,
                  fov_deg: float) -> list[StreamLens]:
    """The two lenses on the decoded stream(s): canvas pixels through the sensor crop (when the
    calibration has one matching its canvas) to the stream's size, lens 1 in the right half
    (side-by-side, one stream) or in stream 1 (one stream per lens)."""
    canvas_w, canvas_h = calibration.canvas_width_px / 2.0, float(calibration.canvas_height_px)
    crop = calibration.crop
    if crop is not None and (crop.src_width_px, crop.src_height_px) == (canvas_w, canvas_h):
        origin_x, origin_y = (crop.src_width_px - crop.dst_width_px) / 2.0, (crop.src_height_px - crop.dst_height_px) / 2.0
        window_w, window_h = float(crop.dst_width_px), float(crop.dst_height_px)
    else:
        origin_x = origin_y = 0.0
        window_w, window_h = canvas_w, canvas_h
    lenses = []
    for index, lens in enumerate(calibration.lenses):
        if layout == "side-by-side":
            stream, (width, height) = 0, stream_sizes[0]
            cell_w, offset_x = width / 2.0, index * width / 2.0
        elif layout == "stream-per-lens":
            stream, (width, height) = index, stream_sizes[index]
            cell_w, offset_x = float(width), 0.0
        else:
            raise ValueError(f"not a dual-fisheye layout: {layout}")
        scale_x, scale_y = cell_w / window_w, height / window_h
        lenses.append(StreamLens(
            stream=stream,
            centre_x_px=(lens.centre_x_px - index * canvas_w - origin_x) * scale_x + offset_x,
            centre_y_px=(lens.centre_y_px - origin_y) * scale_y,
            radius_px=lens.radius_px * (scale_x + scale_y) / 2.0, fov_deg=fov_deg,
            facing_yaw_deg=LENS_FACING_YAW_DEG[index], pitch_deg=lens.pitch_deg, yaw_deg=lens.yaw_deg,
            roll_deg=normalised_roll_deg(lens.roll_deg)))
    return lenses


def ideal_calibration(lens_width_px: int, lens_height_px: int, crop: CropRecord | None = None) -> FisheyeCalibration:
    """Two perfect lenses filling their halves (the `--fisheye-fov` fallback for a damaged trailer):
    circles centred in each `lens_width_px` × `lens_height_px` half, touching its shorter side."""
    radius = min(lens_width_px, lens_height_px) / 2.0
    lenses = tuple(LensCalibration(centre_x_px=(index + 0.5) * lens_width_px, centre_y_px=lens_height_px / 2.0,
                                   radius_px=radius) for index in range(2))
    return FisheyeCalibration(canvas_width_px=2 * lens_width_px, canvas_height_px=lens_height_px,
                              lenses=lenses, crop=crop)  # type: ignore[arg-type]
