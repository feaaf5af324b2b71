"""GET me/path/ and GET students/{id}/progress/: shape, order, scoping and flat query counts."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

import pytest
from django.urls import reverse

from assessments.models import Assessment, BlueprintRule
from competencies.models import PacingGuide
from progress.services import mastery_recompute
from roster.models import Enrollment
from tests.assessments.conftest import api_client_for
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    DistrictFactory,
    EnrollmentFactory,
    EvidenceFactory,
    FrameworkFactory,
    ItemFactory,
    LearningResourceFactory,
    PrerequisiteFactory,
    SectionFactory,
    StaffFactory,
    StudentFactory,
    TeacherFactory,
)
from tests.progress.test_services import take

pytestmark = pytest.mark.django_db

WHEN = datetime.datetime(2026, 3, 14, 15, 0, tzinfo=datetime.UTC)


def classroom(framework=None):
    """A section with a pacing guide on ``framework``, its teacher and one student."""
    district = DistrictFactory()
    framework = framework or FrameworkFactory(district=district)
    section = SectionFactory(school__district=district)
    PacingGuide.objects.create(section=section, framework=framework)
    teacher = TeacherFactory(district=district)
    student = StudentFactory(district=district)
    EnrollmentFactory(section=section, user=teacher, role=Enrollment.Role.TEACHER)
    EnrollmentFactory(section=section, user=student, role=Enrollment.Role.STUDENT)
    return framework, section, teacher, student


def test_my_path_in_tree_order_with_states_lessons_and_what_i_can_start():
    framework, _, _, student = classroom()
    unit = CompetencyFactory(framework=framework, code="6.RP", statement="Ratios", position=1)
    ratios = CompetencyFactory(
        framework=framework, parent=unit, code="6.RP.A.1", statement="Ratios", position=1
    )
    rates = CompetencyFactory(
        framework=framework, parent=unit, code="6.RP.A.2", statement="Rates", position=2
    )
    CompetencyFactory(framework=framework, code="6.EE", statement="Expressions", position=2)
    PrerequisiteFactory(prerequisite=ratios, competency=rates)
    video = LearningResourceFactory(
        competency=ratios, title="Ratios in 6 minutes", url="https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    )
    practice = AssessmentFactory(competency=ratios, kind=Assessment.Kind.PRACTICE, title="Ratios practice")
    check = AssessmentFactory(competency=ratios, title="Ratios check")
    rates_check = AssessmentFactory(competency=rates, title="Rates check")
    AssessmentFactory(competency=rates, title="Draft", status=Assessment.Status.DRAFT)  # not shown
    EvidenceFactory(student=student, competency=ratios, score=Decimal("2.5"), observed_at=WHEN)
    mastery_recompute(student_id=student.pk)

    response = api_client_for(student).get(reverse("my-path"))

    assert response.status_code == 200
    path = response.json()
    assert [row["code"] for row in path] == ["6.RP", "6.RP.A.1", "6.RP.A.2", "6.EE"]
    assert [row["state"] for row in path] == ["in_progress", "in_progress", "locked", "ready"]
    assert path[1] == {
        "id": ratios.pk,
        "identifier": str(ratios.identifier),
        "code": "6.RP.A.1",
        "statement": "Ratios",
        "parent": unit.pk,
        "depth": 1,
        "state": "in_progress",
        "score": "2.50",
        "level": "Near",
        "level_points": "2.00",
        "resources": [
            {
                "id": video.pk,
                "kind": "video",
                "title": "Ratios in 6 minutes",
                "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                "embed_url": video.embed_url,
                "duration_minutes": 6,
            }
        ],
        "assessments": [
            {
                "id": practice.pk,
                "title": "Ratios practice",
                "kind": "practice",
                "can_start": True,
                "reason": None,
            },
            {
                "id": check.pk,
                "title": "Ratios check",
                "kind": "mastery_check",
                "can_start": True,
                "reason": None,
            },
        ],
    }
    assert path[2]["assessments"] == [
        {
            "id": rates_check.pk,
            "title": "Rates check",
            "kind": "mastery_check",
            "can_start": False,
            "reason": "Master 6.RP.A.1 first: Ratios.",
        }
    ]
    assert (path[3]["parent"], path[3]["depth"], path[3]["score"], path[3]["level"]) == (None, 0, None, None)


def test_my_path_shows_attempts_used_up_and_cooldown():
    framework, _, _, student = classroom()
    competency = CompetencyFactory(framework=framework)
    used = AssessmentFactory(competency=competency, title="A", max_attempts=1)
    cooling = AssessmentFactory(competency=competency, title="B", cooldown_hours=24)
    for assessment in (used, cooling):
        BlueprintRule.objects.create(assessment=assessment, competency=competency, draw_count=1)
    ItemFactory(aligned_to=competency)
    now = datetime.datetime.now(datetime.UTC)
    take(used, student, right=0, now=now - datetime.timedelta(hours=1))
    take(cooling, student, right=0, now=now - datetime.timedelta(hours=1))

    path = api_client_for(student).get(reverse("my-path")).json()

    first = path[0]["assessments"][0]
    assert (first["can_start"], first["reason"]) == (False, "All 1 attempts have been used.")
    assert path[0]["assessments"][1]["can_start"] is False
    assert path[0]["assessments"][1]["reason"].startswith("Cooldown: the next attempt opens at ")


def test_my_path_is_for_students_only():
    _, _, teacher, _ = classroom()
    assert api_client_for(teacher).get(reverse("my-path")).status_code == 403


@pytest.mark.parametrize("size", [3, 30])
def test_my_path_query_count_is_flat(django_assert_num_queries, size):
    framework, _, _, student = classroom()
    competencies = [CompetencyFactory(framework=framework, position=index) for index in range(size)]
    for earlier, later in itertools.pairwise(competencies):
        PrerequisiteFactory(prerequisite=earlier, competency=later)
    for competency in competencies:
        LearningResourceFactory(competency=competency)
        AssessmentFactory(competency=competency)
        EvidenceFactory(student=student, competency=competency, score=Decimal(2), observed_at=WHEN)
    mastery_recompute(student_id=student.pk)
    client = api_client_for(student)
    # frameworks, competencies, mastery rows, resources, assessments, missing prerequisites, attempts
    with django_assert_num_queries(7):
        response = client.get(reverse("my-path"))
    assert len(response.json()) == size


# --- one student's progress -----------------------------------------------------------------------


def test_progress_shows_each_competency_with_its_evidence_and_calculation():
    framework, _, teacher, student = classroom()
    competency = CompetencyFactory(framework=framework, code="7.RP.A.1")
    EvidenceFactory(student=student, competency=competency, score=Decimal(2), observed_at=WHEN)
    EvidenceFactory(
        student=student,
        competency=competency,
        score=Decimal(3),
        observed_at=WHEN + datetime.timedelta(days=1),
        author=teacher,
        note="At the board",
    )
    mastery_recompute(student_id=student.pk)

    response = api_client_for(teacher).get(reverse("student-progress", args=[student.pk]))

    assert response.status_code == 200
    body = response.json()
    assert body["student"] == {"id": student.pk, "name": student.get_full_name()}
    [row] = body["competencies"]
    assert (row["code"], row["state"], row["score"], row["level"], row["level_points"]) == (
        "7.RP.A.1",
        "in_progress",
        "2.65",
        "Near",
        "2.00",
    )
    assert (row["method"], row["evidence_count"], row["failed_checks"]) == ("weighted_average", 2, 1)
    assert (
        row["explanation"]
        == "weighted average: 0.65 x 3 (latest, 15 Mar) + 0.35 x 2 (earlier, 14 Mar) = 2.65 -> Near"
    )
    assert [(item["score"], item["note"]) for item in row["evidence"]] == [
        ("2.00", ""),
        ("3.00", "At the board"),
    ]
    assert row["evidence"][1]["author"] == {"id": teacher.pk, "name": teacher.get_full_name()}


def test_progress_is_scoped_to_who_may_see_the_student():
    framework, _, teacher, student = classroom()
    CompetencyFactory(framework=framework)
    _, _, other_teacher, other_student = classroom()
    staff = StaffFactory(district=student.district)
    other_staff = StaffFactory()
    url = reverse("student-progress", args=[student.pk])

    assert api_client_for(teacher).get(url).status_code == 200
    assert api_client_for(student).get(url).status_code == 200
    assert api_client_for(staff).get(url).status_code == 200
    for outsider in (other_teacher, other_student, other_staff):
        response = api_client_for(outsider).get(url)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
    assert api_client_for(teacher).get(reverse("student-progress", args=[10**9])).status_code == 404


def test_a_teacher_who_left_the_section_no_longer_sees_the_student():
    _, section, teacher, student = classroom()
    Enrollment.objects.filter(section=section, user=teacher).update(is_active=False)
    assert api_client_for(teacher).get(reverse("student-progress", args=[student.pk])).status_code == 404


@pytest.mark.parametrize("size", [3, 30])
def test_progress_query_count_is_flat(django_assert_num_queries, size):
    framework, _, teacher, student = classroom()
    for index in range(size):
        competency = CompetencyFactory(framework=framework, position=index)
        EvidenceFactory(
            student=student, competency=competency, score=Decimal(3), observed_at=WHEN, author=teacher
        )
    mastery_recompute(student_id=student.pk)
    client = api_client_for(teacher)
    # access, frameworks, competencies, mastery rows, evidence with authors
    with django_assert_num_queries(5):
        response = client.get(reverse("student-progress", args=[student.pk]))
    assert len(response.json()["competencies"]) == size
    assert sum(len(row["evidence"]) for row in response.json()["competencies"]) == size
