"""One imported view video and its sidecar: ``OUT/<recording>/<view>.mp4`` + ``.json``, the layout
and record `vidvpr slice` writes, so every later stage reads it as it reads a sliced view.

The video is the source's own H.264 stream, copied, when that stream is already what the pipeline
reads well and the copy checks out frame for frame (see `copy_problem` and README: "stream copy or
re-encode"); otherwise every frame is encoded at the reference quality `vidvpr slice` uses (x264
CRF 10 veryfast, in-process). The sidecar is written last; a rerun with the same source (by content
hash) and options skips a view whose video is intact.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr.core.atomic import atomic_output, ensure_writable_dir, is_partial_name
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import command_line, params_hash, runtime_versions
from vidvpr.core.records import FileRecord
from vidvpr.core.sidecars import (
    CameraRecord,
    ColorRecord,
    FrameTimes,
    GeometryRecord,
    IntrinsicsRecord,
    OutputRecord,
    SliceSidecar,
    ViewEncodingRecord,
)
from vidvpr.core.threads import encoder_threads
from vidvpr.ingest.camera import Camera, Undistortion, undistort_planes
from vidvpr.ingest.config import ImportConfig
from vidvpr.ingest.footage import Footage
from vidvpr.media.decode import decode_frames, stream_timestamps
from vidvpr.media.probe import probe_video
from vidvpr.media.remux import copy_video_stream
from vidvpr.media.settings import encoder_settings_string
from vidvpr.slicing.config import ViewSpec
from vidvpr.slicing.outputs import view_done
from vidvpr.slicing.writer import ViewWriter

LOG = logging.getLogger(__name__)

# Bump when a change here changes the view made from the same source and options.
IMPORT_OUTPUT_VERSION = 1
CONVENTIONS = ("imported camera: yaw 0 = the camera's forward direction; intrinsics with pixel (i,j) centre at "
               "(i+0.5, j+0.5), i.e. OpenCV's cx, cy + 0.5")
COPYABLE_CODEC, COPYABLE_PIX_FMT = "h264", "yuv420p"
X264_MAX_SIDE = 16384  # libx264 refuses a wider or taller frame ("invalid width x height")


@dataclass
class ImportResult:
    """What one imported view is, and whether this run wrote it or found it done."""

    recording: str
    view: str
    path: str
    sidecar: str
    frames: int
    stream_copy: bool
    skipped: bool


def view_paths(out_dir: Path, recording: str, view: str) -> tuple[Path, Path]:
    """(video, sidecar) of an imported view: ``OUT/<recording>/<view>.mp4`` and ``.json``."""
    folder = Path(out_dir) / recording
    return folder / f"{view}.mp4", folder / f"{view}.json"


def copy_problem(footage: Footage, config: ImportConfig, maps: Undistortion | None) -> str | None:
    """Why the source's stream is not copied as the view video (None: copy it, if it checks out)."""
    if footage.kind != "video":
        return "images are encoded"
    if config.reencode:
        return "--reencode"
    if footage.codec != COPYABLE_CODEC or footage.pix_fmt != COPYABLE_PIX_FMT:
        return f"{footage.codec} {footage.pix_fmt}, not {COPYABLE_CODEC} {COPYABLE_PIX_FMT}"
    if footage.rotation_deg:
        return f"its frames are turned upright (shown rotated by {footage.rotation_deg}°)"
    if footage.stereo_packing:  # ffmpeg's loopback decoder in `vidvpr encode` fails on the flag (EEXIST)
        return f"its frames are flagged as a stereo pair ({footage.stereo_packing}), which vidvpr encode cannot measure"
    if footage.even or maps is not None:
        return "its frames are changed (odd size made even)" if footage.even else "its frames are undistorted"
    return None


def import_params(footage: Footage, camera: Camera, config: ImportConfig, maps: Undistortion | None) -> dict[str, Any]:
    """Everything that decides the view's content; hashed to decide whether a rerun can skip it."""
    return {
        "version": IMPORT_OUTPUT_VERSION, "schema": SliceSidecar.SCHEMA, "view": config.view, "kind": footage.kind,
        "camera": {"matrix": camera.matrix, "distortion": camera.distortion, "given_by": camera.given_by},
        "undistort_alpha": maps.alpha if maps else None, "even": footage.even,
        "times": footage.times_from, "fps": str(footage.fps) if footage.kind == "images" else None,
        "reencode": config.reencode, "encoding": asdict(config.encoding),
        # only when turned, so views of unrotated footage made before rotation was applied stay finished
        **({"rotation_deg": footage.rotation_deg} if footage.rotation_deg else {}),
        # likewise: a copy that kept the stereo flag (made before it was re-encoded) is redone
        **({"stereo_packing": footage.stereo_packing} if footage.stereo_packing else {}),
    }


def other_views(folder: Path, source_hash: str) -> list[tuple[Path, SliceSidecar]]:
    """(sidecar path, sidecar) of the views in `folder` made from another source (sliced or imported)."""
    if not folder.is_dir():
        return []
    found = [(car, SliceSidecar.load_or_none(car)) for car in sorted(folder.glob("*.json"))
             if not is_partial_name(car.name)]
    return [(car, sidecar) for car, sidecar in found if sidecar is not None and sidecar.source.hash != source_hash]


def refuse_other_content(folder: Path, recording: str, source: Path, source_hash: str) -> None:
    """A recording folder holds one source's views: refuse another source's (unless --force)."""
    others = other_views(folder, source_hash)
    if others:
        car, sidecar = others[0]
        made = "imported from" if sidecar.imported else "sliced from"
        if os.path.abspath(sidecar.source.path) == os.path.abspath(source):  # the same path, changed since
            whose = f"when it held other content ({sidecar.source.hash[:19]}…, now {source_hash[:19]}…)"
        else:
            whose = f"({sidecar.source.hash[:19]}…), not from {source}"
        raise BadInput(f"{folder}: recording {recording!r} already holds views {made} {sidecar.source.path} "
                       f"{whose}; choose another --recording, or --force to replace them")


def remove_other_content(folder: Path, source_hash: str) -> None:
    """--force: the views of other sources leave the recording folder (sidecar first, then video)."""
    for car, sidecar in other_views(folder, source_hash):
        LOG.warning("%s: removing view %s of another source (--force)", folder, sidecar.view)
        car.unlink(missing_ok=True)  # a video without its sidecar is never taken as finished
        car.with_suffix(".mp4").unlink(missing_ok=True)


# ---------------------------------------------------------------- writing


@dataclass
class Written:
    times: FrameTimes
    stream_copy: bool


def _decoded_pts(path: Path, expected_frames: int = 0) -> tuple[list[int], list[int]]:
    """(frame indices, presentation times in the stream's time base) of every frame of a video, decoded."""
    indices, pts = [], []
    for frame in decode_frames(path, expected_frames):
        indices.append(frame.index)
        pts.append(frame.pts)
    return indices, pts


def _copy(footage: Footage, tmp: Path) -> Written | None:
    """Copy the stream into `tmp`, starting at 0; None (and `tmp` removed) unless the copy decodes
    to the source's frames at the source's times, and its packets say the same times."""
    indices, pts = _decoded_pts(footage.path, footage.frames_expected)
    try:
        copy_video_stream(footage.path, tmp, pts[0])
    except BadInput as exc:  # the muxer refused the packets' timestamps (e.g. Matroska B-frames without dts)
        LOG.info("%s; re-encoding", exc)
        tmp.unlink(missing_ok=True)
        return None
    wanted = [(p - pts[0]) * footage.time_base for p in pts]
    copied_base = probe_video(tmp).time_base
    copied = [p * copied_base for p in _decoded_pts(tmp)[1]]
    if copied != wanted or stream_timestamps(tmp)[0] != wanted:
        LOG.info("%s: the stream copy's frames differ from the source's (%d vs %d frames, or other times); "
                 "re-encoding", footage.path, len(copied), len(wanted))
        tmp.unlink(missing_ok=True)
        return None
    return Written(_frame_times([float(t) for t in wanted], indices, footage.fps, footage.time_base), True)


def _frame_times(times_s: list[float], indices: list[int], fps: Fraction, time_base: Fraction) -> FrameTimes:
    if not fps and len(times_s) > 1:  # a container that states no rate: the median step
        fps = Fraction(1 / float(np.median(np.diff(times_s)))).limit_denominator(1001)
    return FrameTimes.build([round(t, 6) for t in times_s], indices, fps or Fraction(1), time_base)


def _encode(footage: Footage, tmp: Path, config: ImportConfig, maps: Undistortion | None, threads: int,
            on_frame: Callable[[int], None] | None) -> Written:
    width, height = footage.out_size
    view = ViewSpec(0.0, 0.0, 90.0, width, height)  # only its size and name matter to the writer
    writer = ViewWriter(tmp, view, footage.time_base, footage.fps or Fraction(30), config.encoding, threads,
                        footage.color)
    times_s, indices = [], []
    try:
        for frame in footage.frames():
            planes = undistort_planes(frame.planes, maps) if maps is not None else frame.planes
            buffer, targets = writer.new_frame()
            for target, plane in zip(targets, planes):
                target[...] = plane
            writer.write(buffer, frame.pts)
            times_s.append(float(frame.pts * footage.time_base))
            indices.append(frame.index)
            if on_frame:
                on_frame(1)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return Written(_frame_times(times_s, indices, footage.fps, footage.time_base), False)


@dataclass
class ViewPlan:
    """One view to import, everything about it checked: where it goes, and whether it is done."""

    footage: Footage
    camera: Camera
    maps: Undistortion | None
    recording: str
    video: Path
    sidecar: Path
    source_hash: str
    params: dict[str, Any]
    params_hash: str
    done: ImportResult | None  # the finished view, when a rerun can skip it

    @property
    def frames_to_write(self) -> int:
        return 0 if self.done else self.footage.frames_expected


def plan_view(footage: Footage, camera: Camera, maps: Undistortion | None, recording: str, out_dir: Path,
              config: ImportConfig) -> ViewPlan:
    """Check one view before anything is written: skip it when done, refuse another source's folder."""
    width, height = footage.out_size
    if max(width, height) > X264_MAX_SIDE and copy_problem(footage, config, maps) is not None:
        raise BadInput(f"{footage.path}: {width}x{height} frames, and x264 encodes at most {X264_MAX_SIDE} pixels a "
                       "side; scale them down first")
    video, car = view_paths(out_dir, recording, config.view)
    source_hash = footage.content_hash()
    params = import_params(footage, camera, config, maps)
    phash = params_hash(params)
    existing = SliceSidecar.load_or_none(car)
    done = None
    if not config.force and existing is not None and view_done(video, existing, source_hash, phash):
        done = ImportResult(recording, config.view, str(video), str(car), existing.frames,
                            existing.encoding.stream_copy, True)
    if done is None and not config.force:
        refuse_other_content(video.parent, recording, footage.path, source_hash)
    return ViewPlan(footage, camera, maps, recording, video, car, source_hash, params, phash, done)


def planned_times(plan: ViewPlan) -> np.ndarray:
    """The frame times (s from the first) the view's sidecar will record, known before it is written
    (so what is written beside it can be checked first): a finished view's own, images' from their
    timing, a video's from its packets' presentation times, as the copy and the encoder keep them."""
    if plan.done is not None:
        return SliceSidecar.load(plan.sidecar).timestamps.times()
    footage = plan.footage
    if footage.image_times is not None:
        times = [float(round(t / footage.time_base) * footage.time_base) for t in footage.image_times.times_s]
    else:
        stamps = stream_timestamps(footage.path)[0]
        times = [float(t - stamps[0]) for t in stamps]
    return _frame_times(times, list(range(len(times))), footage.fps, footage.time_base).times()


def write_view(plan: ViewPlan, config: ImportConfig, cores: int | None = None,
               on_frame: Callable[[int], None] | None = None) -> ImportResult:
    """Import one planned view: its video (stream copy or x264), then its sidecar; nothing when done."""
    if plan.done is not None:
        LOG.info("%s: already imported with these options, skipping", plan.video)
        return plan.done
    footage, video, car = plan.footage, plan.video, plan.sidecar
    if config.force:
        remove_other_content(video.parent, plan.source_hash)
    ensure_writable_dir(video.parent)
    car.unlink(missing_ok=True)  # a sidecar must never vouch for a video it did not describe
    started = time.perf_counter()
    with atomic_output(video) as tmp:
        problem = copy_problem(footage, config, plan.maps)
        written = _copy(footage, tmp) if problem is None else None
        if written is None:
            LOG.info("%s: encoding every frame (x264 CRF %d)%s", footage.path, config.encoding.crf,
                     f": {problem}" if problem else "")
            written = _encode(footage, tmp, config, plan.maps, encoder_threads(1, cores), on_frame)
        elif on_frame:
            on_frame(written.times.frames)
    sidecar = _sidecar(plan, video, config, written, time.perf_counter() - started)
    sidecar.save(car)
    return ImportResult(plan.recording, config.view, str(video), str(car), sidecar.frames, written.stream_copy, False)


def _sidecar(plan: ViewPlan, video: Path, config: ImportConfig, written: Written, elapsed_s: float) -> SliceSidecar:
    footage, camera, maps = plan.footage, plan.camera, plan.maps
    view_camera = maps.camera if maps is not None else camera
    hfov_deg, vfov_deg = view_camera.fov_deg()
    fx, fy, cx, cy = view_camera.fx, view_camera.fy, view_camera.cx + 0.5, view_camera.cy + 0.5
    width, height = footage.out_size
    color = ColorRecord(**footage.color.names())
    encoding = config.encoding
    return SliceSidecar(
        kind="imported_view_video",
        view=config.view,
        source=footage.record(plan.source_hash, written.times.frames),
        geometry=GeometryRecord(
            yaw_deg=0.0, pitch_deg=0.0, hfov_deg=round(hfov_deg, 6), vfov_deg=round(vfov_deg, 6), width=width,
            height=height, intrinsics=IntrinsicsRecord(fx=fx, fy=fy, cx=cx, cy=cy,
                                                       K=[[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]),
            interpolation="bilinear (undistortion)" if maps is not None else "none", conventions=CONVENTIONS),
        frames=written.times.frames,
        timestamps=written.times,
        encoding=ViewEncodingRecord(
            codec=footage.codec if written.stream_copy else encoding.codec,
            crf=None if written.stream_copy else encoding.crf, preset=None if written.stream_copy else encoding.preset,
            pix_fmt=encoding.pix_fmt, color=color, encoder_settings=encoder_settings_string(video),
            stream_copy=written.stream_copy),
        output=OutputRecord(path=video.name, bytes=video.stat().st_size),
        params_hash=plan.params_hash,
        params=plan.params,
        versions=runtime_versions(),
        command=command_line(),
        elapsed_s=round(elapsed_s, 3),
        camera=CameraRecord(
            given_by=camera.given_by,
            calibration=FileRecord.of(camera.calibration) if camera.calibration is not None else None,
            calibration_size=list(camera.calibration_size) if camera.calibration_size else None,
            matrix=[list(row) for row in camera.matrix], distortion=list(camera.distortion),
            undistorted=maps is not None, undistort_alpha=maps.alpha if maps is not None else None,
            even=footage.even),
    )

