"""`vidvpr export`."""

from __future__ import annotations

from pathlib import Path

import click

from vidvpr.cli.common import NonEmptyPath, emit_json, handle_errors, output_options, parse_names
from vidvpr.dataset.vpr_names import DEFAULT_JPEG_QUALITY, DEFAULT_VPR_SPLIT, VPR_SPLITS
from vidvpr.encoding.codecs import CODECS, DEFAULT_CODEC


@click.command("export")
@click.argument("manifest_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=NonEmptyPath(path_type=Path),
              help="Output folder: OUT/images/<split>/{database,queries}/*.jpg and OUT/export.json "
                   "(export-<split>.json for train and val).")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root [default: the one recorded in manifest.json].")
@click.option("--enc", "enc_dir", type=click.Path(path_type=Path), default=None,
              help="Encode grid folder (ENC/<recording>/<view>/<res>/qp<NN>.mp4, <res>/<codec>/...); with --res and "
                   "--qp (and --codec), export that cell.")
@click.option("--res", default=None, help="Encode cell resolution, e.g. 360p [default: the reference views].")
@click.option("--qp", type=int, default=None, help="Encode cell quantiser value, e.g. 30 (JPEG cells: their quality).")
@click.option("--codec", default=DEFAULT_CODEC, show_default=True,
              help=f"Encode cell codec: {', '.join(CODECS)}.")
@click.option("--quality", "jpeg_quality", type=int, default=DEFAULT_JPEG_QUALITY, help="JPEG quality 1-100.")
@click.option("--views", "views", default=None, metavar="VIEW,...",
              help="Export only these views, e.g. yaw000_pitch+00 (positives: the database rows kept) [default: all].")
@click.option("--split", type=click.Choice(VPR_SPLITS), default=DEFAULT_VPR_SPLIT, show_default=True,
              help="Which images/<split>/ to write: test for benchmarks, train for `vidvpr distill --train OUT` "
                   "and other training code. Splits of several manifests can share one OUT.")
@click.option("--include-unmatched", is_flag=True, help="Also export queries without positives (benchmarks count them as failures).")
@click.option("--force", is_flag=True, help="Replace an existing export, or redo one with the same parameters.")
@output_options
@handle_errors
def export_command(manifest_dir: Path, out_dir: Path, root: Path | None, enc_dir: Path | None, res: str | None,
                   qp: int | None, codec: str, jpeg_quality: int, views: str | None, split: str,
                   include_unmatched: bool, force: bool, quiet: bool, as_json: bool) -> None:
    """Write a manifest's frames as JPEGs in the VPR-datasets-downloader layout, named
    @east@north@zone@letter@lat@lon@...@.jpg, from the reference views or an encode cell."""
    from vidvpr.core.progress import progress_bar
    from vidvpr.dataset.export import ExportConfig, export_vpr

    config = ExportConfig(enc_dir=enc_dir, res=res, qp=qp, codec=codec, root=root, jpeg_quality=jpeg_quality,
                          include_unmatched=include_unmatched, views=parse_names(views, "--views"), split=split, force=force)
    with progress_bar(None, "export", unit="image", quiet=quiet) as bar:
        result = export_vpr(manifest_dir, out_dir, config, on_image=bar.update,
                            on_start=lambda total: bar.reset(total=total))
    if as_json:
        emit_json(result.as_dict())
    elif not quiet:
        state = "already done, skipped" if result.skipped else "wrote"
        click.echo(f"{state}: {result.database} database and {result.queries} query images from the "
                   f"{result.source} in {Path(out_dir) / 'images' / result.split} ({result.queries_without_positives_skipped} "
                   "queries without positives left out)", err=True)
        heading = "" if result.max_heading_diff_deg is None else " (file names cannot carry its heading limit)"
        click.echo(f"evaluate with the manifest's positive radius, {result.radius_m:g} m{heading}: e.g. "
                   f"--positive_dist_threshold {result.radius_m:g} in gmberton's VPR evaluation code", err=True)
