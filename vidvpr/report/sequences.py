"""The report's sections on sequences and on the VPR-Bench measures (each returns escaped HTML):
how long a sequence each QP needs to regain the uncompressed recall, what sequences save in bits,
and per model the extraction time, descriptor size, AUC-PR and recall at 100% precision."""

from __future__ import annotations

from vidvpr.evaluate.seq_plots import precision_recall_figure
from vidvpr.report.html import esc, figure, number, paragraph, table
from vidvpr.report.inputs import ReportInputs
from vidvpr.study.plots import png_bytes, sequence_figure


def sequences(inputs: ReportInputs) -> str:
    study = inputs.study
    if not study.sequences:
        return paragraph("No sequences were evaluated (vidvpr eval --seq-len 1,5,10,20 matches each query's "
                         "sequence of frames).", "note")
    parts = []
    for n in study.recall_at:
        fig = sequence_figure(study, n)
        if fig is not None:
            parts.append(figure(png_bytes(fig), f"recall@{n} against sequence length",
                                f"Recall@{n} against the sequence length, a line per QP; dashed: the uncompressed "
                                "views over single frames (the target); ringed: the shortest length reaching it."))
    headlines = [c.headline for c in study.comparisons if c.kind == "sequence"]
    if headlines:
        parts.append("<h3>Bits saved by sequences</h3><ul class=headlines>"
                     + "".join(f"<li>{esc(h)}</li>" for h in headlines) + "</ul>")
    lengths = sorted({length for need in study.sequences for length in need.recall})
    rows = [[need.system, need.n, need.codec, need.resolution, need.qp, number(need.kbps, 3), number(need.target, 3),
             *(number(need.recall.get(length), 3) for length in lengths),
             need.needed if need.needed else need.reason]
            for need in study.sequences]
    parts.append(table(["model", "N", "codec", "resolution", "QP", "kbps", "target",
                        *(f"L={length}" for length in lengths), "length needed"], rows,
                       numeric=range(4, 7 + len(lengths)),
                       caption=("Recall@N per sequence length L (frames); target: the uncompressed views' single-frame "
                                "recall@N; length needed: the shortest evaluated L reaching it.")))
    return "".join(parts)


def vpr_bench(inputs: ReportInputs) -> str:
    study = inputs.study
    parts = [paragraph("The VPR-Bench measures (Zaffar et al. 2021) beside recall@N: precision against recall "
                       "over the best match's distance, the area under that curve (AUC-PR), the recall at 100% "
                       "precision, and per model the descriptor extraction time and size.")]
    if study.costs:
        parts.append(table(["model", "descriptor dims", "bytes per descriptor", "extraction ms per image",
                            "images timed"],
                           [[c.model, c.descriptor_dim, c.descriptor_bytes, number(c.ms_per_image, 2), c.images]
                            for c in study.costs], numeric=(1, 2, 3, 4),
                           caption=("Extraction time: decoding and the forward pass per image, as the descriptor "
                                    "cache recorded it when the descriptors were made (on that machine, under its "
                                    "load); bytes: float32 as searched.")))
    rows = [row for e in inputs.evals for row in e.results.rows
            if abs(row.threshold_m - study.threshold_m) <= 1e-9 and row.auc_pr is not None]
    if not rows:
        return "".join(parts) + paragraph("The eval folders hold no precision-recall measures (evaluated before "
                                          "vidvpr recorded them).", "note")
    fig = precision_recall_figure(rows)
    if fig is not None:
        parts.append(figure(png_bytes(fig), "precision against recall",
                            "Precision against recall as the distance threshold grows, a panel per model and "
                            "sequence length, a line per cell (dashed: the reference views)."))
    seen, table_rows = set(), []
    for row in rows:
        key = (row.model, row.protocol, row.cell, row.seq_len)
        if key not in seen:
            seen.add(key)
            table_rows.append([row.model, row.cell, row.seq_len, number(row.kbps, 3), number(row.recall.get(1), 3),
                               number(row.auc_pr, 3), number(row.recall_at_100_precision, 3)])
    parts.append(table(["model", "cell", "L", "kbps", "recall@1", "AUC-PR", "recall at 100% precision"], table_rows,
                       numeric=(2, 3, 4, 5, 6), caption=f"At {study.threshold_m:g} m; L: frames per query sequence."))
    return "".join(parts)
