"""`vidvpr report`."""

from __future__ import annotations

from pathlib import Path

import click

from vidvpr.cli.common import NonEmptyPath, emit_json, handle_errors, output_options


@click.command("report")
@click.argument("study_dir", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=NonEmptyPath(path_type=Path), help="The HTML file to write.")
@click.option("--eval", "eval_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Eval folder (repeatable) [default: those the study read; without a study, the study is "
                   "computed from these].")
@click.option("--manifest", "manifest_dir", type=click.Path(path_type=Path), default=None,
              help="Manifest folder [default: the one the evaluations recorded].")
@click.option("--enc", "enc_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Encode folder (repeatable) [default: those the evaluations recorded].")
@click.option("--title", default=None, help="Report title [default: names the dataset].")
@output_options
@handle_errors
def report_command(study_dir: Path | None, out: Path, eval_dirs: tuple[Path, ...], manifest_dir: Path | None,
                   enc_dirs: tuple[Path, ...], title: str | None, quiet: bool, as_json: bool) -> None:
    """One self-contained HTML report (images embedded, no network, no script; phone and print
    friendly): dataset, grid, recall, Bjøntegaard deltas, Pareto front, how long a sequence each QP
    needs, the VPR-Bench measures (precision-recall, AUC-PR, recall at 100% precision, extraction
    time, descriptor size), worst-hit cells, provenance."""
    from vidvpr.report.build import ReportConfig, build_report

    config = ReportConfig(study_dir=study_dir, eval_dirs=eval_dirs, manifest_dir=manifest_dir, enc_dirs=enc_dirs,
                          title=title)
    result = build_report(out, config)
    if as_json:
        emit_json({"report": str(result.path), "bytes": result.bytes, "sections": result.sections,
                   "notes": result.notes})
    elif not quiet:
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        click.echo(f"report {result.path} ({result.bytes / 1e6:.1f} MB, {len(result.sections)} sections)", err=True)
