"""Executors: where the units of the heavy stages run.

`InProcessExecutor` runs them here (the default); `DaskExecutor` on a Dask `distributed` cluster
(`--scheduler ADDRESS`, or Dask's own configuration: ``DASK_SCHEDULER_ADDRESS``, the
``scheduler-address`` key). Stages build the same `Unit`s for both and call `executor.run`.
"""

from __future__ import annotations

import os
import site
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from vidvpr.run.local import InProcessExecutor
from vidvpr.run.units import Progress, RunReport, Unit, UnitFailure, UnitRetry, UnitsFailed


class Executor(Protocol):
    """What a stage needs from an executor."""

    name: str
    dashboard: str | None
    reports: list[RunReport]

    def share(self, value: Any) -> Any: ...

    def check_shared(self, outputs: Sequence[Path], inputs: Sequence[Path] = ()) -> None: ...

    def run(self, units: Sequence[Unit], on_start: Callable[[int | None], None] | None = None,
            on_progress: Progress | None = None, concurrency: int = 1,
            on_abort: Callable[[], None] | None = None) -> RunReport: ...

    def close(self) -> None: ...


def dask_config_sources() -> list[str]:
    """What Dask would read its configuration from here and now: ``DASK_*`` environment variables and
    YAML/JSON files in its search path (dask.config's own list). Empty: Dask runs on its defaults,
    which name no scheduler."""
    sources = [name for name in os.environ if name.startswith("DASK_")]
    folders = [os.getenv("DASK_ROOT_CONFIG", "/etc/dask"), os.path.join(sys.prefix, "etc", "dask"),
               *(os.path.join(prefix, "etc", "dask") for prefix in site.PREFIXES),
               os.path.join(os.path.expanduser("~"), ".config", "dask")]
    for folder in folders:
        try:
            sources += [os.path.join(folder, name) for name in os.listdir(folder)
                        if os.path.splitext(name)[1].lower() in (".json", ".yaml", ".yml")]
        except OSError:  # absent (the usual case) or unreadable: Dask skips it too
            continue
    return sources


def scheduler_address(explicit: str | None) -> str | None:
    """--scheduler, else Dask's configured ``scheduler-address`` (read now), else None (in-process).

    Dask is imported only when something configures it (`dask_config_sources`): importing it
    costs a command more than deciding a rerun has nothing to do."""
    if explicit:
        return explicit
    if not dask_config_sources():
        return None
    import dask.config  # imported here: Dask reads the environment at its first import, i.e. now

    configured = dask.config.get("scheduler-address", None)
    return str(configured) if configured else None


def open_executor(scheduler: str | None = None) -> Executor:
    """The Dask executor when a scheduler is given or configured (ToolMissing if unreachable), else in-process."""
    address = scheduler_address(scheduler)
    if address is None:
        return InProcessExecutor()
    from vidvpr.run.cluster import connect

    return connect(address)


__all__ = ["Executor", "InProcessExecutor", "RunReport", "Unit", "UnitFailure", "UnitRetry", "UnitsFailed",
           "dask_config_sources", "open_executor", "scheduler_address"]
