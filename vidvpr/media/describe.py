"""`vidvpr probe`: what a video file is, for any input the pipeline takes.

Container, every stream (codec, size, frames, rate, colour), spherical metadata and stereo layout,
which 360° camera model `vidvpr slice` would read it as, and for an Insta360 recording its whole
trailer (`vidvpr.media.insv.summary`). Problems are one BadInput naming the file.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from vidvpr.core.camera_records import StreamLens
from vidvpr.core.errors import BadInput
from vidvpr.core.records import Strict
from vidvpr.core.sidecars import SphericalRecord
from vidvpr.media.decode import decode_frames
from vidvpr.media.insv import has_trailer, read_trailer
from vidvpr.media.insv.calibration import stream_lenses
from vidvpr.media.insv.summary import TrailerSummary, summarize_trailer
from vidvpr.media.probe import (color_info, display_rotation_deg, looks_dual_fisheye, probe_video,
                                unreadable_video, unsupported_360_layout)


class StreamReport(Strict):
    index: int
    kind: str
    codec: str | None
    width: int | None = None
    height: int | None = None
    pix_fmt: str | None = None
    frames: int | None = None
    fps: str | None = None
    duration_s: float | None = None
    color: dict[str, str] | None = None
    handler: str | None = None
    rotation_deg: int | None = None  # first video stream: the display rotation players apply (counter-clockwise)


class ProbeReport(Strict):
    path: str
    bytes: int
    container: str
    duration_s: float | None
    streams: list[StreamReport]
    spherical: SphericalRecord | None
    stereo: str
    camera: str
    layout: str | None
    trailer: TrailerSummary | None = None
    lenses_on_stream: list[StreamLens] | None = None
    lenses_note: str | None = None


def _stream_report(stream: av.stream.Stream, container: av.container.InputContainer) -> StreamReport:
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    report = StreamReport(index=stream.index, kind=stream.type, codec=stream.codec_context.name if stream.codec_context
                          else None, handler=str(stream.metadata.get("handler_name", "")) or None,
                          duration_s=round(duration, 6) if duration else None)
    if stream.type != "video":
        return report
    ctx = stream.codec_context
    frames = int(stream.frames or 0) or sum(1 for packet in container.demux(stream) if packet.size)
    rate = stream.average_rate or stream.guessed_rate
    return report.model_copy(update={"width": ctx.width, "height": ctx.height,
                                     "pix_fmt": ctx.format.name if ctx.format else None, "frames": frames,
                                     "fps": str(Fraction(rate)) if rate else None, "color": color_info(ctx).names()})


def _camera(path: Path, info) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    """What `vidvpr slice` reads the file as, and its frame layout."""
    if path.suffix.lower() in (".insv", ".insp") or has_trailer(path):
        layout = "stream-per-lens" if info.video_streams >= 2 else "side-by-side"
        return "dual fisheye (Insta360)", layout
    reason = unsupported_360_layout(info)
    if reason:
        return f"not sliced: {reason}", None
    if info.spherical is not None:
        return f"{info.spherical.projection} (spherical metadata {info.spherical.version})", "equirectangular"
    if info.width == 2 * info.height:
        if looks_dual_fisheye(next(decode_frames(path)).y):
            return "dual fisheye (two circles on black; slice with --fisheye-fov or --calibration)", "side-by-side"
        return "equirectangular (2:1, no spherical metadata)", "equirectangular"
    return f"not 360° as far as the file says ({info.width}x{info.height}, no spherical metadata)", None


def describe_file(path: Path, fisheye_fov_deg: float) -> ProbeReport:
    """Everything `vidvpr probe` reports about one file. `fisheye_fov_deg` places an Insta360
    calibration without a field of view on the stream, as `vidvpr slice` would."""
    path = Path(path)
    info = probe_video(path)
    try:
        with av.open(str(path)) as container:
            streams = [_stream_report(stream, container) for stream in container.streams]
            container_name = container.format.name
            duration = container.duration / 1e6 if container.duration else None
    except av.error.FFmpegError as exc:
        raise unreadable_video(path, exc) from exc
    first_video = next(i for i, stream in enumerate(streams) if stream.kind == "video")
    streams[first_video] = streams[first_video].model_copy(update={"rotation_deg": display_rotation_deg(path)})
    camera, layout = _camera(path, info)
    spherical = SphericalRecord(**vars(info.spherical)) if info.spherical else None
    report = ProbeReport(path=str(path), bytes=path.stat().st_size, container=container_name,
                         duration_s=round(duration, 6) if duration else None, streams=streams, spherical=spherical,
                         stereo=info.spherical.stereo_mode if info.spherical else "mono", camera=camera, layout=layout)
    if not camera.startswith("dual fisheye (Insta360"):
        return report
    trailer = read_trailer(path)
    summary = summarize_trailer(trailer)
    if trailer.calibration is None:
        return report.model_copy(update={"trailer": summary})
    fov = trailer.calibration.fov_deg or fisheye_fov_deg
    sizes = list(info.stream_sizes[:2])
    placed = stream_lenses(trailer.calibration, sizes, layout or "side-by-side", fov)
    note = (f"scaled to the {sizes[0][0]}x{sizes[0][1]} stream"
            + (" through the sensor crop" if trailer.calibration.crop else "")
            + ("" if trailer.calibration.fov_deg else f"; field of view {fov:g}° assumed (the calibration has none)"))
    return report.model_copy(update={"trailer": summary, "lenses_on_stream": placed, "lenses_note": note})


def report_lines(report: ProbeReport) -> list[str]:
    """The report as lines for people."""
    lines = [f"{report.path}: {report.container}, {report.bytes:,} bytes"
             + (f", {report.duration_s:.3f} s" if report.duration_s else "")]
    for stream in report.streams:
        if stream.kind == "video":
            color = stream.color or {}
            lines.append(f"  stream {stream.index}: video {stream.codec} {stream.width}x{stream.height} {stream.pix_fmt}, "
                         f"{stream.frames} frames at {float(Fraction(stream.fps)) if stream.fps else 0:.3f} fps, "
                         f"colour {color.get('range')}/{color.get('space')}/{color.get('primaries')}/"
                         f"{color.get('transfer')}"
                         + (f", shown rotated {stream.rotation_deg}° (vidvpr import turns it upright)"
                            if stream.rotation_deg else ""))
        else:
            lines.append(f"  stream {stream.index}: {stream.kind} {stream.codec or ''}".rstrip())
    meta = report.spherical
    # each said once: it read "equirectangular (2:1, no spherical metadata), equirectangular; no spherical metadata"
    lines.append(f"  360°: {report.camera}"
                 + (f", {report.layout}" if report.layout and not report.camera.startswith(report.layout) else "")
                 + (f"; stereo {report.stereo}" if meta else
                    "" if "no spherical metadata" in report.camera else "; no spherical metadata"))
    trailer = report.trailer
    if trailer is None:
        return lines
    lines.append(f"Insta360 trailer: version {trailer.version}, {trailer.bytes:,} bytes, {len(trailer.records)} records"
                 + (" (indexed)" if trailer.indexed else "") + ": "
                 + ", ".join(f"{r.id} {r.name} ({r.bytes:,} B)" for r in trailer.records))
    if trailer.skipped:
        lines.append(f"  skipped (not decoded): {', '.join(trailer.skipped)}")
    info = trailer.info
    if info is not None:
        lines.append(f"  camera: {info.camera_type}, firmware {info.firmware}, serial {info.serial_number}")
    calibration = trailer.calibration
    if calibration is not None:
        crop = calibration.crop
        lines.append(f"  calibration: {calibration.text}")
        lines.append(f"    canvas {calibration.canvas_width_px}x{calibration.canvas_height_px}"
                     + (f", each lens's {crop.src_width_px} px square delivered as {crop.dst_width_px} px" if crop else ""))
        for index, lens in enumerate(calibration.lenses):
            lines.append(f"    lens {index}: circle centre ({lens.centre_x_px:g}, {lens.centre_y_px:g}) radius "
                         f"{lens.radius_px:g} px; pitch {lens.pitch_deg:g}°, yaw {lens.yaw_deg:g}°, roll {lens.roll_deg:g}°")
    for index, lens in enumerate(report.lenses_on_stream or []):
        lines.append(f"    on the stream, lens {index}: centre ({lens.centre_x_px:.2f}, {lens.centre_y_px:.2f}) radius "
                     f"{lens.radius_px:.2f} px, {lens.fov_deg:g}°, facing yaw {lens.facing_yaw_deg:g}°")
    if report.lenses_note:
        lines.append(f"    ({report.lenses_note})")
    for name, series in (("gyro + accelerometer (0x300)", trailer.imu), ("exposure (0x400)", trailer.exposure),
                         ("frame timestamps (0x600)", trailer.frame_times)):
        if series is not None:
            rate = f" at {series.rate_hz:g} Hz" if series.rate_hz else ""
            span = (f", {series.first_s:g} to {series.last_s:g} ({series.clock})"
                    if series.first_s is not None and series.last_s is not None else "")
            extra = "".join(f", {key} {value:g}" for key, value in series.extra.items())
            units = f" [{series.units}]" if series.units else ""
            lines.append(f"  {name}: {series.count} samples{rate}{span}{extra}{units}")
    if trailer.gps is not None:
        gps = trailer.gps
        lines.append(f"  GPS (0x700): {gps.fixes} fixes, {gps.valid} valid"
                     + (f", {gps.first_utc} to {gps.last_utc}" if gps.first_utc else ""))
    return lines


def probe_file(path: Path, fisheye_fov_deg: float, calibration_out: Path | None = None) -> ProbeReport:
    """`vidvpr probe`: the report, and the lens calibration saved to `calibration_out` when asked."""
    report = describe_file(path, fisheye_fov_deg)
    if calibration_out is not None:
        save_calibration(report, calibration_out)
    return report


def save_calibration(report: ProbeReport, out: Path) -> None:
    """Write the report's lens calibration as a `--calibration` file, or BadInput when it has none."""
    from vidvpr.core.camera_records import CalibrationFile

    calibration = report.trailer.calibration if report.trailer else None
    if calibration is None:
        raise BadInput(f"{report.path}: no lens calibration to save (not an Insta360 recording with one)")
    try:
        CalibrationFile(calibration=calibration, source=report.path).save(Path(out))
    except OSError as exc:
        from vidvpr.core.errors import OutputError

        raise OutputError(f"{out}: cannot write the calibration ({exc.strerror or exc})") from None
