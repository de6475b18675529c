"""`vidvpr study`."""

from __future__ import annotations

from pathlib import Path

import click

from vidvpr.cli.common import NonEmptyPath, comma_items, emit_json, handle_errors, output_options
from vidvpr.study.bdelta import INTERPOLATIONS
from vidvpr.study.records import StudyRecord
from vidvpr.study.stage import StudyConfig

DEFAULTS = StudyConfig()


def sequence_lines(study: StudyRecord) -> list[str]:
    """Per system, codec and resolution: the sequence length each QP needs to regain the target."""
    groups: dict[tuple[str, int, str, str], list] = {}
    for need in study.sequences:
        groups.setdefault((need.system, need.n, need.codec, need.resolution), []).append(need)
    lines = []
    for (system, n, codec, resolution), needs in groups.items():
        answers = ", ".join(f"QP {need.qp} L = {need.needed}" if need.needed else f"QP {need.qp} {need.reason}"
                            for need in sorted(needs, key=lambda need: need.qp))
        lines.append(f"sequence length to regain the uncompressed recall@{n} ({needs[0].target:.3f}) for {system}, "
                     f"{codec} {resolution}: {answers}")
    return lines


def _ints(text: str) -> tuple[int, ...]:
    parts = comma_items(text, "--recall-at")
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        raise click.BadParameter(f"--recall-at takes a comma-separated list of integers, got {text!r}") from None


@click.command("study")
@click.argument("eval_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=NonEmptyPath(path_type=Path),
              help="Study folder: study.json, study.csv, plots (PNG and SVG); replaced as a whole.")
@click.option("--recall-at", default=",".join(map(str, DEFAULTS.recall_at)), metavar="N,...",
              help="Recall@N for curves, Bjøntegaard deltas and the Pareto front.")
@click.option("--threshold", "threshold_m", type=float, default=None,
              help="Distance threshold (m) [default: the smallest every eval folder has].")
@click.option("--interpolation", default=DEFAULTS.interpolation, type=click.Choice(list(INTERPOLATIONS)),
              help="Bjøntegaard interpolation (bjontegaard package): pchip (monotone), cubic (VCEG-M33), akima.")
@click.option("--anchor-codec", default=None, help="Codec the others are compared with [default: libx264 if present].")
@click.option("--anchor-model", default=None,
              help="Model the others are compared with, e.g. the teacher [default: the first eval folder's first].")
@click.option("--budget-kbps", "budgets", type=float, multiple=True,
              help="Name the best cell at or below this bitrate per model (repeatable).")
@output_options
@handle_errors
def study_command(eval_dirs: tuple[Path, ...], out_dir: Path, recall_at: str, threshold_m: float | None,
                  interpolation: str, anchor_codec: str | None, anchor_model: str | None, budgets: tuple[float, ...],
                  quiet: bool, as_json: bool) -> None:
    """Recall against bitrate from eval folders of one dataset: curves per model × codec ×
    resolution, Bjøntegaard deltas (codec vs codec, model vs model), the Pareto front and the best
    cell under a budget; with sequences evaluated (vidvpr eval --seq-len), the sequence length each
    QP needs to regain the uncompressed single-frame recall and the bits sequences save; each
    model's descriptor cost (extraction ms per image, bytes)."""
    from vidvpr.evaluate.results import trained_on_notes
    from vidvpr.study.stage import run_study

    config = StudyConfig(recall_at=_ints(recall_at), threshold_m=threshold_m, interpolation=interpolation,
                         anchor_codec=anchor_codec, anchor_model=anchor_model, budgets_kbps=budgets)
    result = run_study(eval_dirs, out_dir, config)
    study = result.record
    if as_json:
        emit_json({"study": str(result.json_path), "csv": str(result.csv_path),
                   "plots": [str(p) for p in result.plots], **study.to_json()})
        return
    if quiet:
        return
    click.echo(f"Bjøntegaard deltas ({study.method.bd_rate_function} / {study.method.bd_recall_function}, "
               f"{study.method.interpolation} interpolation) at {study.threshold_m:g} m:")
    for comparison in study.comparisons:
        click.echo(f"  {comparison.headline}")
    if not study.comparisons:
        click.echo("  none: the eval folders hold a single codec and a single model")
    for f in study.fronts:
        cells = ", ".join(f"{p.cell} ({p.kbps:g} kbps, {p.recall[f.n]:.3f})" for p in f.points)
        click.echo(f"Pareto front of {f.system} at recall@{f.n}: {cells}")
    for b in study.budgets:
        answer = (f"{b.best.cell}, recall@{b.n} {b.best.recall[b.n]:.3f} at {b.best.kbps:g} kbps" if b.best
                  else b.reason)
        click.echo(f"best under {b.budget_kbps:g} kbps for {b.system}: {answer}")
    for line in sequence_lines(study):
        click.echo(line)
    for record in study.inputs:
        for note in trained_on_notes(record.models):
            click.echo(f"note: {note} (in {record.eval_dir})")
    click.echo(f"study {result.json_path}, {result.csv_path}; {len(result.plots)} plots in {result.folder}", err=True)
