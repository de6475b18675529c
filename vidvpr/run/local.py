"""The in-process executor: units run here, one after another or in a few threads (today's behaviour).

The first failure (or Ctrl-C) stops the run and is raised as it is; `on_abort` lets the stage stop
work of other threads (the encode stage kills its ffmpeg processes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from vidvpr.run.units import Progress, ProgressTracker, RunReport, Unit, call_unit, total_weight


class InProcessExecutor:
    """Runs units in this process; nothing to share or to check (this machine sees its own files)."""

    name = "in-process"
    dashboard: str | None = None

    def __init__(self) -> None:
        self.reports: list[RunReport] = []

    def share(self, value: Any) -> Any:
        """A large argument several units take (a model): here, the value itself."""
        return value

    def check_shared(self, outputs: Sequence[Path], inputs: Sequence[Path] = ()) -> None:
        """Nothing to check: every unit runs where the caller checked its paths."""

    def run(self, units: Sequence[Unit], on_start: Callable[[int | None], None] | None = None,
            on_progress: Progress | None = None, concurrency: int = 1,
            on_abort: Callable[[], None] | None = None) -> RunReport:
        """Run every unit, `concurrency` at once; a value per unit in order, or the first error raised."""
        started = time.perf_counter()
        if on_start:
            on_start(total_weight(units))
        tracker = ProgressTracker(units, on_progress)
        values: list[Any] = [None] * len(units)

        def work(index: int) -> None:
            values[index] = call_unit(units[index], lambda n: tracker.advance(index, "local", n))
            tracker.finish(index)

        if concurrency <= 1 or len(units) <= 1:
            for index in range(len(units)):
                work(index)
        else:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vidvpr-unit") as pool:
                futures = [pool.submit(work, index) for index in range(len(units))]
                try:
                    for future in as_completed(futures):
                        future.result()
                except BaseException:
                    if on_abort:
                        on_abort()
                    for future in futures:
                        future.cancel()
                    raise
        report = RunReport(self.name, values, elapsed_s=round(time.perf_counter() - started, 3))
        self.reports.append(report)
        return report

    def close(self) -> None:
        """Nothing to release."""
