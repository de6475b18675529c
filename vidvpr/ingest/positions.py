"""Where imported frames were taken, written as the files `vidvpr manifest` reads: csv-xy
trajectories (one sample per frame, at the frame's own time) and a dataset definition.

Frame-index ground truth ("the same frame number is the same place", as in Nordland) is a
trajectory whose x is the frame number times a spacing: positives within one spacing are then the
frames next to each other, whatever the footage shows.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidvpr.core.atomic import ensure_writable_dir, write_text_atomic
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.dataset.definition import DEFAULT_RADIUS_M, parse_definition

LOG = logging.getLogger(__name__)

CSV_XY_HEADER = "t,x,y"


def _number(value: float) -> str:
    """Shortest text that reads back as the same float (so positions survive exactly)."""
    return repr(float(value))


def trajectory_text(times_s: np.ndarray, easting_m: np.ndarray, northing_m: np.ndarray,
                    heading_deg: np.ndarray | None = None, note: str = "") -> str:
    """A csv-xy trajectory: one line per frame (t, x, y[, heading])."""
    header = CSV_XY_HEADER + (",heading" if heading_deg is not None else "")
    lines = [f"# {line}" for line in note.replace('"', "'").splitlines()]  # comments the CSV reader skips
    lines.append(header)
    for i, (t, x, y) in enumerate(zip(times_s, easting_m, northing_m)):
        cells = [_number(t), _number(x), _number(y)]
        if heading_deg is not None:
            cells.append(_number(heading_deg[i]))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def index_trajectory_text(times_s: np.ndarray, spacing_m: float) -> str:
    """Frame i at x = i * spacing_m, y = 0: positives within `spacing_m` are frame i's neighbours."""
    if len(times_s) < 2:
        raise BadInput("--positions index needs at least 2 frames (a trajectory has two samples or more)")
    index = np.arange(len(times_s), dtype=float)
    return trajectory_text(times_s, index * spacing_m, np.zeros(len(times_s)),
                           note=f"vidvpr import --positions index:{spacing_m:g}: x = frame index x {spacing_m:g} m")


def _data_lines(text: str) -> list[str]:
    """The lines that say something: `#` comments (where the data came from, with the source's path
    as it was typed) left out."""
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]


def holds_already(path: Path, text: str, force: bool, what: str) -> bool:
    """Whether `path` holds `text` (but for its comments: the same import run from another folder
    spells the source's path differently); OutputError when it holds something else and `force` is
    not given (checked before any output is written, and again when writing)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if _data_lines(path.read_text(encoding="utf-8")) == _data_lines(text):
            return True
    except (OSError, UnicodeDecodeError):
        pass
    if not force:
        raise OutputError(f"{path}: already holds another {what}; --force replaces it")
    return False


def write_if_new(path: Path, text: str, force: bool, what: str) -> bool:
    """Write `text` to `path` (atomically) unless it holds exactly that already; a file with other
    content is replaced only with `force`. Returns whether it was written."""
    path = Path(path)
    if holds_already(path, text, force, what):
        return False
    ensure_writable_dir(path.parent)
    write_text_atomic(path, text)
    return True


# ---------------------------------------------------------------- dataset definitions


@dataclass(frozen=True)
class DefinedRecording:
    """A recording as the definition lists it: name, split, trajectory path relative to the root."""

    name: str
    split: str
    trajectory: str


def _toml_string(text: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped."""
    escaped = "".join(f"\\u{ord(char):04x}" if ord(char) < 0x20 or ord(char) == 0x7F
                      else "\\" + char if char in '"\\' else char for char in text)
    return f'"{escaped}"'


def definition_text(name: str, views_dir: str, recordings: Sequence[DefinedRecording],
                    radius_m: float = DEFAULT_RADIUS_M, max_heading_diff_deg: float | None = None,
                    note: str = "") -> str:
    """A dataset definition (TOML) using every frame of every recording (sampling "all"), checked
    by the very reader `vidvpr manifest` uses before it is returned."""
    lines = [f"# {line}" for line in note.splitlines()] + [
        "[dataset]", f"name = {_toml_string(name)}", f"views_dir = {_toml_string(views_dir)}", "",
        "[sampling]", 'database = "all"', 'query = "all"', "",
        "[positives]", f"radius_m = {_number(radius_m)}"]
    if max_heading_diff_deg is not None:
        lines.append(f"max_heading_diff_deg = {_number(max_heading_diff_deg)}")
    for rec in recordings:
        lines += ["", "[[recordings]]", f"name = {_toml_string(rec.name)}", f"split = {_toml_string(rec.split)}",
                  f"trajectory = {{ path = {_toml_string(rec.trajectory)}, format = \"csv-xy\" }}"]
    text = "\n".join(lines) + "\n"
    parse_definition(tomllib.loads(text), "the definition vidvpr import writes", Path("."))
    return text
