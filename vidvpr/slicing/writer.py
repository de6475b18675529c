"""Encoding one view video in this process with PyAV's libx264, from a feeder thread of its own.

PyAV releases the GIL while x264 encodes, so the views' encoders, the decoder and the remapping
all run at once without the pipe copies an ffmpeg subprocess would need. Frame buffers are
recycled, so the steady state allocates nothing; every frame keeps the timestamp it is given, so
variable frame rates survive exactly. Any failure in the feeder thread, of any kind, is handed to
the caller on its next call: the run ends with one error and never waits forever.
"""

from __future__ import annotations

import contextlib
import errno
import queue
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidvpr.core.errors import OutputError, VidvprError
from vidvpr.core.heap import defined_heap
from vidvpr.media.probe import ColorInfo
from vidvpr.slicing.config import ViewEncoding, ViewSpec

WRITER_QUEUE_FRAMES = 8  # per view: absorbs encoders' uneven pace (x264 lookahead, frame types)
POLL_S = 0.2


class ViewWriter:
    """One view's encoder: fill `new_frame` buffers, `write` them, then `close` (or `abort`)."""

    def __init__(self, path: Path, view: ViewSpec, time_base: Fraction, fps: Fraction, encoding: ViewEncoding,
                 threads: int, color: ColorInfo) -> None:
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
        ctx = self.stream.codec_context
        ctx.time_base = time_base
        # the planes are the source's own values, so the source's tags describe them
        ctx.color_range, ctx.colorspace = color.range_code, color.space_code
        ctx.color_primaries, ctx.color_trc = color.primaries_code, color.transfer_code
        self.color = color
        self.stream.options = {"crf": str(encoding.crf), "preset": encoding.preset}
        # x264's frame threads, as the ffmpeg CLI uses them (PyAV defaults to slice threads,
        # which cost speed and compression); the caller shares the cores among the views
        ctx.thread_type = "FRAME"
        ctx.thread_count = threads
        # the muxer replaces the stream's time base once the header is written; frames keep ours
        self.time_base = time_base
        self.error: BaseException | None = None
        self.queue: queue.Queue[tuple[np.ndarray, int] | None] = queue.Queue()
        self.free: queue.Queue[np.ndarray] = queue.Queue()
        for _ in range(WRITER_QUEUE_FRAMES):
            self.free.put(np.empty((view.height * 3 // 2, view.width), np.uint8))
        # x264 (opened by the first encode, in the feeder) reads heap bytes it never wrote: keep
        # new allocations defined until this encoder is done
        self.heap = contextlib.ExitStack()
        self.heap.enter_context(defined_heap())
        self.feeder = threading.Thread(target=self._feed, name=f"vidvpr-encode-{view.name}", daemon=True)
        self.feeder.start()

    def new_frame(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """A recycled packed yuv420p buffer to fill, and (h, w) views of its Y, U, V planes.

        Blocks while all buffers wait for the encoder (the back-pressure that bounds memory),
        and raises as soon as the feeder has failed or stopped.
        """
        while True:
            self._raise_if_failed()
            try:
                buffer = self.free.get(timeout=POLL_S)
                break
            except queue.Empty:
                if not self.feeder.is_alive():
                    self._raise_if_failed()
                    raise OutputError(f"{self.path.name}: encoder thread stopped unexpectedly")
        return buffer, yuv420p_plane_views(buffer, *self.size)

    def write(self, buffer: np.ndarray, pts: int) -> None:
        """Queue a filled buffer for the encoder at `pts` (in this writer's time base)."""
        self.queue.put((buffer, pts))

    def _feed(self) -> None:
        """Feeder thread: encode and mux queued frames, then hand their buffers back."""
        while (item := self.queue.get()) is not None:
            buffer, pts = item
            try:
                if self.error is None:
                    frame = yuv420p_frame(buffer, *self.size)
                    frame.pts = pts
                    frame.time_base = self.time_base
                    frame.color_range = self.color.range_code
                    self.container.mux(self.stream.encode(frame))
            except BaseException as exc:  # any failure ends the run through the caller, never a hang
                self.error = self._failure("while encoding", exc)
            finally:
                self.free.put(buffer)

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Flush the encoder and finish the file; raise if anything failed (e.g. disk full)."""
        self.queue.put(None)
        self.feeder.join()
        try:
            self._raise_if_failed()
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except (OSError, av.error.FFmpegError) as exc:
            raise self._failure("while finishing", exc) from exc
        finally:
            self.heap.close()

    def abort(self) -> None:
        """Stop without finishing the file (the caller removes it)."""
        with contextlib.suppress(Exception):
            self.error = self.error or OutputError("aborted")
            self.queue.put(None)
            self.feeder.join(timeout=10)
        with contextlib.suppress(Exception):
            self.container.close()
        self.heap.close()

    def _failure(self, when: str, exc: BaseException) -> BaseException:
        if isinstance(exc, (VidvprError, KeyboardInterrupt)):
            return exc
        errno_value = getattr(exc, "errno", None)
        if errno_value == errno.ENOSPC or "No space left" in str(exc):
            error = OutputError(f"{self.path.parent}: disk full while encoding {self.path.name}")
        else:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            error = OutputError(f"{self.path.name}: encoder failed {when}: {detail}")
        error.__cause__ = exc
        return error


def yuv420p_frame(buffer: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame holding the packed `buffer`, with every byte of its planes written: the
    picture, and zeros in the row padding beyond the width.

    The padding must not be left as the allocator found it: x264 copies each row rounded up to
    16 pixels (chroma rows narrower than a multiple of 16, i.e. view widths that are not a
    multiple of 32), so those bytes enter its picture buffer and change its decisions. Left
    uninitialised, they hold whatever other threads freed there, and the same frames encoded
    twice came out with different bytes.
    """
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, picture in zip(frame.planes, yuv420p_plane_views(buffer, width, height)):
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        rows[:, :picture.shape[1]] = picture
        rows[:, picture.shape[1]:] = 0
    return frame


def yuv420p_plane_views(buffer: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """(h, w) Y and (h/2, w/2) U, V views into a packed yuv420p buffer of shape (3h/2, w)."""
    flat = buffer.reshape(-1)
    luma = width * height
    chroma = luma // 4
    return [flat[:luma].reshape(height, width),
            flat[luma:luma + chroma].reshape(height // 2, width // 2),
            flat[luma + chroma:].reshape(height // 2, width // 2)]
