"""`vidvpr slice`: 360° equirectangular video → perspective view videos with provenance sidecars.

Each source frame is decoded once for all views; every view's sampling maps are computed once;
frames are remapped plane by plane in yuv420p (no RGB round trip) and encoded in-process by
libx264 through PyAV, keeping every source timestamp. Decoding, remapping and each view's
encoder run in threads of their own.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from vidvpr.geo import projection as geometry
from vidvpr.encoding.plan import encoder_threads
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.core.provenance import (
    SLICE_SIDECAR_SCHEMA,
    atomic_output,
    command_line,
    ensure_writable_dir,
    file_record,
    params_hash,
    read_json,
    runtime_versions,
    write_json_atomic,
)
from vidvpr.media.video import DecodedFrame, VideoInfo, decode_frames, encoder_settings_string, probe_video

LOG = logging.getLogger(__name__)

INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
# Rows a kernel reaches beyond its centre: sampling near a pole with a wider kernel pads the
# source with replicated rows instead of letting the wrapping border fetch the opposite pole.
KERNEL_RADIUS_ROWS = {"bilinear": 0, "bicubic": 2, "lanczos": 4}
STEREO_LAYOUTS = ("mono", "tb")
EYES = ("top", "bottom")
MIN_VIEW_SIDE = 16
MAX_VIEW_SIDE = 8192
SIDECAR_SCHEMA = SLICE_SIDECAR_SCHEMA
WRITER_QUEUE_FRAMES = 8  # per view: absorbs encoders' uneven pace (x264 lookahead, frame types)


@dataclass(frozen=True)
class ViewEncoding:
    """How view videos are stored. Defaults are visually lossless references (see README)."""

    codec: str = "libx264"
    crf: int = 10
    preset: str = "veryfast"
    pix_fmt: str = "yuv420p"


@dataclass(frozen=True)
class SliceConfig:
    """Every `vidvpr slice` option, with its default written once."""

    yaws_deg: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    pitch_deg: float = 0.0
    hfov_deg: float = 90.0
    size: tuple[int, int] | None = None  # None: match the source's angular resolution
    fps: Fraction | None = None  # None: keep every frame
    interp: str = "bilinear"
    stereo: str = "mono"
    eye: str = "top"
    encoding: ViewEncoding = field(default_factory=ViewEncoding)
    force: bool = False


@dataclass(frozen=True)
class ViewSpec:
    """One perspective view: direction, field of view and size."""

    yaw_deg: float
    pitch_deg: float
    hfov_deg: float
    width: int
    height: int

    @property
    def name(self) -> str:
        """File stem, e.g. ``yaw090_pitch+00``: yaw in [0, 360), signed pitch."""
        return f"yaw{round(self.yaw_deg) % 360:03d}_pitch{round(self.pitch_deg):+03d}"

    @property
    def intrinsics(self) -> geometry.PinholeIntrinsics:
        return geometry.pinhole_intrinsics(self.width, self.height, self.hfov_deg)


@dataclass
class ViewResult:
    """What one view output is, and whether this run wrote it or found it done."""

    source: str
    view: str
    path: str
    sidecar: str
    frames: int
    skipped: bool


def validate_config(config: SliceConfig) -> None:
    """Reject nonsense options before any work starts."""
    if not config.yaws_deg:
        raise BadInput("--yaw: give at least one view yaw")
    if not geometry.MIN_FOV_DEG <= config.hfov_deg <= geometry.MAX_FOV_DEG:
        raise BadInput(f"--fov must be in [{geometry.MIN_FOV_DEG:g}, {geometry.MAX_FOV_DEG:g}] degrees, got {config.hfov_deg:g}")
    if not -90.0 <= config.pitch_deg <= 90.0:
        raise BadInput(f"--pitch must be in [-90, 90] degrees, got {config.pitch_deg:g}")
    if config.size is not None:
        width, height = config.size
        if not (MIN_VIEW_SIDE <= width <= MAX_VIEW_SIDE and MIN_VIEW_SIDE <= height <= MAX_VIEW_SIDE):
            raise BadInput(f"--size {width}x{height}: each side must be in [{MIN_VIEW_SIDE}, {MAX_VIEW_SIDE}]")
        if width % 2 or height % 2:
            raise BadInput(f"--size {width}x{height}: width and height must be even (yuv420p video)")
    if config.fps is not None and config.fps <= 0:
        raise BadInput(f"--fps must be positive, got {config.fps}")
    if config.interp not in INTERPOLATIONS:
        raise BadInput(f"Unknown --interp '{config.interp}'. Use {', '.join(INTERPOLATIONS)}.")
    if config.stereo not in STEREO_LAYOUTS:
        raise BadInput(f"Unknown --stereo '{config.stereo}'. Use {' or '.join(STEREO_LAYOUTS)}.")
    if config.eye not in EYES:
        raise BadInput(f"Unknown --eye '{config.eye}'. Use {' or '.join(EYES)}.")
    names = [ViewSpec(yaw, config.pitch_deg, config.hfov_deg, 2, 2).name for yaw in config.yaws_deg]
    if len(set(names)) != len(names):
        raise BadInput(f"--yaw: two views have the same direction ({', '.join(names)})")


def plan_views(config: SliceConfig, eye_width: int) -> list[ViewSpec]:
    """The views to cut from a source whose (single-eye) equirect frame is `eye_width` wide."""
    width, height = config.size or geometry.default_view_size(eye_width, config.hfov_deg)
    return [ViewSpec(float(yaw), config.pitch_deg, config.hfov_deg, width, height) for yaw in config.yaws_deg]


class PlaneRemapper:
    """Remaps one image plane of one view with maps computed once and stored in fixed point."""

    def __init__(self, src_w: int, src_h: int, row_offset: int, view: ViewSpec, scale: int, interp: str) -> None:
        map_x, map_y = geometry.equirect_to_perspective_maps(
            src_w, src_h, view.width // scale, view.height // scale, view.yaw_deg, view.pitch_deg, view.hfov_deg
        )
        radius = KERNEL_RADIUS_ROWS[interp]
        near_pole = radius and (map_y.min() < radius or map_y.max() > src_h - 1 - radius)
        self.pad_rows = radius if near_pole else 0
        self.rows = slice(row_offset, row_offset + src_h)
        self.flag = INTERPOLATIONS[interp]
        # float maps: OpenCV's SIMD path for them measured faster than fixed-point maps here
        self.map_x, self.map_y = map_x, map_y + np.float32(self.pad_rows)

    def __call__(self, plane: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Remap `plane` (the whole source plane) into `out` (allocated when None)."""
        src = plane[self.rows]
        if self.pad_rows:
            src = cv2.copyMakeBorder(src, self.pad_rows, self.pad_rows, 0, 0, cv2.BORDER_REPLICATE)
        if out is None or not out.flags.c_contiguous:
            result = cv2.remap(src, self.map_x, self.map_y, self.flag, borderMode=cv2.BORDER_WRAP)
            if out is not None:
                out[...] = result
            return result if out is None else out
        cv2.remap(src, self.map_x, self.map_y, self.flag, dst=out, borderMode=cv2.BORDER_WRAP)
        return out


class ViewRemapper:
    """Y, U and V remappers for one view (chroma at half resolution, centre-sited)."""

    def __init__(self, src_w: int, eye_h: int, eye_row: int, view: ViewSpec, interp: str) -> None:
        self.luma = PlaneRemapper(src_w, eye_h, eye_row, view, 1, interp)
        self.chroma = PlaneRemapper(src_w // 2, eye_h // 2, eye_row // 2, view, 2, interp)

    def __call__(self, frame: DecodedFrame, out: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
        """The view's Y, U, V planes, written into `out` planes when given."""
        out_y, out_u, out_v = out if out is not None else (None, None, None)
        return self.luma(frame.y, out_y), self.chroma(frame.u, out_u), self.chroma(frame.v, out_v)


def source_eye(info: VideoInfo, config: SliceConfig) -> tuple[int, int]:
    """(eye height, first row) of the equirect image inside the source frame."""
    if config.stereo == "tb":
        eye_h = info.height // 2
        return eye_h, 0 if config.eye == "top" else eye_h
    return info.height, 0


def check_projection(info: VideoInfo, config: SliceConfig) -> None:
    """Warn when nothing says the source is equirectangular (or the stereo option disagrees)."""
    meta = info.spherical
    if meta and meta.projection != "equirectangular":
        raise BadInput(f"{info.path}: spherical metadata says '{meta.projection}' projection; only equirectangular is supported")
    if meta and meta.stereo_mode == "top-bottom" and config.stereo != "tb":
        LOG.warning("%s: metadata says top-bottom stereo; pass --stereo tb to take one eye", info.path)
    if meta and meta.stereo_mode == "left-right":
        raise BadInput(f"{info.path}: left-right stereo is not supported (only --stereo tb)")
    eye_h, _ = source_eye(info, config)
    if meta is None and info.width != 2 * eye_h:
        LOG.warning(
            "%s: %dx%d eye is not 2:1 and no spherical metadata says it is equirectangular",
            info.path, info.width, eye_h,
        )


class ResampleSchedule:
    """Which source frames to keep for a target frame rate: the nearest frame to each k/fps."""

    def __init__(self, target_fps: Fraction | None, source_fps: Fraction) -> None:
        self.target_fps = target_fps
        self.half_frame_s = 0.5 / float(source_fps) if source_fps else 0.0
        self.next_index = 0

    def keep(self, time_s: float) -> bool:
        if self.target_fps is None:
            return True
        target_s = self.next_index / float(self.target_fps)
        if target_s < time_s + self.half_frame_s - 1e-9:
            self.next_index += 1
            return True
        return False


class ViewWriter:
    """Encodes one view in this process with PyAV's libx264, from a feeder thread of its own.

    PyAV releases the GIL while x264 encodes, so the views' encoders, the decoder and the
    remapping all run at once without the pipe copies an ffmpeg subprocess would need. Frame
    buffers are recycled, so the steady state allocates nothing; every frame keeps the
    timestamp it is given, so variable frame rates survive exactly.
    """

    def __init__(self, path: Path, view: ViewSpec, time_base: Fraction, fps: Fraction, encoding: ViewEncoding,
                 threads: int) -> None:
        self.path = path
        self.size = (view.width, view.height)
        try:
            self.container = av.open(str(path), mode="w")
            self.stream = self.container.add_stream(encoding.codec, rate=fps)
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputError(f"{path.parent}: cannot write {path.name} ({exc})") from exc
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = encoding.pix_fmt
        self.stream.time_base = time_base
        self.stream.codec_context.time_base = time_base
        self.stream.options = {"crf": str(encoding.crf), "preset": encoding.preset}
        # x264's frame threads, as the ffmpeg CLI uses them (PyAV defaults to slice threads,
        # which cost speed and compression); the caller shares the cores among the views
        self.stream.codec_context.thread_type = "FRAME"
        self.stream.codec_context.thread_count = threads
        # the muxer replaces the stream's time base once the header is written; frames keep ours
        self.time_base = time_base
        self.error: OutputError | None = None
        self.queue: queue.Queue[tuple[np.ndarray, int] | None] = queue.Queue()
        self.free: queue.Queue[np.ndarray] = queue.Queue()
        for _ in range(WRITER_QUEUE_FRAMES):
            self.free.put(np.empty((view.height * 3 // 2, view.width), np.uint8))
        self.feeder = threading.Thread(target=self._feed, name=f"vidvpr-encode-{view.name}", daemon=True)
        self.feeder.start()

    def new_frame(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """A recycled packed yuv420p buffer to fill, and (h, w) views of its Y, U, V planes.

        Blocks while all buffers wait for the encoder: the back-pressure that bounds memory.
        """
        if self.error is not None:
            raise self.error
        buffer = self.free.get()
        return buffer, yuv420p_plane_views(buffer, *self.size)

    def write(self, buffer: np.ndarray, pts: int) -> None:
        """Queue a filled buffer for the encoder at `pts` (in this writer's time base)."""
        self.queue.put((buffer, pts))

    def _feed(self) -> None:
        """Feeder thread: encode and mux queued frames, then hand their buffers back."""
        while (item := self.queue.get()) is not None:
            buffer, pts = item
            if self.error is None:
                try:
                    frame = av.VideoFrame.from_ndarray(buffer, format="yuv420p")
                    frame.pts = pts
                    frame.time_base = self.time_base
                    self.container.mux(self.stream.encode(frame))
                except (OSError, av.error.FFmpegError) as exc:
                    self.error = self._failure("while encoding", exc)
            self.free.put(buffer)

    def close(self) -> None:
        """Flush the encoder and finish the file; raise if anything failed (e.g. disk full)."""
        self.queue.put(None)
        self.feeder.join()
        if self.error is not None:
            raise self.error
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except (OSError, av.error.FFmpegError) as exc:
            raise self._failure("while finishing", exc) from exc

    def abort(self) -> None:
        """Stop without finishing the file (the caller removes it)."""
        with contextlib.suppress(Exception):
            self.error = self.error or OutputError("aborted")
            self.queue.put(None)
            self.feeder.join(timeout=10)
        with contextlib.suppress(Exception):
            self.container.close()

    def _failure(self, when: str, exc: BaseException) -> OutputError:
        errno_value = getattr(exc, "errno", None)
        if errno_value == errno.ENOSPC or "No space left" in str(exc):
            error = OutputError(f"{self.path.parent}: disk full while encoding {self.path.name}")
        else:
            error = OutputError(f"{self.path.name}: encoder failed {when}: {exc}")
        error.__cause__ = exc
        return error


def yuv420p_plane_views(buffer: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """(h, w) Y and (h/2, w/2) U, V views into a packed yuv420p buffer of shape (3h/2, w)."""
    flat = buffer.reshape(-1)
    luma = width * height
    chroma = luma // 4
    return [flat[:luma].reshape(height, width),
            flat[luma:luma + chroma].reshape(height // 2, width // 2),
            flat[luma + chroma:].reshape(height // 2, width // 2)]


def _enlarge_pipe(pipe: Any, size_bytes: int = 1 << 20) -> None:
    """Grow a pipe's kernel buffer (Linux) so a whole frame passes in a few writes, not dozens."""
    with contextlib.suppress(Exception):
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), size_bytes)


def _prefetch(frames: Iterator[DecodedFrame], depth: int = 4) -> Iterator[DecodedFrame]:
    """Decode in a background thread so decoding overlaps remapping and encoding."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in frames:
                if stop.is_set():
                    return
                buffer.put(item)
            buffer.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(exc)

    worker = threading.Thread(target=produce, name="vidvpr-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                buffer.get_nowait()
        worker.join(timeout=5)


def slice_params(info: VideoInfo, views: Sequence[ViewSpec], config: SliceConfig) -> dict[str, Any]:
    """Everything that determines the outputs' content, hashed to decide whether a rerun can skip."""
    return {
        "views": [asdict(view) for view in views],
        "fps": str(config.fps) if config.fps else None,
        "interp": config.interp,
        "stereo": config.stereo,
        "eye": config.eye if config.stereo == "tb" else None,
        "encoding": asdict(config.encoding),
        "schema": SIDECAR_SCHEMA,
    }


def view_paths(out_dir: Path, source: Path, view: ViewSpec) -> tuple[Path, Path]:
    """(video, sidecar) of one view: ``OUT/<source stem>/<view name>.mp4`` and ``.json``."""
    folder = out_dir / source.stem
    return folder / f"{view.name}.mp4", folder / f"{view.name}.json"


def _is_done(video: Path, sidecar: Path, source_hash: str, phash: str) -> bool:
    meta = read_json(sidecar)
    return bool(
        meta and video.exists() and meta.get("params_hash") == phash
        and meta.get("source", {}).get("hash") == source_hash
        and meta.get("output", {}).get("bytes") == video.stat().st_size
    )


def slice_video(
    source: Path,
    out_dir: Path,
    config: SliceConfig,
    on_frame: Callable[[int], None] | None = None,
    on_start: Callable[[VideoInfo], None] | None = None,
) -> list[ViewResult]:
    """Slice one 360° video into perspective view videos, each with a sidecar written last."""
    validate_config(config)
    info = probe_video(source)
    check_projection(info, config)
    eye_h, eye_row = source_eye(info, config)
    if info.width % 2 or eye_h % 2:
        raise BadInput(f"{source}: frame size {info.width}x{eye_h} must be even (yuv420p)")
    if config.fps is not None and info.fps and config.fps > info.fps:
        raise BadInput(f"--fps {config.fps} exceeds the source's {float(info.fps):g} fps ({source}); vidvpr never duplicates frames")
    views = plan_views(config, info.width)
    params = slice_params(info, views, config)
    phash = params_hash(params)
    source_rec = file_record(Path(source))
    outputs = [view_paths(Path(out_dir), Path(source), view) for view in views]
    if not config.force and all(_is_done(video, car, source_rec["hash"], phash) for video, car in outputs):
        LOG.info("%s: all %d views already done, skipping", source, len(views))
        return [_result(source, view, video, car, read_json(car)["frames"], True) for view, (video, car) in zip(views, outputs)]
    ensure_writable_dir(outputs[0][0].parent)
    if on_start:
        on_start(info)
    with _opencv_threads(1):
        return _slice_frames(info, views, outputs, config, params, phash, source_rec, on_frame)


def _result(source: Path, view: ViewSpec, video: Path, car: Path, frames: int, skipped: bool) -> ViewResult:
    return ViewResult(str(source), view.name, str(video), str(car), frames, skipped)


@contextlib.contextmanager
def _opencv_threads(count: int) -> Iterator[None]:
    """Run OpenCV single-threaded here: the cores are busy with the view encoders and the
    decoder, and OpenCV's spinning worker threads would only take time from them (measured:
    ~10% more CPU for the same remaps)."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _slice_frames(
    info: VideoInfo,
    views: list[ViewSpec],
    outputs: list[tuple[Path, Path]],
    config: SliceConfig,
    params: dict[str, Any],
    phash: str,
    source_rec: dict[str, Any],
    on_frame: Callable[[int], None] | None,
) -> list[ViewResult]:
    eye_h, eye_row = source_eye(info, config)
    remappers = [ViewRemapper(info.width, eye_h, eye_row, view, config.interp) for view in views]
    out_fps = config.fps or info.fps
    out_time_base = 1 / out_fps if config.fps else info.time_base
    # one x264 per view, together filling the cores: on 2 cores with 4 views, 1 thread each
    # beat x264's own choice (3 each) by ~8% wall time
    threads = encoder_threads(len(views))
    schedule = ResampleSchedule(config.fps, info.fps)
    started = time.perf_counter()
    timestamps_s: list[float] = []
    source_indices: list[int] = []
    with contextlib.ExitStack() as stack:
        tmp_paths = [stack.enter_context(atomic_output(video)) for video, _ in outputs]
        writers: list[ViewWriter] = []
        try:
            for tmp, view in zip(tmp_paths, views):
                writers.append(ViewWriter(tmp, view, out_time_base, out_fps, config.encoding, threads))
            first_pts: int | None = None
            for frame in _prefetch(decode_frames(info.path, info.frames)):
                if not schedule.keep(frame.time_s):
                    continue
                if first_pts is None:
                    first_pts = frame.pts
                pts = len(source_indices) if config.fps else frame.pts - first_pts
                for remap, writer in zip(remappers, writers):
                    out_frame, planes = writer.new_frame()
                    remap(frame, planes)
                    writer.write(out_frame, pts)
                timestamps_s.append(round(float(pts * out_time_base), 6))
                source_indices.append(frame.index)
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
    results = []
    for view, (video, car) in zip(views, outputs):
        encoder_settings = encoder_settings_string(video)
        write_json_atomic(car, _sidecar(info, view, video, config, params, phash, source_rec, versions,
                                        encoder_settings, timestamps_s, source_indices, out_fps, out_time_base, elapsed_s))
        results.append(_result(info.path, view, video, car, len(source_indices), False))
    return results


def _timestamp_record(timestamps_s: list[float], source_indices: list[int], fps: Fraction, time_base: Fraction) -> dict[str, Any]:
    """Per-frame times as a rule when the stream is constant-rate, else listed."""
    frames = len(timestamps_s)
    constant_rate = all(abs(t - i / float(fps)) < 0.5 * float(time_base) + 1e-6 for i, t in enumerate(timestamps_s))
    record: dict[str, Any] = {"fps": str(fps), "time_base": str(time_base), "frames": frames}
    if constant_rate:
        record["rule"] = "time_s[i] = i / fps"
    else:
        record["time_s"] = timestamps_s
    if source_indices != list(range(frames)):
        record["source_frame_index"] = source_indices
    else:
        record["source_frame_index_rule"] = "source_frame_index[i] = i"
    return record


def _sidecar(info: VideoInfo, view: ViewSpec, video: Path, config: SliceConfig, params: dict[str, Any], phash: str,
             source_rec: dict[str, Any], versions: dict[str, str], encoder_settings: str | None,
             timestamps_s: list[float], source_indices: list[int], fps: Fraction, time_base: Fraction,
             elapsed_s: float) -> dict[str, Any]:
    intrinsics = view.intrinsics
    return {
        "schema": SIDECAR_SCHEMA,
        "kind": "view_video",
        "view": view.name,
        "source": {**source_rec, "width": info.width, "height": info.height, "codec": info.codec,
                   "pix_fmt": info.pix_fmt, "fps": str(info.fps), "frames": info.frames,
                   "spherical_metadata": asdict(info.spherical) if info.spherical else None,
                   "stereo": config.stereo, "eye": config.eye if config.stereo == "tb" else None},
        "geometry": {
            "yaw_deg": view.yaw_deg, "pitch_deg": view.pitch_deg, "roll_deg": 0.0,
            "hfov_deg": intrinsics.hfov_deg, "vfov_deg": round(intrinsics.vfov_deg, 6),
            "width": view.width, "height": view.height,
            "intrinsics": {"fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx, "cy": intrinsics.cy,
                           "K": intrinsics.matrix(), "model": "pinhole", "pixel_centers": "+0.5"},
            "interpolation": config.interp,
            "conventions": "yaw 0 = equirect centre column, +yaw right, +pitch up; pixel (i,j) centre at (i+0.5, j+0.5)",
        },
        "frames": len(source_indices),
        "timestamps": _timestamp_record(timestamps_s, source_indices, fps, time_base),
        "encoding": {**asdict(config.encoding), "encoder_settings": encoder_settings},
        "output": {"path": video.name, "bytes": video.stat().st_size},
        "params_hash": phash,
        "params": params,
        "versions": versions,
        "command": command_line(),
        "elapsed_s": round(elapsed_s, 3),
    }


def slice_videos(
    sources: Sequence[Path],
    out_dir: Path,
    config: SliceConfig,
    on_frame: Callable[[int], None] | None = None,
    on_start: Callable[[VideoInfo], None] | None = None,
) -> list[ViewResult]:
    """Slice several 360° videos into ``OUT/<stem>/<view>.mp4``; stems must be unique."""
    validate_config(config)
    stems = [Path(src).stem for src in sources]
    duplicated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicated:
        raise BadInput(f"two inputs share the name '{duplicated[0]}'; their views would overwrite each other")
    ensure_writable_dir(Path(out_dir))
    results: list[ViewResult] = []
    for src in sources:
        results.extend(slice_video(Path(src), Path(out_dir), config, on_frame, on_start))
    return results


def expected_frames_hint(info: VideoInfo, config: SliceConfig) -> int | None:
    """Frame count for a progress bar (None when the container does not say)."""
    if not info.frames:
        return None
    if config.fps and info.fps:
        return math.floor(info.frames * float(config.fps) / float(info.fps) + 0.5)
    return info.frames


V360_INTERP = {"bilinear": "linear", "bicubic": "cubic", "lanczos": "lanczos"}


def v360_filter(view: ViewSpec, interp: str = "bilinear") -> str:
    """ffmpeg v360 filter string that cuts the same view (a peer for benchmarks and cross-checks).

    v360 takes yaw in [-180, 180]; its flat output samples pixel centres like vidvpr does.
    """
    yaw = (view.yaw_deg + 180.0) % 360.0 - 180.0
    return (f"v360=input=e:output=flat:yaw={yaw:g}:pitch={view.pitch_deg:g}:h_fov={view.hfov_deg:g}"
            f":v_fov={view.intrinsics.vfov_deg:.6f}:w={view.width}:h={view.height}:interp={V360_INTERP[interp]}")
