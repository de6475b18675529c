"""The Insta360 trailer parser: layout, INFO protobuf, calibration string and time series, each
read back from what its writer makes, each damage refused naming the record; the real sample's
values when ../shared/data is present."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from vidvpr.core.camera_records import CropRecord
from vidvpr.core.errors import BadInput
from vidvpr.media.insv import read_calibration_file, read_trailer
from vidvpr.media.insv.calibration import (
    CalibrationError,
    format_calibration_text,
    ideal_calibration,
    normalised_roll_deg,
    parse_calibration_text,
    stream_lenses,
)
from vidvpr.media.insv.info import InfoError, InsvInfo, encode_info, parse_info
from vidvpr.media.insv.protowire import LENGTH, VARINT, WireError, encode_fields, encode_varint, parse_fields, read_varint
from vidvpr.media.insv.telemetry import GpsFix, decode_gps, decode_imu, encode_gps, encode_imu
from vidvpr.media.insv.trailer import GPS, INFO, MAGIC, TrailerError, build_trailer, cut_short, split_trailer

ONE_R = ("2_1480.69_1517.57_1520.13_-0.186949_0.0336344_-179.227_1479.61_4553.12_1526.43_0.82149_0.0305849_"
         "0.894074_6080_3040_3105")  # the sample's INFO field 5
VIDEO = b"\x00\x00\x00\x18ftypisom" + bytes(100)  # stands in for the MP4 before the trailer


def file_with(records: list[tuple[int, bytes]], **options: object) -> bytes:
    return VIDEO + build_trailer(records, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------- layout


@pytest.mark.parametrize("with_index", [False, True], ids=["walked", "indexed"])
def test_records_come_back_in_order_with_their_offsets(with_index: bool) -> None:
    records = [(INFO, b"info"), (0x300, b"g" * 40), (GPS, b""), (0x1F00, b"new")]
    data = file_with(records, with_index=with_index)
    layout = split_trailer(data, len(data))
    assert [(r.record_id, r.data) for r in layout.records] == records
    assert layout.version == 3 and layout.start == len(VIDEO) and layout.indexed == with_index
    for record in layout.records:
        assert data[record.offset:record.offset + len(record.data)] == record.data


def test_the_footer_is_padding_size_version_and_magic() -> None:
    data = file_with([(INFO, b"x")])
    assert data.endswith(MAGIC)
    size, version = struct.unpack("<II", data[-40:-32])
    assert (size, version) == (len(data) - len(VIDEO), 3) and data[-72:-40] == bytes(32)


@pytest.mark.parametrize("damage, match", [
    (lambda d: d[:-1], "no Insta360 magic"),
    (lambda d: d[:-72] + d[-72:-32] + b"0" * 32, "no Insta360 magic"),
    (lambda d: d[:-40] + struct.pack("<II", 10**9, 3) + MAGIC, "trailer size 1000000000 bytes is impossible"),
    (lambda d: d[:-40] + struct.pack("<II", 50, 3) + MAGIC, "trailer size 50 bytes is impossible"),
    (lambda d: d[:-36] + struct.pack("<I", 4) + MAGIC, "trailer version 4; vidvpr reads version 3 only"),
    (lambda d: d[:-78] + struct.pack("<HI", GPS, 10**6) + d[-72:], r"record 0x700 \(GPS\) at byte \d+: size 1000000 "
                                                                    "runs past the start of the trailer"),
    (lambda d: d[:-40] + struct.pack("<II", struct.unpack("<I", d[-40:-36])[0] + 3, 3) + MAGIC,
     "record header at trailer byte 3"),
], ids=["truncated", "wrong-magic", "size-past-file", "size-below-footer", "unknown-version", "record-past-start",
        "stray-bytes"])
def test_damaged_trailers_are_refused_naming_the_record(damage, match: str) -> None:
    data = damage(file_with([(INFO, encode_info(InsvInfo(camera_type="x"))), (GPS, b"")]))
    with pytest.raises(TrailerError, match=match):
        split_trailer(data, len(data))


def test_an_index_entry_past_the_trailer_is_refused_naming_the_record() -> None:
    data = bytearray(file_with([(GPS, b"abc")], with_index=True))
    entry = len(data) - 72 - 6 - 10  # the only index entry, just before the index's header
    struct.pack_into("<I", data, entry + 6, 10**6)  # its offset
    with pytest.raises(TrailerError, match=r"record 0x700 \(GPS\) \(index entry 0\).*run past the end"):
        split_trailer(bytes(data), len(data))


def test_unknown_and_unused_records_are_skipped_and_listed(tmp_path: Path) -> None:
    path = tmp_path / "x.insv"
    path.write_bytes(file_with([(INFO, encode_info(InsvInfo(camera_type="cam"))), (0x200, b"jpeg"), (0x4242, b"??")]))
    trailer = read_trailer(path)
    assert trailer.info is not None and trailer.info.camera_type == "cam"
    assert [record.name for record in trailer.skipped] == ["0x200 (thumbnail)", "0x4242 (unknown)"]


def test_a_damaged_trailer_is_one_line_naming_the_file_and_the_record(tmp_path: Path) -> None:
    path = tmp_path / "x.insv"
    path.write_bytes(file_with([(INFO, b"\x12\x05ab")]))  # field 2 says 5 bytes, holds 2
    with pytest.raises(BadInput, match=rf"^{path}: Insta360 trailer: record 0x101 \(INFO\): field 2 \(5 bytes\) runs "
                                       "past the end of the message$"):
        read_trailer(path)


# ---------------------------------------------------------------- a file cut short


def mp4_box(kind: bytes, payload_bytes: int) -> bytes:
    return struct.pack(">I4s", 8 + payload_bytes, kind) + bytes(payload_bytes)


MP4 = mp4_box(b"ftyp", 24) + mp4_box(b"moov", 100) + mp4_box(b"mdat", 5000)
INSV = MP4 + build_trailer([(INFO, encode_info(InsvInfo(camera_type="cam", calibration_text="x" * 40)))])


def test_a_file_whose_boxes_end_where_it_ends_was_not_cut() -> None:
    assert cut_short([(0, 32, b"ftyp"), (32, 108, b"moov"), (140, 5008, b"mdat")], 5148) is None


def test_a_file_that_is_not_mp4_is_not_judged() -> None:
    assert cut_short([(0, 1000, b"\xff\xd8\xff\xe0")], 500) is None and cut_short([], 0) is None


def test_a_file_ending_inside_a_box_has_its_video_cut() -> None:
    cut = cut_short([(0, 32, b"ftyp"), (32, 108, b"moov"), (140, 5008, b"mdat")], 2140)
    assert cut is not None and cut.inside_video
    assert cut.text == "the file ends inside its MP4 box 'mdat' (2,000 of its 5,008 bytes): truncated (an incomplete copy?)"


def test_bytes_after_the_boxes_that_only_look_like_a_box_are_a_trailer_cut_short() -> None:
    # an Insta360 trailer's bytes read as a header: a printable type, a size past the end of the file
    cut = cut_short([(0, 32, b"ftyp"), (32, 5008, b"mdat"), (5040, 10**8, b"DVPR")], 9040)
    assert cut is not None and not cut.inside_video
    assert cut.text.startswith("4,000 bytes follow its MP4 boxes with no footer at their end: a trailer cut short")


@pytest.mark.parametrize(("cut_at", "says"), [
    (len(MP4) - 1000, "the file ends inside its MP4 box 'mdat' (4,008 of its 5,008 bytes): truncated"),
    (len(MP4) + 10, "10 bytes follow its MP4 boxes with no footer at their end: a trailer cut short"),
    (len(INSV) - 1, f"{len(INSV) - 1 - len(MP4):,} bytes follow its MP4 boxes with no footer at their end"),
])
def test_a_recording_cut_short_says_where_it_was_cut(tmp_path: Path, cut_at: int, says: str) -> None:
    # it said only "no Insta360 magic at the end of the file (wrong magic or no trailer)"
    path = tmp_path / "cut.insv"
    path.write_bytes(INSV[:cut_at])
    with pytest.raises(BadInput) as info:
        read_trailer(path)
    assert str(info.value).startswith(f"{path}: Insta360 trailer: footer: no Insta360 magic at the end of the file "
                                      f"(wrong magic or no trailer); {says}")


def test_an_mp4_named_insv_is_not_called_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "equirect.insv"
    path.write_bytes(MP4)
    with pytest.raises(BadInput) as info:
        read_trailer(path)
    assert str(info.value).endswith("(wrong magic or no trailer)")


# ---------------------------------------------------------------- INFO


def test_varints_round_trip_up_to_64_bits() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**63, 2**64 - 1):
        assert read_varint(encode_varint(value), 0) == (value, len(encode_varint(value)))


@pytest.mark.parametrize("data, match", [(b"\x80", "runs past the end"), (b"\x08" + b"\xff" * 11, "longer than 10"),
                                         (b"\x0b", "wire type 3"), (b"\x00\x01", "field number 0"),
                                         (b"\x12\x09abc", "runs past the end")])
def test_malformed_protobuf_is_a_wire_error(data: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match):
        parse_fields(data)


def test_info_fields_round_trip_through_the_writer() -> None:
    info = InsvInfo(serial_number="S1", camera_type="vidvpr demo", firmware="v1", calibration_text=ONE_R,
                    total_time_s=12, frame_rate=30, first_frame_timestamp_us=-5, first_gps_timestamp_ms=309468,
                    rolling_shutter_ms=22.3, gyro_timestamp_ms=1.5, has_gyro_timestamp=True, is_raw_gyro=False,
                    lens_frame_size=(2880, 2880), window_crop=CropRecord(src_width_px=3040, src_height_px=3040,
                                                                         dst_width_px=2880, dst_height_px=2880),
                    gyro_record_bytes=56, acc_range_g=16, gyro_range_dps=2000)
    back = parse_info(encode_info(info))
    assert back.model_dump(exclude={"field_numbers"}) == info.model_dump(exclude={"field_numbers"})


def test_unknown_info_fields_are_skipped_and_a_repeated_one_keeps_the_last() -> None:
    data = encode_fields([(2, LENGTH, b"first"), (999, VARINT, 7), (2, LENGTH, b"last"), (77, LENGTH, b"\xff")])
    info = parse_info(data)
    assert info.camera_type == "last" and info.field_numbers == [2, 77, 999]


@pytest.mark.parametrize("fields, match", [([(2, VARINT, 5)], "field 2 is an integer, expected bytes or text"),
                                           ([(3, LENGTH, b"\xff\xfe")], r"field 3 \(firmware\) is not UTF-8"),
                                           ([(5, LENGTH, b"a\nb")], "not a line of printable text"),
                                           ([(24, LENGTH, b"1")], "field 24 is bytes or text, expected an integer")])
def test_info_fields_of_the_wrong_kind_are_refused_naming_the_field(fields: list, match: str) -> None:
    with pytest.raises(InfoError, match=match):
        parse_info(encode_fields(fields))


# ---------------------------------------------------------------- calibration


def test_the_one_r_string_reads_as_radius_centre_and_angles_per_lens() -> None:
    calibration = parse_calibration_text(ONE_R)
    first, second = calibration.lenses
    assert (first.radius_px, first.centre_x_px, first.centre_y_px) == (1480.69, 1517.57, 1520.13)
    assert (second.radius_px, second.centre_x_px, second.centre_y_px) == (1479.61, 4553.12, 1526.43)
    assert (first.pitch_deg, first.yaw_deg, first.roll_deg) == (-0.186949, 0.0336344, -179.227)
    assert (calibration.canvas_width_px, calibration.canvas_height_px, calibration.lens_code) == (6080, 3040, 3105)
    assert calibration.fov_deg is None  # the string has no field of view


def test_a_calibration_string_round_trips_through_the_writer() -> None:
    calibration = parse_calibration_text(ONE_R)
    assert parse_calibration_text(format_calibration_text(calibration)).lenses == calibration.lenses


@pytest.mark.parametrize("text, match", [
    ("3_" + ONE_R[2:], "lens count is 3"), (ONE_R + "_7", "17 numbers"), (ONE_R.replace("1517.57", "nan"), "item 3"),
    (ONE_R.replace("1480.69", "-5"), "radius_px"), (ONE_R.replace("4553.12", "9999"), "outside the 6080x3040 canvas"),
    (ONE_R.replace("6080", "6080.5"), "canvas width 6080.5 is not a positive whole number"), ("", "empty"),
    ("2_1e999" + ONE_R[1:], "item 2"),
])
def test_bad_calibration_strings_are_refused_naming_the_problem(text: str, match: str) -> None:
    with pytest.raises(CalibrationError, match=match):
        parse_calibration_text(text)


def test_one_r_lenses_are_cropped_then_scaled_to_the_stream() -> None:
    crop = CropRecord(src_width_px=3040, src_height_px=3040, dst_width_px=2880, dst_height_px=2880)
    calibration = parse_calibration_text(ONE_R).model_copy(update={"crop": crop})
    first, second = stream_lenses(calibration, [(736, 368)], "side-by-side", 200.0)
    scale = 368 / 2880
    assert first.centre_x_px == pytest.approx((1517.57 - 80) * scale)
    assert first.centre_y_px == pytest.approx((1520.13 - 80) * scale)
    assert first.radius_px == pytest.approx(1480.69 * scale)
    assert second.centre_x_px == pytest.approx(368 + (4553.12 - 3040 - 80) * scale)
    assert (first.facing_yaw_deg, second.facing_yaw_deg) == (0.0, 180.0)
    assert first.roll_deg == pytest.approx(0.773) and second.roll_deg == pytest.approx(0.894074)


def test_without_a_matching_crop_the_canvas_is_only_scaled() -> None:
    first, second = stream_lenses(parse_calibration_text(ONE_R), [(760, 760), (760, 760)], "stream-per-lens", 190.0)
    assert first.radius_px == pytest.approx(1480.69 / 4) and first.centre_x_px == pytest.approx(1517.57 / 4)
    assert second.stream == 1 and second.centre_x_px == pytest.approx((4553.12 - 3040) / 4)


@pytest.mark.parametrize("roll, expected", [(-179.227, 0.773), (0.894, 0.894), (180.0, 0.0), (90.0, -90.0), (-91.0, 89.0)])
def test_rolls_are_taken_modulo_180_degrees(roll: float, expected: float) -> None:
    assert normalised_roll_deg(roll) == pytest.approx(expected)


def test_ideal_lenses_fill_their_halves() -> None:
    calibration = ideal_calibration(368, 368)
    first, second = stream_lenses(calibration, [(736, 368)], "side-by-side", 200.0)
    assert (first.centre_x_px, first.centre_y_px, first.radius_px) == (184.0, 184.0, 184.0)
    assert second.centre_x_px == 552.0


@pytest.mark.parametrize("content", ["string", "json", "recording"])
def test_a_calibration_file_is_a_recording_a_json_or_the_string(tmp_path: Path, content: str) -> None:
    from vidvpr.core.camera_records import CalibrationFile

    expected = parse_calibration_text(ONE_R)
    path = tmp_path / "calibration"
    if content == "string":
        path.write_text(ONE_R + "\n")
    elif content == "json":
        CalibrationFile(calibration=expected).save(path)
    else:
        path.write_bytes(file_with([(INFO, encode_info(InsvInfo(calibration_text=ONE_R)))]))
    assert read_calibration_file(path).lenses == expected.lenses


def test_a_json_list_as_calibration_file_is_called_json_not_a_calibration_string(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text("[1, 2]\n")
    with pytest.raises(BadInput, match=r"calibration\.json: expected a JSON object .*found list"):
        read_calibration_file(path)


def test_a_recording_without_a_calibration_string_is_refused_naming_the_record(tmp_path: Path) -> None:
    path = tmp_path / "other.insv"
    path.write_bytes(file_with([(INFO, encode_info(InsvInfo(camera_type="x")))]))
    with pytest.raises(BadInput, match=r"record 0x101 \(INFO\) has no lens calibration string \(field 5\)"):
        read_calibration_file(path)


# ---------------------------------------------------------------- time series


def test_gps_fixes_round_trip_with_hemispheres_from_the_signs() -> None:
    fixes = [GpsFix(1_700_000_000.25, "A", -33.8568, 151.2153, 1.5, 90.0, 12.0),
             GpsFix(1_700_000_000.999, "A", 47.5, -122.25, 0.0, 0.0, -5.0), GpsFix(1.0, "V", 0.0, 0.0, 0.0, 0.0, 0.0)]
    back, leftover = decode_gps(encode_gps(fixes) + b"xx")
    assert leftover == 2
    assert back == fixes
    assert [fix.valid for fix in back] == [True, True, False]


@pytest.mark.parametrize("fix", [GpsFix(1.0, "A", 0.0, 0.0, 0.0, 0.0, 158.7), GpsFix(1.0, "V", 48.0, 11.0, 0, 0, 0),
                                 GpsFix(1.0, "A", 91.0, 11.0, 0, 0, 0), GpsFix(1.0, "A", math.nan, 11.0, 0, 0, 0)],
                         ids=["all-zero", "void", "off-the-globe", "nan"])
def test_fixes_without_a_position_are_not_valid(fix: GpsFix) -> None:
    assert not fix.valid


def test_raw_imu_samples_are_scaled_by_the_info_ranges() -> None:
    sample = struct.pack("<Q6H", 5_000_000, 32768 + 1024, 32768, 32768 - 1024, 32768 + 16384, 32768, 32768)
    series = decode_imu(sample + b"\n", 20, acc_range_g=32, gyro_range_dps=2000)
    assert series.t_s.tolist() == [5.0] and series.leftover_bytes == 1 and series.units == "g, rad/s"
    assert series.values[0, :3].tolist() == [1.0, 0.0, -1.0]
    assert series.values[0, 3] == pytest.approx(math.radians(1000))


def test_float_imu_samples_round_trip() -> None:
    t_s, values = np.array([0.5, 0.501]), np.arange(12, dtype=float).reshape(2, 6)
    series = decode_imu(encode_imu(t_s, values), 56)
    assert np.allclose(series.t_s, t_s) and np.array_equal(series.values, values)


# ---------------------------------------------------------------- the real sample


@pytest.mark.shared_data
def test_the_sample_trailer_is_read_whole(shared_data: Path) -> None:
    trailer = read_trailer(shared_data / "sample.insv")
    assert trailer.layout.version == 3 and trailer.layout.size == 28384
    assert [record.record_id for record in trailer.layout.records] == [
        0xc00, 0xb00, 0xa00, 0x900, 0x700, 0x600, 0x500, 0x400, 0x300, 0x200, 0x101]
    info = trailer.info
    assert info is not None and (info.camera_type, info.firmware) == ("Insta360 OneR", "v2.0.0_build11")
    assert info.calibration_text == ONE_R and info.window_crop is not None
    assert info.first_frame_timestamp_us == 309468418 and info.first_gps_timestamp_ms == 309468
    assert trailer.imu is not None and len(trailer.imu.t_s) == 1178 and trailer.imu.leftover_bytes == 1
    assert np.median(np.diff(trailer.imu.t_s)) == pytest.approx(0.001)  # 1 kHz
    norm_g = np.linalg.norm(trailer.imu.values[:, :3], axis=1)
    assert np.median(norm_g) == pytest.approx(1.0, abs=0.05)  # gravity, with INFO's ±32 g range
    assert trailer.exposure is not None and len(trailer.exposure.t_s) == 40
    assert trailer.frame_times is not None and len(trailer.frame_times.t_s) == 77
    assert trailer.gps is not None and len(trailer.gps) == 2 and not any(fix.valid for fix in trailer.gps)
    assert {record.record_id for record in trailer.skipped} == {0x200, 0x500, 0x900, 0xa00, 0xb00, 0xc00}
