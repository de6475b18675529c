"""The eval folders a study reads: loaded, checked to be one dataset, turned into study points.

Every eval folder's ``results.json`` records the hashes of the manifest files it evaluated
(database.csv, query.csv, positives.json) and of its view videos; a study refuses folders whose
hashes differ, since their recalls are not comparable. A model label names one set of weights across the folders
(its fingerprint), and one (model, protocol, cell) result may appear in several folders only with
the same recall. Recalls counted by different conventions for queries without positives
(`vidvpr eval --unmatched-queries`) are not comparable either: a study refuses to mix them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidvpr.core.errors import BadInput
from vidvpr.core.records import FileRecord
from vidvpr.evaluate.results import RESULTS_JSON, EvalResults, EvalRow
from vidvpr.study.curves import Point

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedEval:
    folder: Path
    results: EvalResults
    file: FileRecord

    @property
    def json_path(self) -> Path:
        return self.folder / RESULTS_JSON


@dataclass
class StudyPoints:
    """What the study works on: (model, protocol, point) triples and each system's reference recall."""

    points: list[tuple[str, str, Point]] = field(default_factory=list)
    reference: dict[tuple[str, str], dict[int, float]] = field(default_factory=dict)
    systems: list[tuple[str, str]] = field(default_factory=list)  # (model, protocol) in input order


def load_evals(folders: Sequence[Path]) -> list[LoadedEval]:
    """Each folder's results.json (BadInput naming the folder when there is none), same dataset."""
    if not folders:
        raise BadInput("give at least one eval folder (vidvpr eval --out)")
    loaded = []
    seen: dict[Path, Path] = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise BadInput(f"{folder}: not an eval folder ({'a file' if folder.exists() else 'not found'}; "
                           "expected the --out of vidvpr eval)")
        path = folder / RESULTS_JSON
        if not path.is_file():
            inside = sorted(sub.parent for sub in folder.glob(f"*/{RESULTS_JSON}"))
            hint = f"; did you mean {' or '.join(map(str, inside[:3]))}?" if inside else ""
            raise BadInput(f"{folder}: no {RESULTS_JSON}; not a finished vidvpr eval folder{hint}")
        if path.resolve() in seen:
            raise BadInput(f"{folder}: given twice (also as {seen[path.resolve()]})")
        seen[path.resolve()] = folder
        loaded.append(LoadedEval(folder, EvalResults.load(path), FileRecord.of(path)))
    for e in loaded:
        check_models_listed(e)
    check_same_dataset(loaded)
    check_same_counting(loaded)
    check_same_sequences(loaded)
    return loaded


def check_models_listed(e: LoadedEval) -> None:
    """BadInput when the rows and the `models` record of one results.json disagree: a row of a model
    the record does not list (whose weights a study then cannot tell apart from another folder's
    model of that name), or a listed model without a row (results lost, e.g. by an edit)."""
    listed = [str(model.get("label")) for model in e.results.models]
    in_rows = list(dict.fromkeys(row.model for row in e.results.rows))
    unlisted = [model for model in in_rows if model not in listed]
    if unlisted:
        raise BadInput(f"{e.json_path}: rows hold results of model {unlisted[0]!r}, which its models record does not "
                       f"list ({', '.join(map(repr, listed)) or 'none'}); the file was edited or is damaged: "
                       "re-run vidvpr eval")
    without_rows = [model for model in listed if model not in in_rows]
    if without_rows:
        raise BadInput(f"{e.json_path}: model {without_rows[0]!r} is listed but no row holds its results; the file "
                       "was edited or is damaged: re-run vidvpr eval")


def check_same_dataset(evals: Sequence[LoadedEval]) -> None:
    """BadInput when two folders evaluated different manifests (their data files' hashes differ)."""
    first = evals[0]
    expected = first.results.manifest.get("files") or {}
    for other in evals[1:]:
        found = other.results.manifest.get("files") or {}
        differing = sorted(name for name in set(expected) | set(found) if expected.get(name) != found.get(name))
        if differing:
            raise BadInput(f"{other.json_path}: evaluated a different dataset than {first.json_path} "
                           f"({differing[0]} differs: manifest {other.results.manifest.get('path')} vs "
                           f"{first.results.manifest.get('path')}); a study compares evaluations of one manifest")
        first_views, views = first.results.manifest.get("views"), other.results.manifest.get("views")
        if first_views is not None and views is not None and first_views != views:  # older results do not record them
            view = sorted(name for name in set(first_views) | set(views) if first_views.get(name) != views.get(name))[0]
            raise BadInput(f"{other.json_path}: evaluated other view videos than {first.json_path} ({view} differs: "
                           f"manifest {other.results.manifest.get('path')} vs {first.results.manifest.get('path')}, "
                           "the same trajectories and frames over other footage); a study compares evaluations "
                           "of one dataset")


def check_same_counting(evals: Sequence[LoadedEval]) -> str:
    """The convention every folder counted queries without positives by (`EvalRow.unmatched_queries`),
    or BadInput naming the first folder that differs: such recalls differ by the share of those queries."""
    first = evals[0]
    expected = first.results.unmatched_queries
    for e in evals:
        for i, row in enumerate(e.results.rows):
            found = row.unmatched_queries
            if found != expected:
                raise BadInput(f"{e.json_path}: row {i + 1} counts queries without positives as "
                               f"{found!r} but {first.json_path} as {expected!r} (vidvpr eval --unmatched-queries); "
                               "a study compares recalls counted one way: re-run one of them")
    return expected


def _matching(e: LoadedEval) -> str:
    """How a folder matched sequences, as `vidvpr eval` options (what a study needs alike)."""
    record = e.results.sequences
    if record is None:
        return "(not recorded)"
    low, high = record.velocity
    words = [f"--seq-velocity {low:g}" if low == high else f"--seq-velocity {low:g}..{high:g}",
             f"--seq-search {record.search}"]
    words += ["--seq-reverse"] * record.reverse + ["--seq-normalise"] * record.normalise
    return " ".join(words)


def check_same_sequences(evals: Sequence[LoadedEval]) -> None:
    """BadInput when two folders hold sequences of the same length for the same model, protocol and
    cell matched differently (velocity, search, direction, normalisation): their recalls answer
    different questions, and a study would keep one of them without saying which."""
    seen: dict[tuple[str, str, str, int], LoadedEval] = {}
    for e in evals:
        for row in e.results.rows:
            if row.seq_len == 1:
                continue
            first = seen.setdefault((row.model, row.protocol, row.cell, row.seq_len), e)
            if first is not e and _matching(first) != _matching(e):
                raise BadInput(f"{e.json_path}: sequences of {row.seq_len} frames ({row.model} on {row.cell}) matched "
                               f"with {_matching(e)}, but in {first.json_path} with {_matching(first)}; a study "
                               "compares sequences matched alike: study each folder on its own")


def choose_threshold(evals: Sequence[LoadedEval], wanted: float | None) -> float:
    """`wanted`, checked to be evaluated in every folder, or the smallest threshold all folders share."""
    per_folder = [{row.threshold_m for row in e.results.rows} for e in evals]
    if wanted is not None:
        for e, thresholds in zip(evals, per_folder):
            if not any(abs(t - wanted) < 1e-9 for t in thresholds):
                raise BadInput(f"{e.json_path}: no results at --threshold {wanted:g} m "
                               f"(it has {', '.join(f'{t:g}' for t in sorted(thresholds))} m)")
        return next(t for t in per_folder[0] if abs(t - wanted) < 1e-9)
    common = set.intersection(*per_folder)
    if not common:
        raise BadInput(f"the eval folders share no distance threshold ({evals[0].json_path} has "
                       f"{', '.join(f'{t:g}' for t in sorted(per_folder[0]))} m); re-run vidvpr eval with one --threshold")
    return min(common)


def check_recall_at(evals: Sequence[LoadedEval], ns: Sequence[int]) -> None:
    for e in evals:
        missing = [n for n in ns if n not in e.results.recall_at]
        if missing:
            raise BadInput(f"{e.json_path}: no recall@{missing[0]} (it has recall@"
                           f"{','.join(map(str, e.results.recall_at))}); choose --recall-at among those")


def _point(row: EvalRow, source: int) -> Point:
    return Point(cell=row.cell, codec=row.codec or "libx264", resolution=row.resolution or f"{row.width}x{row.height}",
                 qp=int(row.qp or 0), kbps=float(row.kbps or 0.0), recall=dict(row.recall), width=row.width,
                 height=row.height, psnr_y=row.psnr_y, ssim_y=row.ssim_y, vmaf=row.vmaf, source=source)


def collect_points(evals: Sequence[LoadedEval], threshold_m: float) -> StudyPoints:
    """Points and reference recalls at `threshold_m`; duplicates across folders must agree."""
    out = StudyPoints()
    fingerprints: dict[str, tuple[str, Path]] = {}
    seen: dict[tuple[str, str, str], tuple[dict[int, float], Path]] = {}
    for source, e in enumerate(evals):
        for model in e.results.models:
            label, fingerprint = str(model.get("label")), str(model.get("fingerprint"))
            known = fingerprints.setdefault(label, (fingerprint, e.json_path))
            if known[0] != fingerprint:
                raise BadInput(f"{e.json_path}: model {label!r} has other weights (fingerprint {fingerprint}) than in "
                               f"{known[1]} ({known[0]}); give the checkpoints different file names")
        for row in e.results.rows:
            if abs(row.threshold_m - threshold_m) > 1e-9 or row.seq_len != 1:
                continue  # sequences: vidvpr.study.sequences
            key = (row.model, row.protocol, row.cell)
            if key in seen:
                if any(abs(seen[key][0].get(n, -1) - value) > 1e-9 for n, value in row.recall.items()):
                    raise BadInput(f"{e.json_path}: {row.model} ({row.protocol}) on {row.cell} disagrees with the same "
                                   f"result in {seen[key][1]}; study one of the two")
                continue
            seen[key] = (dict(row.recall), e.json_path)
            system = (row.model, row.protocol)
            if system not in out.systems:
                out.systems.append(system)
            if row.qp is None:
                out.reference[system] = dict(row.recall)
            elif row.kbps is None or not row.kbps > 0:
                LOG.info("%s: cell %s has no bitrate; left out of the study", e.json_path, row.cell)
            else:
                out.points.append((row.model, row.protocol, _point(row, source)))
    if not out.points:
        raise BadInput(f"{evals[0].json_path}: no encoded cells with a bitrate at {threshold_m:g} m "
                       "(evaluate with --enc)")
    return out
