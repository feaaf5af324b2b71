"""The student's results history: every submitted attempt, newest first, with its score, form, date,
the competencies it affected and a link to its result; only the student's own; flat queries."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from assessments.models import Assessment, Attempt, AttemptCompetencyScore, AttemptItem
from tests.factories import (
    AssessmentFactory,
    AttemptFactory,
    CompetencyFactory,
    ItemFactory,
    StudentFactory,
    TeacherFactory,
)

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 11, 16, 14, 30, tzinfo=UTC)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def rows(response) -> list[str]:
    """Each attempt's row as its words, in page order."""
    content = response.content.decode()
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
        for row in re.findall(r'<tr data-attempt="\d+">(.*?)</tr>', content, flags=re.S)
    ]


def submitted(student, assessment, *, number, at, score=None, max_score="4", passed=None, items=2, met=()):
    """A submitted attempt with ``items`` items on its form and a competency result per ``met`` entry."""
    status = Attempt.Status.COMPLETED if score is not None else Attempt.Status.SUBMITTED
    attempt = AttemptFactory(
        assessment=assessment,
        student=student,
        number=number,
        started_at=at - timedelta(minutes=20),
        submitted_at=at,
        status=status,
        score=Decimal(score) if score is not None else None,
        max_score=Decimal(max_score),
        is_passed=passed,
    )
    AttemptItem.objects.bulk_create(
        AttemptItem(attempt=attempt, item=ItemFactory(), position=position, key_version_seen=1)
        for position in range(1, items + 1)
    )
    for competency, is_met, scale_score in met:
        AttemptCompetencyScore.objects.create(
            attempt=attempt,
            competency=competency,
            earned=Decimal(1),
            possible=Decimal(2),
            score=Decimal(scale_score),
            is_met=is_met,
        )
    return attempt


def test_results_lists_every_submitted_attempt_newest_first_with_what_it_did():
    student = StudentFactory()
    ratios = CompetencyFactory(code="6.RP.A.1", position=1)
    rates = CompetencyFactory(code="6.RP.A.2", framework=ratios.framework, position=2)
    check = AssessmentFactory(title="Ratios check", competency=ratios)
    practice = AssessmentFactory(title="Rates practice", kind=Assessment.Kind.PRACTICE, competency=rates)
    first = submitted(
        student, check, number=1, at=MONDAY, score="1.5", passed=False, met=[(ratios, False, "1.5")]
    )
    second = submitted(
        student,
        check,
        number=2,
        at=MONDAY + timedelta(days=2),
        score="4",
        passed=True,
        items=3,
        met=[(rates, True, "3"), (ratios, True, "4")],
    )
    graded_later = submitted(student, practice, number=1, at=MONDAY + timedelta(days=1))
    AttemptFactory(assessment=practice, student=student, number=2)  # in progress: not a result yet
    submitted(StudentFactory(), check, number=1, at=MONDAY, score="4", passed=True)  # someone else's

    response = client_for(student).get(reverse("assessments:results"))

    assert response.status_code == 200
    assert rows(response) == [
        "18 Nov 2026, 14:30 Ratios check Mastery check Attempt 2 · 3 questions 4 of 4 Passed "
        "6.RP.A.1: met (score 4) 6.RP.A.2: met (score 3) View result of Ratios check, attempt 2",
        "17 Nov 2026, 14:30 Rates practice Practice Attempt 1 · 2 questions Awaiting grading "
        "After grading View result of Rates practice, attempt 1",
        "16 Nov 2026, 14:30 Ratios check Mastery check Attempt 1 · 2 questions 1.50 of 4 Not passed "
        "6.RP.A.1: not met (score 1.50) View result of Ratios check, attempt 1",
    ]
    content = response.content.decode()
    for attempt in (second, graded_later, first):
        assert f'<a href="{reverse("assessments:result", args=[attempt.pk])}">View result' in content
    assert content.index(f'data-attempt="{second.pk}"') < content.index(f'data-attempt="{first.pk}"')


def test_results_is_empty_with_a_way_back_to_the_path():
    response = client_for(StudentFactory()).get(reverse("assessments:results"))
    assert "You have not handed in a practice or mastery check yet. Go to my path to start one." in text(
        response
    )
    assert rows(response) == []


def test_results_is_for_students_only_and_another_students_result_is_404():
    student = StudentFactory()
    other = StudentFactory(district=student.district)
    check = AssessmentFactory()
    theirs = submitted(other, check, number=1, at=MONDAY, score="2", passed=False)
    assert client_for(TeacherFactory()).get(reverse("assessments:results")).status_code == 404
    assert client_for(student).get(reverse("assessments:result", args=[theirs.pk])).status_code == 404
    assert rows(client_for(student).get(reverse("assessments:results"))) == []
    signed_out = Client().get(reverse("assessments:results"))
    assert signed_out["Location"] == f"{reverse('login')}?next={reverse('assessments:results')}"


@pytest.mark.parametrize("size", [3, 30])
def test_results_query_count_is_flat(django_assert_num_queries, size):
    """3 or 30 attempts, each with two competency results."""
    student = StudentFactory()
    ratios = CompetencyFactory(code="6.RP.A.1")
    rates = CompetencyFactory(code="6.RP.A.2", framework=ratios.framework)
    for index in range(size):
        submitted(
            student,
            AssessmentFactory(competency=ratios),
            number=1,
            at=MONDAY + timedelta(hours=index),
            score="3",
            passed=True,
            met=[(ratios, True, "3"), (rates, True, "3")],
        )
    client = client_for(student)
    with django_assert_num_queries(4):  # session, user, attempts with their forms' sizes, results
        response = client.get(reverse("assessments:results"))
    assert len(rows(response)) == size
    assert text(response).count("6.RP.A.2: met (score 3)") == size
