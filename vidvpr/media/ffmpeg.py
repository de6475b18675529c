"""Locate ffmpeg in one place, describe it, and run it with argument lists (never a shell)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidvpr.core.errors import OutputError, ProcessFailed, ToolMissing
from vidvpr.core.provenance import cache_dir, file_identity, params_hash
from vidvpr.core.records import Record

FFMPEG_ENV_VAR = "VIDVPR_FFMPEG"
STDERR_TAIL_LINES = 8
DESCRIPTIONS_DIR = "ffmpeg"  # in vidvpr's cache folder: what each ffmpeg binary said it can do
THREAD_SAMPLE_S = 0.1  # how often a running ffmpeg's per-thread CPU times are read


@dataclass(frozen=True)
class FfmpegInfo:
    """What a given ffmpeg binary is and can do."""

    path: str
    source: str  # "option", "env", "PATH" or "imageio-ffmpeg"
    version: str
    encoders: frozenset[str] = field(default_factory=frozenset)
    filters: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_x264(self) -> bool:
        return "libx264" in self.encoders

    @property
    def has_x265(self) -> bool:
        return "libx265" in self.encoders

    @property
    def has_vmaf(self) -> bool:
        return "libvmaf" in self.filters

    def has_encoder(self, name: str) -> bool:
        return name in self.encoders


def _capture(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60).stdout


class FfmpegDescription(Record):
    """What an ffmpeg binary said about itself (-version, -encoders, -filters), cached in vidvpr's
    cache folder by the binary's identity: asking takes three runs of a large executable."""

    SCHEMA = "vidvpr.ffmpeg-description/1"
    KIND = "vidvpr ffmpeg description"

    path: str
    identity: list[int]  # device, inode, size, mtime_ns of the binary described
    version: str
    encoders: list[str]
    filters: list[str]


def description_path(path: str, identity: tuple[int, ...]) -> Path:
    """Where the description of the binary at `path` with this identity is cached."""
    return cache_dir() / DESCRIPTIONS_DIR / f"{params_hash({'path': path, 'identity': list(identity)})}.json"


@functools.lru_cache(maxsize=8)
def describe_ffmpeg(path: str, source: str) -> FfmpegInfo:
    """Ask a binary for its version, encoders and filters; a binary asked before (same path, device,
    inode, size and mtime) is answered from the cache."""
    try:
        identity = file_identity(os.stat(path))
    except OSError:
        identity = None
    cached = FfmpegDescription.load_or_none(description_path(path, identity)) if identity else None
    if cached is not None and cached.path == path and tuple(cached.identity) == identity:
        return FfmpegInfo(path, source, cached.version, frozenset(cached.encoders), frozenset(cached.filters))
    info = _ask_ffmpeg(path, source)
    if identity is not None:
        with contextlib.suppress(OSError, OutputError):  # a read-only cache folder: ask again next time
            entry = description_path(path, identity)
            entry.parent.mkdir(parents=True, exist_ok=True)
            FfmpegDescription(path=path, identity=list(identity), version=info.version, encoders=sorted(info.encoders),
                              filters=sorted(info.filters)).save(entry)
    return info


def _ask_ffmpeg(path: str, source: str) -> FfmpegInfo:
    try:
        version_text = _capture([path, "-hide_banner", "-version"])
    except OSError as exc:
        raise ToolMissing(f"{path}: cannot run ffmpeg ({exc.strerror})") from exc
    match = re.search(r"ffmpeg version (\S+)", version_text)
    if not match:
        raise ToolMissing(f"{path}: does not look like ffmpeg (no version line)")
    encoders = re.findall(r"^\s*V\S*\s+(\S+)", _capture([path, "-hide_banner", "-encoders"]), re.M)
    filters = re.findall(r"^\s*\S+\s+(\S+)\s+\S+->\S+", _capture([path, "-hide_banner", "-filters"]), re.M)
    return FfmpegInfo(path, source, match.group(1), frozenset(encoders), frozenset(filters))


def find_ffmpeg(explicit: str | os.PathLike[str] | None = None) -> FfmpegInfo:
    """Find ffmpeg: explicit path, else $VIDVPR_FFMPEG, else PATH if it has libx264, else imageio-ffmpeg.

    The environment is read here, at call time, never at import.
    """
    if explicit:
        return _require_existing(str(explicit), "option")
    env_path = os.environ.get(FFMPEG_ENV_VAR)
    if env_path:
        return _require_existing(env_path, "env")
    on_path = shutil.which("ffmpeg")
    if on_path:
        info = describe_ffmpeg(on_path, "PATH")
        if info.has_x264:
            return info
    try:
        import imageio_ffmpeg

        bundled = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise ToolMissing(
            "no ffmpeg with libx264 found: install imageio-ffmpeg, or pass --ffmpeg PATH / set VIDVPR_FFMPEG"
        ) from exc
    return describe_ffmpeg(bundled, "imageio-ffmpeg")


def _require_existing(path: str, source: str) -> FfmpegInfo:
    # resolved now, against the working directory the user meant: later runs change directory
    resolved = shutil.which(path) or path
    resolved = str(Path(resolved).absolute()) if os.sep in resolved or Path(resolved).exists() else resolved
    if not Path(resolved).is_file():
        raise ToolMissing(f"{path}: ffmpeg not found (from {'--ffmpeg' if source == 'option' else FFMPEG_ENV_VAR})")
    return describe_ffmpeg(resolved, source)


def stderr_tail(stderr: str, lines: int = STDERR_TAIL_LINES) -> str:
    """Last meaningful lines of a tool's stderr, joined on one line for error messages."""
    kept = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def exit_description(returncode: int) -> str:
    """'exited with 1' or, for a process killed by a signal, 'crashed (SIGSEGV)'."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"crashed ({signal.Signals(-returncode).name})"
        return f"crashed (signal {-returncode})"
    return f"exited with {returncode}"


def process_failure(what: str, returncode: int, stderr: str) -> ProcessFailed | OutputError:
    """The one-line error for a failed ffmpeg run: a full disk is an output error."""
    if "No space left on device" in stderr:
        return OutputError(f"{what}: disk full (No space left on device)")
    return ProcessFailed(f"{what}: ffmpeg {exit_description(returncode)}: {stderr_tail(stderr) or 'no message'}")


def run_ffmpeg(argv: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """Run an ffmpeg argument list; raise ProcessFailed naming `what` with its stderr tail."""
    if not isinstance(argv, list):
        raise TypeError("ffmpeg commands are argument lists, never shell strings")
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise process_failure(what, proc.returncode, proc.stderr)
    return proc


@dataclass(frozen=True)
class ProcessRun:
    """Wall and CPU (user + system) seconds of one finished ffmpeg process, and CPU seconds per
    thread name (ffmpeg names its threads: enc3:0:libx264, dec0, fc1, ...; empty without /proc)."""

    wall_s: float
    cpu_s: float
    threads: dict[str, float] = field(default_factory=dict)


def read_thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """thread id → (name, CPU seconds so far) of a running process, from /proc (empty if unreadable)."""
    found: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    ticks = os.sysconf("SC_CLK_TCK")
    for tid in tids:
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            found[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
        except (OSError, IndexError, ValueError):
            continue
    return found


class _ThreadSampler:
    """Reads a process's per-thread CPU every THREAD_SAMPLE_S while it runs, keeping each thread's
    last reading (a thread's CPU after its last reading, at most one interval, is missed)."""

    def __init__(self, pid: int) -> None:
        self._pid, self._seen = pid, {}  # type: dict[int, tuple[str, float]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidvpr-thread-cpu", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._seen.update(read_thread_cpu(self._pid))
            self._stop.wait(THREAD_SAMPLE_S)

    def stop(self) -> dict[str, float]:
        """CPU seconds per thread name (threads of one name summed); stopping twice is harmless."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        totals: dict[str, float] = {}
        for name, cpu_s in self._seen.values():
            totals[name] = totals.get(name, 0.0) + cpu_s
        return totals


class FfmpegPool:
    """Runs ffmpeg argument lists (several at once), reporting `-progress` frame counts.

    `stop_all` kills every running process and refuses new ones: a Ctrl-C or a failing job
    stops the whole run, and each job's partial outputs are removed as its error unwinds.
    """

    def __init__(self) -> None:
        self._live: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def run(self, argv: list[str], cwd: Path, what: str, on_frames: Callable[[int], None] | None = None) -> ProcessRun:
        """Run to completion; raise OutputError for a full disk, ProcessFailed for other failures."""
        if not isinstance(argv, list):
            raise TypeError("ffmpeg commands are argument lists, never shell strings")
        with tempfile.TemporaryFile() as stderr:
            started = time.perf_counter()
            with self._lock:
                if self._stopped:
                    raise ProcessFailed(f"{what}: not started, the run is stopping")
                proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=stderr, text=True)
                self._live.add(proc)
            sampler = _ThreadSampler(proc.pid)
            try:
                _follow_progress(proc, on_frames)
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped: its pid stays its own
                threads = sampler.stop()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
            except BaseException:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait()
                raise
            finally:
                sampler.stop()
                with self._lock:
                    self._live.discard(proc)
                if proc.stdout:
                    proc.stdout.close()
            if proc.returncode != 0:
                stderr.seek(0)
                raise process_failure(what, proc.returncode, stderr.read().decode("utf-8", "replace"))
        return ProcessRun(time.perf_counter() - started, usage.ru_utime + usage.ru_stime, threads)

    def read_frames(self, argv: list[str], cwd: Path, what: str, frame_bytes: int,
                    consume: Callable[[bytes], None]) -> ProcessRun:
        """Run an ffmpeg writing raw frames to stdout; hand each `frame_bytes`-long frame to `consume`."""
        if not isinstance(argv, list):
            raise TypeError("ffmpeg commands are argument lists, never shell strings")
        with tempfile.TemporaryFile() as stderr:
            started = time.perf_counter()
            with self._lock:
                if self._stopped:
                    raise ProcessFailed(f"{what}: not started, the run is stopping")
                proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
                self._live.add(proc)
            try:
                assert proc.stdout is not None
                while frame := proc.stdout.read(frame_bytes):
                    if len(frame) != frame_bytes:
                        break  # a truncated last frame: ffmpeg failed, its exit status says why
                    consume(frame)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
            except BaseException:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait()
                raise
            finally:
                with self._lock:
                    self._live.discard(proc)
                if proc.stdout:
                    proc.stdout.close()
            if proc.returncode != 0:
                stderr.seek(0)
                raise process_failure(what, proc.returncode, stderr.read().decode("utf-8", "replace"))
        return ProcessRun(time.perf_counter() - started, usage.ru_utime + usage.ru_stime)

    def stop_all(self) -> None:
        with self._lock:
            self._stopped = True
            for proc in self._live:
                with contextlib.suppress(OSError):
                    proc.kill()


def _follow_progress(proc: subprocess.Popen[str], on_frames: Callable[[int], None] | None) -> None:
    """Read `-progress pipe:1` to its end, reporting new frames (of the process's first output)."""
    seen = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if on_frames and line.startswith("frame="):
            with contextlib.suppress(ValueError):
                frame = int(line[6:])
                if frame > seen:
                    on_frames(frame - seen)
                    seen = frame
