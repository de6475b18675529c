"""Recall@N counted as the VPR benchmarks count it, and faiss search with deterministic ties."""

from __future__ import annotations

import re

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidvpr.core.errors import BadInput
from vidvpr.evaluate.recall import (
    filter_positives_by_distance,
    first_positive_rank,
    recall_at_n,
    recall_by_group,
)
from vidvpr.evaluate.index_memory import new_index
from vidvpr.evaluate.search import _sort_rows, build_index, empty_index, search, training_vectors_needed


def _arrays(*lists: list[int]) -> list[np.ndarray]:
    return [np.array(values, dtype=np.int64) for values in lists]


# --- recall@N on hand-built rankings ---------------------------------------------------------------


def test_recall_counts_any_positive_within_the_first_n() -> None:
    predictions = np.array([
        [3, 1, 2, 0, 4],   # first positive (1) at rank 2
        [7, 8, 9, 5, 6],   # first positive (5) at rank 4
        [0, 1, 2, 3, 4],   # positive 9 never retrieved
        [2, 2, 2, 2, 2],   # positive at rank 1
    ], dtype=np.int64)
    positives = _arrays([1, 4], [5], [9], [2, 100])
    result = recall_at_n(predictions, positives, ns=(1, 2, 5))
    assert result.queries == 4 and result.excluded == 0
    assert result.recall == {1: 0.25, 2: 0.5, 5: 0.75}
    assert result.percent == {1: 25.0, 2: 50.0, 5: 75.0}
    assert result.correct_at.tolist() == [2, 4, 0, 1]


def test_queries_without_positives_are_excluded_from_the_denominator() -> None:
    predictions = np.array([[0, 1], [1, 0], [0, 1]], dtype=np.int64)
    positives = _arrays([0], [], [1])
    result = recall_at_n(predictions, positives, ns=(1, 2))
    assert result.queries == 2 and result.excluded == 1
    assert result.recall == {1: 0.5, 2: 1.0}
    assert result.correct_at.tolist() == [1, 2]  # only the counted queries


def test_queries_without_positives_count_as_misses_under_the_miss_convention() -> None:
    # pytorch-NetVlad, VPR-methods-evaluation, LoQI-VPR: divided by every query
    predictions = np.array([[0, 1], [1, 0], [0, 1]], dtype=np.int64)
    positives = _arrays([0], [], [1])
    result = recall_at_n(predictions, positives, ns=(1, 2), unmatched="miss")
    assert (result.queries, result.excluded, result.unmatched) == (3, 0, 1)
    assert result.recall == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}
    assert result.correct_at.tolist() == [1, 0, 2]
    excluded = recall_at_n(predictions, positives, ns=(1, 2), unmatched="exclude")
    assert (excluded.queries, excluded.excluded, excluded.unmatched) == (2, 1, 1)


def test_under_miss_a_ranking_of_queries_all_without_positives_has_recall_zero() -> None:
    result = recall_at_n(np.zeros((2, 5), dtype=np.int64), _arrays([], []), ns=(1, 5), unmatched="miss")
    assert result.recall == {1: 0.0, 5: 0.0} and result.queries == 2


def test_an_unknown_convention_for_unmatched_queries_is_a_user_error() -> None:
    with pytest.raises(BadInput, match="Unknown convention for queries without positives 'drop'. Use exclude or miss"):
        recall_at_n(np.zeros((1, 5), dtype=np.int64), _arrays([0]), ns=(1,), unmatched="drop")


def test_ns_are_deduplicated_and_sorted() -> None:
    result = recall_at_n(np.array([[0, 1, 2]]), _arrays([2]), ns=(3, 1, 3))
    assert list(result.recall) == [1, 3] and result.recall == {1: 0.0, 3: 1.0}


def test_unfilled_faiss_slots_never_match() -> None:
    # -1 is faiss's "no result"; a (nonsensical) -1 positive must not match it either
    assert first_positive_rank(np.array([[-1, -1], [4, -1]]), _arrays([0], [4])).tolist() == [0, 1]


def test_n_larger_than_k_is_a_user_error() -> None:
    with pytest.raises(BadInput, match="recall@20 needs at least 20 predictions per query, got K=10"):
        recall_at_n(np.zeros((3, 10), dtype=np.int64), _arrays([0], [1], [2]))


def test_all_queries_without_positives_is_a_user_error() -> None:
    with pytest.raises(BadInput, match="no query has a positive"):
        recall_at_n(np.zeros((2, 5), dtype=np.int64), _arrays([], []), ns=(1,))


@pytest.mark.parametrize("ns", [(), (0,), (1, -5), (1.5,), (True,)])
def test_bad_ns_are_user_errors(ns: tuple) -> None:
    with pytest.raises(BadInput, match="recall N"):
        recall_at_n(np.zeros((1, 5), dtype=np.int64), _arrays([0]), ns=ns)


def test_mismatched_query_counts_are_user_errors() -> None:
    with pytest.raises(BadInput, match="2 queries but positives cover 1"):
        recall_at_n(np.zeros((2, 5), dtype=np.int64), _arrays([0]), ns=(1,))
    with pytest.raises(BadInput, match="integer"):
        recall_at_n(np.zeros((1, 5), dtype=np.float32), _arrays([0]), ns=(1,))


def test_recall_by_group_splits_the_counted_queries() -> None:
    predictions = np.array([[0, 1], [1, 0], [5, 6], [6, 5], [7, 8]], dtype=np.int64)
    positives = _arrays([0], [0], [6], [], [8])
    groups = ["yaw000", "yaw000", "yaw090", "yaw090", "yaw180"]
    by_group = recall_by_group(predictions, positives, groups, ns=(1, 2))
    assert list(by_group) == ["yaw000", "yaw090", "yaw180"]
    assert by_group["yaw000"].recall == {1: 0.5, 2: 1.0} and by_group["yaw000"].queries == 2
    assert by_group["yaw090"].recall == {1: 0.0, 2: 1.0}
    assert (by_group["yaw090"].queries, by_group["yaw090"].excluded) == (1, 1)
    assert by_group["yaw180"].correct_at.tolist() == [2]
    overall = recall_at_n(predictions, positives, ns=(1, 2))
    assert sum(r.queries for r in by_group.values()) == overall.queries
    assert sum(r.recall[1] * r.queries for r in by_group.values()) == pytest.approx(overall.recall[1] * overall.queries)


def test_recall_by_group_under_miss_counts_every_query_of_each_group() -> None:
    predictions = np.array([[0, 1], [1, 0], [5, 6], [6, 5]], dtype=np.int64)
    positives = _arrays([0], [0], [6], [])
    by_group = recall_by_group(predictions, positives, ["a", "a", "b", "b"], ns=(1, 2), unmatched="miss")
    assert by_group["b"].recall == {1: 0.0, 2: 0.5} and by_group["b"].queries == 2
    assert recall_by_group(predictions, _arrays([0], [0], [], []), ["a", "a", "b", "b"], ns=(1,),
                           unmatched="miss")["b"].recall == {1: 0.0}


def test_recall_by_group_rejects_a_group_without_positives_and_mismatched_groups() -> None:
    predictions = np.array([[0, 1], [1, 0]], dtype=np.int64)
    with pytest.raises(BadInput, match="no query in group 'b' has a positive"):
        recall_by_group(predictions, _arrays([0], []), ["a", "b"], ns=(1,))
    with pytest.raises(BadInput, match="groups cover 1"):
        recall_by_group(predictions, _arrays([0], [1]), ["a"], ns=(1,))


def test_filter_positives_by_distance_keeps_those_within_the_threshold() -> None:
    database_xy = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0], [0.0, 30.0]])
    query_xy = np.array([[0.0, 0.0], [10.0, 0.0], [100.0, 100.0]])
    positives = _arrays([3, 1, 0, 2], [2, 0], [])
    filtered = filter_positives_by_distance(positives, query_xy, database_xy, threshold_m=5.0)
    assert [p.tolist() for p in filtered] == [[1, 0], [2], []]  # 5 m is inclusive; order kept
    assert all(p.dtype == np.int64 for p in filtered)
    widest = filter_positives_by_distance(positives, query_xy, database_xy, threshold_m=30.0)
    assert [p.tolist() for p in widest] == [[3, 1, 0, 2], [2, 0], []]


@pytest.mark.parametrize("threshold_m", [0.0, -1.0, float("nan"), float("inf"), "5"])
def test_bad_distance_threshold_is_a_user_error(threshold_m: object) -> None:
    with pytest.raises(BadInput, match="distance threshold"):
        filter_positives_by_distance(_arrays([0]), np.zeros((1, 2)), np.zeros((1, 2)), threshold_m)  # type: ignore


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_recall_is_monotone_in_n_and_matches_a_brute_force_count(data: st.DataObject) -> None:
    database_size = data.draw(st.integers(1, 12), label="N")
    k = data.draw(st.integers(1, 8), label="K")
    queries = data.draw(st.integers(1, 10), label="M")
    index = st.integers(0, database_size - 1)
    predictions = np.array(
        data.draw(st.lists(st.lists(index, min_size=k, max_size=k), min_size=queries, max_size=queries)),
        dtype=np.int64,
    ).reshape(queries, k)
    positives = [np.array(sorted(p), dtype=np.int64)
                 for p in data.draw(st.lists(st.sets(index, max_size=4), min_size=queries, max_size=queries))]
    ns = data.draw(st.lists(st.integers(1, k), min_size=1, max_size=5), label="ns")

    counted = [q for q in range(queries) if len(positives[q]) > 0]
    if not counted:
        with pytest.raises(BadInput):
            recall_at_n(predictions, positives, ns)
        return
    result = recall_at_n(predictions, positives, ns)
    assert result.queries == len(counted) and result.excluded == queries - len(counted)
    for n in sorted(set(ns)):
        correct = 0
        for q in counted:
            for rank in range(n):
                if int(predictions[q, rank]) in {int(p) for p in positives[q]}:
                    correct += 1
                    break
        assert result.recall[n] == pytest.approx(correct / len(counted))
    values = [result.recall[n] for n in sorted(result.recall)]
    assert values == sorted(values)
    all_ns = recall_at_n(predictions, positives, range(1, k + 1)).recall
    assert [all_ns[n] for n in range(1, k + 1)] == sorted(all_ns.values())


# --- faiss search -----------------------------------------------------------------------------------


def _brute_force(database: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    squared = ((queries[:, None, :].astype(np.float64) - database[None, :, :]) ** 2).sum(axis=2)
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(squared, order, axis=1), order


@pytest.fixture(scope="module")
def descriptors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=(40, 16)).astype(np.float32)


def test_exact_index_returns_the_true_nearest_neighbours(descriptors) -> None:
    database, queries = descriptors
    distances, indices = search(build_index(database), queries, k=10, batch=7)
    true_distances, true_indices = _brute_force(database, queries, 10)
    assert distances.dtype == np.float32 and indices.dtype == np.int64
    assert distances.shape == indices.shape == (40, 10)
    np.testing.assert_array_equal(indices, true_indices)
    np.testing.assert_allclose(distances, true_distances, rtol=1e-4, atol=1e-4)


def test_k_is_clipped_to_the_database_size(descriptors) -> None:
    database, queries = descriptors
    distances, indices = search(build_index(database[:5]), queries[:3], k=20)
    assert indices.shape == (3, 5) and sorted(indices[0].tolist()) == [0, 1, 2, 3, 4]
    assert np.all(np.diff(distances, axis=1) >= 0)


@pytest.mark.parametrize("queries_count", [3, 64])  # faiss scans per query below 20 queries, uses BLAS above
def test_identical_descriptors_tie_break_by_database_index(queries_count: int) -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(4, 8)).astype(np.float32)
    # database rows 2, 5, 9, 11 and 14 are the same vector; everything else is far away
    database = 50.0 + rng.normal(size=(16, 8)).astype(np.float32)
    database[[14, 5, 11, 2, 9]] = base[0]
    queries = np.repeat(base[:1] + 0.01, queries_count, axis=0)
    for _ in range(3):
        distances, indices = search(build_index(database), queries, k=3)
        assert (indices == np.array([2, 5, 9])).all()
        assert (distances == distances[:, :1]).all()
    # the whole tie group, then the rest by distance
    _, indices = search(build_index(database), queries, k=7)
    assert indices[0, :5].tolist() == [2, 5, 9, 11, 14]


def test_rows_are_reordered_by_distance_then_index_with_unfilled_slots_last() -> None:
    # what faiss may hand back for equal distances (and -1 where an approximate index found nothing)
    distances = np.array([[1.0, 0.5, 0.5, 0.5, 3.4e38], [2.0, 2.0, 2.0, 3.4e38, 3.4e38]], dtype=np.float32)
    indices = np.array([[4, 9, 1, 6, -1], [8, 3, 5, -1, -1]], dtype=np.int64)
    sorted_distances, sorted_indices = _sort_rows(distances, indices)
    assert sorted_indices.tolist() == [[1, 6, 9, 4, -1], [3, 5, 8, -1, -1]]
    assert sorted_distances.tolist()[0][:4] == [0.5, 0.5, 0.5, 1.0]


def test_ties_make_recall_deterministic() -> None:
    database = np.zeros((6, 4), dtype=np.float32)  # all identical: the ranking is 0, 1, 2, ...
    _, indices = search(build_index(database), np.ones((2, 4), dtype=np.float32), k=3)
    assert indices.tolist() == [[0, 1, 2], [0, 1, 2]]
    result = recall_at_n(indices, _arrays([2], [5]), ns=(1, 3))
    assert result.recall == {1: 0.0, 3: 0.5} and result.correct_at.tolist() == [3, 0]


def test_ivf_factory_index_with_every_list_probed_agrees_with_exact(descriptors) -> None:
    database, queries = descriptors
    index = build_index(database, "IVF4,Flat", train_sample=200, seed=1)
    assert index.is_trained and index.ntotal == len(database)
    faiss.ParameterSpace().set_index_parameter(index, "nprobe", 4)
    distances, indices = search(index, queries, k=5)
    exact_distances, exact_indices = search(build_index(database), queries, k=5)
    np.testing.assert_array_equal(indices, exact_indices)
    np.testing.assert_allclose(distances, exact_distances, rtol=1e-4, atol=1e-4)


def test_factory_index_without_training_is_filled(descriptors) -> None:
    database, queries = descriptors
    index = build_index(database, "HNSW8")
    assert index.ntotal == len(database)
    _, indices = search(index, queries[:1], k=1)
    assert 0 <= indices[0, 0] < len(database)


def test_bad_factory_string_is_a_one_line_user_error(descriptors) -> None:
    database, _ = descriptors
    with pytest.raises(BadInput, match="'NotAnIndex'.*could not parse") as caught:
        build_index(database, "NotAnIndex")
    assert "\n" not in str(caught.value) and ".cpp" not in str(caught.value)
    with pytest.raises(BadInput, match="'PQ5'"):
        build_index(database, "PQ5")  # 16 is not a multiple of 5


def test_too_few_training_vectors_is_a_user_error(descriptors) -> None:
    database, _ = descriptors
    with pytest.raises(BadInput, match="cannot train.*IVF64"):
        build_index(database, "IVF64,Flat", train_sample=10)


@pytest.mark.parametrize(("factory", "needed"), [("IVF64,Flat", 64), ("IVF16,PQ8", 256), ("PQ8", 256),
                                                 ("OPQ8,IVF16,PQ8", 256), ("IVF16,SQ8", 16)])
def test_an_index_with_more_centroids_than_database_rows_is_refused_before_training(factory: str, needed: int) -> None:
    assert training_vectors_needed(new_index(64, factory)) == needed
    empty_index(factory, needed, 64)
    with pytest.raises(BadInput, match=rf"'{re.escape(factory)}' needs at least {needed} training vectors .* has "
                                       rf"{needed - 1}"):
        empty_index(factory, needed - 1, 64)
    assert training_vectors_needed(new_index(64, "HNSW32")) == 0 and training_vectors_needed(new_index(64, None)) == 0


def test_empty_or_malformed_inputs_are_user_errors(descriptors) -> None:
    database, queries = descriptors
    with pytest.raises(BadInput, match="database is empty"):
        build_index(np.zeros((0, 16), dtype=np.float32))
    with pytest.raises(BadInput, match="2-D"):
        build_index(np.zeros(16, dtype=np.float32))
    index = build_index(database)
    with pytest.raises(BadInput, match="dimension 8 but the index has 16"):
        search(index, queries[:, :8], k=1)
    with pytest.raises(BadInput, match="k must be a positive integer"):
        search(index, queries, k=0)
