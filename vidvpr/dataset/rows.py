"""database.csv and query.csv: writing rows, and reading them back typed and checked."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pydantic import ValidationError

from vidvpr.core.errors import BadInput
from vidvpr.core.records import validation_problem
from vidvpr.dataset.definition import resolve_inside
from vidvpr.dataset.records import ROW, ManifestRow, columns


def frame_id(recording: str, view: str, frame: int) -> str:
    """Stable row id: ``<recording>/<view>/<frame:06d>``."""
    return f"{recording}/{view}/{frame:06d}"


def rows_csv_text(split: str, rows: list[ManifestRow]) -> str:
    """A split's CSV file; None is an empty cell."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns(split), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.as_dict(split).items()})
    return text.getvalue()


def read_rows(path: Path, split: str, root: Path) -> list[ManifestRow]:
    """Rows of a manifest CSV, typed and checked against `ManifestRow` (split, id, names, ranges,
    video path inside `root`); BadInput naming the file and line for anything else."""
    expected = columns(split)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadInput(f"{path}: manifest file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    rows = []
    lines: dict[str, int] = {}  # row id -> the line it is on
    inside: set[str] = set()  # videos already found inside `root`: rows share a few videos, resolving costs syscalls
    reader = csv.DictReader(io.StringIO(text), strict=True)
    try:
        missing = [name for name in expected if name not in (reader.fieldnames or [])]
        if missing:
            raise BadInput(f"{path}: missing column(s) {', '.join(missing)}")
        for record in reader:
            line = reader.line_num
            if None in record or any(value is None for value in record.values()):
                raise BadInput(f"{path}: line {line}: expected {len(reader.fieldnames or [])} values")
            values = {name: (record[name] or None) for name in expected}
            if values["video"] not in inside:
                resolve_inside(root, values["video"] or "", f"line {line}: video", str(path))
                inside.add(values["video"] or "")
            try:
                row = ROW.validate_python(values)
            except ValidationError as exc:
                raise BadInput(f"{path}: line {line}: {validation_problem(exc)}") from None
            if row.split != split:
                raise BadInput(f"{path}: line {line}: split is {row.split!r}, expected {split}")
            if split == "query" and row.num_positives is None:
                raise BadInput(f"{path}: line {line}: num_positives is empty (every query row has a count)")
            expected_id = frame_id(row.recording, row.view, row.frame)
            if row.id != expected_id:
                raise BadInput(f"{path}: line {line}: id {row.id!r} does not match the row's recording, view and "
                               f"frame ({expected_id!r}, <recording>/<view>/<frame:06d>)")
            if row.id in lines:
                raise BadInput(f"{path}: line {line}: duplicate row {row.id!r} (also line {lines[row.id]})")
            lines[row.id] = line
            rows.append(row)
    except csv.Error as exc:
        raise BadInput(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    return rows
