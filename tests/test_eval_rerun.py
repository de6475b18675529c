"""Specification of a rerun of `vidvpr eval` over a finished evaluation: recognised without loading a
model (no torch, no faiss), nothing written; any change to what the results follow from, or any
damaged input or output, runs the evaluation again."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.imports import imports_of_command
from tests.test_eval import dataset  # noqa: F401  (a module fixture)
from tests.test_manifest import sliced_views  # noqa: F401  (a session fixture)
from vidvpr.dataset.manifest import load_manifest
from vidvpr.evaluate import rerun
from vidvpr.evaluate.cells import grid_cells
from vidvpr.evaluate.config import EvalConfig
from vidvpr.evaluate.grid import evaluate_grid
from vidvpr.evaluate.rerun import evaluate, finished_evaluation, run_params_hash


@pytest.fixture(scope="module")
def finished(dataset: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    manifest, enc = dataset
    out = tmp_path_factory.mktemp("eval-finished") / "eval"
    config = EvalConfig(enc_dir=enc, batch_size=8, backend="torch", save_preds=2)
    return manifest, out, config, evaluate_grid(manifest, out, config)


@pytest.fixture
def copy(finished, tmp_path: Path):
    """A copy of the finished evaluation to damage, with its manifest and configuration."""
    manifest, out, config, result = finished
    shutil.copytree(out, tmp_path / "eval")
    return manifest, tmp_path / "eval", config, result


def test_a_rerun_returns_the_recorded_results_and_writes_nothing(copy) -> None:
    manifest, out, config, first = copy
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = evaluate(manifest, out, config)
    assert again.skipped and again.forward_images == 0
    assert [row.model_dump() for row in again.rows] == [row.model_dump() for row in first.rows]
    assert (again.results_csv, sorted(again.plots), sorted(again.strips)) == (
        out / "results.csv", sorted(out / p.name for p in first.plots),
        sorted(out / p.relative_to(first.results_csv.parent) for p in first.strips))
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_deciding_loads_neither_torch_nor_faiss(finished) -> None:
    manifest, out, config, _ = finished
    summary, loaded = imports_of_command(["eval", str(manifest), "--enc", str(config.enc_dir), "--out", str(out),
                                          "--batch-size", "8", "--backend", "torch", "--save-preds", "2", "--json"],
                                         ("torch", "faiss", "matplotlib"))
    assert json.loads(summary)["skipped"] is True and json.loads(summary)["forward_images"] == 0
    assert loaded == []


@pytest.mark.parametrize("change", [
    {"recall_at": (1, 3)}, {"thresholds_m": (1.0,)}, {"protocol": "reference"}, {"cells": ("reference",)},
    {"save_preds": 0}, {"index": "HNSW8"}, {"input_size": "reference"},
])
def test_a_changed_option_runs_the_evaluation_again(change: dict, finished) -> None:
    manifest, out, config, _ = finished
    assert finished_evaluation(manifest, out, config) is not None
    assert finished_evaluation(manifest, out, replace(config, **change)) is None


@pytest.mark.parametrize("same", [
    # each of these evaluated everything again (the sequence matching: minutes on the full demo)
    {"seq_lens": (20, 10, 5)}, {"seq_lens": (1, 5, 5, 10, 20)}, {"recall_at": (5, 1)}, {"thresholds_m": (1.0, 0.5)},
], ids=["lengths-reordered-without-1", "a-length-twice", "recall-at-reordered", "thresholds-reordered"])
def test_the_same_lists_written_another_way_are_the_same_evaluation(same: dict, finished) -> None:
    manifest, _, config, _ = finished
    loaded = load_manifest(manifest)
    cells = grid_cells(loaded, config)
    as_written = {"seq_lens": (1, 5, 10, 20), "recall_at": (1, 5), "thresholds_m": (0.5, 1.0)}
    canonical = replace(config, **{name: as_written[name] for name in same})
    assert run_params_hash(loaded, cells, replace(config, **same), "torch") == \
        run_params_hash(loaded, cells, canonical, "torch")
    assert run_params_hash(loaded, cells, replace(config, seq_lens=(1, 5)), "torch") != \
        run_params_hash(loaded, cells, replace(config, seq_lens=(1, 5, 10)), "torch")


def test_sequence_options_without_sequences_change_nothing_and_keep_the_evaluation(finished) -> None:
    manifest, out, config, _ = finished
    assert config.seq_lens == (1,)
    for change in ({"seq_normalise": True}, {"seq_reverse": True}, {"seq_velocity": (1.0, 1.0)},
                   {"seq_search": "restricted"}, {"seq_lens": (1, 1)}):
        assert finished_evaluation(manifest, out, replace(config, **change)) is not None, change
    assert finished_evaluation(manifest, out, replace(config, seq_lens=(1, 3))) is None


@pytest.mark.parametrize("damage", ["prediction", "results.csv", "plot", "strip", "model checkpoint",
                                    "model added", "results.json"])
def test_a_damaged_or_missing_file_runs_the_evaluation_again(damage: str, copy) -> None:
    manifest, out, config, _ = copy
    target = {"prediction": next((out / "predictions").rglob("*.csv")), "results.csv": out / "results.csv",
              "plot": out / "recall_vs_qp.png", "strip": next((out / "strips").rglob("*.png")),
              "model checkpoint": next((out / "models").glob("*.pt")), "results.json": out / "results.json",
              "model added": out / "models" / "another.pt"}[damage]
    if damage == "model added":
        target.write_bytes(b"weights")
    else:
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, other content
        target.write_bytes(bytes(data))
    assert finished_evaluation(manifest, out, config) is None


def test_a_rerun_after_damage_restores_the_outputs(copy) -> None:
    manifest, out, config, first = copy
    (out / "results.csv").write_text("damaged\n")
    again = evaluate(manifest, out, config)
    assert not again.skipped and again.forward_images == 0  # descriptors still come from the cache
    assert [row.model_dump() for row in again.rows] == [row.model_dump() for row in first.rows]
    assert evaluate(manifest, out, config).skipped


def test_a_changed_cell_runs_the_evaluation_again(finished, tmp_path: Path) -> None:
    manifest, out, config, _ = finished
    enc = tmp_path / "enc"
    shutil.copytree(config.enc_dir, enc)
    sidecar = next(enc.rglob("qp40.json"))
    cell = json.loads(sidecar.read_text())
    cell["kbps"] = cell["kbps"] * 2  # what the results report of the cell changed (a re-encode)
    sidecar.write_text(json.dumps(cell))
    assert finished_evaluation(manifest, out, replace(config, enc_dir=enc)) is None
    assert finished_evaluation(manifest, out, replace(config, enc_dir=config.enc_dir)) is not None


def test_results_of_an_older_evaluation_version_are_not_kept(finished, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest, out, config, _ = finished
    monkeypatch.setattr(rerun, "EVAL_OUTPUT_VERSION", rerun.EVAL_OUTPUT_VERSION + 1)  # a fix in evaluation
    assert finished_evaluation(manifest, out, config) is None


def test_results_written_before_reruns_were_recorded_are_evaluated_again(copy) -> None:
    manifest, out, config, _ = copy
    recorded = json.loads((out / "results.json").read_text())
    for key in ("params_hash", "inputs", "outputs"):
        del recorded[key]
    (out / "results.json").write_text(json.dumps(recorded))
    assert finished_evaluation(manifest, out, config) is None
