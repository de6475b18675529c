"""Progress bars on stderr (rate and ETA) that a `quiet` flag turns off."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

DELAY_S = 0.5  # nothing for runs that finish (or fail) at once
LOG_INTERVAL_S = 10.0  # stderr not a terminal (a log file, a pipe): a bar at most this often, not ten a second


class WorkBar(tqdm):
    """A tqdm bar drawn only once work has been reported (`update`) for `delay` seconds.

    tqdm counts its delay from the bar's creation and draws at once on `reset` and
    `set_description`, so a rerun that spends a second finding its work done, learns a total of 0 or
    says "encode 0 views" left an empty bar on stderr (`--json` too). Here a total, a status or
    finished work counted at once draw nothing; a bar never drawn writes nothing when it closes.
    """

    _first_update_t: float | None = None
    _drawn = False

    def update(self, n: float | None = 1) -> bool | None:
        if n and self._first_update_t is None and not self.disable:
            self._first_update_t = self._time()
        return super().update(n)

    def refresh(self, nolock: bool = False, lock_args: Any = None) -> bool | None:
        if self._first_update_t is None or self._time() - self._first_update_t < self.delay:
            return False  # no work yet, or not for long: nothing to show
        self._drawn = True
        return super().refresh(nolock, lock_args)

    def close(self) -> None:
        if not self._drawn and hasattr(self, "start_t"):
            self.last_print_t = self.start_t  # tqdm's own test for "never displayed: nothing to clear"
        super().close()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


def progress_bar(total: int | None, desc: str, unit: str = "frame", quiet: bool = False) -> Any:
    """A bar on stderr (`WorkBar`); disabled (a no-op with the same interface) when quiet. Redrawn
    every `LOG_INTERVAL_S` when stderr is not a terminal: every redraw of a bar is one more
    carriage-return line in a log (the small demo study's log held thousands)."""
    return WorkBar(
        total=total,
        desc=desc,
        unit=unit,
        disable=quiet,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
        smoothing=0.1,
        delay=DELAY_S,
        mininterval=0.1 if _stderr_is_terminal() else LOG_INTERVAL_S,
    )
