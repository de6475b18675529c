"""What each model's descriptors cost, for the VPR-Bench measures: extraction time per image and the
bytes of one descriptor.

The time comes from the extraction stage itself: every descriptor cache entry records how long it
took to make (decoding and the forward pass, whichever backend ran), so the evaluation reads the
entries it used rather than timing anything again. A cached entry keeps the time of the run that
made it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidvpr.dataset.manifest import Manifest
from vidvpr.descriptors.cache import DescriptorCache, DescriptorRecord
from vidvpr.evaluate.cells import GridCell
from vidvpr.evaluate.config import EvalConfig
from vidvpr.evaluate.models import ModelChoice
from vidvpr.evaluate.results import ExtractionRecord
from vidvpr.models.inference import Inference, as_inference
from vidvpr.models.model import VPRModel

SEARCHED_BYTES = np.dtype(np.float32).itemsize  # a descriptor is searched as float32


def extraction_costs(prepared: Sequence[tuple[ModelChoice, VPRModel | Inference]], cells: Sequence[GridCell],
                     reference: GridCell, manifest: Manifest, cache: DescriptorCache,
                     config: EvalConfig) -> list[ExtractionRecord]:
    """Per model: ms per image over the cache entries of every cell's database and query frames."""
    from vidvpr.evaluate.grid import video_requests

    out = []
    for choice, model in prepared:
        seen: set[tuple[str, tuple[int, ...], object]] = set()
        seconds, images = 0.0, 0
        for cell in cells:
            db_cell = reference if config.protocol == "reference" else cell
            for rows, source in ((manifest.database, db_cell), (manifest.queries, cell)):
                for _, _, record, frames, size in video_requests(rows, source, reference, config):
                    wanted = sorted(set(frames))
                    key = (record.hash, tuple(wanted), size)
                    if key in seen:
                        continue
                    seen.add(key)
                    entry = DescriptorRecord.load_or_none(cache.paths(as_inference(model).cache_key, record.hash, wanted,
                                                                      size)[1])
                    if entry is not None and entry.elapsed_s > 0:
                        seconds += entry.elapsed_s
                        images += len(entry.frames)
        out.append(ExtractionRecord(
            model=choice.label, descriptor_dim=model.descriptor_dim,
            descriptor_bytes=model.descriptor_dim * SEARCHED_BYTES,
            ms_per_image=round(1000 * seconds / images, 3) if images else None, images=images))
    return out
