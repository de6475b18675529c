"""Reading an Insta360 file's trailer: the file shell around the pure decoders.

`read_trailer` finds the trailer at the end of the file, splits its records, decodes the ones
vidvpr uses (INFO, gyro, exposure, frame timestamps, GPS) and lists the others as skipped. Any
damage is one BadInput naming the file and the record. `read_calibration_file` reads what
`--calibration FILE` names: another recording of the same camera, a calibration JSON
(`vidvpr probe --calibration-out`) or a text file holding the calibration string.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import BinaryIO
from pathlib import Path

from vidvpr.core.camera_records import CalibrationFile, FisheyeCalibration
from vidvpr.core.errors import BadInput
from vidvpr.core.records import read_text_file
from vidvpr.media.insv.calibration import CalibrationError, parse_calibration_text
from vidvpr.media.insv.info import InfoError, InsvInfo, parse_info
from vidvpr.media.insv.telemetry import (
    GpsFix,
    Series,
    TelemetryError,
    decode_exposure,
    decode_frame_times,
    decode_gps,
    decode_imu,
    imu_record_bytes,
)
from vidvpr.media.insv.trailer import (
    EXPOSURE,
    FOOTER_BYTES,
    FRAME_TIMES,
    GPS,
    GYRO,
    INFO,
    MAGIC,
    MP4_BOX_HEADER_BYTES,
    CutShort,
    RawRecord,
    TrailerError,
    TrailerLayout,
    cut_short,
    footer,
    has_magic,
    split_trailer,
)

LOG = logging.getLogger(__name__)
DECODED = (INFO, GYRO, EXPOSURE, FRAME_TIMES, GPS)


@dataclass(frozen=True)
class InsvTrailer:
    """An Insta360 trailer, decoded: the layout, INFO and its calibration, and the time series."""

    layout: TrailerLayout
    info: InsvInfo | None
    calibration: FisheyeCalibration | None  # INFO's calibration string, with INFO's sensor crop
    imu: Series | None
    exposure: Series | None
    frame_times: Series | None
    gps: list[GpsFix] | None
    gps_leftover_bytes: int = 0
    skipped: tuple[RawRecord, ...] = field(default_factory=tuple)


def _joined(records: list[RawRecord], record_id: int) -> tuple[bytes, RawRecord] | None:
    """The data of every record with `record_id`, in file order (cameras may split a series)."""
    found = [record for record in records if record.record_id == record_id]
    return (b"".join(record.data for record in found), found[0]) if found else None


def decode_trailer(layout: TrailerLayout) -> InsvTrailer:
    """Decode the records vidvpr uses; TrailerError names the record that cannot be decoded."""
    records = list(layout.records)
    info = calibration = None
    info_record = next((record for record in records if record.record_id == INFO), None)
    if info_record is not None:
        try:
            info = parse_info(info_record.data)
            if info.calibration_text:
                calibration = parse_calibration_text(info.calibration_text).model_copy(
                    update={"crop": info.window_crop})
        except InfoError as exc:
            raise TrailerError(f"record {info_record.name}: {exc}") from None
        except CalibrationError as exc:
            raise TrailerError(f"record {info_record.name}: lens calibration string (field 5): {exc}") from None
    imu = exposure = frame_times = gps = None
    gps_leftover = 0
    try:
        if (found := _joined(records, GYRO)) is not None:
            data, record = found
            size = imu_record_bytes(info.gyro_record_bytes if info else None, info.is_raw_gyro if info else None,
                                    len(data))
            imu = decode_imu(data, size, info.acc_range_g if info else None, info.gyro_range_dps if info else None)
        if (found := _joined(records, EXPOSURE)) is not None:
            data, record = found
            exposure = decode_exposure(data)
        if (found := _joined(records, FRAME_TIMES)) is not None:
            data, record = found
            frame_times = decode_frame_times(data)
        if (found := _joined(records, GPS)) is not None:
            data, record = found
            gps, gps_leftover = decode_gps(data)
    except TelemetryError as exc:
        raise TrailerError(f"record {record.name}: {exc}") from None
    skipped = tuple(record for record in records if record.record_id not in DECODED)
    return InsvTrailer(layout, info, calibration, imu, exposure, frame_times, gps, gps_leftover, skipped)


def has_trailer(path: Path) -> bool:
    """Whether the file ends with the Insta360 magic (an .insv/.insp recording, perhaps renamed)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            if handle.tell() < len(MAGIC):
                return False
            handle.seek(-len(MAGIC), 2)
            return handle.read() == MAGIC
    except OSError:
        return False


MAX_MP4_BOXES = 10_000  # top-level boxes walked when looking for where a file was cut


def _top_level_boxes(handle: BinaryIO, file_size: int) -> list[tuple[int, int, bytes]]:
    """(offset, size, type) of the top-level MP4 boxes from the file's start, up to the first that
    is not a box or runs past the end of the file (included)."""
    boxes: list[tuple[int, int, bytes]] = []
    offset = 0
    while offset < file_size and len(boxes) < MAX_MP4_BOXES:
        handle.seek(offset)
        head = handle.read(2 * MP4_BOX_HEADER_BYTES)
        if len(head) < MP4_BOX_HEADER_BYTES:
            boxes.append((offset, 0, b""))
            break
        size, kind = struct.unpack_from(">I4s", head)
        if size == 1 and len(head) == 2 * MP4_BOX_HEADER_BYTES:
            size = struct.unpack_from(">Q", head, MP4_BOX_HEADER_BYTES)[0]
        elif size == 0:
            size = file_size - offset  # the last box, to the end of the file
        boxes.append((offset, size, kind))
        if size < MP4_BOX_HEADER_BYTES or offset + size > file_size:
            break
        offset += size
    return boxes


def cut_short_mp4(path: Path) -> CutShort | None:
    """How an MP4 file without the Insta360 footer looks cut short (`trailer.cut_short`), or None."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            file_size = handle.tell()
            handle.seek(max(0, file_size - FOOTER_BYTES))
            if has_magic(handle.read()):
                return None
            return cut_short(_top_level_boxes(handle, file_size), file_size)
    except OSError:
        return None


def read_trailer(path: Path) -> InsvTrailer:
    """The decoded trailer of an Insta360 file, or BadInput naming the file and the record; a file
    cut short (no footer left) says so, and whether the cut reaches into the video."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            file_size = handle.tell()
            handle.seek(max(0, file_size - FOOTER_BYTES))
            size, _ = footer(handle.read(), file_size)
            handle.seek(file_size - size)
            layout = split_trailer(handle.read(size), file_size)
        trailer = decode_trailer(layout)
    except TrailerError as exc:
        cut = cut_short_mp4(path)
        raise BadInput(f"{path}: Insta360 trailer: {exc}{'; ' + cut.text if cut else ''}") from None
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, not an Insta360 file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None
    if trailer.skipped:
        LOG.info("%s: skipped trailer records %s", path, ", ".join(record.name for record in trailer.skipped))
    return trailer


def calibration_of(path: Path, trailer: InsvTrailer) -> FisheyeCalibration:
    """The trailer's lens calibration, or BadInput naming the INFO record when it has none."""
    if trailer.info is None:
        raise BadInput(f"{path}: Insta360 trailer has no INFO record (0x101), so no lens calibration")
    if trailer.calibration is None:
        raise BadInput(f"{path}: Insta360 trailer: record 0x101 (INFO) has no lens calibration string (field 5)")
    return trailer.calibration


def read_calibration_file(path: Path) -> FisheyeCalibration:
    """A lens calibration from another recording's trailer, a calibration JSON or a calibration
    string in a text file; BadInput naming the file."""
    path = Path(path)
    if has_trailer(path):
        return calibration_of(path, read_trailer(path))
    text = read_text_file(path, "calibration file").strip()
    if text.startswith(("{", "[")):  # JSON (a list is refused as such, not read as a calibration string)
        return CalibrationFile.load(path).calibration
    try:
        return parse_calibration_text(text)
    except CalibrationError as exc:
        raise BadInput(f"{path}: not a calibration string ({exc}); give an Insta360 recording, the JSON of "
                       "`vidvpr probe --calibration-out` or the string itself") from None
