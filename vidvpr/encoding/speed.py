"""Encoding speed per cell from the CPU time of an ffmpeg process's threads. Pure.

ffmpeg names its threads: ``enc<k>:0:<codec>`` runs the encoder of output k, ``dec<j>`` a
loopback decoder and ``fc<g>`` filter graph g (graph 0 decodes-and-scales for the encoders, the
others measure). Encoder libraries with worker pools (x265, SVT-AV1, vvenc) start their threads
from the encode graph's thread, whose name they inherit (or give them their own, ``svt-*``): that
CPU cannot be told apart per encoder, so it is shared evenly among the process's cells, together
with the view's decoding and scaling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENCODER_THREAD = re.compile(r"^enc(\d+):")
MEASURE_THREAD = re.compile(r"^(?:dec\d+|fc[1-9]\d*|av:.*)$")  # loopback decoders, metric graphs, their helpers


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds of one encode process, split into its cells' encoders, shared encode work and measuring."""

    per_encoder: list[float]  # the encoder thread of output k
    shared: float  # view decoding, scaling, encoder libraries' worker pools
    measure: float  # loopback decoders and metric graphs

    def cell_cpu_s(self, index: int) -> float:
        """Output `index`'s encoder thread plus an even share of the shared encode work."""
        return self.per_encoder[index] + self.shared / len(self.per_encoder)

    @property
    def encode(self) -> float:
        return sum(self.per_encoder) + self.shared


MIN_COVERAGE = 0.5  # sampled thread CPU below this share of the process's CPU: too short a run to tell


def split_thread_cpu(threads: dict[str, float], outputs: int, process_cpu_s: float | None = None) -> CpuSplit | None:
    """Split per-thread-name CPU of a process whose first `outputs` outputs are the cells.

    None when no thread was read (no /proc), or the samples cover less than MIN_COVERAGE of the
    process's CPU (a run of a few sampling intervals): callers record no speed rather than a wrong one.
    """
    if not threads or outputs < 1:
        return None
    if process_cpu_s and sum(threads.values()) < MIN_COVERAGE * process_cpu_s:
        return None
    per_encoder = [0.0] * outputs
    shared = measure = 0.0
    for name, cpu_s in threads.items():
        encoder = ENCODER_THREAD.match(name)
        if encoder and int(encoder.group(1)) < outputs:
            per_encoder[int(encoder.group(1))] += cpu_s
        elif encoder or MEASURE_THREAD.match(name):  # outputs past the cells: the metrics' null output
            measure += cpu_s
        else:
            shared += cpu_s  # the graph that feeds the encoders, their pools, demuxing, muxing, the main thread
    return CpuSplit(per_encoder, shared, measure)


def speed(frames: int, cpu_s: float | None, input_fps: float) -> tuple[float | None, float | None]:
    """(frames per CPU-second, real-time factor per core) of a cell; None without a CPU time."""
    if not cpu_s or cpu_s <= 0:
        return None, None
    fps = frames / cpu_s
    return round(fps, 2), round(fps / input_fps, 3) if input_fps else None
