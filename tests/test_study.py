"""Specification of `vidvpr study`: Bjøntegaard deltas with known answers, the Pareto front, the
budget pick, and the stage on synthetic eval folders (no pipeline run)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidvpr.cli import main
from vidvpr.core.errors import BadInput, OutputError
from vidvpr.evaluate.results import EvalResults, EvalRow
from vidvpr.study.bdelta import INTERPOLATIONS, bd_rate, bd_recall
from vidvpr.study.curves import Point, build_curves, distinct_rates, rising
from vidvpr.study.pareto import best_under_budget, front
from vidvpr.study.records import StudyRecord
from vidvpr.study.stage import StudyConfig, run_study

RATES = [100.0, 200.0, 400.0, 800.0, 1600.0]
RECALLS = [0.30, 0.45, 0.60, 0.72, 0.80]
DATASET = {"database.csv": "sha256:aa", "query.csv": "sha256:bb", "positives.json": "sha256:cc"}


# ---------------------------------------------------------------- synthetic eval folders


def eval_row(model: str, cell: str, codec: str | None, qp: int | None, kbps: float | None, recall1: float,
             protocol: str = "same", resolution: str | None = "64x32", unmatched: str = "exclude") -> EvalRow:
    recall = {1: recall1, 5: min(1.0, recall1 + 0.1)}
    return EvalRow(model=model, protocol=protocol, cell=cell, codec=codec, resolution=resolution if qp is not None else None,
                   width=64 if qp is not None else None, height=32 if qp is not None else None, qp=qp, kbps=kbps,
                   psnr_y=None, ssim_y=None, vmaf=None, input_size="cell", queries=100, excluded=0, threshold_m=25.0,
                   unmatched_queries=unmatched, recall=recall, per_view={}, predictions=f"predictions/{model}/{protocol}/{cell.replace('/', '_')}.csv")


def curve_rows(model: str, codec: str, rates: Sequence[float], recalls: Sequence[float], protocol: str = "same",
               resolution: str = "64x32") -> list[EvalRow]:
    """One encoded row per (rate, recall), QPs descending as rate rises (like a real grid)."""
    prefix = "" if codec == "libx264" else f"{codec}/"
    qps = [50 - 5 * i for i in range(len(rates))]
    return [eval_row(model, f"{prefix}{resolution}/qp{qp:02d}", codec, qp, rate, recall, protocol, resolution)
            for qp, rate, recall in zip(qps, rates, recalls)]


def write_eval(folder: Path, rows: list[EvalRow], files: dict[str, str] = DATASET,
               fingerprints: dict[str, str] | None = None, reference: float | None = 0.9) -> Path:
    """A results.json as `vidvpr eval` writes it, with only `rows` (plus a reference row per model)."""
    models = list(dict.fromkeys(row.model for row in rows))
    protocol, unmatched = rows[0].protocol, rows[0].unmatched_queries
    if reference is not None:
        rows = [eval_row(m, "reference", None, None, None, reference, protocol, unmatched=unmatched)
                for m in models] + rows
    folder.mkdir(parents=True, exist_ok=True)
    EvalResults(manifest={"path": "/data/manifest", "name": "synthetic", "files": files, "radius_m": 25.0,
                          "max_heading_diff_deg": None},
                enc_dir="/data/enc", protocol=protocol, input_size="cell", recall_at=[1, 5], thresholds_m=[25.0],
                unmatched_queries=unmatched, index="Flat (exact L2)",
                models=[{"label": m, "fingerprint": (fingerprints or {}).get(m, f"fp-{m}")} for m in models],
                rows=rows, descriptors={}, forward_images=0, elapsed_s=1.0, versions={"vidvpr": "test"},
                command=["vidvpr", "eval", "<synthetic>"]).save(folder / "results.json")
    return folder


@pytest.fixture
def two_codecs_two_models(tmp_path: Path) -> list[Path]:
    """teacher: libx264 and libx265 (x265 = x264 at 0.8× the rate); student: libx264 at 0.5× the rate."""
    teacher = curve_rows("teacher", "libx264", RATES, RECALLS) + curve_rows(
        "teacher", "libx265", [0.8 * r for r in RATES], RECALLS)
    student = curve_rows("student", "libx264", [0.5 * r for r in RATES], RECALLS)
    return [write_eval(tmp_path / "eval-teacher", teacher), write_eval(tmp_path / "eval-student", student)]


# ---------------------------------------------------------------- Bjøntegaard: known answers


@pytest.mark.parametrize("method", list(INTERPOLATIONS))
@pytest.mark.parametrize("factor", [0.5, 0.8, 1.25])
def test_bd_rate_of_a_curve_offset_by_a_rate_factor_is_that_factor(method: str, factor: float) -> None:
    delta = bd_rate(RATES, RECALLS, [factor * r for r in RATES], RECALLS, method)
    assert delta.value == pytest.approx(100 * (factor - 1), abs=1e-9)
    assert (delta.low, delta.high) == (min(RECALLS), max(RECALLS)) and delta.overlap_fraction == pytest.approx(1)
    assert delta.points == (5, 5) and delta.reason is None


@pytest.mark.parametrize("method", list(INTERPOLATIONS))
def test_bd_recall_of_a_log_linear_curve_offset_by_a_rate_factor(method: str) -> None:
    """recall = a + b·log10(rate): scaling the rate by f moves the curve by -b·log10(f) at equal rate."""
    a, b, factor = -0.5, 0.4, 0.5
    anchor = [a + b * math.log10(r) for r in RATES]
    test_rates = [factor * r for r in RATES]
    test = [a + b * math.log10(r / factor) for r in test_rates]  # the same cells, each at `factor` × the rate
    delta = bd_recall(RATES, anchor, test_rates, test, method)
    assert delta.value == pytest.approx(-b * math.log10(factor), abs=1e-9)  # +0.1204: more recall per bit
    assert (delta.low, delta.high) == (100.0, 800.0)  # the rate range both cover
    assert delta.overlap_fraction == pytest.approx(math.log(8) / math.log(32))  # on the log-rate axis


def test_bd_rate_over_a_partial_overlap_reports_the_overlap_it_holds_over() -> None:
    delta = bd_rate(RATES, RECALLS, [0.8 * r for r in RATES[:3]], RECALLS[:3])
    assert delta.value == pytest.approx(-20.0, abs=0.5)  # not exact: 3 points give pchip other end slopes
    assert (delta.low, delta.high) == (0.30, 0.60) and delta.points == (5, 3)


def test_a_delta_over_less_than_half_the_union_is_flagged_and_the_packages_warning_recorded() -> None:
    # issue 15.5: the overlap was only in study.json and the package's warning below 75 % was silenced
    delta = bd_rate(RATES, RECALLS, [0.8 * r for r in RATES[:3]], RECALLS[:3])  # recall 0.30–0.60 of 0.30–0.80
    assert delta.overlap_fraction == pytest.approx(0.6) and delta.low_overlap is False
    assert "Insufficient curve overlap" in delta.package_warning and "60.00" in delta.package_warning
    narrow = bd_rate(RATES, RECALLS, [0.8 * r for r in RATES[2:]], RECALLS[2:])  # recall 0.60–0.80 of 0.30–0.80
    assert narrow.overlap_fraction == pytest.approx(0.4) and narrow.low_overlap is True
    whole = bd_rate(RATES, RECALLS, [0.8 * r for r in RATES], RECALLS)
    assert whole.overlap_fraction == pytest.approx(1.0) and whole.low_overlap is False and whole.package_warning is None


def test_headlines_give_the_overlap_and_flag_one_under_half(tmp_path: Path) -> None:
    rows = curve_rows("m", "libx264", RATES, RECALLS) + curve_rows("m", "libx265", [0.8 * r for r in RATES[2:]],
                                                                   RECALLS[2:])
    study = run_study([write_eval(tmp_path / "e", rows)], tmp_path / "s", StudyConfig()).record
    (comparison,) = [c for c in study.comparisons if c.n == 1]
    assert comparison.bd_rate_pct.low_overlap is True and "Insufficient" in comparison.bd_rate_pct.package_warning
    assert ("over recall@1 0.600–0.800, 40% of the curves' union — under half: read with care)"
            in comparison.headline)
    assert "320–1280 kbps, 50% of the curves' union)." in comparison.headline  # log(1280/320) / log(1600/100)
    with open(tmp_path / "s" / "study.csv", newline="") as handle:
        bd = next(row for row in csv.DictReader(handle) if row["section"] == "bd" and row["n"] == "1")
    assert (bd["bd_rate_overlap"], bd["bd_rate_low_overlap"], bd["bd_recall_low_overlap"]) == ("0.4", "True", "False")
    assert bd["package_warning"].startswith("BD-rate: Insufficient curve overlap")


def test_curves_that_do_not_overlap_give_a_reason_not_a_number() -> None:
    rate = bd_rate(RATES, RECALLS, RATES, [0.85, 0.9, 0.95, 0.97, 0.99])
    assert rate.value is None and "do not overlap in recall (anchor 0.300–0.800, test 0.850–0.990)" in rate.reason
    assert "not extrapolated" in rate.reason and rate.overlap_fraction == 0
    recall = bd_recall(RATES, RECALLS, [16000.0, 20000.0], [0.5, 0.6])
    assert recall.value is None and "do not overlap in bitrate" in recall.reason


def test_too_few_points_for_the_interpolation_give_a_reason() -> None:
    delta = bd_rate(RATES[:3], RECALLS[:3], RATES[:3], RECALLS[:3], "cubic")
    assert delta.value is None and "too few" in delta.reason and "need 4" in delta.reason
    flat = bd_rate(RATES, [0.0] * 5, RATES, RECALLS)  # recall never rises: one usable point
    assert flat.value is None and "too few" in flat.reason


def test_unknown_interpolation_is_bad_input() -> None:
    with pytest.raises(BadInput, match="interpolation 'spline'.*pchip"):
        bd_rate(RATES, RECALLS, RATES, RECALLS, "spline")


def test_rising_keeps_points_that_beat_every_cheaper_point_and_distinct_rates_merges() -> None:
    assert rising([4, 1, 2, 3, 5], [0.5, 0.1, 0.3, 0.3, 0.4]) == ([1, 2, 4], [0.1, 0.3, 0.5])
    assert rising([1, 1, 2], [0.1, 0.2, 0.3]) == ([1, 2], [0.2, 0.3])
    assert distinct_rates([2, 1, 2], [0.1, 0.3, 0.4]) == ([1, 2], [0.3, 0.4])


# ---------------------------------------------------------------- Pareto front and budget


def pt(cell: str, kbps: float, recall: float, codec: str = "libx264", resolution: str = "64x32") -> Point:
    return Point(cell=cell, codec=codec, resolution=resolution, qp=0, kbps=kbps, recall={1: recall})


def test_front_keeps_exactly_the_cells_nothing_beats_on_both_rate_and_recall() -> None:
    cells = [pt("a", 100, 0.5), pt("b", 200, 0.4), pt("c", 200, 0.7), pt("d", 300, 0.7), pt("e", 50, 0.2),
             pt("f", 400, 0.9), pt("g", 100, 0.5)]
    assert [p.cell for p in front(cells, 1)] == ["e", "a", "g", "c", "f"]  # b, d dominated; equal twins both kept


def test_budget_picks_the_best_recall_at_or_under_the_budget_and_says_when_nothing_fits() -> None:
    cells = [pt("a", 100, 0.5), pt("b", 150, 0.5), pt("c", 200, 0.7), pt("d", 400, 0.9)]
    assert best_under_budget(cells, 1, 200).best.cell == "c"  # at the budget counts
    assert best_under_budget(cells, 1, 199).best.cell == "a"  # the cheaper of equal recalls
    none = best_under_budget(cells, 1, 99)
    assert none.best is None and "no cell at or below 99 kbps" in none.reason and "a, needs 100" in none.reason


def test_any_resolution_curve_is_the_codecs_front_over_resolutions() -> None:
    points = [("m", "same", pt("big/qp30", 400, 0.8, resolution="big")), ("m", "same", pt("big/qp50", 100, 0.05, resolution="big")),
              ("m", "same", pt("small/qp30", 150, 0.5, resolution="small")),
              ("m", "same", pt("small/qp50", 50, 0.1, resolution="small"))]
    curves = build_curves(points, [1])
    hull = next(c for k, c in curves.items() if k.resolution == "any")
    assert [p.cell for p in hull.points] == ["small/qp50", "small/qp30", "big/qp30"]


# ---------------------------------------------------------------- the stage


def test_study_of_two_codecs_and_two_models_gives_the_known_savings(two_codecs_two_models: list[Path],
                                                                    tmp_path: Path) -> None:
    result = run_study(two_codecs_two_models, tmp_path / "study", StudyConfig(budgets_kbps=(500.0,)))
    study = StudyRecord.load(result.json_path)
    by = {(c.kind, c.anchor, c.test, c.resolution, c.n): c for c in study.comparisons}
    codec = by[("codec", "libx264", "libx265", "64x32", 1)]
    assert codec.bd_rate_pct.value == pytest.approx(-20.0, abs=1e-6) and codec.system == "teacher"
    assert "libx265 needs 20.0% fewer bits than libx264 for the same recall@1" in codec.headline
    model = by[("model", "teacher", "student", "64x32", 1)]
    assert model.bd_rate_pct.value == pytest.approx(-50.0, abs=1e-6) and model.codec == "libx264"
    assert model.bd_recall.value > 0 and model.bd_recall.low == 100.0 and model.bd_recall.high == 800.0
    assert study.method.bd_rate_function == "bjontegaard.bd_rate" and study.method.interpolation == "pchip"
    assert study.anchor_codec == "libx264" and study.anchor_system == "teacher" and study.threshold_m == 25.0
    budget = {b.system: b for b in study.budgets}
    assert budget["teacher"].best.cell == "libx265/64x32/qp40" and budget["student"].best.kbps == 400.0
    names = {p.name for p in result.plots}
    for stem in ("recall1_vs_kbps", "models_recall1_vs_kbps", "front_recall1"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert all((tmp_path / "study" / name).read_bytes()[:4] in (b"\x89PNG", b"<?xm") for name in names)
    with open(result.csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["section"] for row in rows} == {"reference", "point", "bd", "front", "budget"}
    assert len([r for r in rows if r["section"] == "point"]) == 15  # 3 curves × 5 cells at recall@1
    bd = next(r for r in rows if r["section"] == "bd" and r["test"] == "libx265")
    assert float(bd["bd_rate_pct"]) == pytest.approx(-20.0, abs=1e-3) and bd["bd_rate_points"] == "5/5"


def test_study_over_eval_folders_of_different_datasets_is_refused(tmp_path: Path) -> None:
    a = write_eval(tmp_path / "a", curve_rows("m", "libx264", RATES, RECALLS))
    b = write_eval(tmp_path / "b", curve_rows("n", "libx264", RATES, RECALLS), files={**DATASET, "query.csv": "sha256:zz"})
    with pytest.raises(BadInput, match=r"b/results.json: evaluated a different dataset than .*a/results.json \(query.csv"):
        run_study([a, b], tmp_path / "study", StudyConfig())
    result = CliRunner().invoke(main, ["study", str(a), str(b), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "different dataset" in result.output
    assert not (tmp_path / "s").exists()


def test_study_over_the_same_manifest_files_with_other_view_videos_is_refused(tmp_path: Path) -> None:
    # two demo worlds rendered with other seeds have identical manifest files (same walks, same frames) and other
    # videos: the study either mixed them (one checkpoint given to both) or said "give the checkpoints different
    # file names" (NetVLAD initialised on each world)
    folders = [write_eval(tmp_path / name, curve_rows("m", "libx264", RATES, RECALLS)) for name in ("a", "b", "old")]
    for folder, video in zip(folders, ("sha256:11", "sha256:12", None)):
        data = json.loads((folder / "results.json").read_text())
        if video is not None:
            data["manifest"]["views"] = {"database/front": "sha256:00", "query/front": video}
        (folder / "results.json").write_text(json.dumps(data))
    a, b, old = folders
    with pytest.raises(BadInput, match=r"b/results.json: evaluated other view videos than .*a/results.json "
                                       r"\(query/front differs: "):
        run_study([a, b], tmp_path / "study", StudyConfig())
    result = CliRunner().invoke(main, ["study", str(a), str(b), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and not (tmp_path / "s").exists()
    assert run_study([a, old], tmp_path / "with-old", StudyConfig()).record  # a results.json from before: unknown


def test_study_over_recalls_counted_by_different_conventions_is_refused(tmp_path: Path) -> None:
    a = write_eval(tmp_path / "a", curve_rows("m", "libx264", RATES, RECALLS))
    missed = [row.model_copy(update={"unmatched_queries": "miss"}) for row in curve_rows("n", "libx264", RATES, RECALLS)]
    b = write_eval(tmp_path / "b", missed)
    with pytest.raises(BadInput, match=r"b/results.json: row 1 counts queries without positives as 'miss' but "
                                       r".*a/results.json as 'exclude'"):
        run_study([a, b], tmp_path / "study", StudyConfig())
    assert run_study([b], tmp_path / "alone", StudyConfig()).record.unmatched_queries == "miss"
    assert run_study([a], tmp_path / "other", StudyConfig()).record.unmatched_queries == "exclude"


@pytest.mark.parametrize(("edit", "message"), [
    # issue 15.7: KeyError: 1 in study/curves.py; kbps -3 silently dropped; recall 1.7 plotted and put on the front
    (lambda rows: rows[1]["recall"].pop("1"), r"rows: item 1 \(m on 64x32/qp50\) has no recall@1, which recall_at lists"),
    (lambda rows: rows[3].update(kbps=-3), r"rows\.3\.kbps: Input should be greater than 0"),
    (lambda rows: rows[2]["recall"].update({"1": 1.7}), r"rows\.2\.recall\.1: Input should be less than or equal to 1"),
    (lambda rows: rows[2]["per_view"].update({"yaw000": {"1": -0.5}}), r"rows\.2\.per_view\.yaw000\.1: Input should be"),
    # issue 15: "(… has m)", an empty list of thresholds in the message
    (lambda rows: rows.clear(), r"rows: List should have at least 1 item"),
], ids=["no-recall@1", "negative-kbps", "recall-above-1", "per-view-below-0", "no-rows"])
def test_each_row_of_a_results_json_is_checked_naming_the_file_and_row(tmp_path: Path, edit, message: str) -> None:
    folder = write_eval(tmp_path / "e", curve_rows("m", "libx264", RATES, RECALLS))
    data = json.loads((folder / "results.json").read_text())
    edit(data["rows"])
    (folder / "results.json").write_text(json.dumps(data))
    with pytest.raises(BadInput, match=rf"^{folder / 'results.json'}: malformed vidvpr eval results: {message}"):
        run_study([folder], tmp_path / "s", StudyConfig())
    result = CliRunner().invoke(main, ["study", str(folder), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and not (tmp_path / "s").exists()


def test_disjoint_curves_make_a_row_with_the_reason(tmp_path: Path) -> None:
    rows = curve_rows("m", "libx264", RATES, RECALLS) + curve_rows("m", "libx265", [1e5, 2e5], [0.95, 0.99])
    study = run_study([write_eval(tmp_path / "e", rows)], tmp_path / "s", StudyConfig()).record
    (comparison,) = [c for c in study.comparisons if c.n == 1]
    assert comparison.bd_rate_pct.value is None and "do not overlap" in comparison.bd_rate_pct.reason
    assert comparison.bd_recall.value is None and "do not overlap in bitrate" in comparison.bd_recall.reason
    assert "no BD-rate, the curves do not overlap" in comparison.headline


@pytest.mark.parametrize(("models", "message"), [
    ([], r"rows hold results of model 'm', which its models record does not list \(none\)"),
    ([{"label": "n", "fingerprint": "fp-n"}], r"rows hold results of model 'm', which its models record does not list "
                                              r"\('n'\)"),
    ([{"label": "m", "fingerprint": "fp-m"}, {"label": "n", "fingerprint": "fp-n"}],
     r"model 'n' is listed but no row holds its results"),
], ids=["none-listed", "another-listed", "a-model-without-rows"])
def test_a_results_json_whose_rows_and_models_disagree_is_refused(tmp_path: Path, models: list, message: str) -> None:
    # the study took a row of an unlisted model without checking its weights against the other folders' (so
    # two different models of one name were compared as one) and said nothing of a listed model without rows
    folder = write_eval(tmp_path / "e", curve_rows("m", "libx264", RATES, RECALLS))
    data = json.loads((folder / "results.json").read_text())
    data["models"] = models
    (folder / "results.json").write_text(json.dumps(data))
    with pytest.raises(BadInput, match=rf"^{folder / 'results.json'}: {message}; the file was edited or is damaged"):
        run_study([folder], tmp_path / "s", StudyConfig())
    result = CliRunner().invoke(main, ["study", str(folder), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and not (tmp_path / "s").exists()


def test_the_same_label_with_other_weights_is_refused(tmp_path: Path) -> None:
    a = write_eval(tmp_path / "a", curve_rows("m", "libx264", RATES, RECALLS))
    b = write_eval(tmp_path / "b", curve_rows("m", "libx265", RATES, RECALLS), fingerprints={"m": "other"})
    with pytest.raises(BadInput, match="model 'm' has other weights"):
        run_study([a, b], tmp_path / "s", StudyConfig())


@pytest.mark.parametrize(("config", "match"), [
    (StudyConfig(anchor_codec="libvpx-vp9"), "--anchor-codec 'libvpx-vp9' is not in the study; it has libx264, libx265"),
    (StudyConfig(anchor_model="nobody"), "--anchor-model 'nobody'"),
    (StudyConfig(recall_at=(10,)), "no recall@10"),
    (StudyConfig(threshold_m=5.0), "no results at --threshold 5 m"),
    (StudyConfig(budgets_kbps=(0.0,)), "--budget-kbps must be positive"),
])
def test_bad_options_are_one_line_bad_input(two_codecs_two_models: list[Path], tmp_path: Path, config: StudyConfig,
                                            match: str) -> None:
    with pytest.raises(BadInput, match=match):
        run_study(two_codecs_two_models, tmp_path / "s", config)


def test_out_must_be_new_or_a_study_and_inputs_must_be_eval_folders(two_codecs_two_models: list[Path],
                                                                    tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a vidvpr study"):
        run_study(two_codecs_two_models, busy, StudyConfig())
    (busy / "study.json").write_text('{"schema": "vidvpr.demo-study/1"}')  # `vidvpr demo study` writes one too
    with pytest.raises(OutputError, match="not a vidvpr study"):
        run_study(two_codecs_two_models, busy, StudyConfig())
    assert (busy / "notes.txt").read_text() == "mine"
    with pytest.raises(BadInput, match="no results.json"):
        run_study([tmp_path / "busy"], tmp_path / "s", StudyConfig())
    with pytest.raises(BadInput, match="holds the eval folder"):
        run_study(two_codecs_two_models, tmp_path, StudyConfig())
    run_study(two_codecs_two_models, tmp_path / "s", StudyConfig())
    run_study(two_codecs_two_models, tmp_path / "s", StudyConfig(recall_at=(5,)))  # a study folder is replaced whole
    assert not (tmp_path / "s" / "recall1_vs_kbps.png").exists() and (tmp_path / "s" / "recall5_vs_kbps.png").exists()


def test_out_that_is_a_file_is_exit_4_as_in_eval(two_codecs_two_models: list[Path], tmp_path: Path) -> None:
    # issue 15: study exited 2 where eval exits 4 for the same output problem
    (tmp_path / "taken").write_text("a file")
    result = CliRunner().invoke(main, ["study", *map(str, two_codecs_two_models), "--out", str(tmp_path / "taken")])
    assert result.exit_code == 4 and result.stderr == f"vidvpr: error: --out {tmp_path / 'taken'}: is a file, not a folder\n"
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--out", str(tmp_path / "taken")])
    assert result.exit_code in (2, 4)  # eval: the manifest is checked first


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder nothing can be made in")
def test_out_where_no_folder_can_be_made_is_exit_4(two_codecs_two_models: list[Path]) -> None:
    # review-b: `vidvpr study EVAL --out /proc/x` was exit 1, "internal error: FileNotFoundError" on its .partial folder
    result = CliRunner().invoke(main, ["study", *map(str, two_codecs_two_models), "--out", "/proc/vidvpr-study"])
    assert result.exit_code == 4 and result.stderr.startswith("vidvpr: error: /proc/vidvpr-study: cannot create")
    assert result.stderr.count("\n") == 1


def test_cli_prints_the_headlines_and_json(two_codecs_two_models: list[Path], tmp_path: Path) -> None:
    args = ["study", *map(str, two_codecs_two_models), "--out", str(tmp_path / "s"), "--budget-kbps", "500"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "student needs 50.0% fewer bits than teacher for the same recall@1" in result.output
    assert "best under 500 kbps for teacher: libx265/64x32/qp40" in result.output
    result = CliRunner().invoke(main, [*args, "--json", "--interpolation", "cubic"])
    payload = json.loads(result.stdout)
    assert payload["method"]["interpolation"] == "cubic" and payload["study"].endswith("study.json")
