"""Sequence matching as pure functions: the whole-matrix scores against a brute force written from
the definition, the blocked and restricted searches against the whole matrix, the line shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidvpr.core.errors import BadInput
from vidvpr.evaluate.sequence import (
    SequenceSettings,
    _line_scores,
    _line_scores_tiled,
    full_search,
    full_search_lengths,
    line_fits,
    line_shapes,
    normalise_runs,
    query_sequences,
    sequence_scores,
    squared_distances,
    time_runs,
)
from vidvpr.evaluate.sequence_coarse import coarse_lines, sketch
from vidvpr.evaluate.sequence_restricted import restricted_search


def brute_force(distances: np.ndarray, query_runs: list[np.ndarray], database_runs: list[np.ndarray],
                settings: SequenceSettings) -> tuple[np.ndarray, np.ndarray]:
    """The definition, one line at a time: (best score, its velocity) per query row and database row
    (the velocity nearest 1 among those drawing the same line)."""
    length, (low, high) = settings.length, settings.velocity
    slopes = {low, high, 1.0} | {1 + m / (length - 1) for m in range(-length * 4, length * 4) if length > 1}
    velocities = sorted((v for v in slopes if low - 1e-12 <= v <= high + 1e-12), key=lambda v: (abs(v - 1), v))
    shapes = {}
    for v in velocities:
        shapes.setdefault(tuple(math.floor(v * k + 0.5) for k in range(length)), v)
    velocities = sorted(shapes.values())
    directions = [1, -1] if settings.reverse else [1]
    values = np.asarray(distances, dtype=np.float64)
    best = np.full(distances.shape, np.inf)
    speed = np.zeros(distances.shape)
    for run in query_runs:
        for p, query in enumerate(run):
            frames = [run[p - k] for k in range(min(length, p + 1))]
            for db_run in database_runs:
                for e, end in enumerate(db_run):
                    for direction in directions:
                        for v in velocities:
                            at = [e - direction * math.floor(v * k + 0.5) for k in range(len(frames))]
                            if not all(0 <= a < len(db_run) for a in at):
                                continue  # a line must lie wholly inside the database run
                            score = float(np.mean([values[frames[k], db_run[a]] for k, a in enumerate(at)]))
                            if score < best[query, end] - 1e-9:
                                best[query, end], speed[query, end] = score, direction * v
    return best, speed


def _normalise_reference(distances: np.ndarray, database_runs: list[np.ndarray], window: int) -> np.ndarray:
    out = np.asarray(distances, dtype=np.float64).copy()
    half = window // 2
    for run in database_runs:
        for p, column in enumerate(run):
            neighbours = run[max(0, p - half):p + half + 1]
            block = distances[:, neighbours]
            mean = block.mean(1)
            std = block.std(1, ddof=1) if len(neighbours) > 1 else np.zeros(len(block))
            flat = std <= 1e-6 * (np.abs(mean) + 1e-6)
            out[:, column] = np.where(flat, 0.0, (distances[:, column] - mean) / np.where(flat, 1.0, std))
    return out


def _reference(distances, query_runs, database_runs, settings):
    if settings.normalise:
        distances = _normalise_reference(distances, database_runs, settings.window)
        settings = SequenceSettings(settings.length, settings.velocity, settings.reverse, False)
    return brute_force(distances, query_runs, database_runs, settings)


TINY_RUNS = dict(query_runs=[np.array([4, 0, 2]), np.array([1, 3])],  # rows out of order on purpose
                 database_runs=[np.array([5, 0, 1, 2]), np.array([4, 3, 6])])


@pytest.mark.parametrize("settings_", [
    SequenceSettings(1), SequenceSettings(2), SequenceSettings(3, (0.5, 1.5)), SequenceSettings(3, reverse=True),
    SequenceSettings(3, (1.0, 2.0), normalise=True, window=2), SequenceSettings(5, (0.8, 1.25), reverse=True),
])
def test_whole_matrix_scores_match_the_definition_line_by_line(settings_: SequenceSettings) -> None:
    rng = np.random.default_rng(settings_.length)
    distances = rng.random((5, 7))
    scores, velocities = sequence_scores(distances, settings=settings_, **TINY_RUNS)
    expected, expected_velocity = _reference(distances, settings=settings_, **TINY_RUNS)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(velocities, expected_velocity)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 6), reverse=st.booleans(), normalise=st.booleans(),
       low=st.sampled_from([0.5, 0.8, 1.0]), high=st.sampled_from([1.0, 1.25, 2.0]))
def test_whole_matrix_scores_match_the_definition_on_random_runs(seed, length, reverse, normalise, low, high) -> None:
    rng = np.random.default_rng(seed)
    queries, database = int(rng.integers(1, 7)), int(rng.integers(1, 9))
    query_runs = [r for r in np.array_split(rng.permutation(queries), int(rng.integers(1, 3))) if len(r)]
    database_runs = [r for r in np.array_split(rng.permutation(database), int(rng.integers(1, 3))) if len(r)]
    distances = rng.random((queries, database)).round(2)  # ties happen
    setting = SequenceSettings(length, (low, high), reverse, normalise, window=4)
    scores, _ = sequence_scores(distances, query_runs, database_runs, setting)
    expected, _ = _reference(distances, query_runs, database_runs, setting)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_a_sequence_of_one_frame_is_the_single_frame_distance() -> None:
    distances = np.random.default_rng(0).random((4, 6))
    scores, velocities = sequence_scores(distances, [np.arange(4)], [np.arange(6)], SequenceSettings(1))
    np.testing.assert_allclose(scores, distances, rtol=1e-6)
    assert (velocities == 1.0).all()


def test_a_query_sequence_is_its_frame_and_the_frames_before_it_in_its_run_shorter_at_the_start() -> None:
    sequences = query_sequences([np.array([2, 0, 4]), np.array([3, 1])], 5, 3)
    assert sequences.tolist() == [[0, 2, -1], [1, 3, -1], [2, -1, -1], [3, -1, -1], [4, 0, 2]]


def test_runs_group_rows_by_recording_and_view_in_frame_order() -> None:
    keys = [("a", "front"), ("b", "front"), ("a", "front"), ("a", "back")]
    assert [r.tolist() for r in time_runs(keys, [5, 1, 2, 0])] == [[2, 0], [1], [3]]


def test_lines_are_every_slope_whose_start_moves_by_a_whole_frame() -> None:
    lines = line_shapes(SequenceSettings(5, (0.8, 1.25)))
    assert lines.velocities.tolist() == [0.8, 1.0, 1.25]
    assert lines.offsets.tolist() == [[0, 1, 2, 2, 3], [0, 1, 2, 3, 4], [0, 1, 3, 4, 5]]
    both = line_shapes(SequenceSettings(3, (1.0, 1.0), reverse=True))
    assert both.velocities.tolist() == [1.0, -1.0] and both.offsets.tolist() == [[0, 1, 2], [0, -1, -2]]


def test_a_route_driven_backwards_at_twice_the_speed_is_found_only_with_that_velocity_and_direction() -> None:
    rng = np.random.default_rng(2)
    database = rng.normal(size=(40, 8)).astype(np.float32)
    truth = np.arange(30, 10, -2)  # query frame i was taken at database frame 30 - 2i
    queries = database[truth] + 0.8 * rng.normal(size=(len(truth), 8)).astype(np.float32)
    distances = squared_distances(queries, database)
    runs_q, runs_d = [np.arange(len(truth))], [np.arange(40)]
    assert (distances.argmin(1) == truth).mean() <= 0.6  # single frames often fail
    scores, velocities = sequence_scores(distances, runs_q, runs_d, SequenceSettings(6, (1.5, 2.0), reverse=True))
    assert (scores.argmin(1)[5:] == truth[5:]).all()
    assert set(velocities[np.arange(5, 10), truth[5:]]) == {-2.0}
    forward_only, _ = sequence_scores(distances, runs_q, runs_d, SequenceSettings(6, (1.5, 2.0)))
    assert not (forward_only.argmin(1)[5:] == truth[5:]).any()


@pytest.mark.parametrize("settings_", [SequenceSettings(4),
                                       SequenceSettings(4, reverse=True, normalise=True, window=4)])
def test_the_blocked_search_ranks_what_the_whole_matrix_scores(settings_: SequenceSettings) -> None:
    rng = np.random.default_rng(2)
    queries, database = rng.normal(size=(9, 6)).astype(np.float32), rng.normal(size=(11, 6)).astype(np.float16)
    query_runs, database_runs = [np.array([0, 1, 2, 3, 4]), np.array([8, 7, 6, 5])], [np.arange(6), np.arange(6, 11)]
    scores, velocities = sequence_scores(squared_distances(queries, database), query_runs, database_runs, settings_)
    found = full_search(queries, [database[:4], database[4:]], query_runs, database_runs, settings_, k=5,
                        block_bytes=1)  # float16 parts as the descriptor cache holds them; one query per block
    for q in range(9):
        order = np.lexsort((np.arange(11), scores[q]))[:5]
        assert found.indices[q].tolist() == order.tolist()
        np.testing.assert_allclose(found.distances[q], scores[q, order], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(found.velocities[q], velocities[q, order])
    assert found.frames.tolist() == [1, 2, 3, 4, 4, 4, 3, 2, 1]


@pytest.mark.parametrize("block_bytes", [1, 4 * 11 * 6 * 3, 1 << 20])  # 1 query, 3 queries, all per block
@pytest.mark.parametrize("normalise", [False, True])
def test_one_pass_over_the_distances_scores_every_length_as_its_own_search(block_bytes: int, normalise: bool) -> None:
    rng = np.random.default_rng(5)
    queries, database = rng.normal(size=(13, 6)).astype(np.float32), rng.normal(size=(11, 6)).astype(np.float32)
    query_runs, database_runs = [np.arange(8), np.array([12, 11, 10, 9, 8])], [np.arange(6), np.arange(6, 11)]
    settings_ = [SequenceSettings(length, (0.8, 1.25), normalise=normalise, window=4) for length in (2, 5, 3)]
    together = full_search_lengths(queries, database, query_runs, database_runs, settings_, k=4,
                                   block_bytes=block_bytes)
    for setting, found in zip(settings_, together):
        alone = full_search(queries, database, query_runs, database_runs, setting, k=4, block_bytes=block_bytes)
        assert found.indices.tolist() == alone.indices.tolist()
        np.testing.assert_array_equal(found.distances, alone.distances)
        np.testing.assert_array_equal(found.velocities, alone.velocities)
        assert found.frames.tolist() == alone.frames.tolist()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), length=st.integers(1, 6), step=st.integers(1, 4), reverse=st.booleans(),
       first=st.integers(0, 8), targets=st.integers(1, 9), tile_targets=st.integers(1, 5),
       tile_columns=st.integers(1, 12), cuts=st.lists(st.integers(1, 29), max_size=4))
def test_line_scores_made_tile_by_tile_are_those_of_the_whole_block_bit_for_bit(
        seed, length, step, reverse, first, targets, tile_targets, tile_columns, cuts) -> None:
    columns = 30
    starts = np.array(sorted({0, columns, *cuts}))
    lines = line_shapes(SequenceSettings(length, (0.5, 2.0), reverse=reverse))
    last = first + step * (targets - 1)
    rows = np.random.default_rng(seed).random((last - max(0, first - length + 1) + 1, columns), dtype=np.float32)
    whole = _line_scores(rows, first, targets, length, starts, lines, step)
    tiled = _line_scores_tiled(rows, first, targets, length, starts, lines, step, tile_targets, tile_columns)
    np.testing.assert_array_equal(tiled[0], whole[0])
    np.testing.assert_array_equal(tiled[1], whole[1])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(1, 3), columns=st.integers(1, 25), window=st.integers(2, 9),
       cuts=st.lists(st.integers(1, 24), max_size=4), gaps=st.booleans())
def test_contrast_normalisation_standardises_by_the_window_clipped_to_the_run(seed, rows, columns, window, cuts,
                                                                              gaps) -> None:
    rng = np.random.default_rng(seed)
    distances = rng.random((rows, columns)).astype(np.float32)
    if gaps:
        distances[rng.random((rows, columns)) < 0.2] = np.nan
    starts = np.array(sorted({0, columns, *(c for c in cuts if c < columns)}))
    got = normalise_runs(distances, starts, window)
    half = window // 2
    for c in range(columns):
        start, end = starts[starts <= c].max(), starts[starts > c].min()
        for r in range(rows):
            if np.isnan(distances[r, c]):
                assert np.isnan(got[r, c])
                continue
            around = distances[r, max(start, c - half):min(end, c + half + 1)].astype(np.float64)
            around = around[~np.isnan(around)]
            std = around.std(ddof=1) if len(around) > 1 else 0.0
            expected = (distances[r, c] - around.mean()) / std if std > 1e-6 * (abs(around.mean()) + 1e-6) else 0.0
            assert got[r, c] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_one_pass_over_the_distances_refuses_settings_that_differ_beyond_length() -> None:
    with pytest.raises(ValueError, match="only in length"):
        full_search_lengths(np.zeros((2, 3)), np.zeros((2, 3)), [np.arange(2)], [np.arange(2)],
                            [SequenceSettings(2), SequenceSettings(3, normalise=True)], k=1)


@pytest.mark.parametrize("settings_", [SequenceSettings(4), SequenceSettings(4, (0.5, 1.5), reverse=True),
                                       SequenceSettings(3, normalise=True, window=4)])
def test_the_restricted_search_is_the_full_search_when_every_query_keeps_every_end(settings_) -> None:
    rng = np.random.default_rng(3)
    queries, database = rng.normal(size=(9, 6)).astype(np.float32), rng.normal(size=(12, 6)).astype(np.float32)
    query_runs, database_runs = [np.arange(5), np.arange(5, 9)], [np.arange(7), np.arange(7, 12)]
    full = full_search(queries, database, query_runs, database_runs, settings_, k=6)
    restricted = restricted_search(queries, database, query_runs, database_runs, settings_, 6, ends=12,
                                   neighbourhood=0, step=1)
    assert restricted.indices.tolist() == full.indices.tolist()
    np.testing.assert_allclose(restricted.distances, full.distances, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(restricted.velocities, full.velocities)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 6), reverse=st.booleans(), normalise=st.booleans(),
       ends=st.integers(1, 4), neighbourhood=st.integers(0, 2), step=st.integers(1, 4), wide=st.booleans())
def test_the_restricted_search_reports_exact_scores_never_better_than_the_full_search(
        seed, length, reverse, normalise, ends, neighbourhood, step, wide) -> None:
    rng = np.random.default_rng(seed)
    count_q, count_d = int(rng.integers(1, 10)), int(rng.integers(1, 14))
    query_runs = [r for r in np.array_split(rng.permutation(count_q), int(rng.integers(1, 3))) if len(r)]
    database_runs = [r for r in np.array_split(rng.permutation(count_d), int(rng.integers(1, 3))) if len(r)]
    dim = 12 if wide else 3  # wider than the sketch below: the coarse stage sees estimates, not distances
    queries, database = rng.normal(size=(count_q, dim)).astype(np.float32), rng.normal(size=(count_d, dim))
    setting = SequenceSettings(length, (0.8, 1.25), reverse, normalise, window=4)
    scores, velocities = sequence_scores(squared_distances(queries, database), query_runs, database_runs, setting)
    full = full_search(queries, database, query_runs, database_runs, setting, k=3)
    found = restricted_search(queries, database, query_runs, database_runs, setting, 3, ends=ends,
                              neighbourhood=neighbourhood, step=step, sketch_dim=4)
    for q in range(count_q):
        kept = found.indices[q] >= 0
        ends_found = found.indices[q][kept]
        assert len(set(ends_found.tolist())) == len(ends_found)
        np.testing.assert_allclose(found.distances[q][kept], scores[q, ends_found], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(found.velocities[q][kept], velocities[q, ends_found])
        full_kept = full.distances[q][np.isfinite(full.distances[q])]
        assert kept.sum() <= len(full_kept)
        # rank by rank, the restricted search's i-th best is never better than the full search's i-th best
        assert (found.distances[q][kept] >= full_kept[:kept.sum()] - 1e-4).all()
    assert found.frames.tolist() == full.frames.tolist()


def test_the_restricted_search_follows_a_route_single_frames_miss() -> None:
    rng = np.random.default_rng(4)
    database = rng.normal(size=(2000, 64)).astype(np.float32)
    truth = np.arange(500, 580)
    queries = database[truth] + 2.0 * rng.normal(size=(len(truth), 64)).astype(np.float32)
    runs_q, runs_d = [np.arange(len(truth))], [np.arange(2000)]
    setting = SequenceSettings(10)
    single = squared_distances(queries, database).argmin(axis=1)
    full = full_search(queries, database, runs_q, runs_d, setting, k=3)
    restricted = restricted_search(queries, database, runs_q, runs_d, setting, 3)  # anchors every 4th query
    assert (single == truth).mean() < 0.8  # single frames alone miss some
    assert (full.indices[9:, 0] == truth[9:]).mean() > 0.9
    assert restricted.indices[:, 0].tolist() == full.indices[:, 0].tolist()


@pytest.mark.parametrize("settings_, message", [
    (SequenceSettings(0), "--seq-len"), (SequenceSettings(2, (0.0, 1.0)), "positive"),
    (SequenceSettings(2, (1.3, 1.2)), "empty"), (SequenceSettings(2, (-1.0, 1.0)), "positive"),
    (SequenceSettings(2, (float("nan"), 1.0)), "positive"),
])
def test_bad_settings_are_bad_input(settings_: SequenceSettings, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        line_shapes(settings_)


@settings(max_examples=200, deadline=None)
@given(velocity=st.floats(0.01, 60.0), frames=st.integers(2, 30), run_frames=st.integers(1, 400))
def test_a_line_fits_a_run_exactly_when_its_drawn_shape_lies_inside_it(velocity: float, frames: int,
                                                                        run_frames: int) -> None:
    (shape,) = line_shapes(SequenceSettings(frames, (velocity, velocity))).offsets
    assert line_fits(velocity, frames, run_frames) == (shape[-1] <= run_frames - 1)


def test_whether_a_line_fits_is_answered_for_any_finite_velocity() -> None:
    # line_shapes itself cannot draw these (`vidvpr eval --seq-velocity 1e308` failed with an OverflowError)
    assert not line_fits(1e308, 5, 10**9) and not line_fits(1e9, 2, 1000) and line_fits(1e9, 1, 1)


def test_a_sketch_leaves_descriptors_no_wider_than_itself_as_they_are() -> None:
    vectors = np.random.default_rng(5).normal(size=(4, 8))
    np.testing.assert_array_equal(sketch(vectors, 8), vectors.astype(np.float32))


def test_sketched_squared_distances_estimate_the_true_ones_without_bias() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(400, 1024)), rng.normal(size=(400, 1024))
    true = ((a - b) ** 2).sum(1)
    estimate = ((sketch(a, 128) - sketch(b, 128)) ** 2).sum(1)
    assert abs(estimate.mean() / true.mean() - 1) < 0.02


def test_the_coarse_shapes_keep_the_slowest_of_each_direction_and_none_further_than_a_frame_off() -> None:
    lines = line_shapes(SequenceSettings(20, (0.8, 1.25), reverse=True))
    coarse = coarse_lines(lines, 3)
    for direction in (1, -1):
        mine = np.sign(lines.velocities) == direction
        kept = np.abs(coarse.velocities[np.sign(coarse.velocities) == direction])
        assert np.abs(lines.velocities[mine]).min() in kept
    gap = np.abs(lines.offsets[:, None, :] - coarse.offsets[None, :, :]).max(axis=2).min(axis=1)
    assert gap.max() <= 1
    assert len(coarse.velocities) < len(lines.velocities)
    assert {1.0, -1.0} <= set(coarse.velocities.tolist())  # the commonest speed, a frame-aligned route, is exact
