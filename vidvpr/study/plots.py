"""The study's figures, built as matplotlib Figures (no pyplot state) and saved as PNG and SVG:

* ``recall{N}_vs_kbps``: recall@N against bitrate (log axis), a panel per system, a line per
  codec × resolution, the uncompressed views as a dashed line;
* ``models_recall{N}_vs_kbps`` (several systems): a panel per codec, a line per system × resolution;
* ``front_recall{N}``: every cell per system, its Pareto front as a staircase, budget choices ringed;
* ``sequences_recall{N}`` (sequences evaluated): recall@N against sequence length per QP, the
  uncompressed single-frame recall as the target line.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import atomic_output
from vidvpr.evaluate.plots import panel_figure
from vidvpr.study.records import CurveRecord, StudyRecord

FORMATS = ("png", "svg")
DPI = 120
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")


def _log_rate_axis(ax: Any, recalls: Sequence[float], n: int) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    top = max(recalls, default=1.0)
    ax.set(xlabel="bitrate (kbps, log)", ylabel=f"recall@{n}", ylim=(0, min(1.02, top * 1.12 + 0.02)))
    ax.grid(True, which="both", alpha=0.3)


def plain(text: str) -> str:
    """`text` as matplotlib shows it literally (a '$' would start mathtext)."""
    return text.replace("$", r"\$")


def _styles(values: Sequence[str], pool: Sequence[Any]) -> dict[str, Any]:
    return {value: pool[i % len(pool)] for i, value in enumerate(dict.fromkeys(values))}


def _draw_curves(ax: Any, curves: Sequence[CurveRecord], n: int, colour_of: Callable[[CurveRecord], str],
                 style_of: Callable[[CurveRecord], tuple[str, str]], label_of: Callable[[CurveRecord], str]) -> list[float]:
    recalls = []
    for curve in curves:
        xs, ys = [p.kbps for p in curve.points], [p.recall[n] for p in curve.points]
        linestyle, marker = style_of(curve)
        ax.plot(xs, ys, color=colour_of(curve), linestyle=linestyle, marker=marker, markersize=4, label=plain(label_of(curve)))
        recalls += ys
    return recalls


def recall_figure(study: StudyRecord, n: int) -> Any:
    """Recall@n against kbps, a panel per system."""
    curves = [c for c in study.curves if c.resolution != "any"]
    systems = [s for s in study.systems if any(c.system == s for c in curves)]
    colours = _styles([c.codec for c in curves], [f"C{i}" for i in range(10)])
    styles = _styles([c.resolution for c in curves], list(zip(LINESTYLES * 2, MARKERS)))
    fig, axes = panel_figure(len(systems))
    for ax, system in zip(axes, systems):
        mine = [c for c in curves if c.system == system]
        recalls = _draw_curves(ax, mine, n, lambda c: colours[c.codec], lambda c: styles[c.resolution],
                               lambda c: f"{c.codec} {c.resolution}")
        reference = study.reference.get(system, {}).get(n)
        if reference is not None:
            ax.axhline(reference, color="0.35", linestyle="--", linewidth=1, label="uncompressed views")
            recalls.append(reference)
        _log_rate_axis(ax, recalls, n)
        ax.set_title(plain(system), fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"Recall@{n} against bitrate at {study.threshold_m:g} m")
    return fig


def models_figure(study: StudyRecord, n: int) -> Any | None:
    """Systems side by side, a panel per codec (None with a single system)."""
    curves = [c for c in study.curves if c.resolution != "any"]
    systems = [s for s in study.systems if any(c.system == s for c in curves)]
    if len(systems) < 2:
        return None
    codecs = list(dict.fromkeys(c.codec for c in curves))
    colours = _styles(systems, [f"C{i}" for i in range(10)])
    styles = _styles([c.resolution for c in curves], list(zip(LINESTYLES * 2, MARKERS)))
    fig, axes = panel_figure(len(codecs))
    for ax, codec in zip(axes, codecs):
        mine = [c for c in curves if c.codec == codec]
        recalls = _draw_curves(ax, mine, n, lambda c: colours[c.system], lambda c: styles[c.resolution],
                               lambda c: f"{c.system} · {c.resolution}")
        _log_rate_axis(ax, recalls, n)
        ax.set_title(plain(codec), fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"Recall@{n} against bitrate per codec, models compared ({study.threshold_m:g} m)")
    return fig


def front_figure(study: StudyRecord, n: int) -> Any:
    """Every cell per system (colour: codec), the Pareto front as a staircase, budget picks ringed."""
    systems = [f.system for f in study.fronts if f.n == n]
    codecs = list(dict.fromkeys(c.codec for c in study.curves))
    colours = _styles(codecs, [f"C{i}" for i in range(10)])
    fig, axes = panel_figure(len(systems))
    for ax, system in zip(axes, systems):
        cells = {p.cell: p for c in study.curves if c.system == system and c.resolution != "any" for p in c.points}
        for codec in codecs:
            mine = [p for p in cells.values() if p.codec == codec]
            if mine:
                ax.scatter([p.kbps for p in mine], [p.recall[n] for p in mine], s=14, color=colours[codec], alpha=0.5,
                           label=plain(codec))
        front = next(f for f in study.fronts if f.system == system and f.n == n).points
        ax.step([p.kbps for p in front], [p.recall[n] for p in front], where="post", color="black", linewidth=1.2,
                marker="o", markersize=4, label="Pareto front")
        for budget in (b for b in study.budgets if b.system == system and b.n == n):
            ax.axvline(budget.budget_kbps, color="0.5", linestyle=":", linewidth=1)
            if budget.best is not None:
                ax.scatter([budget.best.kbps], [budget.best.recall[n]], s=110, facecolors="none", edgecolors="red",
                           linewidths=1.5, label=plain(f"best ≤ {budget.budget_kbps:g} kbps: {budget.best.cell}"))
        _log_rate_axis(ax, [p.recall[n] for p in cells.values()], n)
        ax.set_title(plain(system), fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"Pareto front: cells not beaten on both bitrate and recall@{n}")
    return fig


def sequence_figure(study: StudyRecord, n: int) -> Any | None:
    """Recall@n against sequence length, a line per QP, a panel per system × codec × resolution; the
    reference views' single-frame recall (the target) dashed, each cell's needed length ringed."""
    needs = [need for need in study.sequences if need.n == n]
    panels = list(dict.fromkeys((need.system, need.codec, need.resolution) for need in needs))[:12]
    if not panels:
        return None
    fig, axes = panel_figure(len(panels))
    for ax, (system, codec, resolution) in zip(axes, panels):
        mine = sorted((need for need in needs if (need.system, need.codec, need.resolution) == (system, codec,
                                                                                               resolution)),
                      key=lambda need: need.qp)
        lengths = sorted({length for need in mine for length in need.recall})
        for i, need in enumerate(mine):
            xs = sorted(need.recall)
            ax.plot(xs, [need.recall[x] for x in xs], marker="o", markersize=4, color=f"C{i % 10}",
                    label=f"QP {need.qp} ({need.kbps:g} kbps): " + (f"needs L = {need.needed}" if need.needed
                                                                      else f"not within L = {max(need.recall)}"))
            if need.needed:
                ax.scatter([need.needed], [need.recall[need.needed]], s=90, facecolors="none", edgecolors=f"C{i % 10}")
        ax.axhline(mine[0].target, color="0.3", linestyle="--", linewidth=1, label="uncompressed, single frames")
        ax.set(xlabel="sequence length (frames)", ylabel=f"recall@{n}", ylim=(0, 1.02), xticks=lengths)
        ax.set_title(plain(f"{system} · {codec} {resolution}"), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"How long a sequence regains the uncompressed recall@{n} ({study.threshold_m:g} m)")
    return fig


def study_figures(study: StudyRecord) -> list[tuple[str, Any]]:
    """(file stem, Figure) of every study plot."""
    figures = []
    for n in study.recall_at:
        figures.append((f"recall{n}_vs_kbps", recall_figure(study, n)))
        models = models_figure(study, n)
        if models is not None:
            figures.append((f"models_recall{n}_vs_kbps", models))
        figures.append((f"front_recall{n}", front_figure(study, n)))
        sequences = sequence_figure(study, n)
        if sequences is not None:
            figures.append((f"sequences_recall{n}", sequences))
    return figures


def save_figure(fig: Any, folder: Path, stem: str) -> list[Path]:
    """The figure as STEM.png and STEM.svg in `folder`, each written atomically; the same figure gives
    the same bytes (no date; the SVG's clip-path ids drawn from a fixed salt, not a random one)."""
    import matplotlib

    paths = []
    for fmt in FORMATS:
        path = Path(folder) / f"{stem}.{fmt}"
        with atomic_output(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "vidvpr"}):
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata={"Date": None} if fmt == "svg" else None)
        paths.append(path)
    return paths


def png_bytes(fig: Any, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
