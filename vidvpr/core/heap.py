"""Defined heap contents while encoders run: glibc's M_PERTURB fills new allocations.

x264 (PyAV's bundled libx264, core 165) reads heap bytes it never wrote, and its output depends
on them: the same fully written frames, encoded by four encoders in four threads at once, came
out with other bytes in 2-7 of 20 encodes, and one by one always the same. What a fresh
allocation holds is whatever another thread freed there, so it changes with timing, most under
CPU contention. With M_PERTURB set, glibc's malloc fills each allocation with one fixed byte
(except small blocks from a thread's own cache, which only that thread's frees refill), which
made the same test give one output in 60 encodes of 60 (README, "Reproducible views").
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import threading
from collections.abc import Callable, Iterator

LOG = logging.getLogger(__name__)

M_PERTURB = -6  # glibc's mallopt parameter (malloc.h)
PERTURB_BYTE = 0xA5  # new allocations are filled with its complement, freed ones with it
_lock = threading.Lock()
_users = 0


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's mallopt, or None elsewhere (musl, macOS: their allocators have no such setting)."""
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded into this process, the C library's among them
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):  # glibc only
        return None
    return libc.mallopt  # type: ignore[no-any-return]


def _set_perturb(value: int) -> bool:
    mallopt = _mallopt()
    return bool(mallopt and mallopt(M_PERTURB, value) == 1)


@contextlib.contextmanager
def defined_heap() -> Iterator[bool]:
    """Within the block (process-wide, nested and concurrent blocks counted), new heap
    allocations hold a fixed byte instead of what was freed there. Yields whether it applies."""
    global _users
    with _lock:
        applied = _set_perturb(PERTURB_BYTE) if _users == 0 else True
        if applied:
            _users += 1
        else:
            LOG.debug("this C library has no M_PERTURB; encoder output may vary with heap contents")
    try:
        yield applied
    finally:
        if applied:
            with _lock:
                _users -= 1
                if _users == 0:
                    _set_perturb(0)
