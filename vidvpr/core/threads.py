"""Threads: how many each encoder gets (one rule for slicing and the encode grid), and prefetching."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


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


def prefetch(items: Iterator[T], depth: int, name: str = "vidvpr-prefetch") -> Iterator[T]:
    """Yield `items`, produced `depth` ahead by a background thread (decoding overlaps whatever
    consumes it: libav, numpy and OpenCV release the GIL). An exception in the producer is raised
    in the consumer; leaving early stops the producer."""
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put(item)
            buffer.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(exc)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # drain so a blocked producer sees the stop
            with contextlib.suppress(queue.Empty):
                buffer.get(timeout=0.1)
        worker.join()
