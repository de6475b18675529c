"""The INFO record (0x101): a protobuf message describing the camera and the recording.

Only the fields vidvpr uses are decoded, by number (the numbering of insvtools'
extra_metadata.proto and telemetry-parser's extra_info.rs, which agree on these): 1 serial
number, 2 camera model, 3 firmware, 5 lens calibration string ("offset"), 10 total time (s),
14 a sample gyro record (its length is the gyro record size), 17 the factory calibration string,
19 per-lens frame size, 20 frame rate, 24 first frame time (µs, camera clock), 25 rolling-shutter
readout (ms), 27 sensor window crop, 28 gyro time offset (ms), 29 whether 28 applies, 36 first
GPS time (ms, camera clock: the sample's value equals its first frame time), 53/54 newer
calibration strings (kept as text), 62 raw gyro, 65 IMU ranges. Every other field is skipped.
"""

from __future__ import annotations

import struct
from typing import Any

from pydantic import Field

from vidvpr.core.camera_records import CropRecord
from vidvpr.core.records import Strict
from vidvpr.media.insv.protowire import FIXED64, LENGTH, VARINT, WireError, double_of, encode_fields, parse_fields, signed64

TEXT_FIELDS = {1: "serial_number", 2: "camera_type", 3: "firmware", 5: "calibration_text",
               17: "original_calibration_text", 53: "calibration_v2_text", 54: "calibration_v3_text"}
INT_FIELDS = {10: "total_time_s", 20: "frame_rate", 24: "first_frame_timestamp_us", 36: "first_gps_timestamp_ms"}
BOOL_FIELDS = {29: "has_gyro_timestamp", 62: "is_raw_gyro"}
DOUBLE_FIELDS = {25: "rolling_shutter_ms", 28: "gyro_timestamp_ms"}
DIMENSION, GYRO_SAMPLE, WINDOW_CROP, GYRO_RANGES = 19, 14, 27, 65
MAX_TEXT_CHARS = 4096


class InfoError(ValueError):
    """The INFO message is damaged; the message names the field."""


class InsvInfo(Strict):
    """What the INFO record says, for the fields vidvpr reads (None: not in the record)."""

    serial_number: str | None = None
    camera_type: str | None = None
    firmware: str | None = None
    calibration_text: str | None = None
    original_calibration_text: str | None = None
    calibration_v2_text: str | None = None
    calibration_v3_text: str | None = None
    total_time_s: int | None = None
    frame_rate: int | None = None
    first_frame_timestamp_us: int | None = None
    first_gps_timestamp_ms: int | None = None
    rolling_shutter_ms: float | None = None
    gyro_timestamp_ms: float | None = None
    has_gyro_timestamp: bool | None = None
    is_raw_gyro: bool | None = None
    lens_frame_size: tuple[int, int] | None = Field(None, description="per-lens frame size (field 19)")
    window_crop: CropRecord | None = None
    gyro_record_bytes: int | None = Field(None, description="length of the sample gyro record (field 14)")
    acc_range_g: int | None = None
    gyro_range_dps: int | None = None
    field_numbers: list[int] = Field(default_factory=list, description="every field number present")


def _expect(number: int, wire_type: int, wanted: int) -> None:
    if wire_type != wanted:
        kinds = {VARINT: "an integer", FIXED64: "a 64-bit number", LENGTH: "bytes or text", 5: "a 32-bit number"}
        raise InfoError(f"field {number} is {kinds.get(wire_type, 'unknown')}, expected {kinds[wanted]}")


def _submessage(number: int, raw: Any, keys: dict[int, str]) -> dict[str, int]:
    """Varint fields of a nested message (the frame size, crop and IMU range messages)."""
    try:
        inner = parse_fields(raw)
    except WireError as exc:
        raise InfoError(f"field {number}: {exc}") from None
    found: dict[str, int] = {}
    for sub, wire_type, value in inner:
        if sub in keys:
            _expect(number, wire_type, VARINT)
            found[keys[sub]] = signed64(value)  # type: ignore[arg-type]
    return found


def parse_info(data: bytes) -> InsvInfo:
    """Decode an INFO record's bytes; InfoError names the damaged field."""
    try:
        fields = parse_fields(data)
    except WireError as exc:
        raise InfoError(str(exc)) from None
    values: dict[str, Any] = {"field_numbers": sorted({number for number, _, _ in fields})}
    for number, wire_type, raw in fields:  # a repeated scalar field: the last one wins, as in protobuf
        if number in TEXT_FIELDS:
            _expect(number, wire_type, LENGTH)
            try:
                text = raw.decode("utf-8")  # type: ignore[union-attr]
            except UnicodeDecodeError:
                raise InfoError(f"field {number} ({TEXT_FIELDS[number]}) is not UTF-8 text") from None
            if len(text) > MAX_TEXT_CHARS or not text.isprintable():
                raise InfoError(f"field {number} ({TEXT_FIELDS[number]}) is not a line of printable text")
            values[TEXT_FIELDS[number]] = text
        elif number in INT_FIELDS:
            _expect(number, wire_type, VARINT)
            values[INT_FIELDS[number]] = signed64(raw)  # type: ignore[arg-type]
        elif number in BOOL_FIELDS:
            _expect(number, wire_type, VARINT)
            values[BOOL_FIELDS[number]] = bool(raw)
        elif number in DOUBLE_FIELDS:
            _expect(number, wire_type, FIXED64)
            value = double_of(raw)  # type: ignore[arg-type]
            if value == value and abs(value) != float("inf"):  # NaN or infinity: treated as absent
                values[DOUBLE_FIELDS[number]] = value
        elif number == GYRO_SAMPLE:
            _expect(number, wire_type, LENGTH)
            values["gyro_record_bytes"] = len(raw)  # type: ignore[arg-type]
        elif number == DIMENSION:
            _expect(number, wire_type, LENGTH)
            size = _submessage(number, raw, {1: "x", 2: "y"})
            if size.get("x", 0) > 0 and size.get("y", 0) > 0:
                values["lens_frame_size"] = (size["x"], size["y"])
        elif number == WINDOW_CROP:
            _expect(number, wire_type, LENGTH)
            crop = _submessage(number, raw, {1: "src_width_px", 2: "src_height_px", 3: "dst_width_px", 4: "dst_height_px"})
            if len(crop) == 4 and min(crop.values()) > 0:
                values["window_crop"] = CropRecord(**crop)
        elif number == GYRO_RANGES:
            _expect(number, wire_type, LENGTH)
            ranges = _submessage(number, raw, {1: "acc_range_g", 2: "gyro_range_dps"})
            values.update({key: value for key, value in ranges.items() if value > 0})
    return InsvInfo(**values)


def encode_info(info: InsvInfo) -> bytes:
    """INFO record bytes for `info` (the writer of `parse_info`; used by the demo camera).

    `gyro_record_bytes` is written as a zeroed sample record of that length.
    """
    fields: list[tuple[int, int, int | bytes]] = []
    for number, name in sorted({**TEXT_FIELDS, **INT_FIELDS, **BOOL_FIELDS, **DOUBLE_FIELDS}.items()):
        value = getattr(info, name)
        if value is None:
            continue
        if number in TEXT_FIELDS:
            fields.append((number, LENGTH, value.encode("utf-8")))
        elif number in DOUBLE_FIELDS:
            fields.append((number, FIXED64, struct.pack("<d", value)))
        else:
            fields.append((number, VARINT, int(value)))
    if info.lens_frame_size is not None:
        fields.append((DIMENSION, LENGTH, encode_fields([(1, VARINT, info.lens_frame_size[0]),
                                                         (2, VARINT, info.lens_frame_size[1])])))
    if info.window_crop is not None:
        crop = info.window_crop
        fields.append((WINDOW_CROP, LENGTH, encode_fields(
            [(1, VARINT, crop.src_width_px), (2, VARINT, crop.src_height_px),
             (3, VARINT, crop.dst_width_px), (4, VARINT, crop.dst_height_px)])))
    if info.gyro_record_bytes is not None:
        fields.append((GYRO_SAMPLE, LENGTH, bytes(info.gyro_record_bytes)))
    if info.acc_range_g is not None or info.gyro_range_dps is not None:
        fields.append((GYRO_RANGES, LENGTH, encode_fields(
            [(k, VARINT, v) for k, v in ((1, info.acc_range_g), (2, info.gyro_range_dps)) if v is not None])))
    return encode_fields(sorted(fields, key=lambda field: field[0]))
