"""Specification of sequences and the VPR-Bench measures in `vidvpr eval`: rows per sequence length,
predictions anyone can recompute from the distance matrix, precision-recall from the predictions,
extraction cost per model, bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.test_eval import dataset, read_csv  # noqa: F401  (a module fixture)
from tests.test_manifest import sliced_views  # noqa: F401  (a session fixture)
from tests.test_sequence_maths import brute_force
from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.dataset.manifest import load_manifest
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.evaluate.grid import EvalConfig, evaluate_grid
from vidvpr.evaluate.precision import precision_recall
from vidvpr.evaluate.recall import first_positive_rank
from vidvpr.evaluate.sequence import SequenceSettings, squared_distances
from vidvpr.evaluate.sequence_eval import check_time_order, fitting_lengths, runs_of

LENGTHS = (1, 3, 5)


@pytest.fixture(scope="module")
def sequences(dataset, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    manifest, enc = dataset
    out = tmp_path_factory.mktemp("eval-seq")
    config = EvalConfig(enc_dir=enc, cells=("reference", "64x36/qp40"), batch_size=8, seq_lens=LENGTHS,
                        seq_velocity=(1.0, 1.5), seq_reverse=True)
    return out, evaluate_grid(manifest, out, config)


def test_results_have_a_row_per_cell_and_sequence_length(sequences) -> None:
    out, _ = sequences
    rows = read_csv(out / "results.csv")
    assert [(row["cell"], row["seq_len"]) for row in rows] == [
        (cell, str(length)) for cell in ("reference", "64x36/qp40") for length in LENGTHS]
    assert {"auc_pr", "recall@100p"} <= set(rows[0])
    record = json.loads((out / "results.json").read_text())
    assert record["sequences"]["lengths"] == list(LENGTHS) and record["sequences"]["reverse"] is True
    assert record["sequences"]["velocity"] == [1.0, 1.5] and record["sequences"]["search"] == "full"


def test_sequence_predictions_are_the_brute_force_lines_through_the_distance_matrix(sequences, dataset) -> None:  # noqa: F811
    out, result = sequences
    manifest = load_manifest(dataset[0])
    record = json.loads((out / "results.json").read_text())
    cache = DescriptorCache(out / "descriptors")
    fingerprint = record["models"][0]["cache_key"]  # the descriptors of the backend that ran

    def descriptors(rows):
        values = np.empty((len(rows), record["models"][0]["descriptor_dim"]), np.float32)
        for (rec, view), members in {key: [i for i, r in enumerate(rows) if (r.recording, r.view) == key]
                                     for key in dict.fromkeys((r.recording, r.view) for r in rows)}.items():
            frames = sorted({rows[i].frame for i in members})
            stored = cache.open(fingerprint, manifest.meta.view_input(rec, view).video.hash, frames, None)
            values[members] = stored[[frames.index(rows[i].frame) for i in members]]
        return values

    distances = squared_distances(descriptors(manifest.queries), descriptors(manifest.database))
    row = next(r for r in result.rows if r.cell == "reference" and r.seq_len == 3)
    scores, velocities = brute_force(distances, runs_of(manifest.queries), runs_of(manifest.database),
                                     SequenceSettings(3, (1.0, 1.5), reverse=True))
    written = read_csv(out / row.predictions)
    assert list(written[0]) == ["query_id", "rank", "database_id", "distance", "frames", "velocity"]
    ids = [r.id for r in manifest.database]
    for q, query in enumerate(manifest.queries):
        mine = [w for w in written if w["query_id"] == query.id]
        finite = np.flatnonzero(np.isfinite(scores[q]))
        order = finite[np.lexsort((finite, scores[q, finite]))][:20]
        assert [w["database_id"] for w in mine] == [ids[j] for j in order]
        # atol: a distance near 0 is a difference of squared lengths near 1, good to float32's 1e-7 there
        np.testing.assert_allclose([float(w["distance"]) for w in mine], scores[q, order], rtol=1e-4, atol=1e-6)
        assert [float(w["velocity"]) for w in mine] == pytest.approx(velocities[q, order].tolist())
        run = next(r for r in runs_of(manifest.queries) if q in r)
        assert {int(w["frames"]) for w in mine} == {min(3, int(np.flatnonzero(run == q)[0]) + 1)}


def test_the_restricted_search_writes_exact_line_scores_no_better_than_the_full_search(sequences, dataset,  # noqa: F811
                                                                                       tmp_path) -> None:
    out, full = sequences
    config = EvalConfig(enc_dir=dataset[1], cells=("reference",), batch_size=8, seq_lens=(1, 3),
                        seq_velocity=(1.0, 1.5), seq_reverse=True, seq_search="restricted",
                        cache_dir=out / "descriptors")
    result = evaluate_grid(dataset[0], tmp_path / "restricted", config)
    assert json.loads((tmp_path / "restricted" / "results.json").read_text())["sequences"]["search"] == "restricted"
    exact, restricted = (next(r for r in rows if r.cell == "reference" and r.seq_len == 3)
                         for rows in (full.rows, result.rows))
    best = {}
    for w in read_csv(out / exact.predictions):
        best.setdefault(w["query_id"], {})[w["database_id"]] = float(w["distance"])
    written = read_csv(tmp_path / "restricted" / restricted.predictions)
    assert written
    for w in written:  # the full search ranks its 20 best ends; an end the restricted one finds among them scores alike
        mine = best[w["query_id"]]
        assert float(w["distance"]) >= min(mine.values()) - 1e-4
        if w["database_id"] in mine:
            assert float(w["distance"]) == pytest.approx(mine[w["database_id"]], rel=1e-4, abs=1e-4)


def test_recall_and_the_vpr_bench_measures_can_be_recomputed_from_sequence_predictions(sequences, dataset) -> None:  # noqa: F811
    out, result = sequences
    manifest = load_manifest(dataset[0])
    ids = {r.id: i for i, r in enumerate(manifest.database)}
    for row in (r for r in result.rows if r.seq_len == 5):
        ranked = np.full((len(manifest.queries), 20), -1)
        best = np.full(len(manifest.queries), np.inf)
        for entry in read_csv(out / row.predictions):
            q = next(i for i, query in enumerate(manifest.queries) if query.id == entry["query_id"])
            ranked[q, int(entry["rank"]) - 1] = ids[entry["database_id"]]
            if entry["rank"] == "1":
                best[q] = float(entry["distance"])
        ranks = first_positive_rank(ranked, manifest.positives)
        counted = ranks >= 0
        assert row.recall[1] == pytest.approx(np.mean(ranks[counted] == 1), abs=1e-6)
        curve = precision_recall(best[counted], ranks[counted] == 1)
        assert row.auc_pr == pytest.approx(curve.auc, abs=1e-5)
        assert row.recall_at_100_precision == pytest.approx(curve.recall_at_full_precision, abs=1e-6)
        assert row.precision_recall.recall[-1] == pytest.approx(row.recall[1], abs=1e-6)


def test_the_plot_of_recall_against_sequence_length_is_written(sequences) -> None:
    out, result = sequences
    assert {"recall_vs_seq_len.png", "precision_recall.png"} <= {p.name for p in result.plots}
    assert (out / "recall_vs_seq_len.png").stat().st_size > 10_000


def test_an_evaluation_without_sequences_leaves_no_plot_of_an_earlier_one_with_them(sequences, dataset,  # noqa: F811
                                                                                   tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "e"
    shutil.copytree(sequences[0], out, ignore=shutil.ignore_patterns("descriptors"))
    assert (out / "recall_vs_seq_len.png").is_file()
    result = evaluate_grid(dataset[0], out, EvalConfig(enc_dir=dataset[1], cells=("reference", "64x36/qp40"),
                                                       batch_size=8, cache_dir=sequences[0] / "descriptors"))
    assert {row.seq_len for row in result.rows} == {1} and result.forward_images == 0
    assert not (out / "recall_vs_seq_len.png").exists()  # it drew lines for L = 3 and 5 beside these results
    assert (out / "precision_recall.png").is_file()


def test_each_model_records_its_extraction_time_per_image_and_descriptor_bytes(sequences) -> None:
    out, _ = sequences
    record = json.loads((out / "results.json").read_text())
    (cost,) = record["extraction"]
    assert cost["model"] == "netvlad-efficientnet-lite0" and cost["descriptor_bytes"] == 4 * cost["descriptor_dim"]
    assert cost["ms_per_image"] > 0 and cost["images"] > 0


def test_a_length_longer_than_every_recording_is_named_and_the_others_evaluated(dataset, sequences, tmp_path,  # noqa: F811
                                                                                caplog) -> None:
    manifest, enc = dataset
    result = evaluate_grid(manifest, tmp_path / "e", EvalConfig(cells=("reference",), batch_size=8, seq_lens=(3, 400),
                                                                cache_dir=sequences[0] / "descriptors"))
    assert sorted({row.seq_len for row in result.rows}) == [1, 3]
    assert "--seq-len 400: longer than every query recording" in caplog.text
    record = json.loads((tmp_path / "e" / "results.json").read_text())
    assert record["sequences"]["notes"][0].startswith("--seq-len 400")


def test_a_length_whose_slowest_line_is_longer_than_every_database_recording_is_named_and_left_out(
        dataset) -> None:  # noqa: F811
    manifest = load_manifest(dataset[0])  # database recordings of 12 frames
    lengths, notes = fitting_lengths((3, 5), manifest, (3.0, 3.0))  # 5 frames at 3: 12 frames back
    assert lengths == [1, 3]
    assert notes == ["--seq-len 5: at the slowest --seq-velocity, 3, a line of 5 frames spans more than the longest "
                     "database recording (dbwalk/yaw000_pitch+00, 12 frames); evaluated 1,3"]
    # `--seq-velocity 1e308` failed with an OverflowError (exit 1)
    assert fitting_lengths((5,), manifest, (1e308, 1e308))[0] == [1]


def test_a_velocity_no_database_recording_holds_a_line_of_two_frames_at_is_refused(dataset) -> None:  # noqa: F811
    # `--seq-velocity 0.8..1e4` drew 10^5 lines that never fit (line_shapes alone ran for minutes)
    with pytest.raises(BadInput, match=r"^--seq-velocity 0\.8\.\.20: at 20 database frames per query frame even a "
                                       r"line of 2 frames spans more than the longest database recording "
                                       r"\(dbwalk/yaw000_pitch\+00, 12 frames\); give speeds below 11\.5$"):
        fitting_lengths((5,), load_manifest(dataset[0]), (0.8, 20.0))
    assert fitting_lengths((5,), load_manifest(dataset[0]), (0.8, 11.4))[0] == [1, 5]


def test_the_json_summary_says_how_sequences_were_matched_and_which_lengths_were_left_out_also_on_a_rerun(
        dataset, sequences, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    # --json had the rows only: a script could not tell that --seq-len 400 was left out, nor why;
    # a rerun that skipped said nothing of it at all
    command = ["eval", str(dataset[0]), "--out", str(tmp_path / "e"), "--cells", "reference", "--batch-size", "8",
               "--cache", str(sequences[0] / "descriptors"), "--seq-len", "3,400", "--quiet", "--json"]
    for skipped in (False, True):
        caplog.clear()
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["skipped"] is skipped and summary["sequences"]["lengths"] == [1, 3]
        assert summary["sequences"]["notes"][0].startswith("--seq-len 400: longer than every query recording")
        assert "--seq-len 400: longer than every query recording" in caplog.text


def test_frames_out_of_time_order_are_refused_naming_the_recording(dataset) -> None:  # noqa: F811
    manifest = load_manifest(dataset[0])
    shuffled = replace(manifest, queries=[replace(row, time_s=-row.time_s) for row in manifest.queries])
    with pytest.raises(BadInput, match="recording qwalk .* not after frame"):
        check_time_order(shuffled)


@pytest.mark.parametrize("option, message", [
    (["--seq-len", "0"], "--seq-len takes positive whole numbers"),
    (["--seq-len", "2.5"], "--seq-len takes a comma-separated list of whole numbers"),
    (["--seq-len", "5", "--seq-velocity", "1.3..1.2"], "is empty"),
    (["--seq-len", "5", "--seq-velocity", "0..1"], "must be positive"),
    (["--seq-len", "5", "--seq-velocity", "fast"], "--seq-velocity takes LOW..HIGH"),
    (["--seq-len", "5,,10"], "--seq-len has an empty item in '5,,10'"),
    (["--seq-len", "5,10,"], "--seq-len has an empty item"),
    (["--seq-len", "5", "--recall-at", "1,,5"], "--recall-at has an empty item"),
    (["--seq-len", "5", "--seq-velocity", "0.8..1e4"], "even a line of 2 frames spans more than the longest"),
    (["--seq-len", "5", "--seq-velocity", "1..inf"], "must be positive, finite frames per frame"),
])
def test_bad_sequence_options_are_one_line_and_exit_2(dataset, tmp_path: Path, option, message) -> None:  # noqa: F811
    manifest, _ = dataset
    result = CliRunner().invoke(main, ["eval", str(manifest), "--out", str(tmp_path / "e"), *option])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()


def test_images_of_a_vpr_folder_are_in_name_order_not_time_order_and_are_refused(dataset, tmp_path) -> None:  # noqa: F811
    from vidvpr.dataset.definition import load_definition
    from vidvpr.dataset.export import ExportConfig, export_vpr
    from vidvpr.dataset.manifest import build_manifest
    from vidvpr.ingest.config import ImportConfig
    from vidvpr.ingest.stage import import_footage

    export_vpr(dataset[0], tmp_path / "export", ExportConfig())
    summary = import_footage([tmp_path / "export"], tmp_path / "again" / "views", ImportConfig(hfov_deg=90.0))
    build_manifest(load_definition(summary.definition), tmp_path / "again" / "manifest")
    with pytest.raises(BadInput, match=r"recording \S+-database \(database\) is images of a VPR-datasets-downloader"):
        check_time_order(load_manifest(tmp_path / "again" / "manifest"))
    check_time_order(load_manifest(dataset[0]))  # sliced views are in time order


@pytest.mark.slow
@pytest.mark.shared_data
def test_sequences_of_real_nordland_frames_more_than_double_single_frame_recall(shared_data: Path, tmp_path) -> None:
    """Winter against summer (the first 400 frames of each): the classic case for sequence matching."""
    import shutil

    from tests.test_import_datasets import all_frames_manifest
    from vidvpr.ingest import ImportConfig, IndexPositions, import_footage

    nordland = shared_data / "nordland-half1"
    if not (nordland / "summer").is_dir():
        pytest.skip(f"Nordland frames not found at {nordland}")
    root = tmp_path / "nordland"
    for season in ("summer", "winter"):
        shutil.copytree(nordland / season, tmp_path / season, ignore=lambda _, names: sorted(names)[400:])
        import_footage([tmp_path / season], root / "views", ImportConfig(hfov_deg=60.0, positions=IndexPositions()))
    all_frames_manifest(root, "summer", "winter", 1.0, root / "manifest")
    result = evaluate_grid(root / "manifest", tmp_path / "eval", EvalConfig(seq_lens=(1, 10), seq_velocity=(1.0, 1.0),
                                                                            seq_normalise=True))
    recall = {row.seq_len: row.recall[1] for row in result.rows}
    assert recall[10] > 0.6 and recall[10] > 2 * recall[1], recall  # measured: 0.318 and 0.705


def test_an_evaluation_of_the_reference_alone_leaves_no_recall_plot_of_an_earlier_one(sequences, dataset,  # noqa: F811
                                                                                      tmp_path: Path) -> None:
    """recall_vs_qp.png and recall_vs_kbps.png of encoded cells no longer evaluated contradicted the
    results beside them, as recall_vs_seq_len.png did."""
    import shutil

    out = tmp_path / "e"
    shutil.copytree(sequences[0], out, ignore=shutil.ignore_patterns("descriptors"))
    assert (out / "recall_vs_qp.png").is_file() and (out / "recall_vs_kbps.png").is_file()
    evaluate_grid(dataset[0], out, EvalConfig(enc_dir=dataset[1], cells=("reference",), batch_size=8,
                                              cache_dir=sequences[0] / "descriptors"))
    assert not (out / "recall_vs_qp.png").exists() and not (out / "recall_vs_kbps.png").exists()
