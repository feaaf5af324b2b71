"""The pure scoring rules, every branch with exact values. No database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from assessments import scoring
from assessments.draw import draw_form
from assessments.scoring import ItemKey, Level

D = Decimal


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (7, D("2.00")),
        (8, D("0.00")),
        ("7", D("0.00")),
        (True, D("0.00")),
        (None, D("0.00")),
        ([7], D("0.00")),
    ],
)
def test_single_choice(answer, expected):
    assert scoring.score_single_choice(answer, correct_ids=[7], points=D(2)) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([1, 2, 3], D("3.00")),  # exactly the correct set
        ([3, 2, 1], D("3.00")),  # order does not matter
        ([1, 2], D("0.00")),  # missing one
        ([1, 2, 3, 4], D("0.00")),  # one too many
        ([], D("0.00")),
        ("1", D("0.00")),
        ([1, "2"], D("0.00")),
        ([True], D("0.00")),
    ],
)
def test_multiple_choice_all_or_nothing(answer, expected):
    assert (
        scoring.score_multiple_choice(answer, correct_ids=[1, 2, 3], points=D(3), partial_credit=False)
        == expected
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([1, 2, 3], D("3.00")),  # 3 right of 3
        ([1, 2], D("2.00")),  # (2 - 0) / 3 * 3
        ([1, 2, 4], D("1.00")),  # (2 - 1) / 3 * 3
        ([1, 4], D("0.00")),  # (1 - 1) / 3 * 3
        ([4], D("0.00")),  # (0 - 1) floored at 0
        ([1, 2, 3, 4], D("2.00")),  # selecting everything: (3 - 1) / 3 * 3
        ([1, 1, 2], D("2.00")),  # duplicates count once
        ([], D("0.00")),
    ],
)
def test_multiple_choice_partial_credit(answer, expected):
    assert (
        scoring.score_multiple_choice(answer, correct_ids=[1, 2, 3], points=D(3), partial_credit=True)
        == expected
    )


def test_multiple_choice_partial_credit_rounds_half_up_to_cents():
    # (1 - 0) / 3 * 1 = 0.333.. -> 0.33 ; (2 - 0) / 3 * 1 = 0.666.. -> 0.67
    assert scoring.score_multiple_choice([1], correct_ids=[1, 2, 3], points=D(1), partial_credit=True) == D(
        "0.33"
    )
    assert scoring.score_multiple_choice(
        [1, 2], correct_ids=[1, 2, 3], points=D(1), partial_credit=True
    ) == D("0.67")


def test_multiple_choice_without_a_correct_choice_scores_zero():
    assert scoring.score_multiple_choice([1], correct_ids=[], points=D(3), partial_credit=True) == D("0.00")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (D("3.5"), D("2.00")),
        (3.5, D("2.00")),
        ("3.5", D("2.00")),
        (" 3.55 ", D("2.00")),  # on the upper edge: |3.55 - 3.5| = 0.05
        ("3.45", D("2.00")),  # on the lower edge
        ("3.56", D("0.00")),  # just outside
        (3, D("0.00")),
        (4, D("0.00")),
        ("3,5", D("0.00")),  # not a number
        ("abc", D("0.00")),
        ("", D("0.00")),
        ("NaN", D("0.00")),
        ("Infinity", D("0.00")),
        (float("nan"), D("0.00")),
        (float("inf"), D("0.00")),
        (True, D("0.00")),
        ([3.5], D("0.00")),
        ({"value": 3.5}, D("0.00")),
        ("9" * 200, D("0.00")),
    ],
)
def test_numeric_with_tolerance(answer, expected):
    assert scoring.score_numeric(answer, value=D("3.5"), tolerance=D("0.05"), points=D(2)) == expected


def test_numeric_exact_when_tolerance_is_zero():
    assert scoring.score_numeric(12, value=D(12), tolerance=D(0), points=D(1)) == D("1.00")
    assert scoring.score_numeric("12.0", value=D(12), tolerance=D(0), points=D(1)) == D("1.00")
    assert scoring.score_numeric("12.001", value=D(12), tolerance=D(0), points=D(1)) == D("0.00")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Carbon dioxide", D("1.00")),
        ("  carbon   DIOXIDE \n", D("1.00")),  # casefold, collapse, strip
        ("\uff43\uff41\uff52\uff42\uff4f\uff4e dioxide", D("1.00")),  # fullwidth letters: NFKC
        ("co₂", D("1.00")),  # subscript two: NFKC -> "co2"
        ("Carbon-dioxide", D("0.00")),
        ("oxygen", D("0.00")),
        ("", D("0.00")),
        ("   ", D("0.00")),
        (42, D("0.00")),
        (None, D("0.00")),
    ],
)
def test_short_text_normalisation(answer, expected):
    assert scoring.score_short_text(answer, accepted=["Carbon  Dioxide", "CO2"], points=D(1)) == expected


def test_casefold_handles_german_sharp_s():
    assert scoring.normalise_text("STRASSE") == scoring.normalise_text("straße")


def test_extended_text_needs_a_person():
    assert scoring.score_extended_text("An essay") is None
    assert scoring.score_response("An essay", ItemKey(type="extended_text", points=D(4))) is None


def test_score_response_dispatches_by_type_and_scores_a_missing_answer_zero():
    assert scoring.score_response(5, ItemKey(type="single_choice", points=D(1), correct_ids=(5,))) == D(
        "1.00"
    )
    assert scoring.score_response(
        [5, 6], ItemKey(type="multiple_choice", points=D(2), correct_ids=(5,), partial_credit=True)
    ) == D("0.00")
    assert scoring.score_response("2", ItemKey(type="numeric", points=D(1), value=D(2))) == D("1.00")
    assert scoring.score_response("2", ItemKey(type="numeric", points=D(1), value=None)) == D("0.00")
    assert scoring.score_response("A", ItemKey(type="short_text", points=D(1), accepted=("a",))) == D("1.00")
    assert scoring.score_response(None, ItemKey(type="short_text", points=D(1), accepted=("a",))) == D("0.00")
    with pytest.raises(ValueError, match="Unknown item type"):
        scoring.score_response("x", ItemKey(type="essay", points=D(1)))


SCALE = [Level(D(4), False), Level(D(3), True), Level(D(2), False), Level(D(1), False)]


@pytest.mark.parametrize(
    ("earned", "possible", "scale_score", "level", "met"),
    [
        (D(8), D(8), D("4.00"), D(4), True),
        (D(6), D(8), D("3.00"), D(3), True),  # exactly the mastery level
        (D("5.99"), D(8), D("3.00"), D(3), True),  # 2.995 rounds half-up to 3.00
        (D("5.9"), D(8), D("2.95"), D(2), False),
        (D(5), D(7), D("2.86"), D(2), False),
        (D(1), D(8), D("0.50"), None, False),  # below the lowest level
        (D(0), D(8), D("0.00"), None, False),
        (D(0), D(0), D("0.00"), None, False),  # nothing possible
    ],
)
def test_competency_result_maps_the_fraction_onto_the_scale(earned, possible, scale_score, level, met):
    result = scoring.competency_result(earned=earned, possible=possible, levels=SCALE)
    assert (result.scale_score, result.level_points, result.is_met) == (scale_score, level, met)


def test_competency_result_two_of_three_on_a_three_point_scale_is_exactly_level_two():
    levels = [Level(D(3), True), Level(D(2), False), Level(D(1), False)]
    result = scoring.competency_result(earned=D(2), possible=D(3), levels=levels)
    assert (result.scale_score, result.level_points, result.is_met) == (D("2.00"), D(2), False)


def test_competency_result_without_a_scale_uses_eighty_percent():
    met = scoring.competency_result(earned=D(4), possible=D(5), levels=[])
    missed = scoring.competency_result(earned=D("3.9"), possible=D(5), levels=[])
    assert (met.scale_score, met.level_points, met.is_met) == (D("80.00"), None, True)
    assert (missed.scale_score, missed.is_met) == (D("78.00"), False)


def test_draw_form_is_deterministic_by_seed_and_avoids_the_previous_form():
    pools = [(3, list(range(1, 7)))]
    first = draw_form(pools=pools, avoid=[], seed=7)
    assert first == draw_form(pools=pools, avoid=[], seed=7)
    assert len(set(first)) == 3
    second = draw_form(pools=pools, avoid=first, seed=8)
    assert set(second) == set(range(1, 7)) - set(first)


def test_draw_form_reuses_items_only_when_the_pool_runs_out():
    first = draw_form(pools=[(3, [1, 2, 3, 4])], avoid=[], seed=1)
    second = draw_form(pools=[(3, [1, 2, 3, 4])], avoid=first, seed=2)
    fresh = {1, 2, 3, 4} - set(first)
    assert fresh <= set(second)
    assert len(set(second)) == 3


def test_draw_form_never_repeats_an_item_across_rules_and_gives_what_a_small_pool_has():
    form = draw_form(pools=[(2, [1, 2]), (2, [2, 3]), (5, [4])], avoid=[], seed=3)
    assert sorted(form) == [1, 2, 3, 4]
