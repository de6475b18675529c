"""`vidvpr encode`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from vidvpr.cli.common import (NonEmptyPath, emit_json, executor_for, handle_errors, output_options, retry_lines,
                               scheduler_option)
from vidvpr.encoding.codecs import CODECS
from vidvpr.encoding.plan import DEFAULT_QP_SPEC, DEFAULT_RES_SPEC, GOP_SECONDS, EncodeConfig

DEFAULTS = EncodeConfig()
CODEC_HELP = "; ".join(f"{c.name}: {c.quantiser.name} {c.quantiser.low}-{c.quantiser.high}" for c in CODECS.values())


@click.command("encode")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=NonEmptyPath(path_type=Path),
              help="Output folder: OUT/<recording>/<view>/<res>/qp<NN>.mp4 (libx264), "
                   "OUT/<recording>/<view>/<res>/<codec>/<quantiser><NN>.mp4 (others), each + .json; OUT/encodes.csv, "
                   "encodes.json, rd.png.")
@click.option("--codec", "codec_spec", default=",".join(DEFAULTS.codecs), show_default=True,
              help=f"Codecs of the grid, comma-separated ({CODEC_HELP}).")
@click.option("--qp", "qp_specs", multiple=True,
              help=f"Quantiser values: A..B (step 5), A..B:STEP or a list 20,30,45, for every codec quantised by "
                   f"QP [default: {DEFAULT_QP_SPEC}]; CODEC=SPEC for one codec (repeat the option), e.g. "
                   "--qp jpeg=10,50,90 [jpeg default: 10..90:20].")
@click.option("--res", "res_spec", default=None,
              help="Resolutions: 360p, 480p, 720p, 1080p (height; width keeps the view's aspect) or WxH "
                   f"[default: {DEFAULT_RES_SPEC}, those not larger than the view].")
@click.option("--preset", "preset_spec", default=None,
              help="Encoder preset for every codec, and/or CODEC=PRESET items, e.g. fast,libsvtav1=10 [default: "
                   + ", ".join(f"{c.name} {c.default_preset}" for c in CODECS.values() if c.default_preset) + "].")
@click.option("--gop", type=int, default=None,
              help=f"Keyframe interval in frames, fixed in every cell [default: {GOP_SECONDS:g} s of frames].")
@click.option("--flat-qp", is_flag=True,
              help="Same quantiser on every frame type: x264/x265 ipratio=pbratio=1 [default: I qp-3, B qp+1/qp+2], "
                   "SVT-AV1 qindex offsets 0 (libvpx-vp9 and jpeg always are; libvvenc cannot be).")
@click.option("--jobs", type=int, default=DEFAULTS.jobs, help="Views encoded at once.")
@click.option("--no-vmaf", is_flag=True, help="Skip VMAF (PSNR-Y and SSIM are always measured).")
@click.option("--vmaf-every", type=int, default=DEFAULTS.vmaf_every, show_default=True,
              help="VMAF on frames 0, N, 2N, ... (each scored exactly as in a full run; 1: every frame).")
@click.option("--allow-upscale", is_flag=True, help="Allow resolutions larger than the view.")
@click.option("--force", is_flag=True, help="Redo cells even if finished outputs with the same parameters exist.")
@click.option("--dry-run", is_flag=True, help="Print the plan (cells, outputs, which would be skipped); write nothing.")
@click.option("--ffmpeg", "ffmpeg_path", type=click.Path(dir_okay=False), envvar="VIDVPR_FFMPEG", help="ffmpeg binary to use.")
@scheduler_option
@output_options
@handle_errors
def encode_command(inputs: tuple[Path, ...], out_dir: Path, codec_spec: str, qp_specs: tuple[str, ...],
                   res_spec: str | None, preset_spec: str | None, gop: int | None, flat_qp: bool, jobs: int,
                   no_vmaf: bool, vmaf_every: int, allow_upscale: bool, force: bool, dry_run: bool,
                   ffmpeg_path: str | None, scheduler: str | None, quiet: bool, as_json: bool) -> None:
    """Encode view videos into a codec × resolution × constant-quantiser grid and measure rate, PSNR-Y,
    SSIM-Y, VMAF and encoding speed per cell."""
    from vidvpr.core.progress import progress_bar
    from vidvpr.encoding.grid import encode_grid, plan_encode, require_encoders
    from vidvpr.encoding.plan import parse_codecs, parse_preset_spec, parse_qp_options, parse_resolutions, validate_config
    from vidvpr.media.ffmpeg import find_ffmpeg

    qps, codec_qps = parse_qp_options(qp_specs)
    preset, codec_presets = parse_preset_spec(preset_spec)
    config = replace(DEFAULTS, codecs=parse_codecs(codec_spec), qps=qps or DEFAULTS.qps, codec_qps=codec_qps,
                     preset=preset, codec_presets=codec_presets, gop=gop, jobs=jobs,
                     resolutions=parse_resolutions(res_spec) if res_spec is not None else None,
                     flat_qp=flat_qp, vmaf=not no_vmaf, vmaf_every=vmaf_every, allow_upscale=allow_upscale,
                     force=force)
    validate_config(config)
    ffmpeg = find_ffmpeg(ffmpeg_path)
    require_encoders(config, ffmpeg)
    if dry_run:
        plan = plan_encode(list(inputs), out_dir, config, want_vmaf=config.vmaf and ffmpeg.has_vmaf)
        cells = [{"cell": s.cell.name, "action": "skip" if s.done else "encode", "codec": s.cell.codec,
                  "width": s.cell.width, "height": s.cell.height, "quantiser": s.cell.spec.quantiser.name,
                  "qp": s.cell.qp, "preset": s.cell.preset, "gop": s.cell.gop, "video": str(s.cell.video),
                  "sidecar": str(s.cell.sidecar)} for s in plan]
        if as_json:
            emit_json({"cells": cells})
        else:
            for cell in cells:
                click.echo(f"{cell['action']:6}  {cell['codec']:10} {cell['width']}x{cell['height']} "
                           f"{cell['quantiser']}{cell['qp']:02d} gop {cell['gop']}  {cell['video']}")
            todo = sum(cell["action"] == "encode" for cell in cells)
            click.echo(f"{len(cells)} cells: {todo} to encode, {len(cells) - todo} already done (dry run, nothing written)")
        return
    with executor_for(scheduler, quiet) as executor, progress_bar(None, "encode", unit="frame", quiet=quiet) as bar:
        result = encode_grid(list(inputs), out_dir, config, ffmpeg=ffmpeg, on_start=lambda total: bar.reset(total=total),
                             on_frames=bar.update, on_status=bar.set_description, executor=executor)
    if as_json:
        emit_json({"encoded": result.encoded, "skipped": result.skipped, "table": str(result.table),
                   "table_json": str(result.table_json), "plot": str(result.plot), "rows": result.rows,
                   "retried": retry_lines(executor)})
    elif not quiet:
        click.echo(f"encoded {len(result.encoded)} cells, skipped {len(result.skipped)} already done; "
                   f"table {result.table} ({len(result.rows)} cells in all), plot {result.plot}", err=True)
