"""The report's result sections: recall per model, Bjøntegaard table, Pareto front, prediction
strips of the worst-hit cells, and the provenance of every input (each returns escaped HTML)."""

from __future__ import annotations

import shlex
from pathlib import Path

from vidvpr import __version__
from vidvpr.core.provenance import command_line
from vidvpr.evaluate.results import UNMATCHED_WORDS, fitted_on_database
from vidvpr.report.html import Raw, esc, facts, figure, number, paragraph, table
from vidvpr.report.inputs import ReportInputs
from vidvpr.study.plots import front_figure, models_figure, png_bytes, recall_figure
from vidvpr.study.records import DeltaRecord

STRIPS_PER_MODEL = 3


def recall(inputs: ReportInputs) -> str:
    study = inputs.study
    parts = []
    for n in study.recall_at:
        parts.append(figure(png_bytes(recall_figure(study, n)), f"recall@{n} against bitrate per model",
                            f"Recall@{n} against bitrate (log axis), a line per codec × resolution; dashed: the "
                            "uncompressed views."))
        models = models_figure(study, n)
        if models is not None:
            parts.append(figure(png_bytes(models), f"models compared, recall@{n}",
                                f"The models side by side per codec (recall@{n})."))
    front_cells = {(f.system, p.cell) for f in study.fronts if f.n == study.recall_at[0] for p in f.points}
    for label, system in study.systems.items():
        ns = sorted({n for e in inputs.evals for n in e.results.recall_at})
        rows, classes = [], []
        for e in inputs.evals:
            for row in e.results.rows:
                if (row.model, row.protocol) != (system["model"], system["protocol"]) or \
                        abs(row.threshold_m - study.threshold_m) > 1e-9 or any(r[0] == row.cell for r in rows):
                    continue
                rows.append([row.cell, row.codec, row.resolution, row.qp, number(row.kbps, 3), number(row.psnr_y, 2),
                             number(row.vmaf, 1), *(number(row.recall.get(n), 3) for n in ns)])
                classes.append("front" if (label, row.cell) in front_cells else "")
        parts.append(f"<h3>{esc(label)}</h3>")
        fitted = _fitted_on_database(inputs, system["model"])
        if fitted:
            parts.append(paragraph(f"Fitted on this dataset: the {' and '.join(fitted)} of {system['model']} were "
                                   "fitted on the database frames these recalls search (unsupervised: no labels, no "
                                   "queries; vidvpr eval fits a model given without weights so). These are recalls "
                                   "on the model's own fitting data.", "note"))
        parts.append(table(["cell", "codec", "resolution", "quantiser", "kbps", "PSNR-Y", "VMAF",
                            *(f"recall@{n}" for n in ns)], rows, numeric=range(3, 7 + len(ns)), row_classes=classes,
                           caption=f"At {study.threshold_m:g} m, {UNMATCHED_WORDS[study.unmatched_queries]}; bold: on "
                                   f"the Pareto front at recall@{study.recall_at[0]}."))
    return "".join(parts)


def _fitted_on_database(inputs: ReportInputs, model: str) -> list[str]:
    """What of `model` its eval folders fitted on the evaluated database (`fitted_on_database`)."""
    fitted: list[str] = []
    for e in inputs.evals:
        for record in e.results.models:
            if record.get("label") == model:
                fitted += [what for what in fitted_on_database(record) if what not in fitted]
    return fitted


def _delta(d: DeltaRecord, scale: float, unit: str) -> str:
    return "—" if d.value is None else f"{scale * d.value:+.1f}{unit}"


def _warning(text: str) -> str:
    """The package's warning without its advice on silencing it (study.json keeps every word)."""
    return text.split(" You can silence")[0].rstrip(".")


def _overlap(d: DeltaRecord) -> str:
    if d.overlap_fraction is None:
        return "—"
    return f"{100 * d.overlap_fraction:.0f}%" + (" (low)" if d.low_overlap else "")


def _range(d: DeltaRecord, fmt: str) -> str:
    return "—" if d.low is None or d.high is None else f"{fmt.format(d.low)}–{fmt.format(d.high)}"


def bjontegaard(inputs: ReportInputs) -> str:
    study = inputs.study
    method = study.method
    parts = [paragraph(f"{method.bd_rate_function} (BD-rate) and {method.bd_recall_function} (BD-recall) of the "
                       f"{method.package} package {method.version}, {method.interpolation} interpolation: "
                       f"{method.interpolation_description}.")]
    parts.append("<ul class=note>" + "".join(f"<li>{esc(note)}</li>" for note in method.notes) + "</ul>")
    if not study.comparisons:
        return "".join(parts) + paragraph("No comparison: a single codec and a single model.", "note")
    rows, notes = [], []
    for c in study.comparisons:
        deltas = (("BD-rate", c.bd_rate_pct), ("BD-recall", c.bd_recall))
        said = [f"{name}: {d.reason}" for name, d in deltas if d.reason]
        said += [f"{name}: bjontegaard warned: {_warning(d.package_warning)}" for name, d in deltas if d.package_warning]
        if said:
            notes.append(f"{c.test} against {c.anchor} ({c.system or c.codec}, {c.resolution}, recall@{c.n}): "
                         + "; ".join(said))
        rows.append([c.kind, c.n, c.system or c.codec, c.resolution, c.anchor, c.test,
                     _delta(c.bd_rate_pct, 1, "\u00a0%"), _range(c.bd_rate_pct, "{:.3f}"), _overlap(c.bd_rate_pct),
                     "/".join(map(str, c.bd_rate_pct.points)), _delta(c.bd_recall, 100, "\u00a0pts"),
                     _range(c.bd_recall, "{:g}"), _overlap(c.bd_recall), len(said) and f"note {len(notes)}" or ""])
    parts.append(table(["compares", "N", "held fixed", "resolution", "anchor", "test", "BD-rate", "over recall@N",
                        "overlap", "points", "BD-recall", "over kbps", "overlap", "note"], rows,
                       numeric=(1, 6, 7, 8, 9, 10, 11, 12),
                       caption="BD-rate < 0: the test needs fewer bits for the same recall. BD-recall in "
                               "percentage points of recall at equal bitrate. Overlap: the share of the union of "
                               "both curves' ranges the delta is averaged over; under half is marked (low)."))
    if notes:
        parts.append("<ol class=note>" + "".join(f"<li>{esc(note)}</li>" for note in notes) + "</ol>")
    return "".join(parts)


def pareto(inputs: ReportInputs) -> str:
    study = inputs.study
    parts = []
    for n in study.recall_at:
        parts.append(figure(png_bytes(front_figure(study, n)), f"Pareto front at recall@{n}",
                            f"Every cell (dots, by codec) and the cells not beaten on both bitrate and recall@{n} "
                            "(staircase); rings: the best cell under each budget."))
    rows = [[f.system, f.n, p.cell, p.codec, p.resolution, p.qp, number(p.kbps, 3), number(p.recall[f.n], 3)]
            for f in study.fronts for p in f.points]
    parts.append(table(["model", "N", "cell", "codec", "resolution", "quantiser", "kbps", "recall@N"], rows,
                       numeric=(1, 5, 6, 7), caption="The Pareto front per model, cheapest first."))
    if study.budgets:
        parts.append("<h3>Budgets</h3>" + table(
            ["model", "N", "budget (kbps)", "best cell", "kbps", "recall@N"],
            [[b.system, b.n, f"{b.budget_kbps:g}", b.best.cell if b.best else b.reason,
              number(b.best.kbps, 3) if b.best else "—", number(b.best.recall[b.n], 3) if b.best else "—"]
             for b in study.budgets], numeric=(1, 2, 4, 5)))
    return "".join(parts)


def strips(inputs: ReportInputs, per_model: int = STRIPS_PER_MODEL) -> str:
    study = inputs.study
    n = study.recall_at[0]
    parts = [paragraph(f"Per model, the {per_model} cells with the lowest recall@{n} among those whose eval folder "
                       "holds prediction strips (vidvpr eval --save-preds N).")]
    for label, system in study.systems.items():
        points = {p.cell: p for c in study.curves if c.system == label and c.resolution != "any" for p in c.points}
        found = []
        for point in sorted(points.values(), key=lambda p: (p.recall[n], p.kbps)):
            folder = Path(study.inputs[point.source].eval_dir) if point.source < len(study.inputs) else None
            path = (folder / "strips" / system["model"].replace(":", "-") / f"{point.cell.replace('/', '_')}.png"
                    if folder else None)
            if path is not None and path.is_file():
                found.append((point, path))
            if len(found) == per_model:
                break
        reference = study.reference.get(label, {}).get(n)
        parts.append(f"<h3>{esc(label)}</h3>")
        for point, path in found:
            parts.append(figure(path.read_bytes(), f"predictions of {label} on {point.cell}",
                                f"{label} on {point.cell} ({point.kbps:g} kbps): recall@{n} {point.recall[n]:.3f}"
                                + (f" (uncompressed {reference:.3f})" if reference is not None else "")
                                + ". Each row: a query (grey), then its top retrievals — green a positive, red wrong.",
                                css_class="strip"))
        if not found:
            parts.append(paragraph("No prediction strips in its eval folders (run vidvpr eval with --save-preds N).",
                                   "note"))
    return "".join(parts)


def _short(digest: str) -> Raw:
    return Raw(f"<span class=mono title=\"{esc(digest)}\">{esc(digest[:23])}…</span>")


def _command(argv: list[str]) -> Raw:
    return Raw(f"<code>{esc(shlex.join(argv))}</code>")


def provenance(inputs: ReportInputs) -> str:
    study = inputs.study
    rows = []
    if inputs.study_file is not None:
        rows.append(["study", inputs.study_file.path, _short(inputs.study_file.hash), _command(study.command),
                     f"vidvpr {study.versions.get('vidvpr')}, bjontegaard {study.versions.get('bjontegaard')}"])
    for e in inputs.evals:
        r = e.results
        models = ", ".join(f"{m.get('label')} ({m.get('fingerprint')})" for m in r.models)
        rows.append(["eval", e.file.path, _short(e.file.hash), _command(r.command),
                     (f"vidvpr {r.versions.get('vidvpr')}, torch {r.versions.get('torch')}, faiss "
                     f"{r.versions.get('faiss')}; {r.protocol} protocol; models {models}")])
    if inputs.manifest is not None:
        meta = inputs.manifest.meta
        for name, record in meta.outputs.items():
            rows.append(["manifest", str(inputs.manifest.directory / name), _short(record.hash), "", ""])
        rows.append(["manifest", str(inputs.manifest.directory / "manifest.json"), "", _command(meta.command),
                     f"vidvpr {meta.versions.get('vidvpr')}, params {meta.params_hash}"])
    for folder in inputs.encodes:
        command = (folder.table or {}).get("command")
        for i, record in enumerate(folder.files):
            rows.append(["encode", record.path, _short(record.hash), _command(command) if command and i == 0 else "",
                         ""])
    parts = [table(["input", "file", "sha256", "command", "versions"], rows)]
    parts.append(facts([("report made by", f"vidvpr {__version__}"), ("report command", _command(command_line()))]))
    return "".join(parts)
