"""Plots of sequences and of the VPR-Bench measures in an evaluation:

* ``recall_vs_seq_len.png``: recall@1 against the sequence length, a line per QP (and the reference
  views, dashed), a panel per model × codec × resolution: how long a sequence wins back what a QP lost;
* ``precision_recall.png``: precision against recall over the match distance, a panel per model and
  sequence length, a line per cell (the reference dashed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import atomic_output
from vidvpr.evaluate.plots import panel_figure
from vidvpr.evaluate.results import EvalRow

RECALL_VS_SEQ_LEN = "recall_vs_seq_len.png"
PRECISION_RECALL = "precision_recall.png"
DEFAULT_CODEC = "libx264"
MAX_PANELS = 12  # panels per figure: the first ones in row order (results.csv has them all)


def _at_smallest_threshold(rows: Sequence[EvalRow]) -> list[EvalRow]:
    smallest = {row.model: min(r.threshold_m for r in rows if r.model == row.model) for row in rows}
    return [row for row in rows if row.threshold_m == smallest[row.model]]


def _save(fig: Any, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def _group(row: EvalRow) -> str:
    codec = row.codec or DEFAULT_CODEC
    return row.resolution if codec == DEFAULT_CODEC else f"{codec} {row.resolution}"


def plot_recall_by_length(rows: Sequence[EvalRow], out_dir: Path, n: int = 1) -> Path | None:
    """`recall_vs_seq_len.png` (None when only single frames were evaluated)."""
    mine = _at_smallest_threshold(rows)
    lengths = sorted({row.seq_len for row in mine})
    if len(lengths) < 2:
        return None
    encoded = [row for row in mine if row.qp is not None]
    panels = list(dict.fromkeys((row.model, _group(row)) for row in encoded)) or \
        list(dict.fromkeys((row.model, "reference") for row in mine))
    panels = panels[:MAX_PANELS]
    fig, axes = panel_figure(len(panels))
    for ax, (model, group) in zip(axes, panels):
        cells = sorted({(row.qp, row.cell) for row in encoded if row.model == model and _group(row) == group})
        for i, (qp, cell) in enumerate(cells):
            by_length = {row.seq_len: row.recall[n] for row in encoded if row.model == model and row.cell == cell}
            xs = [length for length in lengths if length in by_length]
            ax.plot(xs, [by_length[x] for x in xs], marker="o", markersize=4, color=f"C{i % 10}", label=f"QP {qp}")
        reference = {row.seq_len: row.recall[n] for row in mine if row.model == model and row.qp is None}
        if reference:
            xs = [length for length in lengths if length in reference]
            ax.plot(xs, [reference[x] for x in xs], color="0.2", linestyle="--", marker="s", markersize=4,
                    label="reference views")
        ax.set(xlabel="sequence length (frames)", ylabel=f"recall@{n}", ylim=(0, 1.02), xticks=lengths,
               title=f"{model} · {group}" if group != "reference" else model)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(cells) > 6 else 1)
    threshold = min(row.threshold_m for row in mine)
    fig.suptitle(f"Recall@{n} against sequence length at {threshold:g} m ({mine[0].protocol} protocol)")
    return _save(fig, Path(out_dir) / RECALL_VS_SEQ_LEN)


def plot_precision_recall(rows: Sequence[EvalRow], out_dir: Path) -> Path | None:
    """`precision_recall.png` (None when no row has a curve)."""
    fig = precision_recall_figure(rows)
    return None if fig is None else _save(fig, Path(out_dir) / PRECISION_RECALL)


def precision_recall_figure(rows: Sequence[EvalRow]) -> Any | None:
    """Precision against recall, a panel per model and sequence length, a line per cell (None: no curve)."""
    mine = [row for row in _at_smallest_threshold(rows) if row.precision_recall is not None]
    panels = list(dict.fromkeys((row.model, row.seq_len) for row in mine))[:MAX_PANELS]
    if not panels:
        return None
    fig, axes = panel_figure(len(panels))
    for ax, (model, seq_len) in zip(axes, panels):
        members = [row for row in mine if (row.model, row.seq_len) == (model, seq_len)]
        for i, row in enumerate(members):
            curve = row.precision_recall
            assert curve is not None
            reference = row.qp is None
            ax.plot([0.0, *curve.recall], [1.0, *curve.precision], linestyle="--" if reference else "-",
                    color="0.2" if reference else f"C{i % 10}", linewidth=1.2,
                    label=f"{row.cell}: AUC {row.auc_pr:.3f}, R@100P {row.recall_at_100_precision:.3f}")
        frames = "single frames" if seq_len == 1 else f"sequences of {seq_len} frames"
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.0), ylim=(0, 1.02), title=f"{model} · {frames}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    threshold = mine[0].threshold_m if len({row.threshold_m for row in mine}) == 1 else None
    at = f"at {threshold:g} m " if threshold is not None else ""
    # two lines: on one, the title ran past both edges of a one-panel figure (6.4 in wide)
    fig.suptitle(f"Precision against recall over the best match's distance (VPR-Bench)\n"
                 f"{at}({mine[0].protocol} protocol)")
    return fig
