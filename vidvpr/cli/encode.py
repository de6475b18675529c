"""`vidvpr encode`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from vidvpr.cli.common import emit_json, handle_errors, output_options
from vidvpr.encoding.plan import CODECS, DEFAULT_QP_SPEC, DEFAULT_RES_SPEC, GOP_SECONDS, EncodeConfig

DEFAULTS = EncodeConfig()


@click.command("encode")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder: OUT/<recording>/<view>/<res>/qp<NN>.mp4 (+ .json), OUT/encodes.csv, encodes.json, rd.png.")
@click.option("--qp", "qp_spec", default=DEFAULT_QP_SPEC, help="QPs: A..B (step 5), A..B:STEP or a list 20,30,45.")
@click.option("--res", "res_spec", default=None,
              help="Resolutions: 360p, 480p, 720p, 1080p (height; width keeps the view's aspect) or WxH "
                   f"[default: {DEFAULT_RES_SPEC}, those not larger than the view].")
@click.option("--codec", default=DEFAULTS.codec, type=click.Choice(list(CODECS)), help="Encoder.")
@click.option("--preset", default=DEFAULTS.preset, help="Encoder preset.")
@click.option("--gop", type=int, default=None,
              help=f"Keyframe interval in frames, fixed in every cell [default: {GOP_SECONDS:g} s of frames].")
@click.option("--flat-qp", is_flag=True,
              help="Same QP on I, P and B frames (ipratio=pbratio=1) [default: I frames qp-3, B frames qp+1/qp+2].")
@click.option("--jobs", type=int, default=DEFAULTS.jobs, help="Views encoded at once.")
@click.option("--no-vmaf", is_flag=True, help="Skip VMAF (PSNR-Y and SSIM are always measured).")
@click.option("--allow-upscale", is_flag=True, help="Allow resolutions larger than the view.")
@click.option("--force", is_flag=True, help="Redo cells even if finished outputs with the same parameters exist.")
@click.option("--dry-run", is_flag=True, help="Print the plan (cells, outputs, which would be skipped); write nothing.")
@click.option("--ffmpeg", "ffmpeg_path", type=click.Path(dir_okay=False), envvar="VIDVPR_FFMPEG", help="ffmpeg binary to use.")
@output_options
@handle_errors
def encode_command(inputs: tuple[Path, ...], out_dir: Path, qp_spec: str, res_spec: str | None, codec: str,
                   preset: str, gop: int | None, flat_qp: bool, jobs: int, no_vmaf: bool, allow_upscale: bool,
                   force: bool, dry_run: bool, ffmpeg_path: str | None, quiet: bool, as_json: bool) -> None:
    """Encode view videos into a resolution × constant-QP grid and measure rate, PSNR-Y, SSIM and VMAF per cell."""
    from vidvpr.core.progress import progress_bar
    from vidvpr.encoding.grid import encode_grid, plan_encode
    from vidvpr.encoding.plan import parse_qp_spec, parse_resolutions
    from vidvpr.media.ffmpeg import find_ffmpeg

    config = replace(DEFAULTS, codec=codec, preset=preset, gop=gop, jobs=jobs, qps=parse_qp_spec(qp_spec),
                     resolutions=parse_resolutions(res_spec) if res_spec is not None else None,
                     flat_qp=flat_qp, vmaf=not no_vmaf, allow_upscale=allow_upscale, force=force)
    ffmpeg = find_ffmpeg(ffmpeg_path)
    if dry_run:
        plan = plan_encode(list(inputs), out_dir, config, want_vmaf=config.vmaf and ffmpeg.has_vmaf)
        cells = [{"cell": s.cell.name, "action": "skip" if s.done else "encode", "width": s.cell.width,
                  "height": s.cell.height, "qp": s.cell.qp, "gop": s.cell.gop, "video": str(s.cell.video),
                  "sidecar": str(s.cell.sidecar)} for s in plan]
        if as_json:
            emit_json({"cells": cells})
        else:
            for cell in cells:
                click.echo(f"{cell['action']:6}  {cell['width']}x{cell['height']} qp{cell['qp']:02d} gop {cell['gop']}  {cell['video']}")
            todo = sum(cell["action"] == "encode" for cell in cells)
            click.echo(f"{len(cells)} cells: {todo} to encode, {len(cells) - todo} already done (dry run, nothing written)")
        return
    with progress_bar(None, "encode", unit="frame", quiet=quiet) as bar:
        result = encode_grid(list(inputs), out_dir, config, ffmpeg=ffmpeg, on_start=lambda total: bar.reset(total=total),
                             on_frames=bar.update, on_status=bar.set_description)
    if as_json:
        emit_json({"encoded": result.encoded, "skipped": result.skipped, "table": str(result.table),
                   "table_json": str(result.table_json), "plot": str(result.plot), "rows": result.rows})
    elif not quiet:
        click.echo(f"encoded {len(result.encoded)} cells, skipped {len(result.skipped)} already done; "
                   f"table {result.table} ({len(result.rows)} cells in all), plot {result.plot}", err=True)
