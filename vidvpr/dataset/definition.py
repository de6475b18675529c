"""Dataset definitions: which recordings form the database and the queries, their trajectories and
views, and the dataset-wide parameters, read from TOML (manifests/README.md) or command-line options.

Every path in a definition is relative to the dataset root and must stay inside it
(`resolve_inside`): ``..`` escapes, absolute paths elsewhere and symlinks leading out are rejected.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidvpr.core.errors import BadInput
from vidvpr.dataset.positives import DEFAULT_RADIUS_M, SamplingRule, check_max_heading_diff, check_radius, parse_sampling

SPLITS = ("database", "query")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")  # recording and view names


# ---------------------------------------------------------------- names and paths


def check_name(name: Any, what: str, source: str) -> str:
    """A recording or view name usable in ids and file names (letters, digits, . _ + -)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise BadInput(f"{source}: {what} {name!r} must be 1-100 letters, digits, '.', '_', '+' or '-' "
                       "(starting with a letter or digit)")
    return name


def resolve_inside(root: Path, path: str | Path, what: str, source: str) -> tuple[Path, str]:
    """(absolute path, path relative to `root` in POSIX form) of `path`, which must lie in `root`.

    Relative paths are taken from `root`. Rejected with BadInput: empty paths, paths that
    leave the root (``..``, absolute paths elsewhere) and symlinks resolving outside it.
    """
    root_abs = Path(root).resolve()
    text = str(path)
    if not text.strip():
        raise BadInput(f"{source}: {what} is empty")
    candidate = Path(os.path.normpath(root_abs / Path(text)))  # absolute `path` replaces root_abs
    if not candidate.is_relative_to(root_abs):
        raise BadInput(f"{source}: {what} {text!r} is outside the dataset root {root_abs}")
    if not candidate.resolve().is_relative_to(root_abs):
        raise BadInput(f"{source}: {what} {text!r} leads outside the dataset root {root_abs} (symlink)")
    return candidate, candidate.relative_to(root_abs).as_posix()


# ---------------------------------------------------------------- the dataset definition


@dataclass(frozen=True)
class TrajectorySpec:
    """A recording's trajectory file (path relative to the dataset root) and reader options."""

    path: str
    format: str = "auto"
    time_offset_s: float = 0.0  # trajectory time = video time + time_offset_s
    axes: str | None = None  # tum, keyframes-json: "xy" or "xz"
    fps: float | None = None  # keyframes-json
    scale: float | None = None  # tum, keyframes-json: metres per SLAM unit


@dataclass(frozen=True)
class RecordingSpec:
    """One recording: its split, sliced views and trajectory."""

    name: str
    split: str
    trajectory: TrajectorySpec
    views_dir: str = "views"  # holds <recording>/<view>.mp4 + .json, relative to the root
    views: tuple[str, ...] | None = None  # None: every view found


@dataclass(frozen=True)
class ManifestConfig:
    """Dataset-wide parameters, each default written once."""

    database_sampling: str = "1m"
    query_sampling: str = "1m"
    radius_m: float = DEFAULT_RADIUS_M
    max_heading_diff_deg: float | None = None  # None: positives by distance only
    strict: bool = False  # error (instead of dropping) on frames outside the trajectory
    utm_zone: int | None = None  # force geographic trajectories into this UTM zone

    def sampling(self, split: str) -> SamplingRule:
        return parse_sampling(self.database_sampling if split == "database" else self.query_sampling,
                              f"{split} sampling")


@dataclass(frozen=True)
class DatasetDefinition:
    """Recordings and parameters of one dataset; `source` is the TOML file it came from, if any."""

    name: str
    root: Path
    recordings: tuple[RecordingSpec, ...]
    config: ManifestConfig = field(default_factory=ManifestConfig)
    source: str = "command line"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "root": str(self.root), "source": self.source,
                "config": dataclasses.asdict(self.config),
                "recordings": [dataclasses.asdict(rec) for rec in self.recordings]}


TOML_KEYS: dict[str, tuple[str, ...]] = {
    "": ("dataset", "sampling", "positives", "recordings"),
    "dataset": ("name", "root", "views_dir", "utm_zone", "strict"),
    "sampling": ("database", "query"),
    "positives": ("radius_m", "max_heading_diff_deg"),
    "recordings": ("name", "split", "trajectory", "views_dir", "views"),
    "trajectory": tuple(f.name for f in dataclasses.fields(TrajectorySpec)),
}
NUMBER = (int, float)


def _table(source: str, where: str, value: Any, keys: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{source}: {where} must be a table")
    unknown = sorted(set(value) - set(TOML_KEYS[keys]))
    if unknown:
        raise BadInput(f"{source}: unknown key {unknown[0]!r} in {where or 'the top level'}; "
                       f"allowed: {', '.join(TOML_KEYS[keys])}")
    return value


TYPE_NAMES = {NUMBER: "number", (str,): "string", (bool,): "boolean", (int,): "integer", (list,): "list"}


def _typed(source: str, where: str, table: dict[str, Any], key: str, types: tuple[type, ...], default: Any) -> Any:
    """table[key] (or `default` when absent), which must be of `types` (a bool is not a number)."""
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise BadInput(f"{source}: {where}.{key} must be a {TYPE_NAMES[types]}, got {value!r}")
    return value


def _trajectory_spec(source: str, where: str, value: Any) -> TrajectorySpec:
    if isinstance(value, str):
        return TrajectorySpec(path=value)
    table = _table(source, where, value, "trajectory")
    if "path" not in table:
        raise BadInput(f"{source}: {where} needs a path")
    return TrajectorySpec(
        path=_typed(source, where, table, "path", (str,), None),
        format=_typed(source, where, table, "format", (str,), "auto"),
        time_offset_s=float(_typed(source, where, table, "time_offset_s", NUMBER, 0.0)),
        axes=_typed(source, where, table, "axes", (str,), None),
        fps=_typed(source, where, table, "fps", NUMBER, None),
        scale=_typed(source, where, table, "scale", NUMBER, None),
    )


def parse_definition(data: dict[str, Any], source: str, root: Path) -> DatasetDefinition:
    """A definition from parsed TOML (`root` already resolved); BadInput names `source` and the key."""
    _table(source, "", data, "")
    dataset = _table(source, "[dataset]", data.get("dataset", {}), "dataset")
    sampling = _table(source, "[sampling]", data.get("sampling", {}), "sampling")
    positives = _table(source, "[positives]", data.get("positives", {}), "positives")
    defaults = ManifestConfig()
    config = ManifestConfig(
        database_sampling=str(_typed(source, "sampling", sampling, "database", (str,), defaults.database_sampling)),
        query_sampling=str(_typed(source, "sampling", sampling, "query", (str,), defaults.query_sampling)),
        radius_m=_typed(source, "positives", positives, "radius_m", NUMBER, defaults.radius_m),
        max_heading_diff_deg=_typed(source, "positives", positives, "max_heading_diff_deg", NUMBER, None),
        strict=_typed(source, "dataset", dataset, "strict", (bool,), defaults.strict),
        utm_zone=_typed(source, "dataset", dataset, "utm_zone", (int,), None),
    )
    views_dir = _typed(source, "dataset", dataset, "views_dir", (str,), "views")
    entries = data.get("recordings")
    if not isinstance(entries, list) or not entries:
        raise BadInput(f"{source}: no [[recordings]]; list at least one database and one query recording")
    recordings = []
    for k, entry in enumerate(entries, 1):
        where = f"recordings[{k}]"
        table = _table(source, where, entry, "recordings")
        for key in ("name", "split", "trajectory"):
            if key not in table:
                raise BadInput(f"{source}: {where} needs a {key}")
        views = _typed(source, where, table, "views", (list,), None)
        if views is not None:
            views = tuple(check_name(view, f"{where}.views entry", source) for view in views)
        recordings.append(RecordingSpec(
            name=check_name(table["name"], f"{where}.name", source),
            split=_typed(source, where, table, "split", (str,), None),
            trajectory=_trajectory_spec(source, f"{where}.trajectory", table["trajectory"]),
            views_dir=_typed(source, where, table, "views_dir", (str,), views_dir),
            views=views,
        ))
    name = _typed(source, "dataset", dataset, "name", (str,), Path(source).stem)
    return DatasetDefinition(name=name, root=root, recordings=tuple(recordings), config=config, source=source)


def load_definition(path: str | Path, root: str | Path | None = None) -> DatasetDefinition:
    """Read a dataset definition TOML. `root` overrides its ``[dataset] root`` (which is relative
    to the TOML file's folder, and defaults to that folder)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: definition file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML ({exc})") from None
    dataset = data.get("dataset", {})
    in_file = dataset.get("root", ".") if isinstance(dataset, dict) else "."
    if not isinstance(in_file, str):
        raise BadInput(f"{path}: dataset.root must be a string, got {in_file!r}")
    base = Path(root) if root is not None else path.parent / in_file
    if isinstance(dataset, dict):
        data = {**data, "dataset": {k: v for k, v in dataset.items() if k != "root"}}
    return parse_definition(data, str(path), base.resolve())


def parse_recording_option(value: str, option: str) -> tuple[str, str]:
    """'REC=TRAJECTORY' → (recording, trajectory path)."""
    name, sep, trajectory_path = value.partition("=")
    if not sep or not name or not trajectory_path:
        raise BadInput(f"{option} {value!r}: expected RECORDING=TRAJECTORY, e.g. walk1=trajectories/walk1.csv")
    return check_name(name, "recording", option), trajectory_path


def definition_from_options(
    root: str | Path, database: Sequence[str], query: Sequence[str], *, views_dir: str | Path | None = None,
    trajectory: TrajectorySpec | None = None, name: str = "dataset",
) -> DatasetDefinition:
    """A definition from `--database REC=TRAJ` / `--query REC=TRAJ` options.

    Paths are ordinary paths (relative to the working directory) and must lie inside `root`;
    `trajectory` gives the reader options (its path is ignored) shared by all recordings.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise BadInput(f"{root}: dataset root (--root) is not a folder")
    template = trajectory or TrajectorySpec(path="")
    views_rel = resolve_inside(root, Path(views_dir or root / "views").resolve(), "--views-dir", "command line")[1]
    recordings = []
    for split, values in (("database", database), ("query", query)):
        for value in values:
            rec, traj_path = parse_recording_option(value, f"--{split}")
            traj_rel = resolve_inside(root, Path(traj_path).resolve(), f"--{split} trajectory", "command line")[1]
            recordings.append(RecordingSpec(rec, split, dataclasses.replace(template, path=traj_rel), views_rel))
    return DatasetDefinition(name=name, root=root, recordings=tuple(recordings))


def with_overrides(definition: DatasetDefinition, **overrides: Any) -> DatasetDefinition:
    """The definition with config fields replaced by the overrides that are not None."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return dataclasses.replace(definition, config=dataclasses.replace(definition.config, **given))


def validate_definition(definition: DatasetDefinition) -> dict[str, SamplingRule]:
    """Check parameters and recordings before any work; the sampling rule per split."""
    source, config = definition.source, definition.config
    check_radius(config.radius_m, "radius (--radius, [positives] radius_m)")
    check_max_heading_diff(config.max_heading_diff_deg, "max heading difference (--max-heading-diff, "
                           "[positives] max_heading_diff_deg)")
    if config.utm_zone is not None and not 1 <= config.utm_zone <= 60:
        raise BadInput(f"{source}: UTM zone {config.utm_zone} is outside 1-60")
    rules = {split: config.sampling(split) for split in SPLITS}
    names = [rec.name for rec in definition.recordings]
    for rec in definition.recordings:
        check_name(rec.name, "recording name", source)
        if names.count(rec.name) > 1:
            raise BadInput(f"{source}: recording {rec.name!r} is listed twice")
        if rec.split not in SPLITS:
            raise BadInput(f"{source}: recording {rec.name!r}: unknown split {rec.split!r}; use database or query")
        if not math.isfinite(rec.trajectory.time_offset_s):
            raise BadInput(f"{source}: recording {rec.name!r}: time_offset_s must be finite")
    for split in SPLITS:
        if split not in {rec.split for rec in definition.recordings}:
            raise BadInput(f"{source}: no {split} recording; a dataset needs both a database and queries")
    return rules
