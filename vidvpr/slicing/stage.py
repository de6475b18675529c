"""`vidvpr slice`: 360° videos → perspective view videos (or stitched equirect videos), one unit of
work per source.

Each source is sliced by `vidvpr.slicing.slicer.slice_video` (decode once, remap every output,
encode in-process); its outputs and how a rerun knows they are done are `vidvpr.slicing.outputs`.
Equirectangular sources whose views are all done are recognised before anything is opened, so a
rerun over finished work loads neither PyAV nor OpenCV.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidvpr.core.atomic import ensure_writable_dir, removing_new_dirs
from vidvpr.core.errors import BadInput
from vidvpr.core.threads import usable_cores
from vidvpr.run import Executor, InProcessExecutor, Unit
from vidvpr.slicing.config import SliceConfig, plan_views, validate_config
from vidvpr.slicing.outputs import ViewResult, finished_views, recording_name

if TYPE_CHECKING:
    from vidvpr.media.probe import VideoInfo

LOG = logging.getLogger(__name__)


def slice_videos(
    sources: Sequence[Path],
    out_dir: Path,
    config: SliceConfig,
    on_frame: Callable[[int], None] | None = None,
    on_start: Callable[[int | None], None] | None = None,
    executor: Executor | None = None,
) -> list[ViewResult]:
    """Slice several 360° videos into ``OUT/<recording>/<view>.mp4``; recording names (`recording_name`:
    the file names, made usable) must be unique.

    Each source is one unit (`vidvpr.slicing.slicer.slice_video`) of `executor` (default:
    in-process); `on_start` hears the frames to slice in all, `on_frame` each one sliced. With a Dask
    executor a source that fails for a reason of its own does not stop the others: `UnitsFailed`
    lists it at the end. Sources whose views are all done (`finished_views`) are never opened.
    """
    validate_config(config)
    names = [recording_name(Path(src)) for src in sources]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise BadInput(f"two inputs share the recording name '{duplicated[0]}'; their views would overwrite each "
                       "other. Slice them into different --out folders")
    for src, name in zip(sources, names):
        if name != Path(src).stem:
            LOG.warning("%s: recording %s (recording names hold ASCII letters, digits, '.', '_', '+' and '-'; "
                        "the sidecars keep this file's own name)", src, name)
    out_dir = Path(out_dir).absolute()  # units may run on other machines, in other working folders
    finished = [finished_views(Path(src).absolute(), out_dir, config) for src in sources]
    todo = [src for src, views in zip(sources, finished) if views is None]
    if todo:  # PyAV and OpenCV are loaded only when there is slicing to do
        from vidvpr.media.probe import probe_video
        from vidvpr.slicing.camera import source_camera
        from vidvpr.slicing.slicer import slice_video
    infos = [probe_video(Path(src)) for src in todo]  # every input is checked before anything is written
    executor = executor or InProcessExecutor()
    with _warned_by_the_units(executor.name == "in-process"):
        for info in infos:
            camera = source_camera(info, config)  # its layout, and a dual-fisheye source's calibration
            if not config.equirect:
                plan_views(config, camera.equirect_width)  # the views' size
    units = [Unit(f"slice {src}", slice_video, (Path(src).absolute(), out_dir, config), {"cores": usable_cores()},
                  progress="on_frame", weight=expected_frames_hint(info, config))
             for src, info in zip(todo, infos)]
    with removing_new_dirs(out_dir):
        ensure_writable_dir(out_dir)
        executor.check_shared([out_dir], [Path(src) for src in sources])
        report = executor.run(units, on_start, on_frame)
        made = iter(report.values)
        results = [result for views in finished for result in (views if views is not None else next(made) or [])]
        report.raise_failures()
    return results


@contextlib.contextmanager
def _warned_by_the_units(in_process: bool) -> Iterator[None]:
    """Keep the camera check's warnings for the units that slice each file when they run in this
    process (else each warning is said twice); units on a cluster warn on their workers, so the
    check says them here."""
    logger = logging.getLogger("vidvpr.slicing.camera")
    level = logger.level
    if in_process:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def expected_frames_hint(info: VideoInfo, config: SliceConfig) -> int | None:
    """Frame count for a progress bar (None when the container does not say)."""
    if not info.frames:
        return None
    if config.fps and info.fps:
        return math.floor(info.frames * float(config.fps) / float(info.fps) + 0.5)
    return info.frames
