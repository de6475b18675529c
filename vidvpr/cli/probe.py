"""`vidvpr probe`."""

from __future__ import annotations

from pathlib import Path

import click

from vidvpr.cli.common import emit_json, handle_errors
from vidvpr.slicing.config import DEFAULT_FISHEYE_FOV_DEG


@click.command("probe")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--fisheye-fov", "fisheye_fov", type=float, default=DEFAULT_FISHEYE_FOV_DEG,
              help="Field of view (degrees) to place a calibration that gives none on the stream.")
@click.option("--calibration-out", type=click.Path(path_type=Path), default=None,
              help="Save an Insta360 recording's lens calibration here, for `vidvpr slice --calibration` of "
                   "recordings whose trailer is damaged.")
@handle_errors
def probe_command(path: Path, as_json: bool, fisheye_fov: float, calibration_out: Path | None) -> None:
    """What a video file is: container, streams, frames, rate, size, colour, spherical metadata and
    stereo layout, the 360° camera model vidvpr slices it as, and for an Insta360 recording (.insv)
    its whole trailer: camera, lens calibration, gyro, exposure, frame timestamps and GPS."""
    from vidvpr.media.describe import probe_file, report_lines

    report = probe_file(path, fisheye_fov, calibration_out)
    if as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        for line in report_lines(report):
            click.echo(line)
