"""The demo study's figure: recall@1 of every model in the training world, in the held-out world,
and on the held-out night walk, side by side on one y axis (matplotlib, imported when drawing)."""

from __future__ import annotations

from pathlib import Path

from vidvpr.core.atomic import atomic_output

# the training world's panel says it is not held-out: the students trained on its database walk
PANELS = (("train", "training world: query walk\n(students trained on its database walk)"),
          ("heldout", "held-out world: query walk\n(nothing trained on it)"),
          ("night", "held-out world: night walk\n(nothing trained on it)"))
ROLE_STYLE = {"teacher": ("C0", "o", "teacher"), "finetuned": ("C1", "s", "fine-tuned (triplet)"),
              "distilled": ("C2", "^", "distilled (ICKD+MSE+triplet, QP cell)"),
              "night": ("C3", "D", "night student (lowlight day frames)")}


def _qp(cell: str) -> int | None:
    return int(cell.rsplit("qp", 1)[1]) if "/qp" in cell else None


def plot_worlds(summary: dict[str, dict[str, dict[str, float]]], path: Path) -> Path:
    """`path` (PNG): a panel per evaluation in `summary` (evaluation -> model role -> cell -> recall@1):
    lines against QP for the query walks (the reference views, when evaluated, as dotted levels),
    bars per cell for the night walk."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [(key, title) for key, title in PANELS if key in summary]
    fig = Figure(figsize=(4.2 * len(panels), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (key, title) in zip(axes, panels):
        by_role = summary[key]
        if key == "night":
            cells = list(dict.fromkeys(cell for by_cell in by_role.values() for cell in by_cell))
            width = 0.8 / max(1, len(by_role))
            for i, (role, by_cell) in enumerate(by_role.items()):
                colour, _, label = ROLE_STYLE.get(role, (f"C{i + 4}", "o", role))
                xs = [c + (i - (len(by_role) - 1) / 2) * width for c in range(len(cells))]
                bars = ax.bar(xs, [by_cell.get(cell, 0.0) for cell in cells], width * 0.9, color=colour, label=label)
                ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
            ax.set_xticks(range(len(cells)), [f"{cell} views" for cell in cells])
        else:
            for i, (role, by_cell) in enumerate(by_role.items()):
                colour, marker, label = ROLE_STYLE.get(role, (f"C{i + 4}", "o", role))
                points = sorted((_qp(cell), value) for cell, value in by_cell.items() if _qp(cell) is not None)
                ax.plot([x for x, _ in points], [y for _, y in points], marker=marker, color=colour, label=label)
                if "reference" in by_cell:
                    ax.axhline(by_cell["reference"], color=colour, linestyle=":", linewidth=1)
            ax.set_xlabel("QP (database and queries from the same cell)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("recall@1")
    axes[0].set_ylim(0.0, 1.0)
    handles: dict[str, object] = {}
    for ax in axes:  # the lines' handles before the bars'
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(4, len(handles)),
               fontsize=8)
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(path)
