"""The grid's table (`encodes.csv` + `encodes.json`): one row per finished cell under the output folder.

The table is rebuilt from the cell sidecars on disk after every run, so it describes every cell
under `--out`, whichever run (or cluster job) made it, not only the inputs of the last run.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import is_partial_name, write_text_atomic
from vidvpr.core.provenance import command_line
from vidvpr.core.records import Record
from vidvpr.core.sidecars import CellSidecar

LOG = logging.getLogger(__name__)

TABLE_COLUMNS = (
    "recording", "view", "resolution", "width", "height", "qp", "codec", "preset", "flat_qp", "gop",
    "frames", "bytes", "stream_bytes", "kbps", "psnr_y", "ssim_y", "vmaf", "encode_s",
    "quantiser", "quantiser_verified", "vmaf_every", "encode_cpu_s", "encode_fps", "realtime_factor", "path",
)
TABLE_NAME = "encodes.csv"
TABLE_JSON_NAME = "encodes.json"
CELL_SIDECAR_GLOBS = (
    "*/*/*/qp*.json",  # libx264: OUT/<recording>/<view>/<res>/qp<NN>.json
    "*/*/*/*/qp*.json",  # other codecs: OUT/<recording>/<view>/<res>/<codec>/qp<NN>.json
    "*/*/*/*/quality*.json",  # jpeg: OUT/<recording>/<view>/<res>/jpeg/quality<NN>.json
)


class EncodeTable(Record):
    """`encodes.json`: the table's rows with the columns spelled out and the run that wrote it."""

    SCHEMA = "vidvpr.encodes/2"
    KIND = "vidvpr encode table"

    columns: list[str]
    config: dict[str, Any]
    command: list[str]
    rows: list[dict[str, Any]]


def row_from_sidecar(cell: CellSidecar, out_dir: Path, sidecar: Path) -> dict[str, Any]:
    """One table row from a cell's sidecar; `path` is the cell video relative to `out_dir`."""
    video = sidecar.with_name(cell.output.path)
    return {
        "recording": cell.recording, "view": cell.view, "resolution": cell.resolution, "width": cell.width,
        "height": cell.height, "qp": cell.qp, "codec": cell.codec, "preset": cell.preset, "flat_qp": cell.flat_qp,
        "gop": cell.gop, "frames": cell.frames, "bytes": cell.output.bytes, "stream_bytes": cell.output.stream_bytes,
        "kbps": cell.kbps, "psnr_y": cell.metrics.psnr_y, "ssim_y": cell.metrics.ssim_y, "vmaf": cell.metrics.vmaf,
        "encode_s": cell.encode.encode_s, "quantiser": cell.quantiser,
        "quantiser_verified": cell.quantiser_check.verified,
        "vmaf_every": cell.metrics.vmaf_sampling.every if cell.metrics.vmaf_sampling else None,
        "encode_cpu_s": cell.encode.cpu_s, "encode_fps": cell.encode.fps, "realtime_factor": cell.encode.realtime_factor,
        "path": video.relative_to(out_dir).as_posix(),
    }


def finished_cells(out_dir: Path) -> list[tuple[Path, CellSidecar]]:
    """(sidecar path, sidecar) of every finished cell under `out_dir`, in path order.

    A cell is finished when its sidecar is valid and its video has the recorded size; others
    (interrupted, damaged, from an older vidvpr) are left out with a note in the log.
    """
    found = []
    for path in sorted(path for pattern in CELL_SIDECAR_GLOBS for path in Path(out_dir).glob(pattern)):
        if is_partial_name(path.name):
            continue
        cell = CellSidecar.load_or_none(path)
        video = path.with_name(cell.output.path) if cell else None
        if cell is None or video is None or not video.is_file() or video.stat().st_size != cell.output.bytes:
            LOG.info("%s: not a finished cell (missing, damaged or older sidecar); left out of the table", path)
            continue
        found.append((path, cell))
    return found


def table_rows(out_dir: Path) -> list[dict[str, Any]]:
    """The rows of every finished cell under `out_dir`."""
    return [row_from_sidecar(cell, Path(out_dir), path) for path, cell in finished_cells(out_dir)]


def write_table(rows: Sequence[dict[str, Any]], out_dir: Path, config: dict[str, Any]) -> tuple[Path, Path]:
    """Write `encodes.csv` and its JSON twin atomically; empty metrics are empty CSV fields."""
    csv_path, json_path = Path(out_dir) / TABLE_NAME, Path(out_dir) / TABLE_JSON_NAME
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(csv_path, text.getvalue())
    EncodeTable(columns=list(TABLE_COLUMNS), config=config, command=command_line(), rows=list(rows)).save(json_path)
    return csv_path, json_path
