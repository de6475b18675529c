"""`vidvpr manifest`."""

from __future__ import annotations

from pathlib import Path

import click

from vidvpr.cli.common import NonEmptyPath, emit_json, handle_errors, output_options
from vidvpr.dataset.definition import PositivesSection, SamplingSection, TrajectoryFormat

SAMPLING = SamplingSection()
RADIUS_M = PositivesSection().radius_m


@click.command("manifest")
@click.argument("definition", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=NonEmptyPath(path_type=Path),
              help="Manifest folder to write (database.csv, query.csv, positives.json, manifest.json).")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root; every path must lie inside it [default: the definition's root, else the working directory].")
@click.option("--database", multiple=True, metavar="REC=TRAJ",
              help="Without a definition: a database recording and its trajectory file (repeatable).")
@click.option("--query", multiple=True, metavar="REC=TRAJ",
              help="Without a definition: a query recording and its trajectory file (repeatable).")
@click.option("--views-dir", type=click.Path(path_type=Path), default=None,
              help="Without a definition: the `vidvpr slice --out` folder [default: ROOT/views].")
@click.option("--trajectory-format", default=None, type=click.Choice(TrajectoryFormat.__args__),  # type: ignore[attr-defined]
              help="Without a definition: the trajectory files' format [default: auto].")
@click.option("--time-offset", type=float, default=None, help="Without a definition: trajectory time = video time + this (s) [default: 0].")
@click.option("--axes", type=click.Choice(["xy", "xz"]), default=None, help="Without a definition: SLAM axes of tum/keyframes-json poses.")
@click.option("--scale", type=float, default=None, help="Without a definition: metres per SLAM unit (tum, keyframes-json).")
@click.option("--keyframe-fps", type=float, default=None, help="Without a definition: video frame rate of keyframes-json frame numbers.")
@click.option("--database-sampling", default=None,
              help=f"Keep a database frame every Nf frames, Ts seconds, Dm metres, or all [default: the definition's, else {SAMPLING.database}].")
@click.option("--query-sampling", default=None,
              help=f"Keep a query frame every Nf, Ts, Dm, or all [default: the definition's, else {SAMPLING.query}].")
@click.option("--radius", "radius_m", type=float, default=None,
              help=f"Positives: database rows within this many metres of a query [default: the definition's, else {RADIUS_M:g}].")
@click.option("--max-heading-diff", "max_heading_diff_deg", type=float, default=None,
              help="Positives: also within this many degrees of the query's view heading [default: the definition's, else no limit].")
@click.option("--utm-zone", type=int, default=None, help="Read geographic trajectories into this UTM zone (to join recordings across a zone edge).")
@click.option("--strict", is_flag=True, help="Error on frames outside the trajectory's time range instead of dropping them.")
@click.option("--shared-local-frame", is_flag=True,
              help="Local trajectories of different formats (a csv-xy survey, TUM poses) were aligned to one metric frame.")
@click.option("--force", is_flag=True, help="Rebuild even if the folder holds a manifest of the same definition and inputs.")
@output_options
@handle_errors
def manifest_command(definition: Path | None, out_dir: Path, root: Path | None, database: tuple[str, ...],
                     query: tuple[str, ...], views_dir: Path | None, trajectory_format: str | None,
                     time_offset: float | None, axes: str | None, scale: float | None, keyframe_fps: float | None,
                     database_sampling: str | None, query_sampling: str | None, radius_m: float | None,
                     max_heading_diff_deg: float | None, utm_zone: int | None, strict: bool,
                     shared_local_frame: bool, force: bool,
                     quiet: bool, as_json: bool) -> None:
    """Sample view frames into database.csv and query.csv with positions, and write each query's
    positives, from a dataset definition (TOML) or --database/--query recordings."""
    from vidvpr.core.errors import BadInput
    from vidvpr.core.progress import progress_bar
    from vidvpr.dataset.definition import definition_from_options, load_definition, with_overrides
    from vidvpr.dataset.manifest import build_manifest

    reader = {"format": trajectory_format, "time_offset_s": time_offset, "axes": axes, "scale": scale,
              "fps": keyframe_fps}
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
        dataset = definition_from_options(root or Path.cwd(), database, query, views_dir=views_dir,
                                          trajectory={k: v for k, v in reader.items() if v is not None})
    dataset = with_overrides(dataset, database_sampling=database_sampling, query_sampling=query_sampling,
                             radius_m=radius_m, max_heading_diff_deg=max_heading_diff_deg, utm_zone=utm_zone,
                             strict=True if strict else None,
                             shared_local_frame=True if shared_local_frame else None)
    with progress_bar(None, "manifest", unit="view", quiet=quiet) as bar:
        summary = build_manifest(dataset, out_dir, on_view=bar.update, force=force)
    if as_json:
        emit_json(summary.as_dict())
    elif not quiet:
        for line in summary.lines():
            click.echo(line, err=True)
