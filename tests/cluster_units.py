"""Helpers the cluster tests send to Dask workers (importable there: the workers share our sys.path)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from vidvpr.run import RunReport, Unit
from vidvpr.run.cluster import DaskExecutor

HOLD_LIMIT_S = 60.0  # a held unit gives up after this (the test kills it long before)


def hold_first_attempt(fn: Callable[..., Any], marker: str, watch: str, progress_kw: str, *args: Any,
                       progress: Callable[[int], None] | None = None, **kwargs: Any) -> Any:
    """Run `fn`; on the first attempt only, stop at the first progress report after which a partial
    (half-written) output exists under `watch`, and wait there, having written this process's id to
    `marker`."""

    def holding(n: int) -> None:
        if progress is not None:
            progress(n)
        if not any(Path(watch).rglob(".*.partial-*")):
            return
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # a later attempt: run through
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        deadline = time.monotonic() + HOLD_LIMIT_S
        while time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("held unit was never killed")

    return fn(*args, **kwargs, **{progress_kw: holding})


class HoldingExecutor(DaskExecutor):
    """A DaskExecutor whose unit named `target` holds mid-unit on its first attempt (see above)."""

    def __init__(self, client: Any, target: str, marker: Path, watch: Path) -> None:
        super().__init__(client)
        self.target, self.marker, self.watch = target, marker, watch

    def run(self, units: Sequence[Unit], *args: Any, **kwargs: Any) -> RunReport:
        held = [replace(unit, fn=hold_first_attempt,
                        args=(unit.fn, str(self.marker), str(self.watch), unit.progress, *unit.args),
                        progress="progress") if unit.name == self.target else unit for unit in units]
        return super().run(held, *args, **kwargs)
