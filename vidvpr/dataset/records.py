"""The files of a manifest folder, each defined once: rows (CSV), positives.json and manifest.json."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import ConfigDict, Field, TypeAdapter

from vidvpr.core.records import FileRecord, Record, Strict
from vidvpr.dataset.definition import NAME_REGEX

CSV_FILES = {"database": "database.csv", "query": "query.csv"}
POSITIVES_FILE = "positives.json"
MANIFEST_FILE = "manifest.json"
DATA_FILES = (*CSV_FILES.values(), POSITIVES_FILE)  # what later stages read (manifest.json describes them)


Name = Annotated[str, Field(pattern=NAME_REGEX.rstrip("$") + r"\Z")]  # \Z: python-re's $ accepts a final \n
Heading = Annotated[float | None, Field(ge=0, lt=360)]
RelativePath = Annotated[str, Field(pattern=r"^(?![/\\])(?!.*(^|/)\.\.(/|$))[^\n]+\Z",
                                    description="relative to the dataset root, never leaving it")]


@dataclass
class ManifestRow:
    """One sampled frame of one view; fields are the CSV columns (see manifests/README.md).

    A plain dataclass, so building millions of rows costs nothing; `ROW` validates a row read
    back from CSV against these annotations, and generates the row's JSON Schema.
    """

    __pydantic_config__ = ConfigDict(
        extra="forbid", allow_inf_nan=False, regex_engine="python-re",
        json_schema_extra={"if": {"properties": {"split": {"const": "query"}}},
                           "then": {"required": ["num_positives"]},
                           "else": {"not": {"required": ["num_positives"]}}})

    id: Annotated[str, Field(pattern=NAME_REGEX.rstrip("$") + "/" + NAME_REGEX.lstrip("^").rstrip("$") + "/[0-9]{6,}\\Z",
                             description="<recording>/<view>/<frame:06d>, unique in the dataset")]
    split: Literal["database", "query"]
    recording: Name
    view: Name
    yaw_deg: Annotated[float, Field(description="view yaw, clockwise from the camera's forward direction")]
    pitch_deg: Annotated[float, Field(ge=-90, le=90)]
    hfov_deg: Annotated[float, Field(gt=0, lt=180)]
    frame: Annotated[int, Field(ge=0, description="frame index in the view video and in every encode cell of it")]
    source_frame: Annotated[int, Field(ge=0)]
    time_s: float
    easting_m: float
    northing_m: float
    utm_zone_number: Annotated[int | None, Field(ge=1, le=60)]
    utm_zone_letter: Annotated[str | None, Field(pattern=r"^[C-HJ-NP-X]\Z")]
    lat_deg: Annotated[float | None, Field(ge=-90, le=90)]
    lon_deg: Annotated[float | None, Field(ge=-180, le=180)]
    camera_heading_deg: Heading
    heading_deg: Heading
    video: RelativePath
    num_positives: Annotated[int | None, Field(ge=0, description="query.csv only")] = None

    def as_dict(self, split: str | None = None) -> dict[str, Any]:
        """The row as CSV/JSON values; database rows have no num_positives."""
        row = dataclasses.asdict(self)
        if (split or self.split) == "database":
            row.pop("num_positives")
        return row


ROW = TypeAdapter(ManifestRow)


def _column_kind(hint: Any) -> str:
    """'int', 'float', 'str', with '?' when the column may be empty."""
    text = str(hint)
    base = "int" if "int" in text else "float" if "float" in text else "str"
    return base + ("?" if "None" in text else "")


#: column -> value kind; "?" marks columns that may be empty (None). num_positives is required in query.csv.
COLUMNS: dict[str, str] = {name: _column_kind(hint).rstrip("?") if name == "num_positives" else _column_kind(hint)
                           for name, hint in get_type_hints(ManifestRow).items()}


def columns(split: str) -> list[str]:
    """CSV header of a split's file."""
    return [name for name in COLUMNS if split == "query" or name != "num_positives"]


class PositivesFile(Record):
    """`positives.json`: each query id's positives (database ids, nearest first)."""

    SCHEMA = "vidvpr.positives/1"
    KIND = "positives file"

    radius_m: float
    max_heading_diff_deg: float | None
    database: str
    query: str
    positives: dict[str, list[str]]
    queries_without_positives: list[str]


class ViewInputRecord(Strict):
    view: str
    yaw_deg: float
    pitch_deg: float
    frames: int
    rows: int
    dropped_frames: int
    video: FileRecord
    sidecar: FileRecord
    params_hash: str
    source_hash: str


class TrajectoryInputRecord(FileRecord):
    format: str
    time_offset_s: float
    samples: int
    time_range_s: list[float]


class RecordingInputRecord(Strict):
    name: str
    split: str
    dropped_frames: int
    views: list[ViewInputRecord]
    trajectory: TrajectoryInputRecord


class UtmZoneRecord(Strict):
    number: int
    letter: str


class ManifestRecord(Record):
    """`manifest.json`, written last: what the folder's files are and everything that made them."""

    SCHEMA = "vidvpr.manifest/2"
    KIND = "vidvpr manifest"

    kind: Literal["manifest"] = "manifest"
    name: str
    root: str  # the dataset root relative to the manifest folder
    root_abs: str
    files: dict[str, str]
    outputs: dict[str, FileRecord]
    utm_zone: UtmZoneRecord | None
    definition: dict[str, Any]
    parameters: dict[str, Any]
    inputs: list[RecordingInputRecord]
    counts: dict[str, int]
    positives: dict[str, Any]
    params_hash: str
    versions: dict[str, str]
    command: list[str]
    elapsed_s: float

    def view_input(self, recording: str, view: str) -> ViewInputRecord | None:
        """What the manifest recorded of one view video (None when it lists no such view)."""
        for rec in self.inputs:
            if rec.name == recording:
                return next((entry for entry in rec.views if entry.view == view), None)
        return None
