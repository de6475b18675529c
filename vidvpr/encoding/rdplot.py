"""The rate–distortion plot of an encode grid (`rd.png`): kbps against the quantiser, PSNR-Y against
kbps; one colour per codec, one line style per resolution."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidvpr.core.atomic import atomic_output

PLOT_NAME = "rd.png"
DEFAULT_CODEC = "libx264"
LINESTYLES = ("-", "--", ":", "-.")


def curve_label(resolution: str, width: int, height: int) -> str:
    """Legend name of a resolution: its label and, for a named one, the size it became ("360p (640x360)")."""
    size = f"{width}x{height}"
    return size if resolution == size else f"{resolution} ({size})"


def rd_curves(rows: Sequence[dict[str, Any]]) -> dict[str, list[tuple[int, float, float | None]]]:
    """Per codec, resolution and size: (qp, mean kbps, mean PSNR-Y) over views, sorted by quantiser;
    codecs in order of appearance, largest size first. Curves of codecs other than libx264 are
    named "<codec> <resolution>".

    A named resolution gives different sizes for views of different aspect; each size is its own curve.
    """
    grouped: dict[tuple[int, int, int, str, str], dict[int, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list))
    order = _codec_order(rows)
    for row in rows:
        codec = row.get("codec", DEFAULT_CODEC)
        grouped[(-order.index(codec), row["height"], row["width"], codec, row["resolution"])][row["qp"]].append(row)
    curves: dict[str, list[tuple[int, float, float | None]]] = {}
    for (_, height, width, codec, label), by_qp in sorted(grouped.items(), reverse=True):
        points = []
        for qp, cells in sorted(by_qp.items()):
            psnrs = [cell["psnr_y"] for cell in cells if cell["psnr_y"] is not None]
            points.append((qp, sum(cell["kbps"] for cell in cells) / len(cells),
                           sum(psnrs) / len(psnrs) if psnrs else None))
        name = curve_label(label, width, height)
        curves[name if order == [DEFAULT_CODEC] else f"{codec} {name}"] = points
    return curves


def _codec_order(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The grid's codecs in registry order (libx264 first)."""
    from vidvpr.encoding.codecs import CODECS

    found = {row.get("codec", DEFAULT_CODEC) for row in rows}
    return sorted(found, key=lambda name: list(CODECS).index(name) if name in CODECS else len(CODECS))


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
    fig = rd_figure(rows)
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(path)


# Legend handles this long (in font sizes) show a dashed or dotted line on both sides of its marker;
# at matplotlib's 2.0 the marker covered the gaps and a dashed resolution looked solid.
LEGEND_HANDLE_LENGTH = 4.0


def rd_figure(rows: Sequence[dict[str, Any]]) -> Any:
    """The Figure of `rd.png` (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg, without pyplot's global state
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    curves = rd_curves(rows)
    codecs = list(dict.fromkeys(f"{row['codec']}{' ' + str(row['preset']) if row['preset'] else ''}"
                                f"{' flat-qp' if row['flat_qp'] else ''}" for row in rows))
    names = _codec_order(rows)
    sizes = list(dict.fromkeys(curve_label(row["resolution"], row["width"], row["height"]) for row in rows))
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    rate_ax, rd_ax = fig.subplots(1, 2)
    for label, points in curves.items():
        codec = next((name for name in names if label.startswith(f"{name} ")), DEFAULT_CODEC)
        size = label.removeprefix(f"{codec} ")
        style = {"color": f"C{names.index(codec) % 10}", "linestyle": LINESTYLES[sizes.index(size) % len(LINESTYLES)]
                 if size in sizes else "-", "marker": "o", "label": label}
        qps = [qp for qp, _, _ in points]
        kbps = [rate for _, rate, _ in points]
        rate_ax.plot(qps, kbps, **style)
        measured = [(rate, psnr) for _, rate, psnr in points if psnr is not None]
        rd_ax.plot([rate for rate, _ in measured], [psnr for _, psnr in measured], **style)
        for qp, rate, psnr in points:
            if psnr is not None:
                rd_ax.annotate(str(qp), (rate, psnr), textcoords="offset points", xytext=(3, 3), fontsize=7)
    quantisers = sorted({str(row.get("quantiser", "qp")) for row in rows})
    rate_ax.set(xlabel=" or ".join(quantisers), ylabel="bitrate (kbps, log)", yscale="log",
                title=f"Rate vs {' or '.join(quantisers)}")
    rate_ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # QPs: integers, 5s
    rd_ax.set(xlabel="bitrate (kbps, log)", ylabel="PSNR-Y vs the view scaled to that size (dB)", xscale="log",
              title=f"Rate–distortion (labels: {' or '.join(quantisers)})")
    for axis in (rate_ax.yaxis, rd_ax.xaxis):  # kbps as plain numbers at 1, 2, 5 × 10^k
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
    for ax in (rate_ax, rd_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="codec, resolution" if len(names) > 1 else "resolution", fontsize=7,
                  handlelength=LEGEND_HANDLE_LENGTH)
    fig.suptitle(textwrap.fill(f"{', '.join(codecs)} — {averaged_over(rows)}", 160), fontsize=9 if len(codecs) > 2 else 12)
    return fig
