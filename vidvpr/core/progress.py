"""Progress bars on stderr (rate and ETA) that a `quiet` flag turns off."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_bar(total: int | None, desc: str, unit: str = "frame", quiet: bool = False) -> Any:
    """A tqdm bar on stderr; disabled (a no-op with the same interface) when quiet."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=quiet,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
        smoothing=0.1,
        delay=0.5,  # nothing for runs that finish (or fail) at once
    )
