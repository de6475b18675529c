"""Scale on paper: CPU-hours, GPU-hours, storage and wall time of each stage for a dataset, projected
from measured per-unit rates (`vidvpr.run.rates`). Pure arithmetic, no I/O.

Units of work are the executors' (one source file sliced, one view of one file encoded into every
cell, one (model, video) described, one (model, cell) searched), each taken as filling one worker's
C cores: wall time on N workers is ceil(units / N) rounds of one unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidvpr.run.rates import MPX, Rates, bytes_per_px

SECONDS_PER_HOUR = 3600.0
PREDICTION_BYTES = 20 * 60  # a query's top 20 in predictions CSV, ~60 bytes a line
FLOPS_PER_DIM = 2  # multiply-add per dimension of an exact L2 distance


@dataclass(frozen=True)
class Workload:
    """What the dataset is: its video, views, encode grid and evaluation sampling."""

    hours: float
    width: int
    height: int  # of one eye
    fps: float
    views: int
    view_size: tuple[int, int]
    cells: tuple[tuple[int, int, int], ...]  # (width, height, qp) of each grid cell
    codec: str = "libx264"
    file_minutes: float = 60.0  # one source file: one slice unit
    sampled_fps: float = 1.0  # frames per second of video (per view) in the manifest
    query_fraction: float = 0.5
    models: int = 1
    source_mbps: float = 100.0


@dataclass(frozen=True)
class Machine:
    """Where it runs: N workers of C cores, and an assumed GPU throughput for descriptors."""

    workers: int
    cores: int
    search_gflops_per_core: float
    gpu_mpx_per_s: float | None = None


@dataclass(frozen=True)
class StageCost:
    stage: str
    core_hours: float
    gpu_hours: float | None
    storage_bytes: float
    units: int
    largest_unit_core_hours: float
    wall_hours: float


def _wall(core_hours: float, units: int, largest: float, machine: Machine) -> float:
    """Units of equal size, each on a whole worker: rounds of N at a time; never below the largest unit."""
    rounds = math.ceil(units / machine.workers)
    return max(rounds * core_hours / units / machine.cores, largest / machine.cores)


def _stage(stage: str, core_s: float, units: int, largest_s: float, storage: float, machine: Machine,
           gpu_hours: float | None = None) -> StageCost:
    core_h, largest_h = core_s / SECONDS_PER_HOUR, largest_s / SECONDS_PER_HOUR
    return StageCost(stage, core_h, gpu_hours, storage, units, largest_h, _wall(core_h, units, largest_h, machine))


def project(work: Workload, rates: Rates, machine: Machine) -> list[StageCost]:
    """Cost of each stage (slice, encode, describe, search) for `work` at `rates` on `machine`."""
    files = max(1, math.ceil(work.hours * 60 / work.file_minutes))
    frames = work.hours * SECONDS_PER_HOUR * work.fps
    view_px = work.view_size[0] * work.view_size[1]
    slice_s = frames * (rates.slice_source_s_per_mpx * work.width * work.height
                        + rates.slice_view_s_per_mpx * work.views * view_px) / MPX
    source_bytes = work.hours * SECONDS_PER_HOUR * work.source_mbps * MPX / 8
    stages = [StageCost("source video (stored)", 0.0, None, source_bytes, files, 0.0, 0.0),
              _stage("slice", slice_s, files, slice_s / files, frames * work.views * view_px * rates.view_bytes_per_px,
                     machine)]
    cell_mpx = sum(w * h for w, h, _ in work.cells) / MPX
    encode_s = frames * work.views * cell_mpx * rates.encode_s_per_mpx[work.codec]
    cell_bytes = frames * work.views * sum(w * h * bytes_per_px(rates.cell_bytes_per_px[work.codec], qp)
                                           for w, h, qp in work.cells)
    stages.append(_stage("encode + measure", encode_s, files * work.views, encode_s / (files * work.views),
                         cell_bytes, machine))
    sampled = work.hours * SECONDS_PER_HOUR * work.sampled_fps * work.views * work.models
    sizes = [work.view_size] + [(w, h) for w, h, _ in work.cells]  # the reference views, then every cell
    described_mpx = sampled * sum(w * h for w, h in sizes) / MPX
    gpu_hours = described_mpx / machine.gpu_mpx_per_s / SECONDS_PER_HOUR if machine.gpu_mpx_per_s else None
    describe_units = len(sizes) * files * work.views * work.models
    describe_s = described_mpx * rates.describe_s_per_mpx
    stages.append(_stage("descriptors", describe_s, describe_units, describe_s / describe_units,
                         sampled * len(sizes) * rates.descriptor_dim * 2, machine, gpu_hours))
    per_model = sampled / work.models
    queries, database = per_model * work.query_fraction, per_model * (1 - work.query_fraction)
    cell_search_s = queries * database * rates.descriptor_dim * FLOPS_PER_DIM / (machine.search_gflops_per_core * 1e9)
    score_units = len(sizes) * work.models
    stages.append(_stage("search (exact L2)", cell_search_s * score_units, score_units, cell_search_s,
                         queries * PREDICTION_BYTES * score_units, machine))
    return stages


def total(stages: list[StageCost]) -> StageCost:
    """All stages one after another (each waits for the one before)."""
    gpu = [s.gpu_hours for s in stages if s.gpu_hours is not None]
    return StageCost("total", sum(s.core_hours for s in stages), sum(gpu) if gpu else None,
                     sum(s.storage_bytes for s in stages), sum(s.units for s in stages),
                     max(s.largest_unit_core_hours for s in stages), sum(s.wall_hours for s in stages))
