"""Distillation losses against hand computations written with plain Python loops."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from vidvpr.core.errors import BadInput
from vidvpr.distill.losses import (
    LOSS_TERMS,
    DistillLoss,
    composite_loss,
    descriptor_mse_loss,
    ickd_loss,
    inter_channel_correlation,
    parse_loss_terms,
    select_positive,
    triplet_ranking_loss,
)

# --- hand computations, independent of the implementation ---------------------------------------------


def hand_correlation(z: torch.Tensor) -> list[list[list[float]]]:
    """Per sample: channels flattened and L2-normalised, Gram matrix, rows L2-normalised."""
    result = []
    for sample in z.tolist():
        rows = []
        for channel in sample:
            values = [v for line in channel for v in line]
            norm = math.sqrt(sum(v * v for v in values))
            rows.append([v / norm for v in values])
        gram = [[sum(a * b for a, b in zip(ri, rj)) for rj in rows] for ri in rows]
        result.append([[v / math.sqrt(sum(x * x for x in row)) for v in row] for row in gram])
    return result


def hand_ickd(student: torch.Tensor, teacher: torch.Tensor) -> float:
    total = 0.0
    for gs, gt in zip(hand_correlation(student), hand_correlation(teacher)):
        for row_s, row_t in zip(gs, gt):
            for a, b in zip(row_s, row_t):
                total += (a - b) ** 2
    return math.sqrt(total)


def hand_triplet(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, margin: float) -> float:
    per_query = []
    for q, p, ns in zip(query.tolist(), positive.tolist(), negatives.tolist()):
        d_qp = sum((a - b) ** 2 for a, b in zip(q, p))
        per_query.append(sum(max(0.0, margin + d_qp - sum((a - b) ** 2 for a, b in zip(q, n))) for n in ns))
    return sum(per_query) / len(per_query)


def hand_mse(student: torch.Tensor, teacher: torch.Tensor) -> float:
    pairs = [(a, b) for rs, rt in zip(student.tolist(), teacher.tolist()) for a, b in zip(rs, rt)]
    return sum((a - b) ** 2 for a, b in pairs) / len(pairs)


@pytest.fixture()
def tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)
    return {
        "student_z": normal(2, 3, 2, 3),  # the student sees a smaller frame
        "teacher_z": normal(2, 3, 4, 5),
        "student_v": normal(2, 4),
        "teacher_v": normal(2, 4),
        "positive_v": normal(2, 4),
        "negatives_v": normal(2, 3, 4),
    }


# --- ICKD -----------------------------------------------------------------------------------------------


def test_correlation_matches_the_hand_computation(tensors) -> None:
    z = tensors["teacher_z"]
    correlation = inter_channel_correlation(z)
    assert correlation.shape == (2, 3, 3)
    for b, matrix in enumerate(hand_correlation(z)):
        for i, row in enumerate(matrix):
            assert correlation[b, i].tolist() == pytest.approx(row, rel=1e-12)


def test_ickd_closed_form_with_different_spatial_sizes() -> None:
    # student (1×2): orthogonal channels -> G = I; teacher (2×2): identical channels -> every entry 1/√2
    student = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]], dtype=torch.float64)
    teacher = torch.tensor([[[[3.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
    assert ickd_loss(student, teacher).item() == pytest.approx(math.sqrt(4 - 2 * math.sqrt(2)), rel=1e-12)


def test_ickd_matches_the_hand_computation_with_different_spatial_sizes(tensors) -> None:
    loss = ickd_loss(tensors["student_z"], tensors["teacher_z"])
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(hand_ickd(tensors["student_z"], tensors["teacher_z"]), rel=1e-12)


def test_ickd_is_a_frobenius_norm_not_squared_nor_averaged(tensors) -> None:
    # doubling the batch with a copy multiplies the sum of squares by 2, hence the norm by √2
    student, teacher = tensors["student_z"], tensors["teacher_z"]
    single = ickd_loss(student, teacher)
    doubled = ickd_loss(torch.cat([student, student]), torch.cat([teacher, teacher]))
    assert doubled.item() == pytest.approx(math.sqrt(2) * single.item(), rel=1e-12)


def test_ickd_of_identical_inputs_is_zero_with_a_finite_gradient(tensors) -> None:
    z = tensors["teacher_z"].clone().requires_grad_(True)
    loss = ickd_loss(z, tensors["teacher_z"])
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(z.grad).all()


def test_ickd_is_scale_invariant_per_channel(tensors) -> None:
    z = tensors["student_z"]
    scaled = z * torch.tensor([1.0, 5.0, 0.1], dtype=z.dtype).view(1, 3, 1, 1)
    assert ickd_loss(scaled, z).item() == pytest.approx(0.0, abs=1e-7)


def test_ickd_needs_matching_channels_and_batch() -> None:
    with pytest.raises(ValueError, match="channel"):
        ickd_loss(torch.ones(2, 3, 4, 4), torch.ones(2, 4, 4, 4))
    with pytest.raises(ValueError, match="batch"):
        ickd_loss(torch.ones(2, 3, 4, 4), torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match="B, C, h, w"):
        inter_channel_correlation(torch.ones(3, 4, 4))


# --- MSE and triplet ---------------------------------------------------------------------------------


def test_mse_matches_the_hand_computation(tensors) -> None:
    loss = descriptor_mse_loss(tensors["student_v"], tensors["teacher_v"])
    assert loss.item() == pytest.approx(hand_mse(tensors["student_v"], tensors["teacher_v"]), rel=1e-12)
    assert descriptor_mse_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])).item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="shape"):
        descriptor_mse_loss(torch.ones(2, 4), torch.ones(2, 3))


def test_triplet_with_a_known_violation_and_a_satisfied_query() -> None:
    query = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 0.1]])  # d² = 1 and 0.01
    negatives = torch.tensor([
        [[2.0, 0.0], [0.5, 0.5]],  # d² = 4 (satisfied), 0.5 (violated by 0.1 + 1 − 0.5 = 0.6)
        [[1.0, 0.0], [0.0, -1.0]],  # d² = 1, 1: both satisfied
    ])
    loss = triplet_ranking_loss(query, positive, negatives, margin=0.1)
    assert loss.item() == pytest.approx(0.6 / 2)  # mean over queries of the per-query sums
    satisfied = triplet_ranking_loss(query[1:], positive[1:], negatives[1:], margin=0.1)
    assert satisfied.item() == 0.0


def test_triplet_matches_the_hand_computation(tensors) -> None:
    args = tensors["student_v"], tensors["positive_v"], tensors["negatives_v"]
    for margin in (0.0, 0.1, 2.0):
        expected = hand_triplet(*args, margin)
        assert triplet_ranking_loss(*args, margin=margin).item() == pytest.approx(expected, rel=1e-12)


def test_triplet_rejects_bad_shapes_and_margins() -> None:
    with pytest.raises(ValueError, match="negatives"):
        triplet_ranking_loss(torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4))
    with pytest.raises(BadInput, match="margin"):
        triplet_ranking_loss(torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 3, 4), margin=-0.1)


def test_select_positive_picks_the_nearest_descriptor() -> None:
    query = torch.tensor([0.0, 0.0])
    candidates = torch.tensor([[3.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    assert select_positive(query, candidates) == 1  # tie between 1 and 2: the lower index
    assert select_positive(torch.tensor([2.9, 0.0]), candidates) == 0
    with pytest.raises(ValueError, match="no positive candidates"):
        select_positive(query, torch.ones(0, 2))


# --- composite -----------------------------------------------------------------------------------------


COMBINATIONS = [frozenset(c) for r in (1, 2, 3) for c in itertools.combinations(LOSS_TERMS, r)]


@pytest.mark.parametrize("terms", COMBINATIONS, ids=lambda t: "+".join(sorted(t)))
def test_composite_weights_each_chosen_term(terms: frozenset[str], tensors) -> None:
    total, parts = composite_loss(terms, lambda_ickd=0.5, lambda_mse=3.0, margin=0.2, **tensors)
    expected_parts = {
        "ickd": hand_ickd(tensors["student_z"], tensors["teacher_z"]),
        "mse": hand_mse(tensors["student_v"], tensors["teacher_v"]),
        "triplet": hand_triplet(tensors["student_v"], tensors["positive_v"], tensors["negatives_v"], 0.2),
    }
    weights = {"ickd": 0.5, "mse": 3.0, "triplet": 1.0}
    assert set(parts) == terms
    for name in terms:
        assert parts[name].item() == pytest.approx(expected_parts[name], rel=1e-12)  # unweighted
        assert not parts[name].requires_grad
    assert total.item() == pytest.approx(sum(weights[n] * expected_parts[n] for n in terms), rel=1e-12)


def test_composite_needs_only_the_inputs_of_its_terms(tensors) -> None:
    _, parts = composite_loss({"mse"}, student_v=tensors["student_v"], teacher_v=tensors["teacher_v"])
    assert set(parts) == {"mse"}
    with pytest.raises(ValueError, match="'triplet' needs positive_v, negatives_v"):
        composite_loss({"triplet"}, student_v=tensors["student_v"])
    with pytest.raises(BadInput, match="lambda_mse"):
        composite_loss({"mse"}, lambda_mse=-1.0, **tensors)


def test_distill_loss_object_matches_composite_loss(tensors) -> None:
    loss = DistillLoss.from_string("ickd,triplet", lambda_ickd=2.0, margin=0.3)
    assert loss.terms == frozenset({"ickd", "triplet"})
    total, parts = loss(**tensors)
    assert set(parts) == {"ickd", "triplet"}
    expected, _ = composite_loss({"ickd", "triplet"}, lambda_ickd=2.0, margin=0.3, **tensors)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    assert DistillLoss().terms == frozenset(LOSS_TERMS)
    with pytest.raises(BadInput, match="margin"):
        DistillLoss(margin=float("nan"))


def test_parse_loss_terms() -> None:
    assert parse_loss_terms("ickd,mse,triplet") == frozenset({"ickd", "mse", "triplet"})
    assert parse_loss_terms(" MSE , ickd") == frozenset({"ickd", "mse"})
    with pytest.raises(BadInput, match="Unknown loss term 'kd'"):
        parse_loss_terms("ickd,kd")
    with pytest.raises(BadInput, match="no loss term"):
        parse_loss_terms(" , ")
    with pytest.raises(BadInput, match="no loss term"):
        composite_loss(set())


@pytest.mark.parametrize("text", ["ickd,,mse", "mse,", ",triplet"])
def test_an_empty_loss_term_among_others_is_refused_as_a_typo(text: str) -> None:
    # 'ickd,,mse' trained ICKD + MSE without a word, where `vidvpr eval --seq-len 5,,10` is refused
    with pytest.raises(BadInput, match=r"--loss has an empty item in '.*' \(two commas in a row, or one at an end\)"):
        parse_loss_terms(text)


# --- gradients ---------------------------------------------------------------------------------------


def test_gradients_reach_the_student_only(tensors) -> None:
    student_z = tensors["student_z"].clone().requires_grad_(True)
    student_v = tensors["student_v"].clone().requires_grad_(True)
    teacher_z, teacher_v = tensors["teacher_z"], tensors["teacher_v"]  # requires_grad False, like a frozen teacher
    negatives = torch.zeros_like(tensors["negatives_v"])  # near the query, so the triplet is active
    total, _ = composite_loss(
        LOSS_TERMS, student_z=student_z, teacher_z=teacher_z, student_v=student_v, teacher_v=teacher_v,
        positive_v=tensors["positive_v"], negatives_v=negatives,
    )
    total.backward()
    for tensor in (student_z, student_v):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    assert teacher_z.grad is None and teacher_v.grad is None


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_each_loss_alone_backpropagates_to_the_student(term: str, tensors) -> None:
    student = tensors["student_z" if term == "ickd" else "student_v"].clone().requires_grad_(True)
    inputs = dict(tensors, **{"student_z" if term == "ickd" else "student_v": student})
    inputs["negatives_v"] = torch.zeros_like(tensors["negatives_v"])
    total, _ = composite_loss({term}, **inputs)
    total.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_losses_do_not_detach_a_teacher_that_requires_grad(tensors) -> None:
    teacher = tensors["teacher_z"].clone().requires_grad_(True)
    ickd_loss(tensors["student_z"], teacher).backward()
    assert teacher.grad is not None  # freezing the teacher is the caller's job (torch.no_grad)
