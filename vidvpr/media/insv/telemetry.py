"""The time series of the trailer: gyro and accelerometer (0x300), exposure (0x400), frame
timestamps (0x600) and GPS fixes (0x700), decoded from bytes and encoded back (pure numpy).

Layouts (insvtools, telemetry-parser, checked against the sample):
* 0x300: per sample a u64 time (µs, camera clock) then accelerometer x, y, z and gyro x, y, z,
  either six u16 offset by 32768 (20 bytes; "raw gyro", scaled by the INFO ranges) or six f64
  (56 bytes; g and rad/s). INFO field 14 holds one sample record, so its length is the size.
* 0x400: u64 time (µs, camera clock) and the shutter time (f64, s).
* 0x600: u64 times, in ms as telemetry-parser reads them (on the sample they do not match its
  30 frames: 77 stamps 0.567 s apart, a time-lapse clock); reported as they are.
* 0x700: 53 bytes per fix: u64 UTC seconds, u16 ms, fix ('A' acquired, 'V' void), f64 latitude,
  'N'/'S', f64 longitude, 'E'/'W', f64 speed (m/s), f64 track (°), f64 altitude (m).
A trailing partial sample is not an error (the sample's gyro record ends with one stray byte):
it is counted in `leftover_bytes`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RAW_IMU_BYTES, FLOAT_IMU_BYTES = 20, 56
RAW_IMU_BIAS = 32768
GPS_FIX_BYTES = 53
GPS_FIX = struct.Struct("<QHcdcdcddd")
assert GPS_FIX.size == GPS_FIX_BYTES


class TelemetryError(ValueError):
    """A record's bytes cannot be decoded."""


@dataclass(frozen=True)
class Series:
    """Samples of one record: times on their clock (s) and values (N × columns)."""

    t_s: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]
    units: str
    leftover_bytes: int = 0


@dataclass(frozen=True)
class GpsFix:
    """One GPS fix as recorded (coordinates signed by their hemisphere letters)."""

    time_unix_s: float
    fix: str
    lat_deg: float
    lon_deg: float
    speed_mps: float
    track_deg: float
    altitude_m: float

    @property
    def valid(self) -> bool:
        """Acquired, finite, on the globe, and not the all-zero fix cameras write without a lock."""
        coordinates = (self.lat_deg, self.lon_deg, self.altitude_m)
        return (self.fix == "A" and all(math.isfinite(value) for value in coordinates)
                and abs(self.lat_deg) <= 90 and abs(self.lon_deg) <= 180 and (self.lat_deg, self.lon_deg) != (0, 0))


def _records(data: bytes, dtype: np.dtype) -> tuple[np.ndarray, int]:
    count, leftover = divmod(len(data), dtype.itemsize)
    return np.frombuffer(data, dtype=dtype, count=count), leftover


def imu_record_bytes(record_bytes: int | None, is_raw: bool | None, data_bytes: int) -> int:
    """The size of one gyro sample: INFO's sample record, else its raw-gyro flag, else whichever
    size divides the record."""
    if record_bytes in (RAW_IMU_BYTES, FLOAT_IMU_BYTES):
        return int(record_bytes)  # type: ignore[arg-type]
    if is_raw is not None:
        return RAW_IMU_BYTES if is_raw else FLOAT_IMU_BYTES
    return FLOAT_IMU_BYTES if data_bytes % FLOAT_IMU_BYTES == 0 else RAW_IMU_BYTES


def decode_imu(data: bytes, sample_bytes: int, acc_range_g: int | None = None,
               gyro_range_dps: int | None = None) -> Series:
    """Accelerometer and gyro samples; raw samples are scaled when the ranges are known (else left
    in counts, as `units` says)."""
    columns = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    if sample_bytes == FLOAT_IMU_BYTES:
        rows, leftover = _records(data, np.dtype([("t", "<u8"), ("v", "<f8", (6,))]))
        return Series(rows["t"] / 1e6, rows["v"].astype(np.float64), columns, "g, rad/s", leftover)
    if sample_bytes != RAW_IMU_BYTES:
        raise TelemetryError(f"gyro samples of {sample_bytes} bytes are not a known layout")
    rows, leftover = _records(data, np.dtype([("t", "<u8"), ("v", "<u2", (6,))]))
    values = rows["v"].astype(np.float64) - RAW_IMU_BIAS
    if acc_range_g and gyro_range_dps:
        values[:, :3] *= acc_range_g / RAW_IMU_BIAS
        values[:, 3:] *= math.radians(gyro_range_dps) / RAW_IMU_BIAS
        units = "g, rad/s"
    else:
        units = "counts (ranges not in INFO)"
    return Series(rows["t"] / 1e6, values, columns, units, leftover)


def decode_exposure(data: bytes) -> Series:
    rows, leftover = _records(data, np.dtype([("t", "<u8"), ("v", "<f8")]))
    return Series(rows["t"] / 1e6, rows["v"].astype(np.float64)[:, None], ("shutter_s",), "s", leftover)


def decode_frame_times(data: bytes) -> Series:
    rows, leftover = _records(data, np.dtype("<u8"))
    return Series(rows / 1e3, np.empty((rows.size, 0)), (), "", leftover)


def decode_gps(data: bytes) -> tuple[list[GpsFix], int]:
    """The fixes of a GPS record and the bytes of a trailing partial fix."""
    count, leftover = divmod(len(data), GPS_FIX_BYTES)
    fixes = []
    for index in range(count):
        seconds, millis, fix, lat, ns, lon, ew, speed, track, altitude = GPS_FIX.unpack_from(data, index * GPS_FIX_BYTES)
        lat = -abs(lat) if ns == b"S" else lat
        lon = -abs(lon) if ew == b"W" else lon
        hemispheres_known = ns in (b"N", b"S") and ew in (b"E", b"W")
        fixes.append(GpsFix(seconds + millis / 1000.0, fix.decode("latin-1") if hemispheres_known else "?",
                            lat, lon, speed, track, altitude))
    return fixes, leftover


def encode_imu(t_s: np.ndarray, values: np.ndarray) -> bytes:
    """56-byte samples (µs times, six f64): the writer of `decode_imu`'s float layout."""
    rows = np.zeros(len(t_s), np.dtype([("t", "<u8"), ("v", "<f8", (6,))]))
    rows["t"], rows["v"] = np.round(np.asarray(t_s) * 1e6), values
    return rows.tobytes()


def encode_exposure(t_s: np.ndarray, shutter_s: np.ndarray) -> bytes:
    rows = np.zeros(len(t_s), np.dtype([("t", "<u8"), ("v", "<f8")]))
    rows["t"], rows["v"] = np.round(np.asarray(t_s) * 1e6), shutter_s
    return rows.tobytes()


def encode_frame_times(t_s: np.ndarray) -> bytes:
    return np.round(np.asarray(t_s) * 1e3).astype("<u8").tobytes()


def encode_gps(fixes: Sequence[GpsFix]) -> bytes:
    """53-byte fixes (hemisphere letters from the signs): the writer of `decode_gps`."""
    out = bytearray()
    for fix in fixes:
        seconds, millis = divmod(round(fix.time_unix_s * 1000), 1000)
        out += GPS_FIX.pack(seconds, millis, fix.fix.encode("latin-1")[:1] or b"V", abs(fix.lat_deg),
                            b"S" if fix.lat_deg < 0 else b"N", abs(fix.lon_deg), b"W" if fix.lon_deg < 0 else b"E",
                            fix.speed_mps, fix.track_deg, fix.altitude_m)
    return bytes(out)


@dataclass(frozen=True)
class GpsTrack:
    """The valid fixes on the video's clock (s from the first frame), and the UTC time of frame 0."""

    t_s: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    altitude_m: np.ndarray
    t0_unix_s: float
    aligned: bool  # False: INFO did not say when GPS started, so the first fix was taken as frame 0


def gps_on_video_clock(fixes: Sequence[GpsFix], first_gps_timestamp_ms: int | None,
                       first_frame_timestamp_us: int | None) -> GpsTrack:
    """Put the valid fixes on the video's clock.

    GPS times are UTC; the video's are the camera's. INFO gives both ends of the bridge: the camera
    time of the GPS record's first fix (field 36, ms) and of the first frame (field 24, µs). On the
    sample the two agree to the millisecond, consistent with this reading (a moderately sure
    derivation: no reader documents field 36's clock). Without them the first fix is frame 0.
    """
    aligned = first_gps_timestamp_ms is not None and first_frame_timestamp_us is not None
    first_utc = fixes[0].time_unix_s if fixes else 0.0
    offset_s = (first_gps_timestamp_ms / 1e3 - first_frame_timestamp_us / 1e6) if aligned else 0.0  # type: ignore[operator]
    valid = [fix for fix in fixes if fix.valid]
    return GpsTrack(np.array([fix.time_unix_s - first_utc + offset_s for fix in valid]),
                    np.array([fix.lat_deg for fix in valid]), np.array([fix.lon_deg for fix in valid]),
                    np.array([fix.altitude_m for fix in valid]), first_utc - offset_s, aligned)
