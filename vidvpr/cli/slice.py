"""`vidvpr slice`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
import click

from vidvpr.cli.common import (
    NonEmptyPath,
    emit_json,
    executor_for,
    handle_errors,
    output_options,
    parse_float_list,
    parse_fraction,
    parse_size,
    retry_lines,
    scheduler_option,
)
from vidvpr.slicing.config import (
    DEFAULT_FISHEYE_FOV_DEG,
    DEFAULT_YAWS_DEG,
    EYES,
    INTERPOLATIONS,
    STEREO_LAYOUTS,
    SliceConfig,
    ViewEncoding,
)

DEFAULTS, ENCODING = SliceConfig(), ViewEncoding()


@click.command("slice")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=NonEmptyPath(path_type=Path), help="Output directory.")
@click.option("--yaw", "yaws", default=",".join(f"{yaw:g}" for yaw in DEFAULT_YAWS_DEG),
              help="View yaws in degrees (0 = centre column, + turns right).")
@click.option("--pitch", default=DEFAULTS.pitch_deg, type=float, help="View pitch in degrees (+ looks up).")
@click.option("--fov", "fov_deg", default=DEFAULTS.hfov_deg, type=float, help="Horizontal field of view in degrees.")
@click.option("--size", default=None, help="View size WxH [default: matches the source's angular resolution, 16:9].")
@click.option("--fps", default=None, help="Keep the source frame nearest each 1/FPS s [default: keep every frame].")
@click.option("--interp", default=DEFAULTS.interp, type=click.Choice(INTERPOLATIONS))
@click.option("--stereo", default=DEFAULTS.stereo, type=click.Choice(STEREO_LAYOUTS),
              help="tb: top-bottom stereo, take one eye.")
@click.option("--eye", default=DEFAULTS.eye, type=click.Choice(EYES), help="Eye to take with --stereo tb.")
@click.option("--crf", default=ENCODING.crf, type=int, help="x264 CRF of the view videos, 0-51 (visually lossless).")
@click.option("--preset", default=ENCODING.preset, help="x264 preset of the view videos.")
@click.option("--force", is_flag=True, help="Redo views even if finished, and replace views of another source.")
@click.option("--equirect", is_flag=True, help="Dual fisheye: write the stitched equirectangular video OUT/<name>.mp4 "
                                               "instead of views (--size WxH, 2:1).")
@click.option("--calibration", "calibration", type=click.Path(path_type=Path), default=None,
              help="Dual fisheye: lens calibration to use (for a damaged trailer, or another camera): another recording "
                   "of the same camera, `vidvpr probe --calibration-out` JSON, or the calibration string in a text file.")
@click.option("--fisheye-fov", "fisheye_fov", type=float, default=None,
              help=f"Dual fisheye: each lens's field of view in degrees [default: the calibration's, else "
                   f"{DEFAULT_FISHEYE_FOV_DEG:g}]; alone, two ideal lenses filling their halves.")
@scheduler_option
@output_options
@handle_errors
def slice_command(inputs: tuple[Path, ...], out_dir: Path, yaws: str, pitch: float, fov_deg: float, size: str | None,
                  fps: str | None, interp: str, stereo: str, eye: str, crf: int, preset: str, force: bool,
                  equirect: bool, calibration: Path | None, fisheye_fov: float | None, scheduler: str | None,
                  quiet: bool, as_json: bool) -> None:
    """Slice 360° videos (equirectangular, or dual fisheye such as an Insta360 .insv) into perspective
    view videos (+ sidecar JSON each)."""
    from vidvpr.core.progress import progress_bar
    from vidvpr.slicing.stage import slice_videos

    config = SliceConfig(yaws_deg=parse_float_list(yaws, "--yaw"), pitch_deg=pitch, hfov_deg=fov_deg, size=parse_size(size),
                         fps=parse_fraction(fps), interp=interp, stereo=stereo, eye=eye,
                         encoding=ViewEncoding(crf=crf, preset=preset), force=force, equirect=equirect,
                         calibration=calibration, fisheye_fov_deg=fisheye_fov)
    with executor_for(scheduler, quiet) as executor, progress_bar(None, "slice", quiet=quiet) as bar:
        results = slice_videos(list(inputs), out_dir, config, on_frame=bar.update,
                               on_start=lambda total: bar.reset(total=total), executor=executor)
    if as_json:
        emit_json({"outputs": [asdict(result) for result in results], "retried": retry_lines(executor)})
    elif not quiet:
        done = sum(not r.skipped for r in results)
        kind = "equirect" if equirect else "view"
        click.echo(f"wrote {done} {kind} videos, skipped {len(results) - done} already done, in {out_dir}", err=True)
