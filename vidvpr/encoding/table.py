"""The grid's table (`encodes.csv` + `encodes.json`) and its plot (`rd.png`): one row per finished
cell under the output folder.

The table is rebuilt from the cell sidecars on disk after every run, so it describes every cell
under `--out`, whichever run (or cluster job) made it, not only the inputs of the last run. When
the rebuilt table is the one on disk (same rows and configuration, the CSV as it would be written,
the plot with its recorded size and hash), nothing is rewritten: a rerun that encoded nothing
never pays for drawing the plot again.
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
from vidvpr.core.records import FileRecord, Record
from vidvpr.core.sidecars import CellSidecar
from vidvpr.encoding.rdplot import PLOT_NAME, plot_rd

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
    plot: FileRecord | None = None  # rd.png drawn from these rows (path relative to the folder)


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


def table_csv_text(rows: Sequence[dict[str, Any]]) -> str:
    """`encodes.csv` as written: empty metrics are empty CSV fields."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def table_current(rows: Sequence[dict[str, Any]], out_dir: Path, config: dict[str, Any]) -> bool:
    """Whether `out_dir` already holds this table (rows and configuration, CSV text) and the plot drawn
    from it, intact (size and content hash)."""
    out_dir = Path(out_dir)
    recorded = EncodeTable.load_or_none(out_dir / TABLE_JSON_NAME)
    if recorded is None or recorded.plot is None:
        return False
    wanted = EncodeTable(columns=list(TABLE_COLUMNS), config=config, command=[], rows=list(rows)).to_json()
    if ({**recorded.to_json(), "command": [], "plot": None} != {**wanted, "plot": None}
            or not recorded.plot.matches(out_dir / recorded.plot.path, check_hash=True)):
        return False
    try:
        return (out_dir / TABLE_NAME).read_text(encoding="utf-8") == table_csv_text(rows)
    except (OSError, UnicodeDecodeError):
        return False


def write_table(rows: Sequence[dict[str, Any]], out_dir: Path, config: dict[str, Any]) -> tuple[Path, Path, Path]:
    """Write `encodes.csv`, `rd.png` and `encodes.json` (last: it records the plot) atomically, unless
    they are current (`table_current`); returns their paths."""
    out_dir = Path(out_dir)
    csv_path, json_path, plot_path = out_dir / TABLE_NAME, out_dir / TABLE_JSON_NAME, out_dir / PLOT_NAME
    if table_current(rows, out_dir, config):
        LOG.info("%s: table and plot already describe every finished cell; left as they are", out_dir)
        return csv_path, json_path, plot_path
    write_text_atomic(csv_path, table_csv_text(rows))
    plot_rd(rows, plot_path)
    EncodeTable(columns=list(TABLE_COLUMNS), config=config, command=command_line(), rows=list(rows),
                plot=FileRecord.of(plot_path, out_dir)).save(json_path)
    return csv_path, json_path, plot_path
