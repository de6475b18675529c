"""Specification of `vidvpr demo run`: the whole pipeline on a tiny demo world, ending with the
study and the HTML report (issue 15, item 20)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidvpr.cli import main

# A short loop at a tiny size: every stage runs, in seconds.
TINY_DEFINITION = """
name = "vidvpr-demo-tiny"
[route]
length_m = 72.0
aspect = 1.0
[places]
count = 16
shared_designs = 1
places_sharing = 2
[sizes]
tiny = [128, 64]
"""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """`vidvpr demo run` on the tiny world, once: its folder and the CLI's result."""
    base = tmp_path_factory.mktemp("demo-run")
    definition = base / "tiny.toml"
    definition.write_text(TINY_DEFINITION)
    out = base / "demo"
    result = CliRunner().invoke(main, ["demo", "run", str(out), "--definition", str(definition), "--size", "tiny",
                                       "--qp", "30,45", "--no-vmaf"])
    assert result.exit_code == 0, result.output
    return out, result


@pytest.mark.slow
def test_demo_run_ends_with_the_report_path(demo_run: tuple[Path, object]) -> None:
    out, result = demo_run
    last = result.output.strip().splitlines()[-1]
    assert last == f"report {out / 'report.html'}"
    assert (out / "report.html").is_file() and (out / "bitrate-study" / "study.json").is_file()


@pytest.mark.slow
def test_demo_report_shows_prediction_strips_of_the_worst_hit_cells(demo_run: tuple[Path, object]) -> None:
    out, _ = demo_run
    strips = sorted((out / "eval" / "strips").rglob("*.png"))
    assert {p.stem for p in strips} == {"reference", "32x16_qp30", "32x16_qp45"}
    page = (out / "report.html").read_text()
    worst = page[page.index('id="strips"'):]
    section = worst.split("</section>")[0]
    assert "data:image/png;base64," in section and "No prediction strips" not in section


@pytest.mark.slow
def test_demo_study_holds_sequence_lengths_beside_single_frames(demo_run: tuple[Path, object]) -> None:
    out, _ = demo_run
    results = json.loads((out / "eval" / "results.json").read_text())
    assert sorted({row["seq_len"] for row in results["rows"]}) == [1, 5, 10, 20]
    study = json.loads((out / "bitrate-study" / "study.json").read_text())
    assert study["sequences"], "the study answers how long a sequence each QP needs"


@pytest.mark.slow
def test_demo_rerun_keeps_every_stage_output_and_the_demo_study(demo_run: tuple[Path, object]) -> None:
    out, _ = demo_run
    results = (out / "eval" / "results.json").read_bytes()
    students = out / "study" / "models" / "distilled.pt"  # what `vidvpr demo study` keeps in DIR/study
    students.parent.mkdir(parents=True)
    students.write_bytes(b"a student")
    again = CliRunner().invoke(main, ["demo", "run", str(out), "--definition", str(out.parent / "tiny.toml"),
                                      "--size", "tiny", "--qp", "30,45", "--no-vmaf", "--json"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert (out / "eval" / "results.json").read_bytes() == results  # eval had nothing to do
    assert summary["report"] == str(out / "report.html") and summary["strips"]
    assert students.read_bytes() == b"a student"  # the bitrate study is DIR/bitrate-study, never DIR/study


def rerun_argv(out: Path, command: str) -> list[str]:
    """`vidvpr COMMAND` over the finished tiny demo, with the options `demo run` used (the views are 32x16)."""
    views = [str(p) for p in sorted((out / "views").glob("*/*.mp4"))]
    return {
        "slice": ["slice", str(out / "database" / "database.mp4"), str(out / "query" / "query.mp4"),
                  "--out", str(out / "views")],
        "encode": ["encode", *views, "--out", str(out / "enc"), "--qp", "30,45", "--res", "32x16", "--preset", "veryfast",
                   "--no-vmaf"],
        "manifest": ["manifest", str(out / "dataset.toml"), "--out", str(out / "manifest")],
        "export": ["export", str(out / "manifest"), "--out", str(out / "export")],
        "eval": ["eval", str(out / "manifest"), "--enc", str(out / "enc"), "--out", str(out / "eval"),
                 "--seq-len", "1,5,10,20", "--save-preds", "4"],
        "study": ["study", str(out / "eval"), "--out", str(out / "bitrate-study")],
        "report": ["report", str(out / "bitrate-study"), "--out", str(out / "report.html")],
        "demo make": ["demo", "make", str(out), "--definition", str(out.parent / "tiny.toml"), "--size", "tiny"],
        "demo run": ["demo", "run", str(out), "--definition", str(out.parent / "tiny.toml"), "--size", "tiny",
                     "--qp", "30,45", "--no-vmaf"],
    }[command]


# what each command's --json says when it found everything done (study and report draw no bar at all)
IDLE = {"slice": lambda out: all(view["skipped"] for view in out["outputs"]), "encode": lambda out: not out["encoded"],
        "manifest": lambda out: out["skipped"], "export": lambda out: out["skipped"],
        "eval": lambda out: out["forward_images"] == 0, "demo make": lambda out: all(t["skipped"] for t in out["traversals"])}


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--json", "--quiet"])
@pytest.mark.parametrize("command", ["slice", "encode", "manifest", "export", "eval", "study", "report", "demo make",
                                     "demo run"])
def test_a_rerun_over_finished_work_draws_no_progress_bar(demo_run: tuple[Path, object], command: str,
                                                          flag: str) -> None:
    # `vidvpr slice ... --json` over finished views drew "slice: 0frame [00:00, ?frame/s]" on stderr
    out, _ = demo_run
    if command == "export":
        assert CliRunner().invoke(main, [*rerun_argv(out, command), "--quiet"]).exit_code == 0
    again = CliRunner().invoke(main, [*rerun_argv(out, command), flag])
    assert again.exit_code == 0, again.output
    if flag == "--json" and command in IDLE:
        assert IDLE[command](json.loads(again.stdout)), "not a rerun over finished work"
    assert "\r" not in again.stderr and "frame/s" not in again.stderr and "img/s" not in again.stderr


@pytest.mark.parametrize("option, problem", [
    (["--qp", "30,99"], "qp must be in [0, 51] for libx264, got 99"),
    (["--res", "8x8"], "--res 8x8: width and height must be even and at least 16 (yuv420p)"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
])
def test_bad_options_are_refused_before_anything_is_rendered(tmp_path: Path, option: list[str], problem: str) -> None:
    # review-b: `vidvpr demo run D --qp 99` rendered and sliced (--batch-size 0 also encoded and built the manifest)
    # before saying no
    definition = tmp_path / "tiny.toml"
    definition.write_text(TINY_DEFINITION)
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "run", str(out), "--definition", str(definition), "--size", "tiny",
                                       "--no-vmaf", *option])
    assert result.exit_code == 2 and result.stderr == f"vidvpr: error: {problem}\n"
    assert not out.exists()


def test_a_run_at_another_size_is_refused_before_the_videos_are_rendered_again(tmp_path: Path) -> None:
    # review-b: `vidvpr demo run D` on a `--size small` D rendered the videos again at the default size over the small
    # ones, then stopped at slice (views of the old videos): D held neither demo whole
    from vidvpr.core.provenance import sha256_file

    definition = tmp_path / "tiny.toml"
    definition.write_text(TINY_DEFINITION + "tinier = [96, 48]\n")
    out = tmp_path / "demo"
    made = CliRunner().invoke(main, ["demo", "make", str(out), "--definition", str(definition), "--size", "tiny"])
    assert made.exit_code == 0, made.output
    video = next(out.glob("*/*.mp4"))
    before = sha256_file(video)
    result = CliRunner().invoke(main, ["demo", "run", str(out), "--definition", str(definition), "--size", "tinier",
                                       "--no-vmaf"])
    assert result.exit_code == 2
    assert result.stderr == (f"vidvpr: error: {out}: holds the demo rendered at size 'tiny', not 'tinier': run it "
                             "with --size tiny, or into another folder\n")
    assert sha256_file(video) == before


def test_a_run_with_an_edited_definition_is_refused_before_the_videos_are_rendered_again(tmp_path: Path) -> None:
    # `vidvpr demo run D --definition EDITED` rendered the videos again, then slice refused them (views of
    # the old videos), leaving D half way: new renders, old views, grid and results
    from vidvpr.core.provenance import sha256_file

    original, edited = tmp_path / "tiny.toml", tmp_path / "edited.toml"
    original.write_text(TINY_DEFINITION)
    edited.write_text(TINY_DEFINITION.replace("count = 16", "count = 14"))
    out = tmp_path / "demo"
    made = CliRunner().invoke(main, ["demo", "run", str(out), "--definition", str(original), "--size", "tiny",
                                     "--qp", "45", "--no-vmaf", "--quiet"])
    assert made.exit_code == 0, made.output
    before = {video: sha256_file(video) for video in out.glob("**/*.mp4")}
    result = CliRunner().invoke(main, ["demo", "run", str(out), "--definition", str(edited), "--size", "tiny",
                                       "--qp", "45", "--no-vmaf"])
    assert result.exit_code == 2
    assert result.stderr == (f"vidvpr: error: {out}: holds the demo made from another definition ({original}), not "
                             f"from {edited}: run it into a new folder, or run {out} with the definition it was "
                             "made from\n")
    assert {video: sha256_file(video) for video in out.glob("**/*.mp4")} == before  # renders, views, grid


def test_a_demo_made_with_its_night_walk_runs_with_the_same_definition(tmp_path: Path) -> None:
    definition = tmp_path / "tiny.toml"
    definition.write_text(TINY_DEFINITION)
    out = tmp_path / "demo"
    made = CliRunner().invoke(main, ["demo", "make", str(out), "--definition", str(definition), "--size", "tiny",
                                     "--night"])
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(main, ["demo", "run", str(out), "--definition", str(definition), "--size", "tiny",
                                       "--qp", "45", "--no-vmaf", "--quiet"])
    assert result.exit_code == 0, result.output
