"""Trajectories: read a recording's path and give position and heading at any video time.

Conventions
-----------
Positions are metres in an east/north/up frame: WGS84 UTM for geographic sources (lat/lon CSV,
GPX; one zone per trajectory and per dataset, see `check_same_zone`), else the file's own
local metric frame (x/y CSV, TUM, keyframe JSON).

Heading is compass-style, degrees in [0, 360): 0 = +northing (north), 90 = +easting (east),
clockwise seen from above. A view's yaw is measured the same way, to the right of the camera's
forward direction, so view heading = camera heading + view yaw (`view_heading_deg`). A heading
column in a lat/lon CSV is used as-is: true north, which differs from UTM grid north by the
grid convergence (about 2° at a zone's edge at 48°N).

Time: `t_s` is seconds on the trajectory's clock: as written in CSV and TUM files; since the
first point for GPX (its absolute UTC start kept in `t0_epoch_s`); frame / fps for keyframe
JSON. Video and trajectory clocks are related by ``trajectory time = video time + time_offset_s``:
if the GPS logger started 5 s before the video, video t = 0 is trajectory t = 5, offset = +5.

Axes of SLAM poses (TUM, keyframe JSON), chosen with `axes`:
  "xy" (default): easting = x, northing = y, up = z; the body's forward axis is +x.
  "xz": camera frame (x right, y down, z forward, as ORB-SLAM): easting = x, northing = z,
        up = -y; the forward axis is +z.
Both maps are proper rotations, so a right turn stays clockwise. Rotations (quaternions
[qx, qy, qz, qw] as in TUM, or 3x3 matrices) are body-to-world (the camera's pose); heading is
the yaw of the body's forward axis projected onto the ground plane.

File formats and their readers are in `vidvpr.geo.readers`.

Without a heading in the file, heading follows the direction of travel (`heading_from_travel`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import utm
from numpy.typing import ArrayLike

from vidvpr.core.errors import BadInput

LOG = logging.getLogger(__name__)

Axes = Literal["xy", "xz"]
HEADING_BASELINE_S = 2.0  # time span of the central difference giving the heading of travel
MIN_DISPLACEMENT_M = 0.5  # less movement than this over the baseline counts as standing still
TIME_TOLERANCE_S = 1e-6  # frame times this close to the trajectory's ends count as inside
#: axes -> (matrix taking source x, y, z to east, north, up; the body's forward axis in source)
AXES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "xy": (np.eye(3), np.array([1.0, 0.0, 0.0])),
    "xz": (np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]), np.array([0.0, 0.0, 1.0])),
}


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Positions (metres east/north/up) and optional heading over time, as read from one file."""

    t_s: np.ndarray  # seconds, strictly increasing
    easting_m: np.ndarray
    northing_m: np.ndarray
    up_m: np.ndarray | None
    heading_deg: np.ndarray | None  # compass heading from the file; None: from travel
    utm_zone_number: int | None  # set when the source was geographic (lat/lon)
    utm_zone_letter: str | None
    source: str  # path of the file it came from
    format: str  # a key of vidvpr.geo.readers.READERS
    t0_epoch_s: float | None = None  # UTC epoch of t_s = 0, when the file has absolute times

    def __post_init__(self) -> None:
        for arr in (self.easting_m, self.northing_m, self.up_m, self.heading_deg):
            if arr is not None and arr.shape != self.t_s.shape:
                raise ValueError(f"trajectory arrays differ in shape: {arr.shape} vs {self.t_s.shape}")


class Pose(NamedTuple):
    """Interpolated positions; NaN where `inside` is False (outside the trajectory's time range)."""

    easting_m: np.ndarray
    northing_m: np.ndarray
    heading_deg: np.ndarray
    inside: np.ndarray


# ---------------------------------------------------------------- pure maths


def wrap_deg(angle_deg: ArrayLike) -> Any:
    """Angles wrapped to [0, 360) (a float for a scalar, else an array)."""
    wrapped = np.mod(np.asarray(angle_deg, dtype=float), 360.0)
    wrapped = np.where(wrapped >= 360.0, 0.0, wrapped)  # np.mod(-1e-20, 360) rounds to 360
    return float(wrapped) if wrapped.ndim == 0 else wrapped


def round_heading_deg(angle_deg: float, decimals: int) -> float:
    """A heading as it is written: wrapped to [0, 360), rounded to `decimals` places, wrapped again,
    so that 359.99996° written to 3 places is 0.0, never 360.0 (which no reader accepts). NaN stays NaN."""
    return float(wrap_deg(round(float(wrap_deg(angle_deg)), decimals)))


def view_heading_deg(camera_heading_deg: ArrayLike, view_yaw_deg: ArrayLike) -> Any:
    """Heading of a view: camera heading + view yaw (both clockwise from above), in [0, 360)."""
    return wrap_deg(np.add(camera_heading_deg, view_yaw_deg))


def interpolate_heading_deg(t_s: ArrayLike, sample_t_s: ArrayLike, sample_deg: ArrayLike) -> np.ndarray:
    """Heading at `t_s`, along the shortest arc between samples (350° → 10° passes north)."""
    unwrapped = np.unwrap(np.asarray(sample_deg, dtype=float), period=360.0)
    return np.asarray(wrap_deg(np.interp(t_s, sample_t_s, unwrapped)))


def _fill_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Carry the last valid value forward, and the first valid one back over the start."""
    if not valid.any():
        return np.full(values.shape, np.nan)
    index = np.maximum.accumulate(np.where(valid, np.arange(values.size), -1))
    index[index < 0] = np.flatnonzero(valid)[0]
    return values[index]


def heading_from_travel(
    t_s: np.ndarray, easting_m: np.ndarray, northing_m: np.ndarray, *,
    baseline_s: float = HEADING_BASELINE_S, min_displacement_m: float = MIN_DISPLACEMENT_M,
) -> np.ndarray:
    """Compass heading of the direction of travel at each sample.

    Central difference of position over `baseline_s` (one-sided at the ends). Where the walker
    moved less than `min_displacement_m` over the baseline (a stop), the last valid heading is
    carried forward, and the first one backward over a stationary start. NaN if it never moves
    (the manifest warns, naming the file: `never_moves`).
    """
    half = baseline_s / 2
    d_east = np.interp(t_s + half, t_s, easting_m) - np.interp(t_s - half, t_s, easting_m)
    d_north = np.interp(t_s + half, t_s, northing_m) - np.interp(t_s - half, t_s, northing_m)
    moving = np.hypot(d_east, d_north) >= min_displacement_m
    heading = np.asarray(wrap_deg(np.degrees(np.arctan2(d_east, d_north))))
    return _fill_invalid(heading, moving)


def never_moves(traj: Trajectory, *, baseline_s: float = HEADING_BASELINE_S,
                min_displacement_m: float = MIN_DISPLACEMENT_M) -> bool:
    """Whether the trajectory has no heading column and never moves enough to have a heading of travel."""
    if traj.heading_deg is not None:
        return False
    return bool(np.isnan(heading_from_travel(traj.t_s, traj.easting_m, traj.northing_m, baseline_s=baseline_s,
                                             min_displacement_m=min_displacement_m)).all())


def quat_to_matrix(quat_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) from quaternions (N, 4) ordered [qx, qy, qz, qw]."""
    q = np.asarray(quat_xyzw, dtype=float)
    x, y, z, w = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=1)


def heading_from_rotation(rot: np.ndarray, axes: Axes = "xy") -> np.ndarray:
    """Compass heading of the body's forward axis (see AXES) for body-to-world rotations (N, 3, 3).

    A forward axis pointing straight up or down has no heading; it takes its neighbour's.
    """
    to_enu, forward = AXES[axes]
    fwd = np.einsum("ij,njk,k->ni", to_enu, rot, forward)
    heading = np.asarray(wrap_deg(np.degrees(np.arctan2(fwd[:, 0], fwd[:, 1]))))
    return _fill_invalid(heading, np.hypot(fwd[:, 0], fwd[:, 1]) > 1e-6)


def latlon_to_utm(
    lat_deg: ArrayLike, lon_deg: ArrayLike, *, source: str,
    labels: Sequence[str] | None = None, force_zone_number: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Latitude/longitude → (easting_m, northing_m, zone number, zone letter), all in one zone.

    The zone is the points' own (BadInput naming both zones if they span two) or
    `force_zone_number`; the zone letter (hemisphere) is the first point's.
    """
    lat, lon = np.asarray(lat_deg, dtype=float), np.asarray(lon_deg, dtype=float)
    labels = labels or [f"point {i}" for i in range(1, lat.size + 1)]
    for values, name, limit in ((lat, "latitude", 90.0), (lon, "longitude", 180.0)):
        bad = np.flatnonzero(np.abs(values) > limit)
        if bad.size:
            raise BadInput(f"{source}: {labels[bad[0]]}: {name} {values[bad[0]]} is outside ±{limit:g}°")
    bad = np.flatnonzero((lat < -80.0) | (lat > 84.0))
    if bad.size:
        raise BadInput(f"{source}: {labels[bad[0]]}: latitude {lat[bad[0]]} is outside UTM's 80°S-84°N")
    letter = utm.latitude_to_zone_letter(float(lat[0]))
    if force_zone_number is not None:
        if not 1 <= force_zone_number <= 60:
            raise BadInput(f"{source}: UTM zone {force_zone_number} is outside 1-60")
        zone = int(force_zone_number)
    else:
        zones = np.array([utm.latlon_to_zone_number(a, o) for a, o in zip(lat.tolist(), lon.tolist())])
        zone = int(zones[0])
        bad = np.flatnonzero(zones != zone)
        if bad.size:
            raise BadInput(
                f"{source}: points span UTM zones {zone} ({labels[0]}) and {zones[bad[0]]} "
                f"({labels[bad[0]]}); one zone per dataset: split the recording, or force one zone "
                "(utm_zone in [dataset], or --utm-zone; a walk across the antimeridian: either zone)"
            )
    easting, northing, _, _ = utm.from_latlon(lat, lon, force_zone_number=zone, force_zone_letter=letter)
    return np.asarray(easting, dtype=float), np.asarray(northing, dtype=float), zone, letter


def lat_lon(
    traj: Trajectory, easting_m: ArrayLike | None = None, northing_m: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Latitude, longitude (degrees) of the samples, or of given positions in the trajectory's zone."""
    if traj.utm_zone_number is None:
        raise BadInput(f"{traj.source}: positions are in a local metric frame ({traj.format}), not lat/lon")
    east = traj.easting_m if easting_m is None else np.asarray(easting_m, dtype=float)
    north = traj.northing_m if northing_m is None else np.asarray(northing_m, dtype=float)
    lat, lon = utm.to_latlon(east, north, traj.utm_zone_number, traj.utm_zone_letter, strict=False)
    return np.asarray(lat), np.asarray(lon)


def _frame_name(traj: Trajectory, shared_local_frame: bool) -> str:
    if traj.utm_zone_number is None:
        return "a local metric frame" if shared_local_frame else f"a local metric frame ({traj.format})"
    hemisphere = "N" if (traj.utm_zone_letter or "N") >= "N" else "S"
    return f"UTM zone {traj.utm_zone_number}{hemisphere}"


def check_same_zone(trajectories: Sequence[Trajectory], shared_local_frame: bool = False) -> tuple[int, str] | None:
    """The UTM zone (number, letter) shared by all trajectories; None if all are local frames.

    BadInput if they mix zones, hemispheres, or UTM with local frames: their positions could
    not be compared. Local trajectories of different formats are taken to be different frames
    unless `shared_local_frame` says they were aligned to one (a SLAM map registered to a survey).
    """
    if not trajectories:
        return None
    first = trajectories[0]
    for other in trajectories[1:]:
        mine, theirs = _frame_name(other, shared_local_frame), _frame_name(first, shared_local_frame)
        if mine == theirs:
            continue
        both_local = other.utm_zone_number is None and first.utm_zone_number is None
        both_utm = other.utm_zone_number is not None and first.utm_zone_number is not None
        if both_local:
            advice = ("if they were aligned to one frame (e.g. a SLAM map registered to the survey), say so with "
                      "shared_local_frame = true in [dataset], or --shared-local-frame")
        elif both_utm:
            advice = "one zone per dataset: force one UTM zone (utm_zone in [dataset], or --utm-zone)"
        else:
            advice = "geographic and local positions cannot be compared; give every recording the same kind"
        raise BadInput(f"{other.source}: positions are in {mine} but {first.source} is in {theirs}; {advice}")
    if first.utm_zone_number is None:
        return None
    return first.utm_zone_number, str(first.utm_zone_letter)


def _inside(traj: Trajectory, t_s: np.ndarray) -> np.ndarray:
    return (t_s >= traj.t_s[0] - TIME_TOLERANCE_S) & (t_s <= traj.t_s[-1] + TIME_TOLERANCE_S)


def position_at(
    traj: Trajectory, t_s: ArrayLike, *, time_offset_s: float = 0.0,
    baseline_s: float = HEADING_BASELINE_S, min_displacement_m: float = MIN_DISPLACEMENT_M,
) -> Pose:
    """Position and heading at video times `t_s`; trajectory time = video time + `time_offset_s`.

    Position is linear between samples, heading follows the shortest arc; heading comes from the
    file if it has one, else from travel (`heading_from_travel`). No extrapolation: times outside
    the trajectory give NaN and inside=False.
    """
    t = np.asarray(t_s, dtype=float) + time_offset_s
    inside = _inside(traj, t)
    t_inside = np.where(inside, t, traj.t_s[0])  # np.interp holds the end values within the tolerance
    headings = traj.heading_deg
    if headings is None:
        headings = heading_from_travel(traj.t_s, traj.easting_m, traj.northing_m,
                                       baseline_s=baseline_s, min_displacement_m=min_displacement_m)
    return Pose(
        np.where(inside, np.interp(t_inside, traj.t_s, traj.easting_m), np.nan),
        np.where(inside, np.interp(t_inside, traj.t_s, traj.northing_m), np.nan),
        np.where(inside, interpolate_heading_deg(t_inside, traj.t_s, headings), np.nan),
        inside,
    )


def coverage(
    traj: Trajectory, frame_times_s: ArrayLike, strict: bool = False, *, time_offset_s: float = 0.0,
    frames_name: str = "video frames",
) -> np.ndarray:
    """Mask of the video frames inside the trajectory's time range; the others are dropped.

    The drop count is logged; with `strict`, any frame outside raises BadInput showing the
    video and trajectory time ranges, and so does every frame outside without it (a recording
    that keeps no frame is a clock offset to fix, not frames to drop). `frames_name` says whose
    frames they are in messages.
    """
    frames = np.asarray(frame_times_s, dtype=float)
    inside = _inside(traj, frames + time_offset_s)
    dropped = int(np.count_nonzero(~inside))
    if dropped:
        detail = (
            f"{dropped} of {frames.size} {frames_name} fall outside the trajectory: "
            f"video [{np.nanmin(frames):.3f}, {np.nanmax(frames):.3f}] s (time offset {time_offset_s:+g} s)"
            f" vs trajectory [{traj.t_s[0]:.3f}, {traj.t_s[-1]:.3f}] s"
        )
        if strict or dropped == frames.size:
            raise BadInput(
                f"{traj.source}: {detail}; are the clocks offset? set time_offset_s in the definition or "
                "--time-offset (trajectory time = video time + offset)"
            )
        LOG.warning("%s: %s; dropping them", traj.source, detail)
    return inside
