"""The report's first sections: summary, dataset and encode grid (each returns escaped HTML)."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean
from typing import Any

from vidvpr.evaluate.results import UNMATCHED_WORDS
from vidvpr.report.figures import map_png
from vidvpr.report.html import bullet_list, esc, facts, figure, number, paragraph, table
from vidvpr.report.inputs import EncodeFolder, ReportInputs


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def summary(inputs: ReportInputs) -> str:
    study = inputs.study
    n = study.recall_at[0]
    codecs = sorted({c.codec for c in study.curves})
    parts = [facts([
        ("dataset", study.dataset.get("name")),
        ("positives", f"within {study.threshold_m:g} m"),
        ("recall counts", f"{UNMATCHED_WORDS[study.unmatched_queries]} (vidvpr eval --unmatched-queries "
                          f"{study.unmatched_queries})"),
        ("models", ", ".join(study.systems)),
        ("codecs", ", ".join(codecs)),
        ("Bjøntegaard", (f"{study.method.bd_rate_function} and {study.method.bd_recall_function} "
                        f"({study.method.package} {study.method.version}), {study.method.interpolation} interpolation")),
    ])]
    ordered = sorted((c for c in study.comparisons if c.n == n), key=lambda c: (c.kind != "model", c.resolution != "any"))
    if ordered:
        parts.append(f"<h3>Headlines at recall@{n}</h3>" + bullet_list([c.headline for c in ordered], "headlines"))
    else:
        parts.append(paragraph("No Bjøntegaard comparison: the study holds a single codec and a single model.", "note"))
    budgets = [b for b in study.budgets if b.n == n]
    if budgets:
        parts.append("<h3>Best cell under a budget</h3>" + bullet_list(
            [f"{b.system}, at most {b.budget_kbps:g} kbps: " + (
                f"{b.best.cell} — recall@{n} {b.best.recall[n]:.3f} at {b.best.kbps:g} kbps" if b.best else str(b.reason))
             for b in budgets]))
    if inputs.notes:
        parts.append(bullet_list(inputs.notes, "note"))
    return "".join(parts)


def dataset(inputs: ReportInputs) -> str:
    manifest = inputs.manifest
    if manifest is None:
        return paragraph("The manifest was not available; see the notes in the summary.", "note")
    meta = manifest.meta
    positives, params = meta.positives, meta.parameters
    parts = [facts([
        ("name", meta.name), ("manifest", str(manifest.directory)),
        ("database rows", meta.counts.get("database")), ("query rows", meta.counts.get("query")),
        ("positives per query", (f"median {positives.get('median')}, {positives.get('min')}–{positives.get('max')} "
                                f"(within {params.get('radius_m')} m, heading within "
                                f"{params.get('max_heading_diff_deg')}°)")),
        ("queries without positives", positives.get("queries_without_positives")),
        ("sampling", f"database {params.get('database_sampling')}, query {params.get('query_sampling')}"),
        ("coordinates", f"UTM zone {meta.utm_zone.number}{meta.utm_zone.letter}" if meta.utm_zone else "local frame"),
    ])]
    rows_per = defaultdict(int)
    for row in manifest.database + manifest.queries:
        rows_per[row.recording] += 1
    parts.append(table(
        ["recording", "split", "views", "view frames", "rows", "trajectory", "samples", "time range (s)"],
        [[r.name, r.split, len(r.views), sum(v.frames for v in r.views), rows_per[r.name],
          f"{r.trajectory.format}: {r.trajectory.path}", r.trajectory.samples,
          "–".join(f"{t:.1f}" for t in r.trajectory.time_range_s)] for r in meta.inputs],
        numeric=(2, 3, 4, 6)))
    png = map_png(manifest)
    if png:
        parts.append(figure(png, "map of the recordings' trajectories",
                            "Positions of the sampled frames per recording, from the manifest's rows."))
    return "".join(parts)


def _qp_order(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdecimal() else (1 << 30, value)  # isdigit() holds for "²", which int() refuses


# The grid table's speeds, each named by what it measures, and how each is computed (the caption).
# wall frames/s comes from encode_s; the others are encodes.csv columns (vidvpr.encoding.speed).
WALL_SPEED = ("wall frames/s",
              "wall frames/s = frames / encode_s, the encode process's wall time shared evenly among the cells "
              "it made (decoding the view, scaling and in-process quality measuring included; it varies with the "
              "machine's load)")
SPEED_COLUMNS = {
    "encode_cpu_s": ("encoder CPU-s",
                     "encoder CPU-s = CPU seconds of the cell's encoder thread plus an even share of the process's "
                     "shared encode work (view decoding, scaling, encoder-library worker threads), read from /proc "
                     "every 0.1 s"),
    "encode_fps": ("frames/CPU-s",
                   "frames/CPU-s = frames / encoder CPU-s, the frames per second one core sustains for the cell"),
}


def _speed_columns(rows: list[dict[str, str]]) -> list[str]:
    """Encode-speed columns the table has beyond encode_s (frames per second, CPU seconds)."""
    names = rows[0].keys() if rows else []
    return [c for c in names if c != "encode_s" and ("fps" in c or "cpu" in c or c.endswith("_speed"))]


def _grid_table(folder: EncodeFolder) -> str:
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
    for row in folder.rows:
        groups[(row.get("codec", ""), row.get("resolution", ""), row.get("qp", ""))].append(row)
    extra = _speed_columns(folder.rows)

    def avg(rows: list[dict[str, str]], column: str) -> float | None:
        values = [v for v in (_float(r.get(column)) for r in rows) if v is not None]
        return round(mean(values), 4) if values else None

    def wall_fps(rows: list[dict[str, str]]) -> float | None:
        rates = [f / s for f, s in ((_float(r.get("frames")), _float(r.get("encode_s"))) for r in rows) if f and s]
        return round(mean(rates), 1) if rates else None

    body = []
    order = sorted(groups, key=lambda k: (k[0], k[1], _qp_order(k[2])))
    for codec, resolution, qp in order:
        rows = groups[(codec, resolution, qp)]
        body.append([codec, resolution, qp, len(rows), avg(rows, "kbps"), avg(rows, "psnr_y"), avg(rows, "ssim_y"),
                     avg(rows, "vmaf"), wall_fps(rows), *(avg(rows, c) for c in extra)])
    headers = ["codec", "resolution", "quantiser", "views", "kbps", "PSNR-Y (dB)", "SSIM-Y", "VMAF",
               WALL_SPEED[0], *(SPEED_COLUMNS.get(c, (c,))[0] for c in extra)]
    digits = [0, 0, 0, 0, 3, 2, 3, 1, 1, *(1 if "fps" in c else 3 for c in extra)]  # frames/s as the wall one
    meanings = [WALL_SPEED[1], *(SPEED_COLUMNS[c][1] for c in extra if c in SPEED_COLUMNS)]
    return table(headers, [[number(v, d) if isinstance(v, float) else v for v, d in zip(row, digits)] for row in body],
                 numeric=range(2, len(headers)), caption=f"Means over views; {'; '.join(meanings)}.")


def grid(inputs: ReportInputs) -> str:
    if not inputs.encodes:
        return paragraph("No encode folder was available; see the notes in the summary.", "note")
    parts = []
    for folder in inputs.encodes:
        config = (folder.table or {}).get("config") or {}
        parts.append(f"<h3>Encode folder {esc(folder.path)}</h3>")
        parts.append(facts([("cells", len(folder.rows)),
                            ("codecs", ", ".join(sorted({r.get("codec", "?") for r in folder.rows}))),
                            ("preset", config.get("preset", "?")),
                            ("quantisers", ", ".join(sorted({r.get("qp", "?") for r in folder.rows}, key=_qp_order))),
                            ("resolutions", ", ".join(dict.fromkeys(r.get("resolution", "?") for r in folder.rows)))]))
        if folder.rd_png:
            parts.append(figure(folder.rd_png, f"rate–distortion plot of {folder.path}",
                                "Rate–distortion of the grid (rd.png of the encode folder)."))
        parts.append(_grid_table(folder))
    return "".join(parts)
