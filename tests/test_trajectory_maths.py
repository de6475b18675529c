"""Specification of the trajectory maths in vidvpr.geo.trajectory: angles, headings, UTM, zones, time.

Expected values are worked out by hand: UTM points sit on a zone's central meridian (easting
500 km exactly) or at the equator (northing 0, or 10 000 km south of it); quaternions are
textbook rotations; walks start away from the origin so sums cannot pass for differences.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from vidvpr.core.errors import BadInput
from vidvpr.geo.readers import read_trajectory
from vidvpr.geo.trajectory import (
    Trajectory,
    check_same_zone,
    coverage,
    heading_from_rotation,
    heading_from_travel,
    interpolate_heading_deg,
    lat_lon,
    latlon_to_utm,
    position_at,
    quat_to_matrix,
    wrap_deg,
)

S = math.sqrt(0.5)  # sin 45° = cos 45°
# metres of northing per degree of latitude at the equator: a (1 − e²) · π/180 · k0 (WGS84, k0 0.9996)
NORTH_M_PER_DEG_AT_EQUATOR = 6_378_137 * (1 - 0.00669438) * math.pi / 180 * 0.9996


def walk(t, east, north, heading=None, source="walk.csv", fmt="csv-xy", zone=None, letter=None) -> Trajectory:
    arr = lambda v: None if v is None else np.asarray(v, dtype=float)
    return Trajectory(arr(t), arr(east), arr(north), None, arr(heading), zone, letter, source, fmt)


def utm_walk(zone: int | None, letter: str | None, source: str = "gps.csv") -> Trajectory:
    return walk([0, 1], [500_000, 500_001], [0, 0], source=source, fmt="csv-latlon", zone=zone, letter=letter)


# ---------------------------------------------------------------- the Trajectory record


@pytest.mark.parametrize("field", ["easting_m", "northing_m", "up_m", "heading_deg"])
def test_every_array_of_a_trajectory_has_the_shape_of_its_times(field: str) -> None:
    arrays = {"easting_m": np.zeros(3), "northing_m": np.zeros(3), "up_m": np.zeros(3), "heading_deg": np.zeros(3)}
    arrays[field] = np.zeros(2)
    with pytest.raises(ValueError, match=r"^trajectory arrays differ in shape: \(2,\) vs \(3,\)$"):
        Trajectory(np.arange(3.0), arrays["easting_m"], arrays["northing_m"], arrays["up_m"], arrays["heading_deg"],
                   None, None, "walk.csv", "csv-xy")


def test_height_and_heading_are_optional() -> None:
    traj = Trajectory(np.arange(2.0), np.zeros(2), np.ones(2), None, None, None, None, "walk.csv", "csv-xy")
    assert traj.up_m is None and traj.heading_deg is None and traj.t0_epoch_s is None


# ---------------------------------------------------------------- angles


@pytest.mark.parametrize(("angle", "wrapped"), [(0.0, 0.0), (360.0, 0.0), (725.0, 5.0), (-90.0, 270.0),
                                                (359.5, 359.5), (-1e-20, 0.0)])
def test_wrap_deg_maps_to_0_inclusive_360_exclusive(angle: float, wrapped: float) -> None:
    result = wrap_deg(angle)
    assert result == wrapped and isinstance(result, float)


def test_wrap_deg_of_an_array_is_an_array() -> None:
    result = wrap_deg([-1e-20, 370.0, -10.0])
    assert isinstance(result, np.ndarray) and result.tolist() == [0.0, 10.0, 350.0]


def test_heading_interpolation_takes_the_shortest_arc_across_north() -> None:
    result = interpolate_heading_deg([0.5, 1.5, 2.0], [0.0, 1.0, 2.0], [350.0, 10.0, 20.0])
    np.testing.assert_allclose(result, [0.0, 15.0, 20.0], atol=1e-9)


def test_heading_interpolation_wraps_into_0_to_360() -> None:
    # 10° → 340° is 30° anticlockwise: a quarter of the way is 2.5°, three quarters is 347.5°
    np.testing.assert_allclose(interpolate_heading_deg([0.25, 0.75], [0.0, 1.0], [10.0, 340.0]), [2.5, 347.5])


# ---------------------------------------------------------------- heading of travel


def test_walking_east_far_from_the_origin_heads_east() -> None:
    # northing 5 000 km: a sum n(t+h) + n(t−h) instead of the difference would point north
    t = np.arange(6.0)
    heading = heading_from_travel(t, 600_000 + t, np.full(6, 5_000_000.0))
    np.testing.assert_allclose(heading, 90.0)


def test_walking_south_far_from_the_origin_heads_south() -> None:
    t = np.arange(6.0)
    heading = heading_from_travel(t, np.full(6, 600_000.0), 5_000_000 - 2 * t)
    np.testing.assert_allclose(heading, 180.0)


def test_walking_south_west_heads_225() -> None:
    t = np.arange(6.0)
    heading = heading_from_travel(t, 600_000 - t, 5_000_000 - t)
    np.testing.assert_allclose(heading, 225.0)


def test_a_longer_baseline_looks_further_around_a_corner() -> None:
    t = np.arange(21.0)  # 10 s east at 1 m/s, then 10 s north
    east, north = 300.0 + np.minimum(t, 10), 700.0 + np.maximum(t - 10, 0)
    # at t = 9 a 4 s baseline spans t 7 … 11: 3 m east and 1 m north, atan2(3, 1)
    heading = heading_from_travel(t, east, north, baseline_s=4.0)
    assert heading[9] == pytest.approx(math.degrees(math.atan2(3, 1)))
    assert heading_from_travel(t, east, north)[9] == pytest.approx(90.0)  # the default 2 s: t 8 … 10, all east


def test_moving_exactly_the_minimum_displacement_counts_as_moving() -> None:
    t = np.arange(5.0)
    east = 0.25 * t  # 0.5 m over the 2 s baseline: the default minimum, inclusive
    np.testing.assert_allclose(heading_from_travel(t, east, np.zeros(5))[1:4], 90.0)


def test_a_larger_minimum_displacement_turns_slow_walking_into_standing() -> None:
    t = np.arange(5.0)
    heading = heading_from_travel(t, 0.25 * t, np.zeros(5), min_displacement_m=0.6)
    assert np.isnan(heading).all()


def test_standing_still_has_no_heading() -> None:
    heading = heading_from_travel(np.arange(4.0), np.full(4, 10.0), np.full(4, 20.0))
    assert np.isnan(heading).all()


def test_a_stop_in_the_middle_keeps_the_heading_before_it() -> None:
    t = np.arange(12.0)  # north for 4 s, stand for 4 s, east for 4 s
    north = np.minimum(t, 4.0)
    east = np.maximum(t - 8.0, 0.0)
    heading = heading_from_travel(t, 100 + east, 100 + north)
    np.testing.assert_allclose(heading[:4], 0.0)
    np.testing.assert_allclose(heading[5:7], 0.0)  # standing: still facing north
    np.testing.assert_allclose(heading[10:], 90.0)


# ---------------------------------------------------------------- rotations


def test_quaternion_of_90_degrees_about_z_turns_x_into_y() -> None:
    np.testing.assert_allclose(quat_to_matrix([[0, 0, S, S]])[0], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_quaternion_of_90_degrees_about_x_turns_y_into_z() -> None:
    np.testing.assert_allclose(quat_to_matrix([[S, 0, 0, S]])[0], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)


def test_quaternion_of_90_degrees_about_y_turns_z_into_x() -> None:
    np.testing.assert_allclose(quat_to_matrix([[0, S, 0, S]])[0], [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-12)


def test_a_non_unit_quaternion_is_normalised_first() -> None:
    # q = (1, 2, 3, 4), |q|² = 30: the textbook matrix, every entry a multiple of 1/15
    expected = np.array([[2, -10, 11], [14, 5, 2], [-5, 10, 10]]) / 15
    np.testing.assert_allclose(quat_to_matrix([[1, 2, 3, 4]])[0], expected, atol=1e-12)


def test_quaternions_convert_in_a_batch() -> None:
    rotations = quat_to_matrix([[0, 0, 0, 2], [0, 0, 3 * S, 3 * S]])
    assert rotations.shape == (2, 3, 3)
    np.testing.assert_allclose(rotations[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rotations[1], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)


def rotation_with_forward(forward: tuple[float, float, float], axis: int) -> np.ndarray:
    """A (not necessarily orthonormal) matrix whose column `axis` is `forward`: all heading_from_rotation reads."""
    rot = np.eye(3)
    rot[:, axis] = forward
    return rot


def test_heading_of_the_forward_x_axis_with_xy_axes() -> None:
    rots = np.stack([rotation_with_forward(f, 0) for f in [(1, 0, 0), (0, 1, 0), (-1, -1, 5), (0, -2, 0)]])
    np.testing.assert_allclose(heading_from_rotation(rots), [90.0, 0.0, 225.0, 180.0], atol=1e-9)


def test_heading_of_the_forward_z_axis_with_xz_axes() -> None:
    # xz: east = x, north = z; the camera looks along its z axis
    rots = np.stack([rotation_with_forward(f, 2) for f in [(0, 0, 1), (1, 0, 0), (-1, 7, 0), (1, 0, -1)]])
    np.testing.assert_allclose(heading_from_rotation(rots, "xz"), [0.0, 90.0, 270.0, 135.0], atol=1e-9)


def test_a_forward_axis_pointing_up_takes_its_neighbours_heading() -> None:
    rots = np.stack([rotation_with_forward(f, 0) for f in [(0, 0, 1), (0, 1, 0), (0, 0, -1), (1e-6, 0, 1), (-1, 0, 0)]])
    # vertical (and 1e-6 off vertical, the limit) carry the last heading forward, the first one back
    np.testing.assert_allclose(heading_from_rotation(rots), [0.0, 0.0, 0.0, 0.0, 270.0], atol=1e-9)


def test_a_forward_axis_slightly_off_vertical_has_a_heading() -> None:
    rots = np.stack([rotation_with_forward((2e-6, 0, 1), 0), rotation_with_forward((0, 1, 0), 0)])
    np.testing.assert_allclose(heading_from_rotation(rots), [90.0, 0.0], atol=1e-9)


def test_a_forward_axis_always_vertical_has_no_heading() -> None:
    rots = np.stack([rotation_with_forward((0, 0, 1), 0)] * 2)
    assert np.isnan(heading_from_rotation(rots)).all()


# ---------------------------------------------------------------- UTM


def test_a_point_on_a_central_meridian_is_at_easting_500_km() -> None:
    east, north, zone, letter = latlon_to_utm([0.0, 0.001], [9.0, 9.0], source="gps.csv")
    assert (zone, letter) == (32, "N")
    np.testing.assert_allclose(east, [500_000.0, 500_000.0])
    np.testing.assert_allclose(north, [0.0, NORTH_M_PER_DEG_AT_EQUATOR * 0.001], atol=0.01)
    assert east.dtype == north.dtype == np.float64


def test_the_southern_hemisphere_counts_northing_from_10000_km_south_of_the_equator() -> None:
    _, north, zone, letter = latlon_to_utm([-0.001, -0.002], [3.0, 3.0], source="gps.csv")
    assert (zone, letter) == (31, "M")
    np.testing.assert_allclose(north, 10_000_000 - NORTH_M_PER_DEG_AT_EQUATOR * np.array([0.001, 0.002]), atol=0.01)


def test_the_first_points_hemisphere_applies_to_every_point() -> None:
    _, north, _, letter = latlon_to_utm([-0.001, 0.001], [9.0, 9.0], source="gps.csv")
    assert letter == "M"  # south: the northern point lies 10 000 km plus its distance from the equator north
    assert north[1] == pytest.approx(10_000_000 + NORTH_M_PER_DEG_AT_EQUATOR * 0.001, abs=0.01)


def test_a_forced_zone_other_than_the_first_points_own() -> None:
    # the first point (3°E) is in zone 31; forced into zone 32, the second (9°E, its central meridian) is at 500 km
    east, _, zone, letter = latlon_to_utm([0.0, 0.0], [3.0, 9.0], source="gps.csv", force_zone_number=32)
    assert (zone, letter) == (32, "N")
    assert east[1] == pytest.approx(500_000.0) and east[0] < 500_000 - 600_000 * 0.9996


@pytest.mark.parametrize(("zone", "lon"), [(1, -177.0), (60, 177.0)])
def test_the_first_and_last_zones_can_be_forced(zone: int, lon: float) -> None:
    east, _, forced, _ = latlon_to_utm([0.0], [lon], source="gps.csv", force_zone_number=zone)
    assert forced == zone and east[0] == pytest.approx(500_000.0)


@pytest.mark.parametrize("zone", [0, 61])
def test_a_forced_zone_outside_1_to_60_is_refused(zone: int) -> None:
    with pytest.raises(BadInput, match=rf"^gps\.csv: UTM zone {zone} is outside 1-60$"):
        latlon_to_utm([0.0], [9.0], source="gps.csv", force_zone_number=zone)


@pytest.mark.parametrize("zone", [60, 1])
def test_a_walk_across_the_antimeridian_forced_into_either_zone_keeps_its_steps(zone: int) -> None:
    # Fiji, 17°S: 0.0002° of longitude ≈ 21.3 m, from 179.9995°E to 179.9995°W
    lon = np.array([179.9995, 179.9997, 179.9999, -179.9999, -179.9997, -179.9995])
    east, north, forced, letter = latlon_to_utm(np.full(6, -17.0), lon, source="fiji.gpx", force_zone_number=zone)
    steps = np.hypot(np.diff(east), np.diff(north))
    assert (forced, letter) == (zone, "K")
    np.testing.assert_allclose(steps, 0.0002 * 111_320 * np.cos(np.radians(17.0)), rtol=2e-3)


def test_points_in_two_zones_are_refused_naming_both() -> None:
    message = (r"^gps\.csv: points span UTM zones 31 \(point 1\) and 32 \(point 3\); "
               r"one zone per dataset: split the recording, or force one zone "
               r"\(utm_zone in \[dataset\], or --utm-zone; a walk across the antimeridian: either zone\)$")
    with pytest.raises(BadInput, match=message):
        latlon_to_utm([0.0, 0.0, 0.0], [3.0, 4.0, 9.0], source="gps.csv")


def test_out_of_range_messages_use_the_callers_labels() -> None:
    with pytest.raises(BadInput, match=r"^gps\.csv: line 3: longitude -181\.0 is outside ±180°$"):
        latlon_to_utm([0.0, 0.0], [9.0, -181.0], source="gps.csv", labels=["line 2", "line 3"])


@pytest.mark.parametrize(("lat", "lon", "message"), [
    (90.5, 9.0, r"^gps\.csv: point 2: latitude 90\.5 is outside ±90°$"),
    (-90.5, 9.0, r"^gps\.csv: point 2: latitude -90\.5 is outside ±90°$"),
    (0.0, 180.5, r"^gps\.csv: point 2: longitude 180\.5 is outside ±180°$"),
    (90.0, 9.0, r"^gps\.csv: point 2: latitude 90\.0 is outside UTM's 80°S-84°N$"),
    (84.5, 9.0, r"^gps\.csv: point 2: latitude 84\.5 is outside UTM's 80°S-84°N$"),
    (-80.5, 9.0, r"^gps\.csv: point 2: latitude -80\.5 is outside UTM's 80°S-84°N$"),
])
def test_points_outside_the_globe_or_utm_are_refused(lat: float, lon: float, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        latlon_to_utm([0.0, lat], [9.0, lon], source="gps.csv")


@pytest.mark.parametrize(("lat", "lon"), [(84.0, 9.0), (-80.0, 9.0), (0.0, -180.0)])
def test_the_limits_themselves_are_inside(lat: float, lon: float) -> None:
    _, _, zone, _ = latlon_to_utm([lat], [lon], source="gps.csv")
    assert 1 <= zone <= 60


def test_float32_degrees_are_converted_in_float64() -> None:
    # float32 arithmetic inside the UTM formulas costs centimetres; the float32 values themselves are exact
    lat32, lon32 = np.array([48.137], np.float32), np.array([11.575], np.float32)
    east, north, _, _ = latlon_to_utm(lat32, lon32, source="gps.csv")
    east64, north64, _, _ = latlon_to_utm(lat32.astype(float), lon32.astype(float), source="gps.csv")
    np.testing.assert_allclose(east, east64, rtol=0, atol=1e-3)
    np.testing.assert_allclose(north, north64, rtol=0, atol=1e-3)


def test_lat_lon_of_positions_in_the_trajectorys_zone() -> None:
    traj = walk([0, 1], [400_000, 400_001], [5_000, 5_000], fmt="csv-latlon", zone=32, letter="N")
    lat, lon = lat_lon(traj, [500_000.0], [NORTH_M_PER_DEG_AT_EQUATOR * 0.001])
    assert (float(lat[0]), float(lon[0])) == pytest.approx((0.001, 9.0), abs=1e-7)


def test_lat_lon_of_float32_positions_is_computed_in_float64() -> None:
    traj = utm_walk(32, "U")
    lat, lon = lat_lon(traj, np.array([600_000], np.float32), np.array([5_000_000], np.float32))
    lat64, lon64 = lat_lon(traj, [600_000.0], [5_000_000.0])
    np.testing.assert_allclose([lat[0], lon[0]], [lat64[0], lon64[0]], rtol=0, atol=1e-8)


def test_lat_lon_converts_positions_beyond_the_zones_nominal_easting() -> None:
    # 450 km west of zone 32's central meridian (9°E) is west of the zone's 6°E edge: converted, not refused
    lat, lon = lat_lon(utm_walk(32, "U"), [50_000.0], [5_000_000.0])
    assert 44.0 < lat[0] < 46.0 and lon[0] < 6.0


def test_lat_lon_of_the_samples_by_default() -> None:
    traj = walk([0, 1], [500_000, 500_000], [0, NORTH_M_PER_DEG_AT_EQUATOR * 0.001], fmt="csv-latlon",
                zone=31, letter="N")
    lat, lon = lat_lon(traj)
    np.testing.assert_allclose(lat, [0.0, 0.001], atol=1e-7)
    np.testing.assert_allclose(lon, [3.0, 3.0], atol=1e-9)


def test_lat_lon_of_a_local_frame_is_refused_naming_the_format() -> None:
    with pytest.raises(BadInput, match=r"^walk\.tum: positions are in a local metric frame \(tum\), not lat/lon$"):
        lat_lon(walk([0, 1], [0, 1], [0, 0], source="walk.tum", fmt="tum"))


# ---------------------------------------------------------------- one frame per dataset


def test_no_trajectories_share_no_zone() -> None:
    assert check_same_zone([]) is None


def test_local_trajectories_of_one_format_share_a_local_frame() -> None:
    assert check_same_zone([walk([0, 1], [0, 1], [0, 0]), walk([0, 1], [5, 6], [0, 0], source="b.csv")]) is None


def test_the_shared_zone_and_letter() -> None:
    assert check_same_zone([utm_walk(33, "U"), utm_walk(33, "T", source="b.csv")]) == (33, "U")


def test_every_trajectory_is_checked_not_just_the_second() -> None:
    with pytest.raises(BadInput, match=r"^c\.csv: positions are in UTM zone 33N but gps\.csv is in UTM zone 32N"):
        check_same_zone([utm_walk(32, "U"), utm_walk(32, "U", source="b.csv"), utm_walk(33, "U", source="c.csv")])


def test_local_frames_of_two_formats_are_refused_unless_declared_shared() -> None:
    survey, slam = walk([0, 1], [0, 1], [0, 0], source="survey.csv"), walk([0, 1], [0, 1], [0, 0], source="map.tum", fmt="tum")
    message = (r"^map\.tum: positions are in a local metric frame \(tum\) but survey\.csv is in a local metric "
               r"frame \(csv-xy\); if they were aligned to one frame \(e\.g\. a SLAM map registered to the survey\), "
               r"say so with shared_local_frame = true in \[dataset\], or --shared-local-frame$")
    with pytest.raises(BadInput, match=message):
        check_same_zone([survey, slam])
    assert check_same_zone([survey, slam], shared_local_frame=True) is None


def test_two_zones_are_refused_with_advice_to_force_one() -> None:
    message = (r"^b\.csv: positions are in UTM zone 33N but gps\.csv is in UTM zone 32N; "
               r"one zone per dataset: force one UTM zone \(utm_zone in \[dataset\], or --utm-zone\)$")
    with pytest.raises(BadInput, match=message):
        check_same_zone([utm_walk(32, "U"), utm_walk(33, "U", source="b.csv")])


def test_letter_n_is_the_northern_hemisphere_and_m_the_southern() -> None:
    with pytest.raises(BadInput, match=r"positions are in UTM zone 32S but gps\.csv is in UTM zone 32N;"):
        check_same_zone([utm_walk(32, "N"), utm_walk(32, "M", source="b.csv")])


def test_a_zone_without_a_letter_counts_as_north() -> None:
    assert check_same_zone([utm_walk(32, "X"), utm_walk(32, None, source="b.csv")]) == (32, "X")
    with pytest.raises(BadInput, match=r"^b\.csv: positions are in UTM zone 32N but gps\.csv is in UTM zone 32S;"):
        check_same_zone([utm_walk(32, "C"), utm_walk(32, None, source="b.csv")])


def test_geographic_and_local_positions_are_refused() -> None:
    message = (r"^walk\.csv: positions are in a local metric frame \(csv-xy\) but gps\.csv is in UTM zone 32N; "
               r"geographic and local positions cannot be compared; give every recording the same kind$")
    with pytest.raises(BadInput, match=message):
        check_same_zone([utm_walk(32, "U"), walk([0, 1], [0, 1], [0, 0])])


def test_local_and_geographic_positions_are_refused_in_either_order() -> None:
    with pytest.raises(BadInput, match=r"^gps\.csv: positions are in UTM zone 32N but walk\.csv is in a local metric "
                                       r"frame; geographic and local"):
        check_same_zone([walk([0, 1], [0, 1], [0, 0]), utm_walk(32, "U")], shared_local_frame=True)


# ---------------------------------------------------------------- position and time


def test_times_within_a_microsecond_of_the_ends_are_inside() -> None:
    traj = walk([10.0, 20.0], [0.0, 10.0], [0.0, 0.0], heading=[0.0, 0.0])
    pose = position_at(traj, [10.0 - 5e-7, 20.0 + 5e-7, 10.0 - 5e-6, 20.0 + 5e-6])
    np.testing.assert_array_equal(pose.inside, [True, True, False, False])
    np.testing.assert_allclose(pose.easting_m[:2], [0.0, 10.0])


def test_times_exactly_a_microsecond_beyond_the_ends_are_inside() -> None:
    traj = walk([10.0, 20.0], [0.0, 10.0], [0.0, 0.0], heading=[0.0, 0.0])
    assert coverage(traj, [10.0 - 1e-6, 20.0 + 1e-6]).all()


def test_float32_frame_times_keep_their_precision_with_an_epoch_offset() -> None:
    # trajectory clock in UTC seconds; video times from 0: 1.7e9 s in float32 is only good to 128 s
    traj = walk([1_714_557_600.0, 1_714_557_601.0], [0.0, 1.0], [0.0, 0.0], heading=[0.0, 0.0])
    frames = np.array([0.25, 0.75], np.float32)
    np.testing.assert_allclose(position_at(traj, frames, time_offset_s=1_714_557_600.0).easting_m, [0.25, 0.75])
    assert coverage(traj, frames, strict=True, time_offset_s=1_714_557_600.0).all()


def test_position_between_samples_far_from_the_origin() -> None:
    traj = walk([0.0, 4.0], [600_000.0, 600_008.0], [5_000_000.0, 4_999_996.0], heading=[90.0, 90.0])
    pose = position_at(traj, [1.0, 3.0])
    np.testing.assert_allclose(pose.easting_m, [600_002.0, 600_006.0])
    np.testing.assert_allclose(pose.northing_m, [4_999_999.0, 4_999_997.0])
    np.testing.assert_allclose(pose.heading_deg, [90.0, 90.0])


def test_a_single_sample_trajectory_has_a_position_only_at_its_time() -> None:
    pose = position_at(walk([5.0], [1.0], [2.0], heading=[30.0]), [5.0, 6.0])
    assert (pose.easting_m[0], pose.northing_m[0], pose.heading_deg[0]) == (1.0, 2.0, 30.0)
    assert pose.inside.tolist() == [True, False] and np.isnan(pose.easting_m[1])


def test_position_outside_is_nan_on_every_field() -> None:
    pose = position_at(walk([0.0, 4.0], [0.0, 8.0], [0.0, 4.0], heading=[10.0, 20.0]), [5.0])
    assert np.isnan([pose.easting_m[0], pose.northing_m[0], pose.heading_deg[0]]).all() and not pose.inside[0]


def test_position_passes_the_heading_baseline_and_minimum_on() -> None:
    t = np.arange(21.0)  # the L-shaped walk: 10 s east, then 10 s north
    traj = walk(t, 300.0 + np.minimum(t, 10), 700.0 + np.maximum(t - 10, 0))
    assert position_at(traj, [9.0], baseline_s=4.0).heading_deg[0] == pytest.approx(math.degrees(math.atan2(3, 1)))
    assert np.isnan(position_at(traj, [9.0], min_displacement_m=5.0).heading_deg[0])


def test_coverage_names_whose_frames_fall_outside(caplog: pytest.LogCaptureFixture) -> None:
    traj = walk([1.0, 1.5, 2.0], [0.0, 0.5, 1.0], [0.0, 0.0, 0.0])
    with caplog.at_level(logging.WARNING, logger="vidvpr.geo.trajectory"):
        mask = coverage(traj, [0.5, 1.5, 3.0], frames_name="query frames", time_offset_s=0.5)
    assert mask.tolist() == [True, True, False]
    assert caplog.messages == [
        ("walk.csv: 1 of 3 query frames fall outside the trajectory: video [0.500, 3.000] s (time offset +0.5 s) "
         "vs trajectory [1.000, 2.000] s; dropping them")]


def test_strict_coverage_refuses_with_the_full_explanation() -> None:
    traj = walk([1.0, 2.0], [0.0, 1.0], [0.0, 0.0])
    message = ("walk.csv: 2 of 2 video frames fall outside the trajectory: video [0.000, 0.500] s (time offset -1 s) "
               "vs trajectory [1.000, 2.000] s; are the clocks offset? set time_offset_s in the definition or "
               "--time-offset (trajectory time = video time + offset)")
    with pytest.raises(BadInput) as info:
        coverage(traj, [0.0, 0.5], strict=True, time_offset_s=-1.0)
    assert str(info.value) == message


def test_coverage_of_no_frame_at_all_refuses_without_strict(caplog: pytest.LogCaptureFixture) -> None:
    """A trajectory that misses the whole video was a warning, then a second line ("no query rows left")
    naming no file, or, when the split kept other recordings' rows, a manifest without that recording."""
    traj = walk([100.0, 110.0], [0.0, 1.0], [0.0, 0.0])
    with caplog.at_level(logging.WARNING, logger="vidvpr.geo.trajectory"), pytest.raises(BadInput) as info:
        coverage(traj, [0.0, 5.0, 9.9])
    assert str(info.value).startswith("walk.csv: 3 of 3 video frames fall outside the trajectory: video [0.000, 9.900] s "
                                      "(time offset +0 s) vs trajectory [100.000, 110.000] s; are the clocks offset?")
    assert caplog.messages == []


def test_full_coverage_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vidvpr.geo.trajectory"):
        assert coverage(walk([1.0, 2.0], [0.0, 1.0], [0.0, 0.0]), [1.0, 2.0]).all()
    assert caplog.messages == []


# ---------------------------------------------------------------- readers (vidvpr.geo.readers, checked cheaply here)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_gpx_positions_are_utm_easting_and_northing(tmp_path: Path) -> None:
    points = "".join(f'<trkpt lat="{lat}" lon="9.0"><time>2024-05-01T10:00:0{i}Z</time></trkpt>'
                     for i, lat in enumerate(["0.0", "0.001"]))
    gpx = ('<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
           f"<trk><trkseg>{points}</trkseg></trk></gpx>")
    traj = read_trajectory(write(tmp_path, "ride.gpx", gpx))
    np.testing.assert_allclose(traj.easting_m, [500_000.0, 500_000.0])
    np.testing.assert_allclose(traj.northing_m, [0.0, NORTH_M_PER_DEG_AT_EQUATOR * 0.001], atol=0.01)
    assert (traj.utm_zone_number, traj.utm_zone_letter) == (32, "N")


def test_latlon_csv_heading_column_is_read_and_wrapped(tmp_path: Path) -> None:
    traj = read_trajectory(write(tmp_path, "gps.csv", "t,lat,lon,heading\n0,0.0,9.0,370\n1,0.001,9.0,-90\n"))
    np.testing.assert_allclose(traj.heading_deg, [10.0, 270.0])


def test_latlon_csv_forced_into_the_second_points_zone(tmp_path: Path) -> None:
    traj = read_trajectory(write(tmp_path, "gps.csv", "t,lat,lon\n0,0.0,3.0\n1,0.0,9.0\n"), force_zone_number=32)
    assert traj.utm_zone_number == 32 and traj.easting_m[1] == pytest.approx(500_000.0)
