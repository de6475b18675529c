"""Units of work and what a run of them reports, the same for every executor.

A unit is one call of a top-level function on plain (picklable) arguments: slice one source video,
encode and measure one view, describe one (model, video), score one (model, cell). Its outputs
are files on shared storage, written atomically and skipped when their sidecar says they are done,
so running a unit twice (a retry after a worker died) is harmless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidvpr.core.errors import VidvprError

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Unit:
    """`fn(*args, **kwargs)`, with the executor's progress callback passed as keyword `progress`
    (when not None); `weight` is the progress it reports when complete (frames, images)."""

    name: str  # what the summary calls it: "slice room.mp4", "encode rec/yaw000_pitch+00"
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    progress: str | None = None
    weight: int | None = None


@dataclass(frozen=True)
class UnitFailure:
    """A unit that failed: its name, the one-line error and the exit code it carries."""

    unit: str
    error: str
    exit_code: int


@dataclass(frozen=True)
class UnitRetry:
    """A unit run more than once, and why (a worker died under it, or a transient error)."""

    unit: str
    attempts: int
    reason: str


@dataclass
class RunReport:
    """What one executor run did: a value per unit (None where it failed), failures and retries."""

    executor: str
    values: list[Any]
    failures: list[UnitFailure] = field(default_factory=list)
    retried: list[UnitRetry] = field(default_factory=list)
    elapsed_s: float = 0.0

    def raise_failures(self) -> None:
        """UnitsFailed (a one-line error with a per-unit summary) when any unit failed."""
        if self.failures:
            raise UnitsFailed(self.failures, len(self.values))


class UnitsFailed(VidvprError):
    """Some units failed for a reason of their own; the others finished. `details` lists each."""

    def __init__(self, failures: Sequence[UnitFailure], total: int) -> None:
        self.failures = list(failures)
        codes = {failure.exit_code for failure in self.failures}
        self.exit_code = codes.pop() if len(codes) == 1 else 1
        first = self.failures[0]
        more = f" (and {len(self.failures) - 1} more, listed above)" if len(self.failures) > 1 else ""
        super().__init__(f"{len(self.failures)} of {total} units failed, the others finished: "
                         f"{first.unit}: {first.error}{more}")

    @property
    def details(self) -> list[str]:
        """One line per failed unit, for the summary printed before the error."""
        return [f"failed: {failure.unit}: {failure.error}" for failure in self.failures]


def failure_of(name: str, exc: BaseException) -> UnitFailure:
    """The summary entry of a unit that raised `exc`."""
    message = " ".join(str(exc).split())
    if isinstance(exc, VidvprError):
        return UnitFailure(name, message, exc.exit_code)
    return UnitFailure(name, f"internal error: {type(exc).__name__}: {message}", 1)


class ProgressTracker:
    """Progress of many units (and retried attempts) as one count: each unit counts the furthest any
    attempt got, capped at its weight, and its whole weight once finished; advances `sink`."""

    def __init__(self, units: Sequence[Unit], sink: Progress | None) -> None:
        self._weights = [unit.weight for unit in units]
        self._best: list[int] = [0] * len(units)
        self._attempts: dict[tuple[int, str], int] = {}
        self._finished: set[int] = set()
        self._sink = sink
        self._lock = threading.Lock()

    def advance(self, index: int, attempt: str, frames: int) -> None:
        with self._lock:
            if index in self._finished:
                return
            count = self._attempts.get((index, attempt), 0) + frames
            self._attempts[(index, attempt)] = count
            weight = self._weights[index]
            self._raise_to(index, count if weight is None else min(count, weight))

    def finish(self, index: int) -> None:
        with self._lock:
            weight = self._weights[index]
            if weight is not None:
                self._raise_to(index, weight)
            self._finished.add(index)

    def _raise_to(self, index: int, value: int) -> None:
        gain = value - self._best[index]
        if gain > 0:
            self._best[index] = value
            if self._sink:
                self._sink(gain)


def total_weight(units: Sequence[Unit]) -> int | None:
    """The progress a whole run reports, or None when some unit's is unknown."""
    weights = [unit.weight for unit in units]
    return None if any(w is None for w in weights) else sum(w for w in weights if w is not None)


def call_unit(unit: Unit, progress: Progress | None) -> Any:
    """Run one unit here, handing it `progress` under its keyword."""
    extra = {unit.progress: progress} if unit.progress and progress is not None else {}
    return unit.fn(*unit.args, **unit.kwargs, **extra)
