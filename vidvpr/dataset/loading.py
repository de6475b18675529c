"""A manifest folder read back: manifest.json, then each data file, checked against the size and
content hash manifest.json recorded of it before it is read, then typed rows and positives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file
from vidvpr.dataset.records import (
    CSV_FILES,
    DATA_FILES,
    MANIFEST_FILE,
    POSITIVES_FILE,
    ManifestRecord,
    ManifestRow,
    PositivesFile,
)
from vidvpr.dataset.rows import read_rows


def changed_output(folder: Path, meta: ManifestRecord) -> str | None:
    """What is wrong with the folder's data files against the size and content hash manifest.json
    recorded of each ("<file>: <problem>"), or None when every one is as written."""
    for name in DATA_FILES:
        path, record = folder / name, meta.outputs.get(name)
        if record is None:
            return f"{folder / MANIFEST_FILE}: records no size and hash of {name}"
        if not path.is_file():
            return f"{path}: missing (listed in {MANIFEST_FILE})"
        size = path.stat().st_size
        if size != record.bytes:
            return f"{path}: {size} bytes, but {MANIFEST_FILE} recorded {record.bytes}: changed or cut short"
        if sha256_file(path) != record.hash:
            return f"{path}: content differs from the hash {MANIFEST_FILE} recorded: changed since it was written"
    return None


@dataclass
class Manifest:
    """A manifest folder read back: rows per split, positives as database indices per query."""

    directory: Path
    root: Path
    meta: ManifestRecord
    database: list[ManifestRow]
    queries: list[ManifestRow]
    positives: list[np.ndarray]

    def video_path(self, row: ManifestRow) -> Path:
        """Absolute path of a row's view video (checked to lie inside the root when loaded)."""
        return self.root / row.video

    @property
    def matched_queries(self) -> list[int]:
        """Indices of queries with at least one positive (the ones recall is computed over)."""
        return [i for i, hits in enumerate(self.positives) if len(hits)]


def _check_videos(folder: Path, meta: ManifestRecord, database: list[ManifestRow], queries: list[ManifestRow]) -> None:
    """Each row's video is the one manifest.json lists for its recording and view: the readers take a
    view's frames from one video, so a row naming another would silently be given the wrong frames."""
    listed = {(rec.name, view.view): view.video.path for rec in meta.inputs for view in rec.views}
    for split, rows in (("database", database), ("query", queries)):
        for row in rows:
            video = listed.get((row.recording, row.view))
            if video != row.video:
                expected = f"it lists {video!r}" if video is not None else "it lists no such view"
                raise BadInput(f"{folder / CSV_FILES[split]}: row {row.id}: video {row.video!r} is not the one "
                               f"{MANIFEST_FILE} records for view {row.recording}/{row.view} ({expected})")


def load_manifest(manifest_dir: str | Path, root: str | Path | None = None) -> Manifest:
    """Read a manifest folder; `root` overrides the dataset root recorded in manifest.json.

    Each data file is checked against the size and hash manifest.json recorded before it is read
    (BadInput naming the file that changed)."""
    folder = Path(manifest_dir)
    if not folder.is_dir():
        raise BadInput(f"{folder}: {'is a file, not' if folder.exists() else 'not found; expected'} a manifest folder "
                       "(vidvpr manifest --out)")
    if not (folder / MANIFEST_FILE).is_file():
        inside = sorted(sub for sub in folder.glob(f"*/{MANIFEST_FILE}"))
        if inside:  # a dataset (or demo) folder given for the manifest folder it holds
            raise BadInput(f"{folder}: not a manifest folder (no {MANIFEST_FILE}); did you mean {inside[0].parent}?")
        raise BadInput(f"{folder}: not a finished vidvpr manifest (no {MANIFEST_FILE}); run vidvpr manifest --out {folder}")
    meta = ManifestRecord.load(folder / MANIFEST_FILE)
    if root is None and (Path(meta.root).is_absolute() or not meta.root.isprintable()):
        raise BadInput(f"{folder / MANIFEST_FILE}: records the dataset root as {meta.root!r}, which must be a "
                       "path relative to the manifest folder; pass --root")
    base = Path(root) if root is not None else folder / meta.root
    if not base.is_dir():
        raise BadInput(f"{folder}: dataset root {str(base)!r} not found; pass --root")
    base = base.resolve()
    changed = changed_output(folder, meta)
    if changed is not None:  # checked before reading: a file cut short can still parse, and blame another
        raise BadInput(f"{changed}; rebuild the manifest (vidvpr manifest --out {folder})")
    database = read_rows(folder / CSV_FILES["database"], "database", base)
    queries = read_rows(folder / CSV_FILES["query"], "query", base)
    _check_videos(folder, meta, database, queries)
    gt = PositivesFile.load(folder / POSITIVES_FILE)
    recorded = (meta.parameters.get("radius_m"), meta.parameters.get("max_heading_diff_deg"))
    if (gt.radius_m, gt.max_heading_diff_deg) != recorded:
        raise BadInput(f"{folder / POSITIVES_FILE}: positives within {gt.radius_m:g} m (heading limit "
                       f"{gt.max_heading_diff_deg}), but {MANIFEST_FILE} records {recorded[0]} m ({recorded[1]}); "
                       f"rebuild the manifest (vidvpr manifest --out {folder})")
    index = {row.id: i for i, row in enumerate(database)}
    positives = []
    for row in queries:
        ids = gt.positives.get(row.id)
        unknown = [x for x in ids or [] if x not in index]
        if ids is None or unknown:
            problem = "no entry" if ids is None else f"unknown database id {unknown[0]!r}"
            raise BadInput(f"{folder / POSITIVES_FILE}: query {row.id}: {problem}")
        if len(set(ids)) != len(ids) or len(ids) != row.num_positives:
            problem = (f"database id {next(x for x in ids if ids.count(x) > 1)!r} listed twice" if len(set(ids)) != len(ids)
                       else f"{len(ids)} positives, but {CSV_FILES['query']} says {row.num_positives}")
            raise BadInput(f"{folder / POSITIVES_FILE}: query {row.id}: {problem}")
        positives.append(np.asarray([index[x] for x in ids], dtype=np.int64))
    return Manifest(folder, base, meta, database, queries, positives)
