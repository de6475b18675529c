"""Specification of ground-truth positives (vidvpr.dataset.positives) and frame sampling
(vidvpr.dataset.sampling), with small hand-checked layouts: every distance and angle below can
be read off the coordinates."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from vidvpr.core.errors import BadInput
from vidvpr.dataset.positives import (
    check_max_heading_diff,
    check_radius,
    find_positives,
    heading_difference_deg,
    positive_stats,
)
from vidvpr.dataset.sampling import (
    SamplingRule,
    parse_sampling,
    sample_every_frames,
    sample_every_metres,
    sample_every_seconds,
)


def found(*args, **kwargs) -> list[list[int]]:
    return [hits.tolist() for hits in find_positives(*args, **kwargs)]


# ---------------------------------------------------------------- heading difference


@pytest.mark.parametrize(("a", "b", "diff"), [(350, 10, 20.0), (10, 350, 20.0), (0, 180, 180.0), (90, 90, 0.0),
                                              (720, 0, 0.0), (-90, 90, 180.0), (30, 100, 70.0), (100, 290, 170.0)])
def test_heading_difference_is_the_smaller_angle_between(a: int, b: int, diff: float) -> None:
    result = heading_difference_deg(a, b)
    assert result == pytest.approx(diff) and type(result) is float


def test_heading_difference_of_arrays_is_an_array() -> None:
    result = heading_difference_deg([0, 45], [90, 300])
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, [90.0, 105.0])


def test_heading_difference_broadcasts() -> None:
    np.testing.assert_allclose(heading_difference_deg(np.array([0, 45]), np.array([[90], [300]])),
                               [[90.0, 45.0], [60.0, 105.0]])


# ---------------------------------------------------------------- option checks


@pytest.mark.parametrize("radius", [25, 0.5, 1e-3, np.float32(2.5)])
def test_any_positive_radius_is_accepted_as_a_float(radius: float) -> None:
    result = check_radius(radius)
    assert result == pytest.approx(float(radius)) and type(result) is float


@pytest.mark.parametrize("radius", [0, -5, math.nan, math.inf, "25", True, None, [25], Decimal("sNaN")])
def test_a_radius_that_is_not_a_positive_number_is_refused(radius: object) -> None:
    with pytest.raises(BadInput, match=r"^--radius must be a positive number of metres, got "):
        check_radius(radius)


def test_the_radius_message_names_the_option_and_the_value() -> None:
    with pytest.raises(BadInput) as info:
        check_radius(-2, what="radius_m in [positives]")
    assert str(info.value) == "radius_m in [positives] must be a positive number of metres, got -2"


@pytest.mark.parametrize("limit", [180, 0.5, 90.0])
def test_a_heading_limit_in_0_exclusive_to_180_inclusive_is_accepted(limit: float) -> None:
    result = check_max_heading_diff(limit)
    assert result == float(limit) and type(result) is float


def test_no_heading_limit_is_none() -> None:
    assert check_max_heading_diff(None) is None


@pytest.mark.parametrize("limit", [0, -1, 180.5, math.nan, "45", False])
def test_a_heading_limit_outside_0_to_180_is_refused(limit: object) -> None:
    with pytest.raises(BadInput, match=r"^--max-heading-diff must be in \(0, 180\] degrees, got "):
        check_max_heading_diff(limit)


def test_the_heading_limit_message_names_the_option_and_the_value() -> None:
    with pytest.raises(BadInput) as info:
        check_max_heading_diff(200, what="max_heading_diff_deg")
    assert str(info.value) == "max_heading_diff_deg must be in (0, 180] degrees, got 200"


# ---------------------------------------------------------------- positives by distance

# the database along the easting axis, far from the origin like UTM positions
E0, N0 = 690_000.0, 5_330_000.0


def line(*eastings: float) -> np.ndarray:
    return np.array([[E0 + e, N0] for e in eastings])


def test_the_radius_is_inclusive_on_both_sides_of_the_easting_window() -> None:
    # query at +10: database at +5 and +15 are exactly 5 m away, +4.5 and +15.5 are 5.5 m away
    assert found(line(10), line(4.5, 5, 15, 15.5), 5.0) == [[1, 2]]


def test_a_radius_below_a_metre() -> None:
    # 0.5 m: 0.25 m² exactly; 0.6 m is outside
    database = np.array([[0.0, 0.5], [0.6, 0.0], [-0.3, 0.0], [0.0, -0.6]])
    assert found([[0.0, 0.0]], database, 0.5) == [[2, 0]]


def test_distance_counts_northing_as_well_as_easting() -> None:
    # a 3-4-5 triangle: (3, 4) is 5 m away; (3, 4.1) is not, though its easting is in the window
    database = np.array([[E0 + 3, N0 + 4], [E0 + 3, N0 + 4.1], [E0, N0 - 5]])
    assert found([[E0, N0]], database, 5.0) == [[0, 2]]


def test_a_database_in_no_particular_order() -> None:
    # eastings 10, 0, 20: sorted by northing, not by easting
    database = np.array([[10.0, 0.0], [0.0, 1.0], [20.0, 2.0]])
    assert found([[10.0, 0.5]], database, 1.0) == [[0]]


def test_positions_with_northing_smaller_than_easting() -> None:
    assert found([[100.0, 0.0]], [[100.0, 3.0], [96.0, -2.0]], 5.0) == [[0, 1]]


def test_positives_are_sorted_by_distance_then_by_index() -> None:
    # distances: 4, 2, 3, 2, 1
    assert found(line(0), line(4, -2, 3, 2, 1), 10.0) == [[4, 1, 3, 2, 0]]


def test_every_query_gets_its_own_positives_whatever_the_order() -> None:
    queries = line(100, 0, 50)  # not sorted by easting
    assert found(queries, line(1, 99, 49, 51, 300), 2.0) == [[1], [0], [2, 3]]


@pytest.mark.parametrize("chunk_elements", [1, 5, 7, 1 << 22])
def test_chunks_of_queries_give_the_same_positives(chunk_elements: int) -> None:
    # five queries over 0 … 40 m against a database every 5 m; at 1 and 5 elements each chunk holds one query
    queries = line(40, 0, 20, 10, 30)
    expected = [[8, 7], [0, 1], [4, 3, 5], [2, 1, 3], [6, 5, 7]]
    assert found(queries, line(*range(0, 45, 5)), 5.5, chunk_elements=chunk_elements) == expected


def test_positives_are_int64_arrays_also_when_empty() -> None:
    result = find_positives(line(0, 100), line(1), 5.0)
    assert [r.dtype for r in result] == [np.int64, np.int64] and result[1].size == 0
    assert [r.dtype for r in find_positives(line(0), np.empty((0, 2)), 5.0)] == [np.int64]


def test_a_single_pair_of_coordinates_is_one_point() -> None:
    assert found([E0, N0], [E0 + 1, N0], 2.0) == [[0]]


def test_no_queries_or_no_database_give_no_positives() -> None:
    assert found(np.empty((0, 2)), line(0), 5.0) == []
    assert found(line(0, 1), np.empty((0, 2)), 5.0) == [[], []]


@pytest.mark.parametrize(("side", "query", "database"), [
    ("query", [[0.0, math.nan]], [[0.0, 0.0]]), ("database", [[0.0, 0.0]], [[math.inf, 0.0]])])
def test_positions_must_be_finite(side: str, query: list, database: list) -> None:
    with pytest.raises(ValueError, match=rf"^{side} positions must be finite$"):
        find_positives(query, database, 5.0)


def test_an_invalid_radius_is_refused_before_anything_else() -> None:
    with pytest.raises(BadInput, match="--radius"):
        find_positives([[0.0, math.nan]], [[0.0, 0.0]], 0)


# ---------------------------------------------------------------- positives by heading


def test_the_heading_limit_is_inclusive() -> None:
    # all database images at the query's position; headings 30° (exactly the limit), 31° and 330° (= 30°) away
    assert found(line(0), line(0, 0, 0, 0), 5.0, query_heading_deg=[0], database_heading_deg=[30, 31, 330, 0],
                 max_heading_diff_deg=30) == [[0, 2, 3]]


def test_the_heading_limit_applies_per_query() -> None:
    assert found(line(0, 0), line(0, 0), 5.0, query_heading_deg=[90, 270], database_heading_deg=[100, 250],
                 max_heading_diff_deg=45) == [[0], [1]]


def test_the_heading_limit_does_not_widen_the_radius() -> None:
    # (4, 4) is 5.66 m away: inside the easting window, outside the radius, heading matching
    assert found([[0.0, 0.0]], [[0.0, 3.0], [4.0, 4.0]], 5.0, query_heading_deg=[0], database_heading_deg=[0, 0],
                 max_heading_diff_deg=90) == [[0]]


def test_headings_may_come_as_columns() -> None:
    assert found(line(0, 0), line(0, 0), 5.0, query_heading_deg=[[90], [270]], database_heading_deg=[[100], [250]],
                 max_heading_diff_deg=45) == [[0], [1]]


def test_headings_are_ignored_without_a_limit() -> None:
    assert found(line(0), line(0, 1), 5.0, query_heading_deg=[0], database_heading_deg=[180, 180]) == [[0, 1]]


def test_a_heading_limit_of_180_keeps_everything_within_the_radius() -> None:
    assert found(line(0), line(0, 1, 9), 5.0, query_heading_deg=[0], database_heading_deg=[180, 90, 0],
                 max_heading_diff_deg=180) == [[0, 1]]


@pytest.mark.parametrize(("query_heading", "database_heading"), [(None, [0]), ([0], None)])
def test_a_heading_limit_needs_both_headings(query_heading: list | None, database_heading: list | None) -> None:
    with pytest.raises(ValueError, match="^max_heading_diff_deg needs query and database headings$"):
        find_positives(line(0), line(0), 5.0, query_heading_deg=query_heading, database_heading_deg=database_heading,
                       max_heading_diff_deg=10)


@pytest.mark.parametrize(("query_heading", "database_heading"), [([0, 0], [0]), ([0], [0, 0])])
def test_a_heading_limit_needs_one_heading_per_point(query_heading: list, database_heading: list) -> None:
    with pytest.raises(ValueError, match="^one heading per point is needed$"):
        find_positives(line(0), line(0), 5.0, query_heading_deg=query_heading, database_heading_deg=database_heading,
                       max_heading_diff_deg=10)


@pytest.mark.parametrize(("query_heading", "database_heading"), [([math.nan], [0]), ([0], [math.inf])])
def test_a_heading_limit_needs_finite_headings(query_heading: list, database_heading: list) -> None:
    with pytest.raises(ValueError, match="^headings must be finite to filter by heading$"):
        find_positives(line(0), line(0), 5.0, query_heading_deg=query_heading, database_heading_deg=database_heading,
                       max_heading_diff_deg=10)


def test_an_invalid_heading_limit_is_refused() -> None:
    with pytest.raises(BadInput, match="--max-heading-diff"):
        find_positives(line(0), line(0), 5.0, query_heading_deg=[0], database_heading_deg=[0], max_heading_diff_deg=0)


# ---------------------------------------------------------------- statistics


def as_positives(*lists: list[int]) -> list[np.ndarray]:
    return [np.array(hits, dtype=np.int64) for hits in lists]


def test_statistics_of_positives_per_query() -> None:
    # counts 4, 0, 1, 2 out of a database of 8: median 1.5, fractions 0.1875 and 0.5
    stats = positive_stats(as_positives([0, 1, 2, 3], [], [5], [6, 7]), database_size=8)
    assert stats == {"queries": 4, "queries_without_positives": 1, "median": 1.5, "min": 0, "max": 4,
                     "median_fraction_of_database": 0.1875, "max_fraction_of_database": 0.5}
    assert type(stats["median"]) is float and type(stats["min"]) is int and type(stats["max"]) is int


def test_statistics_fractions_are_rounded_to_6_decimals() -> None:
    stats = positive_stats(as_positives([0], [0, 1], [0, 1]), database_size=3)
    assert stats["min"] == 1 and stats["max"] == 2 and stats["median"] == 2.0
    assert stats["median_fraction_of_database"] == 0.666667 and stats["max_fraction_of_database"] == 0.666667


def test_statistics_when_every_query_has_positives() -> None:
    stats = positive_stats(as_positives([0], [0, 1, 2]), database_size=3)
    assert (stats["queries_without_positives"], stats["min"], stats["median_fraction_of_database"]) == (0, 1, 0.666667)


def test_statistics_of_an_empty_database_have_zero_fractions() -> None:
    stats = positive_stats(as_positives([], []), database_size=0)
    assert stats == {"queries": 2, "queries_without_positives": 2, "median": 0.0, "min": 0, "max": 0,
                     "median_fraction_of_database": 0.0, "max_fraction_of_database": 0.0}


def test_statistics_of_no_queries() -> None:
    assert positive_stats([], database_size=5) == {
        "queries": 0, "queries_without_positives": 0, "median": None, "min": None, "max": None,
        "median_fraction_of_database": None, "max_fraction_of_database": None}


# ---------------------------------------------------------------- sampling frames


def test_every_n_frames_starts_at_the_first() -> None:
    kept = sample_every_frames(10, 3)
    assert kept.tolist() == [0, 3, 6, 9] and kept.dtype == np.int64


def test_frames_exactly_on_the_time_grid_are_kept() -> None:
    kept = sample_every_seconds(np.array([0.0, 0.5, 1.0, 1.5, 2.0]), 1.0)
    assert kept.tolist() == [0, 2, 4] and kept.dtype == np.int64


def test_the_time_grid_starts_at_the_first_frame() -> None:
    assert sample_every_seconds(np.array([5.25, 5.75, 6.25, 6.75, 7.25]), 1.0).tolist() == [0, 2, 4]


def test_a_frame_a_rounding_error_before_a_grid_slot_counts_as_on_it() -> None:
    # 0.1 · 3 = 0.30000000000000004 but 0.7 − 0.4 = 0.29999999999999993: both are the 0.3 s slot of a 0.1 s grid
    assert sample_every_seconds(np.array([0.0, 0.15, 0.7 - 0.4, 0.35]), 0.1).tolist() == [0, 1, 2]


def test_no_frames_sample_to_nothing() -> None:
    for kept in (sample_every_seconds(np.array([]), 1.0), sample_every_metres(np.array([]), np.array([]), 1.0)):
        assert kept.tolist() == [] and kept.dtype == np.int64


def test_every_d_metres_is_inclusive_and_measured_in_the_plane() -> None:
    # steps of exactly 2 m north, then a 3-4-5 step of 5 m, then 1.9 m east
    east = np.array([7.0, 7.0, 7.0, 10.0, 11.9])
    north = np.array([-3.0, -1.0, 1.0, 5.0, 5.0])
    kept = sample_every_metres(east, north, 2.0)
    assert kept.tolist() == [0, 1, 2, 3] and kept.dtype == np.int64


def test_every_d_metres_measures_from_the_first_frame_at_first() -> None:
    # 1 m, then 2.5 m east of the first frame
    assert sample_every_metres(np.array([0.0, 1.0, 2.5]), np.zeros(3), 2.0).tolist() == [0, 2]


def test_a_step_of_0_metres_keeps_every_frame_once() -> None:
    assert sample_every_metres(np.array([0.0, 0.0, 1.0]), np.zeros(3), 0.0).tolist() == [0, 1, 2]


def test_every_d_metres_measures_from_the_last_kept_frame_in_both_axes() -> None:
    # 1.5 m north then 1.5 m east of the first frame: each step is short, the diagonal 2.12 m is not
    assert sample_every_metres(np.array([4.0, 4.0, 5.5]), np.array([6.0, 7.5, 7.5]), 2.0).tolist() == [0, 2]


@pytest.mark.parametrize(("rule", "text"), [(SamplingRule(5, "f"), "5f"), (SamplingRule(0.5, "s"), "0.5s"),
                                            (SamplingRule(2.0, "m"), "2m")])
def test_a_rule_prints_as_it_is_written(rule: SamplingRule, text: str) -> None:
    assert str(rule) == text


def test_each_unit_selects_its_own_way() -> None:
    time_s = np.array([0.0, 0.4, 0.8, 1.2, 1.6])
    east, north = np.array([0.0, 0.0, 3.0, 3.0, 3.0]), np.zeros(5)
    assert SamplingRule(2, "f").select(time_s, east, north).tolist() == [0, 2, 4]
    assert SamplingRule(1.0, "s").select(time_s, east, north).tolist() == [0, 3]
    assert SamplingRule(2.0, "m").select(time_s, east, north).tolist() == [0, 2]


@pytest.mark.parametrize(("text", "every", "unit"), [("5f", 5, "f"), ("2.0f", 2, "f"), (" ALL ", 1, "f"),
                                                      ("0.5s", 0.5, "s"), ("5.s", 5.0, "s"), ("2M", 2.0, "m")])
def test_parse_sampling_reads_value_and_unit(text: str, every: float, unit: str) -> None:
    rule = parse_sampling(text)
    assert (rule.every, rule.unit) == (every, unit)
    assert type(rule.every) is (int if unit == "f" else float)


def test_an_unknown_rule_says_what_is_accepted() -> None:
    with pytest.raises(BadInput) as info:
        parse_sampling("1.5f", what="query sampling")
    assert str(info.value) == ("Unknown query sampling rule '1.5f'. Use Nf (every N frames), Ts (every T seconds), "
                               "Dm (every D metres) or all, e.g. 5f, 0.5s, 2m.")


@pytest.mark.parametrize("text", [5, "0f", "0s", "-2m", "2 km", "f"])
def test_rules_without_a_positive_value_and_unit_are_refused(text: object) -> None:
    with pytest.raises(BadInput, match=rf"^Unknown sampling rule {text!r}\."):
        parse_sampling(text)
