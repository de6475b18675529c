"""`vidvpr study EVAL... --out STUDY`: curves, Bjøntegaard deltas, Pareto fronts and budget picks
from eval folders of one dataset, written as study.json, study.csv and plots (PNG and SVG).

The folder is built under a temporary name and swapped in when complete, so it always holds one
whole study; an existing --out that is not a study folder is refused rather than replaced.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidvpr.core.atomic import built_dir, ensure_writable_dir, removing_new_dirs
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.core.provenance import command_line, runtime_versions
from vidvpr.study import bdelta
from vidvpr.study.compare import codec_comparisons, model_comparisons
from vidvpr.study.curves import (
    ANY_RESOLUTION,
    Curve,
    CurveKey,
    Point,
    build_curves,
    system_label,
)
from vidvpr.study.inputs import (
    LoadedEval,
    check_recall_at,
    check_same_counting,
    choose_threshold,
    collect_points,
    load_evals,
)
from vidvpr.study.pareto import best_under_budget, front
from vidvpr.study.plots import save_figure, study_figures
from vidvpr.study.records import (
    STUDY_CSV,
    STUDY_JSON,
    BudgetRecord,
    CurveRecord,
    FrontRecord,
    MethodRecord,
    PointRecord,
    StudyInputRecord,
    StudyRecord,
    write_study_csv,
)
from vidvpr.study.sequences import costs, needed_lengths, sequence_comparisons

DEFAULT_ANCHOR_CODEC = "libx264"


@dataclass(frozen=True)
class StudyConfig:
    """Every `vidvpr study` option, with its default written once."""

    recall_at: tuple[int, ...] = (1,)
    threshold_m: float | None = None  # None: the smallest threshold every eval folder has
    interpolation: str = bdelta.DEFAULT_INTERPOLATION
    anchor_codec: str | None = None  # None: libx264 when present, else the first codec
    anchor_model: str | None = None  # a system label; None: the first model of the first folder
    budgets_kbps: tuple[float, ...] = ()


def validate_config(config: StudyConfig) -> None:
    bdelta.check_interpolation(config.interpolation)
    if not config.recall_at or any(n < 1 for n in config.recall_at):
        raise BadInput(f"--recall-at takes positive integers, got {list(config.recall_at)}")
    if any(not b > 0 for b in config.budgets_kbps):
        raise BadInput(f"--budget-kbps must be positive, got {list(config.budgets_kbps)}")
    if config.threshold_m is not None and not config.threshold_m > 0:
        raise BadInput(f"--threshold must be a positive distance in metres, got {config.threshold_m:g}")


def _point_record(p: Point) -> PointRecord:
    return PointRecord(cell=p.cell, codec=p.codec, resolution=p.resolution, width=p.width, height=p.height, qp=p.qp,
                       kbps=p.kbps, recall=p.recall, psnr_y=p.psnr_y, ssim_y=p.ssim_y, vmaf=p.vmaf, source=p.source)


def _anchor(wanted: str | None, available: Sequence[str], default: str | None, option: str) -> str | None:
    if wanted is not None and wanted not in available:
        raise BadInput(f"{option} {wanted!r} is not in the study; it has {', '.join(available)}")
    return wanted if wanted is not None else default


def _input_record(e: LoadedEval) -> StudyInputRecord:
    r = e.results
    return StudyInputRecord(eval_dir=str(e.folder.resolve()), results=e.file, manifest=r.manifest, enc_dir=r.enc_dir,
                            protocol=r.protocol, models=r.models, versions=r.versions, command=r.command)


def compute_study(evals: Sequence[LoadedEval], config: StudyConfig) -> StudyRecord:
    """The study of loaded eval folders (no files written; `outputs` empty)."""
    started = time.perf_counter()
    validate_config(config)
    check_recall_at(evals, config.recall_at)
    threshold = choose_threshold(evals, config.threshold_m)
    found = collect_points(evals, threshold)
    ns = list(dict.fromkeys(config.recall_at))
    protocols = [protocol for _, protocol in found.systems]
    label = (lambda system: system_label(system[0], system[1], protocols))
    labels = {label(s): s for s in found.systems}
    codecs = sorted({p.codec for _, _, p in found.points})
    anchor_codec = _anchor(config.anchor_codec, codecs,
                           DEFAULT_ANCHOR_CODEC if DEFAULT_ANCHOR_CODEC in codecs else codecs[0], "--anchor-codec")
    anchor_label = _anchor(config.anchor_model, list(labels), label(found.systems[0]), "--anchor-model")
    curves: dict[CurveKey, Curve] = build_curves(found.points, ns)
    method = config.interpolation
    comparisons = (codec_comparisons(curves, ns, anchor_codec, method, label)
                   + model_comparisons(curves, ns, labels.get(anchor_label or ""), method, label)
                   + sequence_comparisons(evals, threshold, ns, method, label))
    fronts, budgets = [], []
    for system in found.systems:
        mine = [p for model, protocol, p in found.points if (model, protocol) == system]
        for n in ns:
            fronts.append(FrontRecord(system=label(system), n=n, points=[_point_record(p) for p in front(mine, n)]))
            for budget in config.budgets_kbps:
                choice = best_under_budget(mine, n, budget)
                budgets.append(BudgetRecord(system=label(system), n=n, budget_kbps=budget,
                                            best=_point_record(choice.best) if choice.best else None,
                                            reason=choice.reason))
    from importlib.metadata import version

    first = evals[0].results.manifest
    return StudyRecord(
        dataset={"name": first.get("name"), "manifest": first.get("path"), "files": first.get("files"),
                 "radius_m": first.get("radius_m")},
        threshold_m=threshold, unmatched_queries=check_same_counting(evals), recall_at=ns, anchor_codec=anchor_codec,
        anchor_system=anchor_label,
        systems={name: {"model": s[0], "protocol": s[1]} for name, s in labels.items()},
        method=MethodRecord(
            package=bdelta.PACKAGE, version=version(bdelta.PACKAGE), bd_rate_function=bdelta.BD_RATE_FUNCTION,
            bd_recall_function=bdelta.BD_RECALL_FUNCTION, interpolation=method,
            interpolation_description=bdelta.INTERPOLATIONS[method].description,
            notes=[("BD-rate: percent bitrate of test against anchor at equal recall (negative: fewer bits), "
                   "log10-rate interpolated over recall on each curve's rising points, averaged over the recall "
                   "range both curves cover"),
                   ("BD-recall: recall of test minus anchor at equal bitrate (a fraction), recall interpolated over "
                   "log10-rate on every point, averaged over the kbps range both curves cover"),
                   "curves that do not overlap give no number but a reason (never extrapolated)",
                   (f"resolution '{ANY_RESOLUTION}': a codec's cells over all resolutions not beaten on both "
                   f"bitrate and recall@{ns[0]}"),
                   "Pareto front: per system, the cells no other cell beats on both bitrate and recall@N",
                   ("sequences: per encoded cell, the shortest evaluated sequence length whose recall@N reaches the "
                    "reference views' single-frame recall@N; BD-rate of sequences of L frames against single frames "
                    "over the same cells")]),
        inputs=[_input_record(e) for e in evals],
        reference={label(s): recall for s, recall in found.reference.items()},
        curves=[CurveRecord(system=label(k.system), model=k.model, protocol=k.protocol, codec=k.codec,
                            resolution=k.resolution, points=[_point_record(p) for p in c.points])
                for k, c in curves.items()],
        comparisons=comparisons, fronts=fronts, budgets=budgets,
        sequences=needed_lengths(evals, threshold, ns, label), costs=costs(evals), outputs=[],
        versions={**runtime_versions(), bdelta.PACKAGE: version(bdelta.PACKAGE)}, command=command_line(),
        elapsed_s=round(time.perf_counter() - started, 3))


@dataclass
class StudyResult:
    record: StudyRecord
    folder: Path
    json_path: Path
    csv_path: Path
    plots: list[Path]


def _check_out(out_dir: Path, evals: Sequence[LoadedEval]) -> None:
    out = out_dir.resolve()
    for e in evals:
        if out == e.folder.resolve() or e.folder.resolve().is_relative_to(out):
            raise BadInput(f"--out {out_dir}: holds the eval folder {e.folder}; write the study elsewhere")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out {out_dir}: is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and StudyRecord.load_or_none(out_dir / STUDY_JSON) is None:
        raise OutputError(f"--out {out_dir}: a folder that is not a vidvpr study (no readable {STUDY_JSON} of this "
                          "version); it is replaced as a whole, so give a new folder or an earlier study's")


def run_study(eval_dirs: Sequence[Path], out_dir: Path, config: StudyConfig) -> StudyResult:
    """Read the eval folders, compute the study, write STUDY/study.json, study.csv and the plots."""
    validate_config(config)
    evals = load_evals(eval_dirs)
    out_dir = Path(out_dir)
    _check_out(out_dir, evals)
    record = compute_study(evals, config)
    with removing_new_dirs(out_dir.parent):
        ensure_writable_dir(out_dir.parent)
        with built_dir(out_dir) as tmp:
            plots = []
            for stem, fig in study_figures(record):
                plots += save_figure(fig, tmp, stem)
            record = record.model_copy(update={"outputs": [STUDY_CSV, *(p.name for p in plots)]})
            write_study_csv(tmp / STUDY_CSV, record)
            record.save(tmp / STUDY_JSON)
    return StudyResult(record, out_dir, out_dir / STUDY_JSON, out_dir / STUDY_CSV, [out_dir / p.name for p in plots])
