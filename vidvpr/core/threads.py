"""How many threads each encoder gets: one rule for slicing and for the encode grid."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def encoder_threads(concurrent_encoders: int, cpu_count: int | None = None) -> int:
    """Threads per encoder so that all encoders running at once fit the cores.

    Callers count the whole plan, not what is left to do, so a resumed run encodes with the
    same settings as an uninterrupted one (x264's output depends on its thread count). With
    more encoders than cores each encoder stays single-threaded and they share the cores.
    """
    cores = cpu_count or usable_cores()
    return max(1, cores // max(1, concurrent_encoders))
