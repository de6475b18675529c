"""The `vidvpr` command line: each command parses options, builds a config, calls one library
function and prints the result. This is the only place that exits."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import click

from vidvpr import __version__
from vidvpr.errors import VidvprError

F = TypeVar("F", bound=Callable[..., Any])
LOG = logging.getLogger("vidvpr")
EXIT_INTERRUPTED = 130


def handle_errors(func: F) -> F:
    """Turn library errors into one line on stderr and their exit code; Ctrl-C exits 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except VidvprError as exc:
            click.echo(f"vidvpr: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("vidvpr: interrupted; finished outputs are kept, partial ones removed", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def parse_size(value: str | None) -> tuple[int, int] | None:
    """'WxH' → (W, H); raises click.BadParameter for anything else."""
    if value is None:
        return None
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not WxH (e.g. 1824x1024)") from None
    return width, height


def parse_float_list(value: str) -> tuple[float, ...]:
    """'0,90,180' → (0.0, 90.0, 180.0)."""
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of numbers") from None


def parse_fraction(value: str | None) -> Fraction | None:
    """'29.97', '30000/1001' or '10' → Fraction."""
    if value is None:
        return None
    try:
        return Fraction(value).limit_denominator(1_000_000)
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"'{value}' is not a frame rate (e.g. 10 or 30000/1001)") from None


def emit_json(payload: Any) -> None:
    """Machine-readable result on stdout."""
    click.echo(json.dumps(payload, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="vidvpr")
@click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")
def main(verbose: bool) -> None:
    """Build video visual place recognition datasets from 360° video and measure how
    compression hurts recall."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="vidvpr: %(levelname)s: %(message)s")


@main.command()
@click.option("--ffmpeg", "ffmpeg_path", type=click.Path(dir_okay=False), envvar="VIDVPR_FFMPEG",
              help="ffmpeg binary to use (default: ffmpeg on PATH with libx264, else imageio-ffmpeg's).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def doctor(ffmpeg_path: str | None, as_json: bool) -> None:
    """Report the tools vidvpr found; exit non-zero if something required is missing."""
    from vidvpr.doctor import check_environment

    report = check_environment(ffmpeg_path)
    if as_json:
        emit_json(report.as_dict())
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(0 if report.ok else 3)


@main.command("slice")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--yaw", "yaws", default="0,90,180,270", help="View yaws in degrees (0 = centre column, + turns right).")
@click.option("--pitch", default=0.0, type=float, help="View pitch in degrees (+ looks up).")
@click.option("--fov", "fov_deg", default=90.0, type=float, help="Horizontal field of view in degrees.")
@click.option("--size", default=None, help="View size WxH [default: matches the source's angular resolution, 16:9].")
@click.option("--fps", default=None, help="Resample to this frame rate (nearest frames) [default: keep every frame].")
@click.option("--interp", default="bilinear", type=click.Choice(["bilinear", "bicubic", "lanczos"]))
@click.option("--stereo", default="mono", type=click.Choice(["mono", "tb"]), help="tb: top-bottom stereo, take one eye.")
@click.option("--eye", default="top", type=click.Choice(["top", "bottom"]), help="Eye to take with --stereo tb.")
@click.option("--crf", default=None, type=int, help="x264 CRF of the view videos [default: 12, visually lossless].")
@click.option("--preset", default=None, help="x264 preset of the view videos [default: fast].")
@click.option("--force", is_flag=True, help="Redo views even if finished outputs with the same parameters exist.")
@click.option("--ffmpeg", "ffmpeg_path", type=click.Path(dir_okay=False), envvar="VIDVPR_FFMPEG", help="ffmpeg binary to use.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@handle_errors
def slice_command(inputs: tuple[Path, ...], out_dir: Path, yaws: str, pitch: float, fov_deg: float, size: str | None,
                  fps: str | None, interp: str, stereo: str, eye: str, crf: int | None, preset: str | None, force: bool,
                  ffmpeg_path: str | None, quiet: bool, as_json: bool) -> None:
    """Slice 360° equirectangular videos into perspective view videos (+ sidecar JSON each)."""
    from dataclasses import asdict, replace

    from vidvpr.ffmpeg import find_ffmpeg
    from vidvpr.progress import progress_bar
    from vidvpr.slicing import SliceConfig, ViewEncoding, expected_frames_hint, slice_videos

    encoding = ViewEncoding()
    encoding = replace(encoding, crf=encoding.crf if crf is None else crf, preset=preset or encoding.preset)
    config = SliceConfig(yaws_deg=parse_float_list(yaws), pitch_deg=pitch, hfov_deg=fov_deg, size=parse_size(size),
                         fps=parse_fraction(fps), interp=interp, stereo=stereo, eye=eye, encoding=encoding, force=force)
    with progress_bar(None, "slice", quiet=quiet) as bar:
        def on_start(info: Any) -> None:
            bar.reset(total=expected_frames_hint(info, config))
            bar.set_description(f"slice {info.path.name}")

        results = slice_videos(list(inputs), out_dir, config, on_frame=bar.update, on_start=on_start,
                               ffmpeg=find_ffmpeg(ffmpeg_path))
    if as_json:
        emit_json({"outputs": [asdict(result) for result in results]})
    elif not quiet:
        done = sum(not r.skipped for r in results)
        click.echo(f"wrote {done} view videos, skipped {len(results) - done} already done, in {out_dir}", err=True)


if __name__ == "__main__":
    main()
