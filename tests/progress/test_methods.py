"""The calculation methods against hand-computed values, their edge cases, and the vectorised
district-wide forms against the per-student ones. No database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from progress.bkt import BKTParams
from progress.methods import (
    METHODS,
    NO_CENTS,
    NO_EVIDENCE,
    average,
    average_many,
    bkt,
    calculate,
    calculate_many,
    decaying_average,
    decaying_average_many,
    describe,
    highest,
    highest_many,
    latest,
    latest_many,
    level_for,
    n_times,
    weighted_average,
    weighted_average_many,
)

D = Decimal
MAR_1, MAR_7, MAR_14 = date(2025, 3, 1), date(2025, 3, 7), date(2025, 3, 14)
SCALE = [(0, "No evidence", False), (1, "Beginning", False), (2, "Near", False), (3, "Mastery", True),
         (4, "Exceeds", True)]  # fmt: skip


def two_places(value: Decimal) -> bool:
    return value.as_tuple().exponent == -2


# --- no evidence ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_no_evidence_gives_no_score(method):
    result = calculate(method, [], mastery_points=3)
    assert result.score is None
    assert result.explanation == NO_EVIDENCE == "no evidence yet"
    assert result.evidence_count == 0
    assert describe(result, level_for(result.score, SCALE)) == "no evidence yet"


# --- latest, highest, average ----------------------------------------------------------------------


def test_latest():
    result = latest([2, D("3.5"), 3])  # sn = 3
    assert result.score == D("3.00") and two_places(result.score)
    assert result.evidence_count == 3
    assert result.explanation == "latest of 3 scores: 3 = 3"


def test_latest_uses_when_the_work_was_done_not_arrival_order():
    # A make-up done on 1 Mar but graded (and given here) last does not count as the latest.
    result = latest([(MAR_14, 1), (MAR_1, 4)])
    assert result.score == D("1")
    assert result.explanation == "latest of 2 scores: 1 (14 Mar) = 1"


def test_latest_tie_on_the_same_moment_keeps_the_given_order():
    moment = datetime(2025, 3, 14, 9, 30)
    assert latest([(moment, 2), (moment, 3)]).score == D("3")
    assert latest([(moment, 3), (moment, 2)]).score == D("2")


def test_highest():
    result = highest([2, D("3.5"), 3])  # max = 3.5
    assert result.score == D("3.50")
    assert result.explanation == "highest of 3 scores: 3.5 = 3.5"


def test_highest_tie_names_the_first_time_reached():
    result = highest([(MAR_14, D("3.5")), (MAR_1, 2), (MAR_7, D("3.5"))])
    assert result.score == D("3.5")
    assert result.explanation == "highest of 3 scores: 3.5 (first, 7 Mar), reached 2 times = 3.5"


def test_average():
    result = average([2, D("3.5"), 3])  # (2 + 3.5 + 3) / 3 = 8.5 / 3 = 2.8333... -> 2.83
    assert result.score == D("2.83")
    assert result.explanation == "average: (2 + 3.5 + 3) / 3 = 2.83"


def test_average_rounds_half_up():
    # (2.5 + 2.52) / 2 = 2.51 exactly; (0 + 0.01) / 2 = 0.005 -> 0.01 (half-up, not half-even 0.00)
    assert average(["2.5", "2.52"]).score == D("2.51")
    assert average([0, D("0.01")]).score == D("0.01")


def test_average_of_many_scores_gives_the_sum():
    assert average([1] * 20).explanation == "average: sum 20 / 20 = 1"


def test_one_score():
    for function in (latest, highest, average, weighted_average, decaying_average):
        result = function([(MAR_7, D("2.75"))])
        assert result.score == D("2.75"), function.__name__
        assert result.evidence_count == 1


# --- weighted average ----------------------------------------------------------------------------


def test_weighted_average_matches_the_domain_example():
    # Out of order on purpose: sorted by date it is 2 (1 Mar), 3 (7 Mar), 3 (14 Mar).
    # 0.65 x 3 + 0.35 x mean(2, 3) = 1.95 + 0.35 x 2.5 = 1.95 + 0.875 = 2.825 -> 2.83 (half-up)
    result = weighted_average([(MAR_1, 2), (MAR_14, 3), (MAR_7, 3)])
    assert result.score == D("2.83")
    assert result.parameter == D("0.65")
    assert result.explanation == (
        "weighted average: 0.65 x 3 (latest, 14 Mar) + 0.35 x 2.5 (mean of 2 earlier) = 2.83"
    )


def test_decimal_avoids_binary_float_surprises():
    # (1 + 1.01) / 2 = 1.005 exactly -> 1.01 half-up. In binary floats 1.005 is stored as
    # 1.00499999999999989..., which rounds half-up to 1.00: the reason the per-student path uses
    # Decimal (float input goes through str, so 1.01 means 1.01).
    assert D((1.0 + 1.01) / 2).quantize(D("0.01"), rounding="ROUND_HALF_UP") == D("1.00")
    assert average([1.0, 1.01]).score == D("1.01")
    assert weighted_average([1.0, 1.01], w="0.5").score == D("1.01")


def test_weighted_average_with_one_earlier_score():
    # 0.8 x 4 + 0.2 x 1 = 3.2 + 0.2 = 3.4
    result = weighted_average([(MAR_1, 1), (MAR_7, 4)], w="0.8")
    assert result.score == D("3.40")
    assert result.explanation == "weighted average: 0.8 x 4 (latest, 7 Mar) + 0.2 x 1 (earlier, 1 Mar) = 3.4"


def test_weighted_average_one_score_is_that_score():
    result = weighted_average([(MAR_7, 3)])
    assert result.score == D("3")
    assert result.explanation == "weighted average: only one score, 3 (7 Mar) = 3"


@pytest.mark.parametrize(
    ("w", "expected"),
    [
        ("0.99", D("3.96")),  # 0.99 x 4 + 0.01 x 0
        ("0.01", D("0.04")),  # 0.01 x 4 + 0.99 x 0
        (0.5, D("2.00")),  # 0.5 x 4 + 0.5 x 0
    ],
)
def test_weighted_average_parameter_at_bounds(w, expected):
    assert weighted_average([0, 4], w=w).score == expected


@pytest.mark.parametrize("w", [0, "0.005", 1, "1.5", -0.2])
def test_weighted_average_parameter_out_of_range(w):
    with pytest.raises(ValueError, match=r"weighted average w must be between 0\.01 and 0\.99"):
        weighted_average([1, 2], w=w)


# --- decaying average ----------------------------------------------------------------------------


def test_decaying_average():
    # r1 = 2; r2 = 0.35 x 2 + 0.65 x 3 = 0.7 + 1.95 = 2.65;
    # r3 = 0.35 x 2.65 + 0.65 x 4 = 0.9275 + 2.6 = 3.5275 -> 3.53
    result = decaying_average([(MAR_1, 2), (MAR_7, 3), (MAR_14, 4)])
    assert result.score == D("3.53")
    assert result.explanation == (
        "decaying average (d = 0.65): start at 2 (1 Mar); 0.35 x 2 + 0.65 x 3 (7 Mar) = 2.65; "
        "0.35 x 2.65 + 0.65 x 4 (latest, 14 Mar) = 3.53"
    )


def test_decaying_average_long_history_is_shortened():
    # 0, 1, ..., 7 with d = 0.65: the explanation keeps the start and the last step.
    text = decaying_average(list(range(8))).explanation
    assert text.startswith("decaying average (d = 0.65): start at 0; ... 6 more steps ...; 0.35 x ")
    assert text.endswith("+ 0.65 x 7 (latest) = 6.46")


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        ("0.50", D("2.00")),  # 0.5 x 4 + 0.5 x 0
        ("0.99", D("0.04")),  # 0.01 x 4 + 0.99 x 0
    ],
)
def test_decaying_average_parameter_at_bounds(d, expected):
    assert decaying_average([4, 0], d=d).score == expected


@pytest.mark.parametrize("d", ["0.49", 0.1, 1, 2])
def test_decaying_average_parameter_out_of_range(d):
    with pytest.raises(ValueError, match=r"decaying average d must be between 0\.50 and 0\.99"):
        decaying_average([1, 2], d=d)


# --- n times -------------------------------------------------------------------------------------


def test_n_times():
    # mastery at 3, n = 2: scores at or above 3 are 3 and 4 -> (3 + 4) / 2 = 3.5
    result = n_times([3, 2, 4], n=2, mastery_points=3)
    assert result.score == D("3.50")
    assert (
        result.explanation
        == "n times (n = 2, mastery at 3): 2 of 3 scores at or above mastery, mean (3 + 4) / 2 = 3.5"
    )


def test_n_times_before_n_has_no_score_yet():
    result = n_times([3, 2, 4], n=3, mastery_points=3)
    assert result.score is None
    assert result.evidence_count == 3
    assert result.explanation == (
        "n times (n = 3, mastery at 3): 2 of 3 scores at or above mastery, 1 more needed; no score yet"
    )


def test_n_times_default_n_is_5():
    assert n_times([3] * 4, mastery_points=3).score is None
    assert n_times([3] * 4 + [4], mastery_points=3).score == D("3.20")  # (3+3+3+3+4)/5


def test_n_times_counts_a_score_exactly_at_mastery():
    assert n_times([D("2.99"), 3], n=1, mastery_points=3).score == D("3")


@pytest.mark.parametrize("n", [1, 10, "10", D("3.0")])
def test_n_times_parameter_at_bounds(n):
    n_times([3], n=n, mastery_points=3)


@pytest.mark.parametrize(
    ("n", "message"),
    [(0, "between 1 and 10"), (11, "between 1 and 10"), ("2.5", "whole number"), (True, "a number")],
)
def test_n_times_parameter_out_of_range(n, message):
    with pytest.raises(ValueError, match=message):
        n_times([3], n=n, mastery_points=3)


# --- BKT -----------------------------------------------------------------------------------------


def test_bkt_uses_mastery_points_for_correctness():
    # 4 >= 3 correct, 1 < 3 incorrect. With the defaults (prior 0.2, learn 0.15, guess 0.2, slip 0.1):
    # correct: 0.18/0.34 = 9/17, learn -> 10.2/17 = 0.6;
    # incorrect: 0.06/(0.06 + 0.4 x 0.8) = 3/19, learn -> 5.4/19 = 0.28421... -> 0.28
    result = bkt([(MAR_1, 4), (MAR_7, 1)], mastery_points=3)
    assert result.probability == pytest.approx(5.4 / 19, abs=1e-12)
    assert result.score == D("0.28")
    assert result.is_mastered is False
    assert result.explanation.startswith("knowledge tracing: 1 of 2 responses correct (latest incorrect)")


def test_bkt_score_rounds_down_so_the_threshold_is_exact():
    params = BKTParams()
    for count in range(1, 8):
        result = bkt([1] * count, params)
        assert result.score == D(int(result.probability * 100)) / 100
        assert (result.score >= D("0.95")) == result.is_mastered == (result.probability >= 0.95)
    assert bkt([1] * 6, params).is_mastered is True


def test_bkt_without_mastery_points_needs_binary_scores():
    with pytest.raises(ValueError, match="bkt needs mastery_points"):
        bkt([3, 4])


def test_bkt_uses_the_given_parameters():
    params = BKTParams(prior=0.5, learn=0.0, guess=0.2, slip=0.2)
    # posterior 0.5 x 0.8 / (0.4 + 0.5 x 0.2) = 0.8; no learning
    assert calculate("bkt", [1], bkt_params=params).probability == pytest.approx(0.8, abs=1e-12)


# --- the dispatcher, inputs ----------------------------------------------------------------------


def test_calculate_dispatches_every_method():
    scores = [(MAR_1, 2), (MAR_7, 3), (MAR_14, 4)]
    expected = {
        "latest": D("4"),
        "highest": D("4"),
        "average": D("3"),
        "weighted_average": D("3.48"),  # 0.65 x 4 + 0.35 x 2.5 = 2.6 + 0.875 = 3.475 -> 3.48
        "decaying_average": D("3.53"),
        "n_times": D("3.50"),  # n = 2: (3 + 4) / 2
    }
    for method, score in expected.items():
        result = calculate(method, scores, parameter=2 if method == "n_times" else None, mastery_points=3)
        assert result.score == score, method
        assert result.method == method
    assert calculate("bkt", scores, mastery_points=3).method == "bkt"


def test_calculate_ignores_a_parameter_for_parameterless_methods():
    assert calculate("latest", [1, 2], parameter="0.3").score == D("2")


def test_calculate_rejects_unknown_methods_and_missing_mastery_points():
    with pytest.raises(ValueError, match="unknown calculation method 'median'"):
        calculate("median", [1])
    with pytest.raises(ValueError, match="n_times needs mastery_points"):
        calculate("n_times", [1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="not both"):
        latest([1, (MAR_1, 2)])
    with pytest.raises(ValueError, match="score must be a number"):
        latest(["abc"])
    with pytest.raises(ValueError, match="finite"):
        latest([float("nan")])
    with pytest.raises(ValueError, match="all be dates or all be datetimes"):
        latest([(MAR_1, 1), (datetime(2025, 3, 2), 2)])


# --- levels --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "name"),
    [
        (D("2.83"), "Near"),
        (D("3"), "Mastery"),
        (D("2.99"), "Near"),
        (D("4.00"), "Exceeds"),
        (D("0"), "No evidence"),
    ],
)
def test_level_for_picks_the_highest_level_reached(score, name):
    assert level_for(score, SCALE)[1] == name
    assert level_for(score, list(reversed(SCALE)))[1] == name  # order of levels does not matter


def test_level_for_without_a_level_reached():
    assert level_for(None, SCALE) is None
    assert level_for(D("0.5"), [(1, "Beginning", False), (3, "Mastery", True)]) is None


def test_describe_appends_the_level():
    result = weighted_average([(MAR_1, 3), (MAR_7, 3), (MAR_14, 3)])
    assert describe(result, level_for(result.score, SCALE)) == (
        "weighted average: 0.65 x 3 (latest, 14 Mar) + 0.35 x 3 (mean of 2 earlier) = 3 -> Mastery"
    )


# --- vectorised, district-wide -------------------------------------------------------------------


def _random_district(students=1_000, seed=42):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 16, size=students)
    # Scores with two decimals in 0..4, as stored.
    per_student = [np.round(rng.uniform(0, 4, size=length), 2) for length in lengths]
    return per_student


def _agrees(many: np.ndarray, per_student_scores: list[Decimal]) -> None:
    """The float value rounds to the same two-place Decimal, except within 1e-9 of a half-cent."""
    for value, score in zip(many, per_student_scores, strict=True):
        assert abs(value - float(score)) <= 0.005 + 1e-9
        hundredths = value * 100
        if abs(hundredths - np.floor(hundredths) - 0.5) > 1e-6:
            assert D(repr(float(value))).quantize(D("0.01"), rounding="ROUND_HALF_UP") == score


@pytest.mark.parametrize(
    ("many", "one", "keyword", "parameter"),
    [
        (weighted_average_many, weighted_average, "w", "0.65"),
        (weighted_average_many, weighted_average, "w", "0.2"),
        (decaying_average_many, decaying_average, "d", "0.65"),
        (decaying_average_many, decaying_average, "d", "0.99"),
    ],
)
def test_vectorised_equals_per_student_on_1000_students(many, one, keyword, parameter):
    district = _random_district()
    expected = [one([str(value) for value in scores], parameter).score for scores in district]

    group_ids = np.repeat(np.arange(len(district)) * 7 + 3, [len(scores) for scores in district])
    flat = many(np.concatenate(district), group_ids, **{keyword: parameter})
    _agrees(flat, expected)

    padded = np.full((len(district), max(len(scores) for scores in district)), np.nan)
    for row, scores in enumerate(district):
        padded[row, : len(scores)] = scores
    _agrees(many(padded, **{keyword: parameter}), expected)


@pytest.mark.parametrize(
    ("many", "one"), [(latest_many, latest), (highest_many, highest), (average_many, average)]
)
def test_simple_vectorised_forms_equal_per_student(many, one):
    district = _random_district(students=200, seed=8)
    expected = [one([str(value) for value in scores]).score for scores in district]
    group_ids = np.repeat(np.arange(len(district)), [len(scores) for scores in district])
    _agrees(many(np.concatenate(district), group_ids), expected)


def test_vectorised_hand_computed_and_empty_rows():
    padded = np.array([[2, 3, 4], [3, np.nan, np.nan], [np.nan, np.nan, np.nan]])
    # weighted: 0.65 x 4 + 0.35 x 2.5 = 3.475; one score 3; empty row NaN
    np.testing.assert_allclose(weighted_average_many(padded), [3.475, 3.0, np.nan], atol=1e-12)
    # decaying: 0.35 x (0.35 x 2 + 0.65 x 3) + 0.65 x 4 = 0.35 x 2.65 + 2.6 = 3.5275
    np.testing.assert_allclose(decaying_average_many(padded), [3.5275, 3.0, np.nan], atol=1e-12)
    np.testing.assert_allclose(highest_many(padded), [4.0, 3.0, np.nan])
    assert weighted_average_many(np.array([]), np.array([])).size == 0


def test_vectorised_input_checks():
    with pytest.raises(ValueError, match="contiguous"):
        average_many(np.array([1.0, 2.0, 3.0]), np.array([1, 2, 1]))
    with pytest.raises(ValueError, match="left-aligned"):
        average_many(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="decaying average d must be between"):
        decaying_average_many(np.array([[1.0]]), d="0.3")


# --- calculate_many: the stored score and explanation, exactly -------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _groups(seed: int, groups: int, longest: int, values: list[int] | None = None):
    """Random groups of dated whole-cent scores, oldest first, with ties of time, score and half cents."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, longest + 1, size=groups)
    # Long runs now and then (the shortened explanations, the float path of the decaying average).
    lengths[rng.random(groups) < 0.05] = longest * 3
    total = int(lengths.sum())
    if values is None:
        cents = rng.integers(0, 401, size=total)
        # Many round and half scores, so that half cents (ties) are frequent.
        coarse = rng.random(total) < 0.6
        cents[coarse] = rng.choice(
            [0, 50, 100, 150, 200, 250, 300, 350, 400, 325, 275], size=int(coarse.sum())
        )
    else:
        cents = rng.choice(values, size=total)
    moments = np.sort(rng.integers(1_740_000_000, 1_780_000_000, size=total)) * 1_000_000
    moments[rng.random(total) < 0.1] = moments[0]  # same moment: the given order holds
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        moments[start : start + length] = np.sort(moments[start : start + length])
    return cents.astype(np.int64), moments.astype(np.int64), starts, lengths


def _one(method, cents, moments, start, length, parameter, mastery_points, params):
    scores = [
        (_EPOCH + timedelta(microseconds=int(moment)), Decimal(int(value)) / 100)
        for value, moment in zip(cents[start : start + length], moments[start : start + length], strict=True)
    ]
    return calculate(method, scores, parameter, mastery_points, params)


@pytest.mark.parametrize(
    ("method", "parameter", "mastery_points", "values"),
    [
        ("latest", None, None, None),
        ("highest", None, None, None),
        ("average", None, None, None),
        ("weighted_average", None, None, None),
        ("weighted_average", D("0.2"), None, None),
        ("weighted_average", D("0.99"), None, None),
        ("decaying_average", None, None, None),
        ("decaying_average", D("0.5"), None, None),
        ("decaying_average", D("0.99"), None, None),
        ("n_times", None, D("3"), None),
        ("n_times", D("1"), D("2.5"), None),
        ("n_times", D("3"), D("0"), None),
        ("bkt", None, None, [0, 100]),
        ("bkt", None, D("3"), None),
    ],
)
def test_calculate_many_equals_calculate_exactly(method, parameter, mastery_points, values):
    cents, moments, starts, lengths = _groups(sum(map(ord, method)) + len(str(parameter)), 600, 14, values)
    params = BKTParams(prior=0.3, learn=0.2, guess=0.25, slip=0.08, forget=0.01) if method == "bkt" else None
    many = calculate_many(method, cents, starts, lengths, moments, parameter, mastery_points, params)
    assert many.score.shape == (600,) and len(many.explanation) == 600
    left = 0
    for group, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        if not many.exact[group]:
            left += 1
            continue
        one = _one(method, cents, moments, start, length, parameter, mastery_points, params)
        expected = NO_CENTS if one.score is None else int(one.score * 100)
        assert (int(many.score[group]), many.explanation[group]) == (expected, one.explanation), group
        if method == "bkt":
            assert float(many.probability[group]) == one.probability
            assert bool(many.is_mastered[group]) == one.is_mastered
    assert left <= 6  # only the rare half cents that Decimal's rounding decides are left over


def test_calculate_many_leaves_the_decimal_ties_to_the_exact_path():
    # Ties whose earlier mean is a finite decimal are decided here (0.65 x 3 + 0.35 x 2.5 = 2.825 -> 2.83);
    # 0.65 x 0.13 + 0.35 x (0.01 / 7) is 0.085 exactly too, but the mean of 7 is no finite decimal:
    # Decimal rounds it at 28 digits, so that group is left to the per-student method.
    cents = np.array([1, 0, 0, 0, 0, 0, 0, 250, 300], dtype=np.int64)
    moments = np.arange(9, dtype=np.int64) * 86_400_000_000
    many = calculate_many("weighted_average", cents, np.array([0, 7]), np.array([7, 2]), moments, D("0.65"))
    assert many.exact.tolist() == [True, True]
    assert many.score.tolist() == [0, 283]
    cents = np.array([0, 0, 0, 0, 0, 0, 1, 13], dtype=np.int64)
    many = calculate_many("weighted_average", cents, np.array([0]), np.array([8]), moments[:8], D("0.65"))
    one = weighted_average([D("0")] * 6 + [D("0.01"), D("0.13")], D("0.65"))
    assert many.exact.tolist() == [False]
    assert one.score == D("0.09")  # 0.085 exactly; Decimal's 28-digit mean of 7 decides the half cent


def test_calculate_many_hand_computed_and_input_checks():
    moments = np.array([0, 86_400_000_000 * 72], dtype=np.int64)  # 1 Jan and 14 Mar 1970
    many = calculate_many("average", np.array([250, 300]), np.array([0]), np.array([2]), moments)
    assert (int(many.score[0]), many.explanation) == (275, ["average: (2.5 + 3) / 2 = 2.75"])
    many = calculate_many("latest", np.array([250, 300]), np.array([0]), np.array([2]), moments)
    assert many.explanation == ["latest of 2 scores: 3 (14 Mar) = 3"]
    empty = calculate_many("latest", np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))
    assert empty.score.size == 0 and empty.explanation == []
    with pytest.raises(ValueError, match="unknown calculation method"):
        calculate_many("median", np.array([1]), np.array([0]), np.array([1]), np.array([0]))
    with pytest.raises(ValueError, match="needs mastery_points"):
        calculate_many("n_times", np.array([1]), np.array([0]), np.array([1]), np.array([0]))
    with pytest.raises(ValueError, match="bkt needs mastery_points"):
        calculate_many("bkt", np.array([150]), np.array([0]), np.array([1]), np.array([0]))
