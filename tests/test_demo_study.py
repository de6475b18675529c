"""Specification of `vidvpr demo study`: a held-out world nothing trains on, the night walk, and a
record from which the study can be rebuilt. The study itself runs once, on the small demo."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file
from vidvpr.demo.artwork import poster_image
from vidvpr.demo.definition import DemoDefinition, definition_from_data
from vidvpr.demo.make import plan_traversal
from vidvpr.demo.render import render_equirect_frame
from vidvpr.demo.study import StudyConfig, StudyRecord, study_table, training_budget
from vidvpr.demo.world import CameraPose, Lighting, build_world
from vidvpr.distill.config import StudentRecord
from vidvpr.distill.degrade import parse_low_quality, srgb_to_linear

DEFINITION = DemoDefinition()
MODEL = "netvlad-efficientnet-lite0"


# ---------------------------------------------------------------- the held-out world


def test_the_heldout_world_is_another_world_walked_and_filmed_the_same_way() -> None:
    heldout = DEFINITION.heldout_definition()
    assert heldout.seed != DEFINITION.seed and heldout.route != DEFINITION.route and heldout.places != DEFINITION.places
    assert heldout.traversals == (*DEFINITION.traversals, DEFINITION.night)  # the same walks, and the night walk
    for same in ("sizes", "views", "ground_truth", "encoding"):
        assert getattr(heldout, same) == getattr(DEFINITION, same)
    train_world = build_world(DEFINITION.route, DEFINITION.places, DEFINITION.seed)
    new_world = build_world(heldout.route, heldout.places, heldout.seed)
    posters = {poster_image(DEFINITION.seed, p.design).tobytes() for p in train_world.places}
    assert not any(poster_image(heldout.seed, p.design).tobytes() in posters for p in new_world.places)
    assert heldout.heldout is None  # a held-out world has none of its own


def test_a_heldout_world_with_the_training_seed_or_an_unwalkable_route_is_refused() -> None:
    data = DEFINITION.model_dump(mode="json")
    for heldout, match in (({"seed": DEFINITION.seed}, "heldout.seed must differ from seed"),
                           ({"seed": 5, "route": {"length_m": 30.0}}, "heldout: route.length_m 30 is too short")):
        with pytest.raises(BadInput, match=match) as caught:
            definition_from_data({**data, "heldout": heldout}, "demo.toml")
        assert "\n" not in str(caught.value)


def test_the_night_students_darkening_is_the_training_worlds_night() -> None:
    """StudyConfig.night_lq was chosen on the TRAINING world: the median frame of its night walk holds
    2^EV of the light its day render holds at the same pose, rounded to a whole stop."""
    world = build_world(DEFINITION.route, DEFINITION.places, DEFINITION.seed)
    spec = DEFINITION.night
    plan = plan_traversal(DEFINITION, spec)
    weights = np.array([0.2126, 0.7152, 0.0722], np.float32)
    ratios = []
    for i in range(0, plan.frames, 15):
        pose = CameraPose(float(plan.east_m[i]), float(plan.north_m[i]), float(plan.heading_deg[i]))
        night = render_equirect_frame(world, pose, (256, 128), Lighting(spec.lighting_gain, spec.tint_rgb,
                                                                        spec.noise_std, (0, i), "night"))
        day = render_equirect_frame(world, pose, (256, 128), Lighting())
        ratios.append((srgb_to_linear(night) @ weights).mean() / (srgb_to_linear(day) @ weights).mean())
    (lowlight,) = parse_low_quality(StudyConfig().night_lq).degradations
    assert round(float(np.log2(np.median(ratios)))) == lowlight.ev


# ---------------------------------------------------------------- the study on the small demo


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """`vidvpr demo run --size small --qp 45` then `vidvpr demo study --eval-qps 45`, once."""
    from vidvpr.demo.run import DemoRunConfig, run_demo
    from vidvpr.demo.study import run_study

    demo = tmp_path_factory.mktemp("small-study")
    run_demo(demo, DemoRunConfig(size="small", qps=(45,), vmaf=False))
    base = StudyConfig()
    return demo, run_study(demo, replace(base, eval_qps=(45,), distill=replace(base.distill, batch_size=16)))


@pytest.mark.slow
def test_no_student_trained_on_a_video_of_the_heldout_world(small_study) -> None:
    demo, result = small_study
    heldout = {sha256_file(path) for path in (demo / "heldout").rglob("*.mp4")}
    assert len(heldout) >= 3 * (1 + 4 * 2)  # three walks: the equirect video, four views and their QP 45 cells
    query = {sha256_file(path) for path in (demo / "views" / "query").glob("*.mp4")} | \
        {sha256_file(path) for path in (demo / "enc" / "query").rglob("*.mp4")}
    database_views = {sha256_file(path) for path in (demo / "views" / "database").glob("*.mp4")}
    for role in ("distilled", "finetuned", "night"):
        trained = StudentRecord.load(demo / "study" / role / "student.json").videos
        assert set(trained.values()) >= database_views  # the teacher's side: the clean database views
        assert not set(trained.values()) & heldout
        assert not set(trained.values()) & query  # nor the training world's query walk
    assert set(StudentRecord.load(demo / "study" / "distilled" / "student.json").videos) == \
        {f"{cell}/database/yaw{yaw:03d}_pitch+00" for cell in ("reference", "80x32/qp45") for yaw in (0, 90, 180, 270)}
    record = StudyRecord.load(result.record)
    assert record.heldout_videos_trained_on == []
    assert set(record.worlds["heldout"]["videos"].values()) == heldout


@pytest.mark.slow
def test_the_evaluations_record_which_evaluated_videos_each_student_trained_on(small_study) -> None:
    """The training world's QP 45 database views are the day students' training images; the held-out
    world and its night walk hold none (the students' sidecars are copied beside their checkpoints)."""
    demo, _ = small_study

    def trained_on(folder: str) -> dict[str, object]:
        models = json.loads((demo / "study" / folder / "results.json").read_text())["models"]
        return {model["label"].split(":", 1)[1]: model["trained_on"] for model in models}

    database = [f"80x32/qp45/database/yaw{yaw:03d}_pitch+00" for yaw in (0, 90, 180, 270)]
    assert trained_on("eval") == {"teacher": None, "finetuned": database, "distilled": database}
    assert trained_on("eval-heldout") == {"teacher": None, "finetuned": [], "distilled": []}
    assert trained_on("eval-heldout-night") == {"teacher": None, "finetuned": [], "distilled": [], "night": []}


@pytest.mark.slow
def test_on_the_small_demo_every_student_trains_the_small_budget_and_the_record_says_so(small_study) -> None:
    demo, result = small_study
    budget = StudyConfig().max_steps_by_size["small"]
    record = StudyRecord.load(result.record)
    assert record.max_steps == budget and record.config["max_steps_by_size"] == {"small": budget}
    for role in ("distilled", "finetuned", "night"):
        sidecar = StudentRecord.load(demo / "study" / role / "student.json")
        assert sidecar.steps == sidecar.max_steps == budget < sidecar.steps_per_epoch  # stopped inside the epoch
        assert (record.students[role].steps, record.students[role].steps_per_epoch) == \
            (budget, sidecar.steps_per_epoch)


@pytest.mark.slow
def test_the_study_evaluates_both_worlds_and_the_night_walk(small_study) -> None:
    demo, result = small_study
    for folder in ("eval", "eval-heldout", "eval-heldout-night"):
        assert {"results.csv", "results.json"} <= {p.name for p in (demo / "study" / folder).iterdir()}
    assert set(result.summary) == {"train", "heldout", "night"}
    for key in ("train", "heldout"):
        assert set(result.summary[key]) == {"teacher", "finetuned", "distilled"}
        assert all(set(by_cell) == {"80x32/qp45"} for by_cell in result.summary[key].values())
    assert set(result.summary["night"]) == {"teacher", "finetuned", "distilled", "night"}
    assert all(set(by_cell) == {"reference"} for by_cell in result.summary["night"].values())
    heldout_rows = json.loads((demo / "study" / "eval-heldout" / "results.json").read_text())["rows"]
    assert {row["queries"] for row in heldout_rows} == {4 * plan_traversal(
        DEFINITION.heldout_definition(), DEFINITION.traversals[1]).frames}  # the held-out query walk
    assert result.plot.read_bytes()[:4] == b"\x89PNG"
    table = study_table(result.summary)
    assert "training world" in table[0] and "held-out world" in table[0]
    assert any(line.startswith("night student") for line in table)


@pytest.mark.slow
def test_the_study_record_says_how_to_rebuild_it(small_study) -> None:
    demo, result = small_study
    record = StudyRecord.load(result.record)
    assert record.worlds["train"]["seed"] == DEFINITION.seed and record.worlds["heldout"]["seed"] == 23
    assert definition_from_data(record.worlds["train"]["definition"], "train") == DEFINITION
    assert definition_from_data(record.worlds["heldout"]["definition"], "heldout") == DEFINITION.heldout_definition()
    assert record.students["night"].lq == ["lowlight:-3"] and record.students["distilled"].lq == ["80x32/qp45"]
    assert record.students["finetuned"].loss == ["triplet"]
    assert record.config["distill"]["seed"] == 0 and record.config["night_lq"] == ["lowlight:-3"]
    night_student = StudentRecord.load(demo / "study" / "night" / "student.json")
    assert record.teacher["fingerprint"] == night_student.teacher["fingerprint"]
    assert record.plot == "study/worlds.png"  # relative to DIR, so that the folder can move
    assert record.results == {"train": "study/eval/results.csv", "heldout": "study/eval-heldout/results.csv",
                              "night": "study/eval-heldout-night/results.csv"}
    assert record.students["distilled"].sidecar.hash == sha256_file(demo / "study" / "distilled" / "student.json")


@pytest.mark.slow
def test_a_rerun_reuses_every_run_and_render_and_gives_the_same_results(small_study) -> None:
    from vidvpr.demo.study import run_study

    demo, first = small_study
    heldout_video = demo / "heldout" / "night" / "night.mp4"
    rendered = heldout_video.stat().st_mtime_ns
    base = StudyConfig()
    again = run_study(demo, replace(base, size="small", eval_qps=(45,), distill=replace(base.distill, batch_size=16)))
    assert all(run.resumed_from == run.steps for run in again.runs.values())  # nothing trained again
    assert heldout_video.stat().st_mtime_ns == rendered  # nor rendered
    assert again.summary == first.summary
    wrong = CliRunner().invoke(main, ["demo", "study", str(demo), "--size", "default"])
    assert wrong.exit_code == 2 and "was rendered at size 'small', not 'default'" in wrong.output
    assert wrong.output.count("\n") == 1
    unknown = CliRunner().invoke(main, ["demo", "study", str(demo), "--size", "huge"])  # no advice to render it
    assert unknown.exit_code == 2 and "--size huge: not a size of the demo's definition (default, small)" in unknown.output


def test_a_size_without_a_budget_trains_whole_epochs_as_the_full_study_did() -> None:
    config = StudyConfig()
    assert "default" not in config.max_steps_by_size and config.distill.max_steps is None
    assert training_budget(config, "default") is None


def test_a_step_budget_given_with_the_distillation_options_wins_over_the_sizes() -> None:
    config = StudyConfig()
    assert training_budget(replace(config, distill=replace(config.distill, max_steps=7)), "small") == 7


def test_the_study_needs_a_demo_run_first(tmp_path: Path) -> None:
    missing = CliRunner().invoke(main, ["demo", "study", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "run `vidvpr demo run" in missing.output and missing.output.count("\n") == 1


def test_the_study_command_passes_its_options_to_training_and_evaluation(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import vidvpr.demo.study as study

    seen: list[StudyConfig] = []

    def fake_run_study(demo_dir: Path, config: StudyConfig, **kwargs: object) -> None:
        seen.append(config)
        raise BadInput("stop here")

    monkeypatch.setattr(study, "run_study", fake_run_study)
    result = CliRunner().invoke(main, ["demo", "study", str(tmp_path), "--backend", "torch", "--device", "cpu",
                                       "--train-qp", "40", "--eval-qps", "40,50", "--max-steps", "7"])
    assert result.exit_code == 2 and "stop here" in result.output
    (config,) = seen
    assert config.distill.backend == "torch" and config.distill.device == "cpu"  # training and _evaluate read these
    assert config.train_qp == 40 and config.eval_qps == (40, 50) and config.distill.max_steps == 7


def test_the_printed_table_keeps_world_names_apart_and_says_which_world_was_trained_on() -> None:
    """With one evaluated cell the header read 'training worldheld-out world' (columns 10 wide)."""
    summary = {key: {"teacher": {"80x32/qp45": 0.101}, "distilled": {"80x32/qp45": 0.159}} for key in ("train", "heldout")}
    table = study_table(summary)
    assert "training world  held-out world" in table[0]
    assert len({len(line) for line in table[:4]}) == 1  # header, cells and rows line up
    assert table[3].split() == ["distilled", "(QP", "cell)", "0.159", "0.159"]
    assert "the students trained on its database walk, so it is not held-out" in table[4]


@pytest.mark.parametrize("qps", ["40.5", "40,,50", "abc"])
def test_eval_qps_that_are_not_whole_numbers_are_refused_in_one_line(qps: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """--eval-qps 40.5 was read as 40, silently."""
    import vidvpr.demo.study as study

    monkeypatch.setattr(study, "run_study", lambda *args, **kwargs: pytest.fail("the study ran"))
    result = CliRunner().invoke(main, ["demo", "study", str(tmp_path), "--eval-qps", qps])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "--eval-qps" in result.output, result.output
