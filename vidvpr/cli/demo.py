"""`vidvpr demo ...`: the built-in synthetic 360° dataset."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from vidvpr.cli.common import NonEmptyPath, emit_json, executor_for, handle_errors, output_options, scheduler_option
from vidvpr.demo.definition import CAMERAS
from vidvpr.models.backends import BACKEND_CHOICES, DEFAULT_BACKEND


@click.group("demo")
def demo_group() -> None:
    """The built-in synthetic 360° demo dataset: run the whole toolkit with nothing to download."""


@demo_group.command("make")
@click.argument("out_dir", type=NonEmptyPath(path_type=Path))
@click.option("--definition", "definition_path", type=click.Path(path_type=Path), default=None,
              help="Demo definition TOML; keys left out take the built-in values [default: the built-in "
                   "definition, as written out in manifests/demo.toml].")
@click.option("--size", default="default", help="Frame size: a name from the definition's [sizes] (built-in: "
                                                "default = 1024x512, small = 256x128).")
@click.option("--night", is_flag=True, help="Also film the definition's night walk ([night]: lights off but for "
                                            "scattered lamps and the camera's own light), a query walk.")
@click.option("--force", is_flag=True, help="Re-render even if finished outputs with the same definition exist.")
@click.option("--camera", default=CAMERAS[0], type=click.Choice(CAMERAS),
              help="dual-fisheye: an Insta360-shaped <traversal>.insv (two fisheye circles + a trailer with the lens "
                   "calibration and GPS) instead of an equirect .mp4.")
@output_options
@handle_errors
def demo_make(out_dir: Path, definition_path: Path | None, size: str, night: bool, force: bool, camera: str,
              quiet: bool, as_json: bool) -> None:
    """Render the demo world along its traversals: OUT_DIR/<traversal>/<traversal>.mp4 (equirect, or
    .insv with --camera dual-fisheye) + trajectory, dataset.toml for `vidvpr manifest`, and demo.json."""
    from vidvpr.core.progress import progress_bar
    from vidvpr.demo.definition import load_definition
    from vidvpr.demo.make import DemoConfig, make_demo, slice_hint

    definition = load_definition(definition_path)
    if night:
        definition = definition.with_night()
    config = DemoConfig(definition=definition, definition_source=str(definition_path or "built-in"), size=size,
                        force=force, camera=camera)
    with progress_bar(None, "demo", quiet=quiet) as bar:
        result = make_demo(out_dir, config, on_frame=bar.update, on_start=lambda total: bar.reset(total=total))
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


@demo_group.command("run")
@click.argument("out_dir", type=NonEmptyPath(path_type=Path))
@click.option("--definition", "definition_path", type=click.Path(path_type=Path), default=None,
              help="Demo definition TOML [default: the built-in definition].")
@click.option("--size", default="default", help="Frame size: a name from the definition's [sizes].")
@click.option("--qp", "qp_spec", default="20..50", help="QPs of the encode grid: A..B (step 5), A..B:STEP or a list.")
@click.option("--res", "res_spec", default=None, help="Resolutions of the grid [default: the views' own size].")
@click.option("--no-vmaf", is_flag=True, help="Skip VMAF in the grid (PSNR-Y and SSIM are always measured).")
@click.option("--model", "models", multiple=True, default=("netvlad-efficientnet-lite0",), metavar="NAME[:WEIGHTS]",
              help="Model(s) to evaluate (repeatable).")
@click.option("--batch-size", default=16, type=int, help="Images per forward pass.")
@click.option("--backend", default=DEFAULT_BACKEND, type=click.Choice(BACKEND_CHOICES),
              help="What runs the models (as `vidvpr eval --backend`).")
@scheduler_option
@output_options
@handle_errors
def demo_run(out_dir: Path, definition_path: Path | None, size: str, qp_spec: str, res_spec: str | None,
             no_vmaf: bool, models: tuple[str, ...], batch_size: int, backend: str, scheduler: str | None,
             quiet: bool, as_json: bool) -> None:
    """Render the demo world, slice, encode a grid, build the manifest, evaluate the offline model on
    every cell, study recall against bitrate and write the HTML report: the recall table on stdout,
    results, plots and strips in OUT_DIR/eval, the study in OUT_DIR/bitrate-study, the report's path last.
    Reruns skip what is done."""
    from dataclasses import replace

    from vidvpr.core.progress import progress_bar
    from vidvpr.demo.definition import load_definition
    from vidvpr.demo.run import DemoRunConfig, run_demo
    from vidvpr.encoding.plan import parse_qp_spec
    from vidvpr.evaluate.results import recall_table

    base = DemoRunConfig()
    config = DemoRunConfig(size=size, qps=parse_qp_spec(qp_spec), resolutions=res_spec, vmaf=not no_vmaf,
                           eval=replace(base.eval, models=models, batch_size=batch_size, backend=backend),
                           definition=load_definition(definition_path),
                           definition_source=str(definition_path or "built-in"))
    bars: list = []

    def progress(stage: str, total: int | None):
        for bar in bars:
            bar.close()
        bar = progress_bar(total, stage, unit="frame" if stage != "eval" else "img", quiet=quiet)
        bars.append(bar)
        return bar.update

    with executor_for(scheduler, quiet) as executor:
        try:
            result = run_demo(out_dir, config, progress, executor)
        finally:
            for bar in bars:
                bar.close()
    evaluation = result.evaluation
    if as_json:
        emit_json({"stages_s": result.stages_s, "results": str(evaluation.results_csv),
                   "plots": [str(p) for p in evaluation.plots], "strips": [str(p) for p in evaluation.strips],
                   "study": str(result.study.json_path), "report": str(result.report.path),
                   "rows": [row.model_dump(mode="json") for row in evaluation.rows]})
    elif not quiet:
        for line in recall_table(evaluation.rows):
            click.echo(line)
        click.echo("stages: " + ", ".join(f"{stage} {seconds:g} s" for stage, seconds in result.stages_s.items()),
                   err=True)
        click.echo(f"results {evaluation.results_csv}; plots {', '.join(map(str, evaluation.plots))}; "
                   f"study {result.study.json_path}", err=True)
        click.echo(f"report {result.report.path}")


@demo_group.command("study")
@click.argument("out_dir", type=NonEmptyPath(path_type=Path))
@click.option("--train-qp", type=int, default=45, help="QP of the grid cell the day students train on.")
@click.option("--eval-qps", default="40,45,50", help="QPs of the cells to evaluate ('all': the whole grid and the "
                                                   "reference views).")
@click.option("--size", default=None, help="The size OUT_DIR was rendered at (`vidvpr demo run --size`); checked, "
                                          "and the held-out world is rendered at it [default: read from OUT_DIR].")
@click.option("--max-steps", type=int, default=None,
              help="Optimiser steps each student trains for [default: chosen by the size OUT_DIR was rendered at, "
                   "about a quarter epoch on the small demo and one whole epoch otherwise; study.json records it].")
@click.option("--device", default="cpu", help="cpu, cuda or mps.")
@click.option("--backend", default=DEFAULT_BACKEND, type=click.Choice(BACKEND_CHOICES),
              help="What runs the teacher's targets and the evaluations (as `vidvpr distill --backend`).")
@output_options
@handle_errors
def demo_study(out_dir: Path, train_qp: int, eval_qps: str, size: str | None, max_steps: int | None, device: str,
               backend: str, quiet: bool, as_json: bool) -> None:
    """Train, on the demo's database walk, a distilled student and the fine-tuned baseline (triplet loss only)
    at a low-quality cell and a night student on darkened frames; evaluate them and the teacher on the query
    walk, on a held-out world nothing trained on, and on its night walk (run `vidvpr demo run OUT_DIR` first):
    OUT_DIR/study, the recall@1 tables printed, worlds.png."""
    from dataclasses import replace

    from vidvpr.cli.common import parse_numbers
    from vidvpr.core.progress import progress_bar
    from vidvpr.demo.study import StudyConfig, run_study, study_table

    base = StudyConfig()
    qps = None if eval_qps.strip().lower() == "all" else parse_numbers(eval_qps, int, "--eval-qps")
    config = replace(base, train_qp=train_qp, eval_qps=qps, size=size,
                     distill=replace(base.distill, device=device, backend=backend, max_steps=max_steps))
    with progress_bar(None, "study", unit="step", quiet=quiet) as bar:
        def stage(name: str, total: int | None):  # rendering, slicing, encoding and evaluating: frames, images
            bar.set_description(name)
            bar.reset(total=total)
            return bar.update

        result = run_study(out_dir, config, on_status=bar.set_description, on_step=lambda row: bar.update(1),
                           progress=stage)
    if as_json:
        emit_json({"recall_at_1": result.summary, "record": str(result.record), "plot": str(result.plot),
                   "stages_s": result.stages_s,
                   "results": {key: str(evaluation.results_csv) for key, evaluation in result.evaluations.items()}})
    elif not quiet:
        for line in study_table(result.summary):
            click.echo(line)
        click.echo("stages: " + ", ".join(f"{stage} {seconds:g} s" for stage, seconds in result.stages_s.items()),
                   err=True)
        click.echo(f"plot {result.plot}; record {result.record}", err=True)
