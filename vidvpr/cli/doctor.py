"""`vidvpr doctor`: what this machine has for vidvpr."""

from __future__ import annotations

import sys

import click

from vidvpr.cli.common import emit_json, handle_errors


@click.command()
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
