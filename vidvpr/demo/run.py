"""`vidvpr demo run DIR`: the whole pipeline on the demo world, from render to the HTML report.

render (`make_demo`) → slice into the definition's views → encode a resolution × QP grid →
manifest → evaluate the offline model on every cell (with prediction strips) → the study (recall
against bitrate, DIR/bitrate-study) → the one-page HTML report, DIR/report.html. Every stage up to
eval skips what is already done; the study and the report are rebuilt from the results (about a
second each), so a rerun costs seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vidvpr.core.errors import BadInput
from vidvpr.dataset.definition import load_definition as load_dataset_definition
from vidvpr.dataset.manifest import build_manifest
from vidvpr.demo.definition import DemoDefinition, definition_dict
from vidvpr.demo.make import MANIFEST_DEFINITION_NAME, SIDECAR_NAME, DemoConfig, DemoRecord, DemoResult, make_demo
from vidvpr.encoding.grid import encode_grid
from vidvpr.encoding.plan import EncodeConfig, parse_qp_spec, parse_resolutions
from vidvpr.encoding.plan import validate_config as check_encode_options
from vidvpr.evaluate.config import EvalConfig
from vidvpr.evaluate.config import validate_config as check_eval_options
from vidvpr.evaluate.rerun import evaluate
from vidvpr.evaluate.results import EvalResult
from vidvpr.report.build import ReportConfig, ReportResult, build_report
from vidvpr.run import Executor
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.stage import slice_videos
from vidvpr.study.stage import StudyConfig, StudyResult, run_study

LOG = logging.getLogger(__name__)

REPORT_NAME = "report.html"
BITRATE_STUDY_DIR = "bitrate-study"  # `vidvpr study` of DIR/eval; DIR/study is `vidvpr demo study`'s
Progress = Callable[[str, int | None], Callable[[int], None]]  # (stage, total) -> advance


@dataclass(frozen=True)
class DemoRunConfig:
    """What `vidvpr demo run` does on top of the demo definition, each default written once."""

    size: str = "default"
    qps: tuple[int, ...] = parse_qp_spec("20..50")
    resolutions: str | None = None  # None: the views' own size
    preset: str = "veryfast"
    vmaf: bool = True
    # strips of a few queries per cell, so the report's worst-hit cells show what went wrong, and
    # sequences of 5-20 frames beside single frames: what survives compression
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(batch_size=16, save_preds=4, seq_lens=(1, 5, 10, 20)))
    study: StudyConfig = field(default_factory=StudyConfig)
    definition: DemoDefinition = field(default_factory=DemoDefinition)
    definition_source: str = "built-in"


@dataclass
class DemoRunResult:
    out_dir: Path
    stages_s: dict[str, float]
    evaluation: EvalResult
    study: StudyResult
    report: ReportResult


def no_progress(stage: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


def render_slice_encode(out_dir: Path, config: DemoRunConfig, progress: Progress = no_progress,
                        executor: Executor | None = None,
                        timings: dict[str, float] | None = None) -> tuple[DemoResult, list[Path]]:
    """Render the definition's world into `out_dir`, slice its views and encode the grid
    (`out_dir`/views, `out_dir`/enc); the render result and the view videos. Stage times are added
    to `timings`."""
    out_dir = Path(out_dir)
    resolutions = parse_resolutions(config.resolutions) if config.resolutions else None
    check_encode_options(EncodeConfig(qps=config.qps, resolutions=resolutions, preset=config.preset,
                                      vmaf=config.vmaf))  # a bad --qp or --res before anything is rendered
    timed = _timer({} if timings is None else timings)
    definition = config.definition
    made = timed("render", lambda: make_demo(out_dir, DemoConfig(definition, config.definition_source, config.size),
                                             on_frame=progress("render", None)))
    views = definition.views
    slice_config = SliceConfig(yaws_deg=views.yaws_deg, hfov_deg=views.fov_deg)
    sliced = timed("slice", lambda: slice_videos([Path(t.video) for t in made.traversals], out_dir / "views",
                                                 slice_config, on_frame=progress("slice", None),
                                                 executor=executor))
    view_videos = [Path(result.path) for result in sliced]
    if resolutions is None:
        from vidvpr.media.probe import probe_video

        info = probe_video(view_videos[0])
        resolutions = parse_resolutions(f"{info.width}x{info.height}")
    encode_config = EncodeConfig(qps=config.qps, resolutions=resolutions, preset=config.preset, vmaf=config.vmaf)
    timed("encode", lambda: encode_grid(view_videos, out_dir / "enc", encode_config,
                                        on_frames=progress("encode", None), executor=executor))
    return made, view_videos


def _timer(timings: dict[str, float]) -> Callable[[str, Callable[[], Any]], Any]:
    def timed(stage: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        timings[stage] = round(time.perf_counter() - started, 1)
        LOG.info("demo: %s in %.1f s", stage, timings[stage])
        return result

    return timed


def _check_same_demo(out_dir: Path, config: DemoRunConfig) -> None:
    """A demo folder holds one demo, of one size and one definition: another would render its videos
    again over the ones its views, grid and results were made from (slice then refuses the new
    videos), leaving neither demo whole. Refused before any work; a folder made with the definition's
    night walk too (`vidvpr demo make --night`) holds the same demo."""
    previous = DemoRecord.load_or_none(out_dir / SIDECAR_NAME)
    if previous is None:
        return
    made = previous.size.get("name")
    if made is not None and made != config.size:
        raise BadInput(f"{out_dir}: holds the demo rendered at size {made!r}, not {config.size!r}: run it with "
                       f"--size {made}, or into another folder")
    definition = config.definition
    if previous.definition not in (definition_dict(definition), definition_dict(definition.with_night())):
        raise BadInput(f"{out_dir}: holds the demo made from another definition ({previous.definition_source}), not "
                       f"from {config.definition_source}: run it into a new folder, or run {out_dir} with the "
                       "definition it was made from")


def run_demo(out_dir: Path, config: DemoRunConfig, progress: Progress = no_progress,
             executor: Executor | None = None) -> DemoRunResult:
    """Run every stage on the demo world in `out_dir` (see the module docstring); slice, encode and
    eval run their units on `executor` (default: in-process); rendering stays here."""
    out_dir = Path(out_dir)
    eval_config = replace(config.eval, enc_dir=out_dir / "enc")
    check_eval_options(eval_config)  # before the stages it would come after
    _check_same_demo(out_dir, config)
    timings: dict[str, float] = {}
    render_slice_encode(out_dir, config, progress, executor, timings)
    timed = _timer(timings)
    dataset = load_dataset_definition(out_dir / MANIFEST_DEFINITION_NAME)
    timed("manifest", lambda: build_manifest(dataset, out_dir / "manifest"))
    evaluation = timed("eval", lambda: evaluate(out_dir / "manifest", out_dir / "eval", eval_config,
                                                on_images=progress("eval", None), executor=executor))
    study = timed("study", lambda: run_study([out_dir / "eval"], out_dir / BITRATE_STUDY_DIR, config.study))
    report = timed("report", lambda: build_report(out_dir / REPORT_NAME,
                                                  ReportConfig(study_dir=out_dir / BITRATE_STUDY_DIR)))
    return DemoRunResult(out_dir, timings, evaluation, study, report)
