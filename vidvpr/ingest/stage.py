"""`vidvpr import`: perspective footage (a video, an image sequence, a VPR-datasets-downloader
folder) → view videos with the sidecars `vidvpr slice` writes, plus trajectories and a dataset
definition where the footage says where it was taken.

Every input is looked at before anything is written (video probed, every image's header read,
sizes compared, the camera read), so bad input is one line and leaves nothing behind; outputs
are written under temporary names and renamed when complete.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidvpr.core.atomic import removing_new_dirs
from vidvpr.core.errors import BadInput
from vidvpr.core.sidecars import SliceSidecar
from vidvpr.dataset.definition import check_name, usable_name
from vidvpr.ingest import vpr_folder
from vidvpr.ingest.camera import Camera, Undistortion, camera_from_options, undistortion
from vidvpr.ingest.config import TRAJECTORIES_DIR, ImportConfig, validate_config
from vidvpr.ingest.footage import Footage, looks_like_video, open_images, open_video
from vidvpr.ingest.positions import (DefinedRecording, definition_text, holds_already, index_trajectory_text,
                                     trajectory_text, write_if_new)
from vidvpr.ingest.view import ImportResult, planned_times, plan_view, write_view

LOG = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    """What `import_footage` wrote (or found done): views, trajectories, a dataset definition."""

    views: list[ImportResult]
    trajectories: list[str] = field(default_factory=list)
    definition: str | None = None
    radius_from: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"views": [asdict(view) for view in self.views], "trajectories": self.trajectories,
                "definition": self.definition, "radius_from": self.radius_from}

    def lines(self) -> list[str]:
        lines = []
        for view in self.views:
            how = "already done, skipped" if view.skipped else ("stream copied" if view.stream_copy else "encoded")
            lines.append(f"{view.recording}/{view.view}: {view.frames} frames, {how} ({view.path})")
        lines += [f"trajectory {path}" for path in self.trajectories]
        if self.definition:
            lines.append(f"definition {self.definition} (positives radius from {self.radius_from}); "
                         f"next: vidvpr manifest {self.definition} --out MANIFEST")
        return lines


def dataset_root(out_dir: Path, config: ImportConfig) -> Path:
    """Where trajectories and definitions go: --root, else the views folder's parent; it must hold --out."""
    root = Path(config.root) if config.root is not None else Path(out_dir).absolute().parent
    if not Path(out_dir).absolute().is_relative_to(root.absolute()):
        raise BadInput(f"--out {out_dir} is not inside the dataset root {root}; definitions list views relative "
                       "to it (--root)")
    return root


def prepare_camera(footage: Footage, config: ImportConfig) -> tuple[Camera, Undistortion | None]:
    """The camera of the footage's (even) frames from the options, and undistortion tables if asked."""
    aspect = footage.video.sample_aspect if footage.video is not None else Fraction(1)
    if footage.rotation_deg in (90, 270):
        aspect = 1 / aspect  # a pixel turned upright is as wide as it was tall
    if aspect != 1 and config.hfov_deg is not None:
        LOG.warning("%s: sample aspect ratio %d:%d (pixels are not square): --hfov is across the width, and "
                    "fy = fx * %d/%d", footage.path, aspect.numerator, aspect.denominator, aspect.numerator,
                    aspect.denominator)
    camera = camera_from_options(config.hfov_deg, config.intrinsics, config.calibration, footage.width,
                                 footage.height, aspect)
    width, height = footage.out_size
    camera = replace(camera, width=width, height=height)  # made even at the right/bottom: nothing moves
    return camera, (undistortion(camera, config.undistort_alpha) if config.undistort else None)


def default_recording(footage: Footage) -> str:
    """The video's stem, or the images' folder name, made a usable recording name as `vidvpr slice`
    makes it ("Straße 2.mp4" → Strasse_2; the sidecars keep the source's own path)."""
    name = footage.path.stem if footage.kind == "video" else footage.path.absolute().name
    usable = usable_name(name)
    if usable != name:
        LOG.warning("%s: recording %s (recording names hold ASCII letters, digits, '.', '_', '+' and '-'; "
                    "--recording NAME chooses another)", footage.path, usable)
    return usable


def import_footage(sources: Sequence[str | Path], out_dir: str | Path, config: ImportConfig,
                   on_frame: Callable[[int], None] | None = None,
                   on_start: Callable[[int | None], None] | None = None) -> ImportSummary:
    """Import footage into ``OUT/<recording>/<view>.mp4`` + ``.json`` (see the module doc).

    `on_start` hears the frames to import (None when unknown), `on_frame` each one written.
    """
    validate_config(config)
    if not sources:
        raise BadInput("give the footage to import: a video, images (a folder, a pattern or files), or a "
                       "VPR-datasets-downloader folder")
    if any(not str(source).strip() for source in sources):  # Path("") is the current folder, not a file
        raise BadInput("an empty path among the footage to import (is a shell variable unset?)")
    out_dir = Path(out_dir)
    root = dataset_root(out_dir, config)
    splits = vpr_folder.find_vpr_splits(sources, config.vpr_split)
    if splits is not None:
        return _import_vpr(Path(sources[0]), splits, out_dir, root, config, on_frame, on_start)
    footage = open_video(Path(sources[0]), config.fps, config.times) if looks_like_video(sources) else \
        open_images(sources, config.fps, config.times, config.even)
    recording = config.recording or default_recording(footage)
    camera, maps = prepare_camera(footage, config)
    if config.positions is not None and footage.kind == "images" and footage.frames_expected < 2:
        raise BadInput("--positions index needs at least 2 frames (a trajectory has two samples or more)")
    plan = plan_view(footage, camera, maps, recording, out_dir, config)
    path = root / TRAJECTORIES_DIR / f"{recording}.csv"
    if config.positions is not None:  # a trajectory of other frames is refused before the view is written
        holds_already(path, index_trajectory_text(planned_times(plan), config.positions.spacing_m), config.force,
                      "trajectory")
    if on_start:
        on_start(plan.frames_to_write or None)
    with removing_new_dirs(plan.video.parent):  # a failed first import leaves no empty OUT/<recording>/
        result = write_view(plan, config, on_frame=on_frame)
    summary = ImportSummary([result])
    if config.positions is not None:
        times = SliceSidecar.load(Path(result.sidecar)).timestamps.times()
        write_if_new(path, index_trajectory_text(times, config.positions.spacing_m), config.force, "trajectory")
        summary.trajectories.append(str(path))
    return summary


def _import_vpr(source: Path, splits: dict[str, Path], out_dir: Path, root: Path, config: ImportConfig,
                on_frame: Callable[[int], None] | None,
                on_start: Callable[[int | None], None] | None) -> ImportSummary:
    """Both splits of a VPR-datasets-downloader folder, their trajectories and a definition."""
    if config.times not in ("auto", "fps"):
        raise BadInput(f"--times {config.times}: the images of a VPR folder are frames 1/--fps apart; their "
                       "positions come from their names")
    if config.positions is not None:
        raise BadInput("--positions: a VPR folder's positions come from its image names")
    name = config.recording or check_name(vpr_folder.dataset_name(source, config.vpr_split), "dataset name",
                                          str(source))
    recordings = {split: f"{name}-{folder}" for split, folder in vpr_folder.SPLIT_FOLDERS.items()}
    for rec in recordings.values():
        check_name(rec, "recording", "--recording")
    footages = {split: open_images([folder], config.fps, "fps", config.even) for split, folder in splits.items()}
    for split, footage in footages.items():
        if footage.frames_expected < 2:  # its trajectory would have one sample, which no manifest reads
            raise BadInput(f"{splits[split]}: 1 image; each split of a VPR folder needs at least 2 (their positions "
                           "make the recording's trajectory)")
    positions = {split: vpr_folder.read_positions(footage) for split, footage in footages.items()}
    vpr_folder.check_same_zone(positions)
    cameras = {split: prepare_camera(footage, config) for split, footage in footages.items()}
    radius_m, max_heading, radius_from = vpr_folder.export_radius(splits, source)
    if any(pos.heading_deg is None for pos in positions.values()):
        max_heading = None  # the names carry no heading to compare
    plans = {split: plan_view(footage, *cameras[split], recordings[split], out_dir, config)
             for split, footage in footages.items()}
    paths = {split: root / TRAJECTORIES_DIR / f"{recordings[split]}.csv" for split in plans}

    def trajectory(split: str, times: np.ndarray) -> str:
        pos = positions[split]
        return trajectory_text(times, pos.easting_m, pos.northing_m, pos.heading_deg,
                               note=f"vidvpr import: positions from the image names of {splits[split]} "
                                    f"(UTM zone {vpr_folder.zone_text(pos.zone)})")

    defined = [DefinedRecording(recordings[split], split, paths[split].relative_to(root).as_posix()) for split in plans]
    views_dir = Path(os.path.relpath(out_dir.absolute(), root.absolute())).as_posix()
    definition = root / f"{name}.toml"
    text = definition_text(name, views_dir, defined, radius_m, max_heading,
                           note=f"written by vidvpr import from {source}\npositives radius from {radius_from}")
    for split, plan in plans.items():  # trajectories and a definition of other data are refused before any view
        holds_already(paths[split], trajectory(split, planned_times(plan)), config.force, "trajectory")
    holds_already(definition, text, config.force, "dataset definition")
    if on_start:
        on_start(sum(plan.frames_to_write for plan in plans.values()))
    views = []
    for plan in plans.values():
        with removing_new_dirs(plan.video.parent):
            views.append(write_view(plan, config, on_frame=on_frame))
    summary = ImportSummary(views, radius_from=radius_from)
    for split, view in zip(plans, views):
        write_if_new(paths[split], trajectory(split, SliceSidecar.load(Path(view.sidecar)).timestamps.times()),
                     config.force, "trajectory")
        summary.trajectories.append(str(paths[split]))
    write_if_new(definition, text, config.force, "dataset definition")
    summary.definition = str(definition)
    return summary
