"""Specification of sequences and the VPR-Bench measures in `vidvpr study` and `vidvpr report`: the
sequence length each QP needs, the bits sequences save, each model's descriptor cost (synthetic
eval folders with known answers)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_study import RATES, RECALLS, curve_rows, write_eval
from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.evaluate.results import EvalResults, EvalRow, ExtractionRecord, SequencesRecord
from vidvpr.report.build import ReportConfig, build_report
from vidvpr.study.stage import StudyConfig, run_study

# recall@1 per cell (QP 50 .. 30, rates 100 .. 1600 kbps) and sequence length; the reference views
# recall 0.9 over single frames. Sequences of 10 frames recall what single frames recall at twice
# the rate (one cell up): they save half the bits.
BY_LENGTH = {1: RECALLS, 5: [0.40, 0.60, 0.80, 0.88, 0.91], 10: [0.45, 0.60, 0.72, 0.80, 0.86]}


def with_sequences(rows: list[EvalRow]) -> list[EvalRow]:
    out = []
    for length, recalls in BY_LENGTH.items():
        for row, recall in zip(rows, recalls):
            out.append(row.model_copy(update={"seq_len": length, "recall": {1: recall, 5: min(1.0, recall + 0.1)},
                                              "auc_pr": round(recall * 0.9, 3), "recall_at_100_precision": 0.1}))
    return out


@pytest.fixture
def eval_folder(tmp_path: Path) -> Path:
    folder = write_eval(tmp_path / "eval", with_sequences(curve_rows("teacher", "libx264", RATES, RECALLS)))
    record = EvalResults.load(folder / "results.json")
    reference = next(row for row in record.rows if row.cell == "reference")
    rows = [row for row in record.rows if row.cell != "reference"]
    record = record.model_copy(update={
        "rows": [reference, reference.model_copy(update={"seq_len": 10, "recall": {1: 0.97, 5: 0.99}}), *rows],
        "extraction": [ExtractionRecord(model="teacher", descriptor_dim=7168, descriptor_bytes=28672,
                                        ms_per_image=41.5, images=300)]})
    record.save(folder / "results.json")
    return folder


def test_the_study_names_the_sequence_length_each_qp_needs_to_regain_the_uncompressed_recall(eval_folder: Path,
                                                                                              tmp_path: Path) -> None:
    study = run_study([eval_folder], tmp_path / "study", StudyConfig()).record
    needs = {need.qp: need for need in study.sequences}
    assert sorted(needs) == [30, 35, 40, 45, 50] and {need.target for need in needs.values()} == {0.9}
    assert needs[30].needed == 5 and needs[30].recall == {1: 0.80, 5: 0.91, 10: 0.86}
    assert needs[50].needed is None and needs[50].reason == "not within L_max = 10"
    # the study's single-frame curves are unchanged by the sequence rows
    (curve,) = [c for c in study.curves if c.resolution != "any"]
    assert [p.recall[1] for p in curve.points] == RECALLS and study.reference["teacher"] == {1: 0.9, 5: 1.0}


def test_sequences_of_ten_frames_save_half_the_bits_of_single_frames(eval_folder: Path, tmp_path: Path) -> None:
    study = run_study([eval_folder], tmp_path / "study", StudyConfig()).record
    ten = next(c for c in study.comparisons if c.kind == "sequence" and c.test == "L=10")
    assert ten.anchor == "L=1" and ten.bd_rate_pct.value == pytest.approx(-50, abs=4)
    assert ten.headline.startswith("sequences of 10 frames save")
    assert ten.bd_recall.value > 0


def test_study_csv_and_json_carry_the_sequences_and_each_models_cost(eval_folder: Path, tmp_path: Path) -> None:
    result = run_study([eval_folder], tmp_path / "study", StudyConfig())
    with open(result.csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    sequence = [row for row in rows if row["section"] == "sequence" and row["qp"] == "30"]
    assert [(row["seq_len"], row["recall"], row["needed_seq_len"]) for row in sequence] == [
        ("1", "0.8", "5"), ("5", "0.91", "5"), ("10", "0.86", "5")]
    (cost,) = [row for row in rows if row["section"] == "cost"]
    assert (cost["system"], cost["descriptor_bytes"], cost["ms_per_image"]) == ("teacher", "28672", "41.5")
    record = json.loads(result.json_path.read_text())
    assert record["costs"][0]["ms_per_image"] == 41.5
    assert "sequences_recall1.png" in record["outputs"]


def test_the_cli_says_how_long_a_sequence_each_qp_needs(eval_folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["study", str(eval_folder), "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert ("sequence length to regain the uncompressed recall@1 (0.900) for teacher, libx264 64x32: "
            "QP 30 L = 5, QP 35 not within L_max = 10, QP 40 not within L_max = 10") in result.stdout
    assert "sequences of 10 frames save" in result.stdout


def test_the_report_answers_how_long_a_sequence_at_this_qp(eval_folder: Path, tmp_path: Path) -> None:
    run_study([eval_folder], tmp_path / "study", StudyConfig())
    build_report(tmp_path / "r.html", ReportConfig(study_dir=tmp_path / "study"))
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = text.split('<section id="sequences">')[1].split("</section>")[0]
    assert "sequences of 10 frames save" in section and "not within L_max = 10" in section
    assert section.count("<img") == 1
    bench = text.split('<section id="vpr-bench">')[1].split("</section>")[0]
    assert "28672" in bench and "41.50" in bench and "AUC-PR" in bench


@pytest.mark.parametrize(("edit", "message"), [
    # the report's precision-recall plot failed with "x and y must have same first dimension" (exit 1)
    (lambda data: data["rows"][1].update(precision_recall={"distance": [0.1, 0.2], "precision": [1.0, 0.5],
                                                           "recall": [0.1]}),
     r"rows\.1\.precision_recall: distance, precision and recall must be as long, found 2, 2 and 1 points"),
    (lambda data: data["extraction"][0].update(ms_per_image=-3), r"extraction\.0\.ms_per_image: Input should be greater"),
], ids=["precision-recall-of-unequal-lengths", "negative-extraction-time"])
def test_a_results_json_with_bad_vpr_bench_measures_is_refused_in_one_line(eval_folder: Path, tmp_path: Path,
                                                                             edit, message: str) -> None:
    data = json.loads((eval_folder / "results.json").read_text())
    edit(data)
    (eval_folder / "results.json").write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["study", str(eval_folder), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert re.search(message, result.output) and not (tmp_path / "s").exists()
    result = CliRunner().invoke(main, ["report", "--eval", str(eval_folder), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert re.search(message, result.output) and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("edit", "message"), [
    # each of these made `vidvpr report` fail with a KeyError (exit 1)
    (lambda need: need.update(needed=7), r"sequences\.0: needed length 7 is not among the evaluated lengths \[1, 5, 10\]"),
    (lambda need: need.update(recall={}, auc_pr={}, needed=None), r"sequences\.0\.recall: Dictionary should have at least 1"),
    # and these were drawn and tabled as they were
    (lambda need: need["recall"].update({"5": 7}), r"sequences\.0\.recall\.5: Input should be less than or equal to 1"),
    (lambda need: need["recall"].update({"0": 0.5}), r"sequences\.0\.recall\.0\.\[key\]: Input should be greater"),
    # a length no video has, as results.json refuses (seq_len at most MAX_FRAMES)
    (lambda need: need["recall"].update({str(10**30): 0.5}), r"sequences\.0\.recall\.10{30}\.\[key\]: Input should be less"),
], ids=["needed-not-evaluated", "no-lengths", "recall-above-1", "length-0", "length-beyond-any-video"])
def test_a_study_json_with_a_bad_sequence_answer_is_refused_by_the_report_in_one_line(eval_folder: Path,
                                                                                        tmp_path: Path, edit,
                                                                                        message: str) -> None:
    run_study([eval_folder], tmp_path / "study", StudyConfig())
    data = json.loads((tmp_path / "study" / "study.json").read_text())
    edit(data["sequences"][0])
    (tmp_path / "study" / "study.json").write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["report", str(tmp_path / "study"), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert re.search(message, result.output) and not (tmp_path / "r.html").exists()


def test_a_study_made_twice_from_the_same_eval_folder_draws_byte_identical_plots(eval_folder: Path,
                                                                                 tmp_path: Path) -> None:
    # the SVGs' clip-path ids were random: every rerun of `vidvpr study` rewrote them differently
    first = run_study([eval_folder], tmp_path / "a", StudyConfig())
    second = run_study([eval_folder], tmp_path / "b", StudyConfig())
    drawn = sorted(p.name for p in (tmp_path / "a").iterdir() if p.suffix in (".png", ".svg"))
    assert "sequences_recall1.svg" in drawn and first.csv_path.read_bytes() == second.csv_path.read_bytes()
    for name in drawn:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_the_help_of_study_and_report_says_they_answer_how_long_a_sequence_each_qp_needs() -> None:
    study = CliRunner().invoke(main, ["study", "--help"]).output
    report = CliRunner().invoke(main, ["report", "--help"]).output
    assert "sequence length each QP needs" in " ".join(study.split()) and "--seq-len" in study
    assert "how long a sequence each QP needs" in " ".join(report.split()) and "VPR-Bench" in report


def test_sequences_matched_differently_in_two_folders_are_refused_naming_both(eval_folder: Path,
                                                                              tmp_path: Path) -> None:
    # the study kept the first folder's sequences and dropped the other's without a word
    def matched(folder: Path, normalise: bool) -> Path:
        record = EvalResults.load(eval_folder / "results.json")
        folder.mkdir(exist_ok=True)
        record.model_copy(update={"sequences": SequencesRecord(
            lengths=[1, 5, 10], velocity=[0.8, 1.25], reverse=False, normalise=normalise, normalise_window=10,
            search="full", notes=[])}).save(folder / "results.json")
        return folder

    raw = matched(eval_folder, False)
    normalised = matched(tmp_path / "normalised", True)
    with pytest.raises(BadInput, match=r"normalised/results.json: sequences of 10 frames \(teacher on reference\) "
                                       r"matched with --seq-velocity 0\.8\.\.1\.25 --seq-search full --seq-normalise, "
                                       r"but in .*eval/results.json with --seq-velocity 0\.8\.\.1\.25 --seq-search "
                                       r"full; a study compares sequences matched alike"):
        run_study([raw, normalised], tmp_path / "s", StudyConfig())
    result = CliRunner().invoke(main, ["study", str(raw), str(normalised), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and not (tmp_path / "s").exists()
    again = matched(tmp_path / "again", False)  # matched alike: one study
    assert run_study([raw, again], tmp_path / "s", StudyConfig()).record.sequences
