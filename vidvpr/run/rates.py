"""Per-unit costs measured by earlier runs, read back from their sidecars (for `tools/scale_estimate.py`).

* slice: each run's `elapsed_s` (wall, shared by the views it made) × the cores of the machine that
  ran it, fitted as core-seconds per megapixel of source decoded plus per megapixel of views made;
  view storage in bytes per view pixel.
* encode: each cell's share of its ffmpeg process's CPU (`process_cpu_s / cells_in_process`, encode
  and loopback measurement together) per megapixel of cell frames, per codec; storage in bytes per
  cell pixel per (codec, quantiser).
* descriptors: each cache entry's `elapsed_s` × the measuring machine's cores per megapixel of input.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidvpr.core.sidecars import CellSidecar, SliceSidecar
from vidvpr.descriptors.cache import DescriptorRecord
from vidvpr.media.probe import probe_video

LOG = logging.getLogger(__name__)
MPX = 1e6


@dataclass
class Rates:
    """Measured costs (core-seconds per megapixel) and sizes (bytes per pixel), with what they rest on."""

    slice_source_s_per_mpx: float = 0.0
    slice_view_s_per_mpx: float = 0.0
    view_bytes_per_px: float = 0.0
    encode_s_per_mpx: dict[str, float] = field(default_factory=dict)
    cell_bytes_per_px: dict[str, dict[int, float]] = field(default_factory=dict)
    describe_s_per_mpx: float = 0.0
    descriptor_dim: int = 0
    evidence: dict[str, str] = field(default_factory=dict)


def _schema(path: Path) -> str | None:
    try:
        schema = json.loads(path.read_text(encoding="utf-8")).get("schema")
    except (OSError, ValueError, AttributeError, RecursionError):  # RecursionError: JSON nested too deeply
        return None
    return schema if isinstance(schema, str) else None


def find_sidecars(folders: list[Path]) -> dict[str, list[Path]]:
    """Sidecar files under `folders` by schema (hidden and partial files left out)."""
    found: dict[str, list[Path]] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.json")):
            if not path.name.startswith("."):
                schema = _schema(path)
                if schema:
                    found.setdefault(schema, []).append(path)
    return found


def fit_slice(observations: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(a, b) ≥ 0 minimising Σ (core_s − a·source_mpx − b·view_mpx)² over (source_mpx, view_mpx, core_s);
    with one observation (or collinear ones) the whole cost goes to view megapixels."""
    x = np.array([[o[0], o[1]] for o in observations], float)
    y = np.array([o[2] for o in observations], float)
    if len(observations) >= 2 and np.linalg.matrix_rank(x) == 2:
        (a, b), *_ = np.linalg.lstsq(x, y, rcond=None)
        if a >= 0 and b >= 0:
            return float(a), float(b)
    candidates = [(0.0, float(y @ x[:, 1] / (x[:, 1] @ x[:, 1]))), (float(y @ x[:, 0] / (x[:, 0] @ x[:, 0])), 0.0)]
    return min(candidates, key=lambda ab: float(np.sum((x @ np.array(ab) - y) ** 2)))


def _slice_rates(paths: list[Path], cores: int, rates: Rates) -> None:
    runs: dict[tuple[str, float], list[SliceSidecar]] = {}
    for path in paths:
        car = SliceSidecar.load_or_none(path)
        if (car is not None and car.elapsed_s and not car.imported  # imports cost no slicing
                and min(car.frames, car.geometry.width, car.geometry.height, car.source.width, car.source.height) > 0):
            runs.setdefault((car.source.hash, car.elapsed_s), []).append(car)
    if not runs:
        return
    observations = []
    for cars in runs.values():
        src = cars[0].source
        eye_height = src.height // 2 if src.stereo == "tb" else src.height
        frames = cars[0].frames
        observations.append((frames * src.width * eye_height / MPX,
                             sum(c.frames * c.geometry.width * c.geometry.height for c in cars) / MPX,
                             cars[0].elapsed_s * cores))
    rates.slice_source_s_per_mpx, rates.slice_view_s_per_mpx = fit_slice(observations)
    cars = [c for group in runs.values() for c in group]
    rates.view_bytes_per_px = max(c.output.bytes / (c.frames * c.geometry.width * c.geometry.height) for c in cars)
    rates.evidence["slice"] = (f"{len(runs)} slice runs ({len(cars)} views), elapsed_s × {cores} cores; view storage: "
                               "the largest bytes/pixel measured")


def _encode_rates(paths: list[Path], rates: Rates) -> None:
    cpu: dict[str, list[float]] = {}
    sizes: dict[str, dict[int, list[float]]] = {}
    cells = 0
    for path in paths:
        car = CellSidecar.load_or_none(path)
        if (car is None or car.encode.process_cpu_s is None or car.encode.cells_in_process < 1
                or min(car.frames, car.width, car.height) <= 0):  # nothing measured per pixel
            continue
        cells += 1
        mpx = car.frames * car.width * car.height / MPX
        spent = cpu.setdefault(car.codec, [0.0, 0.0])
        spent[0] += car.encode.process_cpu_s / car.encode.cells_in_process
        spent[1] += mpx
        sizes.setdefault(car.codec, {}).setdefault(car.qp, []).append(car.output.bytes / (mpx * MPX))
    rates.encode_s_per_mpx = {codec: s / mpx for codec, (s, mpx) in cpu.items() if mpx}
    rates.cell_bytes_per_px = {codec: {qp: float(np.mean(v)) for qp, v in sorted(by_qp.items())}
                               for codec, by_qp in sizes.items()}
    if cells:
        rates.evidence["encode"] = f"{cells} cells: process CPU (encode + loopback PSNR/SSIM/VMAF) per cell"


def _describe_rates(paths: list[Path], cores: int, rates: Rates) -> None:
    seconds = mpx = 0.0
    entries = 0
    for path in paths:
        record = DescriptorRecord.load_or_none(path)
        if record is None or not record.elapsed_s or (record.input_size and len(record.input_size) != 2):
            continue
        if record.input_size:
            width, height = record.input_size
        else:
            try:
                info = probe_video(Path(record.video.path))
            except Exception:  # a moved or deleted video: this entry cannot be sized
                continue
            width, height = info.width, info.height
        seconds += record.elapsed_s * cores
        mpx += len(record.frames) * width * height / MPX
        rates.descriptor_dim = record.descriptor_dim
        entries += 1
    if mpx:
        rates.describe_s_per_mpx = seconds / mpx
        rates.evidence["describe"] = f"{entries} descriptor cache entries, elapsed_s × {cores} cores"


def read_rates(folders: list[Path], cores: int) -> Rates:
    """The rates measured by the runs whose outputs are under `folders`, made on a machine of `cores`."""
    found = find_sidecars(folders)
    rates = Rates()
    _slice_rates(found.get(SliceSidecar.SCHEMA, []), cores, rates)
    _encode_rates(found.get(CellSidecar.SCHEMA, []), rates)
    _describe_rates(found.get(DescriptorRecord.SCHEMA, []), cores, rates)
    return rates


def bytes_per_px(by_qp: dict[int, float], qp: int) -> float:
    """Bytes per pixel at `qp`: measured, or log-linear between the nearest measured QPs (clamped)."""
    qps = sorted(by_qp)
    if qp <= qps[0]:
        return by_qp[qps[0]]
    if qp >= qps[-1]:
        return by_qp[qps[-1]]
    return float(np.exp(np.interp(qp, qps, [np.log(by_qp[q]) for q in qps])))
