"""Suggested small groups: students stuck on, or ready for, the same competency."""

from __future__ import annotations

import pytest

from progress import flag_services, services
from progress.groups import section_groups
from progress.models import InterventionFlag
from tests.progress.flag_helpers import NOW, at, check, classroom, mastery

pytestmark = pytest.mark.django_db


def test_three_students_stuck_on_the_same_competency_make_one_group():
    room = classroom(4, names=[("Ana", "Ruiz"), ("Ben", "Ode"), ("Cy", "Lee"), ("Di", "Roy")])
    first = room.competencies[0]
    for student in room.students[:3]:
        check(student, first, at(3, 10))
        check(student, first, at(3, 12))
        services.mastery_recompute(student_id=student.pk, now=NOW)
    flag_services.flags_refresh_for_students(student_ids=[s.pk for s in room.students], now=NOW)

    stuck = [group for group in section_groups(section=room.section) if group.kind == "stuck"]

    assert [(group.competency_id, group.reason, group.students) for group in stuck] == [
        (
            first.pk,
            "3 students are stuck on 6.RP.A.1 (Ana Ruiz, Ben Ode and Cy Lee): reteach it as a small group",
            [room.students[0].pk, room.students[1].pk, room.students[2].pk],
        )
    ]


def test_students_ready_for_the_same_competency_and_no_group_of_one():
    room = classroom(3, names=[("Ana", "Ruiz"), ("Ben", "Ode"), ("Cy", "Lee")])
    first, second = room.competencies[:2]
    ana, ben, cy = room.students
    started = {"state": "in_progress", "first_activity_at": at(3, 12)}
    mastery(ana, second, state="ready", is_unlocked_by_teacher=True)  # a stored ready row
    # Ben has no row for it: blank, derived ready (no prerequisites; ``progress.grid``).
    mastery(cy, second, **started)  # already started
    mastery(ana, first, **started)
    mastery(ben, first, **started)  # Cy, alone ready for the first one: no group
    for student in room.students:
        for competency in room.competencies[2:]:
            mastery(student, competency, **started)
    # A resolved stuck flag is no reason to regroup.
    InterventionFlag.objects.create(
        student=ana,
        competency=first,
        kind="stuck",
        status="resolved",
        reason="r",
        suggestion="s",
        opened_at=NOW,
    )

    groups = section_groups(section=room.section)

    assert [(group.kind, group.competency_id, group.reason, group.students) for group in groups] == [
        (
            "ready",
            second.pk,
            "2 students are ready for 6.RP.A.2 and have not started it (Ana Ruiz and Ben Ode): launch the lesson together",
            [ana.pk, ben.pk],
        )
    ]


def test_groups_query_count_is_flat(django_assert_num_queries):
    small, large = classroom(3), classroom(30)
    for room in (small, large):
        for student in room.students:
            mastery(student, room.competencies[1], state="ready")
    for room in (small, large):
        # students, framework, stuck flags, competencies, stored rows; the blank rows' catalog (2)
        with django_assert_num_queries(7):
            groups = section_groups(section=room.section)
        # Every competency is ready for everyone: one stored, three derived.
        assert [len(group.students) for group in groups] == [len(room.students)] * 4
