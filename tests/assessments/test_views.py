"""The student's attempt pages through the Django test client: access, the gate, no key before
submission, the no-JavaScript form flow, the result, and flat query counts."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assessments import services, signals
from assessments.models import Attempt, AttemptCompetencyScore, Item, Response
from competencies.models import LearningResource
from tests.assessments.conftest import assessment_with
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
    LearningResourceFactory,
    PrerequisiteFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_higher_layer_gate(settings):
    """The progress layer may plug a gate in; these tests pin the assessments gate alone."""
    settings.ASSESSMENTS_START_GATE = None


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def full_check(bank, **fields):
    return assessment_with([*bank.auto_items(), bank.extended], bank.ratios, **fields)


def started(bank, **fields) -> Attempt:
    return services.attempt_start(assessment=full_check(bank, **fields), student=bank.student)


def page(client, name, pk):
    return client.get(reverse(f"assessments:{name}", args=[pk]))


def answer_everything_right(bank, attempt: Attempt) -> None:
    for item, answer in [
        (bank.single, bank.choice["single_right"].pk),
        (bank.multiple, [bank.choice["two"].pk, bank.choice["four"].pk, bank.choice["six"].pk]),
        (bank.numeric, "31.42"),
        (bank.short, "  carbon   DIOXIDE "),
        (bank.extended, "A unit rate compares a quantity to one unit of another."),
    ]:
        services.response_save(attempt=attempt, item=item, answer=answer)


# --- the assessment page --------------------------------------------------------------------------


def test_assessment_page_shows_the_facts_and_an_open_start_button(bank):
    assessment = full_check(bank, time_limit_minutes=30, max_attempts=3, cooldown_hours=24)
    LearningResourceFactory(competency=bank.ratios, title="Ratios in five minutes")

    response = page(client_for(bank.student), "assessment", assessment.pk)

    assert response.status_code == 200
    html = response.content.decode()
    assert assessment.title in html
    assert "Mastery check" in html
    assert "30 minutes" in html
    assert "0 used, 3 of 3 left" in html
    assert "24 hours wait" in html
    assert "Ratios in five minutes" in html
    assert reverse("assessments:start", args=[assessment.pk]) in html
    start_button = re.search(r"<button type=\"submit\" class=\"btn btn-primary btn-lg\"[^>]*>", html)
    assert start_button is not None
    assert "disabled" not in start_button.group(0)


def test_the_gate_reason_shows_and_the_button_is_disabled_during_a_cooldown(bank):
    assessment = full_check(bank, cooldown_hours=24)
    attempt = services.attempt_start(assessment=assessment, student=bank.student)
    services.attempt_submit(attempt=attempt)

    response = page(client_for(bank.student), "assessment", assessment.pk)

    html = response.content.decode()
    attempt.refresh_from_db()
    opens_at = attempt.submitted_at + datetime.timedelta(hours=24)
    assert f'Cooldown: the next attempt opens on <time datetime="{opens_at.isoformat()}">' in html
    assert re.search(r"<button[^>]*disabled aria-describedby=\"gate-reason\"", html)
    # the earlier attempt is listed with its result link
    assert reverse("assessments:result", args=[attempt.pk]) in html


def test_the_gate_reason_shows_when_attempts_are_used_up(bank):
    assessment = full_check(bank, max_attempts=1)
    services.attempt_submit(attempt=services.attempt_start(assessment=assessment, student=bank.student))

    html = page(client_for(bank.student), "assessment", assessment.pk).content.decode()

    assert "All 1 attempts have been used." in html
    assert "1 used, 0 of 1 left" in html


def test_the_project_gate_reason_shows_for_a_missing_prerequisite(bank, settings):
    settings.ASSESSMENTS_START_GATE = "progress.gates.start_gate"
    PrerequisiteFactory(prerequisite=bank.rates, competency=bank.ratios)
    assessment = full_check(bank)

    html = page(client_for(bank.student), "assessment", assessment.pk).content.decode()

    assert f"Master {bank.rates.code} first" in html
    assert re.search(r"<button[^>]*disabled aria-describedby=\"gate-reason\"", html)


def test_an_open_attempt_is_offered_to_continue(bank):
    attempt = started(bank, time_limit_minutes=30)

    html = page(client_for(bank.student), "assessment", attempt.assessment_id).content.decode()

    assert "Continue attempt 1" in html
    assert reverse("assessments:attempt", args=[attempt.pk]) in html


def test_start_opens_an_attempt_and_a_refused_start_says_why(bank):
    assessment = full_check(bank, max_attempts=1)
    client = client_for(bank.student)

    response = client.post(reverse("assessments:start", args=[assessment.pk]))

    attempt = Attempt.objects.get(assessment=assessment, student=bank.student)
    assert response.status_code == 302
    assert response.url == reverse("assessments:attempt", args=[attempt.pk])
    services.attempt_submit(attempt=attempt)
    refused = client.post(reverse("assessments:start", args=[assessment.pk]), follow=True)
    assert "All 1 attempts have been used." in refused.content.decode()
    assert Attempt.objects.filter(assessment=assessment).count() == 1


def test_start_only_answers_a_post(bank):
    assessment = full_check(bank)
    assert client_for(bank.student).get(reverse("assessments:start", args=[assessment.pk])).status_code == 405


# --- who may see what -----------------------------------------------------------------------------


def test_another_districts_assessment_is_not_found(bank):
    elsewhere = AssessmentFactory(district=DistrictFactory())
    assert page(client_for(bank.student), "assessment", elsewhere.pk).status_code == 404


@pytest.mark.parametrize("name", ["attempt", "attempt-submit", "result"])
def test_another_students_attempt_is_not_found(bank, name):
    attempt = started(bank)
    if name == "result":
        services.attempt_submit(attempt=attempt)
    classmate = StudentFactory(district=bank.student.district)

    assert page(client_for(classmate), name, attempt.pk).status_code == 404
    assert (
        client_for(classmate).post(reverse("assessments:attempt-submit", args=[attempt.pk])).status_code
        == 404
    )
    attempt.refresh_from_db()
    assert attempt.status == (Attempt.Status.IN_PROGRESS if name != "result" else Attempt.Status.SUBMITTED)


@pytest.mark.parametrize("factory", [TeacherFactory, StaffFactory])
def test_teachers_and_staff_get_not_found_on_student_pages(bank, factory):
    attempt = started(bank)
    other = factory(district=bank.student.district)
    client = client_for(other)
    assert page(client, "assessment", attempt.assessment_id).status_code == 404
    assert page(client, "attempt", attempt.pk).status_code == 404
    assert page(client, "result", attempt.pk).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(bank):
    attempt = started(bank)
    response = Client().get(reverse("assessments:attempt", args=[attempt.pk]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


# --- taking the attempt ---------------------------------------------------------------------------


def test_the_attempt_page_lists_the_form_in_order_with_an_input_per_type(bank):
    attempt = started(bank, time_limit_minutes=30)

    response = page(client_for(bank.student), "attempt", attempt.pk)

    assert response.status_code == 200
    html = response.content.decode()
    positions = [
        html.index(f'id="item-{item_id}"')
        for item_id in attempt.attempt_items.order_by("position").values_list("item_id", flat=True)
    ]
    assert positions == sorted(positions)
    assert "<p>Pick <strong>4</strong></p>" in html  # the stem, rendered and sanitised
    assert html.count(f'type="radio" name="item-{bank.single.pk}"') == 2
    assert html.count(f'type="checkbox" name="item-{bank.multiple.pk}"') == 4
    assert (
        f'type="number" step="any" inputmode="decimal"\n                 name="item-{bank.numeric.pk}"'
        in html
    )
    assert f'name="item-{bank.short.pk}"' in html
    assert f'<textarea class="form-control" rows="6" maxlength="20000" name="item-{bank.extended.pk}"' in html
    # every input has a label, and every item is a fieldset with a legend
    for input_id in re.findall(r'<(?:input|textarea)[^>]*\sid="([^"]+)"', html):
        assert f'for="{input_id}"' in html
    assert html.count("<fieldset") == html.count("<legend") == 5
    # the server's remaining time feeds the countdown; the script is external
    remaining = int(
        re.search(r'id="countdown" class="countdown" data-remaining-seconds="(\d+)"', html).group(1)
    )
    assert 29 * 60 <= remaining <= 30 * 60
    assert "assessments/attempt.js" in html
    assert "<script>" not in html and "onclick" not in html and "style=" not in html


def test_the_attempt_page_carries_no_answer_key(bank):
    attempt = started(bank, time_limit_minutes=30)
    # the student's own answers: a right numeric value (it may appear once: as their answer), wrong texts
    services.response_save(attempt=attempt, item=bank.numeric, answer="31.4159")
    services.response_save(attempt=attempt, item=bank.short, answer="oxygen")
    services.response_save(attempt=attempt, item=bank.multiple, answer=[bank.choice["seven"].pk])

    html = page(client_for(bank.student), "attempt", attempt.pk).content.decode()

    assert html.count("31.4159") == 1
    assert 'value="31.4159"' in html
    assert "31.41590" not in html
    for secret in ("Carbon dioxide", "CO2", "0.05", "Secret rubric", "is_correct", "correct", "tolerance"):
        assert secret.lower() not in html.lower(), secret
    # the right choice's input looks exactly like the wrong one's
    right = re.search(rf'<input[^>]*value="{bank.choice["single_right"].pk}"[^>]*>', html).group(0)
    wrong = re.search(rf'<input[^>]*value="{bank.choice["single_wrong"].pk}"[^>]*>', html).group(0)
    normalise = lambda tag: re.sub(r"\d+", "N", tag)  # noqa: E731
    assert normalise(right) == normalise(wrong)
    # the script carries no key either
    script = client_for(bank.student).get("/static/assessments/attempt.js")
    if script.status_code == 200:
        body = b"".join(script.streaming_content).decode()
        assert "31.4159" not in body and "CO2" not in body


def test_saved_answers_are_filled_in_again(bank):
    attempt = started(bank)
    services.response_save(attempt=attempt, item=bank.single, answer=bank.choice["single_wrong"].pk)
    services.response_save(
        attempt=attempt, item=bank.multiple, answer=[bank.choice["two"].pk, bank.choice["six"].pk]
    )
    services.response_save(attempt=attempt, item=bank.numeric, answer=2.5)
    services.response_save(attempt=attempt, item=bank.short, answer="water <b>")
    services.response_save(attempt=attempt, item=bank.extended, answer="Line one\nline two")

    html = page(client_for(bank.student), "attempt", attempt.pk).content.decode()

    def checked(choice):
        return re.search(rf'<input[^>]*value="{choice.pk}"[^>]*>', html).group(0).endswith("checked>")

    assert checked(bank.choice["single_wrong"]) and not checked(bank.choice["single_right"])
    assert checked(bank.choice["two"]) and checked(bank.choice["six"]) and not checked(bank.choice["four"])
    assert 'value="2.5"' in html
    assert 'value="water &lt;b&gt;"' in html
    assert ">Line one\nline two</textarea>" in html
    assert '<span id="answered-count">5</span> of 5 answered' in html


def test_the_form_post_saves_answers_without_javascript(bank):
    attempt = started(bank)
    client = client_for(bank.student)

    response = client.post(
        reverse("assessments:attempt", args=[attempt.pk]),
        {
            "action": "save",
            f"item-{bank.single.pk}": str(bank.choice["single_right"].pk),
            f"item-{bank.multiple.pk}": [str(bank.choice["two"].pk), str(bank.choice["four"].pk)],
            f"item-{bank.numeric.pk}": " 31.4 ",
            f"item-{bank.short.pk}": "CO2",
            f"item-{bank.extended.pk}": "",
        },
    )

    assert response.status_code == 302
    assert response.url == reverse("assessments:attempt", args=[attempt.pk])
    saved = dict(Response.objects.filter(attempt=attempt).values_list("item_id", "answer"))
    assert saved == {
        bank.single.pk: bank.choice["single_right"].pk,
        bank.multiple.pk: sorted([bank.choice["two"].pk, bank.choice["four"].pk]),
        bank.numeric.pk: "31.4",
        bank.short.pk: "CO2",
    }
    review = client.post(reverse("assessments:attempt", args=[attempt.pk]), {"action": "review"})
    assert review.url == reverse("assessments:attempt-submit", args=[attempt.pk])
    # a blank field clears a saved answer
    assert Response.objects.get(attempt=attempt, item=bank.short).answer is None


def test_a_refused_answer_is_shown_beside_its_question(bank):
    attempt = started(bank)

    response = client_for(bank.student).post(
        reverse("assessments:attempt", args=[attempt.pk]),
        {"action": "submit", f"item-{bank.numeric.pk}": "about three", f"item-{bank.short.pk}": "CO2"},
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "Not saved: A numeric answer must be a number, such as 3.5." in html
    assert 'value="about three"' in html
    assert 'aria-invalid="true"' in html
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.IN_PROGRESS
    assert Response.objects.get(attempt=attempt, item=bank.short).answer == "CO2"


def test_the_confirmation_page_counts_unanswered_items(bank):
    attempt = started(bank)
    services.response_save(attempt=attempt, item=bank.short, answer="CO2")
    services.response_save(attempt=attempt, item=bank.numeric, answer="3")

    html = page(client_for(bank.student), "attempt-submit", attempt.pk).content.decode()

    assert "You have answered 2 of 5 questions" in html
    assert "3 unanswered" in html
    assert f"#item-{bank.single.pk}" in html and f"#item-{bank.short.pk}" not in html


def test_submitting_through_the_form_scores_once(bank):
    assessment = assessment_with(bank.auto_items(), bank.ratios)
    attempt = services.attempt_start(assessment=assessment, student=bank.student)
    answer_right = {
        "action": "submit",
        f"item-{bank.single.pk}": str(bank.choice["single_right"].pk),
        f"item-{bank.multiple.pk}": [str(bank.choice["two"].pk), str(bank.choice["four"].pk)],
        f"item-{bank.numeric.pk}": "31.4",
        f"item-{bank.short.pk}": "carbon dioxide",
    }
    announcements = []

    def receiver(**kwargs):
        announcements.append(kwargs["attempt_id"])

    signals.attempt_scored.connect(receiver)
    try:
        client = client_for(bank.student)
        first = client.post(reverse("assessments:attempt", args=[attempt.pk]), answer_right)
        again = client.post(reverse("assessments:attempt-submit", args=[attempt.pk]))
        late = client.post(reverse("assessments:attempt", args=[attempt.pk]), answer_right)
    finally:
        signals.attempt_scored.disconnect(receiver)

    result_url = reverse("assessments:result", args=[attempt.pk])
    assert first.url == again.url == late.url == result_url
    attempt.refresh_from_db()
    # single 1 + multiple 2 of 3 (partial credit) + numeric 2 + short 1 = 6 of 7
    assert attempt.status == Attempt.Status.COMPLETED
    assert attempt.score == Decimal("6.00")
    assert attempt.max_score == Decimal("7.00")
    assert announcements == [attempt.pk]
    assert AttemptCompetencyScore.objects.filter(attempt=attempt).count() == 2


def test_after_the_deadline_the_page_is_closed_and_offers_the_result(bank):
    attempt = started(bank, time_limit_minutes=10)
    services.response_save(attempt=attempt, item=bank.short, answer="CO2")
    Attempt.objects.filter(pk=attempt.pk).update(
        started_at=timezone.now() - datetime.timedelta(minutes=20),
        deadline=timezone.now() - datetime.timedelta(minutes=10),
    )
    attempt.refresh_from_db()
    client = client_for(bank.student)

    html = page(client, "attempt", attempt.pk).content.decode()

    assert "Time is up: this attempt is closed" in html
    assert "See my result" in html
    assert f'name="item-{bank.short.pk}"' not in html
    late = client.post(
        reverse("assessments:attempt", args=[attempt.pk]),
        {"action": "save", f"item-{bank.short.pk}": "changed too late"},
    )
    assert late.url == reverse("assessments:result", args=[attempt.pk])
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.SUBMITTED  # the extended item waits for a teacher
    assert attempt.submitted_at == attempt.deadline
    assert Response.objects.get(attempt=attempt, item=bank.short).answer == "CO2"


# --- the result -----------------------------------------------------------------------------------


def test_the_result_shows_pending_rubric_items_then_the_grade_and_feedback(bank):
    attempt = started(bank)
    answer_everything_right(bank, attempt)
    services.attempt_submit(attempt=attempt)
    client = client_for(bank.student)

    pending = page(client, "result", attempt.pk).content.decode()

    assert "Submitted: awaiting teacher grading" in pending
    assert "Scored so far: 7 of 11 points" in pending
    assert pending.count("Awaiting teacher grading") == 1

    teacher = TeacherFactory(district=bank.student.district)
    response = Response.objects.get(attempt=attempt, item=bank.extended)
    services.response_grade(
        response=response, points=3, grader=teacher, feedback="Give an example next time."
    )
    html = page(client, "result", attempt.pk).content.decode()

    # 7 auto-scored + 3 of 4 = 10 of 11: ratios 10/11 of 4 = 3.64 (Mastery), rates 1/1 = 4.00 (Exceeds)
    assert "10 of 11 points" in html
    assert "Give an example next time." in html
    ratios = re.search(rf'<tr id="competency-{bank.ratios.pk}">.*?</tr>', html, re.DOTALL).group(0)
    assert "3.64 of 4" in ratios and "Mastery" in ratios and "Met" in ratios
    rates = re.search(rf'<tr id="competency-{bank.rates.pk}">.*?</tr>', html, re.DOTALL).group(0)
    assert "4 of 4" in rates and "Exceeds" in rates
    assert "Passed: every competency met" in html
    assert "Awaiting teacher grading" not in html


def test_a_met_competency_points_to_what_it_unlocks(bank):
    attempt = services.attempt_start(
        assessment=assessment_with([bank.short], bank.rates), student=bank.student
    )
    ItemFactory(aligned_to=bank.rates)  # keeps the numbers honest: only the form counts
    next_competency = CompetencyFactory(framework=bank.ratios.framework, code="7.RP.A.3")
    PrerequisiteFactory(prerequisite=bank.ratios, competency=next_competency)
    next_check = AssessmentFactory(competency=next_competency, title="Percent problems check")
    services.response_save(attempt=attempt, item=bank.short, answer="CO2")
    services.attempt_submit(attempt=attempt)

    html = page(client_for(bank.student), "result", attempt.pk).content.decode()

    assert "Well done: you can move on." in html
    assert "7.RP.A.3" in html
    assert reverse("assessments:assessment", args=[next_check.pk]) in html
    assert "Back to my path" in html


def test_a_competency_not_met_points_to_the_lesson_and_the_retake(bank):
    assessment = assessment_with(bank.auto_items(), bank.ratios, cooldown_hours=12, max_attempts=3)
    LearningResourceFactory(
        competency=bank.ratios, title="Ratio tables, the video", kind=LearningResource.Kind.VIDEO
    )
    attempt = services.attempt_start(assessment=assessment, student=bank.student)
    services.response_save(attempt=attempt, item=bank.short, answer="oxygen")
    services.attempt_submit(attempt=attempt)

    html = page(client_for(bank.student), "result", attempt.pk).content.decode()

    assert "0 of 7 points" in html
    assert "Not met" in html
    assert "Review the lesson before you try again" in html
    assert "Ratio tables, the video" in html
    assert "The retake opens on" in html
    assert "Not answered: 0 of 1 point<" in html  # the single-choice item
    assert "Your answer" in html and "oxygen" in html


def test_the_result_of_an_open_attempt_sends_back_to_the_attempt(bank):
    attempt = started(bank)
    response = page(client_for(bank.student), "result", attempt.pk)
    assert response.status_code == 302
    assert response.url == reverse("assessments:attempt", args=[attempt.pk])


# --- query counts ---------------------------------------------------------------------------------


def _check_with_items(count: int):
    district = DistrictFactory()
    competency = CompetencyFactory(framework=FrameworkFactory(district=district))
    student = StudentFactory(district=district)
    items = []
    for index in range(count):
        kind = [Item.Type.SHORT_TEXT, Item.Type.SINGLE_CHOICE, Item.Type.NUMERIC][index % 3]
        if kind == Item.Type.SINGLE_CHOICE:
            item = ItemFactory(type=kind, aligned_to=competency, accepted_answers=[])
            item.choices.create(text="yes", is_correct=True, position=1)
            item.choices.create(text="no", position=2)
        elif kind == Item.Type.NUMERIC:
            item = ItemFactory(type=kind, aligned_to=competency, answer_value=Decimal(3), accepted_answers=[])
        else:
            item = ItemFactory(type=kind, aligned_to=competency)
        items.append(item)
    assessment = assessment_with(items, competency, time_limit_minutes=30)
    LearningResourceFactory(competency=competency)
    attempt = services.attempt_start(assessment=assessment, student=student)
    for item in items[::2]:
        services.response_save(
            attempt=attempt,
            item=item,
            answer=item.choices.first().pk if item.type == Item.Type.SINGLE_CHOICE else "3",
        )
    return student, attempt


@pytest.mark.parametrize("items", [3, 12])
def test_the_attempt_pages_query_counts_are_flat(django_assert_num_queries, items):
    student, attempt = _check_with_items(items)
    client = client_for(student)

    # session, user, attempt, form items, their choices, responses
    with django_assert_num_queries(6):
        assert page(client, "attempt", attempt.pk).status_code == 200
    with django_assert_num_queries(6):
        assert page(client, "attempt-submit", attempt.pk).status_code == 200
    # session, user, assessment, its competency, attempts (the gate), lesson resources
    with django_assert_num_queries(6):
        assert page(client, "assessment", attempt.assessment_id).status_code == 200

    services.attempt_submit(attempt=attempt)
    # session, user, attempt, form items, choices, responses, competency scores, levels,
    # attempts (the gate), lesson resources of the competency not met
    with django_assert_num_queries(10):
        assert page(client, "result", attempt.pk).status_code == 200
