"""What a report is made of, found and checked: the study (read, or computed from eval folders),
its eval folders, the manifest and the encode folder(s).

With a study folder, everything else is discovered from what it recorded (each eval folder's
results.json names its manifest and encode folder); options override. Inputs given explicitly must
exist (BadInput); discovered ones that are gone become a note in the report.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidvpr.core.errors import BadInput
from vidvpr.core.records import FileRecord, read_json_object, read_text_file
from vidvpr.dataset.manifest import Manifest, load_manifest
from vidvpr.encoding.rdplot import PLOT_NAME
from vidvpr.encoding.table import TABLE_JSON_NAME, TABLE_NAME
from vidvpr.evaluate.results import RESULTS_JSON, trained_on_notes
from vidvpr.study.inputs import LoadedEval, load_evals
from vidvpr.study.records import STUDY_JSON, StudyRecord
from vidvpr.study.stage import StudyConfig, compute_study

LOG = logging.getLogger(__name__)


@dataclass
class EncodeFolder:
    """An encode folder as the report shows it: its table rows, run record and RD plot."""

    path: Path
    rows: list[dict[str, str]]
    table: dict[str, Any] | None
    rd_png: bytes | None
    files: list[FileRecord]


@dataclass
class ReportInputs:
    study: StudyRecord
    study_file: FileRecord | None  # None: computed for this report
    evals: list[LoadedEval]
    manifest: Manifest | None
    encodes: list[EncodeFolder]
    notes: list[str] = field(default_factory=list)


def _load_study(folder: Path) -> tuple[StudyRecord, FileRecord]:
    path = folder / STUDY_JSON
    if (folder / RESULTS_JSON).is_file() and not path.is_file():
        raise BadInput(f"{folder}: an eval folder, not a study folder: report on it with vidvpr report --eval {folder} "
                       f"--out REPORT.html, or make its study first with vidvpr study {folder} --out STUDY")
    if not folder.is_dir() or not path.is_file():
        inside = [sub.parent for sub in sorted(folder.glob(f"*/{STUDY_JSON}")) if _is_study(sub)]
        if inside:  # a demo's folder given for its bitrate study
            raise BadInput(f"{folder}: not a study folder (no {STUDY_JSON}); did you mean {inside[0]}?")
        raise BadInput(f"{folder}: not a study folder (no {STUDY_JSON}; vidvpr study EVAL... --out {folder} makes one)")
    return StudyRecord.load(path), FileRecord.of(path)


def _is_study(path: Path) -> bool:
    """Whether `path` is a `vidvpr study` record (`vidvpr demo study` writes a study.json of its own)."""
    try:
        return read_json_object(path).get("schema") == StudyRecord.SCHEMA
    except BadInput:
        return False


def _check_unchanged(study: StudyRecord, evals: Sequence[LoadedEval]) -> None:
    recorded = {Path(i.eval_dir).resolve(): i.results.hash for i in study.inputs}
    for e in evals:
        was = recorded.get(e.folder.resolve())
        if was is not None and was != e.file.hash:
            raise BadInput(f"{e.json_path}: changed since the study was made; re-run vidvpr study")


def _run_record(path: Path) -> dict[str, Any]:
    """encodes.json as the report uses it (any schema): an object, its config an object and its
    command a list of strings when they are there; BadInput naming the file otherwise."""
    table = read_json_object(path, "vidvpr encode table")
    if not isinstance(table.get("config", {}), dict):
        raise BadInput(f"{path}: config is not an object")
    command = table.get("command")
    if command is not None and not (isinstance(command, list) and all(isinstance(arg, str) for arg in command)):
        raise BadInput(f"{path}: command is not a list of strings")
    return table


def read_encode_folder(path: Path) -> EncodeFolder:
    """encodes.csv rows (any columns), encodes.json's run record when readable, rd.png."""
    csv_path = path / TABLE_NAME
    if not csv_path.is_file():
        raise BadInput(f"{path}: not an encode folder (no {TABLE_NAME}; vidvpr encode --out)")
    try:  # a row short of the header gets empty cells, cells beyond it are dropped
        rows = [{key: value for key, value in row.items() if key is not None}
                for row in csv.DictReader(io.StringIO(read_text_file(csv_path, "vidvpr encode table"), newline=""), restval="")]
    except csv.Error as exc:
        raise BadInput(f"{csv_path}: not a readable encode table ({exc})") from None
    files = [FileRecord.of(csv_path)]
    table = None
    if (path / TABLE_JSON_NAME).is_file():
        table = _run_record(path / TABLE_JSON_NAME)
        files.append(FileRecord.of(path / TABLE_JSON_NAME))
    rd = path / PLOT_NAME
    return EncodeFolder(path, rows, table, rd.read_bytes() if rd.is_file() else None, files)


def gather(study_dir: Path | None, eval_dirs: Sequence[Path], manifest_dir: Path | None, enc_dirs: Sequence[Path],
           config: StudyConfig | None = None) -> ReportInputs:
    """Every input of a report; the study is computed in memory when no study folder is given."""
    notes: list[str] = []
    if study_dir is not None:
        study, study_file = _load_study(Path(study_dir))
        recorded = [Path(i.eval_dir) for i in study.inputs]
        evals = load_evals(list(eval_dirs) or recorded)
        _check_unchanged(study, evals)
    elif eval_dirs:
        evals = load_evals(eval_dirs)
        study, study_file = compute_study(evals, config or StudyConfig()), None
        notes.append("No study folder was given: the study below was computed for this report "
                     f"({study.method.interpolation} interpolation, recall@{','.join(map(str, study.recall_at))}).")
    else:
        raise BadInput("give a study folder (vidvpr study --out) or eval folders with --eval")
    # the study's folders as recorded: a student that trained on the evaluated videos is said so up front
    for record in study.inputs:
        notes.extend(f"{note} (in {record.eval_dir})" for note in trained_on_notes(record.models))
    manifest = None
    wanted = Path(manifest_dir) if manifest_dir is not None else Path(str(evals[0].results.manifest.get("path", "")))
    if manifest_dir is not None or wanted.is_dir():
        manifest = load_manifest(wanted)
        recorded_files = study.dataset.get("files") or {}
        for name, digest in recorded_files.items():
            if manifest.meta.outputs.get(name) and manifest.meta.outputs[name].hash != digest:
                raise BadInput(f"{wanted}: {name} differs from the one the evaluations used; give the manifest "
                               "they were run on (--manifest)")
    else:
        notes.append(f"The manifest folder {wanted} was not found: the dataset section is left out (pass --manifest).")
    encodes = []
    discovered = list(dict.fromkeys(e.results.enc_dir for e in evals if e.results.enc_dir))
    for path in (list(enc_dirs) or [Path(p) for p in discovered]):
        path = Path(path)
        if not enc_dirs and not (path / "encodes.csv").is_file():
            notes.append(f"The encode folder {path} was not found: its table and plot are left out (pass --enc).")
            continue
        encodes.append(read_encode_folder(path))
    return ReportInputs(study, study_file, evals, manifest, encodes, notes)
