"""Frame-rate reduction without inventing frames or times: keep the source frame nearest each k/fps.

Targets are t0 + k/fps (t0: the first frame's time). Each source frame owns the times closer to
it than to its neighbours (a tie at a midpoint goes to the later frame); it is kept when it owns
at least one target. Across a gap in a variable-rate or gappy stream the targets inside the gap
fall to the frames on either side of it, and every kept frame keeps its own, real time. A frame
is never kept twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Generic, TypeVar

T = TypeVar("T")
EPSILON_S = 1e-9


class NearestFrameResampler(Generic[T]):
    """Streaming form: `push` frames in presentation order, then `finish`; both return the frames kept.

    Deciding on a frame needs the next frame's time, so each decision lags one frame behind.
    """

    def __init__(self, fps: Fraction) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.period_s = 1.0 / float(fps)
        self.start_s: float | None = None
        self.next_target = 0
        self.pending: tuple[float, T] | None = None
        self.last_interval_s: float | None = None

    def _owns_target(self, upper_s: float) -> bool:
        """Whether a target before `upper_s` is still unclaimed (claiming all of them)."""
        assert self.start_s is not None
        owned = False
        while self.start_s + self.next_target * self.period_s < upper_s - EPSILON_S:
            self.next_target += 1
            owned = True
        return owned

    def push(self, time_s: float, item: T) -> list[T]:
        if self.pending is None:
            self.start_s = time_s
            self.pending = (time_s, item)
            return []
        previous_s, previous = self.pending
        self.pending = (time_s, item)
        self.last_interval_s = time_s - previous_s
        return [previous] if self._owns_target((previous_s + time_s) / 2.0) else []

    def finish(self) -> list[T]:
        """The decision on the last frame: it owns the times up to half an interval after it."""
        if self.pending is None:
            return []
        time_s, item = self.pending
        self.pending = None
        half_s = (self.last_interval_s if self.last_interval_s is not None else self.period_s) / 2.0
        return [item] if self._owns_target(time_s + half_s) else []


def nearest_frame_indices(times_s: Sequence[float], fps: Fraction) -> list[int]:
    """Indices of the frames (with these presentation times, increasing) kept at `fps`."""
    resampler: NearestFrameResampler[int] = NearestFrameResampler(fps)
    kept: list[int] = []
    for index, time_s in enumerate(times_s):
        kept += resampler.push(float(time_s), index)
    return kept + resampler.finish()
