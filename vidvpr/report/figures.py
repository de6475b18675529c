"""Figures only the report draws: the recordings' trajectories on a map (easting/northing)."""

from __future__ import annotations

from typing import Any

from vidvpr.dataset.manifest import Manifest
from vidvpr.study.plots import plain, png_bytes

SPLIT_STYLE = {"database": "-", "query": "--"}


def trajectories(manifest: Manifest) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(recording, split) -> positions of its sampled frames in frame order (one per frame, not per view)."""
    tracks: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    for row in manifest.database + manifest.queries:
        tracks.setdefault((row.recording, row.split), {})[row.frame] = (row.easting_m, row.northing_m)
    return {key: [frames[f] for f in sorted(frames)] for key, frames in tracks.items()}


def map_png(manifest: Manifest) -> bytes | None:
    """Each recording's path (database solid, queries dashed), its start marked; None without rows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tracks = trajectories(manifest)
    if not tracks:
        return None
    fig: Any = Figure(figsize=(7.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, ((recording, split), points) in enumerate(tracks.items()):
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        colour = f"C{i % 10}"
        ax.plot(xs, ys, linestyle=SPLIT_STYLE.get(split, "-"), color=colour, linewidth=1.6,
                label=plain(f"{recording} ({split}, {len(points)} frames)"))
        ax.plot(xs[:1], ys[:1], marker="o", color=colour, markersize=6)
    local = manifest.meta.utm_zone is None
    ax.set(xlabel="easting (m)" + (" — local frame" if local else ""), ylabel="northing (m)",
           title=plain(f"Trajectories of {manifest.meta.name} (dots: starts)"))
    ax.set_aspect("equal", adjustable="datalim")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return png_bytes(fig)
