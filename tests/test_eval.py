"""Specification of `vidvpr eval`: descriptors (cached), search and Recall@N across the grid."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.test_export import encode_cells
from tests.test_manifest import make_dataset, rerecord_outputs, sliced_views  # noqa: F401  (a session fixture)
from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.dataset.definition import load_definition
from vidvpr.dataset.manifest import build_manifest, load_manifest
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.extract import ForwardCounter, describe_video
from vidvpr.evaluate.grid import EvalConfig, evaluate_grid
from vidvpr.models import load_model
from vidvpr.models.model import VPRModel
from vidvpr.slicing.config import SliceConfig, ViewEncoding
from vidvpr.slicing.slicer import slice_video


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, sliced_views: Path) -> tuple[Path, Path]:  # noqa: F811
    """(manifest folder, encode folder) of the tiny two-recording dataset, cells 64x36 at QP 0 and 40."""
    root = tmp_path_factory.mktemp("eval-ds")
    definition = make_dataset(root / "ds", sliced_views, radius=2.5)
    build_manifest(load_definition(definition), root / "ds" / "manifest")
    enc = encode_cells(root / "ds" / "manifest", root / "ds" / "enc")
    encode_cells(root / "ds" / "manifest", enc, qps=(40,))
    return root / "ds" / "manifest", enc


@pytest.fixture(scope="module")
def evaluated(dataset: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    manifest, enc = dataset
    out = tmp_path_factory.mktemp("eval")
    return out, evaluate_grid(manifest, out, EvalConfig(enc_dir=enc, batch_size=8))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_results_have_one_row_per_model_cell_and_threshold_with_the_documented_columns(evaluated) -> None:
    out, result = evaluated
    rows = read_csv(out / "results.csv")
    assert [row["cell"] for row in rows] == ["reference", "64x36/qp00", "64x36/qp40"]
    for column in ("model", "protocol", "cell", "resolution", "width", "height", "qp", "kbps", "psnr_y", "ssim_y",
                   "vmaf", "queries", "threshold_m", "recall@1", "recall@5", "recall@10", "recall@20", "predictions"):
        assert column in rows[0], column
    assert rows[0]["qp"] == "" and rows[0]["kbps"] == "" and rows[1]["qp"] == "0" and float(rows[1]["kbps"]) > 0
    assert {row["protocol"] for row in rows} == {"same"} and {row["threshold_m"] for row in rows} == {"2.5"}
    for row in rows:
        recalls = [float(row[f"recall@{n}"]) for n in (1, 5, 10, 20)]
        assert recalls == sorted(recalls) and 0 <= recalls[0] <= recalls[-1] <= 1


def test_predictions_list_the_top_k_of_every_query_with_manifest_ids(evaluated, dataset) -> None:
    out, result = evaluated
    manifest = load_manifest(dataset[0])
    rows = read_csv(out / result.rows[0].predictions)
    assert list(rows[0]) == ["query_id", "rank", "database_id", "distance"]
    by_query: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_query.setdefault(row["query_id"], []).append(row)
    assert set(by_query) == {q.id for q in manifest.queries}
    database_ids = {d.id for d in manifest.database}
    for ranked in by_query.values():
        assert [int(r["rank"]) for r in ranked] == list(range(1, len(ranked) + 1)) and len(ranked) == 20
        assert all(r["database_id"] in database_ids for r in ranked)
        distances = [float(r["distance"]) for r in ranked]
        assert distances == sorted(distances)


def test_recall_can_be_recomputed_from_the_predictions(evaluated, dataset) -> None:
    out, result = evaluated
    manifest = load_manifest(dataset[0])
    positives = {q.id: {manifest.database[i].id for i in hits} for q, hits in zip(manifest.queries, manifest.positives)}
    for row in result.rows:
        hits = {}
        for entry in read_csv(out / row.predictions):
            if int(entry["rank"]) <= 5 and entry["database_id"] in positives[entry["query_id"]]:
                hits[entry["query_id"]] = True
        counted = [q for q, p in positives.items() if p]
        assert row.recall[5] == pytest.approx(sum(q in hits for q in counted) / len(counted))
        assert row.queries == len(counted) and row.excluded == len(positives) - len(counted)


def test_recall_is_reported_per_view_direction(evaluated) -> None:
    _, result = evaluated
    assert set(result.rows[0].per_view) == {"yaw000_pitch+00", "yaw090_pitch+00"}


def test_plots_of_recall_against_qp_and_bitrate_and_of_precision_against_recall_are_written(evaluated) -> None:
    out, result = evaluated
    assert sorted(p.name for p in result.plots) == ["precision_recall.png", "recall_vs_kbps.png", "recall_vs_qp.png"]
    assert all(p.stat().st_size > 10_000 for p in result.plots)


def test_a_rerun_makes_no_forward_pass_and_gives_identical_results(evaluated, dataset) -> None:
    out, first = evaluated
    manifest, enc = dataset
    again = evaluate_grid(manifest, out, EvalConfig(enc_dir=enc, batch_size=8))
    assert again.forward_images == 0
    assert [row.model_dump() for row in again.rows] == [row.model_dump() for row in first.rows]


def test_the_offline_model_is_initialised_once_and_reused(evaluated) -> None:
    out, _ = evaluated
    checkpoints = sorted((out / "models").glob("*.pt"))
    assert [p.name for p in checkpoints] == ["netvlad-efficientnet-lite0-netvlad-init.pt"]
    sidecar = json.loads(checkpoints[0].with_suffix(".json").read_text())
    assert sidecar["schema"] == "vidvpr.netvlad-init/1" and sidecar["images"] > 0


def resliced_manifest(sliced_views: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The tiny dataset with its views sliced again at another quality: database.csv byte for byte the
    same, every view video different."""
    views = tmp_path / "resliced"
    for name in ("dbwalk", "qwalk"):
        slice_video(sliced_views.parent / f"{name}.mp4", views,
                    SliceConfig(yaws_deg=(0.0, 90.0), size=(64, 36), encoding=ViewEncoding(crf=30)))
    definition = make_dataset(tmp_path / "ds2", views, radius=2.5)
    build_manifest(load_definition(definition), tmp_path / "ds2" / "manifest")
    return tmp_path / "ds2" / "manifest"


def every_other_frame(manifest: Path, tmp_path: Path) -> Path:
    """The manifest's dataset with the database sampled every other frame: other frames, same videos."""
    definition = Path(load_manifest(manifest).meta.definition["file"]["path"])
    other = definition.with_name("every-other.toml")
    other.write_text(definition.read_text().replace('database = "all"', 'database = "2f"'))
    build_manifest(load_definition(other), tmp_path / "manifest-2f")
    return tmp_path / "manifest-2f"


def test_a_second_manifest_into_the_same_out_initialises_netvlad_afresh(dataset, sliced_views: Path,  # noqa: F811
                                                                        tmp_path: Path) -> None:
    # issue 15.4: the initialisation was keyed by database.csv's hash, not by the videos it read
    second = resliced_manifest(sliced_views, tmp_path)
    assert (second / "database.csv").read_bytes() == (dataset[0] / "database.csv").read_bytes()
    out, config = tmp_path / "eval", EvalConfig(cells=("reference",), batch_size=8)
    init = out / "models" / "netvlad-efficientnet-lite0-netvlad-init.pt"
    evaluate_grid(dataset[0], out, config)
    first = json.loads(init.with_suffix(".json").read_text())
    evaluate_grid(second, out, config)
    again = json.loads(init.with_suffix(".json").read_text())
    assert again["images_source"] != first["images_source"] and again["checkpoint"] != first["checkpoint"]


def test_a_second_manifest_into_the_same_out_is_whitened_afresh(dataset, tmp_path: Path) -> None:
    # issue 15.4: the PCA file was keyed by model and size only: a second manifest reused the first one's fit
    out, second = tmp_path / "eval", every_other_frame(dataset[0], tmp_path)
    evaluate_grid(dataset[0], tmp_path / "init", EvalConfig(cells=("reference",), batch_size=8))
    weights = tmp_path / "init" / "models" / "netvlad-efficientnet-lite0-netvlad-init.pt"  # fixed weights
    config = EvalConfig(models=(f"netvlad-efficientnet-lite0:{weights}",), cells=("reference",), recall_at=(1, 5),
                        pca_dim=8, batch_size=8)
    evaluate_grid(dataset[0], out, config)
    evaluate_grid(second, out, config)
    means = {torch.load(path, weights_only=True)["state_dict"]["whiten.mean"].numpy().tobytes()
             for path in (out / "models").glob("*pca8*.pt")}
    assert len(means) == 2  # one fit per database
    assert evaluate_grid(second, out, config).forward_images == 0  # and each is reused


def test_a_changed_model_or_video_is_never_served_from_the_cache(dataset, tmp_path: Path) -> None:
    manifest = load_manifest(dataset[0])
    row = manifest.database[0]
    video = manifest.video_path(row)
    cache = DescriptorCache(tmp_path / "cache")
    model = load_model("netvlad-efficientnet-lite0", num_clusters=4)
    counter = ForwardCounter()
    first = describe_video(model, video, [0, 3], cache, counter=counter)
    assert counter.images == 2 and describe_video(model, video, [0, 3], cache, counter=counter).tolist() == first.tolist()
    assert counter.images == 2  # served from the cache
    other = load_model("netvlad-efficientnet-lite0", num_clusters=8)
    describe_video(other, video, [0, 3], cache, counter=counter)
    assert counter.images == 4  # another model: computed
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(video, copy)
    with open(copy, "ab") as handle:
        handle.write(b"\0" * 16)  # other bytes: another content hash
    describe_video(model, copy, [0, 3], cache, counter=counter)
    assert counter.images == 6


def test_the_reference_protocol_searches_compressed_queries_in_the_clean_map(dataset, tmp_path: Path) -> None:
    manifest, enc = dataset
    result = evaluate_grid(manifest, tmp_path, EvalConfig(enc_dir=enc, protocol="reference", cells=("64x36/qp40",),
                                                          batch_size=8))
    assert [row.cell for row in result.rows] == ["64x36/qp40"] and result.rows[0].protocol == "reference"
    assert "reference" in result.rows[0].predictions


def test_smaller_thresholds_count_fewer_positives(dataset, tmp_path: Path) -> None:
    result = evaluate_grid(dataset[0], tmp_path, EvalConfig(thresholds_m=(2.0, 2.5), batch_size=8))
    by_threshold = {row.threshold_m: row for row in result.rows}
    assert by_threshold[2.0].queries < by_threshold[2.5].queries


def test_queries_without_positives_are_excluded_or_counted_as_misses_as_asked(dataset, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    runs = {unmatched: evaluate_grid(dataset[0], tmp_path / unmatched, EvalConfig(
        thresholds_m=(2.0,), batch_size=8, cache_dir=cache, unmatched_queries=unmatched)).rows[0]
        for unmatched in ("exclude", "miss")}
    excluded, missed = runs["exclude"], runs["miss"]
    assert excluded.excluded > 0 and missed.excluded == 0  # at 2 m some queries have no positive
    assert missed.queries == excluded.queries + excluded.excluded
    for n, value in excluded.recall.items():
        assert missed.recall[n] == pytest.approx(value * excluded.queries / missed.queries, abs=1e-6)
    for unmatched in runs:
        rows = read_csv(tmp_path / unmatched / "results.csv")
        assert {row["unmatched_queries"] for row in rows} == {unmatched}
        assert json.loads((tmp_path / unmatched / "results.json").read_text())["unmatched_queries"] == unmatched


def test_no_positive_at_a_threshold_is_one_line_bad_input(dataset, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no query has a positive within 0.01 m"):
        evaluate_grid(dataset[0], tmp_path / "out", EvalConfig(thresholds_m=(0.01,)))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("config", "message"), [
    (EvalConfig(models=("resnet",)), "Unknown model 'resnet'"),
    (EvalConfig(models=("netvlad-vgg16",)), "netvlad-vgg16 needs weights"),
    (EvalConfig(thresholds_m=(30.0,)), "exceeds the manifest's positive radius"),
    (EvalConfig(protocol="mixed"), "Unknown --database 'mixed'"),
    (EvalConfig(unmatched_queries="drop"), "--unmatched-queries: Unknown convention"),
    (EvalConfig(cells=("64x36/qp07",)), "--cells names encoded cells"),
    (EvalConfig(device="cuda"), "no CUDA GPU"),
])
def test_bad_options_are_one_line_errors_and_write_nothing(dataset, tmp_path: Path, config, message) -> None:
    with pytest.raises(BadInput, match=message):
        evaluate_grid(dataset[0], tmp_path / "out", config)
    assert not (tmp_path / "out").exists()


def test_two_checkpoints_of_one_file_name_are_told_apart_from_a_model_given_twice(dataset, tmp_path: Path) -> None:
    # two students saved as RUN1/student.pt and RUN2/student.pt were refused as "the same model is given twice"
    for run in ("run1", "run2"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "student.pt").write_bytes(run.encode())  # refused before any checkpoint is read
    first, second = (f"netvlad-efficientnet-lite0:{tmp_path / run / 'student.pt'}" for run in ("run1", "run2"))
    with pytest.raises(BadInput, match=rf"^--model {first} and --model {second}: results would name both "
                                       r"'netvlad-efficientnet-lite0:student' \(a model is named by its checkpoint's "
                                       r"file name\); give one checkpoint another file name$"):
        evaluate_grid(dataset[0], tmp_path / "out", EvalConfig(models=(first, second)))
    with pytest.raises(BadInput, match=rf"^--model {first}: given twice$"):
        evaluate_grid(dataset[0], tmp_path / "out", EvalConfig(models=(first, first)))
    with pytest.raises(BadInput, match=r"^--model netvlad-efficientnet-lite0: given twice$"):
        evaluate_grid(dataset[0], tmp_path / "out", EvalConfig(models=("netvlad-efficientnet-lite0",) * 2))
    assert not (tmp_path / "out").exists()


@pytest.fixture
def no_forward_pass(monkeypatch):
    """Fails the test at the first image put through any model."""
    def refuse(self, x):
        pytest.fail("an image went through the model before the options were checked")
    monkeypatch.setattr(VPRModel, "features", refuse)


@pytest.mark.parametrize(("config", "message"), [
    # issue 15.12: refused only after every database descriptor was computed
    (EvalConfig(index="IVF4096,Flat"), r"'IVF4096,Flat' needs at least 4,096 training vectors .* the database has 24"),
    (EvalConfig(index="IVF16,PQ8"), r"'IVF16,PQ8' needs at least 256 training vectors"),
    (EvalConfig(pca_dim=2000), r"--pca-dim 2000: PCA-whitening to 2000 dimensions needs more than 2000 descriptors, "
                               r"got 24 \(fitted on the manifest's 24 database frames"),
    (EvalConfig(pca_dim=100_000), r"--pca-dim 100000: PCA-whitening dimension must be between 1 and the descriptor"),
    # issue 15.11: ran, reported recall@100000 = 1.0 and wrote every ranking to the depth of the database
    (EvalConfig(recall_at=(1, 100_000)), r"--recall-at 100000: the manifest's database has 24 frames, so recall@N is "
                                         r"defined for N up to 24"),
])
def test_what_the_database_size_rules_out_is_refused_before_any_forward_pass(dataset, tmp_path: Path, no_forward_pass,
                                                                             config, message) -> None:
    assert len(load_manifest(dataset[0]).database) == 24
    with pytest.raises(BadInput, match=message):
        evaluate_grid(dataset[0], tmp_path / "out", config)
    assert not (tmp_path / "out").exists()


def test_default_ns_beyond_a_small_database_are_left_out_with_a_warning(dataset, tmp_path: Path, caplog) -> None:
    small = every_other_frame(dataset[0], tmp_path)  # 12 database frames
    with caplog.at_level(logging.WARNING, logger="vidvpr"):
        result = evaluate_grid(small, tmp_path / "eval", EvalConfig(cells=("reference",), batch_size=8))
    assert sorted(result.rows[0].recall) == [1, 5, 10]
    assert "recall@20 left out: the manifest's database has only 12 frames" in caplog.text


def test_an_empty_cell_list_is_refused_and_keeps_the_previous_results(dataset, tmp_path: Path) -> None:
    # issue 15.9: `--cells ""` exited 0 and replaced the previous results with an empty table
    manifest, enc = dataset
    out = tmp_path / "eval"
    evaluate_grid(manifest, out, EvalConfig(enc_dir=enc, cells=("reference",), batch_size=8))
    before = (out / "results.csv").read_bytes()
    result = CliRunner().invoke(main, ["eval", str(manifest), "--enc", str(enc), "--out", str(out), "--cells", ""])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("vidvpr: error: --cells: give at least one cell")
    assert (out / "results.csv").read_bytes() == before


@pytest.mark.parametrize("cells", [",", "reference,,", "reference,,80x32/qp25", ",reference"])
def test_an_empty_item_in_the_cell_list_is_refused_like_in_the_number_lists(dataset, tmp_path: Path,
                                                                            cells: str) -> None:
    # `--cells reference,,` evaluated the reference alone with exit 0 while `--recall-at 5,,10` was refused:
    # a doubled comma is a typo (a cell name lost?), not a choice
    manifest, enc = dataset
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["eval", str(manifest), "--enc", str(enc), "--out", str(out), "--cells", cells])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1
    assert f"--cells has an empty item in {cells!r}" in result.stderr
    assert not out.exists()


def test_an_output_folder_that_cannot_be_written_is_exit_4_naming_it(dataset, tmp_path: Path, monkeypatch) -> None:
    # issue 15.6: EVAL/predictions not writable was "internal error: PermissionError", exit 1
    out = tmp_path / "eval"
    out.mkdir()
    (out / "predictions").write_text("a file where the predictions folder goes")
    args = ["eval", str(dataset[0]), "--out", str(out), "--batch-size", "8", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 4, result.output
    assert result.stderr.splitlines() == [f"vidvpr: error: {out}/predictions/netvlad-efficientnet-lite0/same: cannot "
                                          "create output directory (Not a directory)"]
    (out / "predictions").unlink()
    (out / "predictions").mkdir()
    real_mkdir = Path.mkdir

    def denied(self, *args, **kwargs):  # what a folder without write permission does (tests may run as root)
        if self.parent == out / "predictions":
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 4 and "cannot create output directory (Permission denied)" in result.stderr


@pytest.mark.parametrize("inside", [False, True], ids=["the-manifest-folder", "inside-it"])
def test_out_may_not_be_the_manifest_folder(dataset, inside: bool) -> None:
    # issue 15: eval wrote results.csv, predictions/ and descriptors/ beside database.csv
    out = dataset[0] / "eval" if inside else dataset[0]
    with pytest.raises(BadInput, match="the manifest folder .* which holds only its own files; write elsewhere"):
        evaluate_grid(dataset[0], out, EvalConfig())
    assert sorted(p.name for p in dataset[0].iterdir()) == ["database.csv", "manifest.json", "positives.json", "query.csv"]


def test_quiet_means_nothing_on_stderr_not_even_faiss_warnings(dataset, tmp_path: Path) -> None:
    # issue 15: a --quiet run printed faiss's "WARNING clustering 288 points to 64 centroids" (NetVLAD's k-means
    # on a small database) and the same from IVF training, straight from C++ to stderr
    manifest = dataset[0]
    for index in (None, "IVF4,SQ8"):  # 24 frames: fewer than faiss advises for 4 lists (39 each)
        args = ["eval", str(manifest), "--out", str(tmp_path / f"eval-{index}"), "--cells", "reference",
                "--recall-at", "1,5", "--batch-size", "8", "--quiet", *(["--index", index] if index else [])]
        done = subprocess.run([sys.executable, "-m", "vidvpr", *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert (done.stdout, done.stderr) == ("", "")


def test_an_encode_folder_that_is_a_file_is_named_as_such(dataset, tmp_path: Path) -> None:
    (tmp_path / "enc.txt").write_text("not a folder")
    with pytest.raises(BadInput, match=r"enc.txt: is a file, not an encode folder"):
        evaluate_grid(dataset[0], tmp_path / "out", EvalConfig(enc_dir=tmp_path / "enc.txt"))


@pytest.mark.parametrize("cells", [["--cells", "reference"], ["--cells", "64x36/qp40"], []])
def test_an_encode_folder_that_is_a_file_is_refused_whatever_the_cells(dataset, tmp_path: Path, cells: list) -> None:
    # `--cells reference --enc FILE` used to evaluate the reference and say nothing of FILE
    enc = tmp_path / "enc.txt"
    enc.write_text("not a folder")
    result = CliRunner().invoke(main, ["eval", str(dataset[0]), "--out", str(tmp_path / "out"), "--enc", str(enc),
                                       "--quiet", *cells])
    assert result.exit_code == 2
    assert result.stderr == f"vidvpr: error: {enc}: is a file, not an encode folder (vidvpr encode --out)\n"
    assert not (tmp_path / "out").exists()


def test_a_missing_encode_folder_is_refused_when_only_the_reference_is_evaluated(dataset, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"no-enc: encode folder not found"):
        evaluate_grid(dataset[0], tmp_path / "out", EvalConfig(enc_dir=tmp_path / "no-enc", cells=("reference",)))


def test_a_cell_missing_for_one_view_is_named(dataset, tmp_path: Path) -> None:
    manifest, enc = dataset
    partial = tmp_path / "enc"
    shutil.copytree(enc, partial)
    shutil.rmtree(partial / "qwalk" / "yaw090_pitch+00" / "64x36")
    with pytest.raises(BadInput, match=r"cell 64x36/qp00 is missing for view qwalk/yaw090_pitch\+00 "
                                       r"\(qwalk/yaw090_pitch\+00/64x36/qp00.json: not encoded\)"):
        evaluate_grid(manifest, tmp_path / "out", EvalConfig(enc_dir=partial))
    assert not (tmp_path / "out").exists()


def test_a_cell_whose_sidecar_is_damaged_is_named_as_damaged(dataset, tmp_path: Path) -> None:
    # it said "(not in the encode table)", though the table was not read and the cell was there, damaged
    manifest, enc = dataset
    damaged = tmp_path / "enc"
    shutil.copytree(enc, damaged)
    (damaged / "qwalk" / "yaw090_pitch+00" / "64x36" / "qp00.json").write_text("[1]")
    with pytest.raises(BadInput, match=r"cell 64x36/qp00 is missing for view qwalk/yaw090_pitch\+00 \(qwalk/yaw090_"
                                       r"pitch\+00/64x36/qp00.json: damaged or unfinished: vidvpr encode redoes it\)"):
        evaluate_grid(manifest, tmp_path / "out", EvalConfig(enc_dir=damaged))
    assert not (tmp_path / "out").exists()


def test_incompatible_weights_name_the_offending_keys(dataset, tmp_path: Path) -> None:
    import torch

    bogus = tmp_path / "bogus.pth.tar"
    torch.save({"state_dict": {"encoder.0.weight": torch.zeros(3, 3), "pool.centroids": torch.zeros(4, 7)}}, bogus)
    with pytest.raises(BadInput, match="bogus.pth.tar: weights do not fit"):
        evaluate_grid(dataset[0], tmp_path / "out", EvalConfig(models=(f"netvlad-vgg16:{bogus}",)))


def test_manifest_frames_beyond_a_videos_end_are_bad_input(dataset, tmp_path: Path) -> None:
    manifest_dir = tmp_path / "manifest"
    shutil.copytree(dataset[0], manifest_dir)
    path = manifest_dir / "database.csv"
    text = path.read_text().replace("dbwalk/yaw000_pitch+00/000011,database,dbwalk,yaw000_pitch+00,0.0,0.0,90.0,11,",
                                    "dbwalk/yaw000_pitch+00/000099,database,dbwalk,yaw000_pitch+00,0.0,0.0,90.0,99,")
    assert "000099" in text
    path.write_text(text)
    positives = manifest_dir / "positives.json"
    positives.write_text(positives.read_text().replace("dbwalk/yaw000_pitch+00/000011", "dbwalk/yaw000_pitch+00/000099"))
    rerecord_outputs(manifest_dir)
    with pytest.raises(BadInput, match="frame 99 is needed"):
        evaluate_grid(manifest_dir, tmp_path / "out", EvalConfig(batch_size=8, root=load_manifest(dataset[0]).root))
    assert not (tmp_path / "out" / "results.csv").exists()


def test_cli_prints_the_recall_table_and_writes_results(dataset, tmp_path: Path) -> None:
    manifest, enc = dataset
    result = CliRunner().invoke(main, ["eval", str(manifest), "--enc", str(enc), "--out", str(tmp_path / "e"),
                                       "--cells", "reference,64x36/qp40", "--batch-size", "8",
                                       "--unmatched-queries", "miss"])
    assert result.exit_code == 0, result.output
    assert "recall@1 at 2.5 m (same protocol, queries without positives counted as misses)" in result.stdout
    assert "64x36" in result.stdout
    assert {row["unmatched_queries"] for row in read_csv(tmp_path / "e" / "results.csv")} == {"miss"}
    result = CliRunner().invoke(main, ["eval", str(manifest), "--out", str(tmp_path / "x"), "--model", "nope"])
    assert result.exit_code == 2 and result.stderr.startswith("vidvpr: error: Unknown model 'nope'")


def test_eval_runs_over_mixed_codec_cells_and_plots_codecs_side_by_side(dataset, tmp_path: Path) -> None:
    manifest, enc = dataset
    mixed = tmp_path / "enc"
    shutil.copytree(enc, mixed)
    codecs = ("jpeg", "libsvtav1", "libvpx-vp9", "libvvenc", "libx265", "lossless")
    encode_cells(manifest, mixed, codecs=codecs, qps=(40,), codec_qps=(("jpeg", (50,)),),
                 codec_presets=(("libsvtav1", "12"), ("libvpx-vp9", "realtime-8"), ("libvvenc", "faster")))
    result = evaluate_grid(manifest, tmp_path / "eval", EvalConfig(enc_dir=mixed, batch_size=8))
    rows = read_csv(tmp_path / "eval" / "results.csv")
    assert [row["cell"] for row in rows] == [
        "reference", "jpeg/64x36/qp50", "libsvtav1/64x36/qp40", "libvpx-vp9/64x36/qp40", "libvvenc/64x36/qp40",
        "64x36/qp00", "64x36/qp40", "libx265/64x36/qp40", "lossless/64x36/qp00"]
    assert [row["codec"] for row in rows[1:]] == [*codecs[:4], "libx264", "libx264", "libx265", "lossless"]
    assert all(0 <= float(row["recall@1"]) <= 1 and float(row["kbps"]) > 0 for row in rows[1:])
    assert (tmp_path / "eval" / "recall_vs_kbps.png").read_bytes()[:4] == b"\x89PNG" and result.rows


def test_pca_whitening_is_fitted_on_a_bounded_sample_of_the_database(dataset, tmp_path: Path, monkeypatch) -> None:
    """A database of millions of frames is never concatenated in memory to fit the PCA."""
    from vidvpr.evaluate import models as eval_models

    monkeypatch.setattr(eval_models, "PCA_FIT_FRAMES", 12)
    result = evaluate_grid(dataset[0], tmp_path, EvalConfig(cells=("reference",), pca_dim=8, batch_size=8))
    assert len(load_manifest(dataset[0]).database) > 12
    saved = list((tmp_path / "models").glob("*-pca8-*.pt"))
    assert len(saved) == 1
    whitened = load_model("netvlad-efficientnet-lite0", saved[0])
    assert whitened(torch.zeros(1, 3, 36, 64)).shape == (1, 8)
    metadata = torch.load(saved[0], weights_only=True)["metadata"]
    assert metadata["whitening"] == "PCA to 8 fitted on 12 database frames"
    assert result.rows and 0.0 <= result.rows[0].recall[1] <= 1.0
