"""The teacher's grading queue for rubric items through the Django test client: what waits, who may
see and grade it, what a grade changes (the attempt's score, the student's mastery, the feedback the
student reads) and flat query counts."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from assessments import services
from assessments.models import Attempt, Item, ItemAlignment, ItemChoice, Response, RubricLevel
from progress.models import CompetencyMastery
from roster.models import Enrollment
from tests.factories import (
    AssessmentFactory,
    BlueprintRuleFactory,
    EnrollmentFactory,
    ItemFactory,
    TeacherFactory,
)
from tests.progress.flag_helpers import Classroom, classroom

pytestmark = pytest.mark.django_db

ANSWER = "Divide the price by the amount, then compare the prices per unit."


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


class Check:
    """A mastery check on the classroom's first competency: one single-choice item (1 point) and
    one written answer graded with a rubric of 4, 2 and 0 points (5 points in all)."""

    def __init__(self, room: Classroom) -> None:
        district = room.section.school.district
        competency = room.competencies[0]
        self.single = ItemFactory(district=district, type=Item.Type.SINGLE_CHOICE, stem="Pick four")
        self.right = ItemChoice.objects.create(item=self.single, text="four", is_correct=True, position=1)
        self.extended = ItemFactory(
            district=district,
            type=Item.Type.EXTENDED_TEXT,
            stem="Explain how to compare two phone plans with unit rates.",
            max_points=Decimal(4),
        )
        self.levels = {
            points: RubricLevel.objects.create(item=self.extended, points=Decimal(points), description=text)
            for points, text in [(4, "Complete"), (2, "Partial"), (0, "Missing")]
        }
        for item in (self.single, self.extended):
            ItemAlignment.objects.create(item=item, competency=competency, points=item.max_points)
        self.assessment = AssessmentFactory(
            district=district, competency=competency, title="Unit rates check"
        )
        BlueprintRuleFactory(
            assessment=self.assessment,
            competency=competency,
            items=[self.single, self.extended],
            draw_count=2,
        )

    def submit(self, student, answer: str = ANSWER) -> Response:
        """The student answers both items (the choice right) and submits; the written answer waits."""
        attempt = services.attempt_start(assessment=self.assessment, student=student)
        services.response_save(attempt=attempt, item=self.single, answer=self.right.pk)
        services.response_save(attempt=attempt, item=self.extended, answer=answer)
        services.attempt_submit(attempt=attempt)
        return Response.objects.get(attempt=attempt, item=self.extended)


def queue_url(room) -> str:
    return reverse("grading:queue", args=[room.section.pk])


def grade_url(response) -> str:
    return reverse("grading:grade", args=[response.pk])


def grade_data(response, level=None, feedback: str = "", section=None) -> dict:
    prefix = f"response-{response.pk}"
    data = {f"{prefix}-feedback": feedback}
    if level is not None:
        data[f"{prefix}-level"] = str(level.pk)
    if section is not None:
        data["section"] = str(section.pk)
    return data


def test_queue_lists_the_sections_answers_waiting_for_a_rubric_grade():
    room = classroom(3, names=[("Ana", "Ruiz"), ("Ben", "Ode"), ("Cy", "Lee")])
    ana, ben, _ = room.students
    check = Check(room)
    waiting = check.submit(ana)
    graded = check.submit(ben)
    services.response_grade(response=graded, points=Decimal(2), grader=room.teacher)
    other = classroom(1)
    outsider = check.submit(other.students[0])

    response = client_for(room.teacher).get(queue_url(room))

    assert response.status_code == 200
    words = text(response)
    assert "1 answer to grade with the rubric, oldest first." in words
    assert "Answer 1: Ana Ruiz" in words
    assert "Explain how to compare two phone plans with unit rates." in words
    assert ANSWER in words
    content = response.content.decode()
    assert f'action="{grade_url(waiting)}"' in content
    assert grade_url(graded) not in content
    assert grade_url(outsider) not in content
    for level, label in [(4, "4 points: Complete"), (2, "2 points: Partial"), (0, "0 points: Missing")]:
        assert f'value="{check.levels[level].pk}"' in content
        assert label in words
    assert "Feedback for the student" in words
    # The section page and the teacher's home link to it with the count.
    section_page = client_for(room.teacher).get(reverse("progress:section", args=[room.section.pk]))
    assert f'href="{queue_url(room)}" id="grading-link">Grading queue: 1 answer to grade</a>' in (
        section_page.content.decode()
    )
    home = client_for(room.teacher).get(reverse("progress:teacher-home"))
    assert (
        f'<a class="small grading-count" href="{queue_url(room)}">1 answer to grade' in home.content.decode()
    )


def test_an_empty_queue_says_so():
    room = classroom(1)
    response = client_for(room.teacher).get(queue_url(room))
    assert response.status_code == 200
    assert "Nothing to grade: every written answer has a grade." in text(response)


def test_grading_scores_the_attempt_recomputes_mastery_and_the_student_reads_the_feedback(
    django_capture_on_commit_callbacks,
):
    room = classroom(1, names=[("Ana", "Ruiz")])
    ana = room.students[0]
    check = Check(room)
    waiting = check.submit(ana)
    attempt = waiting.attempt
    assert (attempt.status, attempt.score) == (Attempt.Status.SUBMITTED, None)

    client = client_for(room.teacher)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            grade_url(waiting),
            grade_data(waiting, check.levels[4], "  Clear steps; name the unit next time.  ", room.section),
        )

    assert response.status_code == 302
    assert response["Location"] == queue_url(room)
    waiting.refresh_from_db()
    assert (waiting.score, waiting.needs_grading, waiting.grader, waiting.feedback) == (
        Decimal("4.00"),
        False,
        room.teacher,
        "Clear steps; name the unit next time.",
    )
    attempt.refresh_from_db()
    assert (attempt.status, attempt.score, attempt.max_score) == (
        Attempt.Status.COMPLETED,
        Decimal("5.00"),
        Decimal("5.00"),
    )
    mastery = CompetencyMastery.objects.get(student=ana, competency=room.competencies[0])
    assert (mastery.state, mastery.evidence_count) == (CompetencyMastery.State.MASTERED, 1)
    assert "Graded Ana Ruiz's answer on Unit rates check." in text(client.get(queue_url(room)))

    result = client_for(ana).get(reverse("assessments:result", args=[attempt.pk]))
    assert result.status_code == 200
    assert "Feedback from your teacher Clear steps; name the unit next time." in text(result)


def test_a_lower_grade_gives_a_lower_score():
    room = classroom(1)
    check = Check(room)
    waiting = check.submit(room.students[0])
    client_for(room.teacher).post(grade_url(waiting), grade_data(waiting, check.levels[2]))
    waiting.attempt.refresh_from_db()
    assert (waiting.attempt.status, waiting.attempt.score) == (Attempt.Status.COMPLETED, Decimal("3.00"))


def test_a_grade_without_a_level_or_with_anothers_level_changes_nothing():
    room = classroom(1)
    check = Check(room)
    waiting = check.submit(room.students[0])
    foreign = RubricLevel.objects.create(
        item=ItemFactory(type=Item.Type.EXTENDED_TEXT), points=Decimal(1), description="Other item"
    )
    client = client_for(room.teacher)

    missing = client.post(grade_url(waiting), grade_data(waiting, None, "Good"))
    wrong = client.post(grade_url(waiting), grade_data(waiting, foreign))

    assert (missing.status_code, wrong.status_code) == (400, 400)
    assert "This field is required." in text(missing)
    assert f"Select a valid choice. {foreign.pk} is not one of the available choices." in text(wrong)
    waiting.refresh_from_db()
    assert (waiting.score, waiting.needs_grading, waiting.feedback) == (None, True, "")


def test_the_grade_page_shows_one_answer_with_its_form():
    room = classroom(1, names=[("Ana", "Ruiz")])
    check = Check(room)
    waiting = check.submit(room.students[0])
    response = client_for(room.teacher).get(grade_url(waiting))
    assert response.status_code == 200
    words = text(response)
    assert "Grade Ana Ruiz's answer" in words
    assert ANSWER in words
    assert f'<input type="hidden" name="section" value="{room.section.pk}">' in response.content.decode()


def test_queue_and_grading_are_scoped_to_the_teachers_students():
    room = classroom(1)
    check = Check(room)
    waiting = check.submit(room.students[0])
    stranger = TeacherFactory(district=room.section.school.district)
    stranger_room = classroom(1)
    EnrollmentFactory(section=stranger_room.section, user=stranger, role=Enrollment.Role.TEACHER)
    for user in (stranger, room.students[0]):
        client = client_for(user)
        assert client.get(queue_url(room)).status_code == 404
        assert client.get(grade_url(waiting)).status_code == 404
        assert client.post(grade_url(waiting), grade_data(waiting, check.levels[4])).status_code == 404
    assert client_for(room.teacher).get(reverse("grading:queue", args=[999_999])).status_code == 404
    assert client_for(room.teacher).get(reverse("grading:grade", args=[999_999])).status_code == 404
    # an auto-scored response is not graded by hand
    single = Response.objects.get(attempt=waiting.attempt, item=check.single)
    assert client_for(room.teacher).get(grade_url(single)).status_code == 404
    assert Client().get(queue_url(room)).status_code == 302  # to the login page
    waiting.refresh_from_db()
    assert (waiting.score, waiting.needs_grading) == (None, True)


def test_an_inactive_enrollment_hides_the_students_answers():
    room = classroom(1)
    check = Check(room)
    waiting = check.submit(room.students[0])
    Enrollment.objects.filter(user=room.students[0]).update(is_active=False)
    assert client_for(room.teacher).get(grade_url(waiting)).status_code == 404
    assert "Nothing to grade" in text(client_for(room.teacher).get(queue_url(room)))


@pytest.mark.parametrize("size", [5, 40])
def test_queue_query_count_is_flat(django_assert_num_queries, size):
    room = classroom(size)
    check = Check(room)
    for student in room.students:
        check.submit(student)
    client = client_for(room.teacher)
    with django_assert_num_queries(5):  # session, user, section, responses, rubric levels
        response = client.get(queue_url(room))
    assert response.status_code == 200
    assert f"{size} answers to grade" in text(response)
