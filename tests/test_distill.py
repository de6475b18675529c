"""Specification of `vidvpr distill`: degradations, pairs, inherited targets, mining, training and resume.

Everything runs on a tiny dataset (12 frames of two 64×36 views per recording) and the offline
EfficientNet-Lite0 teacher; one thread per test process, so a busy shared machine does not stall
OpenMP's barriers.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.test_export import encode_cells
from tests.test_manifest import make_dataset, sliced_views  # noqa: F401  (a session fixture)
from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.dataset.definition import load_definition
from vidvpr.dataset.export import ExportConfig, export_vpr
from vidvpr.dataset.manifest import build_manifest
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.distill.config import DistillConfig, StudentRecord
from vidvpr.distill.degrade import Jpeg, Resize, parse_low_quality
from vidvpr.distill.losses import DistillLoss, ickd_loss, inter_channel_correlation
from vidvpr.distill.pairs import load_training_set
from vidvpr.distill.step import StepInputs, batch_loss, ickd_from_correlations
from vidvpr.distill.teacher import make_student, prepare_teacher
from vidvpr.distill.train import distill
from vidvpr.models import initialise_netvlad, load_model, save_model

MODEL = "netvlad-efficientnet-lite0"
# 12 frames 3.3 m apart along a line (x = 100 t): positives within 5 m are the neighbours
DB_TRAJ = "t,x,y,heading\n0,0,0,10\n0.4,40,0,10\n"
CELL = "64x36/qp40"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, sliced_views: Path) -> Path:  # noqa: F811
    """The manifest folder of a tiny dataset with an encode grid (64x36 at QP 40) beside it in ../enc."""
    root = tmp_path_factory.mktemp("distill-ds")
    definition = make_dataset(root / "ds", sliced_views, db_traj=DB_TRAJ, radius=5)
    build_manifest(load_definition(definition), root / "ds" / "manifest")
    encode_cells(root / "ds" / "manifest", root / "ds" / "enc", qps=(40,))
    return root / "ds" / "manifest"


@pytest.fixture(scope="module")
def small_teacher(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A quicker teacher for most tests: EfficientNet-Lite0 to stage 3 (40 channels) with 8 NetVLAD clusters."""
    model = load_model(MODEL, stage=3, num_clusters=8)
    images = [torch.randn(4, 3, 36, 64, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    path = tmp_path_factory.mktemp("teacher") / "small.pt"
    initialise_netvlad(model, images, path)
    return f"{MODEL}:{path}"


def config(manifest: Path, **changes) -> DistillConfig:
    base = DistillConfig(train=manifest, lq=(CELL,), negatives=1, negative_radius_m=10, batch_size=4, lr=1e-4,
                         mine_every=3, checkpoint_every=100)
    return replace(base, **changes)


def one_line_bad_input(call, match: str) -> str:
    with pytest.raises(BadInput, match=match) as caught:
        call()
    assert "\n" not in str(caught.value)
    return str(caught.value)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def same_weights(a: Path, b: Path) -> bool:
    one, two = load_model(MODEL, a).state_dict(), load_model(MODEL, b).state_dict()
    return one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)


# ---------------------------------------------------------------- degradations


def test_degradations_parse_combine_in_order_and_never_upscale() -> None:
    lq = parse_low_quality(["360p/qp40", "resize:24p", "jpeg:10", "libx265/720p/qp5"])
    assert lq.cells == ("360p/qp40", "libx265/720p/qp05") and lq.degradations == (Resize(24), Jpeg(10))
    image = np.random.default_rng(0).integers(0, 256, (36, 64, 3), dtype=np.uint8)
    small = lq.degrade(image)
    assert small.shape == (24, 43, 3) and small.dtype == np.uint8
    assert np.array_equal(small, lq.degrade(image))  # deterministic
    assert Resize(240)(image) is image and Resize(10, 20)(image).shape == (10, 20, 3)
    assert np.abs(Jpeg(5)(image).astype(int) - image).mean() > np.abs(Jpeg(95)(image).astype(int) - image).mean()


@pytest.mark.parametrize("item, match", [("sharpen:3", "Unknown degradation 'sharpen:3'. Use jpeg:Q"),
                                         ("jpeg:0", "JPEG quality must be an integer from 1 to 100"),
                                         ("resize:big", "resize:240p"), ("360p-qp40", "Unknown degradation")])
def test_unknown_or_malformed_degradations_are_one_line_bad_input(item: str, match: str) -> None:
    one_line_bad_input(lambda: parse_low_quality([item]), match)


@pytest.mark.parametrize("items", [["jpeg:10,,blur:1"], ["jpeg:10,"], ["", "jpeg:10"]])
def test_an_empty_lq_item_among_others_is_refused_as_a_typo(items: list[str]) -> None:
    one_line_bad_input(lambda: parse_low_quality(items), r"--lq has an empty item in '.*' \(two commas in a row")


def test_empty_loss_and_lq_items_are_exit_2_on_the_command_line(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for extra in (["--lq", CELL, "--loss", "ickd,,mse"], ["--lq", f"{CELL},,jpeg:10"]):
        result = runner.invoke(main, ["distill", "--train", str(dataset), "--out", str(tmp_path / "r"), *extra])
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "has an empty item" in result.output
        assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- losses on correlations, gradients


def test_ickd_on_inherited_correlations_equals_ickd_on_maps() -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(3, 5, 2, 4, generator=generator), torch.randn(3, 5, 6, 7, generator=generator)
    expected = ickd_loss(student, teacher)
    got = ickd_from_correlations(inter_channel_correlation(student), inter_channel_correlation(teacher))
    assert torch.allclose(got, expected, atol=1e-6)


def test_gradients_reach_only_the_student_and_match_the_composite_loss(dataset: Path, tmp_path: Path,
                                                                       small_teacher: str) -> None:
    training = load_training_set(dataset, parse_low_quality([CELL, "resize:24p"]), tmp_path)
    teacher, _ = prepare_teacher(small_teacher, training, tmp_path, DescriptorCache(tmp_path / "cache"), torch.device("cpu"), 8)
    student = make_student(teacher)  # early layers frozen: the stem and stage 1 of this 3-stage backbone
    loss = DistillLoss.from_string("ickd,mse", lambda_mse=10.0)
    total, _, _ = batch_loss(student, training, loss, StepInputs([0, 5], {}, None, teacher), torch.device("cpu"))
    total.backward()
    assert all(p.grad is None for p in teacher.parameters())
    trained = {name: p.grad for name, p in student.named_parameters() if p.requires_grad}
    assert all(g is not None for g in trained.values()) and sum(float(g.abs().sum()) for g in trained.values()) > 0
    frozen = [name for name, p in student.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("encoder._conv_stem", "encoder._bn0", "encoder._blocks.0.")) for n in frozen)
    assert "encoder._blocks.1._depthwise_conv.weight" in trained and "pool.centroids" in trained
    everything = make_student(teacher, freeze="none")
    assert all(p.requires_grad for p in everything.parameters())
    # the same value as the composite loss of vidvpr.distill.losses on both latent maps
    from vidvpr.descriptors.frames import normalise_images

    with torch.no_grad():
        lq = normalise_images(training.lq_images([0, 5]))
        hq = normalise_images(training.hq_images([0, 5]))
        assert lq.shape[-2:] == (24, 43) and hq.shape[-2:] == (36, 64)  # the student sees a smaller frame
        expected, _ = loss(student_z=student.features(lq), teacher_z=teacher.features(hq), student_v=student(lq),
                           teacher_v=teacher(hq))
    assert torch.allclose(total.detach(), expected, rtol=1e-4)


def triplets_by_position(training, queries: list[int], negatives: int = 2) -> dict:
    """A fixed triplet per query: its first positive candidate and its `negatives` first negatives."""
    from vidvpr.distill.mining import Triplet, negatives_of, triplet_candidates

    candidates = triplet_candidates(training.positions(), None, 4.0, None, 10.0, negatives)
    return {q: Triplet(int(candidates.positives[q][0]),
                       tuple(int(n) for n in negatives_of(training.positions(), q, 10.0)[:negatives]))
            for q in queries}


def test_ickd_and_mse_compare_every_image_of_the_batch_with_the_teacher(dataset: Path, tmp_path: Path,
                                                                        small_teacher: str) -> None:
    """As LoQI-VPR: query, positive and negatives each against the teacher on its clean image."""
    from vidvpr.descriptors.frames import normalise_images

    training = load_training_set(dataset, parse_low_quality([CELL]), tmp_path)
    teacher, _ = prepare_teacher(small_teacher, training, tmp_path, DescriptorCache(tmp_path / "cache"),
                                 torch.device("cpu"), 8)
    student = make_student(teacher)
    triplets = triplets_by_position(training, [3, 8])
    loss = DistillLoss.from_string("ickd,mse,triplet")
    pairs = [3, 8, triplets[3].positive, triplets[8].positive, *triplets[3].negatives, *triplets[8].negatives]
    for distill_all, distilled in ((True, pairs), (False, pairs[:2])):
        inputs = StepInputs([3, 8], triplets, None, teacher, distill_all)
        _, parts, images = batch_loss(student, training, loss, inputs, torch.device("cpu"))
        assert images == len(pairs) == 8
        with torch.no_grad():
            lq = normalise_images(training.lq_images(distilled))
            hq = normalise_images(training.hq_images(distilled))  # the same places: pairs of one variant
            _, expected = DistillLoss.from_string("ickd,mse")(student_z=student.features(lq),
                                                              teacher_z=teacher.features(hq),
                                                              student_v=student(lq), teacher_v=teacher(hq))
        assert torch.allclose(parts["ickd"], expected["ickd"], rtol=1e-4)
        assert torch.allclose(parts["mse"], expected["mse"], rtol=1e-4)


@pytest.fixture(scope="module")
def step_setup(dataset: Path, tmp_path_factory: pytest.TempPathFactory, small_teacher: str) -> tuple:
    """(training set, teacher, inherited targets, 8 queries, their triplets) for one optimiser step."""
    from vidvpr.distill.targets import inherited_targets

    folder = tmp_path_factory.mktemp("step")
    training = load_training_set(dataset, parse_low_quality([CELL]), folder)
    cache = DescriptorCache(folder / "cache")
    teacher, _ = prepare_teacher(small_teacher, training, folder, cache, torch.device("cpu"), 8)
    targets = inherited_targets(teacher, training, cache, True, 8, torch.device("cpu"))
    queries = [1, 2, 4, 5, 6, 9, 10, 13]
    return training, teacher, targets, queries, triplets_by_position(training, queries)


def step_of(setup: tuple, loss: DistillLoss, chunk_size: int) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """(the step's loss values, the student's gradients) of one step over the 8 queries in chunks."""
    from vidvpr.distill.distributed import Group, Processes
    from vidvpr.distill.step import LatentDescriptors, step_gradients

    training, teacher, targets, queries, triplets = setup
    student = make_student(teacher)
    cpu = torch.device("cpu")
    values, images = step_gradients(LatentDescriptors(student), student, training, loss,
                                    StepInputs(queries, triplets, targets, None), chunk_size, cpu, Group(Processes(), cpu))
    assert images == 4 * len(queries)
    return values, {name: p.grad.clone() for name, p in student.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk_size", [3, 1], ids=["chunks-3-3-2", "chunks-of-1"])
def test_accumulated_chunks_give_the_loss_and_gradients_of_one_batch(step_setup: tuple, chunk_size: int) -> None:
    loss = DistillLoss.from_string("ickd,mse,triplet", lambda_ickd=0.02, lambda_mse=4000.0)
    whole_values, whole = step_of(step_setup, loss, 8)
    values, chunked = step_of(step_setup, loss, chunk_size)
    assert values == pytest.approx(whole_values, rel=1e-5)
    assert chunked.keys() == whole.keys() and whole
    for name, gradient in whole.items():
        scale = float(gradient.abs().max())
        assert torch.allclose(chunked[name], gradient, rtol=1e-4, atol=1e-5 * scale), name


def test_one_chunk_backpropagates_the_composite_loss_of_the_batch(step_setup: tuple) -> None:
    """The split of the loss between chunks and processes changes nothing for one chunk on one process."""
    training, teacher, targets, queries, triplets = step_setup
    loss = DistillLoss.from_string("ickd,mse,triplet", lambda_ickd=0.02, lambda_mse=4000.0)
    values, gradients = step_of(step_setup, loss, 8)
    student = make_student(teacher)
    total, parts, _ = batch_loss(student, training, loss, StepInputs(queries, triplets, targets, None),
                                 torch.device("cpu"))
    total.backward()
    assert values == pytest.approx({"loss": float(total.detach()), **{k: float(v) for k, v in parts.items()}}, rel=1e-5)
    for name, p in student.named_parameters():
        if p.grad is not None:
            assert torch.allclose(gradients[name], p.grad, rtol=1e-4, atol=1e-5 * float(p.grad.abs().max())), name


# ---------------------------------------------------------------- training


def test_inherited_targets_mean_no_teacher_forward_after_they_are_computed(dataset: Path, tmp_path: Path,
                                                                           small_teacher: str) -> None:
    cache = tmp_path / "cache"
    options = config(dataset, teacher=small_teacher, loss="ickd,mse", cache_dir=cache)
    first = distill(tmp_path / "a", replace(options, epochs=2))
    assert first.teacher_forwards == {"targets": 24, "epochs": [0, 0]}  # 24 database frames, once
    again = distill(tmp_path / "b", options)
    assert again.teacher_forwards == {"targets": 0, "epochs": [0]}  # another run: read from the cache
    every_step = distill(tmp_path / "c", replace(options, inherit_targets=False))
    assert every_step.teacher_forwards == {"targets": 0, "epochs": [24]}  # the counter does count
    # the descriptors that served as targets are the teacher's on the clean frames, float16-rounded
    inherited, direct = read_csv(first.losses_csv), read_csv(every_step.losses_csv)
    assert abs(float(inherited[0]["mse"]) - float(direct[0]["mse"])) < 1e-3 * float(direct[0]["mse"])
    # the default teacher is the model `vidvpr eval` evaluates: its targets sit under that model's fingerprint
    distill(tmp_path / "d", replace(options, teacher=MODEL, loss="mse", batch_size=24))
    evaluated = load_model(MODEL, tmp_path / "d" / "models" / f"{MODEL}-netvlad-init.pt")
    assert (cache / evaluated.fingerprint).is_dir()


def test_the_default_teacher_is_the_model_vidvpr_eval_evaluates_at_either_batch_size(dataset: Path,
                                                                                   tmp_path: Path) -> None:
    """The NetVLAD fit read its frames in batches of --batch-size, and the backbone rounds a batch of 8
    otherwise than one of 16: at the defaults (distill 8, eval 16) the small demo's teacher had alpha
    48.649640 against eval's 48.649644, another fingerprint, and a shared --cache missed every entry
    (on these 12-frame videos batches of 1 and 3 round apart)."""
    import json

    from vidvpr.evaluate.config import EvalConfig
    from vidvpr.evaluate.rerun import evaluate

    run = distill(tmp_path / "run", config(dataset, teacher=MODEL, loss="mse", batch_size=1, max_steps=1))
    teacher = StudentRecord.load(run.sidecar).teacher["fingerprint"]
    for batch_size in (3, 16):
        out = tmp_path / f"eval-{batch_size}"
        evaluate(dataset, out, EvalConfig(cells=("reference",), batch_size=batch_size, backend="torch"))
        assert json.loads((out / "results.json").read_text())["models"][0]["fingerprint"] == teacher


def test_accumulate_trains_the_step_one_batch_would(dataset: Path, tmp_path: Path, small_teacher: str) -> None:
    """--accumulate 4 of 2 queries against one batch of 8: the same loss curve and weights, to rounding
    (ICKD was the mean of the chunks' norms, about 1/2 of the batch's)."""
    options = config(dataset, teacher=small_teacher, loss="ickd,mse", epochs=1, lr_decay=1.0)
    one = distill(tmp_path / "one", replace(options, batch_size=8))
    four = distill(tmp_path / "four", replace(options, batch_size=2, accumulate=4))
    rows, expected = read_csv(four.losses_csv), read_csv(one.losses_csv)
    assert len(rows) == len(expected) == 3
    for row, wanted in zip(rows, expected):
        for term in ("loss", "ickd", "mse"):
            assert float(row[term]) == pytest.approx(float(wanted[term]), rel=1e-5), (row, term)
    mine, theirs = (load_model(MODEL, path).state_dict() for path in (four.student, one.student))
    for name, value in mine.items():
        assert torch.allclose(value, theirs[name], rtol=1e-5, atol=1e-6), name


def test_a_few_steps_lower_the_training_loss_and_the_student_loads_like_any_model(dataset: Path, tmp_path: Path,
                                                                                  small_teacher: str) -> None:
    result = distill(tmp_path / "run", config(dataset, teacher=small_teacher, loss="ickd,mse,triplet", epochs=3,
                                              lr=3e-4, lr_decay=1.0))
    curve = read_csv(result.losses_csv)
    assert len(curve) == result.steps == 18 and [int(r["step"]) for r in curve] == list(range(1, 19))
    first, last = (np.mean([float(r["loss"]) for r in curve if r["epoch"] == e]) for e in ("1", "3"))
    assert last < 0.9 * first
    student = load_model(MODEL, result.student)
    assert student.state_dict().keys() >= {"encoder._conv_stem.weight", "pool.centroids"}

    record = StudentRecord.load(result.sidecar)
    assert record.losses == ["ickd", "mse", "triplet"] and record.degradation == [CELL] and record.seed == 0
    assert record.distilled_images == "all"
    assert record.triplet_radii_m == {"positive": 4.0, "negative": 10.0, "reference": 5.0}  # 10:25 of --neg-radius
    assert record.teacher["name"] == MODEL and record.checkpoint.hash.startswith("sha256:")
    assert not (tmp_path / "run" / "frames").exists() and (tmp_path / "run" / "checkpoints" / "epoch-003.pt").is_file()


def test_resume_gives_identical_weights_and_loss_curve(dataset: Path, tmp_path: Path, small_teacher: str) -> None:
    options = config(dataset, teacher=small_teacher, epochs=2, lq=(CELL, "jpeg:30"), checkpoint_every=2)
    whole = distill(tmp_path / "whole", options)

    def stop_after_three(row: dict) -> None:
        if row["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(tmp_path / "cut", options, on_step=stop_after_three)
    resumed = distill(tmp_path / "cut", replace(options, resume=True))
    assert resumed.resumed_from == 2  # the last checkpoint before the interruption
    assert same_weights(whole.student, resumed.student)
    assert (tmp_path / "whole" / "losses.csv").read_text() == (tmp_path / "cut" / "losses.csv").read_text()
    # one epoch, then a resume asking for two, is the same training as two at once
    distill(tmp_path / "grow", replace(options, epochs=1))
    grown = distill(tmp_path / "grow", replace(options, resume=True))
    assert grown.resumed_from == 6 and same_weights(whole.student, grown.student)


def test_a_step_budget_stops_inside_an_epoch_and_is_recorded(dataset: Path, tmp_path: Path,
                                                             small_teacher: str) -> None:
    capped = distill(tmp_path / "capped", config(dataset, teacher=small_teacher, epochs=2, max_steps=5))
    assert capped.steps == 5  # of 2 x 6
    record = StudentRecord.load(capped.sidecar)
    assert record.steps == 5 and record.max_steps == 5 and record.steps_per_epoch == 6 and record.epochs == 2


def test_a_run_cut_by_its_step_budget_is_the_start_of_the_uncapped_run(dataset: Path, tmp_path: Path,
                                                                       small_teacher: str) -> None:
    options = config(dataset, teacher=small_teacher, epochs=2, checkpoint_every=2)
    whole = distill(tmp_path / "whole", options)
    distill(tmp_path / "grow", replace(options, max_steps=5))  # 5: no checkpoint falls there but the last step's
    grown = distill(tmp_path / "grow", replace(options, resume=True))
    assert grown.resumed_from == 5 and same_weights(whole.student, grown.student)
    assert (tmp_path / "whole" / "losses.csv").read_text() == (tmp_path / "grow" / "losses.csv").read_text()


def test_resuming_within_the_step_budget_trains_nothing_more(dataset: Path, tmp_path: Path,
                                                             small_teacher: str) -> None:
    options = config(dataset, teacher=small_teacher, epochs=2, max_steps=5)
    first = distill(tmp_path / "run", options)
    again = distill(tmp_path / "run", replace(options, resume=True))
    assert again.resumed_from == again.steps == 5 and same_weights(first.student, again.student)


def test_a_step_budget_below_one_or_below_the_steps_done_is_bad_input(dataset: Path, tmp_path: Path,
                                                                     small_teacher: str) -> None:
    one_line_bad_input(lambda: distill(tmp_path / "zero", config(dataset, max_steps=0)),
                       "--max-steps must be at least 1, got 0")
    options = config(dataset, teacher=small_teacher, loss="mse", max_steps=4)
    distill(tmp_path / "run", options)
    one_line_bad_input(lambda: distill(tmp_path / "run", replace(options, max_steps=2, resume=True)),
                       "holds a run of 4 steps already, more than the 2 asked for")


def test_a_resumed_run_computes_with_the_thread_count_the_run_started_with(dataset: Path, tmp_path: Path,
                                                                          small_teacher: str) -> None:
    """A CPU kernel's sums are split between threads: 1 and 2 threads round differently, so a resumed run
    takes the interrupted run's count (saved in train_state.pt) to repeat it bit for bit."""
    options = config(dataset, teacher=small_teacher, loss="mse", checkpoint_every=2)
    seen: list[int] = []

    def stop_after_three(row: dict) -> None:
        if row["step"] == 3:
            raise KeyboardInterrupt

    try:
        torch.set_num_threads(2)
        whole = distill(tmp_path / "whole", options)
        with pytest.raises(KeyboardInterrupt):
            distill(tmp_path / "cut", options, on_step=stop_after_three)
        torch.set_num_threads(1)
        resumed = distill(tmp_path / "cut", replace(options, resume=True),
                          on_step=lambda row: seen.append(torch.get_num_threads()))
        assert torch.get_num_threads() == 1  # as it was before the resumed run
    finally:
        torch.set_num_threads(1)  # this module's threads
    assert resumed.resumed_from == 2 and seen == [2, 2, 2, 2]
    assert same_weights(whole.student, resumed.student)
    from vidvpr.distill.config import StudentRecord

    assert StudentRecord.load(resumed.sidecar).versions["torch_threads"] == "2"


def test_decoded_frames_truncated_after_a_kill_are_decoded_again(dataset: Path, tmp_path: Path,
                                                                  small_teacher: str) -> None:
    options = config(dataset, teacher=small_teacher, loss="mse", checkpoint_every=2)

    def stop_after_three(row: dict) -> None:
        if row["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(tmp_path / "run", options, on_step=stop_after_three)
    stored = sorted((tmp_path / "run" / "frames").glob("*.npy"))
    assert stored and all(path.with_suffix(".json").is_file() for path in stored)  # each with its sidecar
    for path in stored:
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])  # as a kill or a full disk might leave it
    resumed = distill(tmp_path / "run", replace(options, resume=True))  # was: mmap length is greater than file size
    assert resumed.resumed_from == 2 and resumed.steps == 6
    assert not (tmp_path / "run" / "frames").exists()  # removed with their sidecars when the run completed


def test_a_test_split_export_is_refused_for_training_with_the_way_to_a_train_split(dataset: Path, tmp_path: Path) -> None:
    export_vpr(dataset, tmp_path / "export", ExportConfig())
    one_line_bad_input(lambda: distill(tmp_path / "run", config(tmp_path / "export", lq=("jpeg:10",))),
                       r"export: no training images .*it has images/test only .*--split train")


def test_an_image_folder_trains_with_positions_from_the_file_names(dataset: Path, tmp_path: Path,
                                                                   small_teacher: str) -> None:
    export_vpr(dataset, tmp_path / "export", ExportConfig(split="train"))
    result = distill(tmp_path / "run", config(tmp_path / "export", teacher=small_teacher, lq=("resize:24p", "jpeg:20"),
                                              loss="mse,triplet", positive_radius_m=5))
    assert result.steps > 0 and set(result.final_losses) == {"loss", "mse", "triplet"}
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(next((tmp_path / "export" / "images" / "train" / "database").glob("*.jpg")), bad / "street.jpg")
    one_line_bad_input(lambda: distill(tmp_path / "r2", config(bad, lq=("jpeg:10",))), "street.jpg.*not a VPR image name")


# ---------------------------------------------------------------- bad input


def test_teacher_weights_that_do_not_fit_the_backbone(dataset: Path, tmp_path: Path) -> None:
    other = save_model(load_model(MODEL, num_clusters=8, stage=4), tmp_path / "stage4.pt")
    one_line_bad_input(lambda: distill(tmp_path / "run", config(dataset, teacher=f"netvlad-vgg16:{other}")),
                       "checkpoint is for model 'netvlad-efficientnet-lite0', not 'netvlad-vgg16'")
    torch.save({"state_dict": {"encoder.0.weight": torch.zeros(64, 3, 3, 3), "pool.centroids": torch.zeros(8, 512)}},
               tmp_path / "vgg.pth")
    one_line_bad_input(lambda: distill(tmp_path / "run", config(dataset, teacher=f"{MODEL}:{tmp_path / 'vgg.pth'}")),
                       "weights do not fit netvlad-efficientnet-lite0")
    assert not (tmp_path / "run").exists()  # a failed run leaves no empty --out


def test_a_cell_that_was_never_encoded(dataset: Path, tmp_path: Path) -> None:
    message = one_line_bad_input(lambda: distill(tmp_path / "run", config(dataset, lq=("64x36/qp51",))),
                                 "--lq 64x36/qp51: that cell was never encoded")
    assert "it has 64x36/qp40" in message


def test_out_may_not_be_the_training_manifest_folder_nor_inside_it(dataset: Path) -> None:
    # issue 15: distill accepted --out equal to the manifest folder and wrote its run beside database.csv
    before = sorted(p.name for p in dataset.iterdir())
    for out in (dataset, dataset / "run"):
        one_line_bad_input(lambda out=out: distill(out, config(dataset)),
                           rf"--out {out}: is (inside )?the training data folder {dataset}, which holds only its own files")
    assert sorted(p.name for p in dataset.iterdir()) == before


def test_an_encode_folder_that_is_a_file_is_named_as_such(dataset: Path, tmp_path: Path) -> None:
    # issue 15: "encode folder not found" for a path that exists
    (tmp_path / "enc.txt").write_text("not a folder")
    one_line_bad_input(lambda: distill(tmp_path / "run", config(dataset, enc_dir=tmp_path / "enc.txt")),
                       r"enc.txt: is a file, not an encode folder \(vidvpr encode --out\)")


def test_too_few_positives_or_negatives_for_the_triplet_loss_say_the_counts(dataset: Path, tmp_path: Path) -> None:
    one_line_bad_input(lambda: distill(tmp_path / "run", config(dataset, positive_radius_m=5, negative_radius_m=34,
                                                                  negatives=4)),
                       r"no training image has both a positive within 5 m and 4 negatives beyond 34 m: "
                       r"24 of 24 images have a positive, and images have at most 2 negatives")


def test_a_rerun_of_a_finished_run_trains_nothing_and_keeps_its_files(dataset: Path, tmp_path: Path,
                                                                       small_teacher: str) -> None:
    options = config(dataset, teacher=small_teacher, loss="mse")
    first = distill(tmp_path / "run", options)
    written = {p.name: p.read_bytes() for p in (first.student, first.sidecar, first.losses_csv)}
    again = distill(tmp_path / "run", options)  # the same command again, without --resume
    assert again.steps == again.resumed_from == first.steps and again.final_losses == first.final_losses
    assert {p.name: p.read_bytes() for p in (again.student, again.sidecar, again.losses_csv)} == written


def test_a_rerun_of_a_finished_run_with_other_options_is_refused(dataset: Path, tmp_path: Path,
                                                                 small_teacher: str) -> None:
    options = config(dataset, teacher=small_teacher, loss="mse")
    distill(tmp_path / "run", options)
    one_line_bad_input(lambda: distill(tmp_path / "run", replace(options, lr=1e-3)),
                       r"made with a different configuration \(lr was 0.0001, now 0.001\)")


def test_a_rerun_with_another_lq_names_that_option_not_every_video(dataset: Path, tmp_path: Path,
                                                                    small_teacher: str) -> None:
    """The refusal printed the whole training data record, every video's hash included."""
    options = config(dataset, teacher=small_teacher, loss="mse", max_steps=1)
    distill(tmp_path / "run", options)
    message = one_line_bad_input(lambda: distill(tmp_path / "run", replace(options, lq=(CELL, "jpeg:10"))),
                                 r"different configuration \(data.lq was \['64x36/qp40'\], "
                                 r"now \['64x36/qp40', 'jpeg:10'\]\)")
    assert "sha256" not in message


def test_eval_records_which_evaluated_videos_a_student_trained_on(dataset: Path, tmp_path: Path,
                                                                   small_teacher: str) -> None:
    """Evaluated on the manifest it trained on, a student's recall was printed, plotted and reported like a
    held-out result; eval now records, from the student's sidecar, which evaluated videos it trained on."""
    from vidvpr.evaluate.config import EvalConfig
    from vidvpr.evaluate.rerun import evaluate

    run = distill(tmp_path / "run", config(dataset, teacher=small_teacher, loss="mse", max_steps=1))
    models = (small_teacher, f"{MODEL}:{run.student}")
    result = evaluate(dataset, tmp_path / "eval", EvalConfig(models=models, enc_dir=dataset.parent / "enc",
                                                             backend="torch"))
    trained = {model["label"]: model["trained_on"] for model in result.models}
    videos = StudentRecord.load(run.sidecar).videos  # the clean database views and their 64x36/qp40 cells
    assert sorted(videos) == [f"{cell}/dbwalk/yaw{yaw:03d}_pitch+00" for cell in (CELL, "reference") for yaw in (0, 90)]
    # matched by content: this tiny dataset's query walk is the very same view videos as its database walk
    assert trained == {f"{MODEL}:small": None,
                       f"{MODEL}:student": sorted({*videos, *(name.replace("/dbwalk/", "/qwalk/") for name in videos)})}
    cli = CliRunner().invoke(main, ["eval", str(dataset), "--enc", str(dataset.parent / "enc"), "--out",
                                    str(tmp_path / "eval"), "--model", models[0], "--model", models[1]])
    assert cli.exit_code == 0, cli.output
    assert f"note: {MODEL}:student was trained on {2 * len(videos)} of the evaluated videos" in cli.output
    assert "not measured on held-out data" in cli.output


def test_a_student_whose_sidecar_describes_another_checkpoint_is_not_said_to_have_trained_on_anything(
        dataset: Path, tmp_path: Path, small_teacher: str) -> None:
    from vidvpr.evaluate.cells import reference_cell
    from vidvpr.evaluate.models import trained_on
    from vidvpr.dataset.manifest import load_manifest

    run = distill(tmp_path / "run", config(dataset, teacher=small_teacher, loss="mse", max_steps=1))
    cells = [reference_cell(load_manifest(dataset))]
    assert trained_on(run.student, cells)  # its reference database views
    shutil.copy(small_teacher.split(":", 1)[1], tmp_path / "other.pt")
    shutil.copy(run.sidecar, tmp_path / "other.json")  # a sidecar beside a checkpoint it does not describe
    assert trained_on(tmp_path / "other.pt", cells) is None
    assert trained_on(None, cells) is None


def test_a_resize_that_leaves_the_students_images_as_they_are_is_warned_of(dataset: Path, tmp_path: Path,
                                                                            small_teacher: str, caplog) -> None:
    """The README's `--lq resize:240p` on frames of 36 rows degraded nothing, silently."""
    options = config(dataset, teacher=small_teacher, loss="mse", max_steps=1)
    with caplog.at_level("WARNING", logger="vidvpr"):
        distill(tmp_path / "idle", replace(options, lq=(CELL, "resize:240p")))
    assert f"--lq resize:240p leaves the {CELL} images (64x36) as they are: resize never upscales" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="vidvpr"):
        distill(tmp_path / "shrunk", replace(options, lq=(CELL, "resize:24p")))
    assert "never upscales" not in caplog.text


def test_the_closing_hint_is_a_command_for_this_run(dataset: Path, tmp_path: Path) -> None:
    from vidvpr.cli.distill import evaluate_hint

    student = tmp_path / "run" / "student.pt"
    assert evaluate_hint(dataset, tmp_path / "enc", "netvlad-efficientnet-lite0:t.pt", student) == (
        f"vidvpr eval {dataset} --enc {tmp_path / 'enc'} --out {tmp_path / 'run' / 'eval'} "
        f"--model netvlad-efficientnet-lite0:t.pt --model netvlad-efficientnet-lite0:{student}")
    assert evaluate_hint(tmp_path, None, "m:w.pt", Path("s.pt")) == \
        "vidvpr eval MANIFEST --out eval --model m:w.pt --model m:s.pt"


def test_the_closing_hint_is_accepted_by_vidvpr_eval(dataset: Path, tmp_path: Path) -> None:
    """It named no --out, which `vidvpr eval` requires: copied as printed, it was refused."""
    import shlex

    from vidvpr.cli.distill import evaluate_hint
    from vidvpr.cli.evaluate import eval_command

    words = shlex.split(evaluate_hint(dataset, None, MODEL, tmp_path / "run" / "student.pt"))
    assert words[:2] == ["vidvpr", "eval"]
    context = eval_command.make_context("eval", words[2:])  # click's own check of every option
    assert context.params["out_dir"] == tmp_path / "run" / "eval"


def test_the_closing_hint_evaluates_the_grid_the_cells_came_from(dataset: Path, tmp_path: Path) -> None:
    """Without --enc, distill reads its cells from the manifest's sibling 'enc' and eval evaluates the
    reference views only: the hint names that folder."""
    from vidvpr.cli.distill import evaluate_hint

    assert f" --enc {dataset.parent / 'enc'} " in evaluate_hint(dataset, None, MODEL, tmp_path / "student.pt")


def test_the_closing_hint_names_the_teacher_the_student_started_from(dataset: Path, tmp_path: Path) -> None:
    """A teacher without weights is named by the NetVLAD fit of the run: named alone, eval fits NetVLAD
    again on whatever manifest it evaluates, another model on any other manifest than the training one."""
    from vidvpr.cli.distill import evaluate_hint

    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    fitted = run / "models" / f"{MODEL}-netvlad-init.pt"
    fitted.write_bytes(b"")
    assert f" --model {MODEL}:{fitted} --model {MODEL}:{run / 'student.pt'}" in \
        evaluate_hint(dataset, None, MODEL, run / "student.pt")


def test_resume_with_another_configuration_or_nothing_to_resume(dataset: Path, tmp_path: Path,
                                                                small_teacher: str) -> None:
    one_line_bad_input(lambda: distill(tmp_path / "run", config(dataset, resume=True)), "nothing to resume")
    options = config(dataset, teacher=small_teacher, loss="mse")
    distill(tmp_path / "run", options)
    (tmp_path / "run" / "student.json").unlink()  # an unfinished run: its student not written yet
    one_line_bad_input(lambda: distill(tmp_path / "run", options), "pass --resume")
    one_line_bad_input(lambda: distill(tmp_path / "run", replace(options, lr=1e-3, resume=True)),
                       r"made with a different configuration \(lr was 0.0001, now 0.001\)")
    from vidvpr.models.checkpoints import load_checkpoint

    state = load_checkpoint(tmp_path / "run" / "train_state.pt")
    for damage in ({"optimizer": None}, {"key": "[]"}, {"curve": 3}):
        torch.save({name: value for name, value in {**state, **damage}.items() if value is not None},
                   tmp_path / "run" / "train_state.pt")
        one_line_bad_input(lambda: distill(tmp_path / "run", replace(options, resume=True)), "damaged training state")


def test_the_command_line_is_one_line_and_exit_code_2_on_bad_input(dataset: Path, tmp_path: Path,
                                                                   small_teacher: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["distill", "--train", str(dataset), "--lq", "sharpen:2", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "Unknown degradation 'sharpen:2'" in result.output
    result = runner.invoke(main, ["distill", "--train", str(dataset), "--lq", CELL, "--out", str(tmp_path / "r"),
                                  "--loss", "mse", "--batch-size", "8", "--teacher", small_teacher, "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    assert '"steps": 3' in result.output and '"skipped": false' in result.output
    again = runner.invoke(main, ["distill", "--train", str(dataset), "--lq", CELL, "--out", str(tmp_path / "r"),
                                 "--loss", "mse", "--batch-size", "8", "--teacher", small_teacher, "--quiet", "--json"])
    assert again.exit_code == 0 and '"skipped": true' in again.output  # a finished run: nothing trained


def test_a_plain_pickle_as_teacher_is_one_line_on_stderr(dataset: Path, tmp_path: Path) -> None:
    import pickle
    import subprocess
    import sys

    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"state_dict": {}}, protocol=4))
    run = subprocess.run([sys.executable, "-m", "vidvpr", "distill", "--train", str(dataset), "--lq", CELL,
                          "--teacher", f"{MODEL}:{raw}", "--loss", "mse", "--out", str(tmp_path / "run"), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "raw.pkl: not a readable PyTorch checkpoint" in run.stderr


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_targets_inherited_on_a_runtime_match_torchs_and_are_cached_apart(backend: str, dataset: Path, tmp_path: Path,
                                                                           small_teacher: str) -> None:
    from tests.test_backends import cosines
    from vidvpr.descriptors.cache import DescriptorRecord
    from vidvpr.models.backends import installed

    if not installed(backend):
        pytest.skip(f"{backend} not installed")
    cache = tmp_path / "cache"
    options = config(dataset, teacher=small_teacher, loss="ickd,mse", cache_dir=cache)
    distill(tmp_path / "torch", replace(options, backend="torch"))
    on_runtime = distill(tmp_path / backend, replace(options, backend=backend))
    assert on_runtime.teacher_forwards["targets"] == 24  # computed again: torch's targets are not served
    arrays: dict[tuple[str, str], np.ndarray] = {}
    for sidecar in cache.glob("*/*.json"):
        record = DescriptorRecord.load(sidecar)
        arrays[(record.backend, record.model)] = np.load(sidecar.with_suffix(".npy")).astype(np.float32)
    assert sorted(arrays) == sorted((b, m) for b in ("torch", backend)
                                    for m in (MODEL, f"{MODEL} ickd correlations"))
    for what in (MODEL, f"{MODEL} ickd correlations"):
        assert cosines(arrays[(backend, what)], arrays[("torch", what)]).min() > 0.999
