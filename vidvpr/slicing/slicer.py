"""One 360° video → perspective view videos with provenance sidecars (the unit of work of
`vidvpr slice`, `vidvpr.slicing.stage`).

The source is equirectangular or dual fisheye (an Insta360 .insv): its camera model
(`vidvpr.slicing.camera`) chooses the sampling maps, and everything else is shared. With
`equirect`, a dual-fisheye source is stitched into one equirectangular video instead of views.
Each source frame is decoded once for all views; every view's sampling maps are computed once;
frames are remapped plane by plane in yuv420p (no RGB round trip, the source's colour range and
tags kept) and encoded in-process by libx264 through PyAV, keeping every source timestamp.
Decoding, remapping and each view's encoder run in threads of their own.

A view is done when its sidecar (written last) records this view's parameters, the same source
content hash and the video's size (`vidvpr.slicing.outputs`); a rerun redoes only the views that
are not done. Views made from a different source with the same file name are never replaced
without `force`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import atomic_output, ensure_writable_dir, removing_new_dirs
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import command_line, params_hash, runtime_versions, sha256_file
from vidvpr.core.sidecars import (
    ColorRecord,
    EquirectSidecar,
    FrameTimes,
    GeometryRecord,
    IntrinsicsRecord,
    OutputRecord,
    SliceSidecar,
    SourceRecord,
    SphericalRecord,
    ViewEncodingRecord,
)
from vidvpr.core.threads import encoder_threads, prefetch
from vidvpr.media.decode import DecodedFrame
from vidvpr.media.probe import VideoInfo, probe_video
from vidvpr.media.settings import encoder_settings_string
from vidvpr.slicing.camera import SourceCamera, Target, source_camera
from vidvpr.slicing.config import EquirectTarget, SliceConfig, plan_equirect, plan_views, validate_config
from vidvpr.slicing.outputs import (  # noqa: F401  (SLICE_OUTPUT_VERSION, finished_views: re-exported)
    SLICE_OUTPUT_VERSION,
    ViewResult,
    finished_views,
    recording_name,
    view_done,
    view_params,
    view_paths,
)
from vidvpr.slicing.remap import opencv_threads
from vidvpr.slicing.resample import NearestFrameResampler
from vidvpr.slicing.stage import expected_frames_hint, slice_videos  # noqa: F401  (re-exported)
from vidvpr.slicing.writer import ViewWriter

LOG = logging.getLogger(__name__)

DECODE_AHEAD_FRAMES = 4
CONVENTIONS = "yaw 0 = equirect centre column, +yaw right, +pitch up; pixel (i,j) centre at (i+0.5, j+0.5)"
EQUIRECT_CONVENTIONS = ("pixel (col, row) centre looks at longitude ((col+0.5)/W - 0.5)·360°, latitude "
                        "(0.5 - (row+0.5)/H)·180°; longitude 0 = lens 0's axis, + right")


def _refuse_other_source(source: Path, source_hash: str, folder: Path,
                         sidecars: Sequence[SliceSidecar | EquirectSidecar | None]) -> None:
    other = next((car for car in sidecars if car is not None and car.source.hash != source_hash), None)
    if other is None:
        return
    same_path = Path(other.source.path).resolve() == Path(source).resolve()
    made_from = "an earlier version of this file" if same_path else other.source.path
    raise BadInput(
        f"{folder}: holds views made from {made_from} ({other.source.hash[:19]}…), not from {source}; "
        f"two recordings named '{recording_name(source)}' would overwrite each other. Keep both by slicing "
        f"this one into another --out, or by linking it under another name "
        f"(ln -s {source} <new name>{Path(source).suffix}); --force replaces the old views")


def slice_video(
    source: Path,
    out_dir: Path,
    config: SliceConfig,
    on_frame: Callable[[int], None] | None = None,
    on_start: Callable[[VideoInfo], None] | None = None,
    cores: int | None = None,
) -> list[ViewResult]:
    """Slice one 360° video into perspective view videos (or, with `config.equirect`, stitch a dual-fisheye
    one into an equirect video), each with a sidecar written last.

    One unit of work of `slice_videos`. `cores` (default: this machine's) sets the x264 threads, on
    which x264's output depends: the client passes its own, so any worker makes the same files.
    """
    validate_config(config)
    source = Path(source)
    info = probe_video(source)
    camera = source_camera(info, config)
    if config.fps is not None and info.fps and config.fps > info.fps:
        raise BadInput(f"--fps {config.fps} exceeds the source's {float(info.fps):g} fps ({source}); "
                       "vidvpr never duplicates frames")
    views: list[Target] = ([plan_equirect(config, recording_name(source), camera.equirect_width)] if config.equirect
                           else list(plan_views(config, camera.equirect_width)))
    sidecar_kind = EquirectSidecar if config.equirect else SliceSidecar
    source_hash = sha256_file(source)
    outputs = [view_paths(Path(out_dir), source, view) for view in views]
    hashes = [params_hash(view_params(view, config, camera.params())) for view in views]
    existing = [sidecar_kind.load_or_none(car) for _, car in outputs]
    if not config.force:
        _refuse_other_source(source, source_hash, outputs[0][0].parent, existing)
    done = [not config.force and view_done(video, car, source_hash, phash)
            for (video, _), car, phash in zip(outputs, existing, hashes)]
    results: list[ViewResult | None] = [
        ViewResult(str(source), view.name, str(video), str(car), existing[i].frames, True) if done[i] else None
        for i, (view, (video, car)) in enumerate(zip(views, outputs))]  # type: ignore[union-attr]
    todo = [i for i in range(len(views)) if not done[i]]
    if not todo:
        LOG.info("%s: all %d outputs already done, skipping", source, len(views))
        return [result for result in results if result is not None]
    if on_start:
        on_start(info)
    # one x264 per planned view, together filling the cores (a resumed run encodes like a whole one)
    threads = encoder_threads(len(views), cores)
    with removing_new_dirs(outputs[0][0].parent), opencv_threads(1):
        ensure_writable_dir(outputs[0][0].parent)
        written = _slice_frames(info, camera, source_hash, [views[i] for i in todo], [outputs[i] for i in todo],
                                [hashes[i] for i in todo], config, threads, on_frame)
    for i, result in zip(todo, written):
        results[i] = result
    return [result for result in results if result is not None]


def _kept_frames(frames: Iterator[tuple[DecodedFrame, ...]], fps: Fraction | None) -> Iterator[tuple[DecodedFrame, ...]]:
    """All frames (one per stream at each time), or those nearest each 1/fps (see `vidvpr.slicing.resample`)."""
    if fps is None:
        yield from frames
        return
    resampler: NearestFrameResampler[tuple[DecodedFrame, ...]] = NearestFrameResampler(fps)
    for frame in frames:
        yield from resampler.push(frame[0].time_s, frame)
    yield from resampler.finish()


def _slice_frames(info: VideoInfo, camera: SourceCamera, source_hash: str, views: list[Target],
                  outputs: list[tuple[Path, Path]], hashes: list[str], config: SliceConfig, threads: int,
                  on_frame: Callable[[int], None] | None) -> list[ViewResult]:
    remappers = [camera.remapper(view, config.interp) for view in views]
    out_fps = config.fps or info.fps
    started = time.perf_counter()
    timestamps_s: list[float] = []
    source_indices: list[int] = []
    with contextlib.ExitStack() as stack:
        tmp_paths = [stack.enter_context(atomic_output(video)) for video, _ in outputs]
        writers: list[ViewWriter] = []
        try:
            for tmp, view in zip(tmp_paths, views):
                writers.append(ViewWriter(tmp, view, info.time_base, out_fps, config.encoding, threads, info.color))
            first_pts: int | None = None
            decoded = prefetch(camera.frames(info.path, info.frames), DECODE_AHEAD_FRAMES, "vidvpr-decode")
            for frames in _kept_frames(decoded, config.fps):
                first_pts = frames[0].pts if first_pts is None else first_pts
                pts = frames[0].pts - first_pts  # the source frame's own time: never invented
                for remap, writer in zip(remappers, writers):
                    out_frame, planes = writer.new_frame()
                    remap(frames, planes)
                    writer.write(out_frame, pts)
                timestamps_s.append(round(float(pts * info.time_base), 6))
                source_indices.append(frames[0].index)
                if on_frame:
                    on_frame(1)
            for writer in writers:
                writer.close()
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
    elapsed_s = time.perf_counter() - started
    versions = {**runtime_versions(), "x264_threads_per_view": str(threads)}
    times = FrameTimes.build(timestamps_s, source_indices, out_fps, info.time_base)
    results = []
    for view, (video, car), phash in zip(views, outputs, hashes):
        params = view_params(view, config, camera.params())
        sidecar = _sidecar(info, camera, source_hash, view, video, config, phash, params, versions, times, elapsed_s)
        sidecar.save(car)
        results.append(ViewResult(str(info.path), view.name, str(video), str(car), sidecar.frames, False))
    return results


def _sidecar(info: VideoInfo, camera: SourceCamera, source_hash: str, view: Target, video: Path, config: SliceConfig,
             phash: str, params: dict[str, Any], versions: dict[str, str], times: FrameTimes,
             elapsed_s: float) -> SliceSidecar | EquirectSidecar:
    color = ColorRecord(**info.color.names())
    spherical = SphericalRecord(**asdict(info.spherical)) if info.spherical else None
    source = SourceRecord(path=str(info.path), bytes=info.path.stat().st_size, hash=source_hash, width=info.width,
                          height=info.height, codec=info.codec, pix_fmt=info.pix_fmt, fps=str(info.fps),
                          frames=info.frames, spherical_metadata=spherical, stereo=config.stereo,
                          eye=config.eye if config.stereo == "tb" else None, color=color, camera=camera.record)
    encoding = ViewEncodingRecord(**asdict(config.encoding), color=color, encoder_settings=encoder_settings_string(video))
    common = dict(frames=times.frames, timestamps=times, encoding=encoding,
                  output=OutputRecord(path=video.name, bytes=video.stat().st_size), params_hash=phash, params=params,
                  versions=versions, command=command_line(), elapsed_s=round(elapsed_s, 3))
    if isinstance(view, EquirectTarget):
        return EquirectSidecar(source=source, width=view.width, height=view.height,
                               conventions=EQUIRECT_CONVENTIONS, **common)
    intrinsics = view.intrinsics
    return SliceSidecar(
        view=view.name, source=source,
        geometry=GeometryRecord(
            yaw_deg=view.yaw_deg, pitch_deg=view.pitch_deg, hfov_deg=intrinsics.hfov_deg,
            vfov_deg=round(intrinsics.vfov_deg, 6), width=view.width, height=view.height,
            intrinsics=IntrinsicsRecord(fx=intrinsics.fx, fy=intrinsics.fy, cx=intrinsics.cx, cy=intrinsics.cy,
                                        K=intrinsics.matrix()),
            interpolation=config.interp, conventions=CONVENTIONS),
        **common)
