"""The evaluation as units of work: descriptors per (model, video), then scores per (model, cell).

First every (model, video, frames, input size) the grid needs is described once into the
descriptor cache (`describe_unit`); then each (model, cell) reads its database and query
descriptors back from the cache, searches and counts recall (`score_unit`). Both are top-level
functions on plain arguments, so an executor may run them in this process or on Dask workers;
the model, manifest and positives go to each worker once (`executor.share`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidvpr.core.records import FileRecord
from vidvpr.dataset.manifest import Manifest
from vidvpr.dataset.records import DATA_FILES
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.extract import ForwardCounter, describe_video
from vidvpr.evaluate.cells import GridCell
from vidvpr.evaluate.grid import EvalConfig, _score_cell, database_parts, describe_rows, video_requests
from vidvpr.evaluate.models import ModelChoice
from vidvpr.evaluate.results import EvalRow
from vidvpr.models.model import VPRModel
from vidvpr.run import Executor, Unit


def describe_unit(model: VPRModel, video: Path, frames: list[int], cache: DescriptorCache, record: FileRecord,
                  batch_size: int, device: torch.device, input_size: tuple[int, int] | None,
                  on_images: Callable[[int], None] | None = None) -> int:
    """One unit: the descriptors of `frames` of `video` into the cache; returns the images put through
    the model (0 when they were cached)."""
    counter = ForwardCounter()
    describe_video(model, video, frames, cache, record, batch_size, device, input_size, counter, on_images)
    return counter.images


def score_unit(model: VPRModel, choice: ModelChoice, cell: GridCell, reference: GridCell, manifest: Manifest,
               positives_at: dict[float, list[np.ndarray]], cache: DescriptorCache, config: EvalConfig,
               device: torch.device, ns: list[int], out_dir: Path) -> tuple[list[EvalRow], int]:
    """One unit: search `cell`'s queries in its database for one model, write its predictions; (rows,
    images put through the model, 0 when `describe_unit` cached every descriptor)."""
    counter = ForwardCounter()
    db_cell = reference if config.protocol == "reference" else cell
    database = database_parts(model, manifest.database, db_cell, reference, cache, config, device, counter)
    queries = describe_rows(model, manifest.queries, cell, reference, cache, config, device, counter, None)
    return _score_cell(choice, cell, database, queries, manifest, positives_at, config, ns, out_dir), counter.images


def run_cells(prepared: Sequence[tuple[ModelChoice, VPRModel]], cells: Sequence[GridCell], reference: GridCell,
              manifest: Manifest, positives_at: dict[float, list[np.ndarray]], cache: DescriptorCache,
              config: EvalConfig, device: torch.device, ns: list[int], out_dir: Path, counter: ForwardCounter,
              executor: Executor, on_start: Callable[[int | None], None] | None,
              on_images: Callable[[int], None] | None) -> list[EvalRow]:
    """Every model on every cell: descriptor units, then score units; rows in model, cell order."""
    models = [(choice, model, executor.share(model)) for choice, model in prepared]
    describe: dict[tuple[Any, ...], Unit] = {}
    for _, model, shared in models:
        for cell in cells:
            db_cell = reference if config.protocol == "reference" else cell
            for rows, source in ((manifest.database, db_cell), (manifest.queries, cell)):
                for _, video, record, frames, size in video_requests(rows, source, reference, config):
                    describe.setdefault((model.fingerprint, record.hash, tuple(frames), size), Unit(
                        f"describe {model.name} {video}", describe_unit,
                        (shared, video, frames, cache, record, config.batch_size, device, size),
                        progress="on_images", weight=len(set(frames))))
    described = executor.run(list(describe.values()), on_start, on_images)
    counter.images += sum(images for images in described.values if images)
    described.raise_failures()
    manifest_shared, positives_shared = executor.share(manifest), executor.share(positives_at)
    units = [Unit(f"score {choice.label} {cell.name}", score_unit,
                  (shared, choice, cell, reference, manifest_shared, positives_shared, cache, config, device, ns, out_dir))
             for choice, _, shared in models for cell in cells]
    scored = executor.run(units)
    scored.raise_failures()
    rows: list[EvalRow] = []
    for cell_rows, images in scored.values:
        rows.extend(cell_rows)
        counter.images += images
    return rows


def eval_inputs(manifest: Manifest, cells: Sequence[GridCell]) -> list[Path]:
    """The files every worker must see: the manifest's and each cell's videos."""
    videos = dict.fromkeys(video for cell in cells for video, _ in cell.videos.values())
    return [*(manifest.directory / name for name in DATA_FILES), *videos]
