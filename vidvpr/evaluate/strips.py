"""`--save-preds N`: for N queries per cell, a strip of the query and its top retrievals, each
retrieval framed green (a positive) or red (wrong), to look at what a model confuses."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vidvpr.core.atomic import atomic_output
from vidvpr.dataset.manifest import Manifest
from vidvpr.evaluate.cells import GridCell
from vidvpr.evaluate.results import EvalRow
from vidvpr.media.decode import decode_selected

STRIPS_DIR = "strips"
TOP_K = 5
TILE_HEIGHT = 120
BORDER = 6
GREEN, RED, GREY = (40, 180, 40), (220, 40, 40), (90, 90, 90)


def _frames(cell: GridCell, ids: Sequence[str], rows_by_id: dict) -> dict[str, np.ndarray]:
    """RGB frames of the given row ids, decoded from the cell's videos (each video once)."""
    by_video: dict[tuple[str, str], dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row_id in ids:
        row = rows_by_id[row_id]
        by_video[(row.recording, row.view)][row.frame].append(row_id)
    images = {}
    for key, frames in by_video.items():
        for index, rgb in decode_selected(cell.videos[key][0], sorted(frames)):
            for row_id in frames[index]:
                images[row_id] = rgb
    return images


def _tile(rgb: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    scale = TILE_HEIGHT / rgb.shape[0]
    image = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), TILE_HEIGHT), interpolation=cv2.INTER_AREA)
    return cv2.copyMakeBorder(image, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=colour)


def save_prediction_strips(rows: Sequence[EvalRow], manifest: Manifest, cells: Sequence[GridCell], out_dir: Path,
                           queries_per_cell: int, top_k: int = TOP_K) -> list[Path]:
    """One PNG per (model, cell): `queries_per_cell` queries spread over the query set, each a row
    of query (grey frame) then its top `top_k` retrievals (green: positive, red: wrong)."""
    rows_by_id = {row.id: row for row in manifest.database + manifest.queries}
    positives = {q.id: {manifest.database[i].id for i in hits} for q, hits in zip(manifest.queries, manifest.positives)}
    cells_by_name = {cell.name: cell for cell in cells}
    reference = cells_by_name.get("reference")
    written, seen = [], set()
    for result in rows:
        key = (result.model, result.cell)
        if key in seen:
            continue
        seen.add(key)
        ranking: dict[str, list[str]] = defaultdict(list)
        with open(Path(out_dir) / result.predictions, newline="") as handle:
            for entry in csv.DictReader(handle):
                if int(entry["rank"]) <= top_k:
                    ranking[entry["query_id"]].append(entry["database_id"])
        counted = [q for q in ranking if positives.get(q)]
        chosen = [counted[int(i)] for i in np.linspace(0, len(counted) - 1, num=min(queries_per_cell, len(counted)))]
        cell = cells_by_name[result.cell]
        database_cell = reference if result.protocol == "reference" and reference is not None else cell
        query_images = _frames(cell, chosen, rows_by_id)
        database_images = _frames(database_cell, sorted({d for q in chosen for d in ranking[q]}), rows_by_id)
        lines = []
        for query in chosen:
            tiles = [_tile(query_images[query], GREY)]
            tiles += [_tile(database_images[d], GREEN if d in positives[query] else RED) for d in ranking[query]]
            lines.append(np.concatenate(tiles, axis=1))
        if not lines:
            continue
        width = max(line.shape[1] for line in lines)
        strip = np.concatenate([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines])
        path = Path(out_dir) / STRIPS_DIR / result.model.replace(":", "-") / f"{result.cell.replace('/', '_')}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buffer = cv2.imencode(".png", strip[..., ::-1])
        if ok:
            with atomic_output(path) as tmp:
                tmp.write_bytes(buffer.tobytes())
            written.append(path)
    return written
