"""Plots of an evaluation: recall@1 against the quantiser (a line per codec and resolution) and against
bitrate (log axis), codecs side by side: one colour per codec, one marker per resolution, one line
style per model, so a teacher and its distilled student, or H.264 and AV1, can be compared."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import atomic_output
from vidvpr.encoding.rdplot import curve_label
from vidvpr.evaluate.results import EvalRow

RECALL_VS_QP = "recall_vs_qp.png"
RECALL_VS_KBPS = "recall_vs_kbps.png"
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
DEFAULT_CODEC = "libx264"


def panel_figure(panels: int) -> tuple[Any, list[Any]]:
    """A Figure (no pyplot state) with `panels` axes, two per row (one when alone), spares hidden."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = 1 if panels == 1 else 2
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(6.4 * cols, 4.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for extra in axes[panels:]:
        extra.set_visible(False)
    return fig, axes[:panels]


def _curves(rows: Sequence[EvalRow], n: int) -> dict[tuple[str, str], list[EvalRow]]:
    """(model, codec + resolution) -> encoded rows sorted by quantiser, at each model's smallest threshold."""
    curves: dict[tuple[str, str], list[EvalRow]] = defaultdict(list)
    smallest = {row.model: min(r.threshold_m for r in rows if r.model == row.model) for row in rows}
    several = len({row.codec or DEFAULT_CODEC for row in rows if row.qp is not None}) > 1  # then name every codec
    for row in rows:
        if row.qp is not None and row.threshold_m == smallest[row.model] and n in row.recall:
            codec = row.codec or DEFAULT_CODEC
            label = curve_label(row.resolution, row.width, row.height)  # "80x32", "360p (640x360)"
            curves[(row.model, f"{codec} {label}" if several or codec != DEFAULT_CODEC else label)].append(row)
    return {key: sorted(value, key=lambda r: r.qp or 0) for key, value in curves.items()}


def _codec_of(members: Sequence[EvalRow]) -> str:
    return members[0].codec or DEFAULT_CODEC


def recall_title(rows: Sequence[EvalRow], n: int, models: Sequence[str]) -> str:
    """The recall plots' title: threshold and protocol, and the model when there is one (its curves are then
    named by the cell alone, so the figure would not say whose recall it shows)."""
    threshold = min(r.threshold_m for r in rows)
    title = f"Recall@{n} at {threshold:g} m ({rows[0].protocol} protocol)"
    return f"{title}: {models[0]}" if len(models) == 1 else title


def plot_recall(rows: Sequence[EvalRow], out_dir: Path, n: int = 1) -> list[Path]:
    """`recall_vs_qp.png` and `recall_vs_kbps.png` in `out_dir` (none when no encoded cell was evaluated)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    curves = _curves(rows, n)
    if not curves:
        return []
    models = list(dict.fromkeys(model for model, _ in curves))
    codecs = list(dict.fromkeys(_codec_of(members) for members in curves.values()))
    sizes = list(dict.fromkeys(f"{r.width}x{r.height}" for members in curves.values() for r in members))
    colours = {codec: f"C{i % 10}" for i, codec in enumerate(codecs)}
    styles = {model: LINESTYLES[i % len(LINESTYLES)] for i, model in enumerate(models)}
    # one codec: a colour per resolution (per model when there is one resolution); several: a colour per codec,
    # a marker per resolution
    groups = list(dict.fromkeys(group for _, group in curves))
    paths = []
    qp_label = "QP (JPEG: quality, higher is better)" if "jpeg" in codecs else "QP"
    for name, x_of, xlabel in ((RECALL_VS_QP, lambda r: r.qp, qp_label),
                               (RECALL_VS_KBPS, lambda r: r.kbps, "bitrate (kbps, log)")):
        crowded = len(curves) > 8  # the legend goes beside the axes, not over the curves
        fig = Figure(figsize=(11.5 if crowded else 7.5, 4.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for (model, group), members in curves.items():
            points = [(x_of(r), r.recall[n]) for r in members if x_of(r) is not None]
            label = group if len(models) == 1 else f"{model} · {group}"
            size = f"{members[0].width}x{members[0].height}"
            if len(codecs) > 1:
                colour = colours[_codec_of(members)]
            else:  # one curve per model (teacher against students): a colour per model
                colour = f"C{(models.index(model) if len(groups) == 1 else groups.index(group)) % 10}"
            marker = MARKERS[sizes.index(size) % len(MARKERS)] if len(codecs) > 1 else "o"
            ax.plot([x for x, _ in points], [y for _, y in points], marker=marker, color=colour,
                    linestyle=styles[model], label=label)
        for model in models:
            reference = next((r for r in rows if r.model == model and r.cell == "reference"
                              and r.threshold_m == min(x.threshold_m for x in rows if x.model == model)), None)
            if reference is not None:
                ax.axhline(reference.recall[n], color="0.4", linestyle=styles[model], linewidth=1,
                           label=f"{'reference' if len(models) == 1 else model + ' · reference'} views")
        ax.set(xlabel=xlabel, ylabel=f"recall@{n}", ylim=(0, 1.02), title=recall_title(rows, n, models))
        if name == RECALL_VS_KBPS:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
        if crowded:
            ax.legend(fontsize=7, ncol=2 if len(curves) > 16 else 1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(fontsize=8)
        path = Path(out_dir) / name
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        paths.append(path)
    return paths
