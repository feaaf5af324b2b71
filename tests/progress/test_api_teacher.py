"""The teacher API: sections, heatmap, groups, the flag queue and its actions, scoped to their sections."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from progress import flag_services, services
from progress.models import InterventionFlag
from roster.models import Enrollment
from tests.factories import EnrollmentFactory, PrerequisiteFactory, TeacherFactory
from tests.progress.flag_helpers import NOW, at, check, classroom, mastery

pytestmark = pytest.mark.django_db

Status = InterventionFlag.Status


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def stuck_flag(student, competency) -> InterventionFlag:
    return InterventionFlag.objects.create(
        student=student,
        competency=competency,
        kind="stuck",
        reason="failed twice",
        suggestion="re-watch",
        opened_at=NOW,
    )


def test_sections_lists_only_the_teachers_own_sections():
    room, other = classroom(2), classroom(1)
    response = client_for(room.teacher).get("/api/v1/sections/")
    assert response.status_code == 200
    assert [(row["id"], row["title"], row["student_count"]) for row in response.json()] == [
        (room.section.pk, "Math 6A", 2)
    ]
    assert other.section.pk not in [row["id"] for row in response.json()]


def test_heatmap_shape():
    """A cell without a stored mastery row (sparse storage) shows the state ``progress.grid`` derives:
    ready when every prerequisite is mastered (or there is none), else locked, with no level or score."""
    room = classroom(2, names=[("Ana", "Ruiz"), ("Ben", "Ode")])
    ana, ben = room.students
    first, second, third, fourth = room.competencies
    PrerequisiteFactory(competency=third, prerequisite=second)
    PrerequisiteFactory(competency=fourth, prerequisite=first)
    mastery(ben, first, state="mastered", score="3.50", level_points="3", level_name="Mastery")
    mastery(ben, second, state="in_progress", score="2", level_points="2", level_name="Near")
    mastery(ana, first, state="ready")
    stuck_flag(ben, second)

    response = client_for(room.teacher).get(f"/api/v1/sections/{room.section.pk}/heatmap/")

    assert response.status_code == 200

    def blank(competency, state):
        return {
            "competency_id": competency.pk,
            "state": state,
            "level": None,
            "level_name": "",
            "score": None,
        }

    assert response.json() == {
        "competencies": [{"id": c.pk, "code": c.code} for c in room.competencies],
        "students": [
            {
                "id": ben.pk,
                "name": "Ben Ode",
                "open_flags": 1,
                "cells": [
                    {
                        "competency_id": first.pk,
                        "state": "mastered",
                        "level": "3.00",
                        "level_name": "Mastery",
                        "score": "3.50",
                    },
                    {
                        "competency_id": second.pk,
                        "state": "in_progress",
                        "level": "2.00",
                        "level_name": "Near",
                        "score": "2.00",
                    },
                    blank(third, "locked"),  # 6.RP.A.2 only in progress
                    blank(fourth, "ready"),  # 6.RP.A.1 mastered
                ],
            },
            {
                "id": ana.pk,
                "name": "Ana Ruiz",
                "open_flags": 0,
                "cells": [
                    {
                        "competency_id": first.pk,
                        "state": "ready",
                        "level": None,
                        "level_name": "",
                        "score": None,
                    },
                    blank(second, "ready"),  # no prerequisite
                    blank(third, "locked"),
                    blank(fourth, "locked"),  # 6.RP.A.1 ready, not mastered
                ],
            },
        ],
    }


def test_another_teachers_section_and_flags_answer_404():
    room, other = classroom(1), classroom(1)
    flag = stuck_flag(other.students[0], other.competencies[0])
    client = client_for(room.teacher)
    assert client.get(f"/api/v1/sections/{other.section.pk}/heatmap/").status_code == 404
    assert client.get(f"/api/v1/sections/{other.section.pk}/groups/").status_code == 404
    assert client.get(f"/api/v1/flags/?section={other.section.pk}").status_code == 404
    assert client.get("/api/v1/flags/").json() == []
    for action in ("acknowledge", "resolve", "snooze"):
        response = client.post(
            f"/api/v1/flags/{flag.pk}/{action}/", {"note": "x", "until": "2099-01-01"}, format="json"
        )
        assert response.status_code == 404, action
    flag.refresh_from_db()
    assert flag.status == Status.OPEN


def test_students_and_other_roles_are_refused():
    room = classroom(1)
    assert client_for(room.students[0]).get("/api/v1/sections/").status_code == 403
    assert APIClient().get("/api/v1/sections/").status_code in (401, 403)


def test_flag_list_filters_by_section_and_status():
    room = classroom(2)
    open_flag = stuck_flag(room.students[0], room.competencies[0])
    done = stuck_flag(room.students[1], room.competencies[0])
    done.status = Status.RESOLVED
    done.save()
    client = client_for(room.teacher)

    response = client.get(f"/api/v1/flags/?section={room.section.pk}&status=open")

    assert response.status_code == 200
    [row] = response.json()
    assert {
        key: row[key] for key in ("id", "student", "competency", "kind", "reason", "suggestion", "status")
    } == {
        "id": open_flag.pk,
        "student": room.students[0].pk,
        "competency": room.competencies[0].pk,
        "kind": "stuck",
        "reason": "failed twice",
        "suggestion": "re-watch",
        "status": "open",
    }
    assert row["opened_at"] == "2027-03-15T15:00:00Z"
    assert len(client.get("/api/v1/flags/").json()) == 2
    assert client.get("/api/v1/flags/?status=nonsense").status_code == 400
    assert client.get("/api/v1/flags/?section=abc").status_code == 400


def test_acknowledge_snooze_resolve_store_status_who_and_note():
    room = classroom(1)
    flag = stuck_flag(room.students[0], room.competencies[0])
    client = client_for(room.teacher)

    response = client.post(
        f"/api/v1/flags/{flag.pk}/acknowledge/", {"note": "Seeing her Tuesday"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["resolution_note"]) == (
        "acknowledged",
        "Seeing her Tuesday",
    )
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_by, flag.resolution_note) == (
        Status.ACKNOWLEDGED,
        room.teacher,
        "Seeing her Tuesday",
    )

    for bad in ({"note": "x"}, {"until": "next week"}, {"until": "2027-02-30"}, {"until": "2000-01-01"}):
        assert client.post(f"/api/v1/flags/{flag.pk}/snooze/", bad, format="json").status_code == 400, bad
    until = (timezone.localdate() + timedelta(days=7)).isoformat()
    response = client.post(
        f"/api/v1/flags/{flag.pk}/snooze/", {"note": "After the quiz", "until": until}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["snoozed_until"]) == ("snoozed", until)

    response = client.post(f"/api/v1/flags/{flag.pk}/resolve/", {"note": "Retaught"}, format="json")
    assert response.status_code == 200
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_by, flag.resolution_note, flag.is_auto_resolved) == (
        Status.RESOLVED,
        room.teacher,
        "Retaught",
        False,
    )
    assert [record.history_user for record in flag.history.all()[:3]] == [room.teacher] * 3
    # Acting on a resolved flag is bad input, not a crash.
    assert client.post(f"/api/v1/flags/{flag.pk}/acknowledge/", {}, format="json").status_code == 400


def test_groups_endpoint():
    room = classroom(3, names=[("Ana", "Ruiz"), ("Ben", "Ode"), ("Cy", "Lee")])
    first = room.competencies[0]
    for student in room.students:
        check(student, first, at(3, 10))
        check(student, first, at(3, 12))
        services.mastery_recompute(student_id=student.pk, now=NOW)
    flag_services.flags_refresh_for_students(student_ids=[s.pk for s in room.students], now=NOW)

    response = client_for(room.teacher).get(f"/api/v1/sections/{room.section.pk}/groups/")

    assert response.status_code == 200
    stuck, *others = response.json()
    assert [group["kind"] for group in others] == ["ready"] * 3  # 6.RP.A.2 .. 4 have no prerequisites
    assert stuck == (
        {
            "competency_id": first.pk,
            "code": "6.RP.A.1",
            "kind": "stuck",
            "reason": "3 students are stuck on 6.RP.A.1 (Ana Ruiz, Ben Ode and Cy Lee): reteach it as a small group",
            "students": [student.pk for student in room.students],
        }
    )


@pytest.fixture
def two_classes():
    """A teacher with a class of 3 and a class of 30, every student with mastery rows and a flag."""
    small = classroom(3)
    teacher = small.teacher
    large = classroom(30)
    EnrollmentFactory(section=large.section, user=teacher, role=Enrollment.Role.TEACHER)
    for room in (small, large):
        for student in room.students:
            for competency in room.competencies[:2]:
                mastery(
                    student, competency, state="in_progress", score="2", level_points="2", level_name="Near"
                )
            stuck_flag(student, room.competencies[0])
    return teacher, small, large


@pytest.mark.parametrize("size", ["small", "large"])
def test_heatmap_query_count_is_flat(django_assert_num_queries, two_classes, size):
    teacher, small, large = two_classes
    room = small if size == "small" else large
    client = client_for(teacher)
    # section + guide, competencies, students, mastery rows, the blank cells' competencies and
    # prerequisites (progress.grid.blank_states), flag counts
    with django_assert_num_queries(7):
        response = client.get(f"/api/v1/sections/{room.section.pk}/heatmap/")
    assert response.status_code == 200
    assert len(response.json()["students"]) == len(room.students)


@pytest.mark.parametrize("size", ["small", "large"])
def test_flag_list_query_count_is_flat(django_assert_num_queries, two_classes, size):
    teacher, small, large = two_classes
    room = small if size == "small" else large
    client = client_for(teacher)
    with django_assert_num_queries(2):  # the section, the flags with their student and competency
        response = client.get(f"/api/v1/flags/?section={room.section.pk}&status=open")
    assert len(response.json()) == len(room.students)


def test_another_teacher_cannot_act_even_in_the_same_school():
    room = classroom(1)
    stranger = TeacherFactory(district=room.section.school.district)
    flag = stuck_flag(room.students[0], room.competencies[0])
    assert (
        client_for(stranger).post(f"/api/v1/flags/{flag.pk}/resolve/", {}, format="json").status_code == 404
    )
