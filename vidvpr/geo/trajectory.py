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

Keyframe JSON (no public spec exists; this is the format we accept, after LoQI-VPR's maps):
    {"fps": 30.0, "scale": 0.85, "axes": "xz",
     "keyframes": [{"frame": 0, "trans": [0, 0, 0], "rot": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
                   {"frame": 15, "trans": [0.1, 0, 1.2], "rot": [0, 0, 0, 1]}]}
`frame` is the video frame index (time = frame / fps), `trans` the position in SLAM units
(metres = scale * trans), `rot` optional (all keyframes or none) as a row-major 3x3 matrix or a
quaternion [qx, qy, qz, qw]. `scale` defaults to 1, `axes` to "xy". A bare list of keyframes is
accepted too, with fps/scale/axes passed to `read_trajectory`; a value given both ways must agree.

Without a heading in the file, heading follows the direction of travel (`heading_from_travel`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple

import gpxpy
import gpxpy.gpx
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
CSV_COLUMNS = {  # format -> (required columns, optional columns)
    "csv-xy": (("t", "x", "y"), ("z", "heading")),
    "csv-latlon": (("t", "lat", "lon"), ("alt", "heading")),
}
TUM_COLUMNS = ("timestamp", "tx", "ty", "tz", "qx", "qy", "qz", "qw")
EXTENSIONS = {".gpx": "gpx", ".json": "keyframes-json", ".tum": "tum"}


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
    format: str  # a key of READERS
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


@dataclass(frozen=True)
class ReadOptions:
    """Reader settings; each applies only to the formats named."""

    axes: Axes | None = None  # tum, keyframes-json (default "xy")
    fps: float | None = None  # keyframes-json
    scale: float | None = None  # tum, keyframes-json: metres per SLAM unit (default 1)
    force_zone_number: int | None = None  # csv-latlon, gpx: convert into this UTM zone


# ---------------------------------------------------------------- pure maths


def wrap_deg(angle_deg: ArrayLike) -> Any:
    """Angles wrapped to [0, 360) (a float for a scalar, else an array)."""
    wrapped = np.mod(np.asarray(angle_deg, dtype=float), 360.0)
    wrapped = np.where(wrapped >= 360.0, 0.0, wrapped)  # np.mod(-1e-20, 360) rounds to 360
    return float(wrapped) if wrapped.ndim == 0 else wrapped


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
    carried forward, and the first one backward over a stationary start. NaN if it never moves.
    """
    half = baseline_s / 2
    d_east = np.interp(t_s + half, t_s, easting_m) - np.interp(t_s - half, t_s, easting_m)
    d_north = np.interp(t_s + half, t_s, northing_m) - np.interp(t_s - half, t_s, northing_m)
    moving = np.hypot(d_east, d_north) >= min_displacement_m
    if not moving.any():
        LOG.warning("trajectory never moves %.2f m in %.1f s: no heading of travel",
                    min_displacement_m, baseline_s)
    heading = np.asarray(wrap_deg(np.degrees(np.arctan2(d_east, d_north))))
    return _fill_invalid(heading, moving)


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
                f"({labels[bad[0]]}); one zone per dataset: split the recording or force one zone"
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


def _frame_name(traj: Trajectory) -> str:
    if traj.utm_zone_number is None:
        return f"a local metric frame ({traj.format})"
    hemisphere = "N" if (traj.utm_zone_letter or "N") >= "N" else "S"
    return f"UTM zone {traj.utm_zone_number}{hemisphere}"


def check_same_zone(trajectories: Sequence[Trajectory]) -> tuple[int, str] | None:
    """The UTM zone (number, letter) shared by all trajectories; None if all are local frames.

    BadInput if they mix zones, hemispheres, or UTM with local frames: their positions
    could not be compared. Read geographic recordings with `force_zone_number` to join zones.
    """
    if not trajectories:
        return None
    first = trajectories[0]
    for other in trajectories[1:]:
        if _frame_name(other) != _frame_name(first):
            raise BadInput(
                f"{other.source}: positions are in {_frame_name(other)} but {first.source} is in "
                f"{_frame_name(first)}; one zone per dataset (force one UTM zone when reading)"
            )
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
    clipped = np.clip(np.where(inside, t, traj.t_s[0]), traj.t_s[0], traj.t_s[-1])
    headings = traj.heading_deg
    if headings is None:
        headings = heading_from_travel(traj.t_s, traj.easting_m, traj.northing_m,
                                       baseline_s=baseline_s, min_displacement_m=min_displacement_m)
    return Pose(
        np.where(inside, np.interp(clipped, traj.t_s, traj.easting_m), np.nan),
        np.where(inside, np.interp(clipped, traj.t_s, traj.northing_m), np.nan),
        np.where(inside, interpolate_heading_deg(clipped, traj.t_s, headings), np.nan),
        inside,
    )


def coverage(
    traj: Trajectory, frame_times_s: ArrayLike, strict: bool = False, *, time_offset_s: float = 0.0,
    frames_name: str = "video frames",
) -> np.ndarray:
    """Mask of the video frames inside the trajectory's time range; the others are dropped.

    The drop count is logged; with `strict`, any frame outside raises BadInput showing the
    video and trajectory time ranges. `frames_name` says whose frames they are in messages.
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
        if strict:
            raise BadInput(
                f"{traj.source}: {detail}; are the clocks offset? set time_offset_s in the definition or "
                "--time-offset (trajectory time = video time + offset)"
            )
        LOG.warning("%s: %s; dropping them", traj.source, detail)
    return inside


# ---------------------------------------------------------------- readers


def _number(path: Path, label: str, name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        shown = value.strip() if isinstance(value, str) else value
        raise BadInput(f"{path}: {label}: {name} is not a number: {shown!r}") from None


def _check_samples(path: Path, labels: Sequence[str], columns: dict[str, np.ndarray], time_key: str) -> None:
    """At least two samples, all values finite, times strictly increasing."""
    if len(labels) < 2:
        raise BadInput(f"{path}: needs at least 2 trajectory samples, found {len(labels)}")
    for name, values in columns.items():
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise BadInput(f"{path}: {labels[bad[0]]}: {name} is {values[bad[0]]} (NaN, inf not allowed)")
    t = columns[time_key]
    steps = np.flatnonzero(np.diff(t) <= 0)
    if steps.size:
        i = steps[0] + 1
        what = "duplicate" if t[i] == t[i - 1] else "decreasing"
        raise BadInput(
            f"{path}: {labels[i]}: {what} {time_key} ({float(t[i])} after {float(t[i - 1])}); "
            f"{time_key} must strictly increase"
        )


def _read_csv(path: Path, text: str, opts: ReadOptions, fmt: str) -> Trajectory:
    required, optional = CSV_COLUMNS[fmt]
    expected = ",".join(required) + "".join(f"[,{name}]" for name in optional)
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, row) for row in reader if "".join(row).strip() and not row[0].startswith("#")]
    if not rows:
        raise BadInput(f"{path}: no header; expected {expected}")
    names = [cell.strip().lower() for cell in rows[0][1]]
    missing = [name for name in required if name not in names]
    unknown = [name for name in names if name not in required + optional]
    if missing or unknown or len(set(names)) != len(names):
        problem = f"missing column(s) {', '.join(missing)}" if missing else "unknown or repeated column(s)"
        raise BadInput(f"{path}: {problem} in header {','.join(names)!r}; expected {expected}")
    labels, values = [], np.empty((len(rows) - 1, len(names)))
    for k, (line, row) in enumerate(rows[1:]):
        labels.append(f"line {line}")
        if len(row) != len(names):
            raise BadInput(f"{path}: line {line}: expected {len(names)} values, got {len(row)}")
        values[k] = [_number(path, labels[-1], name, cell) for name, cell in zip(names, row)]
    col = {name: values[:, j] for j, name in enumerate(names)}
    _check_samples(path, labels, col, "t")
    heading = None if "heading" not in col else np.asarray(wrap_deg(col["heading"]))
    if fmt == "csv-xy":
        return Trajectory(col["t"], col["x"], col["y"], col.get("z"), heading, None, None, str(path), fmt)
    east, north, zone, letter = latlon_to_utm(col["lat"], col["lon"], source=str(path), labels=labels,
                                              force_zone_number=opts.force_zone_number)
    return Trajectory(col["t"], east, north, col.get("alt"), heading, zone, letter, str(path), fmt)


def _pose_trajectory(
    path: Path, fmt: str, t_s: np.ndarray, trans: np.ndarray, rot: np.ndarray | None, axes: Any, scale: float
) -> Trajectory:
    """Trajectory from SLAM poses: positions scaled and mapped to east/north/up, heading from rot."""
    if axes not in AXES:
        raise BadInput(f"{path}: unknown axes {axes!r}; use {' or '.join(map(repr, AXES))}")
    enu = scale * trans @ AXES[axes][0].T
    heading = None if rot is None else heading_from_rotation(rot, axes)
    return Trajectory(t_s, enu[:, 0], enu[:, 1], enu[:, 2], heading, None, None, str(path), fmt)


def _positive(path: Path, name: str, value: Any) -> float:
    number = _number(path, "settings", name, value)
    if not (math.isfinite(number) and number > 0):
        raise BadInput(f"{path}: {name} must be positive, got {value!r}")
    return number


def _read_tum(path: Path, text: str, opts: ReadOptions) -> Trajectory:
    labels, rows = [], []
    for line_no, line in enumerate(text.splitlines(), 1):
        cells = line.split()
        if not cells or cells[0].startswith("#"):
            continue
        labels.append(f"line {line_no}")
        if len(cells) != len(TUM_COLUMNS):
            raise BadInput(f"{path}: line {line_no}: expected 8 values ({' '.join(TUM_COLUMNS)}), "
                           f"got {len(cells)}")
        rows.append([_number(path, labels[-1], name, cell) for name, cell in zip(TUM_COLUMNS, cells)])
    values = np.array(rows, dtype=float).reshape(-1, len(TUM_COLUMNS))
    _check_samples(path, labels, dict(zip(TUM_COLUMNS, values.T)), "timestamp")
    bad = np.flatnonzero(np.linalg.norm(values[:, 4:], axis=1) < 1e-9)
    if bad.size:
        raise BadInput(f"{path}: {labels[bad[0]]}: quaternion qx qy qz qw is zero")
    scale = 1.0 if opts.scale is None else _positive(path, "scale", opts.scale)
    rot = quat_to_matrix(values[:, 4:])
    return _pose_trajectory(path, "tum", values[:, 0], values[:, 1:4], rot, opts.axes or "xy", scale)


def _read_gpx(path: Path, text: str, opts: ReadOptions) -> Trajectory:
    try:
        gpx = gpxpy.parse(text)
    except gpxpy.gpx.GPXException as exc:
        reason = (str(exc) or type(exc).__name__).splitlines()[0]
        raise BadInput(f"{path}: not a readable GPX file ({reason})") from None
    points = [point for track in gpx.tracks for segment in track.segments for point in segment.points]
    labels = [f"track point {i}" for i in range(1, len(points) + 1)]
    for label, point in zip(labels, points):
        if point.time is None:
            raise BadInput(f"{path}: {label} has no <time>; every track point needs one")
    times = [p.time if p.time.tzinfo else p.time.replace(tzinfo=timezone.utc) for p in points]
    columns = {
        "time": np.array([time.timestamp() for time in times], dtype=float),
        "lat": np.array([p.latitude for p in points], dtype=float),
        "lon": np.array([p.longitude for p in points], dtype=float),
    }
    if points and all(p.elevation is not None for p in points):
        columns["elevation"] = np.array([p.elevation for p in points], dtype=float)
    _check_samples(path, labels, columns, "time")
    east, north, zone, letter = latlon_to_utm(columns["lat"], columns["lon"], source=str(path), labels=labels,
                                              force_zone_number=opts.force_zone_number)
    epoch = columns["time"]
    up, start = columns.get("elevation"), float(epoch[0])
    return Trajectory(epoch - start, east, north, up, None, zone, letter, str(path), "gpx", start)


def _setting(path: Path, settings: dict[str, Any], name: str, option: Any) -> Any:
    """A keyframe-file setting from the file or the caller; both given must agree."""
    in_file = settings.get(name)
    if in_file is not None and option is not None and in_file != option:
        raise BadInput(f"{path}: {name} is {in_file!r} in the file but {option!r} was given")
    return in_file if option is None else option


def _rotation(path: Path, label: str, value: Any) -> np.ndarray:
    is_list = isinstance(value, list)
    if is_list and len(value) == 4 and not any(isinstance(v, list) for v in value):
        quat = np.array([_number(path, label, "rot", v) for v in value])
        if not np.linalg.norm(quat) > 1e-9:
            raise BadInput(f"{path}: {label}: rot quaternion is zero or not finite")
        return quat_to_matrix(quat[None])[0]
    if not (is_list and len(value) == 3 and all(isinstance(r, list) and len(r) == 3 for r in value)):
        raise BadInput(f"{path}: {label}: rot must be a row-major 3x3 matrix or a quaternion [qx,qy,qz,qw]")
    rot = np.array([[_number(path, label, "rot", v) for v in row] for row in value])
    if not (np.allclose(rot @ rot.T, np.eye(3), atol=1e-3) and np.linalg.det(rot) > 0):
        raise BadInput(f"{path}: {label}: rot is not a rotation matrix")
    return rot


def _read_keyframes_json(path: Path, text: str, opts: ReadOptions) -> Trajectory:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{path}: not valid JSON ({exc})") from None
    settings = data if isinstance(data, dict) else {}
    keyframes = data.get("keyframes") if isinstance(data, dict) else data
    if not isinstance(keyframes, list):
        raise BadInput(f'{path}: expected {{"keyframes": [...]}} or a list of keyframes')
    fps = _setting(path, settings, "fps", opts.fps)
    if fps is None:
        raise BadInput(f'{path}: frame rate unknown: put "fps" in the file or pass fps')
    fps = _positive(path, "fps", fps)
    scale = _setting(path, settings, "scale", opts.scale)
    scale = 1.0 if scale is None else _positive(path, "scale", scale)
    labels, frames, trans, rots = [], [], [], []
    for i, keyframe in enumerate(keyframes, 1):
        labels.append(f"keyframe {i}")
        if not isinstance(keyframe, dict) or "frame" not in keyframe or "trans" not in keyframe:
            raise BadInput(f"{path}: keyframe {i} needs 'frame' and 'trans' (and optionally 'rot')")
        frames.append(_number(path, labels[-1], "frame", keyframe["frame"]))
        if not (isinstance(keyframe["trans"], list) and len(keyframe["trans"]) == 3):
            raise BadInput(f"{path}: keyframe {i}: trans must be a list of 3 numbers")
        trans.append([_number(path, labels[-1], "trans", v) for v in keyframe["trans"]])
        rots.append(_rotation(path, labels[-1], keyframe["rot"]) if "rot" in keyframe else None)
    trans_m = np.array(trans, dtype=float).reshape(-1, 3)
    columns = {"frame": np.array(frames, dtype=float), **{f"trans {c}": v for c, v in zip("xyz", trans_m.T)}}
    _check_samples(path, labels, columns, "frame")
    has_rot = [rot is not None for rot in rots]
    if any(has_rot) and not all(has_rot):
        raise BadInput(f"{path}: {labels[has_rot.index(False)]} has no 'rot' but others do; give all or none")
    rot = np.stack(rots) if all(has_rot) else None
    axes = _setting(path, settings, "axes", opts.axes) or "xy"
    return _pose_trajectory(path, "keyframes-json", columns["frame"] / fps, trans_m, rot, axes, scale)


READERS: dict[str, Callable[[Path, str, ReadOptions], Trajectory]] = {
    "csv-xy": lambda path, text, opts: _read_csv(path, text, opts, "csv-xy"),
    "csv-latlon": lambda path, text, opts: _read_csv(path, text, opts, "csv-latlon"),
    "tum": _read_tum,
    "gpx": _read_gpx,
    "keyframes-json": _read_keyframes_json,
}


def detect_format(path: Path, text: str) -> str:
    """Format from the extension (.gpx, .json, .tum), else from the content."""
    if Path(path).suffix.lower() in EXTENSIONS:
        return EXTENSIONS[Path(path).suffix.lower()]
    head = text.lstrip()
    if head.startswith("<"):
        return "gpx"
    if head.startswith(("{", "[")):
        return "keyframes-json"
    lines = (line.strip() for line in text.splitlines())
    first = next((line for line in lines if line and not line.startswith("#")), "")
    if not first:
        raise BadInput(f"{path}: file is empty")
    names = {cell.strip().lower() for cell in first.split(",")}
    if {"lat", "lon"} <= names:
        return "csv-latlon"
    if {"x", "y"} <= names:
        return "csv-xy"
    if len(first.split()) == len(TUM_COLUMNS):
        return "tum"
    raise BadInput(f"{path}: cannot tell the trajectory format: a CSV needs a header t,x,y or t,lat,lon; "
                   f"or give one of {', '.join(READERS)}")


def read_trajectory(
    path: str | Path, format: str = "auto", *, axes: Axes | None = None, fps: float | None = None,
    scale: float | None = None, force_zone_number: int | None = None,
) -> Trajectory:
    """Read a trajectory file; `format` is a key of READERS or "auto" (by extension, then content).

    axes: SLAM axes for tum/keyframes-json; fps, scale: for keyframe maps (scale also for tum);
    force_zone_number: UTM zone for geographic sources, to keep several recordings in one zone.
    """
    path = Path(path)
    if format != "auto" and format not in READERS:
        raise BadInput(f"{path}: unknown trajectory format {format!r}; use auto, {', '.join(READERS)}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a text file") from None
    fmt = detect_format(path, text) if format == "auto" else format
    traj = READERS[fmt](path, text, ReadOptions(axes, fps, scale, force_zone_number))
    zone = f", UTM zone {traj.utm_zone_number}{traj.utm_zone_letter}" if traj.utm_zone_number else ""
    LOG.info("%s: %s, %d samples over %.1f s%s", path, fmt, traj.t_s.size, traj.t_s[-1] - traj.t_s[0], zone)
    return traj
