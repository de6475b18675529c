"""Locate ffmpeg in one place, describe it, and run it with argument lists (never a shell)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from vidvpr.core.errors import ProcessFailed, ToolMissing

FFMPEG_ENV_VAR = "VIDVPR_FFMPEG"
STDERR_TAIL_LINES = 8


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


def _capture(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60).stdout


@functools.lru_cache(maxsize=8)
def describe_ffmpeg(path: str, source: str) -> FfmpegInfo:
    """Ask a binary for its version, encoders and filters."""
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
    resolved = shutil.which(path) or path
    if not Path(resolved).is_file():
        raise ToolMissing(f"{path}: ffmpeg not found (from {'--ffmpeg' if source == 'option' else FFMPEG_ENV_VAR})")
    return describe_ffmpeg(resolved, source)


def stderr_tail(stderr: str, lines: int = STDERR_TAIL_LINES) -> str:
    """Last meaningful lines of a tool's stderr, joined on one line for error messages."""
    kept = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def run_ffmpeg(argv: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """Run an ffmpeg argument list; raise ProcessFailed naming `what` with its stderr tail."""
    if not isinstance(argv, list):
        raise TypeError("ffmpeg commands are argument lists, never shell strings")
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ProcessFailed(f"{what}: ffmpeg exited with {proc.returncode}: {stderr_tail(proc.stderr)}")
    return proc
