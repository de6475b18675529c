"""Specification of vidvpr.geo.trajectory and vidvpr.geo.readers: readers, UTM, interpolation,
heading and time alignment."""

from __future__ import annotations

import json
import re
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from vidvpr.core.errors import BadInput
from vidvpr.geo.trajectory import (
    Trajectory,
    check_same_zone,
    coverage,
    heading_from_travel,
    lat_lon,
    position_at,
    view_heading_deg,
)
from vidvpr.geo.readers import read_trajectory

# Two points near Munich (UTM 32U) and one across the 12°E zone boundary (33U).
MUNICH = (48.137, 11.575)
ACROSS_ZONE = (48.137, 12.010)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def local(t, east, north, heading=None) -> Trajectory:
    arr = lambda v: np.asarray(v, dtype=float)  # noqa: E731
    hdg = None if heading is None else arr(heading)
    return Trajectory(arr(t), arr(east), arr(north), None, hdg, None, None, "walk.csv", "csv-xy")


def tum_line(t, xyz, quat_xyzw) -> str:
    return " ".join(str(v) for v in (t, *xyz, *quat_xyzw))


def yaw_quat(axis: str, angle_deg: float) -> list[float]:
    """Quaternion [qx, qy, qz, qw] rotating by angle_deg about the x, y or z axis (right-hand rule)."""
    half = math.radians(angle_deg) / 2
    vec = [0.0, 0.0, 0.0]
    vec["xyz".index(axis)] = math.sin(half)
    return [*vec, math.cos(half)]


# ---------------------------------------------------------------- CSV readers


def test_csv_xy_reads_positions_height_and_heading(tmp_path):
    path = write(tmp_path, "walk.csv", "t,x,y,z,heading\n0,1,2,3,90\n1,4,6,3,-10\n")
    traj = read_trajectory(path)
    assert traj.format == "csv-xy" and traj.source == str(path)
    np.testing.assert_allclose(traj.t_s, [0, 1])
    np.testing.assert_allclose(traj.easting_m, [1, 4])
    np.testing.assert_allclose(traj.northing_m, [2, 6])
    np.testing.assert_allclose(traj.up_m, [3, 3])
    np.testing.assert_allclose(traj.heading_deg, [90, 350])
    assert traj.utm_zone_number is None


def test_csv_xy_without_optional_columns_has_no_height_or_heading(tmp_path):
    traj = read_trajectory(write(tmp_path, "walk.csv", "t, X ,y\n\n0,0,0\n# paused\n1,1,0\n"))
    assert traj.up_m is None and traj.heading_deg is None
    np.testing.assert_allclose(traj.easting_m, [0, 1])


def test_csv_latlon_converts_to_utm_zone_of_the_points(tmp_path):
    path = write(tmp_path, "gps.csv", f"t,lat,lon,alt\n0,{MUNICH[0]},{MUNICH[1]},520\n1,48.138,11.576,521\n")
    traj = read_trajectory(path)
    assert traj.format == "csv-latlon"
    assert (traj.utm_zone_number, traj.utm_zone_letter) == (32, "U")
    assert 690_000 < traj.easting_m[0] < 693_000 and 5_334_000 < traj.northing_m[0] < 5_336_000
    np.testing.assert_allclose(traj.up_m, [520, 521])


def test_latlon_to_utm_round_trip_is_within_1_cm(tmp_path):
    lats, lons = [48.137, 48.1375, 48.139], [11.575, 11.5762, 11.579]
    rows = "".join(f"{i},{a},{o}\n" for i, (a, o) in enumerate(zip(lats, lons)))
    traj = read_trajectory(write(tmp_path, "gps.csv", "t,lat,lon\n" + rows))
    lat, lon = lat_lon(traj)
    metres_per_deg = 111_320.0
    assert np.max(np.abs(lat - lats)) * metres_per_deg < 0.01
    assert np.max(np.abs(lon - lons)) * metres_per_deg * math.cos(math.radians(48.1)) < 0.01


def test_lat_lon_of_a_local_frame_is_an_error():
    with pytest.raises(BadInput, match="local metric frame"):
        lat_lon(local([0, 1], [0, 1], [0, 0]))


def test_points_in_two_utm_zones_are_an_error(tmp_path):
    rows = f"t,lat,lon\n0,{MUNICH[0]},{MUNICH[1]}\n1,{ACROSS_ZONE[0]},{ACROSS_ZONE[1]}\n"
    with pytest.raises(BadInput, match=r"gps\.csv: points span UTM zones 32 \(line 2\) and 33 \(line 3\)"):
        read_trajectory(write(tmp_path, "gps.csv", rows))


def test_forced_zone_puts_points_of_two_zones_in_one(tmp_path):
    rows = f"t,lat,lon\n0,{MUNICH[0]},{MUNICH[1]}\n1,{ACROSS_ZONE[0]},{ACROSS_ZONE[1]}\n"
    traj = read_trajectory(write(tmp_path, "gps.csv", rows), force_zone_number=32)
    assert traj.utm_zone_number == 32
    assert 30_000 < traj.easting_m[1] - traj.easting_m[0] < 34_000  # 0.435° of longitude at 48°N


def test_check_same_zone_returns_the_shared_zone(tmp_path):
    a = read_trajectory(write(tmp_path, "a.csv", f"t,lat,lon\n0,{MUNICH[0]},{MUNICH[1]}\n1,48.138,11.576\n"))
    b = read_trajectory(write(tmp_path, "b.csv", "t,lat,lon\n0,48.2,11.6\n1,48.3,11.7\n"))
    assert check_same_zone([a, b]) == (32, "U")


def test_check_same_zone_rejects_recordings_in_different_zones(tmp_path):
    a = read_trajectory(write(tmp_path, "a.csv", f"t,lat,lon\n0,{MUNICH[0]},{MUNICH[1]}\n1,48.138,11.576\n"))
    b = read_trajectory(write(tmp_path, "b.csv", "t,lat,lon\n0,48.137,12.1\n1,48.138,12.2\n"))
    zones = r"b\.csv: positions are in UTM zone 33N but .*a\.csv is in UTM zone 32N"
    with pytest.raises(BadInput, match=zones):
        check_same_zone([a, b])


def test_check_same_zone_rejects_mixing_utm_and_local_frames(tmp_path):
    a = read_trajectory(write(tmp_path, "a.csv", f"t,lat,lon\n0,{MUNICH[0]},{MUNICH[1]}\n1,48.138,11.576\n"))
    with pytest.raises(BadInput, match="local metric frame"):
        check_same_zone([a, local([0, 1], [0, 1], [0, 0])])


# ---------------------------------------------------------------- TUM


def test_tum_reads_positions_with_xy_axes_and_skips_comments(tmp_path):
    text = "# timestamp tx ty tz qx qy qz qw\n" + tum_line(10.0, (1, 2, 3), (0, 0, 0, 1)) + "\n\n"
    text += tum_line(10.5, (2, 4, 3), (0, 0, 0, 1)) + "\n"
    traj = read_trajectory(write(tmp_path, "poses.txt", text))
    assert traj.format == "tum"
    np.testing.assert_allclose(traj.t_s, [10.0, 10.5])
    np.testing.assert_allclose(np.c_[traj.easting_m, traj.northing_m, traj.up_m], [[1, 2, 3], [2, 4, 3]])


@pytest.mark.parametrize(
    ("yaw_left_deg", "heading_deg"), [(0, 90), (90, 0), (180, 270), (-90, 180), (-45, 135)]
)
def test_tum_heading_is_yaw_of_forward_x_axis(tmp_path, yaw_left_deg, heading_deg):
    # xy axes: forward is +x (east); a right-handed turn about +z (up) turns left, towards north.
    quat = yaw_quat("z", yaw_left_deg)
    text = tum_line(0, (0, 0, 0), quat) + "\n" + tum_line(1, (1, 0, 0), quat) + "\n"
    traj = read_trajectory(write(tmp_path, "poses.tum", text))
    np.testing.assert_allclose(traj.heading_deg, [heading_deg] * 2, atol=1e-9)


def test_tum_xz_axes_map_z_to_northing_and_minus_y_to_up(tmp_path):
    text = tum_line(0, (1, -2, 3), (0, 0, 0, 1)) + "\n" + tum_line(1, (1, -2, 5), (0, 0, 0, 1)) + "\n"
    traj = read_trajectory(write(tmp_path, "poses.txt", text), axes="xz")
    np.testing.assert_allclose(np.c_[traj.easting_m, traj.northing_m, traj.up_m], [[1, 3, 2], [1, 5, 2]])
    np.testing.assert_allclose(traj.heading_deg, [0, 0])  # camera looks along +z = north


@pytest.mark.parametrize(("turn_deg", "heading_deg"), [(90, 90), (-90, 270), (30, 30)])
def test_tum_xz_camera_turning_about_its_down_axis_turns_clockwise(tmp_path, turn_deg, heading_deg):
    quat = yaw_quat("y", turn_deg)  # camera y points down: a positive turn is to the right
    text = tum_line(0, (0, 0, 0), quat) + "\n" + tum_line(1, (0, 0, 1), quat) + "\n"
    traj = read_trajectory(write(tmp_path, "poses.txt", text), format="tum", axes="xz")
    np.testing.assert_allclose(traj.heading_deg, [heading_deg] * 2, atol=1e-9)


def test_tum_scale_turns_slam_units_into_metres(tmp_path):
    text = tum_line(0, (0, 0, 0), (0, 0, 0, 1)) + "\n" + tum_line(1, (2, 0, 0), (0, 0, 0, 1)) + "\n"
    traj = read_trajectory(write(tmp_path, "poses.txt", text), scale=0.5)
    np.testing.assert_allclose(traj.easting_m, [0, 1])


# ---------------------------------------------------------------- GPX


def gpx_text(points: list[str], segments_split: int | None = None) -> str:
    trkpts = [
        f'<trkpt lat="{lat}" lon="{lon}"><ele>{ele}</ele>{f"<time>{time}</time>" if time else ""}</trkpt>'
        for lat, lon, ele, time in points
    ]
    split = segments_split or len(trkpts)
    segments = f"<trkseg>{''.join(trkpts[:split])}</trkseg>"
    if trkpts[split:]:
        segments += f"<trkseg>{''.join(trkpts[split:])}</trkseg>"
    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk>{segments}</trk></gpx>"
    )


def test_gpx_reads_all_segments_with_time_since_first_point(tmp_path):
    points = [
        (48.1370, 11.5750, 520, "2024-05-01T10:00:00Z"),
        (48.1371, 11.5751, 521, "2024-05-01T10:00:01Z"),
        (48.1372, 11.5752, 522, "2024-05-01T10:00:03.5Z"),
    ]
    traj = read_trajectory(write(tmp_path, "ride.gpx", gpx_text(points, segments_split=2)))
    assert traj.format == "gpx" and traj.utm_zone_number == 32
    np.testing.assert_allclose(traj.t_s, [0, 1, 3.5])
    assert traj.t0_epoch_s == pytest.approx(1714557600.0)  # 2024-05-01T10:00:00 UTC
    np.testing.assert_allclose(traj.up_m, [520, 521, 522])
    assert traj.heading_deg is None


def test_gpx_point_without_time_is_an_error(tmp_path):
    points = [(48.1370, 11.5750, 520, "2024-05-01T10:00:00Z"), (48.1371, 11.5751, 521, None)]
    with pytest.raises(BadInput, match=r"ride\.gpx: track point 2 has no <time>"):
        read_trajectory(write(tmp_path, "ride.gpx", gpx_text(points)))


# ---------------------------------------------------------------- keyframe JSON


def test_keyframes_json_scales_translation_and_times_frames_by_fps(tmp_path):
    rot_right = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]  # +90° about camera y (down): looks east
    doc = {
        "fps": 30.0,
        "scale": 0.5,
        "axes": "xz",
        "keyframes": [
            {"frame": 0, "trans": [0, 0, 0], "rot": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
            {"frame": 15, "trans": [2, -1, 4], "rot": rot_right},
        ],
    }
    traj = read_trajectory(write(tmp_path, "map.json", json.dumps(doc)))
    assert traj.format == "keyframes-json"
    np.testing.assert_allclose(traj.t_s, [0, 0.5])
    np.testing.assert_allclose(np.c_[traj.easting_m, traj.northing_m, traj.up_m], [[0, 0, 0], [1, 2, 0.5]])
    np.testing.assert_allclose(traj.heading_deg, [0, 90], atol=1e-9)


def test_keyframes_json_accepts_quaternion_rot(tmp_path):
    keyframes = [{"frame": f, "trans": [f, 0, 0], "rot": yaw_quat("z", 90)} for f in (0, 1)]
    doc = {"fps": 10, "keyframes": keyframes}
    traj = read_trajectory(write(tmp_path, "map.json", json.dumps(doc)))
    np.testing.assert_allclose(traj.heading_deg, [0, 0], atol=1e-9)  # xy axes: +x turned left → north


def test_keyframes_json_list_takes_fps_scale_and_axes_from_parameters(tmp_path):
    keyframes = [{"frame": 0, "trans": [0, 0, 0]}, {"frame": 50, "trans": [0, 0, 10]}]
    traj = read_trajectory(write(tmp_path, "kf.json", json.dumps(keyframes)), fps=25, scale=2.0, axes="xz")
    np.testing.assert_allclose(traj.t_s, [0, 2])
    np.testing.assert_allclose(traj.northing_m, [0, 20])
    assert traj.heading_deg is None


# ---------------------------------------------------------------- detection and bad input


def two_point_gpx() -> str:
    return gpx_text([(48.1, 11.5, 0, "2024-01-01T00:00:00Z"), (48.2, 11.5, 0, "2024-01-01T00:00:01Z")])


KEYFRAMES = [{"frame": 0, "trans": [0, 0, 0]}, {"frame": 1, "trans": [1, 0, 0]}]


def keyframes_json(keyframes=KEYFRAMES, **settings) -> str:
    return json.dumps({**settings, "keyframes": keyframes})


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("a.csv", "t,x,y\n0,0,0\n1,1,1\n", "csv-xy"),
        ("a.txt", "t,lat,lon\n0,48.1,11.5\n1,48.2,11.5\n", "csv-latlon"),
        ("a.txt", "0 0 0 0 0 0 0 1\n1 1 0 0 0 0 0 1\n", "tum"),
        ("a.log", two_point_gpx(), "gpx"),
        ("a.dat", keyframes_json(fps=1), "keyframes-json"),
        ("a.csv", '"t","lat","lon"\n0,48.1,11.5\n1,48.2,11.5\n', "csv-latlon"),  # a quoting spreadsheet's header
    ],
)
def test_auto_detects_format_from_extension_and_content(tmp_path, name, text, fmt):
    assert read_trajectory(write(tmp_path, name, text)).format == fmt


NOT_A_ROTATION = [[2, 0, 0], [0, 1, 0], [0, 0, 1]]
LATLON = "t,lat,lon\n"
TUM_FIRST = "0 0 0 0 0 0 0 1\n"
# case: (file name, content, read_trajectory keyword arguments, expected message pattern)
BAD_INPUTS = {
    "unknown format": ("a.csv", "t,x,y\n0,0,0\n1,1,1\n", {"format": "kml"}, "unknown trajectory format 'kml'"),
    "undetectable format": ("a.txt", "hello world\n", {}, "cannot tell the trajectory format"),
    "empty file": ("a.txt", "\n\n", {}, "file is empty"),
    "nmea log": ("gps.nmea", "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\n", {},
                 r"NMEA sentences \(\$GPGGA…\), which vidvpr does not read: convert the log to GPX, "
                 r"e\.g\. gpsbabel -i nmea -f gps\.nmea -o gpx -F gps\.gpx$"),
    "missing column": ("a.csv", "t,x\n0,0\n1,1\n", {"format": "csv-xy"}, "missing column.*y"),
    "unknown column": ("a.csv", "t,x,y,heding\n0,0,0,0\n1,1,1,1\n", {}, "unknown column.s. heding in header"),
    "repeated column": ("a.csv", "t,x,y,x\n0,0,0,0\n1,1,1,1\n", {}, "repeated column.s. x in header"),
    "trailing comma": ("a.csv", "t,x,y,\n0,0,0,\n1,1,1,\n", {}, r"an empty column name \(a trailing comma\?\)"),
    "wrong value count": ("a.csv", "t,x,y\n0,0,0\n1,1\n", {}, "line 3: expected 3 values"),
    "non-numeric value": ("a.csv", "t,x,y\n0,0,0\n1,one,1\n", {}, "line 3: x is not a number: 'one'"),
    "nan value": ("a.csv", "t,x,y\n0,0,nan\n1,1,1\n", {}, "line 2: y is nan"),
    "inf value": ("a.csv", "t,x,y\n0,0,0\ninf,1,1\n", {}, "line 3: t is inf"),
    "duplicate timestamp": ("a.csv", "t,x,y\n0,0,0\n1,1,1\n1,2,2\n", {}, r"line 4: duplicate t \(1.0 after 1.0\)"),
    "decreasing timestamp": ("a.csv", "t,x,y\n0,0,0\n2,1,1\n1,2,2\n", {}, "line 4: decreasing t"),
    "one sample": ("a.csv", "t,x,y\n0,0,0\n", {}, "at least 2 trajectory samples, found 1"),
    "latitude out of range": ("a.csv", LATLON + "0,48,11\n1,91,11\n", {}, "line 3: latitude 91.0 is outside ±90°"),
    "longitude out of range": ("a.csv", LATLON + "0,48,181\n1,48,11\n", {}, "line 2: longitude 181.0 is outside"),
    "latitude beyond utm": ("a.csv", LATLON + "0,85,11\n1,85,11.1\n", {}, "outside UTM"),
    "bad forced zone": ("a.csv", LATLON + "0,48,11\n1,48,11.1\n", {"force_zone_number": 61}, "UTM zone 61"),
    "tum column count": ("a.tum", TUM_FIRST + "1 1 0 0\n", {}, "line 2: expected 8 values"),
    "tum zero quaternion": ("a.tum", TUM_FIRST + "1 1 0 0 0 0 0 0\n", {}, "line 2: quaternion .* is zero"),
    "tum unknown axes": ("a.tum", TUM_FIRST + "1 1 0 0 0 0 0 1\n", {"axes": "yz"}, "unknown axes 'yz'"),
    "gpx not xml": ("a.gpx", "<gpx><trk>", {}, "not a readable GPX file"),
    "gpx no points": ("a.gpx", gpx_text([]), {}, r"no track points \(<trk><trkseg><trkpt>\): a trajectory is a GPX track$"),
    "gpx waypoints only": ("a.gpx", '<gpx version="1.1"><wpt lat="48" lon="11"><time>2024-01-01T00:00:00Z</time></wpt>'
                           '<wpt lat="48.1" lon="11"><time>2024-01-01T00:00:01Z</time></wpt></gpx>', {},
                           r"no track points .*; it holds 2 waypoints \(<wpt>\), which are not a recorded track"),
    "gpx route only": ("a.gpx", '<gpx version="1.1"><rte><rtept lat="48" lon="11"/><rtept lat="48.1" lon="11"/>'
                       '<rtept lat="48.2" lon="11"/></rte></gpx>', {}, r"it holds 3 route points \(<rtept>\)"),
    "gpx one point": ("a.gpx", gpx_text([(48.1, 11.5, 0, "2024-01-01T00:00:00Z")]), {},
                      "at least 2 trajectory samples, found 1"),
    "json invalid": ("a.json", "{fps: 1}", {}, "not valid JSON"),
    "json not keyframes": ("a.json", '{"fps": 1}', {}, "expected .*keyframes"),
    "json no fps": ("a.json", json.dumps(KEYFRAMES), {}, "frame rate unknown"),
    "json fps conflict": ("a.json", keyframes_json(fps=30), {"fps": 25}, "fps is 30 in the file but 25"),
    "json zero scale": ("a.json", keyframes_json(fps=1, scale=0), {}, "scale must be positive"),
    "json negative scale": ("a.json", json.dumps(KEYFRAMES), {"fps": 1, "scale": -2}, "scale must be positive"),
    "json missing trans": ("a.json", keyframes_json([{"frame": 0}], fps=1), {}, "keyframe 1 needs 'frame' and 'trans'"),
    # a list of numbers where keyframe objects belong was reported as a missing frame rate
    "json list of numbers": ("a.json", "[1, 2, 3]", {}, "keyframe 1 needs 'frame' and 'trans'"),
    "json short trans": ("a.json", keyframes_json([{"frame": 0, "trans": [1, 2]}], fps=1), {}, "trans must be a list"),
    "json bad rot": (
        "a.json",
        keyframes_json([{**KEYFRAMES[0], "rot": NOT_A_ROTATION}, KEYFRAMES[1]], fps=1),
        {},
        "keyframe 1: rot is not a rotation matrix",
    ),
    "json ragged rot": (
        "a.json",
        keyframes_json([{**KEYFRAMES[0], "rot": [[1, 0], [0, 1, 0], [0, 0, 1]]}, KEYFRAMES[1]], fps=1),
        {},
        "keyframe 1: rot must be a row-major 3x3 matrix",
    ),
    "json rot on some": (
        "a.json",
        keyframes_json([{**KEYFRAMES[0], "rot": [0, 0, 0, 1]}, KEYFRAMES[1]], fps=1),
        {},
        "keyframe 2 has no 'rot'",
    ),
    "csv position too far to interpolate": ("a.csv", "t,x,y\n0,1e308,0\n0.1,0,0\n", {},
                                            r"easting changes too fast to interpolate between samples 1 and 2"),
    "csv step too short to interpolate": ("a.csv", "t,x,y\n0,0,0\n1e-320,0,1\n", {},
                                          r"northing changes too fast to interpolate between samples 1 and 2"),
    "json duplicate frame": ("a.json", keyframes_json(KEYFRAMES + KEYFRAMES[1:], fps=1), {}, "keyframe 3: duplicate frame"),
}


@pytest.mark.parametrize(("name", "text", "kwargs", "match"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_line_naming_the_file_and_problem(tmp_path, name, text, kwargs, match):
    path = write(tmp_path, name, text)
    with pytest.raises(BadInput, match=match) as info:
        read_trajectory(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(BadInput, match=r"nope\.csv: trajectory file not found"):
        read_trajectory(tmp_path / "nope.csv")


def test_unreadable_file_is_an_error(tmp_path):
    with pytest.raises(BadInput, match="is a folder, not a trajectory file"):
        read_trajectory(tmp_path)  # a directory


def test_utf16_text_asks_for_utf8(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("t,x,y\n0,0,0\n1,1,1\n", encoding="utf-16")  # as Windows PowerShell writes it
    with pytest.raises(BadInput, match=rf"^{re.escape(str(path))}: UTF-16 text; save the trajectory file as UTF-8$"):
        read_trajectory(path)


def test_binary_file_is_an_error(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(BadInput, match="not a text file"):
        read_trajectory(path)


# ---------------------------------------------------------------- interpolation and time


def test_position_interpolates_linearly_between_samples():
    traj = local([0, 10, 20], [0, 10, 10], [0, -20, 0])
    pose = position_at(traj, np.array([2.5, 10.0, 15.0]))
    np.testing.assert_allclose(pose.easting_m, [2.5, 10, 10])
    np.testing.assert_allclose(pose.northing_m, [-5, -20, -10])
    assert pose.inside.all()


@pytest.mark.parametrize(
    ("headings", "t", "expected"),
    [
        ([350, 10], 0.5, 0),
        ([350, 10], 0.25, 355),
        ([350, 10], 0.75, 5),
        ([10, 350], 0.75, 355),
        ([90, 180], 0.5, 135),
    ],
)
def test_heading_interpolates_across_north_along_the_shortest_arc(headings, t, expected):
    pose = position_at(local([0, 1], [0, 0], [0, 0], heading=headings), np.array([t]))
    assert pose.heading_deg[0] == pytest.approx(expected)


def test_times_outside_the_trajectory_are_not_extrapolated():
    pose = position_at(local([1, 2], [0, 1], [0, 0], heading=[0, 0]), np.array([0.5, 1.0, 2.0, 2.5]))
    np.testing.assert_array_equal(pose.inside, [False, True, True, False])
    assert np.isnan(pose.easting_m[[0, 3]]).all() and np.isnan(pose.heading_deg[[0, 3]]).all()


def test_time_offset_is_added_to_video_time():
    traj = local([0, 10], [0, 10], [0, 0])  # 1 m/s east
    pose = position_at(traj, np.array([0.0, 2.0, 8.0]), time_offset_s=3.0)
    np.testing.assert_allclose(pose.easting_m[:2], [3, 5])
    np.testing.assert_array_equal(pose.inside, [True, True, False])
    assert position_at(traj, np.array([0.0]), time_offset_s=-1.0).inside[0] == np.False_


def test_heading_from_travel_on_an_l_shaped_path():
    t = np.arange(21.0)  # 10 s east at 1 m/s, then 10 s north
    east, north = np.minimum(t, 10), np.maximum(t - 10, 0)
    heading = heading_from_travel(t, east, north)
    np.testing.assert_allclose(heading[:9], 90)
    assert heading[10] == pytest.approx(45)  # the corner, half of each leg in the baseline
    np.testing.assert_allclose(heading[12:], 0)


def test_a_stop_keeps_the_heading_it_arrived_with():
    t = np.arange(31.0)  # east for 10 s, stand still (with 5 cm jitter) for 10 s, then north
    east = np.concatenate([t[:11], np.full(10, 10.0) + 0.05 * (-1) ** np.arange(10), np.full(10, 10.0)])
    north = np.concatenate([np.zeros(21), np.arange(1.0, 11.0)])
    heading = heading_from_travel(t, east, north)
    np.testing.assert_allclose(heading[12:20], 90)
    np.testing.assert_allclose(heading[22:], 0)


def test_a_stationary_start_takes_the_first_heading_of_travel():
    t = np.arange(10.0)
    north = np.maximum(t - 5, 0)
    heading = heading_from_travel(t, np.zeros(10), -north)  # waits 5 s, then walks south
    np.testing.assert_allclose(heading, 180)


def test_position_at_uses_travel_heading_when_the_file_has_none():
    pose = position_at(local([0, 10, 20], [0, 10, 10], [0, 0, 10]), np.array([0.0, 5.0, 10.0, 20.0]))
    np.testing.assert_allclose(pose.heading_deg, [90, 67.5, 45, 0])  # per sample, then interpolated


def test_heading_from_the_file_wins_over_travel():
    pose = position_at(local([0, 10], [0, 10], [0, 0], heading=[200, 200]), np.array([5.0]))
    assert pose.heading_deg[0] == pytest.approx(200)


@pytest.mark.parametrize(
    ("camera", "yaw", "expected"),
    [(350, 20, 10), (10, -20, 350), (90, 270, 0), (0, 0, 0), (180, -1e-20, 180), (0, -1e-20, 0)],
)
def test_view_heading_adds_yaw_to_camera_heading_and_wraps(camera, yaw, expected):
    result = view_heading_deg(camera, yaw)
    assert result == pytest.approx(expected) and 0 <= result < 360


def test_view_heading_works_on_arrays():
    headings = view_heading_deg(np.array([0, 90, 300]), np.array([-90, 90, 90]))
    np.testing.assert_allclose(headings, [270, 180, 30])


def test_coverage_drops_frames_outside_and_logs_the_count(caplog):
    traj = local([5, 100], [0, 1], [0, 0])
    frames = np.arange(0.0, 121.0, 1.0)  # 0..120 s
    with caplog.at_level(logging.WARNING, logger="vidvpr.geo"):
        mask = coverage(traj, frames, strict=False)
    assert mask.sum() == 96 and not mask[4] and mask[5] and mask[100] and not mask[101]
    assert "25 of 121 video frames fall outside the trajectory" in caplog.text and caplog.text.rstrip().endswith(
        "dropping them")


def test_coverage_applies_the_time_offset():
    mask = coverage(local([5, 100], [0, 1], [0, 0]), np.arange(0.0, 96.0), time_offset_s=5.0)
    assert mask.all()


def test_strict_coverage_error_shows_both_time_ranges_and_hints_at_the_offset():
    traj = local([5, 100], [0, 1], [0, 0])
    with pytest.raises(BadInput) as info:
        coverage(traj, np.arange(0.0, 121.0), strict=True)
    message = str(info.value)
    assert message.startswith("walk.csv: ") and "\n" not in message
    assert "video [0.000, 120.000] s" in message and "trajectory [5.000, 100.000] s" in message
    assert "--time-offset" in message


def test_strict_coverage_passes_when_every_frame_is_inside():
    assert coverage(local([0, 10], [0, 1], [0, 0]), np.array([0.0, 5.0, 10.0]), strict=True).all()
