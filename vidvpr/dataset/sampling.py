"""Which frames of a view video to keep: every N frames, every T seconds or every D metres (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vidvpr.core.errors import BadInput

def sample_every_frames(count: int, step: int) -> np.ndarray:
    """Indices 0, step, 2·step, … below `count`."""
    return np.arange(0, count, step, dtype=np.int64)


def sample_every_seconds(time_s: np.ndarray, period_s: float) -> np.ndarray:
    """The first frame at or after each time t0 + k·period (t0: the first frame's time).

    Grid-aligned, so 0.1 s at 30 fps keeps frames 0, 3, 6, … without drift; a gap in the video
    skips the grid slots it covers.
    """
    t = np.asarray(time_s, dtype=float)
    if not t.size:
        return np.empty(0, np.int64)
    slot = np.floor((t - t[0]) / period_s + 1e-9)
    return np.flatnonzero(np.r_[True, np.diff(slot) > 0]).astype(np.int64)


def sample_every_metres(easting_m: np.ndarray, northing_m: np.ndarray, step_m: float) -> np.ndarray:
    """The first frame, then each frame at least `step_m` (straight line) from the last one kept.

    A walker standing still keeps no frames, even with GPS jitter below `step_m` (summing the
    path length would turn jitter into distance travelled).
    """
    east, north = np.asarray(easting_m, dtype=float), np.asarray(northing_m, dtype=float)
    if not east.size:
        return np.empty(0, np.int64)
    kept = [0]
    last_e, last_n = east[0], north[0]
    step_sq = step_m * step_m
    for i in range(1, east.size):
        d_e, d_n = east[i] - last_e, north[i] - last_n
        if d_e * d_e + d_n * d_n >= step_sq:
            kept.append(i)
            last_e, last_n = east[i], north[i]
    return np.asarray(kept, dtype=np.int64)


MAX_SAMPLING_STEP = 1e12  # frames, seconds or metres: beyond any recording
SAMPLING_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(f|s|m)\s*$")


@dataclass(frozen=True)
class SamplingRule:
    """Keep a frame every `every` frames ("f"), seconds ("s") or metres ("m")."""

    every: float
    unit: str

    def __str__(self) -> str:
        return f"{self.every:g}{self.unit}"

    def select(self, time_s: np.ndarray, easting_m: np.ndarray, northing_m: np.ndarray) -> np.ndarray:
        """Indices of the frames to keep among frames with these times and positions."""
        if self.unit == "f":
            return sample_every_frames(len(time_s), int(self.every))
        if self.unit == "s":
            return sample_every_seconds(time_s, self.every)
        return sample_every_metres(easting_m, northing_m, self.every)


def parse_sampling(text: str, what: str = "sampling") -> SamplingRule:
    """'5f' (every 5 frames), '0.5s' (every 0.5 s), '2m' (every 2 m) or 'all' (every frame)."""
    spec = str(text).strip().lower()
    if spec == "all":
        return SamplingRule(1, "f")
    match = SAMPLING_PATTERN.match(spec)
    value = float(match.group(1)) if match else 0.0
    if match and value >= MAX_SAMPLING_STEP:
        raise BadInput(f"sampling rule {text!r} is out of range (at most {MAX_SAMPLING_STEP:g})")
    if not match or value <= 0 or (match.group(2) == "f" and value != int(value)):
        raise BadInput(f"Unknown {what} rule {text!r}. Use Nf (every N frames), Ts (every T seconds), "
                       "Dm (every D metres) or all, e.g. 5f, 0.5s, 2m.")
    return SamplingRule(int(value) if match.group(2) == "f" else value, match.group(2))
