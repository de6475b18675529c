"""What `vidvpr slice` writes for each view, and how a rerun knows a view is done.

An output's video (``OUT/<recording>/<view name>.mp4``, or ``OUT/<recording>.mp4`` for
`--equirect`; the recording is named after the source file, `recording_name`) is done when its sidecar ``.json`` (written last) records this output's parameters
(hashed: `view_params`), the same source content hash, and the video's size. `finished_views`
decides that for every view of an equirectangular source from the sidecars and the source's
content hash (cached by file identity) alone, so a rerun over finished work never opens a video,
nor loads PyAV or OpenCV.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidvpr.core.provenance import params_hash, sha256_file
from vidvpr.core.sidecars import EquirectSidecar, SliceSidecar
from vidvpr.dataset.definition import usable_name
from vidvpr.slicing.config import EquirectTarget, SliceConfig, ViewSpec, plan_views

Target = ViewSpec | EquirectTarget  # as vidvpr.slicing.camera names it

# Bump when a change to slicing changes the views made from the same source and options:
# views recorded with an older version are then redone instead of kept as finished.
# 2: --fps keeps the nearest real frames with their own times; colour range and tags carried.
SLICE_OUTPUT_VERSION = 2


@dataclass
class ViewResult:
    """What one view output is, and whether this run wrote it or found it done."""

    source: str
    view: str
    path: str
    sidecar: str
    frames: int
    skipped: bool


def view_params(view: Target, config: SliceConfig, camera: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything that determines one output's content; hashed to decide whether a rerun can skip it.
    `camera`: what about a dual-fisheye source decides the pixels (None for equirect sources)."""
    params = {
        "version": SLICE_OUTPUT_VERSION,
        "view": asdict(view),
        "fps": str(config.fps) if config.fps else None,
        "interp": config.interp,
        "stereo": config.stereo,
        "eye": config.eye if config.stereo == "tb" else None,
        "encoding": asdict(config.encoding),
        "schema": EquirectSidecar.SCHEMA if isinstance(view, EquirectTarget) else SliceSidecar.SCHEMA,
    }
    return params if camera is None else {**params, "camera": camera}


def recording_name(source: Path) -> str:
    """The recording a source's outputs belong to: its file name without the extension, made a name
    `vidvpr manifest` accepts ("VID é 1.insv" → VID_e_1); the sidecars keep the source's own path."""
    return usable_name(Path(source).stem)


def view_paths(out_dir: Path, source: Path, view: Target) -> tuple[Path, Path]:
    """(video, sidecar) of one output: ``OUT/<recording>/<view name>.mp4`` and ``.json`` for a view,
    ``OUT/<recording>.mp4`` and ``.json`` for the `--equirect` video."""
    folder = Path(out_dir) if isinstance(view, EquirectTarget) else Path(out_dir) / recording_name(source)
    return folder / f"{view.name}.mp4", folder / f"{view.name}.json"


def view_done(video: Path, sidecar: SliceSidecar | EquirectSidecar | None, source_hash: str, phash: str) -> bool:
    """Whether a finished view of these parameters, from this source, is on disk intact."""
    return bool(sidecar and sidecar.params_hash == phash and sidecar.source.hash == source_hash
                and video.is_file() and video.stat().st_size == sidecar.output.bytes)


def finished_views(source: Path, out_dir: Path, config: SliceConfig) -> list[ViewResult] | None:
    """Every view of an equirectangular `source`, when all are done (`view_done`), decided without
    opening the video: the source's width, on which the planned views depend, is the one its
    sidecars record for the very content they name (same hash). None when any view is not done, or
    anything is unclear (a dual-fisheye source, whose lens calibration enters the parameters;
    `--equirect`, calibration options, `force`): then `slice_video` decides, probing the source."""
    if config.force or config.equirect or config.calibration is not None or config.fisheye_fov_deg is not None:
        return None
    try:
        source_hash = sha256_file(Path(source))
    except OSError:
        return None  # missing or unreadable: slice_video says so
    names = [ViewSpec(float(yaw), config.pitch_deg, config.hfov_deg, 2, 2).name for yaw in config.yaws_deg]
    folder = Path(out_dir) / recording_name(source)
    sidecars = [SliceSidecar.load_or_none(folder / f"{name}.json") for name in names]
    if any(car is None or car.source.hash != source_hash or "camera" in car.params
           or (car.source.camera is not None and car.source.camera.model != "equirectangular") for car in sidecars):
        return None
    views = plan_views(config, float(sidecars[0].source.width))  # type: ignore[union-attr]  (EquirectCamera's width)
    results = []
    for view, car in zip(views, sidecars):
        video, car_path = view_paths(Path(out_dir), Path(source), view)
        if not view_done(video, car, source_hash, params_hash(view_params(view, config))):
            return None
        results.append(ViewResult(str(source), view.name, str(video), str(car_path), car.frames, True))  # type: ignore[union-attr]
    return results
