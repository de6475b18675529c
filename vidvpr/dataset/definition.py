"""Dataset definitions: which recordings form the database and the queries, their trajectories and
views, and the dataset-wide parameters. One pydantic model (`DefinitionFile`) is the TOML's
shape: it validates, words the errors, supplies the defaults `--help` shows, and generates
``manifests/schema.json`` (see `vidvpr.dataset.schema`).

Every path in a definition is relative to the dataset root and must stay inside it
(`resolve_inside`): ``..`` escapes, absolute paths elsewhere and symlinks leading out are rejected.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from anyascii import anyascii
from pydantic import ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from vidvpr.core.errors import BadInput
from vidvpr.core.records import Strict, read_toml_file, validate_data, validation_problem
from vidvpr.dataset.sampling import SamplingRule, parse_sampling

SPLITS = ("database", "query")
NAME_REGEX = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$"  # recording and view names
NAME_PATTERN = re.compile(NAME_REGEX)
DEFAULT_RADIUS_M = 25.0  # the outdoor convention of the VPR benchmarks

Name = Annotated[str, StringConstraints(pattern=NAME_REGEX)]
TrajectoryFormat = Literal["auto", "csv-xy", "csv-latlon", "tum", "gpx", "keyframes-json", "insv"]


class DefinitionPart(Strict):
    """TOML tables: strict types (a boolean is not a number, a string not a list), unknown keys refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, frozen=True)


class TrajectorySpec(DefinitionPart):
    """A recording's trajectory file (path relative to the dataset root) and reader options."""

    path: str = Field(min_length=1, description="trajectory file, relative to the dataset root")
    format: TrajectoryFormat = Field("auto", description="auto: by extension, then content")
    time_offset_s: float = Field(0.0, description="trajectory time = video time + time_offset_s")
    axes: Literal["xy", "xz"] | None = Field(None, description="SLAM axes of tum/keyframes-json poses (default xy)")
    fps: float | None = Field(None, gt=0, description="frame rate of keyframes-json frame numbers")
    scale: float | None = Field(None, gt=0, description="metres per SLAM unit (tum, keyframes-json; default 1)")


class RecordingSpec(DefinitionPart):
    """One recording: its split, sliced views and trajectory."""

    name: Name
    split: Literal["database", "query"]
    # a path alone, or a table with the reader options; always a TrajectorySpec once read
    trajectory: TrajectorySpec | Annotated[str, Field(min_length=1)]
    views_dir: str | None = Field(None, min_length=1, description="overrides [dataset] views_dir")
    views: tuple[Name, ...] | None = Field(None, min_length=1, description="a subset of the sliced views")

    @field_validator("trajectory", mode="after")
    @classmethod
    def _path_alone(cls, value: TrajectorySpec | str) -> TrajectorySpec:
        return TrajectorySpec(path=value) if isinstance(value, str) else value


class DatasetSection(DefinitionPart):
    name: str | None = Field(None, description="default: the definition file's name")
    root: str = Field(".", description="dataset root, relative to the definition file; --root overrides")
    views_dir: str = Field("views", min_length=1, description="holds <recording>/<view>.mp4 + .json")
    utm_zone: int | None = Field(None, ge=1, le=60, description="read lat/lon trajectories into this UTM zone")
    strict: bool = Field(False, description="error on frames outside the trajectory instead of dropping them")
    shared_local_frame: bool = Field(False, description="local trajectories of different formats share one "
                                                        "metric frame (e.g. SLAM aligned to a survey)")


class SamplingSection(DefinitionPart):
    database: str = Field("1m", description="Nf (every N frames), Ts (seconds), Dm (metres) or all")
    query: str = Field("1m", description="Nf (every N frames), Ts (seconds), Dm (metres) or all")

    @field_validator("database", "query")
    @classmethod
    def _rule(cls, value: str) -> str:
        try:
            parse_sampling(value)
        except BadInput as exc:
            raise ValueError(str(exc)) from None
        except OverflowError:  # a count of frames beyond the float range ('1000…000f')
            raise ValueError(f"sampling rule {value!r} is out of range") from None
        return value


class PositivesSection(DefinitionPart):
    radius_m: float = Field(DEFAULT_RADIUS_M, gt=0, description="database rows within this many metres")
    max_heading_diff_deg: float | None = Field(None, gt=0, le=180,
                                               description="and facing within this many degrees (default: any)")


class DefinitionFile(DefinitionPart):
    """The dataset definition TOML (manifests/README.md)."""

    dataset: DatasetSection = DatasetSection()
    sampling: SamplingSection = SamplingSection()
    positives: PositivesSection = PositivesSection()
    recordings: tuple[RecordingSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _recordings(self) -> DefinitionFile:
        names = [rec.name for rec in self.recordings]
        repeated = next((name for name in names if names.count(name) > 1), None)
        if repeated:
            raise ValueError(f"recording {repeated!r} is listed twice")
        missing = [split for split in SPLITS if split not in {rec.split for rec in self.recordings}]
        if missing:
            raise ValueError(f"no {missing[0]} recording; a dataset needs both a database and queries")
        return self


@dataclass(frozen=True)
class DatasetDefinition:
    """A definition with its dataset root resolved; `source` is the TOML file it came from, if any."""

    spec: DefinitionFile
    root: Path
    source: str = "command line"

    @property
    def name(self) -> str:
        return self.spec.dataset.name or (Path(self.source).stem if self.source != "command line" else "dataset")

    @property
    def recordings(self) -> tuple[RecordingSpec, ...]:
        return self.spec.recordings

    def views_dir(self, rec: RecordingSpec) -> str:
        return rec.views_dir or self.spec.dataset.views_dir

    def sampling(self, split: str) -> SamplingRule:
        return parse_sampling(getattr(self.spec.sampling, split), f"{split} sampling")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "root": str(self.root), "source": self.source,
                "spec": self.spec.model_dump(mode="json")}


# ---------------------------------------------------------------- names and paths


def check_name(name: Any, what: str, source: str) -> str:
    """A recording or view name usable in ids and file names (ASCII letters, digits, . _ + -)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise BadInput(f"{source}: {what} {name!r} must be 1-100 ASCII letters, digits, '.', '_', '+' or '-' "
                       "(starting with a letter or digit)")
    return name


def usable_name(text: str) -> str:
    """`text` made a usable recording name (`check_name`): transliterated to ASCII (é → e, ß → ss,
    北京 → BeiJing; anyascii), each run of other characters → '_', cut to 100 characters; "recording"
    when nothing is left. A usable name is kept as it is. So a file straight from a camera or a phone
    ("VID é 1.insv") names its recording: `vidvpr slice` and `vidvpr import` use it on the file name."""
    if NAME_PATTERN.fullmatch(text):
        return text
    replaced = re.sub(r"[^A-Za-z0-9._+-]+", "_", anyascii(text))
    trimmed = re.sub(r"^[^A-Za-z0-9]+", "", replaced)[:100].rstrip("._+-")
    return trimmed or "recording"


def resolve_inside(root: Path, path: str | Path, what: str, source: str) -> tuple[Path, str]:
    """(absolute path, path relative to `root` in POSIX form) of `path`, which must lie in `root`.

    Relative paths are taken from `root`. Rejected with BadInput: empty paths, paths that
    leave the root (``..``, absolute paths elsewhere) and symlinks resolving outside it.
    """
    root_abs = Path(root).resolve()
    text = str(path)
    if not text.strip() or "\x00" in text:
        raise BadInput(f"{source}: {what} is empty or not a path")
    candidate = Path(os.path.normpath(root_abs / Path(text)))  # absolute `path` replaces root_abs
    if not candidate.is_relative_to(root_abs):
        raise BadInput(f"{source}: {what} {text!r} is outside the dataset root {root_abs}")
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise BadInput(f"{source}: {what} {text!r} cannot be resolved ({exc})") from None
    if not resolved.is_relative_to(root_abs):
        raise BadInput(f"{source}: {what} {text!r} leads outside the dataset root {root_abs} (symlink)")
    return candidate, candidate.relative_to(root_abs).as_posix()


# ---------------------------------------------------------------- reading


def parse_definition(data: Any, source: str, root: Path) -> DatasetDefinition:
    """A definition from parsed TOML (`root` already resolved); BadInput names `source` and the key."""
    return DatasetDefinition(spec=validate_data(DefinitionFile, data, source), root=root, source=source)


def load_definition(path: str | Path, root: str | Path | None = None) -> DatasetDefinition:
    """Read a dataset definition TOML. `root` overrides its ``[dataset] root`` (which is relative
    to the TOML file's folder, and defaults to that folder)."""
    path = Path(path)
    data = read_toml_file(path, "definition file")
    definition = parse_definition(data, str(path), Path("."))
    base = Path(root) if root is not None else path.parent / definition.spec.dataset.root
    try:
        resolved = base.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise BadInput(f"{path}: dataset root {str(base)!r} cannot be resolved ({exc})") from None
    return DatasetDefinition(spec=definition.spec, root=resolved, source=str(path))


def parse_recording_option(value: str, option: str) -> tuple[str, str]:
    """'REC=TRAJECTORY' → (recording, trajectory path)."""
    name, sep, trajectory_path = value.partition("=")
    if not sep or not name or not trajectory_path:
        raise BadInput(f"{option} {value!r}: expected RECORDING=TRAJECTORY, e.g. walk1=trajectories/walk1.csv")
    return check_name(name, "recording", option), trajectory_path


READER_OPTIONS = {"format": "--trajectory-format", "time_offset_s": "--time-offset", "axes": "--axes",
                  "scale": "--scale", "fps": "--keyframe-fps"}  # TrajectorySpec field -> `vidvpr manifest` option


def definition_from_options(
    root: str | Path, database: Sequence[str], query: Sequence[str], *, views_dir: str | Path | None = None,
    trajectory: dict[str, Any] | None = None, name: str = "dataset",
) -> DatasetDefinition:
    """A definition from `--database REC=TRAJ` / `--query REC=TRAJ` options.

    Paths are ordinary paths (relative to the working directory) and must lie inside `root`;
    `trajectory` gives the reader options (format, time_offset_s, ...) shared by all recordings.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise BadInput(f"{root}: dataset root (--root) is not a folder")
    for key, value in (trajectory or {}).items():  # checked one by one, to name the option at fault
        try:
            TrajectorySpec.model_validate({"path": "-", key: value})
        except ValidationError as exc:
            raise BadInput(f"{READER_OPTIONS.get(key, key)}: {validation_problem(exc)}") from None
    views_rel = resolve_inside(root, Path(views_dir or root / "views").resolve(), "--views-dir", "command line")[1]
    recordings = []
    for split, values in (("database", database), ("query", query)):
        for value in values:
            rec, traj_path = parse_recording_option(value, f"--{split}")
            try:
                traj_rel = resolve_inside(root, Path(traj_path).resolve(), f"--{split} trajectory", "command line")[1]
            except BadInput as exc:
                if Path(traj_path).is_absolute() or not (root / traj_path).is_file():
                    raise
                raise BadInput(f"{exc}; command-line paths are from the working directory: did you mean "
                               f"{root / traj_path}?") from None
            recordings.append({"name": rec, "split": split, "trajectory": {**(trajectory or {}), "path": traj_rel}})
    data = {"dataset": {"name": name, "views_dir": views_rel}, "recordings": recordings}
    return parse_definition(data, "command line", root)


OVERRIDE_SECTIONS = {"database_sampling": ("sampling", "database"), "query_sampling": ("sampling", "query"),
                     "radius_m": ("positives", "radius_m"),
                     "max_heading_diff_deg": ("positives", "max_heading_diff_deg"),
                     "utm_zone": ("dataset", "utm_zone"), "strict": ("dataset", "strict"),
                     "shared_local_frame": ("dataset", "shared_local_frame")}
OVERRIDE_OPTIONS = {"database_sampling": "--database-sampling", "query_sampling": "--query-sampling",
                    "radius_m": "--radius", "max_heading_diff_deg": "--max-heading-diff", "utm_zone": "--utm-zone",
                    "strict": "--strict", "shared_local_frame": "--shared-local-frame"}


def with_overrides(definition: DatasetDefinition, **overrides: Any) -> DatasetDefinition:
    """The definition with command-line values (those not None) in place of its own, re-validated."""
    data = definition.spec.model_dump(mode="json")
    for key, value in overrides.items():
        if value is not None:
            section, field = OVERRIDE_SECTIONS[key]
            data[section][field] = value
    try:
        spec = DefinitionFile.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        location = tuple(exc.errors()[0].get("loc", ()))[:2]
        option = next((OVERRIDE_OPTIONS[key] for key, where in OVERRIDE_SECTIONS.items()
                       if where == location and overrides.get(key) is not None), None)
        raise BadInput(f"{option or definition.source}: {validation_problem(exc)}") from None
    return DatasetDefinition(spec=spec, root=definition.root, source=definition.source)


def reader_options_default(field: str) -> Any:
    """The default of a trajectory reader option, for `--help` texts."""
    return TrajectorySpec.model_fields[field].default

