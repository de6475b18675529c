"""Trajectory file readers: CSV (x/y or lat/lon), TUM, GPX, keyframe JSON and the GPS of an
Insta360 recording (.insv) → `Trajectory`.

Every problem with a file (unreadable, malformed, non-finite or non-increasing values) is a
one-line BadInput naming the file and the line or point.

Keyframe JSON (no public spec exists; this is the format we accept, after LoQI-VPR's maps):
    {"fps": 30.0, "scale": 0.85, "axes": "xz",
     "keyframes": [{"frame": 0, "trans": [0, 0, 0], "rot": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
                   {"frame": 15, "trans": [0.1, 0, 1.2], "rot": [0, 0, 0, 1]}]}
`frame` is the video frame index (time = frame / fps), `trans` the position in SLAM units
(metres = scale * trans), `rot` optional (all keyframes or none) as a row-major 3x3 matrix or a
quaternion [qx, qy, qz, qw]. `scale` defaults to 1, `axes` to "xy". A bare list of keyframes is
accepted too, with fps/scale/axes passed to `read_trajectory`; a value given both ways must agree.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.core.records import read_text_file
from vidvpr.geo.trajectory import AXES, Axes, Trajectory, heading_from_rotation, latlon_to_utm, quat_to_matrix, wrap_deg

LOG = logging.getLogger(__name__)

CSV_COLUMNS = {  # format -> (required columns, optional columns)
    "csv-xy": (("t", "x", "y"), ("z", "heading")),
    "csv-latlon": (("t", "lat", "lon"), ("alt", "heading")),
}
TUM_COLUMNS = ("timestamp", "tx", "ty", "tz", "qx", "qy", "qz", "qw")
NMEA_SENTENCE = re.compile(r"^\$[A-Z]{2}[A-Z]{3},")  # $GPGGA, $GNRMC, ...: a raw GPS receiver log
EXTENSIONS = {".gpx": "gpx", ".json": "keyframes-json", ".tum": "tum", ".insv": "insv"}


@dataclass(frozen=True)
class ReadOptions:
    """Reader settings; each applies only to the formats named."""

    axes: Axes | None = None  # tum, keyframes-json (default "xy")
    fps: float | None = None  # keyframes-json
    scale: float | None = None  # tum, keyframes-json: metres per SLAM unit (default 1)
    force_zone_number: int | None = None  # csv-latlon, gpx: convert into this UTM zone


def _number(path: Path, label: str, name: str, value: Any) -> float:
    """A number from a cell or JSON value (not a boolean); NaN and infinities are checked by the caller."""
    if isinstance(value, bool):
        raise BadInput(f"{path}: {label}: {name} is not a number: {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        shown = value.strip() if isinstance(value, str) else value
        raise BadInput(f"{path}: {label}: {name} is not a number: {str(shown)[:40]!r}") from None


def _finite(path: Path, label: str, name: str, value: Any) -> float:
    number = _number(path, label, name, value)
    if not math.isfinite(number):
        raise BadInput(f"{path}: {label}: {name} is {number} (NaN, inf not allowed)")
    return number


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
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        rows = [(reader.line_num, row) for row in reader if "".join(row).strip() and not row[0].startswith("#")]
    except csv.Error as exc:
        raise BadInput(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise BadInput(f"{path}: no header; expected {expected}")
    names = [cell.strip().lower() for cell in rows[0][1]]
    missing = [name for name in required if name not in names]
    unknown = [name for name in names if name not in required + optional]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if missing or unknown or repeated:
        if missing:
            problem = f"missing column(s) {', '.join(missing)}"
        elif "" in unknown:
            problem = "an empty column name (a trailing comma?)"
        elif unknown:
            problem = f"unknown column(s) {', '.join(unknown)}"
        else:
            problem = f"repeated column(s) {', '.join(repeated)}"
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
    if not isinstance(axes, str) or axes not in AXES:
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
    norm = np.linalg.norm(values[:, 4:], axis=1)
    bad = np.flatnonzero(~((norm > 1e-9) & np.isfinite(norm)))
    if bad.size:
        raise BadInput(f"{path}: {labels[bad[0]]}: quaternion qx qy qz qw is zero or too large")
    scale = 1.0 if opts.scale is None else _positive(path, "scale", opts.scale)
    rot = quat_to_matrix(values[:, 4:])
    return _pose_trajectory(path, "tum", values[:, 0], values[:, 1:4], rot, opts.axes or "xy", scale)


def _read_gpx(path: Path, text: str, opts: ReadOptions) -> Trajectory:
    import gpxpy  # here: reading a manifest (every later stage) never needs it
    import gpxpy.gpx

    try:
        gpx = gpxpy.parse(text)
    except gpxpy.gpx.GPXException as exc:
        reason = (str(exc) or type(exc).__name__).splitlines()[0]
        raise BadInput(f"{path}: not a readable GPX file ({reason})") from None
    points = [point for track in gpx.tracks for segment in track.segments for point in segment.points]
    if not points:
        others = [f"{count} {what}" for count, what in ((len(gpx.waypoints), "waypoints (<wpt>)"),
                                                        (sum(len(r.points) for r in gpx.routes), "route points (<rtept>)"))
                  if count]
        held = f"; it holds {' and '.join(others)}, which are not a recorded track" if others else ""
        raise BadInput(f"{path}: no track points (<trk><trkseg><trkpt>): a trajectory is a GPX track{held}")
    labels = [f"track point {i}" for i in range(1, len(points) + 1)]
    for label, point in zip(labels, points):
        if point.time is None:
            raise BadInput(f"{path}: {label} has no <time>; every track point needs one")
    times = [p.time if p.time.tzinfo else p.time.replace(tzinfo=timezone.utc) for p in points]
    epoch_s = []
    for label, time in zip(labels, times):
        try:
            epoch_s.append(time.timestamp())
        except (ValueError, OverflowError) as exc:  # a UTC offset of a day or more; before year 1 in UTC
            raise BadInput(f"{path}: {label}: <time> is out of range ({exc})") from None
    columns = {
        "time": np.array(epoch_s, dtype=float),
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
        quat = np.array([_finite(path, label, "rot", v) for v in value])
        if not 1e-9 < np.linalg.norm(quat) < math.inf:
            raise BadInput(f"{path}: {label}: rot quaternion is zero or too large")
        return quat_to_matrix(quat[None])[0]
    if not (is_list and len(value) == 3 and all(isinstance(r, list) and len(r) == 3 for r in value)):
        raise BadInput(f"{path}: {label}: rot must be a row-major 3x3 matrix or a quaternion [qx,qy,qz,qw]")
    rot = np.array([[_finite(path, label, "rot", v) for v in row] for row in value])
    if not (np.allclose(rot @ rot.T, np.eye(3), atol=1e-3) and np.linalg.det(rot) > 0):
        raise BadInput(f"{path}: {label}: rot is not a rotation matrix")
    return rot


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _read_keyframes_json(path: Path, text: str, opts: ReadOptions) -> Trajectory:
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise BadInput(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BadInput(f"{path}: not valid JSON (nested too deeply)") from None
    settings = data if isinstance(data, dict) else {}
    keyframes = data.get("keyframes") if isinstance(data, dict) else data
    if not isinstance(keyframes, list):
        raise BadInput(f'{path}: expected {{"keyframes": [...]}} or a list of keyframes')
    for i, keyframe in enumerate(keyframes, 1):  # the shape first: `[1, 2, 3]` is no map whose fps is missing
        if not isinstance(keyframe, dict) or "frame" not in keyframe or "trans" not in keyframe:
            raise BadInput(f"{path}: keyframe {i} needs 'frame' and 'trans' (and optionally 'rot')")
    fps = _setting(path, settings, "fps", opts.fps)
    if fps is None:
        raise BadInput(f'{path}: frame rate unknown: put "fps" in the file or pass fps')
    fps = _positive(path, "fps", fps)
    scale = _setting(path, settings, "scale", opts.scale)
    scale = 1.0 if scale is None else _positive(path, "scale", scale)
    labels, frames, trans, rots = [], [], [], []
    for i, keyframe in enumerate(keyframes, 1):
        labels.append(f"keyframe {i}")
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


def _read_insv(path: Path, opts: ReadOptions) -> Trajectory:
    """The valid GPS fixes of an Insta360 recording's trailer, on the video's clock, in UTM."""
    from vidvpr.media.insv import read_trailer
    from vidvpr.media.insv.telemetry import gps_on_video_clock

    trailer = read_trailer(path)
    fixes = trailer.gps or []
    info = trailer.info
    track = gps_on_video_clock(fixes, info.first_gps_timestamp_ms if info else None,
                               info.first_frame_timestamp_us if info else None)
    if not fixes:
        raise BadInput(f"{path}: Insta360 trailer has no GPS record (0x700): the camera recorded no positions")
    if not track.t_s.size:
        raise BadInput(f"{path}: Insta360 trailer: record 0x700 (GPS) holds {len(fixes)} fixes and none is valid "
                       "(void, or zero coordinates: no GPS lock)")
    if not track.aligned:
        LOG.warning("%s: the trailer does not say when GPS started; its first fix is taken as the first frame", path)
    keep = np.concatenate([[True], np.diff(track.t_s) != 0])  # a fix repeated at the same second
    labels = [f"GPS fix {i + 1}" for i in range(int(keep.sum()))]
    columns = {"time": track.t_s[keep], "lat": track.lat_deg[keep], "lon": track.lon_deg[keep],
               "altitude": track.altitude_m[keep]}
    _check_samples(path, labels, columns, "time")
    east, north, zone, letter = latlon_to_utm(columns["lat"], columns["lon"], source=str(path), labels=labels,
                                              force_zone_number=opts.force_zone_number)
    return Trajectory(columns["time"], east, north, columns["altitude"], None, zone, letter, str(path), "insv",
                      track.t0_unix_s)


READERS: dict[str, Callable[[Path, str, ReadOptions], Trajectory]] = {
    "csv-xy": lambda path, text, opts: _read_csv(path, text, opts, "csv-xy"),
    "csv-latlon": lambda path, text, opts: _read_csv(path, text, opts, "csv-latlon"),
    "tum": _read_tum,
    "gpx": _read_gpx,
    "keyframes-json": _read_keyframes_json,
    "insv": lambda path, text, opts: _read_insv(path, opts),  # binary: read by its own reader, not as text
}
BINARY_FORMATS = ("insv",)


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
    if NMEA_SENTENCE.match(first):
        raise BadInput(f"{path}: NMEA sentences ({first[:6]}…), which vidvpr does not read: convert the log to GPX, "
                       f"e.g. gpsbabel -i nmea -f {path.name} -o gpx -F {path.stem}.gpx")
    try:  # as the CSV reader will read it: a spreadsheet or pandas may quote the header ("t","lat","lon")
        names = {cell.strip().lower() for cell in next(csv.reader([first]))}
    except csv.Error:
        names = set()
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
    fmt = format
    if format == "auto" and (path.suffix.lower() == ".insv" or _is_insta360(path)):
        fmt = "insv"
    text = "" if fmt in BINARY_FORMATS else read_text_file(path, "trajectory file")
    fmt = detect_format(path, text) if fmt == "auto" else fmt
    with np.errstate(over="ignore", invalid="ignore"):  # values too large to compute with: refused below
        traj = READERS[fmt](path, text, ReadOptions(axes, fps, scale, force_zone_number))
        span_s = traj.t_s[-1] - traj.t_s[0]
    _check_range(path, traj, span_s)
    zone = f", UTM zone {traj.utm_zone_number}{traj.utm_zone_letter}" if traj.utm_zone_number else ""
    LOG.info("%s: %s, %d samples over %.1f s%s", path, fmt, traj.t_s.size, span_s, zone)
    return traj


def _is_insta360(path: Path) -> bool:
    from vidvpr.media.insv import has_trailer

    return has_trailer(path)


def _check_range(path: Path, traj: Trajectory, span_s: float) -> None:
    """Values finite in the file can overflow once scaled, divided or subtracted (1e308 × scale 10),
    or once interpolated: a position's change over a time step (1e308 m in 0.1 s) must be a float."""
    columns = {"times": traj.t_s, "easting": traj.easting_m, "northing": traj.northing_m, "up": traj.up_m}
    for name, values in columns.items():
        if values is not None and not np.isfinite(values).all():
            raise BadInput(f"{path}: {name} too large (beyond the float range once converted to seconds and metres)")
    if not np.isfinite(span_s):
        raise BadInput(f"{path}: times span more than the float range ({float(traj.t_s[0])} to {float(traj.t_s[-1])})")
    positions = {"easting": traj.easting_m, "northing": traj.northing_m, "up": traj.up_m}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        rates = {name: np.diff(values) / np.diff(traj.t_s) for name, values in positions.items() if values is not None}
    for name, rate in rates.items():  # interpolating between two samples divides by their time step
        bad = np.flatnonzero(~np.isfinite(rate))
        if bad.size:
            i = int(bad[0])
            raise BadInput(f"{path}: {name} changes too fast to interpolate between samples {i + 1} and {i + 2} "
                           f"(beyond the float range: from {float(positions[name][i]):g} to "
                           f"{float(positions[name][i + 1]):g} m in {float(traj.t_s[i + 1] - traj.t_s[i]):g} s)")
