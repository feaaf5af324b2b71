"""Starting, answering, submitting and grading attempts, through the services."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from assessments import services, signals
from assessments.models import Assessment, Attempt, AttemptItem, Item, ItemAlignment, Response
from tests.assessments.conftest import assessment_with
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    CompetencyFactory,
    FrameworkFactory,
    ItemFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 10, 5, 9, 0, tzinfo=datetime.UTC)


def minutes(n: int) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


@pytest.fixture
def scored():
    """Collects attempt_scored announcements."""
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    signals.attempt_scored.connect(receiver, weak=False)
    yield calls
    signals.attempt_scored.disconnect(receiver)


def form_of(attempt: Attempt) -> list[int]:
    return list(
        AttemptItem.objects.filter(attempt=attempt).order_by("position").values_list("item_id", flat=True)
    )


# --- drawing the form -----------------------------------------------------------------------------


def pool_assessment(size: int, draw: int, **fields) -> tuple[Assessment, list[Item]]:
    competency = CompetencyFactory()
    items = [ItemFactory(aligned_to=competency) for _ in range(size)]
    ItemFactory(aligned_to=competency, status=Item.Status.DRAFT)  # never drawn
    ItemFactory(aligned_to=competency, status=Item.Status.RETIRED)  # never drawn
    assessment = AssessmentFactory(competency=competency, **fields)
    BlueprintRuleFactory(assessment=assessment, competency=competency, draw_count=draw)
    return assessment, items


def test_start_draws_from_active_aligned_items_with_a_stored_seed():
    assessment, items = pool_assessment(size=6, draw=3)
    student = StudentFactory()

    attempt = services.attempt_start(assessment=assessment, student=student, now=T0, seed=1234)

    assert (attempt.number, attempt.seed, attempt.status, attempt.started_at) == (1, 1234, "in_progress", T0)
    assert attempt.deadline is None
    form = form_of(attempt)
    assert len(form) == 3
    assert set(form) <= {item.pk for item in items}
    assert list(AttemptItem.objects.filter(attempt=attempt).values_list("key_version_seen", flat=True)) == [
        1,
        1,
        1,
    ]


def test_the_same_seed_draws_the_same_form():
    assessment, _ = pool_assessment(size=8, draw=3)
    first = services.attempt_start(assessment=assessment, student=StudentFactory(), now=T0, seed=99)
    second = services.attempt_start(assessment=assessment, student=StudentFactory(), now=T0, seed=99)
    assert form_of(first) == form_of(second)


def test_a_retake_draws_a_different_form_where_the_pool_allows():
    assessment, items = pool_assessment(size=6, draw=3)
    student = StudentFactory()
    first = services.attempt_start(assessment=assessment, student=student, now=T0, seed=5)
    services.attempt_submit(attempt=first, now=T0 + minutes(5))

    second = services.attempt_start(assessment=assessment, student=student, now=T0 + minutes(6), seed=5)

    assert second.number == 2
    assert set(form_of(first)).isdisjoint(form_of(second))
    assert set(form_of(first)) | set(form_of(second)) == {item.pk for item in items}


def test_a_retake_reuses_items_only_when_the_pool_runs_short():
    assessment, items = pool_assessment(size=4, draw=3)
    student = StudentFactory()
    first = services.attempt_start(assessment=assessment, student=student, now=T0, seed=5)
    services.attempt_submit(attempt=first, now=T0)
    second = services.attempt_start(assessment=assessment, student=student, now=T0, seed=6)

    unseen = {item.pk for item in items} - set(form_of(first))
    assert len(unseen) == 1
    assert unseen <= set(form_of(second))
    assert len(form_of(second)) == 3


def test_a_pinned_pool_draws_only_from_its_items(bank):
    assessment = AssessmentFactory(competency=bank.ratios)
    BlueprintRuleFactory(
        assessment=assessment, competency=bank.ratios, items=[bank.single, bank.short], draw_count=5
    )
    attempt = services.attempt_start(assessment=assessment, student=bank.student, now=T0)
    assert sorted(form_of(attempt)) == sorted([bank.single.pk, bank.short.pk])


def test_starting_with_an_open_attempt_resumes_it():
    assessment, _ = pool_assessment(size=3, draw=2)
    student = StudentFactory()
    first = services.attempt_start(assessment=assessment, student=student, now=T0)
    again = services.attempt_start(assessment=assessment, student=student, now=T0 + minutes(1))
    assert again.pk == first.pk
    assert Attempt.objects.count() == 1


def test_an_expired_open_attempt_is_submitted_before_a_new_one_starts(scored):
    assessment, _ = pool_assessment(size=4, draw=2, time_limit_minutes=10)
    student = StudentFactory()
    first = services.attempt_start(assessment=assessment, student=student, now=T0)
    assert first.deadline == T0 + minutes(10)

    second = services.attempt_start(assessment=assessment, student=student, now=T0 + minutes(30))

    first.refresh_from_db()
    assert (first.status, first.submitted_at, first.score) == ("completed", T0 + minutes(10), Decimal("0.00"))
    assert second.number == 2
    assert [call["attempt_id"] for call in scored] == [first.pk]


# --- the gate -------------------------------------------------------------------------------------


def test_refused_when_attempts_are_used_up():
    assessment, _ = pool_assessment(size=4, draw=2, max_attempts=1)
    student = StudentFactory()
    services.attempt_submit(
        attempt=services.attempt_start(assessment=assessment, student=student, now=T0), now=T0
    )
    with pytest.raises(services.AttemptRefused) as refused:
        services.attempt_start(assessment=assessment, student=student, now=T0 + minutes(1))
    assert refused.value.reason == "All 1 attempts have been used."


def test_refused_during_the_cooldown_and_open_after_it():
    assessment, _ = pool_assessment(size=4, draw=2, cooldown_hours=24)
    student = StudentFactory()
    services.attempt_submit(
        attempt=services.attempt_start(assessment=assessment, student=student, now=T0), now=T0
    )
    with pytest.raises(services.AttemptRefused) as refused:
        services.attempt_start(assessment=assessment, student=student, now=T0 + datetime.timedelta(hours=23))
    assert refused.value.reason == "Cooldown: the next attempt opens at 2026-10-06T09:00:00+00:00."
    retake = services.attempt_start(
        assessment=assessment, student=student, now=T0 + datetime.timedelta(hours=24)
    )
    assert retake.number == 2


def test_pass_practice_remediation_after_a_failed_attempt():
    competency = CompetencyFactory()
    ItemFactory(aligned_to=competency, accepted_answers=["4"])
    ItemFactory(aligned_to=competency, accepted_answers=["4"])
    check = AssessmentFactory(competency=competency, remediation=Assessment.Remediation.PASS_PRACTICE)
    BlueprintRuleFactory(assessment=check, competency=competency, draw_count=1)
    practice = AssessmentFactory(competency=competency, kind=Assessment.Kind.PRACTICE)
    BlueprintRuleFactory(assessment=practice, competency=competency, draw_count=1)
    student = StudentFactory()

    failed = services.attempt_submit(
        attempt=services.attempt_start(assessment=check, student=student, now=T0), now=T0
    )
    assert failed.is_passed is False
    with pytest.raises(services.AttemptRefused) as refused:
        services.attempt_start(assessment=check, student=student, now=T0 + minutes(1))
    assert refused.value.reason == "Remediation not done: pass a practice on this competency before retaking."

    practice_attempt = services.attempt_start(assessment=practice, student=student, now=T0 + minutes(2))
    item = Item.objects.get(pk=form_of(practice_attempt)[0])
    services.response_save(attempt=practice_attempt, item=item, answer="4", now=T0 + minutes(3))
    assert services.attempt_submit(attempt=practice_attempt, now=T0 + minutes(4)).is_passed is True

    assert services.attempt_start(assessment=check, student=student, now=T0 + minutes(5)).number == 2


def deny_everyone(assessment, student):
    return "Prerequisite not mastered: 7.RP.A.1."


def test_the_higher_layer_gate_from_settings_can_refuse(settings):
    settings.ASSESSMENTS_START_GATE = "tests.assessments.test_services.deny_everyone"
    assessment, _ = pool_assessment(size=2, draw=1)
    with pytest.raises(services.AttemptRefused) as refused:
        services.attempt_start(assessment=assessment, student=StudentFactory(), now=T0)
    assert refused.value.reason == "Prerequisite not mastered: 7.RP.A.1."
    assert Attempt.objects.count() == 0


def test_refused_when_not_active_or_nothing_to_draw():
    assessment, _ = pool_assessment(size=2, draw=1, status=Assessment.Status.DRAFT)
    with pytest.raises(services.AttemptRefused, match="not open"):
        services.attempt_start(assessment=assessment, student=StudentFactory(), now=T0)
    empty = AssessmentFactory()
    BlueprintRuleFactory(assessment=empty, draw_count=2)
    with pytest.raises(services.AttemptRefused, match="no active items"):
        services.attempt_start(assessment=empty, student=StudentFactory(), now=T0)


# --- answering ------------------------------------------------------------------------------------


def autosave(*, attempt: Attempt, item: Item, answer, now: datetime.datetime | None = None) -> Response:
    """``response_autosave`` called as the API calls it, with ``response_save``'s arguments."""
    return services.response_autosave(
        student=attempt.student, attempt_id=attempt.pk, item_id=item.pk, answer=answer, now=now
    )


#: The autosave rules hold for both ways of saving: the transaction of ``response_save`` (pages,
#: demo) and the two statements of ``response_autosave`` (the API).
both_saves = pytest.mark.parametrize(
    "save", [services.response_save, autosave], ids=["response_save", "response_autosave"]
)


@both_saves
def test_autosave_upserts_one_response_per_item(bank, save):
    assessment = assessment_with([bank.short], bank.ratios)
    attempt = services.attempt_start(assessment=assessment, student=bank.student, now=T0)
    save(attempt=attempt, item=bank.short, answer="oxygen", now=T0 + minutes(1))
    save(attempt=attempt, item=bank.short, answer="CO2", now=T0 + minutes(2))
    response = Response.objects.get()
    assert (response.answer, response.saved_at, response.score) == ("CO2", T0 + minutes(2), None)


@pytest.mark.parametrize(
    ("item_name", "answer", "message"),
    [
        ("single", "four", "A single-choice answer must be the id of one of the item's choices."),
        ("single", 999999, "A single-choice answer must be the id of one of the item's choices."),
        ("single", True, "A single-choice answer must be the id of one of the item's choices."),
        ("multiple", 5, "A multiple-choice answer must be a list of choice ids."),
        ("multiple", [999999], "A multiple-choice answer names a choice that is not on this item."),
        ("numeric", "three and a half", "A numeric answer must be a number, such as 3.5."),
        ("numeric", [3.5], "A numeric answer must be a number, such as 3.5."),
        ("short", 42, "A text answer must be a string."),
        ("short", "x" * 1001, "A text answer may be at most 1000 characters long."),
        ("extended", {"text": "hi"}, "A text answer must be a string."),
    ],
)
@both_saves
def test_autosave_validates_the_answer_shape(bank, item_name, answer, message, save):
    item = getattr(bank, item_name)
    attempt = services.attempt_start(
        assessment=assessment_with([item], bank.ratios), student=bank.student, now=T0
    )
    with pytest.raises(ValidationError) as error:
        save(attempt=attempt, item=item, answer=answer, now=T0)
    assert error.value.messages == [message]
    assert not Response.objects.exists()


@both_saves
def test_autosave_rejects_duplicate_choices(bank, save):
    attempt = services.attempt_start(
        assessment=assessment_with([bank.multiple], bank.ratios), student=bank.student, now=T0
    )
    two = bank.choice["two"].pk
    with pytest.raises(ValidationError, match="more than once"):
        save(attempt=attempt, item=bank.multiple, answer=[two, two], now=T0)


def test_autosave_refuses_an_item_not_on_the_form(bank):
    attempt = services.attempt_start(
        assessment=assessment_with([bank.short], bank.ratios), student=bank.student, now=T0
    )
    with pytest.raises(services.ItemNotOnForm):
        services.response_save(attempt=attempt, item=bank.numeric, answer="3", now=T0)


@both_saves
def test_autosave_is_closed_after_the_deadline_and_after_submit(bank, save):
    assessment = assessment_with([bank.short, bank.numeric], bank.ratios, time_limit_minutes=10)
    attempt = services.attempt_start(assessment=assessment, student=bank.student, now=T0)
    save(attempt=attempt, item=bank.short, answer="CO2", now=T0 + minutes(10))  # on time

    with pytest.raises(services.AttemptClosed, match="time limit has passed"):
        save(attempt=attempt, item=bank.short, answer="oxygen", now=T0 + minutes(11))
    services.attempt_submit(attempt=attempt, now=T0 + minutes(12))
    with pytest.raises(services.AttemptClosed, match="has been submitted"):
        save(attempt=attempt, item=bank.numeric, answer="31.4", now=T0 + minutes(5))
    assert Response.objects.get(item=bank.short).answer == "CO2"


def test_response_autosave_stores_every_answer_as_response_save_does(bank):
    """Same stored values, the JSON of each answer type and SQL NULL for a cleared answer alike."""
    items = [*bank.auto_items(), bank.extended]
    answers = {
        bank.single.pk: bank.choice["single_right"].pk,
        bank.multiple.pk: [bank.choice["six"].pk, bank.choice["two"].pk],  # stored sorted
        bank.numeric.pk: " 31.4 ",  # stored stripped
        bank.short.pk: 'caf\u00e9 "CO2"',
        bank.extended.pk: None,
    }
    stored = []
    for save in (services.response_save, autosave):
        attempt = services.attempt_start(
            assessment=assessment_with(items, bank.ratios), student=StudentFactory(), now=T0
        )
        for item in items:
            returned = save(attempt=attempt, item=item, answer=answers[item.pk], now=T0 + minutes(1))
            assert (returned.item_id, returned.saved_at) == (item.pk, T0 + minutes(1))
        stored.append(
            list(
                Response.objects.filter(attempt=attempt)
                .order_by("item_id")
                .values_list("item_id", "answer", "saved_at", "score", "needs_grading", "feedback")
            )
        )
        assert Response.objects.filter(attempt=attempt, answer__isnull=True).count() == 1
    assert stored[0] == stored[1]
    assert [answer for _, answer, *_ in stored[1]] == [
        answers[bank.single.pk],
        sorted(answers[bank.multiple.pk]),
        "31.4",
        'caf\u00e9 "CO2"',
        None,
    ]


def test_response_autosave_finds_only_the_students_own_attempt_and_its_form(bank):
    attempt = services.attempt_start(
        assessment=assessment_with([bank.short], bank.ratios), student=bank.student, now=T0
    )
    with pytest.raises(AttemptItem.DoesNotExist):  # not on the form
        autosave(attempt=attempt, item=bank.numeric, answer="3", now=T0)
    with pytest.raises(AttemptItem.DoesNotExist):  # someone else's attempt
        services.response_autosave(
            student=StudentFactory(), attempt_id=attempt.pk, item_id=bank.short.pk, answer="CO2", now=T0
        )
    assert not Response.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="elsewhere the autosave is response_save")
@pytest.mark.parametrize("item_name", ["single", "short"])
def test_response_autosave_is_one_read_and_one_write(bank, django_assert_num_queries, item_name):
    item = getattr(bank, item_name)
    attempt = services.attempt_start(
        assessment=assessment_with([item], bank.ratios), student=bank.student, now=T0
    )
    answer = bank.choice["single_right"].pk if item_name == "single" else "CO2"
    # the attempt with the item on its form (and the item's choice ids), then the guarded upsert
    for _ in range(2):  # an insert, then a replace
        with django_assert_num_queries(2):
            autosave(attempt=attempt, item=item, answer=answer, now=T0)
    assert Response.objects.get().answer == answer


# --- submitting -----------------------------------------------------------------------------------


def test_submit_scores_every_auto_item_and_each_competency(bank, scored):
    assessment = assessment_with(bank.auto_items(), bank.ratios)
    attempt = services.attempt_start(assessment=assessment, student=bank.student, now=T0)
    services.response_save(attempt=attempt, item=bank.single, answer=bank.choice["single_right"].pk, now=T0)
    services.response_save(
        attempt=attempt,
        item=bank.multiple,
        answer=[bank.choice["two"].pk, bank.choice["four"].pk, bank.choice["seven"].pk],
        now=T0,
    )
    services.response_save(attempt=attempt, item=bank.numeric, answer="31.46", now=T0)
    services.response_save(attempt=attempt, item=bank.short, answer="  carbon   DIOXIDE ", now=T0)

    attempt = services.attempt_submit(attempt=attempt, now=T0 + minutes(9))

    scores = dict(Response.objects.values_list("item_id", "score"))
    assert scores == {
        bank.single.pk: Decimal("1.00"),
        bank.multiple.pk: Decimal("1.00"),  # (2 right - 1 wrong) / 3 * 3 points
        bank.numeric.pk: Decimal("2.00"),  # |31.46 - 31.4159| <= 0.05
        bank.short.pk: Decimal("1.00"),
    }
    assert set(Response.objects.values_list("scored_key_version", flat=True)) == {1}
    assert (attempt.status, attempt.score, attempt.max_score, attempt.submitted_at) == (
        "completed",
        Decimal("5.00"),
        Decimal("7.00"),
        T0 + minutes(9),
    )
    results = {row.competency_id: row for row in attempt.competency_scores.all()}
    # ratios: 5 of 7 points -> 5/7 * 4 = 2.857 -> 2.86 on the scale -> level 2 (Near), not met
    assert (results[bank.ratios.pk].earned, results[bank.ratios.pk].possible) == (
        Decimal("5.00"),
        Decimal("7.00"),
    )
    assert (
        results[bank.ratios.pk].score,
        results[bank.ratios.pk].level_points,
        results[bank.ratios.pk].is_met,
    ) == (
        Decimal("2.86"),
        Decimal("2.00"),
        False,
    )
    # rates: only the single-choice item, right -> 1 of 1 -> 4.00 -> level 4, met
    assert (results[bank.rates.pk].score, results[bank.rates.pk].is_met) == (Decimal("4.00"), True)
    assert attempt.is_passed is False
    assert scored == [
        {"attempt_id": attempt.pk, "student_id": bank.student.pk, "signal": signals.attempt_scored}
    ]


def test_submit_maps_each_competency_onto_its_own_scale_or_none(bank):
    """Alignments and scale levels come from one joined query: a competency of a framework without a
    scale (fraction x 100, met at 80 %) sits beside one on the bank's four-level scale."""
    unscaled = CompetencyFactory(framework=FrameworkFactory(mastery_scale=None), code="U.1")
    numeric = ItemFactory(
        type=Item.Type.NUMERIC, answer_value=Decimal(3), max_points=Decimal(2), aligned_to=unscaled
    )
    ItemAlignment.objects.create(item=numeric, competency=bank.ratios, points=Decimal(1))
    attempt = services.attempt_start(
        assessment=assessment_with([bank.single, numeric], bank.ratios), student=bank.student, now=T0
    )
    services.response_save(attempt=attempt, item=bank.single, answer=bank.choice["single_right"].pk, now=T0)
    services.response_save(attempt=attempt, item=numeric, answer="3", now=T0)

    services.attempt_submit(attempt=attempt, now=T0)

    results = {
        row.competency_id: (row.earned, row.possible, row.score, row.level_points, row.is_met)
        for row in attempt.competency_scores.all()
    }
    assert results == {
        bank.ratios.pk: (Decimal("2.00"), Decimal("2.00"), Decimal("4.00"), Decimal("4.00"), True),
        bank.rates.pk: (Decimal("1.00"), Decimal("1.00"), Decimal("4.00"), Decimal("4.00"), True),
        unscaled.pk: (Decimal("1.00"), Decimal("1.00"), Decimal("100.00"), None, True),
    }


def test_a_second_submit_returns_the_stored_result_and_scores_nothing(bank, scored):
    attempt = services.attempt_start(
        assessment=assessment_with([bank.short], bank.ratios), student=bank.student, now=T0
    )
    services.response_save(attempt=attempt, item=bank.short, answer="CO2", now=T0)
    first = services.attempt_submit(attempt=attempt, now=T0 + minutes(1))
    Response.objects.update(score=Decimal("0.50"))  # a second scoring would overwrite this

    second = services.attempt_submit(attempt=attempt, now=T0 + minutes(2))

    assert (second.status, second.score, second.submitted_at) == ("completed", first.score, T0 + minutes(1))
    assert Response.objects.get().score == Decimal("0.50")
    assert len(scored) == 1


def test_rubric_items_wait_for_a_grader_then_the_attempt_completes(bank, scored):
    assessment = assessment_with([bank.short, bank.extended], bank.ratios)
    attempt = services.attempt_start(assessment=assessment, student=bank.student, now=T0)
    services.response_save(attempt=attempt, item=bank.short, answer="CO2", now=T0)
    services.response_save(attempt=attempt, item=bank.extended, answer="Per one unit.", now=T0)

    attempt = services.attempt_submit(attempt=attempt, now=T0 + minutes(1))
    assert (attempt.status, attempt.score, attempt.max_score) == ("submitted", None, Decimal("5.00"))
    essay = Response.objects.get(item=bank.extended)
    assert (essay.needs_grading, essay.score, essay.scored_key_version) == (True, None, None)
    assert scored == []

    teacher = TeacherFactory()
    with pytest.raises(ValidationError, match=r"between 0 and 4\.00"):
        services.response_grade(response=essay, points=5, grader=teacher)
    services.response_grade(
        response=essay, points="2", grader=teacher, feedback="Give an example.", now=T0 + minutes(60)
    )

    attempt.refresh_from_db()
    essay.refresh_from_db()
    assert (essay.score, essay.needs_grading, essay.grader, essay.feedback) == (
        Decimal("2.00"),
        False,
        teacher,
        "Give an example.",
    )
    assert (attempt.status, attempt.score, attempt.completed_at) == (
        "completed",
        Decimal("3.00"),
        T0 + minutes(60),
    )
    # ratios: 3 of 5 -> 2.40 -> level 2, not met
    row = attempt.competency_scores.get(competency=bank.ratios)
    assert (row.score, row.level_points, row.is_met) == (Decimal("2.40"), Decimal("2.00"), False)
    assert [call["attempt_id"] for call in scored] == [attempt.pk]

    services.response_grade(response=essay, points=4, grader=teacher, now=T0 + minutes(90))  # a regrade
    attempt.refresh_from_db()
    assert (attempt.score, attempt.is_passed, attempt.completed_at) == (
        Decimal("5.00"),
        True,
        T0 + minutes(60),
    )
    assert attempt.competency_scores.count() == 1
    assert len(scored) == 2


def test_grading_refuses_open_attempts_and_auto_items(bank):
    attempt = services.attempt_start(
        assessment=assessment_with([bank.short, bank.extended], bank.ratios), student=bank.student, now=T0
    )
    essay = services.response_save(attempt=attempt, item=bank.extended, answer="x", now=T0)
    with pytest.raises(ValidationError, match="not been submitted"):
        services.response_grade(response=essay, points=1, grader=TeacherFactory())
    services.attempt_submit(attempt=attempt, now=T0)
    with pytest.raises(ValidationError, match="graded by hand"):
        services.response_grade(
            response=Response.objects.get(item=bank.short), points=1, grader=TeacherFactory()
        )


# --- query budgets --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3, 12])
def test_start_query_count_does_not_grow_with_items(django_assert_num_queries, size):
    assessment, _ = pool_assessment(size=size * 2, draw=size)
    student = StudentFactory()
    first = services.attempt_start(assessment=assessment, student=student, now=T0)
    services.attempt_submit(attempt=first, now=T0)
    # savepoint, previous attempt, rules, pinned pools, aligned pool, previous form, inner savepoint,
    # insert attempt, insert form, release both savepoints, and the start gate that the progress
    # layer supplies through ASSESSMENTS_START_GATE (one query: the prerequisites' mastery)
    with django_assert_num_queries(12):
        services.attempt_start(assessment=assessment, student=student, now=T0)


@pytest.mark.parametrize("size", [3, 12])
def test_submit_query_count_does_not_grow_with_items(django_assert_num_queries, size):
    competency = CompetencyFactory()
    items = [ItemFactory(aligned_to=competency) for _ in range(size)]
    attempt = services.attempt_start(
        assessment=assessment_with(items, competency), student=StudentFactory(), now=T0
    )
    for item in items[: size - 1]:  # one left unanswered
        services.response_save(attempt=attempt, item=item, answer="4", now=T0)
    # savepoint, lock, form, responses, bulk update, bulk create, alignments with their scales' levels,
    # insert competency scores (an attempt in progress has none to delete), save attempt, release
    # savepoint (no choice items: no choice query)
    with django_assert_num_queries(10):
        services.attempt_submit(attempt=attempt, now=T0)
    assert attempt.__class__.objects.get(pk=attempt.pk).score == Decimal(size - 1)
