"""What `vidvpr probe` says about an Insta360 trailer: every record, what INFO and the lens
calibration hold, and each time series as count, rate and time range (typed, JSON-ready)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from pydantic import Field

from vidvpr.core.camera_records import FisheyeCalibration
from vidvpr.core.records import Strict
from vidvpr.media.insv.info import InsvInfo
from vidvpr.media.insv.reader import InsvTrailer
from vidvpr.media.insv.telemetry import Series
from vidvpr.media.insv.trailer import kind_name


class RecordEntry(Strict):
    id: str
    name: str
    offset: int
    bytes: int
    decoded: bool


class SeriesSummary(Strict):
    """A time series: how many samples, how often, over which times (s from the first frame when
    INFO gives the first frame's camera time, else on the camera's clock)."""

    count: int
    rate_hz: float | None
    first_s: float | None
    last_s: float | None
    clock: str
    units: str
    leftover_bytes: int = 0
    extra: dict[str, float] = Field(default_factory=dict)


class GpsSummary(Strict):
    fixes: int
    valid: int
    first_utc: str | None
    last_utc: str | None
    leftover_bytes: int = 0


class TrailerSummary(Strict):
    version: int
    bytes: int
    start: int
    indexed: bool
    records: list[RecordEntry]
    skipped: list[str]
    info: InsvInfo | None
    calibration: FisheyeCalibration | None
    imu: SeriesSummary | None
    exposure: SeriesSummary | None
    frame_times: SeriesSummary | None
    gps: GpsSummary | None


def _utc(seconds: float) -> str | None:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def _finite(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


def series_summary(series: Series | None, origin_s: float | None, clock: str) -> SeriesSummary | None:
    """Count, median rate and time range of a series, times relative to `origin_s` when given."""
    if series is None:
        return None
    t_s = series.t_s - (origin_s or 0.0)
    steps = np.diff(series.t_s)
    step = float(np.median(steps)) if steps.size else 0.0
    extra = {}
    if series.columns == ("shutter_s",) and series.values.size:
        extra = {"median_shutter_s": _finite(float(np.median(series.values)))}
    return SeriesSummary(count=int(t_s.size), rate_hz=_finite(1.0 / step) if step > 0 else None,
                         first_s=_finite(t_s[0]) if t_s.size else None, last_s=_finite(t_s[-1]) if t_s.size else None,
                         clock=clock if origin_s is None else "s from the first frame", units=series.units,
                         leftover_bytes=series.leftover_bytes, extra={k: v for k, v in extra.items() if v is not None})


def summarize_trailer(trailer: InsvTrailer) -> TrailerSummary:
    """The probe's view of a decoded trailer."""
    layout = trailer.layout
    first_frame_us = trailer.info.first_frame_timestamp_us if trailer.info else None
    origin = first_frame_us / 1e6 if first_frame_us is not None else None
    skipped = {id(record) for record in trailer.skipped}
    gps = None
    if trailer.gps is not None:
        valid = [fix for fix in trailer.gps if fix.valid]
        gps = GpsSummary(fixes=len(trailer.gps), valid=len(valid),
                         first_utc=_utc(trailer.gps[0].time_unix_s) if trailer.gps else None,
                         last_utc=_utc(trailer.gps[-1].time_unix_s) if trailer.gps else None,
                         leftover_bytes=trailer.gps_leftover_bytes)
    return TrailerSummary(
        version=layout.version, bytes=layout.size, start=layout.start, indexed=layout.indexed,
        records=[RecordEntry(id=f"0x{r.record_id:03x}", name=kind_name(r.record_id), offset=r.offset,
                             bytes=len(r.data), decoded=id(r) not in skipped) for r in layout.records],
        skipped=[record.name for record in trailer.skipped], info=trailer.info, calibration=trailer.calibration,
        imu=series_summary(trailer.imu, origin, "camera clock, s"),
        exposure=series_summary(trailer.exposure, origin, "camera clock, s"),
        frame_times=series_summary(trailer.frame_times, None, "s as recorded: u64 read as ms"),
        gps=gps)
