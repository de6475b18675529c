"""database.csv and query.csv: writing rows, and reading them back typed and checked."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from vidvpr.core.errors import BadInput
from vidvpr.dataset.definition import check_name, resolve_inside
from vidvpr.dataset.records import COLUMNS, ManifestRow, columns

CSV_FIELD_LIMIT = 1 << 20


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


def _cell(path: Path, line: int, name: str, kind: str, text: str) -> Any:
    if text == "" and kind.endswith("?"):
        return None
    base = kind.rstrip("?")
    try:
        value = {"str": str, "int": int, "float": float}[base](text)
    except ValueError:
        raise BadInput(f"{path}: line {line}: {name} is not a{'n' if base == 'int' else ''} {base}: "
                       f"{text[:40]!r}") from None
    if base == "float" and not math.isfinite(value):
        raise BadInput(f"{path}: line {line}: {name} is {text!r} (must be finite)")
    if base == "str" and not value:
        raise BadInput(f"{path}: line {line}: {name} is empty")
    return value


def read_rows(path: Path, split: str, root: Path) -> list[ManifestRow]:
    """Rows of a manifest CSV, typed and checked (known split, id, names, video path inside `root`)."""
    expected = columns(split)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: manifest file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    rows = []
    reader = csv.DictReader(io.StringIO(text), strict=True)
    try:
        missing = [name for name in expected if name not in (reader.fieldnames or [])]
        if missing:
            raise BadInput(f"{path}: missing column(s) {', '.join(missing)}")
        for record in reader:
            line = reader.line_num
            if None in record or any(value is None for value in record.values()):
                raise BadInput(f"{path}: line {line}: expected {len(reader.fieldnames or [])} values")
            values = {name: _cell(path, line, name, COLUMNS[name], record[name]) for name in expected}
            if values["split"] != split:
                raise BadInput(f"{path}: line {line}: split is {values['split']!r}, expected {split}")
            check_name(values["recording"], f"line {line}: recording", str(path))
            check_name(values["view"], f"line {line}: view", str(path))
            if values["id"] != frame_id(values["recording"], values["view"], values["frame"]):
                raise BadInput(f"{path}: line {line}: id {values['id']!r} is not <recording>/<view>/<frame:06d>")
            if values["frame"] < 0:
                raise BadInput(f"{path}: line {line}: frame must not be negative")
            resolve_inside(root, values["video"], f"line {line}: video", str(path))
            rows.append(ManifestRow(**values))
    except csv.Error as exc:
        raise BadInput(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    ids = [row.id for row in rows]
    if len(set(ids)) != len(ids):
        raise BadInput(f"{path}: duplicate row ids")
    return rows
