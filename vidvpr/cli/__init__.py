"""The `vidvpr` command line: each command parses options, builds a config, calls one library
function and prints the result. This is the only place that exits."""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import click

from vidvpr import __version__
from vidvpr.core.errors import VidvprError

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


def output_options(func: F) -> F:
    """The --quiet and --json options every pipeline command takes."""
    func = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")(func)
    return click.option("--quiet", is_flag=True, help="No progress bar or summary.")(func)


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
    # a `kill` unwinds like Ctrl-C, so temporary outputs are removed rather than left behind
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@main.command()
@click.option("--ffmpeg", "ffmpeg_path", type=click.Path(dir_okay=False), envvar="VIDVPR_FFMPEG",
              help="ffmpeg binary to use (default: ffmpeg on PATH with libx264, else imageio-ffmpeg's).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def doctor(ffmpeg_path: str | None, as_json: bool) -> None:
    """Report the tools vidvpr found; exit non-zero if something required is missing."""
    from vidvpr.media.doctor import check_environment

    report = check_environment(ffmpeg_path)
    if as_json:
        emit_json(report.as_dict())
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(0 if report.ok else 3)


@main.command("slice")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output directory.")
@click.option("--yaw", "yaws", default="0,90,180,270", help="View yaws in degrees (0 = centre column, + turns right).")
@click.option("--pitch", default=0.0, type=float, help="View pitch in degrees (+ looks up).")
@click.option("--fov", "fov_deg", default=90.0, type=float, help="Horizontal field of view in degrees.")
@click.option("--size", default=None, help="View size WxH [default: matches the source's angular resolution, 16:9].")
@click.option("--fps", default=None, help="Resample to this frame rate (nearest frames) [default: keep every frame].")
@click.option("--interp", default="bilinear", type=click.Choice(["bilinear", "bicubic", "lanczos"]))
@click.option("--stereo", default="mono", type=click.Choice(["mono", "tb"]), help="tb: top-bottom stereo, take one eye.")
@click.option("--eye", default="top", type=click.Choice(["top", "bottom"]), help="Eye to take with --stereo tb.")
@click.option("--crf", default=None, type=int, help="x264 CRF of the view videos [default: 10, visually lossless].")
@click.option("--preset", default=None, help="x264 preset of the view videos [default: veryfast].")
@click.option("--force", is_flag=True, help="Redo views even if finished outputs with the same parameters exist.")
@output_options
@handle_errors
def slice_command(inputs: tuple[Path, ...], out_dir: Path, yaws: str, pitch: float, fov_deg: float, size: str | None,
                  fps: str | None, interp: str, stereo: str, eye: str, crf: int | None, preset: str | None, force: bool,
                  quiet: bool, as_json: bool) -> None:
    """Slice 360° equirectangular videos into perspective view videos (+ sidecar JSON each)."""
    from dataclasses import asdict, replace

    from vidvpr.core.progress import progress_bar
    from vidvpr.slicing.slicer import SliceConfig, ViewEncoding, expected_frames_hint, slice_videos

    encoding = ViewEncoding()
    encoding = replace(encoding, crf=encoding.crf if crf is None else crf, preset=preset or encoding.preset)
    config = SliceConfig(yaws_deg=parse_float_list(yaws), pitch_deg=pitch, hfov_deg=fov_deg, size=parse_size(size),
                         fps=parse_fraction(fps), interp=interp, stereo=stereo, eye=eye, encoding=encoding, force=force)
    with progress_bar(None, "slice", quiet=quiet) as bar:
        def on_start(info: Any) -> None:
            bar.reset(total=expected_frames_hint(info, config))
            bar.set_description(f"slice {info.path.name}")

        results = slice_videos(list(inputs), out_dir, config, on_frame=bar.update, on_start=on_start)
    if as_json:
        emit_json({"outputs": [asdict(result) for result in results]})
    elif not quiet:
        done = sum(not r.skipped for r in results)
        click.echo(f"wrote {done} view videos, skipped {len(results) - done} already done, in {out_dir}", err=True)


@main.command("manifest")
@click.argument("definition", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Manifest folder to write (database.csv, query.csv, positives.json, manifest.json).")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root; every path must lie inside it [default: the definition's root, else the working directory].")
@click.option("--database", multiple=True, metavar="REC=TRAJ",
              help="Without a definition: a database recording and its trajectory file (repeatable).")
@click.option("--query", multiple=True, metavar="REC=TRAJ",
              help="Without a definition: a query recording and its trajectory file (repeatable).")
@click.option("--views-dir", type=click.Path(path_type=Path), default=None,
              help="Without a definition: the `vidvpr slice --out` folder [default: ROOT/views].")
@click.option("--trajectory-format", default=None, help="Without a definition: csv-xy, csv-latlon, tum, gpx or keyframes-json [default: auto].")
@click.option("--time-offset", type=float, default=None, help="Without a definition: trajectory time = video time + this (s) [default: 0].")
@click.option("--axes", type=click.Choice(["xy", "xz"]), default=None, help="Without a definition: SLAM axes of tum/keyframes-json poses.")
@click.option("--scale", type=float, default=None, help="Without a definition: metres per SLAM unit (tum, keyframes-json).")
@click.option("--keyframe-fps", type=float, default=None, help="Without a definition: video frame rate of keyframes-json frame numbers.")
@click.option("--database-sampling", default=None, help="Keep a database frame every Nf frames, Ts seconds, Dm metres, or all [default: the definition's, else 1m].")
@click.option("--query-sampling", default=None, help="Keep a query frame every Nf, Ts, Dm, or all [default: the definition's, else 1m].")
@click.option("--radius", "radius_m", type=float, default=None, help="Positives: database rows within this many metres of a query [default: the definition's, else 25].")
@click.option("--max-heading-diff", "max_heading_diff_deg", type=float, default=None,
              help="Positives: also within this many degrees of the query's view heading [default: the definition's, else no limit].")
@click.option("--utm-zone", type=int, default=None, help="Read geographic trajectories into this UTM zone (to join recordings across a zone edge).")
@click.option("--strict", is_flag=True, help="Error on frames outside the trajectory's time range instead of dropping them.")
@click.option("--force", is_flag=True, help="Rebuild even if the folder holds a manifest of the same definition and inputs.")
@output_options
@handle_errors
def manifest_command(definition: Path | None, out_dir: Path, root: Path | None, database: tuple[str, ...],
                     query: tuple[str, ...], views_dir: Path | None, trajectory_format: str | None,
                     time_offset: float | None, axes: str | None, scale: float | None, keyframe_fps: float | None,
                     database_sampling: str | None, query_sampling: str | None, radius_m: float | None,
                     max_heading_diff_deg: float | None, utm_zone: int | None, strict: bool, force: bool,
                     quiet: bool, as_json: bool) -> None:
    """Sample view frames into database.csv and query.csv with positions, and write each query's
    positives, from a dataset definition (TOML) or --database/--query recordings."""
    from vidvpr.core.errors import BadInput
    from vidvpr.dataset.definition import TrajectorySpec, definition_from_options, load_definition, with_overrides
    from vidvpr.dataset.manifest import build_manifest
    from vidvpr.core.progress import progress_bar

    recording_options = {"--database": database, "--query": query, "--views-dir": views_dir,
                         "--trajectory-format": trajectory_format, "--time-offset": time_offset, "--axes": axes,
                         "--scale": scale, "--keyframe-fps": keyframe_fps}
    if definition is not None:
        given = next((name for name, value in recording_options.items() if value not in (None, ())), None)
        if given:
            raise BadInput(f"{given} describes recordings on the command line; with a definition file, set it there")
        dataset = load_definition(definition, root)
    elif not database or not query:
        raise BadInput("give a definition file, or at least one --database REC=TRAJ and one --query REC=TRAJ")
    else:
        spec = TrajectorySpec(path="", format=trajectory_format or "auto", time_offset_s=time_offset or 0.0,
                              axes=axes, fps=keyframe_fps, scale=scale)
        dataset = definition_from_options(root or Path.cwd(), database, query, views_dir=views_dir, trajectory=spec)
    dataset = with_overrides(dataset, database_sampling=database_sampling, query_sampling=query_sampling,
                             radius_m=radius_m, max_heading_diff_deg=max_heading_diff_deg, utm_zone=utm_zone,
                             strict=True if strict else None)
    with progress_bar(None, "manifest", unit="view", quiet=quiet) as bar:
        summary = build_manifest(dataset, out_dir, on_view=bar.update, force=force)
    if as_json:
        emit_json(summary.as_dict())
    elif not quiet:
        for line in summary.lines():
            click.echo(line, err=True)


@main.command("export")
@click.argument("manifest_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder: OUT/images/test/{database,queries}/*.jpg and OUT/export.json.")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root [default: the one recorded in manifest.json].")
@click.option("--enc", "enc_dir", type=click.Path(path_type=Path), default=None,
              help="Encode grid folder (ENC/<recording>/<view>/<res>/qp<NN>.mp4); with --res and --qp, export that cell.")
@click.option("--res", default=None, help="Encode cell resolution, e.g. 360p [default: the reference views].")
@click.option("--qp", type=int, default=None, help="Encode cell QP, e.g. 30.")
@click.option("--quality", "jpeg_quality", type=int, default=None, help="JPEG quality 1-100 [default: 95].")
@click.option("--views", "views", default=None, metavar="VIEW,...",
              help="Export only these views, e.g. yaw000_pitch+00 (positives: the database rows kept) [default: all].")
@click.option("--include-unmatched", is_flag=True, help="Also export queries without positives (benchmarks count them as failures).")
@click.option("--force", is_flag=True, help="Replace an existing export, or redo one with the same parameters.")
@output_options
@handle_errors
def export_command(manifest_dir: Path, out_dir: Path, root: Path | None, enc_dir: Path | None, res: str | None,
                   qp: int | None, jpeg_quality: int | None, views: str | None, include_unmatched: bool, force: bool,
                   quiet: bool, as_json: bool) -> None:
    """Write a manifest's frames as JPEGs in the VPR-datasets-downloader layout, named
    @east@north@zone@letter@lat@lon@...@.jpg, from the reference views or an encode cell."""
    from dataclasses import replace

    from vidvpr.dataset.export import ExportConfig, export_vpr
    from vidvpr.core.progress import progress_bar

    view_names = None if views is None else tuple(name.strip() for name in views.split(",") if name.strip())
    config = ExportConfig(enc_dir=enc_dir, res=res, qp=qp, root=root, include_unmatched=include_unmatched,
                          views=view_names, force=force)
    if jpeg_quality is not None:
        config = replace(config, jpeg_quality=jpeg_quality)
    with progress_bar(None, "export", unit="image", quiet=quiet) as bar:
        result = export_vpr(manifest_dir, out_dir, config, on_image=bar.update)
    if as_json:
        emit_json(result.as_dict())
    elif not quiet:
        state = "already done, skipped" if result.skipped else "wrote"
        click.echo(f"{state}: {result.database} database and {result.queries} query images from the "
                   f"{result.source} in {Path(out_dir) / 'images' / 'test'} ({result.queries_without_positives_skipped} "
                   "queries without positives left out)", err=True)
        heading = "" if result.max_heading_diff_deg is None else " (file names cannot carry its heading limit)"
        click.echo(f"evaluate with the manifest's positive radius, {result.radius_m:g} m{heading}: e.g. "
                   f"--positive_dist_threshold {result.radius_m:g} in gmberton's VPR evaluation code", err=True)


@main.group("demo")
def demo_group() -> None:
    """The built-in synthetic 360° demo dataset: run the whole toolkit with nothing to download."""


@demo_group.command("make")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--definition", "definition_path", type=click.Path(path_type=Path), default=None,
              help="Demo definition TOML; keys left out take the built-in values [default: the built-in "
                   "definition, as written out in manifests/demo.toml].")
@click.option("--size", default="default", help="Frame size: a name from the definition's [sizes] (built-in: "
                                                "default = 1024x512, small = 256x128).")
@click.option("--force", is_flag=True, help="Re-render even if finished outputs with the same definition exist.")
@output_options
@handle_errors
def demo_make(out_dir: Path, definition_path: Path | None, size: str, force: bool, quiet: bool, as_json: bool) -> None:
    """Render the demo world along its traversals: OUT_DIR/<traversal>/<traversal>.mp4 (equirect)
    + trajectory, dataset.toml for `vidvpr manifest`, and demo.json."""
    from dataclasses import asdict

    from vidvpr.demo.make import DemoConfig, load_definition, make_demo, slice_hint, total_frames
    from vidvpr.core.progress import progress_bar

    definition = load_definition(definition_path)
    config = DemoConfig(definition=definition, definition_source=str(definition_path or "built-in"), size=size,
                        force=force)
    with progress_bar(total_frames(definition), "demo", quiet=quiet) as bar:
        result = make_demo(out_dir, config, on_frame=bar.update)
    if as_json:
        emit_json(asdict(result))
    elif not quiet:
        for t in result.traversals:
            state = "already done, skipped" if t.skipped else "wrote"
            click.echo(f"{state} {t.name} ({t.role}): {t.frames} frames at {t.fps} fps, "
                       f"{result.size[0]}x{result.size[1]}, {t.video} + {t.trajectory}", err=True)
        gt = result.ground_truth
        click.echo(f"positives within {gt['radius_m']:g} m: {gt['positives_per_query']['min']}-"
                   f"{gt['positives_per_query']['max']} of {gt['database_frames']} database frames per query "
                   f"(at most {100 * gt['max_fraction_of_database']:.1f}%)", err=True)
        click.echo(f"next: {slice_hint(result, definition)}", err=True)
        click.echo(f"then: vidvpr manifest {Path(out_dir) / 'dataset.toml'} --out {Path(out_dir) / 'manifest'}", err=True)


@main.command("encode")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder: OUT/<recording>/<view>/<res>/qp<NN>.mp4 (+ .json), OUT/encodes.csv, encodes.json, rd.png.")
@click.option("--qp", "qp_spec", default=None, help="QPs: A..B (step 5), A..B:STEP or a list 20,30,45 [default: 20..50].")
@click.option("--res", "res_spec", default=None,
              help="Resolutions: 360p, 480p, 720p, 1080p (height; width keeps the view's aspect) or WxH "
                   "[default: 1080p,720p,480p,360p, those not larger than the view].")
@click.option("--codec", default=None, help="libx264 or libx265 [default: libx264].")
@click.option("--preset", default=None, help="Encoder preset [default: medium].")
@click.option("--gop", type=int, default=None, help="Keyframe interval in frames, fixed in every cell [default: 2 s of frames].")
@click.option("--flat-qp", is_flag=True,
              help="Same QP on I, P and B frames (ipratio=pbratio=1) [default: I frames qp-3, B frames qp+1/qp+2].")
@click.option("--jobs", type=int, default=None, help="Views encoded at once [default: 1].")
@click.option("--no-vmaf", is_flag=True, help="Skip VMAF (PSNR-Y and SSIM are always measured).")
@click.option("--allow-upscale", is_flag=True, help="Allow resolutions larger than the view.")
@click.option("--force", is_flag=True, help="Redo cells even if finished outputs with the same parameters exist.")
@click.option("--dry-run", is_flag=True, help="Print the plan (cells, outputs, which would be skipped); write nothing.")
@click.option("--ffmpeg", "ffmpeg_path", type=click.Path(dir_okay=False), envvar="VIDVPR_FFMPEG", help="ffmpeg binary to use.")
@output_options
@handle_errors
def encode_grid_command(inputs: tuple[Path, ...], out_dir: Path, qp_spec: str | None, res_spec: str | None,
                        codec: str | None, preset: str | None, gop: int | None, flat_qp: bool, jobs: int | None,
                        no_vmaf: bool, allow_upscale: bool, force: bool, dry_run: bool, ffmpeg_path: str | None,
                        quiet: bool, as_json: bool) -> None:
    """Encode view videos into a resolution × constant-QP grid and measure rate, PSNR-Y, SSIM and VMAF per cell."""
    from dataclasses import replace

    from vidvpr.encoding.grid import EncodeConfig, encode_grid, parse_qp_spec, parse_resolutions, plan_encode
    from vidvpr.media.ffmpeg import find_ffmpeg
    from vidvpr.core.progress import progress_bar

    config = EncodeConfig()
    given = {"codec": codec, "preset": preset, "gop": gop, "jobs": jobs}
    config = replace(config, **{key: value for key, value in given.items() if value is not None},
                     qps=parse_qp_spec(qp_spec) if qp_spec is not None else config.qps,
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
                   f"table {result.table}, plot {result.plot}", err=True)


def run() -> None:
    """Console entry point: click's own usage errors also become one line and exit code 2."""
    try:
        code = main.main(standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"vidvpr: error: {exc.format_message()} (see 'vidvpr --help')", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("vidvpr: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
