"""`vidvpr import`."""

from __future__ import annotations

from pathlib import Path

import click

from vidvpr.cli.common import NonEmptyPath, emit_json, handle_errors, output_options, parse_fraction
from vidvpr.dataset.vpr_names import DEFAULT_VPR_SPLIT
from vidvpr.ingest.config import DEFAULT_VIEW, ImportConfig
from vidvpr.ingest.images import EVEN_MODES, TIME_SOURCES
from vidvpr.slicing.config import ViewEncoding

DEFAULTS, ENCODING = ImportConfig(), ViewEncoding()


@click.command("import")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=NonEmptyPath(path_type=Path),
              help="Views folder: writes OUT/<recording>/<view>.mp4 + .json.")
@click.option("--recording", default=None, help="Recording name [default: the video's stem or the images' folder; "
                                                "a VPR folder: NAME-database and NAME-queries].")
@click.option("--view", default=DEFAULT_VIEW, help="View name.")
@click.option("--hfov", "hfov_deg", type=float, default=None, help="Camera: horizontal field of view in degrees "
                                                                   "(a centred pinhole with square pixels, or a video's own "
                                                                   "sample aspect ratio).")
@click.option("--intrinsics", default=None, help="Camera: fx,fy,cx,cy in pixels (OpenCV convention).")
@click.option("--calibration", type=NonEmptyPath(path_type=Path), default=None,
              help="Camera: OpenCV calibration file (YAML as cv2.FileStorage or ROS write it, or JSON) with "
                   "camera_matrix and distortion coefficients.")
@click.option("--undistort", is_flag=True, help="Remove the calibration's lens distortion (OpenCV).")
@click.option("--undistort-alpha", default=DEFAULTS.undistort_alpha, type=float,
              help="0: keep only pixels with picture; 1: keep every source pixel (black corners).")
@click.option("--fps", default=None, help="Images: frames per second [default: 1, unless their names or EXIF "
                                          "time them].")
@click.option("--times", default=DEFAULTS.times, type=click.Choice(TIME_SOURCES),
              help="Images: fps, i / --fps; name, the file name's last number (seconds, or s/ms/µs/ns since 1970 "
                   "when it has 10/13/16/19 digits); exif, DateTimeOriginal; auto, --fps when given, else names when "
                   "every one is a time since 1970, else EXIF when every image has one and they increase, else fps.")
@click.option("--even", default=DEFAULTS.even, type=click.Choice(EVEN_MODES),
              help="Images of odd width or height: crop or pad the last column/row (yuv420p needs even sizes).")
@click.option("--reencode", is_flag=True, help="Videos: always encode at CRF --crf, never copy the stream.")
@click.option("--positions", default=None, metavar="index[:SPACING_M]",
              help="Write ROOT/trajectories/<recording>.csv placing frame i at x = i * SPACING_M (default 1 m): "
                   "frame-index ground truth.")
@click.option("--root", type=NonEmptyPath(path_type=Path), default=None,
              help="Dataset root for trajectories and definitions [default: the parent of --out].")
@click.option("--split", "vpr_split", default=DEFAULT_VPR_SPLIT, help="VPR folder: which images/<split>/ to import.")
@click.option("--crf", default=ENCODING.crf, type=int, help="x264 CRF of encoded views, 0-51 (visually lossless).")
@click.option("--preset", default=ENCODING.preset, help="x264 preset of encoded views.")
@click.option("--force", is_flag=True, help="Redo finished imports; replace another source's views, trajectory "
                                            "or definition of the same name.")
@output_options
@handle_errors
def import_command(sources: tuple[str, ...], out_dir: Path, recording: str | None, view: str, hfov_deg: float | None,
                   intrinsics: str | None, calibration: Path | None, undistort: bool, undistort_alpha: float,
                   fps: str | None, times: str, even: str, reencode: bool, positions: str | None, root: Path | None,
                   vpr_split: str, crf: int, preset: str, force: bool, quiet: bool, as_json: bool) -> None:
    """Import perspective footage as view videos (+ sidecar JSON each): a video, images (a folder,
    a quoted pattern like 'frames/*.png', or files), or a VPR-datasets-downloader folder. The camera
    is required: one of --hfov, --intrinsics or --calibration."""
    from vidvpr.core.progress import progress_bar
    from vidvpr.ingest import import_footage
    from vidvpr.ingest.config import parse_intrinsics, parse_positions

    config = ImportConfig(recording=recording, view=view, hfov_deg=hfov_deg, intrinsics=parse_intrinsics(intrinsics),
                          calibration=calibration, undistort=undistort, undistort_alpha=undistort_alpha,
                          fps=parse_fraction(fps), times=times, even=even, reencode=reencode,
                          positions=parse_positions(positions), root=root, vpr_split=vpr_split,
                          encoding=ViewEncoding(crf=crf, preset=preset), force=force)
    with progress_bar(None, "import", quiet=quiet) as bar:
        summary = import_footage(list(sources), out_dir, config, on_frame=bar.update,
                                 on_start=lambda total: bar.reset(total=total))
    if as_json:
        emit_json(summary.as_dict())
    elif not quiet:
        for line in summary.lines():
            click.echo(line, err=True)
