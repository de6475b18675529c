"""Specification of `vidvpr distill` on several processes (torchrun, DistributedDataParallel, gloo).

Real processes: `python -m torch.distributed.run --standalone` (its rendezvous on a port the
system picks, so parallel runs never collide) starts two CPU processes of `tests.distill_worker`
(the `vidvpr` command line with test hooks), one OpenMP thread each. The single-process runs
they are compared with run in this process, on the tiny data of tests/test_distill.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.distill_worker import interrupt_after
from tests.test_distill import MODEL, config, dataset, one_thread, read_csv, small_teacher  # noqa: F401
from tests.test_manifest import sliced_views  # noqa: F401  (a session fixture)
from vidvpr.cli import main
from vidvpr.core.atomic import is_partial_name
from vidvpr.dataset.export import ExportConfig, export_vpr
from vidvpr.distill.config import DistillConfig, StudentRecord
from vidvpr.distill.distributed import Processes, launched_processes
from vidvpr.distill.train import distill
from vidvpr.models import load_model

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# Two processes against one, same global batch and seed, after 12 optimiser steps (ICKD + MSE +
# triplet, float32 on the CPU): weights differed by at most 2.4e-7 and losses by at most 1.1e-6
# relative, in each of the three comparisons below (`VIDVPR_TEST_MEASURE=1 pytest -s
# tests/test_distill_ddp.py` prints them; the only difference is the order in which floating-point
# sums are taken). The tolerances leave at least 18x room.
WEIGHT_TOLERANCE = 1e-5  # absolute and relative, per weight
LOSS_TOLERANCE = 2e-5    # relative, per loss value of losses.csv


def options_of(config: DistillConfig) -> list[str]:
    """`vidvpr distill` options for the fields these tests change."""
    args = ["--train", str(config.train), "--teacher", config.teacher, "--loss", config.loss,
            "--negatives", str(config.negatives),
            "--batch-size", str(config.batch_size), "--accumulate", str(config.accumulate),
            "--mine-every", str(config.mine_every), "--epochs", str(config.epochs), "--lr", str(config.lr),
            "--checkpoint-every", str(config.checkpoint_every)]
    if config.positive_radius_m is not None:
        args += ["--pos-radius", str(config.positive_radius_m)]
    if config.negative_radius_m is not None:
        args += ["--neg-radius", str(config.negative_radius_m)]
    return args + [item for lq in config.lq for item in ("--lq", lq)] + (["--resume"] if config.resume else [])


def torchrun(out_dir: Path, config: DistillConfig, processes: int = 2, **hooks: str) -> subprocess.CompletedProcess:
    """`vidvpr distill --json` on `processes` gloo processes; `hooks`: the VIDVPR_TEST_* variables of
    tests.distill_worker, by their lower-case suffix."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           **{f"VIDVPR_TEST_{name.upper()}": value for name, value in hooks.items()}}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "tests.distill_worker", "distill", *options_of(config), "--out", str(out_dir), "--json"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def assert_close(run: Path, reference: Path) -> None:
    """The two runs made the same steps on the same images, to weights and losses within the tolerances."""
    mine, theirs = (load_model(MODEL, folder / "student.pt").state_dict() for folder in (run, reference))
    assert mine.keys() == theirs.keys()
    for name, value in mine.items():
        assert torch.allclose(value, theirs[name], rtol=WEIGHT_TOLERANCE, atol=WEIGHT_TOLERANCE), name
    rows, expected = read_csv(run / "losses.csv"), read_csv(reference / "losses.csv")
    assert [(r["step"], r["epoch"], r["lr"], r["images"]) for r in rows] == \
        [(r["step"], r["epoch"], r["lr"], r["images"]) for r in expected]
    for row, wanted in zip(rows, expected):
        for term in ("loss", "ickd", "mse", "triplet"):
            assert abs(float(row[term]) - float(wanted[term])) <= LOSS_TOLERANCE * abs(float(wanted[term])), (row, term)
    if os.environ.get("VIDVPR_TEST_MEASURE"):
        print("max |dw|", max(float((mine[k] - theirs[k]).abs().max()) for k in mine),
              "max rel dloss", max(abs(float(r[k]) - float(e[k])) / abs(float(e[k]))
                                   for r, e in zip(rows, expected) for k in ("loss", "ickd", "mse", "triplet")))


@pytest.fixture(scope="module")
def video_config(dataset: Path, small_teacher: str) -> DistillConfig:  # noqa: F811
    """24 encoded database frames, global batch 4: 12 steps in 2 epochs."""
    return config(dataset, teacher=small_teacher, loss="ickd,mse,triplet", batch_size=4, epochs=2, checkpoint_every=2)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory, video_config: DistillConfig) -> tuple[Path, Path, str]:
    """(run folder, folder of the files each process put in place, JSON printed) of a 2-process run."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "writes").mkdir()
    done = torchrun(root / "run", video_config, writes=str(root / "writes"))
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run", root / "writes", done.stdout


def test_two_processes_follow_one_process_within_rounding(two_processes: tuple[Path, Path, str],
                                                          video_config: DistillConfig, tmp_path: Path) -> None:
    run, _, _ = two_processes
    alone = distill(tmp_path / "alone", video_config)
    assert alone.steps == 12
    assert_close(run, tmp_path / "alone")


def test_only_the_main_process_writes(two_processes: tuple[Path, Path, str]) -> None:
    run, writes, printed = two_processes
    assert sorted(p.name for p in writes.iterdir()) == ["rank-0.txt"]  # rank 1 put no file in place
    written = (writes / "rank-0.txt").read_text().split()
    assert written.count(str(run / "student.json")) == 1 and written.count(str(run / "student.pt")) == 1
    assert written.count(str(run / "train_state.pt")) == 6  # every 2 steps and each epoch's end, never twice
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-001.pt", "epoch-002.pt"]
    assert not [p for p in run.rglob("*") if is_partial_name(p.name)] and not (run / "frames").exists()
    assert StudentRecord.load(run / "student.json").processes == 2
    assert json.loads(printed)["steps"] == 12  # one summary: the main process's


@pytest.fixture(scope="module")
def folder_config(dataset: Path, small_teacher: str,  # noqa: F811
                  tmp_path_factory: pytest.TempPathFactory) -> DistillConfig:
    """An image folder of 23 images, global batch 2 in 2 passes per step: each epoch ends on a batch of
    one row, which one process trains on while the other has none."""
    root = tmp_path_factory.mktemp("folder")
    export_vpr(dataset, root / "export", ExportConfig())
    images = root / "export" / "images"
    shutil.move(images / "test", images / "train")
    (images / "train" / "queries").rename(root / "queries")
    next((images / "train" / "database").iterdir()).unlink()
    return config(root / "export", teacher=small_teacher, lq=("resize:24p", "jpeg:20"), loss="ickd,mse,triplet",
                  positive_radius_m=5, batch_size=2, accumulate=2, epochs=2, checkpoint_every=2)


def test_a_run_stopped_on_two_processes_resumes_on_one_and_the_other_way(folder_config: DistillConfig,
                                                                        tmp_path: Path) -> None:
    whole = distill(tmp_path / "whole", folder_config)
    assert whole.steps == 12 and [r["images"] for r in read_csv(whole.losses_csv)][5] == "9"  # 2 + 1 queries
    # two processes, stopped after step 5 (the last state is step 4's), then one
    stopped = torchrun(tmp_path / "two-one", folder_config, stop_after="5")
    assert stopped.returncode != 0 and len(read_csv(tmp_path / "two-one" / "losses.csv")) == 4, stopped.stderr[-3000:]
    resumed = distill(tmp_path / "two-one", replace(folder_config, resume=True))
    assert resumed.resumed_from == 4
    assert_close(tmp_path / "two-one", tmp_path / "whole")

    # one process, stopped after step 5, then two
    with pytest.raises(KeyboardInterrupt):
        distill(tmp_path / "one-two", folder_config, on_step=interrupt_after(5))
    done = torchrun(tmp_path / "one-two", replace(folder_config, resume=True))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["resumed_from"] == 4
    assert_close(tmp_path / "one-two", tmp_path / "whole")


def test_an_error_while_the_main_process_prepares_stops_every_process_with_one_line(video_config: DistillConfig,
                                                                                   tmp_path: Path) -> None:
    done = torchrun(tmp_path / "run", replace(video_config, teacher=f"{MODEL}:{tmp_path / 'missing.pt'}"))
    assert done.returncode != 0
    assert done.stderr.count("vidvpr: error") == 1  # said by the main process only
    assert f"vidvpr: error: {tmp_path / 'missing.pt'}: checkpoint not found (--model " in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_batch_that_does_not_split_between_the_processes_is_one_line(video_config: DistillConfig, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    args = ["distill", *options_of(replace(video_config, batch_size=4)), "--out", str(tmp_path / "run")]
    for name, value in {"RANK": "0", "WORLD_SIZE": "3", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost"}.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "--batch-size 4 is the global batch: it must be a multiple of the 3 processes" in result.output
    monkeypatch.setenv("RANK", "2")
    quiet = runner.invoke(main, args)  # the other processes leave the saying to the main one
    assert quiet.exit_code == 2 and quiet.output == ""
    monkeypatch.setenv("RANK", "three")
    assert "RANK, WORLD_SIZE and LOCAL_RANK must be integers" in runner.invoke(main, args).output
    assert not (tmp_path / "run").exists()


def test_each_process_takes_consecutive_rows_of_every_batch() -> None:
    rows = list(range(7))
    shares = [Processes(rank, 3, launched=True).share(rows) for rank in range(3)]
    assert shares == [[0, 1, 2], [3, 4], [5, 6]]
    assert [Processes(rank, 2, launched=True).share([9]) for rank in range(2)] == [[9], []]
    assert launched_processes({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h"}) == Processes(1, 2, 0, True)
    assert launched_processes({"LOCAL_RANK": "0"}) == Processes()  # not torchrun: one process
    assert Processes(1, 2, 1, True).device(torch.device("cuda")) == torch.device("cuda", 1)
