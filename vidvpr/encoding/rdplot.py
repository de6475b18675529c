"""The rate–distortion plot of an encode grid (`rd.png`): kbps against QP, PSNR-Y against kbps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import atomic_output

PLOT_NAME = "rd.png"


def curve_label(resolution: str, width: int, height: int) -> str:
    """Legend name of a resolution: its label and, for a named one, the size it became ("360p (640x360)")."""
    size = f"{width}x{height}"
    return size if resolution == size else f"{resolution} ({size})"


def rd_curves(rows: Sequence[dict[str, Any]]) -> dict[str, list[tuple[int, float, float | None]]]:
    """Per resolution and size: (qp, mean kbps, mean PSNR-Y) over views, sorted by QP; largest size first.

    A named resolution gives different sizes for views of different aspect; each size is its own curve.
    """
    grouped: dict[tuple[int, int, str], dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grouped[(row["height"], row["width"], row["resolution"])][row["qp"]].append(row)
    curves: dict[str, list[tuple[int, float, float | None]]] = {}
    for (height, width, label), by_qp in sorted(grouped.items(), reverse=True):
        points = []
        for qp, cells in sorted(by_qp.items()):
            psnrs = [cell["psnr_y"] for cell in cells if cell["psnr_y"] is not None]
            points.append((qp, sum(cell["kbps"] for cell in cells) / len(cells),
                           sum(psnrs) / len(psnrs) if psnrs else None))
        curves[curve_label(label, width, height)] = points
    return curves


def averaged_over(rows: Sequence[dict[str, Any]]) -> str:
    """What each point averages: "mean over 4 views", or per size when sizes cover different views."""
    views: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in rows:
        views[curve_label(row["resolution"], row["width"], row["height"])].add((row["recording"], row["view"]))
    counts = {len(members) for members in views.values()}
    if len(counts) != 1:
        return "mean over the views of each size"
    count = counts.pop()
    return f"mean over {count} view{'s' if count != 1 else ''}"


def plot_rd(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """`rd.png`: kbps vs QP and PSNR-Y vs kbps, one line per resolution (means over views)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg, without pyplot's global state
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    curves = rd_curves(rows)
    codecs = sorted({f"{row['codec']} {row['preset']}{' flat-qp' if row['flat_qp'] else ''}" for row in rows})
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    rate_ax, rd_ax = fig.subplots(1, 2)
    for label, points in curves.items():
        qps = [qp for qp, _, _ in points]
        kbps = [rate for _, rate, _ in points]
        rate_ax.plot(qps, kbps, marker="o", label=label)
        measured = [(rate, psnr) for _, rate, psnr in points if psnr is not None]
        rd_ax.plot([rate for rate, _ in measured], [psnr for _, psnr in measured], marker="o", label=label)
        for qp, rate, psnr in points:
            if psnr is not None:
                rd_ax.annotate(str(qp), (rate, psnr), textcoords="offset points", xytext=(3, 3), fontsize=7)
    rate_ax.set(xlabel="QP", ylabel="bitrate (kbps, log)", yscale="log", title="Rate vs QP")
    rate_ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # QPs: integers, 5s
    rd_ax.set(xlabel="bitrate (kbps, log)", ylabel="PSNR-Y vs the view scaled to that size (dB)", xscale="log",
              title="Rate–distortion (labels: QP)")
    for axis in (rate_ax.yaxis, rd_ax.xaxis):  # kbps as plain numbers at 1, 2, 5 × 10^k
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
    for ax in (rate_ax, rd_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="resolution")
    fig.suptitle(f"{', '.join(codecs)} — {averaged_over(rows)}")
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(path)
